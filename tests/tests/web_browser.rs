//! The daemon's local page in a real browser: Debian's headless Chromium, driven over
//! WebDriver (`hearth_tests::webdriver`), against two real paired daemons on loopback.
//! Each page is opened the way `hearth open` does it, through the `web.open` control
//! call's one-time URL.
//!
//! The tests skip with a message where `chromium` or `chromedriver` is not installed
//! (`.ci/run` installs both). Screenshots of every section, at a phone's size and a
//! desktop's, go into the test's temp dir, or into `HEARTH_WEB_SHOTS` when it names a
//! directory. `HEARTH_WEB_BENCH=1` runs `web_figures`, which prints the page's load time,
//! how long a check-in takes to show on the partner's page, and the daemons' memory.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hearth_api::{At, CheckinParams, DocCall, LedgerAddParams, MomentParams};
use hearth_core::model::{Domain, Labour, MomentKind, Stage};
use hearth_tests::harness::{wait_converged, TestDaemon};
use hearth_tests::webdriver::{self, key, Browser, Driver};
use serde_json::Value;

/// A phone held upright, and a laptop.
const PHONE: (u32, u32) = (400, 900);
const DESKTOP: (u32, u32) = (1280, 900);
const SECTIONS: [&str; 6] = [
    "today", "checkin", "moments", "ledger", "insights", "together",
];

/// One browser test at a time: each runs two daemons and two Chromiums.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static PROFILES: AtomicUsize = AtomicUsize::new(0);

/// Ada's and Bo's daemons, paired and converged, and a chromedriver.
struct Household {
    ada: TestDaemon,
    bo: TestDaemon,
    driver: Driver,
    dir: tempfile::TempDir,
    _one: MutexGuard<'static, ()>,
}

/// The household, or `None` (with the reason printed) where there is no browser.
fn household(test: &str) -> Option<Household> {
    if let Some(why) = webdriver::unavailable() {
        eprintln!("{test}: skipped: {why}");
        return None;
    }
    let one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (ada, bo) = hearth_tests::harness::two_paired().unwrap();
    wait_converged(&[&ada, &bo], "household").unwrap();
    Some(Household {
        ada,
        bo,
        driver: Driver::start().unwrap(),
        dir: tempfile::tempdir().unwrap(),
        _one: one,
    })
}

impl Household {
    /// A fresh Chromium at `size` with `who`'s page open and its first data shown.
    fn open(&self, who: &TestDaemon, size: (u32, u32)) -> Browser {
        let n = PROFILES.fetch_add(1, Ordering::Relaxed);
        let profile = self.dir.path().join(format!("profile-{n}"));
        let browser = self.driver.browser(&profile, size.0, size.1).unwrap();
        browser.goto(&page_url(who)).unwrap();
        ready(&browser);
        browser
    }

    /// Where screenshots go: `HEARTH_WEB_SHOTS`, or the test's temp dir.
    fn shots(&self) -> PathBuf {
        match std::env::var_os("HEARTH_WEB_SHOTS") {
            Some(dir) => {
                std::fs::create_dir_all(&dir).unwrap();
                PathBuf::from(dir)
            }
            None => self.dir.path().to_path_buf(),
        }
    }
}

