// Hearth's page: plain JS, no build step, nothing from elsewhere. Every read and write
// is one POST to /api/call with the session's CSRF token; /api/events says when to look
// again. Text from the documents only ever goes in through textContent.
'use strict';

// The words people see, as core/src/labels.rs and the CLI say them.
const RATING_WORDS = ['not at all', 'a little', 'somewhat', 'quite a lot', 'very much'];
const SIGNS = [
  ['dread', 'Dread of time together'],
  ['numb', 'Numbness in conversation'],
  ['irritation', 'Irritation at small things'],
  ['warmth', 'Warmth or curiosity hard to reach'],
  ['relief', 'Wishing for relief elsewhere'],
];
const BODY = [
  ['concentration', 'poor concentration'], ['fatigue', 'fatigue'],
  ['decisions', 'decisions feel hard'], ['digestion', 'digestion trouble'],
  ['aches', 'aches or tension'], ['sensitivity', 'sensitive to light or noise'],
  ['clumsiness', 'clumsiness'], ['forgetfulness', 'forgetfulness'],
  ['sleep', 'sleeping too little or too much'], ['numbness', 'numbness'],
  ['sickness', 'getting sick often'], ['hair-loss', 'hair loss'],
];
const BASICS = [['sleep', 'Sleep'], ['food', 'Food'], ['safety', 'Feeling safe'], ['rest', 'Rest']];
const LEVELS = [['met', 'met'], ['partly', 'partly met'], ['no', 'not met']];
const MOMENTS = [
  ['glance', 'a glance'], ['laugh', 'a laugh'], ['touch', 'a touch'],
  ['quiet', 'quiet time together'], ['talk', 'a talk'], ['other', 'something else'],
];
const DOMAINS = [
  ['household', 'household'], ['logistics', 'logistics'], ['finances', 'finances'],
  ['parenting', 'parenting'], ['social', 'social life'], ['emotional', 'emotional upkeep'],
  ['relationship', 'relationship upkeep'], ['other', 'other'],
];
const STAGES = ['notice', 'plan', 'do', 'follow-up'];
const QUICK_REPLIES = ["Yes, I've got it", "Not today, can we talk?"];
const SIGNAL_TITLES = {
  'basics-first': 'Basics first', 'body-signs': 'What the body may be asking for',
  'both-depleted': 'Both running low', 'lingering': 'Lingering', 'rough-patch': 'A rough patch',
  'fewer-moments': 'Fewer moments', 'nobody-starting': 'Moments have paused',
  'fewer-acks': 'Fewer thank-yous', 'balance-heavy': 'Load sits heavily on one side',
  'balance-leaning': 'Load leans to one side', 'unacknowledged-invisible-work': 'Unseen work',
  'handoffs-declined': 'Handoffs declined', 'reflection-points-to-burnout': 'Reflection: tired, not apart',
  'reflection-mixed': 'Reflection: worth a talk', 'reflection-shared': 'Reflection shared',
  'not-enough-data': 'Not enough yet',
};
const STEP_TITLES = {
  'basics': 'the basics', 'moments': 'small moments', 'who-holds-what': 'who holds what',
  'good-enough': 'good enough', 'support': 'support beyond the two of you',
  'keep-going': 'keep going', 'check-in': 'a check-in now and then',
};
const STAGE_STATE = { now: 'start here', also: 'called for too', later: 'later', steady: 'fine for now' };
const CHANGE = { higher: 'higher', steady: 'steady', lower: 'lower', unknown: 'no usual yet' };
const RATE = {
  higher: 'more than before', steady: 'about as before', lower: 'fewer than before',
  unknown: 'too few before to compare',
};
const BAND = { balanced: 'balanced', leaning: 'leaning to one side', heavy: 'heavy on one side' };
const SECTIONS = ['today', 'checkin', 'moments', 'ledger', 'insights', 'together'];

