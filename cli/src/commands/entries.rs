//! `checkin`, `reflect` and `moment`: the personal entries, from flags or, on a
//! terminal, from a few gentle questions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use hearth_api::{CheckinParams, DocCall, MomentParams, ReflectParams, Today};
use hearth_core::labels;
use hearth_core::model::{
    Answer, Basic, BasicLevel, BodySign, BurnoutSign, MomentKind, PersonId, Visibility,
};
use hearth_core::together::{Together, TogetherStep};

use super::{decode, write, Io, Session};
use crate::args::{parse_basic, parse_key, parse_sign, parse_visibility, AtArg};
use crate::daemonctl::Ctx;
use crate::error::CliError;
use crate::out::Style;
use crate::prompt;
use crate::render::{self, short_id};
use clap::Args;

fn needs_terminal(what: &str, flags: &str) -> CliError {
    CliError::Usage {
        message: format!("{what}, and there is no terminal to ask on"),
        hint: format!("give it with {flags}"),
    }
}

/// Whether a note was given but is empty: an empty note is almost always a slip.
fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

pub(super) fn checkin(ctx: &Ctx, io: &mut Io, args: CheckinArgs) -> anyhow::Result<()> {
    let at = args.at.resolve();
    let mut params = CheckinParams {
        battery: 0,
        signs: args.signs.into_iter().collect(),
        body: args.body.into_iter().collect(),
        basics: args.basics.into_iter().collect(),
        note: non_empty(args.note),
        ask: non_empty(args.ask),
        visibility: args.visibility,
        share_safety: args.share_safety,
        at,
    };
    match args.battery {
        Some(battery) => params.battery = battery,
        None if prompt::interactive() => {
            ask_checkin(&mut params)?;
            // Asked once, plainly, and only when there is something to keep.
            let shared = params.visibility != Some(Visibility::Private);
            let has_own = params.basics.contains_key(&Basic::Safety)
                || params.signs.contains_key(&BurnoutSign::Relief);
            if shared && has_own && !params.share_safety {
                let options = vec![
                    "Keep them to me (they stay on my own devices)".to_string(),
                    "Share them with my partner, for this check-in".to_string(),
                ];
                let picked = prompt::pick_one(
                    "Your answers on feeling safe and on wishing for relief are yours. Share them this time?",
                    &options,
                    0,
                    false,
                )?;
                params.share_safety = picked == 1;
            }
        }
        None => {
            return Err(needs_terminal(
                "a check-in needs a battery level",
                "--battery 0-100 (and --sign, --body, --basics as you like)",
            )
            .into())
        }
    }
    if prompt::interactive() {
        confirm_shared_words(&mut params)?;
    }
    write(ctx, io, DocCall::CheckinAdd(params), render::checkin_saved)
}

/// On a terminal, shows the note and the ask of a shared check-in before it is saved,
/// with the reminder that the partner will read them, and lets the author change course.
fn confirm_shared_words(p: &mut CheckinParams) -> anyhow::Result<()> {
    if p.visibility == Some(Visibility::Private) || (p.note.is_none() && p.ask.is_none()) {
        return Ok(());
    }
    let when = if p.visibility == Some(Visibility::RevealTogether) {
        "once you have both checked in for the day"
    } else {
        "as soon as your devices meet"
    };
    let mut shown = String::new();
    if let Some(note) = &p.note {
        shown.push_str(&format!("  note: “{note}”\n"));
    }
    if let Some(ask) = &p.ask {
        shown.push_str(&format!("  ask:  “{ask}”\n"));
    }
    crate::out::note(&format!(
        "Your partner will read this, {when}:\n{}",
        shown.trim_end()
    ));
    let options = vec![
        "Save it for both of us".to_string(),
        "Leave the note out, keep the rest shared".to_string(),
        "Keep this whole check-in to myself (private)".to_string(),
    ];
    match prompt::pick_one("Save it like this?", &options, 0, false)? {
        0 => {}
        1 => p.note = None,
        _ => p.visibility = Some(Visibility::Private),
    }
    Ok(())
}