/// `web.open` on the control socket: the page's one-time URL, as `hearth open` gets it.
fn page_url(d: &TestDaemon) -> String {
    let mut socket = UnixStream::connect(&d.paths.socket).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    socket
        .write_all(b"{\"v\":1,\"id\":1,\"method\":\"web.open\"}\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(socket).read_line(&mut line).unwrap();
    let answer: Value = serde_json::from_str(&line).unwrap();
    let url = answer["ok"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("web.open answered {line}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    url.to_string()
}

/// Waits for the page's first data; answers when it came, in ms since navigation start.
fn ready(b: &Browser) -> f64 {
    b.wait_for("the page's first data (body[data-ready])", || {
        let v = b.js(
            "return document.body && document.body.dataset.ready || null",
            &[],
        )?;
        Ok(v.as_str().and_then(|s| s.parse().ok()))
    })
    .unwrap()
}

/// Shows a section by its nav link, from the keyboard, and waits until it is the one shown.
fn go(b: &Browser, section: &str) {
    let link = b.get(&format!("#nav-{section}")).unwrap();
    b.keys(&link, key::ENTER).unwrap();
    b.wait_for(&format!("section {section} to show"), || {
        let shown = b.js(
            "const s = document.getElementById('sec-' + arguments[0]); return !!s && !s.hidden",
            &[Value::from(section)],
        )?;
        Ok(shown.as_bool().unwrap_or(false).then_some(()))
    })
    .unwrap();
}

/// Sets the battery slider from the keyboard (Home, then steps of 5) and checks it says so.
fn set_battery(b: &Browser, value: u32) {
    let slider = b.get("#checkin-battery").unwrap();
    let mut keys = key::HOME.to_string();
    for _ in 0..value / 5 {
        keys.push_str(key::RIGHT);
    }
    b.keys(&slider, &keys).unwrap();
    b.wait_for_text("#checkin-battery-value", &value.to_string())
        .unwrap();
}

/// Fills in and sends a shared check-in on the page that shows the check-in section.
fn check_in(b: &Browser, battery: u32, note: &str, ask: &str) {
    go(b, "checkin");
    set_battery(b, battery);
    if !note.is_empty() {
        b.keys(&b.get("#checkin-note").unwrap(), note).unwrap();
    }
    if !ask.is_empty() {
        b.keys(&b.get("#checkin-ask").unwrap(), ask).unwrap();
    }
    b.click_on("#checkin-submit").unwrap();
    b.wait_for_text("#checkin-result", "Check-in saved")
        .unwrap();
}

fn write(d: &TestDaemon, call: DocCall) -> Value {
    d.call(call).unwrap()
}

#[test]
fn a_checkin_on_adas_page_shows_on_bos_page_live() {
    let Some(h) = household("a_checkin_on_adas_page_shows_on_bos_page_live") else {
        return;
    };
    let ada = h.open(&h.ada, PHONE);
    let bo = h.open(&h.bo, DESKTOP);
    // Marks Bo's page, so a reload would show.
    bo.js("window.hearthTestMark = 'still here'", &[]).unwrap();
    let bo_today = bo.text_of("#sec-today").unwrap();
    assert!(
        bo_today.contains("No check-in from you today yet"),
        "{bo_today}"
    );

    check_in(&ada, 40, "a long day, tea helps", "");

    let seen = bo
        .wait_for_text("#log-recent", "Ada checked in: battery 40 of 100")
        .unwrap();
    assert!(seen.contains("“a long day, tea helps”"), "{seen}");
    assert_eq!(
        bo.js("return window.hearthTestMark || null", &[]).unwrap(),
        "still here",
        "Bo's page reloaded instead of updating"
    );
    // Ada's own Today says she checked in; nothing there ranks or scores anyone.
    go(&ada, "today");
    ada.wait_for_text("#today-checked-in", "You have checked in today.")
        .unwrap();
    let text = ada.text_of("#main").unwrap() + &bo.text_of("#main").unwrap();
    assert!(!text.contains('%'), "a percentage on the page: {text}");
}

/// Whatever the partner's device writes, a modified client's included, is text on this
/// page: markup in a note or an ask shows as the characters it is and makes no element
/// (and the CSP would refuse a script or a far image even if it did).
#[test]
fn markup_the_partner_writes_shows_as_text_and_runs_nothing() {
    let Some(h) = household("markup_the_partner_writes_shows_as_text_and_runs_nothing") else {
        return;
    };
    let ada = h.open(&h.ada, DESKTOP);
    let ask = "<img id=\"planted\" src=\"/x\" onerror=\"window.planted=1\">bedtime?";
    write(
        &h.bo,
        DocCall::CheckinAdd(CheckinParams {
            battery: 30,
            note: Some("<b id=\"bold\">tired</b><script>window.planted=2</script>".into()),
            ask: Some(ask.into()),
            ..CheckinParams::default()
        }),
    );
    ada.wait_for_text("#today-asks", ask).unwrap();
    let seen = ada
        .wait_for_text("#log-recent", "<b id=\"bold\">tired</b>")
        .unwrap();
    assert!(seen.contains("<script>"), "{seen}");
    let planted = ada
        .js(
            "return [document.getElementById('planted'), document.getElementById('bold'),
                     window.planted || null, document.querySelectorAll('script').length]",
            &[],
        )
        .unwrap();
    assert_eq!(
        planted,
        serde_json::json!([null, null, null, 1]),
        "only app.js runs"
    );
}

#[test]
fn bo_answers_an_ask_and_a_handoff_from_his_today_page() {
    let Some(h) = household("bo_answers_an_ask_and_a_handoff_from_his_today_page") else {
        return;
    };
    write(
        &h.ada,
        DocCall::LedgerAdd(LedgerAddParams {
            title: "Bedtime stories".into(),
            domain: Domain::Parenting,
            labour: Labour::Emotional,
            invisible: false,
            owners: Default::default(),
            owner: Some("me".into()),
            cadence: None,
            minutes_per_week: None,
            weight: 2,
            good_enough: None,
            at: At::default(),
        }),
    );
    wait_converged(&[&h.ada, &h.bo], "household").unwrap();
    let ada = h.open(&h.ada, PHONE);
    let bo = h.open(&h.bo, PHONE);

    // 1. Ada asks in a check-in; Bo answers with one click.
    check_in(&ada, 25, "", "Could you take bedtime tonight?");
    bo.wait_for_text("#today-asks", "Ada asks: “Could you take bedtime tonight?”")
        .unwrap();
    bo.click_on("#today-asks li.ask .reply-quick").unwrap();
    bo.wait_for_text("#today-asks", "No asks waiting.").unwrap();
    go(&ada, "today");
    ada.wait_for_text(
        "#today-received",
        "Bo replied to your ask: “Yes, I've got it”",
    )
    .unwrap();

    // 2. Ada offers Bo the "do" stage from her ledger; Bo accepts it from Today.
    go(&ada, "ledger");
    ada.wait_for_text("#ledger-list", "Bedtime stories")
        .unwrap();
    let select = ada.get("#ledger-list li.item select").unwrap();
    ada.keys(&select, "do").unwrap();
    ada.click_on("#ledger-list li.item .item-handoff").unwrap();
    ada.wait_for_text("#toast", "Offered the do stage").unwrap();
    bo.wait_for_text(
        "#today-handoffs",
        "Ada offers you the do stage of “Bedtime stories”",
    )
    .unwrap();
    bo.click_on("#today-handoffs .handoff-accept").unwrap();
    bo.wait_for_text("#today-handoffs", "No handoffs waiting.")
        .unwrap();
    ada.wait_for_text("#ledger-list", "Bo").unwrap();
    let owners = ada.text_of("#ledger-list li.item dl").unwrap();
    assert!(owners.contains("do\nBo"), "{owners}");
}

#[test]
fn a_safety_answer_on_the_page_stays_with_its_author() {
    let Some(h) = household("a_safety_answer_on_the_page_stays_with_its_author") else {
        return;
    };
    let ada = h.open(&h.ada, PHONE);
    let bo = h.open(&h.bo, PHONE);
    go(&bo, "checkin");
    set_battery(&bo, 20);
    // The sharing question comes up only once there is an answer of his own to keep.
    assert!(!bo
        .get("#checkin-share-safety")
        .unwrap()
        .displayed(&bo)
        .unwrap());
    bo.click_on("label.chip:has(input[data-basic=safety][value=no])")
        .unwrap();
    bo.click_on("label.chip:has(input[data-sign=dread][value='2'])")
        .unwrap();
    bo.wait_for("the sharing question", || {
        let shown = bo.get("#checkin-share-safety")?.displayed(&bo)?;
        Ok(shown.then_some(()))
    })
    .unwrap();
    bo.keys(&bo.get("#checkin-note").unwrap(), "bo-page-note-7c1")
        .unwrap();
    bo.click_on("#checkin-submit").unwrap();
    // Support comes at once, on his own page only, and says what stayed with him.
    let result = bo
        .wait_for_text("#checkin-result", "Check-in saved")
        .unwrap();
    assert!(
        bo.find("#checkin-result .support").unwrap().is_some(),
        "{result}"
    );
    assert!(
        result.contains("Your answer on feeling safe stays on your own devices."),
        "{result}"
    );
    // Ada sees the check-in, and nothing of the answer Bo kept in any view of what is
    // recorded (her own check-in form asks her the question, so it is not one of them).
    ada.wait_for_text("#log-recent", "bo-page-note-7c1")
        .unwrap();
    for section in ["today", "moments", "ledger", "insights", "together"] {
        go(&ada, section);
        let text = ada
            .text_of(&format!("#sec-{section}"))
            .unwrap()
            .to_lowercase();
        for word in ["feel safe", "feeling safe", "unsafe", "helpline"] {
            assert!(
                !text.contains(word),
                "Ada's {section} shows `{word}`: {text}"
            );
        }
    }
}

#[test]
fn every_section_at_phone_and_desktop_size() {
    let Some(h) = household("every_section_at_phone_and_desktop_size") else {
        return;
    };
    // Something in every section: a moment each, a ledger item, a check-in each.
    for (d, kind) in [(&h.ada, MomentKind::Laugh), (&h.bo, MomentKind::Talk)] {
        write(
            d,
            DocCall::MomentAdd(MomentParams {
                kind,
                started_by: None,
                note: None,
                at: At::default(),
            }),
        );
    }
    write(
        &h.bo,
        DocCall::LedgerAdd(LedgerAddParams {
            title: "Plan the week's meals".into(),
            domain: Domain::Household,
            labour: Labour::Cognitive,
            invisible: true,
            owners: [(Stage::Plan, "partner".to_string())].into(),
            owner: Some("me".into()),
            cadence: None,
            minutes_per_week: Some(60),
            weight: 2,
            good_enough: Some("something warm most nights".into()),
            at: At::default(),
        }),
    );
    wait_converged(&[&h.ada, &h.bo], "household").unwrap();
    let shots = h.shots();
    let ada = h.open(&h.ada, PHONE);
    check_in(&ada, 55, "slow morning", "A walk after dinner?");
    for (size, (w, hgt)) in [("phone", PHONE), ("desktop", DESKTOP)] {
        ada.set_size(w, hgt).unwrap();
        for section in SECTIONS {
            go(&ada, section);
            // Each section's own data is on screen before the picture.
            let marker = match section {
                "today" => "#today-handoffs li",
                "checkin" => "#checkin-today:not(:empty)",
                "moments" => "#moments-recent li[data-id]",
                "ledger" => "#ledger-list li.item",
                "insights" => "#insights-steps li",
                _ => "#together-body ol li",
            };
            ada.get(marker).unwrap();
            // The picture shows the section, not the last action's passing note.
            ada.js(
                "window.scrollTo(0, 0); document.getElementById('toast').hidden = true",
                &[],
            )
            .unwrap();
            let file = shots.join(format!("{size}-{section}.png"));
            ada.screenshot(&file).unwrap();
            assert!(std::fs::metadata(&file).unwrap().len() > 1000);
            // Readable at a phone's width: nothing sticks out sideways.
            let overflow = ada
                .js(
                    "return document.documentElement.scrollWidth - window.innerWidth",
                    &[],
                )
                .unwrap();
            assert!(
                overflow.as_f64().unwrap() <= 0.0,
                "{section} is {overflow}px too wide at {size} size"
            );
            // Every control has a name a screen reader can say.
            let unnamed = ada
                .js(
                    "return [...document.querySelectorAll('input,select,textarea,button')]
                       .filter(e => !e.closest('[hidden]'))
                       .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                                    && !(e.tagName === 'BUTTON' && e.textContent.trim()))
                       .map(e => e.id || e.outerHTML.slice(0, 80))",
                    &[],
                )
                .unwrap();
            assert_eq!(
                unnamed,
                Value::Array(vec![]),
                "unnamed controls in {section}"
            );
        }
    }
    // Dark, with motion reduced: the page follows both wishes.
    ada.set_size(PHONE.0, PHONE.1).unwrap();
    ada.emulate_media(&[
        ("prefers-color-scheme", "dark"),
        ("prefers-reduced-motion", "reduce"),
    ])
    .unwrap();
    go(&ada, "today");
    ada.get("#today-handoffs li").unwrap();
    let looks = ada
        .js(
            "window.scrollTo(0, 0); const t = document.getElementById('toast');
             return [getComputedStyle(document.body).backgroundColor, getComputedStyle(t).transitionDuration]",
            &[],
        )
        .unwrap();
    assert_eq!(looks[0], "rgb(27, 24, 22)", "{looks}");
    assert_eq!(looks[1], "0s", "{looks}");
    ada.screenshot(&shots.join("phone-today-dark.png")).unwrap();
    eprintln!("screenshots in {}", shots.display());
    // Nothing on any section puts a percentage next to a name.
    for section in SECTIONS {
        go(&ada, section);
        let text = ada.text_of(&format!("#sec-{section}")).unwrap();
        assert!(!text.contains('%'), "{section}: {text}");
    }
}

#[test]
fn the_page_asks_nothing_of_anyone_but_this_device() {
    let Some(h) = household("the_page_asks_nothing_of_anyone_but_this_device") else {
        return;
    };
    let ada = h.open(&h.ada, DESKTOP);
    for section in SECTIONS {
        go(&ada, section);
    }
    go(&ada, "moments");
    ada.click_on("#moment-glance").unwrap();
    ada.wait_for_text("#moments-recent", "a glance").unwrap();
    let urls = ada
        .js(
            "return [...performance.getEntriesByType('navigation'),
                     ...performance.getEntriesByType('resource')].map(e => e.name)",
            &[],
        )
        .unwrap();
    let urls: Vec<&str> = urls
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(urls.iter().any(|u| u.ends_with("/app.js")), "{urls:?}");
    assert!(urls.iter().any(|u| u.ends_with("/api/call")), "{urls:?}");
    for url in &urls {
        assert!(url.starts_with("http://127.0.0.1:"), "the page asked {url}");
    }
    // Nothing in the document points elsewhere either, and the one-time token is gone
    // from the address bar.
    let refs = ada
        .js(
            "return [...document.querySelectorAll('[src],[href],[action]')]
               .map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('action'))",
            &[],
        )
        .unwrap();
    for r in refs.as_array().unwrap() {
        let r = r.as_str().unwrap();
        assert!(
            r.starts_with('/') || r.starts_with('#'),
            "the page refers to {r}"
        );
    }
    // Neither the link's token nor the CSRF token the swap handed over in the fragment
    // stays in the address bar.
    let here = ada.js("return location.href", &[]).unwrap();
    let here = here.as_str().unwrap();
    assert!(!here.contains("token") && !here.contains("csrf"), "{here}");
    assert!(here.ends_with("/#moments"), "{here}");
}