const state = { csrf: null, me: null, names: {}, section: 'today', deferred: false, ready: false };
const $ = (id) => document.getElementById(id);
const label = (table, key) => (table.find((p) => p[0] === key) || [key, key])[1];
const offset = () => -new Date().getTimezoneOffset();
const nameOf = (id) => (id === state.me ? 'you' : state.names[id] || 'your partner');
const Name = (id) => (id === state.me ? 'You' : state.names[id] || 'Your partner');

// Builds an element; children are nodes or strings (as text, never as HTML).
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) if (c != null && c !== false) e.append(c);
  return e;
}
// Text with `commands` in it, the commands set as code.
const withCode = (text) => String(text).split('`').map((part, i) => (i % 2 ? h('code', { text: part }) : part));
const cap = (text) => text.charAt(0).toUpperCase() + text.slice(1);
const fill = (el, ...children) => el.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));

function toast(text, bad) {
  const t = $('toast');
  t.textContent = text;
  t.className = bad ? 'show bad' : 'show';
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ''; }, 5000);
}

async function call(method, params) {
  const res = await fetch('/api/call', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-Hearth-CSRF': state.csrf },
    // A call without params (`status`) sends none: an empty map is not "nothing" to it.
    body: JSON.stringify(params === undefined ? { method } : { method, params }),
  });
  let body = null;
  try { body = await res.json(); } catch (_) { /* an empty or plain-text refusal */ }
  if (body && body.people) {
    for (const p of body.people.people || []) state.names[p.id] = p.name;
    state.me = body.people.me || state.me;
  }
  if (!res.ok || !body || body.error) {
    const err = (body && body.error) || { message: res.status === 403 ? 'This page has expired. Run `hearth open` again.' : 'Hearth did not answer.' };
    throw new Error(err.hint ? `${err.message}. ${err.hint}` : err.message);
  }
  return body.ok;
}