/// Asks for whatever the flags left out.
fn ask_checkin(p: &mut CheckinParams) -> anyhow::Result<()> {
    let battery = prompt::read_number(
        "How much energy is left, from 0 (none) to 100 (full)? ",
        0,
        100,
    )?;
    p.battery = u8::try_from(battery).unwrap_or(100);

    let ratings: Vec<String> = labels::RATING_WORDS.iter().map(|w| w.to_string()).collect();
    for sign in BurnoutSign::ALL {
        if p.signs.contains_key(sign) {
            continue;
        }
        let picked = prompt::pick_one(sign.label(), &ratings, 0, true)?;
        p.signs.insert(*sign, u8::try_from(picked).unwrap_or(0));
    }

    if p.body.is_empty() {
        let labels: Vec<String> = BodySign::ALL
            .iter()
            .map(|s| s.label().to_string())
            .collect();
        let chosen = prompt::pick_many("Anything in your body lately?", &labels)?;
        p.body = chosen
            .iter()
            .map(|i| BodySign::ALL[*i])
            .collect::<BTreeSet<_>>();
    }

    let levels = [BasicLevel::Met, BasicLevel::Partly, BasicLevel::No];
    let mut options: Vec<String> = levels.iter().map(|l| l.label().to_string()).collect();
    options.push("skip".into());
    let mut basics = BTreeMap::new();
    for basic in Basic::ALL {
        if let Some(level) = p.basics.get(basic) {
            basics.insert(*basic, *level);
            continue;
        }
        let question = format!("{} today?", basic.label());
        let picked = prompt::pick_one(&question, &options, levels.len(), false)?;
        if let Some(level) = levels.get(picked) {
            basics.insert(*basic, *level);
        }
    }
    p.basics = basics;

    if p.note.is_none() {
        p.note = prompt::read_line("A note, if you like (Enter to skip): ")?;
    }
    if p.ask.is_none() {
        p.ask = prompt::read_line("Anything you would like from your partner? (Enter to skip): ")?;
    }
    if p.visibility.is_none() {
        let options = vec![
            "shared: both of you can read it".to_string(),
            "private: only your own devices".to_string(),
            "reveal together: sealed until your partner answers for today too".to_string(),
        ];
        let picked = prompt::pick_one("Who may read this?", &options, 0, false)?;
        p.visibility = Some(match picked {
            0 => Visibility::Shared,
            1 => Visibility::Private,
            _ => Visibility::RevealTogether,
        });
    }
    Ok(())
}

pub(super) fn reflect(ctx: &Ctx, io: &mut Io, args: ReflectArgs) -> anyhow::Result<()> {
    let at = args.at.resolve();
    let mut answers = [args.energy, args.safe, args.aligned];
    let mut note = non_empty(args.note);
    let mut visibility = args.visibility;
    if answers.iter().any(Option::is_none) {
        if !prompt::interactive() {
            return Err(needs_terminal(
                "a reflection needs all three answers",
                "--energy, --safe and --aligned (yes, no or unsure)",
            )
            .into());
        }
        let choices = [Answer::Yes, Answer::No, Answer::Unsure];
        let options: Vec<String> = choices.iter().map(|a| a.label().to_string()).collect();
        for (answer, question) in answers.iter_mut().zip(labels::REFLECTION_QUESTIONS) {
            if answer.is_none() {
                let picked = prompt::pick_one(question, &options, 2, false)?;
                *answer = choices.get(picked).copied();
            }
        }
        if note.is_none() {
            note = prompt::read_line("A note, if you like (Enter to skip): ")?;
        }
        if visibility.is_none() {
            let options = vec![
                "private: only your own devices".to_string(),
                "shared: both of you can read it".to_string(),
                "reveal together: sealed until your partner reflects today too".to_string(),
            ];
            let picked = prompt::pick_one("Who may read this?", &options, 0, false)?;
            visibility = Some(match picked {
                0 => Visibility::Private,
                1 => Visibility::Shared,
                _ => Visibility::RevealTogether,
            });
        }
    }
    let [Some(energy), Some(safe), Some(aligned)] = answers else {
        return Err(CliError::Cancelled.into());
    };
    let params = ReflectParams {
        energy,
        safe,
        aligned,
        note,
        visibility,
        at,
    };
    write(
        ctx,
        io,
        DocCall::ReflectAdd(params),
        render::reflection_saved,
    )
}

pub(super) fn moment(ctx: &Ctx, io: &mut Io, args: MomentArgs) -> anyhow::Result<()> {
    let at = args.at.resolve();
    let kind = match args.kind {
        Some(kind) => kind,
        None if prompt::interactive() => {
            let options: Vec<String> = MomentKind::ALL
                .iter()
                .map(|k| k.label().to_string())
                .collect();
            let picked = prompt::pick_one("What kind of moment?", &options, 0, false)?;
            MomentKind::ALL
                .get(picked)
                .copied()
                .ok_or(CliError::Cancelled)?
        }
        None => {
            return Err(needs_terminal(
                "a moment needs a kind",
                "`hearth moment KIND` (glance, laugh, touch, quiet, talk or other)",
            )
            .into())
        }
    };
    let params = MomentParams {
        kind,
        started_by: args.by,
        note: non_empty(args.note),
        at,
    };
    write(ctx, io, DocCall::MomentAdd(params), render::moment_saved)
}