/// The closing note's figures, with `HEARTH_WEB_BENCH=1`:
/// `HEARTH_WEB_BENCH=1 cargo test -p hearth-tests --test web_browser web_figures -- --nocapture`.
#[test]
fn web_figures() {
    if std::env::var("HEARTH_WEB_BENCH").map_or(true, |v| v != "1") {
        eprintln!("web_figures: set HEARTH_WEB_BENCH=1 to measure");
        return;
    }
    let Some(h) = household("web_figures") else {
        return;
    };
    // Page load to interactive: navigation start to the first data on screen.
    let mut loads = Vec::new();
    let probe = h.open(&h.ada, DESKTOP);
    for _ in 0..10 {
        probe.goto(&page_url(&h.ada)).unwrap();
        loads.push(ready(&probe));
    }
    drop(probe);
    // A check-in click on Ada's page to Bo's page showing it.
    let ada = h.open(&h.ada, PHONE);
    let bo = h.open(&h.bo, PHONE);
    go(&ada, "checkin");
    let mut live = Vec::new();
    for i in 0..20 {
        let note = format!("bench-{i}-");
        bo.js(
            "const [needle] = arguments; window.hearthSeen = null;
             const list = document.getElementById('log-recent');
             const look = () => { if (window.hearthSeen === null && list.textContent.includes(needle)) window.hearthSeen = Date.now(); };
             new MutationObserver(look).observe(list, {childList: true, subtree: true, characterData: true});",
            &[Value::from(note.clone())],
        )
        .unwrap();
        ada.keys(&ada.get("#checkin-note").unwrap(), &note).unwrap();
        let clicked = ada
            .js(
                "const t = Date.now(); document.getElementById('checkin-submit').click(); return t",
                &[],
            )
            .unwrap()
            .as_f64()
            .unwrap();
        let seen = bo
            .wait_for("the check-in on Bo's page", || {
                Ok(bo.js("return window.hearthSeen", &[])?.as_f64())
            })
            .unwrap();
        live.push(seen - clicked);
        // The form is empty again once the write was answered.
        ada.wait_for("Ada's form to clear", || {
            let v = ada.js("return document.getElementById('checkin-note').value", &[])?;
            Ok((v.as_str() == Some("")).then_some(()))
        })
        .unwrap();
    }
    let rss = |d: &TestDaemon| {
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid().unwrap())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .map(|l| l.trim_start_matches("VmRSS:").trim().to_string())
            .unwrap_or_default()
    };
    eprintln!(
        "page load to first data (ms, 10 loads): p50 {:.0}, p95 {:.0}",
        pct(&mut loads, 50),
        pct(&mut loads, 95)
    );
    eprintln!(
        "check-in click to the partner's page showing it (ms, 20 tries): p50 {:.0}, p95 {:.0}",
        pct(&mut live, 50),
        pct(&mut live, 95)
    );
    eprintln!(
        "daemon RSS with the page open: Ada {}, Bo {}",
        rss(&h.ada),
        rss(&h.bo)
    );
}

/// The `p`th percentile, nearest rank.
fn pct(values: &mut [f64], p: usize) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = (values.len() * p).div_ceil(100).max(1);
    values[rank - 1]
}