// Runs a write from a button: disables it meanwhile, says how it went.
async function act(button, method, params, done) {
  if (button) button.disabled = true;
  try {
    const ok = await call(method, Object.assign({ utc_offset_min: offset() }, params));
    if (done) toast(done);
    return ok;
  } catch (e) {
    toast(e.message, true);
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

function day(date) {
  const d = new Date(`${date}T12:00:00`);
  return isNaN(d) ? date : d.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
}
function time(ms) {
  return new Date(ms).toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
}

// ----- header ---------------------------------------------------------------------

async function refreshStatus() {
  const s = await call('status');
  state.me = (s.person && s.person.id) || state.me;
  for (const p of s.people || []) state.names[p.id] = p.name;
  const me = s.person ? s.person.name : 'this device';
  $('status-line').textContent = s.state === 'ready' ? `${me} · Hearth is running on this device` : `Hearth is ${s.state}`;
  const partner = (s.people || []).find((p) => p.id !== state.me);
  let pair;
  if (!partner) {
    pair = 'Not paired with a partner yet. Pairing stays in the terminal: hearth pair invite.';
  } else {
    const peers = (s.peers || []).filter((p) => p.person === partner.name);
    const up = peers.some((p) => p.connected);
    const last = peers.map((p) => p.last_sync || 0).reduce((a, b) => Math.max(a, b), 0);
    pair = `Paired with ${partner.name}: ${up ? 'connected now' : last ? `last in touch ${time(last)}` : 'not in touch yet'}.`;
    const paused = (s.people || []).find((p) => p.paused);
    if (paused) pair += ` Sharing is paused by ${paused.id === state.me ? 'you' : paused.name} for now.`;
    if (partner.left_at) pair = `${partner.name} has ended sharing. What you both wrote before stays with you.`;
  }
  $('pair-status').textContent = pair;
}

// ----- Today ----------------------------------------------------------------------

function askCard(a) {
  const inputId = `reply-${a.checkin}`;
  const send = async (button, text) => {
    if (!text.trim()) { toast('A reply needs a few words.', true); return; }
    if (await act(button, 'reply', { ask: a.checkin, text }, `Reply sent to ${state.names[a.from] || 'your partner'}.`)) refresh();
  };
  const input = h('input', { type: 'text', id: inputId, class: 'reply-input', maxlength: 500, autocomplete: 'off', placeholder: 'Or in your own words' });
  return h('li', { class: 'card ask', 'data-checkin': a.checkin },
    h('p', {}, h('strong', { text: `${Name(a.from)} asks: ` }), `“${a.ask}”`, h('small', { text: ` · ${day(a.date)}` })),
    h('div', { class: 'row' }, QUICK_REPLIES.map((q) => h('button', { type: 'button', class: 'reply-quick', onclick: (e) => send(e.currentTarget, q) }, q))),
    h('div', { class: 'row' },
      h('label', { for: inputId, class: 'sr' }, `Your own reply to ${state.names[a.from] || 'your partner'}`),
      input,
      h('button', { type: 'button', class: 'reply-send', onclick: (e) => send(e.currentTarget, input.value) }, 'Send')));
}

function handoffCard(ho, titles) {
  const id = `counter-${ho.id}`;
  const input = h('input', { type: 'text', id, class: 'counter-input', maxlength: 500, autocomplete: 'off', placeholder: 'Or offer something else' });
  const answer = async (button, answer) => {
    const params = { handoff: ho.id, answer };
    if (answer === 'countered') {
      if (!input.value.trim()) { toast('Say what you would offer instead.', true); input.focus(); return; }
      params.counter = input.value;
    }
    const words = { accepted: 'You took it on.', declined: 'Declined, kindly.', countered: 'Your counter is on its way.' };
    if (await act(button, 'ledger.answer', params, words[answer])) refresh();
  };
  return h('li', { class: 'card handoff', 'data-handoff': ho.id },
    h('p', {}, `${Name(ho.from)} offers you the ${ho.stage} stage of “${titles[ho.item] || 'an item'}”`, ho.note ? `: “${ho.note}”` : ''),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'handoff-accept', onclick: (e) => answer(e.currentTarget, 'accepted') }, 'Accept'),
      h('button', { type: 'button', class: 'handoff-decline quiet', onclick: (e) => answer(e.currentTarget, 'declined') }, 'Decline')),
    h('div', { class: 'row' },
      h('label', { for: id, class: 'sr' }, 'What you would offer instead'),
      input,
      h('button', { type: 'button', class: 'handoff-counter quiet', onclick: (e) => answer(e.currentTarget, 'countered') }, 'Counter')));
}

function entryText(e) {
  const r = e.record || {};
  const who = e.person_id === state.me ? 'You' : e.person;
  if (r.sealed) return `${who}: a check-in, sealed until you have both answered for ${day(e.date)}`;
  switch (e.kind) {
    case 'checkins': return `${who} checked in: battery ${r.battery} of 100${r.note ? ` · “${r.note}”` : ''}${r.ask ? ` · asks: “${r.ask}”` : ''}`;
    case 'moments': return `${who}: ${label(MOMENTS, r.kind)}${r.note ? ` · “${r.note}”` : ''}`;
    case 'acks': return r.kind === 'reply' ? `${who} replied: “${r.note || ''}”` : `${who}: ${e.summary}`;
    default: return `${who}: ${e.summary}`;
  }
}

function logList(entries) {
  if (!entries.length) return [h('li', { class: 'empty' }, 'Nothing yet.')];
  return entries.slice().reverse().map((e) => h('li', { 'data-id': e.id, 'data-kind': e.kind },
    h('span', { class: 'when', text: time(e.at) }), ' ', entryText(e)));
}