/// `hearth today`: what waits for you. Looking marks thank-yous and replies as seen.
pub(super) fn today(ctx: &Ctx, io: &mut Io) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    let view = session.call(DocCall::Today {
        utc_offset_min: chrono::Local::now().offset().local_minus_utc() / 60,
        mark_seen: true,
    })?;
    if ctx.json {
        io.out.json(&view)?;
    } else {
        io.out.write(&for_you(&decode(view)?, io.style))?;
    }
    Ok(())
}

/// `hearth reply ASK TEXT`.
pub(super) fn reply(ctx: &Ctx, io: &mut Io, args: ReplyArgs) -> anyhow::Result<()> {
    let call = DocCall::Reply {
        ask: args.ask,
        text: args.text,
        at: args.at.resolve(),
    };
    write(ctx, io, call, render::reply_sent)
}

/// `hearth together`: the weekly walk. On a terminal, one step at a time, at your pace;
/// otherwise (and with `--json`) every step at once, for scripts.
pub(super) fn together(ctx: &Ctx, io: &mut Io) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    let walk = session.call(DocCall::Together {
        utc_offset_min: chrono::Local::now().offset().local_minus_utc() / 60,
    })?;
    if ctx.json {
        io.out.json(&walk)?;
        return Ok(());
    }
    let walk: Together = decode(walk)?;
    let interactive = prompt::interactive();
    io.out.line(&format!(
        "Together, about {} minutes. Take the steps in order; skip any that do not fit today.",
        walk.minutes
    ))?;
    for (n, step) in walk.steps.iter().enumerate() {
        io.out.write(&together_step(n + 1, step, io.style))?;
        io.out.flush()?;
        if interactive && n + 1 < walk.steps.len() {
            // Nothing is recorded here: Enter only moves on when you are ready.
            prompt::read_line("Enter when you are ready for the next step… ")?;
        }
    }
    io.out.line("")?;
    io.out.line(&walk.closing)?;
    Ok(())
}

// ----- command line ----------------------------------------------------------------