async function refreshToday() {
  const [t, items, log] = await Promise.all([
    call('today', { utc_offset_min: offset(), mark_seen: false }),
    call('ledger.list', { all: true }),
    call('log', { limit: 12 }),
  ]);
  Object.assign(state.names, t.names || {});
  const titles = Object.fromEntries(items.map((i) => [i.id, i.title]));
  $('today-checked-in').textContent = t.checked_in_today
    ? 'You have checked in today.'
    : 'No check-in from you today yet, whenever it suits.';
  $('today-checked-in').dataset.checkedIn = t.checked_in_today ? 'yes' : 'no';
  fill($('today-asks'), t.asks.length ? t.asks.map(askCard) : h('li', { class: 'empty' }, 'No asks waiting.'));
  fill($('today-handoffs'), t.handoffs.length ? t.handoffs.map((x) => handoffCard(x, titles)) : h('li', { class: 'empty' }, 'No handoffs waiting.'));
  const said = { thanks: 'thanked you', repair: 'reached out to make things right', seen: 'saw what you did' };
  const news = [
    ...t.replies.map((a) => h('li', { class: 'reply' }, `${Name(a.from)} replied to your ask: “${a.note || ''}”`)),
    ...t.received.map((a) => h('li', {}, `${Name(a.from)} ${said[a.kind] || 'saw what you did'}${a.note ? `: “${a.note}”` : ''}`)),
  ];
  fill($('today-received'), news.length ? news : h('li', { class: 'empty' }, 'Nothing new.'));
  $('today-mark-seen').hidden = !news.length;
  fill($('today-paused'), t.paused_due.map((i) => h('li', { class: 'card' },
    h('p', {}, `“${i.title}” was paused until ${day(i.paused_until)}: look at it again together?`),
    h('button', { type: 'button', onclick: async (e) => { if (await act(e.currentTarget, 'ledger.resume', { id: i.id }, 'Back on the list.')) refresh(); } }, 'Bring it back'))));
  fill($('log-recent'), logList(log));
}

// ----- Check-in -------------------------------------------------------------------

function buildCheckin() {
  fill($('checkin-signs'), SIGNS.map(([key, text]) => h('fieldset', { class: 'rating' },
    h('legend', { text }),
    h('div', { class: 'chips' }, RATING_WORDS.map((w, n) => h('label', { class: 'chip' },
      h('input', { type: 'radio', name: `sign-${key}`, value: n, 'data-sign': key }), w))))));
  fill($('checkin-body'), BODY.map(([key, text]) => h('label', { class: 'chip' },
    h('input', { type: 'checkbox', value: key, 'data-body': key }), text)));
  fill($('checkin-basics'), BASICS.map(([key, text]) => h('fieldset', { class: 'rating' },
    h('legend', { text: `${text} today?` }),
    h('div', { class: 'chips' }, LEVELS.map(([lk, lw]) => h('label', { class: 'chip' },
      h('input', { type: 'radio', name: `basic-${key}`, value: lk, 'data-basic': key }), lw))))));
  const form = $('checkin-form');
  const battery = $('checkin-battery');
  const show = () => { $('checkin-battery-value').textContent = battery.value; };
  battery.addEventListener('input', show);
  form.addEventListener('change', checkinHints);
  form.addEventListener('input', checkinHints);
  form.addEventListener('submit', submitCheckin);
  show();
}

function checkinParams() {
  const form = $('checkin-form');
  const signs = {};
  for (const i of form.querySelectorAll('input[data-sign]:checked')) signs[i.dataset.sign] = Number(i.value);
  const basics = {};
  for (const i of form.querySelectorAll('input[data-basic]:checked')) basics[i.dataset.basic] = i.value;
  const body = [...form.querySelectorAll('input[data-body]:checked')].map((i) => i.value);
  const visibility = form.querySelector('input[name=visibility]:checked').value;
  const text = (id) => $(id).value.trim() || null;
  return {
    battery: Number($('checkin-battery').value), signs, body, basics,
    note: text('checkin-note'), ask: text('checkin-ask'), visibility,
    share_safety: $('checkin-share-yes').checked, utc_offset_min: offset(),
  };
}

// The sharing question, only when there is something of one's own to keep; and the
// reminder that a shared note or ask will be read.
function checkinHints() {
  const p = checkinParams();
  const shared = p.visibility !== 'private';
  $('checkin-share-safety').hidden = !(shared && ('safety' in p.basics || 'relief' in p.signs));
  const words = $('checkin-shared-words');
  words.hidden = !(shared && (p.note || p.ask));
  words.textContent = `Your partner will read your ${p.note && p.ask ? 'note and your ask' : p.note ? 'note' : 'ask'}, ${p.visibility === 'reveal-together' ? 'once you have both checked in for the day' : 'as soon as your devices meet'}.`;
}

async function submitCheckin(ev) {
  ev.preventDefault();
  const params = checkinParams();
  if ($('checkin-share-safety').hidden) params.share_safety = false;
  const saved = await act($('checkin-submit'), 'checkin.add', params);
  if (!saved) return;
  const lines = [];
  if (saved.support) lines.push(h('p', { class: 'support', role: 'alert' }, saved.support));
  lines.push(h('p', { class: 'saved' }, `Check-in saved for ${day(saved.date)}: battery ${saved.battery}, ${saved.visibility === 'private' ? 'private' : saved.visibility === 'shared' ? 'shared' : 'to open together'}.`));
  const kept = (saved.kept_to_self || []).map((k) => (k === 'safety' ? 'feeling safe' : 'wishing for relief'));
  if (kept.length) lines.push(h('p', {}, `Your answer on ${kept.join(' and on ')} stays on your own devices.`));
  if (saved.waiting_for_partner) lines.push(h('p', {}, 'It stays sealed until your partner checks in for today too.'));
  fill($('checkin-result'), lines);
  $('checkin-form').reset();
  $('checkin-battery-value').textContent = $('checkin-battery').value;
  checkinHints();
  toast('Check-in saved.');
  refresh();
}

async function refreshCheckin() {
  const t = await call('today', { utc_offset_min: offset(), mark_seen: false });
  $('checkin-today').textContent = t.checked_in_today
    ? 'You have checked in today. Another one is welcome if the day changed.'
    : 'A minute, whenever it suits. Everything is optional except the battery.';
}

// ----- Moments --------------------------------------------------------------------

function buildMoments() {
  fill($('moment-kinds'), MOMENTS.map(([key, text]) => h('button', {
    type: 'button', id: `moment-${key}`, class: 'tile', 'data-kind': key,
    onclick: async (e) => {
      const params = { kind: key, started_by: $('moment-by-partner').checked ? 'partner' : 'me', note: $('moment-note').value.trim() || null };
      if (await act(e.currentTarget, 'moment.add', params, `Moment saved: ${text}.`)) { $('moment-note').value = ''; refresh(); }
    },
  }, cap(text))));
}

async function refreshMoments() {
  fill($('moments-recent'), logList(await call('log', { kinds: ['moments'], limit: 10 })));
}

// ----- Ledger ---------------------------------------------------------------------