/// `hearth reply`.
#[derive(Debug, Args)]
pub(crate) struct ReplyArgs {
    /// The ask's id (a few characters are enough), as `hearth today` shows it.
    pub(crate) ask: String,
    /// Your answer, such as "I'll take bedtime".
    pub(crate) text: String,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth checkin`.
#[derive(Debug, Args)]
pub(crate) struct CheckinArgs {
    /// Energy left, 0 to 100. Without it, on a terminal, hearth asks.
    #[arg(long, value_name = "0-100", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub(crate) battery: Option<u8>,
    /// A burnout sign and how strongly, from 0 (not at all) to 4 (very much): dread (of
    /// time together), numb (in conversation), irritation (at small things), warmth
    /// (warmth or curiosity is hard to reach: 4 means very hard), relief (wishing for
    /// relief elsewhere: 4 means very much; it stays yours unless you --share-safety).
    #[arg(long = "sign", value_name = "SIGN=0-4", value_parser = parse_sign)]
    pub(crate) signs: Vec<(BurnoutSign, u8)>,
    /// Body signs present, comma separated (fatigue,sleep,...).
    #[arg(long, value_name = "SIGNS", value_delimiter = ',', value_parser = parse_key::<BodySign>)]
    pub(crate) body: Vec<BodySign>,
    /// Basics and how well they were met: sleep=met,food=partly,safety=no,rest=met.
    #[arg(long, value_name = "BASIC=LEVEL", value_delimiter = ',', value_parser = parse_basic)]
    pub(crate) basics: Vec<(Basic, BasicLevel)>,
    /// A note for yourself (or both of you, when shared).
    #[arg(long)]
    pub(crate) note: Option<String>,
    /// Something you would like from your partner.
    #[arg(long)]
    pub(crate) ask: Option<String>,
    /// Who may read it: shared (default), private (only your own devices), or
    /// reveal-together (sealed until your partner checks in for the same day).
    #[arg(long, value_parser = parse_visibility)]
    pub(crate) visibility: Option<Visibility>,
    /// Share your answers on feeling safe and on wishing for relief with your partner,
    /// for this check-in only. Without it they stay on your own devices.
    #[arg(long)]
    pub(crate) share_safety: bool,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth reflect`.
#[derive(Debug, Args)]
pub(crate) struct ReflectArgs {
    /// If you had more energy, would you want to work on this together? yes, no or unsure.
    #[arg(long, value_parser = parse_key::<Answer>)]
    pub(crate) energy: Option<Answer>,
    /// Do you feel emotionally safe with your partner? yes, no or unsure.
    #[arg(long, value_parser = parse_key::<Answer>)]
    pub(crate) safe: Option<Answer>,
    /// Are the two of you aligned on what you want? yes, no or unsure.
    #[arg(long, value_parser = parse_key::<Answer>)]
    pub(crate) aligned: Option<Answer>,
    /// A note.
    #[arg(long)]
    pub(crate) note: Option<String>,
    /// Who may read it: private (default) or shared.
    #[arg(long, value_parser = parse_visibility)]
    pub(crate) visibility: Option<Visibility>,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth moment`.
#[derive(Debug, Args)]
pub(crate) struct MomentArgs {
    /// glance, laugh, touch, quiet, talk or other. Without it, on a terminal, hearth asks.
    #[arg(value_parser = parse_key::<MomentKind>)]
    pub(crate) kind: Option<MomentKind>,
    /// Who started it: me (default), partner, a name or an id.
    #[arg(long, value_name = "PERSON")]
    pub(crate) by: Option<String>,
    /// A note.
    #[arg(long)]
    pub(crate) note: Option<String>,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

// ----- rendering -------------------------------------------------------------------

/// "For you" (`hearth today`, and the top of `hearth status` on a terminal): a few lines,
/// each with the one command that answers it.
pub(crate) fn for_you(today: &Today, style: Style) -> String {
    let v = &today.view;
    let name = |id: &PersonId| {
        today
            .names
            .get(&id.to_string())
            .map(String::as_str)
            .unwrap_or("your partner")
            .to_string()
    };
    let quoted = |note: &Option<String>| {
        note.as_deref()
            .map(|n| format!(": “{n}”"))
            .unwrap_or_default()
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.bold("For you"));
    let mut quiet = true;
    for ask in &v.asks {
        quiet = false;
        let checkin = ask.checkin.to_string();
        let id = short_id(&checkin);
        let _ = writeln!(out, "  {} asks: “{}”", name(&ask.from), ask.ask);
        let _ = writeln!(
            out,
            "    {}",
            style.dim(&format!("answer: hearth reply {id} \"...\""))
        );
    }
    for h in &v.handoffs {
        quiet = false;
        let handoff = h.id.to_string();
        let id = short_id(&handoff);
        let _ = writeln!(
            out,
            "  {} offers you the {} stage of an item{}",
            name(&h.from),
            h.stage,
            quoted(&h.note)
        );
        let _ = writeln!(
            out,
            "    {}",
            style.dim(&format!(
                "answer: hearth ledger accept {id} · hearth ledger counter {id} \"...\" · hearth ledger decline {id}"
            ))
        );
    }
    for a in &v.replies {
        quiet = false;
        let _ = writeln!(
            out,
            "  {} replied to your ask: “{}”",
            name(&a.from),
            a.note.as_deref().unwrap_or_default()
        );
    }
    for a in &v.received {
        quiet = false;
        let what = match a.kind.key() {
            "thanks" => "thanked you",
            "repair" => "reached out to make things right",
            _ => "saw what you did",
        };
        let _ = writeln!(out, "  {} {what}{}", name(&a.from), quoted(&a.note));
    }
    for item in &v.paused_due {
        quiet = false;
        let item_id = item.id.to_string();
        let id = short_id(&item_id);
        let _ = writeln!(
            out,
            "  “{}” was paused until {}: look at it again together?",
            item.title,
            item.paused_until.map(|d| d.to_string()).unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "    {}",
            style.dim(&format!(
                "hearth ledger resume {id} · hearth ledger pause {id} --until DATE"
            ))
        );
    }
    if quiet {
        let _ = writeln!(out, "  Nothing is waiting for you.");
    }
    if v.checked_in_today {
        let _ = writeln!(out, "  You have checked in today.");
    } else {
        let _ = writeln!(
            out,
            "  No check-in from you today yet, whenever it suits: {}",
            style.dim("hearth checkin")
        );
    }
    out
}

/// One step of `hearth together`.
pub(crate) fn together_step(n: usize, step: &TogetherStep, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{}", style.bold(&format!("{n}. {}", step.title)));
    let _ = writeln!(out, "   {}", step.text);
    if let Some(prompt) = &step.prompt {
        let _ = writeln!(out, "   {} {prompt}", style.dim("To start:"));
    }
    out
}