function itemCard(item) {
  const owners = item.owners || {};
  const mine = STAGES.filter((s) => owners[s] === state.me);
  const stageSel = `handoff-stage-${item.id}`;
  const agreed = (item.agreed_by || []).includes(state.me);
  const actions = [];
  if (!agreed) actions.push(h('button', { type: 'button', class: 'item-agree', onclick: async (e) => { if (await act(e.currentTarget, 'ledger.agree', { id: item.id }, 'Agreed as it stands.')) refresh(); } }, 'Agree as it stands'));
  if (item.status === 'active') actions.push(h('button', { type: 'button', class: 'item-pause quiet', onclick: async (e) => { if (await act(e.currentTarget, 'ledger.pause', { id: item.id }, 'Paused: do less for now.')) refresh(); } }, 'Pause for now'));
  else actions.push(h('button', { type: 'button', class: 'item-resume quiet', onclick: async (e) => { if (await act(e.currentTarget, 'ledger.resume', { id: item.id }, 'Back on the list.')) refresh(); } }, 'Bring it back'));
  const handoff = mine.length ? h('div', { class: 'row' },
    h('label', { for: stageSel }, 'Offer a stage: '),
    h('select', { id: stageSel }, mine.map((s) => h('option', { value: s }, s))),
    h('button', { type: 'button', class: 'item-handoff', onclick: async (e) => {
      const stage = $(stageSel).value;
      if (await act(e.currentTarget, 'ledger.handoff', { item: item.id, stage }, `Offered the ${stage} stage to your partner.`)) refresh();
    } }, 'Offer')) : null;
  return h('li', { class: `card item status-${item.status}`, 'data-item': item.id },
    h('p', {}, h('strong', { text: item.title }), item.invisible ? ' (easy to miss)' : '', item.status !== 'active' ? ` · ${item.status}` : '',
      item.paused_until ? ` until ${day(item.paused_until)}` : ''),
    h('dl', { class: 'stages' }, STAGES.map((s) => [h('dt', { text: s }), h('dd', { text: owners[s] ? nameOf(owners[s]) : 'nobody yet' })])),
    item.good_enough ? h('p', {}, `Good enough: “${item.good_enough}”`) : null,
    h('p', { class: 'hint' }, agreed ? ((item.agreed_by || []).length > 1 ? 'Agreed by both of you.' : 'You agreed; waiting for your partner.') : 'Not agreed by you yet.'),
    h('div', { class: 'row' }, actions), handoff);
}

async function refreshLedger() {
  const items = await call('ledger.list', { all: false });
  if (!items.length) {
    fill($('ledger-list'), h('p', {}, 'The ledger is empty. Add the first thing the household carries below.'));
    return;
  }
  const groups = DOMAINS.map(([key, text]) => [text, items.filter((i) => i.domain === key)]).filter((g) => g[1].length);
  fill($('ledger-list'), groups.map(([text, list]) => [h('h3', { text: text[0].toUpperCase() + text.slice(1) }), h('ul', { class: 'cards' }, list.map(itemCard))]));
}

function buildLedger() {
  fill($('ledger-add-domain'), DOMAINS.map(([k, t]) => h('option', { value: k }, t)));
  $('ledger-add-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const title = $('ledger-add-title').value.trim();
    if (!title) { toast('Give it a short name first.', true); $('ledger-add-title').focus(); return; }
    const params = { title, domain: $('ledger-add-domain').value, invisible: $('ledger-add-invisible').checked, owner: 'me' };
    if (await act($('ledger-add-submit'), 'ledger.add', params, `Added “${title}”.`)) { ev.target.reset(); refresh(); }
  });
}

// ----- Insights -------------------------------------------------------------------

function bandText(shares) {
  if (shares.band) return BAND[shares.band] || shares.band;
  return shares.no_load ? 'nothing assigned' : 'one person so far';
}

function spread(by, done, balancedPct) {
  const total = by.reduce((a, c) => a + c.n, 0);
  if (!total) return '';
  const sides = by.filter((c) => c.n > 0).length;
  const most = Math.max(...by.map((c) => c.n)) / total;
  if (sides === 1) return by.length > 1 ? ` Lately they were all ${done} from one side.` : ` Lately they were ${done} by one person.`;
  return most * 100 > balancedPct ? ` Lately most were ${done} from one side.` : ` Lately they were ${done} from both sides.`;
}

function num(v, digits) { return v == null ? null : Number(v).toFixed(digits); }

async function refreshInsights() {
  const r = await call('insights', { utc_offset_min: offset() });
  const who = (id) => (r.people.find((p) => p.id === id) || { name: 'someone' }).name;
  const out = [h('p', { class: 'note' }, r.note)];
  out.push(h('h3', { text: 'What stands out' }));
  out.push(r.signals.length
    ? h('ul', { id: 'insights-signals', class: 'cards' }, r.signals.map((s) => h('li', { class: 'card', 'data-key': s.key },
      h('strong', { text: SIGNAL_TITLES[s.key] || s.key }), s.person ? ` · ${who(s.person)}` : '', h('br'), withCode(s.why))))
    : h('p', {}, 'Nothing stands out right now.'));
  out.push(h('h3', { text: 'Next steps' }));
  out.push(h('ol', { id: 'insights-steps' }, r.suggestions.map((s) => h('li', { 'data-step': s.step }, withCode(s.text)))));
  if (r.recovery.length) out.push(h('p', { class: 'hint' }, `The order of recovery: ${r.recovery.map((x) => `${STEP_TITLES[x.step] || x.step} (${STAGE_STATE[x.state] || x.state})`).join(' → ')}.`));
  out.push(h('h3', { text: 'Battery and signs, each against your own usual' }));
  for (const t of r.trends) {
    const w = t.windows[0] || {};
    const battery = w.battery == null ? 'no check-ins lately'
      : `${num(w.battery, 0)}${t.baseline.battery == null ? ' (usual not known yet)' : ` (usual ${num(t.baseline.battery, 0)}, ${CHANGE[w.battery_change]})`}`;
    const signs = w.signs == null ? 'not rated lately'
      : `${num(w.signs, 1)} of 4${t.baseline.signs == null ? ' (usual not known yet)' : ` (usual ${num(t.baseline.signs, 1)}, ${CHANGE[w.signs_change]})`}`;
    out.push(h('p', {}, h('strong', { text: who(t.person) }), `: last 7 days, battery ${battery}; signs ${signs}.`));
  }
  const b = r.balance;
  out.push(h('h3', { text: 'Who holds what' }));
  out.push(h('p', {}, `Across ${b.active_items} active items the load is ${bandText(b.overall)}; the easy-to-miss stages (noticing and following up) are ${bandText(b.invisible_stages)}. This is a picture of the split, not a score.`));
  if (b.by_domain.length) out.push(h('ul', { class: 'plain' }, b.by_domain.map((d) => h('li', {}, `${label(DOMAINS, d.domain)}: ${bandText(d.shares)}`))));
  const dir = { steady: 'steady', 'evening-out': 'evening out', 'more-uneven': 'becoming more uneven', unknown: 'not enough to tell yet' };
  out.push(h('p', {}, `Over these weeks the split has been ${dir[b.direction] || b.direction}.`));
  const c = r.connection;
  out.push(h('h3', { text: 'Moments and thank-yous' }));
  out.push(h('p', {}, `${num(c.moments.recent.per_week, 1)} moments a week in the last ${c.moments.recent.weeks} weeks, ${RATE[c.moments.trend]}.${spread(c.moments.recent.by, 'started', r.params.balanced_max_pct)}`));
  out.push(h('p', {}, `${num(c.acknowledgments.recent.per_week, 1)} acknowledgments a week, ${RATE[c.acknowledgments.trend]}.${spread(c.acknowledgments.recent.by, 'given', r.params.balanced_max_pct)}`));
  if (r.reflections.length) {
    out.push(h('h3', { text: 'Reflections' }));
    const word = { yes: 'yes', no: 'no', unsure: 'not sure' };
    out.push(h('ul', { class: 'plain' }, r.reflections.map((x) => h('li', {},
      `${who(x.person)}${x.private ? ' (private)' : ''}, ${day(x.date)}: more energy ${word[x.energy]}, safe ${x.safe ? word[x.safe] : 'theirs'}, aligned ${word[x.aligned]}`))));
  }
  const d = r.data;
  out.push(h('p', { class: 'hint' }, `Based on ${d.checkins} check-ins, ${d.moments} moments and ${d.items} ledger items. Notes and asks are never part of insights.`));
  fill($('insights-body'), out);
}

// ----- Together -------------------------------------------------------------------

async function refreshTogether() {
  const w = await call('together', { utc_offset_min: offset() });
  fill($('together-body'),
    h('p', {}, `About ${w.minutes} minutes, for the two of you. Take the steps in order; skip any that do not fit today.`),
    h('ol', { class: 'steps' }, w.steps.map((s) => h('li', { 'data-step': s.key },
      h('h3', { text: s.title }), h('p', {}, withCode(s.text)),
      s.prompt ? h('p', { class: 'prompt' }, h('span', { class: 'hint', text: 'To start: ' }), s.prompt) : null))),
    h('p', { class: 'closing' }, withCode(w.closing)));
}

// ----- wiring ---------------------------------------------------------------------

const REFRESH = {
  today: refreshToday, checkin: refreshCheckin, moments: refreshMoments,
  ledger: refreshLedger, insights: refreshInsights, together: refreshTogether,
};

// Someone typing in the visible section is never interrupted: the refresh waits for
// them to leave the field.
function typing() {
  const a = document.activeElement;
  const sec = $(`sec-${state.section}`);
  return a && sec.contains(a) && (a.tagName === 'TEXTAREA' || (a.tagName === 'INPUT' && a.type === 'text' && a.value)) && state.section !== 'checkin';
}

async function refresh() {
  if (typing()) { state.deferred = true; return; }
  state.deferred = false;
  try {
    await Promise.all([REFRESH[state.section](), refreshStatus()]);
    if (!state.ready) { state.ready = true; document.body.dataset.ready = String(Math.round(performance.now())); }
  } catch (e) {
    toast(e.message, true);
  }
}
// On an event, read again at once; events that come while a read is under way (a
// write, its sync, the peer's status) make one more read after it, not one each.
const reading = { now: false, again: false };
async function refreshSoon() {
  if (reading.now) { reading.again = true; return; }
  reading.now = true;
  try {
    do { reading.again = false; await refresh(); } while (reading.again);
  } finally {
    reading.now = false;
  }
}

function show(section) {
  if (!SECTIONS.includes(section)) section = 'today';
  state.section = section;
  for (const s of SECTIONS) {
    $(`sec-${s}`).hidden = s !== section;
    const link = $(`nav-${s}`);
    if (s === section) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
  refresh();
}

async function start() {
  buildCheckin();
  buildMoments();
  buildLedger();
  $('today-mark-seen').addEventListener('click', async (e) => {
    if (await act(e.currentTarget, 'today', { mark_seen: true })) refresh();
  });
  document.addEventListener('focusout', () => { if (state.deferred) setTimeout(refreshSoon, 0); });
  window.addEventListener('hashchange', () => { show(location.hash.slice(1)); $('main').focus(); });
  // The link's token swap hands this session's CSRF token to the page alone, in the
  // fragment, which no server ever receives; it is kept for this tab and taken out of
  // the address bar. Without it the session cookie opens nothing.
  const fromLink = /^#csrf=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (fromLink) {
    sessionStorage.setItem('hearth-csrf', fromLink[1]);
    history.replaceState(null, '', '/#today');
  }
  state.csrf = sessionStorage.getItem('hearth-csrf');
  const expired = 'This page has expired. Run `hearth open` again.';
  try {
    if (!state.csrf) throw new Error(expired);
    const res = await fetch('/api/session', {
      credentials: 'same-origin',
      headers: { 'X-Hearth-CSRF': state.csrf },
    });
    if (!res.ok) throw new Error(expired);
    const s = await res.json();
    state.me = s.me;
  } catch (e) {
    $('status-line').textContent = e.message;
    return;
  }
  // EventSource cannot send a header: the token goes in the query, which no log keeps.
  const events = new EventSource(`/api/events?csrf=${encodeURIComponent(state.csrf)}`);
  events.addEventListener('hearth', refreshSoon);
  events.addEventListener('open', refreshSoon);
  // A refused stream (the daemon restarted, so this session is gone) is not retried.
  events.addEventListener('error', () => {
    if (events.readyState === EventSource.CLOSED) {
      $('status-line').textContent = 'This page lost touch with Hearth. Run hearth open again.';
    }
  });
  show(location.hash.slice(1));
}

document.addEventListener('DOMContentLoaded', start);
