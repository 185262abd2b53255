//! Safety answers belong to the person who gave them (THREAT-MODEL.md P8), between real
//! daemons and through the real CLI: Bo logs that he does not feel safe, and nothing on
//! Ada's device shows that answer, talks to her about it, or lets her read it. Bo gets
//! support at once, and his own views keep the answer.
#![allow(clippy::unwrap_used)]

use hearth_api::{At, CheckinParams, DocCall, ReflectParams};
use hearth_core::insights::SAFETY_SUPPORT;
use hearth_core::model::{Answer, Visibility};
use hearth_tests::harness::{wait_converged, workspace_binary, TestDaemon};
use serde_json::Value;

const BO_NOTE: &str = "bo-note-after-the-argument-5e1d";

fn two_paired() -> (TestDaemon, TestDaemon) {
    let (a, b) = hearth_tests::harness::two_paired().unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    (a, b)
}

/// Runs the real `hearth` CLI against a running test daemon; returns stdout.
fn hearth(d: &TestDaemon, args: &[&str]) -> String {
    let out = std::process::Command::new(workspace_binary("hearth").unwrap())
        .arg("--data-dir")
        .arg(&d.paths.data_dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .env_remove("HEARTH_DATA_DIR")
        .env("HEARTH_DISCOVERY", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hearth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn hearth_json(d: &TestDaemon, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = hearth(d, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("hearth {args:?}: {e}: {out}"))
}

/// Bo's check-ins as a device sees them in `log --json`.
fn checkins_by(d: &TestDaemon, author: &str) -> Vec<Value> {
    hearth_json(d, &["log", "--kind", "checkin"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["record"]["author"] == author)
        .map(|e| e["record"].clone())
        .collect()
}

/// Every view Ada has, as text: `log --json`, `insights --json`, `report` (terminal,
/// Markdown and HTML) and `export`.
fn everything_ada_sees(a: &TestDaemon) -> String {
    let html = a.paths.data_dir.join("report.html");
    hearth(a, &["report", "--html", html.to_str().unwrap()]);
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}",
        hearth(a, &["--json", "log"]),
        hearth(a, &["--json", "insights"]),
        hearth(a, &["insights"]),
        hearth(a, &["report", "--markdown"]),
        std::fs::read_to_string(&html).unwrap(),
        hearth(a, &["--json", "export"]),
        hearth(a, &["log"]),
    )
}

/// Words that would show Bo's answer to Ada, or speak to her about it.
const SAFETY_WORDS: [&str; 6] = [
    "feel safe",
    "feeling safe",
    "emotionally safe",
    "unsafe",
    "\"safety\"",
    "\"relief\"",
];

fn assert_no_safety_text(seen: &str) {
    let lower = seen.to_lowercase();
    for word in SAFETY_WORDS {
        assert!(
            !lower.contains(word),
            "the partner's device shows `{word}`:\n{seen}"
        );
    }
    assert!(!seen.contains(&SAFETY_SUPPORT[..40]), "{seen}");
}

#[test]
fn a_safety_answer_stays_with_its_author_unless_shared() {
    let (a, b) = two_paired();
    let bo = b.status().unwrap().person.unwrap().id.to_string();

    // 1. Bo checks in with flags, shared by default, not feeling safe.
    let saved = hearth_json(
        &b,
        &[
            "checkin",
            "--battery",
            "15",
            "--basics",
            "safety=no,sleep=partly",
            "--sign",
            "relief=3",
            "--sign",
            "dread=2",
            "--note",
            BO_NOTE,
        ],
    );
    // 2. Bo gets support at once, and his own record keeps both answers.
    assert_eq!(saved["support"], SAFETY_SUPPORT);
    assert_eq!(saved["basics"]["safety"], "no");
    let human = hearth(
        &b,
        &["checkin", "--battery", "20", "--basics", "safety=partly"],
    );
    assert!(!human.contains(SAFETY_SUPPORT), "{human}");
    let human = hearth(&b, &["checkin", "--battery", "20", "--basics", "safety=no"]);
    assert!(human.starts_with(SAFETY_SUPPORT), "{human}");
    assert!(human.contains("stays on your own devices"), "{human}");
    wait_converged(&[&a, &b], "household").unwrap();

    // 3. Ada's device has the check-ins, without the answers Bo kept.
    let seen = checkins_by(&a, &bo);
    assert_eq!(seen.len(), 3, "{seen:?}");
    let first = seen.iter().find(|c| c["note"] == BO_NOTE).unwrap();
    assert_eq!(first["basics"]["sleep"], "partly");
    assert_eq!(first["signs"]["dread"], 2);
    assert!(first["basics"].get("safety").is_none(), "{first}");
    assert!(first["signs"].get("relief").is_none(), "{first}");
    assert!(first.get("kept_to_self").is_none(), "{first}");
    assert_no_safety_text(&everything_ada_sees(&a));

    // 4. Bo's own views have everything, and his insights speak to him about it.
    let own = checkins_by(&b, &bo);
    let first = own.iter().find(|c| c["note"] == BO_NOTE).unwrap();
    assert_eq!(first["basics"]["safety"], "no");
    assert_eq!(first["signs"]["relief"], 3);
    assert_eq!(
        first["kept_to_self"],
        serde_json::json!(["safety", "relief"])
    );
    let bo_export = hearth_json(&b, &["export"]);
    assert!(bo_export.to_string().contains("\"safety\":\"no\""));
    let insights = hearth(&b, &["insights"]);
    assert!(insights.contains("If you do not feel safe"), "{insights}");

    // 5. Shared by choice: Ada can read that entry's answer in the log, and still no
    // insight shows it to her or advises her about it.
    let shared = hearth_json(
        &b,
        &[
            "checkin",
            "--battery",
            "25",
            "--basics",
            "safety=no",
            "--share-safety",
        ],
    );
    wait_converged(&[&a, &b], "household").unwrap();
    let id = shared["id"].as_str().unwrap();
    let seen = checkins_by(&a, &bo);
    let entry = seen.iter().find(|c| c["id"] == id).unwrap();
    assert_eq!(entry["basics"]["safety"], "no");
    let views = format!(
        "{}\n{}\n{}",
        hearth(&a, &["--json", "insights"]),
        hearth(&a, &["insights"]),
        hearth(&a, &["report", "--markdown"])
    );
    assert_no_safety_text(&views);
}

#[test]
fn a_sealed_check_in_keeps_safety_back_after_it_opens() {
    let (a, b) = two_paired();
    let bo = b.status().unwrap().person.unwrap().id.to_string();
    let at = At {
        at: Some(1_773_172_800_000),
        utc_offset_min: 0,
    };
    b.call(DocCall::CheckinAdd(CheckinParams {
        battery: 20,
        basics: [(
            hearth_core::model::Basic::Safety,
            hearth_core::model::BasicLevel::No,
        )]
        .into(),
        visibility: Some(Visibility::RevealTogether),
        at,
        ..Default::default()
    }))
    .unwrap();
    a.call(DocCall::CheckinAdd(CheckinParams {
        battery: 60,
        visibility: Some(Visibility::RevealTogether),
        at,
        ..Default::default()
    }))
    .unwrap();
    // Both answers open; Bo's opens without his answer on feeling safe.
    let deadline = std::time::Instant::now() + hearth_tests::harness::EVENT_TIMEOUT;
    let seen = loop {
        let seen = checkins_by(&a, &bo);
        if seen.iter().any(|c| c.get("battery").is_some()) {
            break seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Bo's answer never opened"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(seen[0]["battery"], 20);
    assert!(seen[0]["basics"].get("safety").is_none(), "{}", seen[0]);
    assert_no_safety_text(&everything_ada_sees(&a));
    assert_eq!(checkins_by(&b, &bo)[0]["basics"]["safety"], "no");
}

#[test]
fn a_shared_reflection_never_shows_its_safety_answer_to_the_partner() {
    let (a, b) = two_paired();
    b.call(DocCall::ReflectAdd(ReflectParams {
        energy: Answer::Yes,
        safe: Answer::No,
        aligned: Answer::Yes,
        note: None,
        visibility: Some(Visibility::Shared),
        at: At::default(),
    }))
    .unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    let insights = hearth_json(&a, &["insights"]);
    let reflection = &insights["reflections"][0];
    assert_eq!(reflection["energy"], "yes");
    assert!(reflection["safe"].is_null(), "{reflection}");
    assert_eq!(reflection["all_yes"], false);
    let views = format!(
        "{insights}\n{}\n{}",
        hearth(&a, &["insights"]),
        hearth(&a, &["report", "--markdown"])
    );
    assert_no_safety_text(&views);
    // Bo's own insights speak to him.
    let own = hearth(&b, &["insights"]);
    assert!(own.contains("emotionally safe"), "{own}");
}

/// The reply loop between two real daemons: Ada asks in a check-in, Bo sees the ask in
/// `hearth today` and answers with `hearth reply`, and the answer reaches Ada's "for you".
#[test]
fn an_ask_reaches_the_partner_and_the_reply_comes_back() {
    let (a, b) = two_paired();
    hearth(
        &a,
        &[
            "checkin",
            "--battery",
            "22",
            "--ask",
            "Could you take bedtime tonight?",
        ],
    );
    wait_converged(&[&a, &b], "household").unwrap();

    // 1. Bo's "for you" shows the ask, with the command that answers it.
    let view = hearth_json(&b, &["today"]);
    assert_eq!(view["asks"][0]["ask"], "Could you take bedtime tonight?");
    assert_eq!(view["checked_in_today"], false);
    let human = hearth(&b, &["today"]);
    assert!(
        human.contains("Ada asks: “Could you take bedtime tonight?”"),
        "{human}"
    );
    let log = hearth(&b, &["log"]);
    assert!(
        log.contains("asks: “Could you take bedtime tonight?”"),
        "{log}"
    );
    let id = view["asks"][0]["checkin"].as_str().unwrap()[..8].to_string();
    assert!(human.contains(&format!("hearth reply {id}")), "{human}");

    // 2. Bo replies; the ask is answered on his side.
    let sent = hearth_json(&b, &["reply", &id, "I'll take bedtime"]);
    assert_eq!(sent["kind"], "reply");
    assert!(hearth_json(&b, &["today"])["asks"]
        .as_array()
        .unwrap()
        .is_empty());
    wait_converged(&[&a, &b], "household").unwrap();

    // 3. Ada sees the reply once, as new, then it is seen.
    let human = hearth(&a, &["today"]);
    assert!(
        human.contains("Bo replied to your ask: “I'll take bedtime”"),
        "{human}"
    );
    assert!(human.contains("You have checked in today."), "{human}");
    let again = hearth_json(&a, &["today"]);
    assert!(again["replies"].as_array().unwrap().is_empty(), "{again}");

    // 4. Nobody replies to their own ask.
    let out = std::process::Command::new(workspace_binary("hearth").unwrap())
        .arg("--data-dir")
        .arg(&a.paths.data_dir)
        .args(["reply", &id, "me again"])
        .stdin(std::process::Stdio::null())
        .env("HEARTH_DISCOVERY", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hearth today"));
}

/// Renegotiation that completes, between two real daemons: a stage meant for the partner
/// is offered, not assigned; the partner counters; the proposer accepts the counter; and
/// the item shows as agreed once both have agreed it.
#[test]
fn an_offered_stage_a_counter_accepted_and_an_item_agreed_by_both() {
    let (a, b) = two_paired();
    let item = hearth_json(
        &a,
        &[
            "ledger",
            "add",
            "School forms",
            "--domain",
            "parenting",
            "--stage",
            "plan=partner",
        ],
    );
    let ada = a.status().unwrap().person.unwrap().id.to_string();
    assert_eq!(item["owners"]["plan"], ada.as_str(), "{item}");
    let offered = item["offered"][0]["id"].as_str().unwrap().to_string();
    wait_converged(&[&a, &b], "household").unwrap();

    // Bo sees the offer in "for you" and counters it.
    let view = hearth_json(&b, &["today"]);
    assert_eq!(view["handoffs"][0]["id"], offered.as_str());
    hearth(&b, &["ledger", "counter", &offered, "I plan if you sign"]);
    wait_converged(&[&a, &b], "household").unwrap();

    // Ada, who proposed, accepts the counter.
    let accepted = hearth_json(&a, &["ledger", "accept", &offered]);
    assert_eq!(accepted["state"], "accepted");
    assert_eq!(accepted["answered_by"], ada.as_str());
    assert_eq!(accepted["counter"], "I plan if you sign");

    // Agreed by both, one after the other.
    let id = item["id"].as_str().unwrap();
    let first = hearth_json(&b, &["ledger", "agree", id]);
    assert_eq!(first["agreed_by_everyone"], true, "{first}");
    let shown = hearth(&b, &["ledger", "show", id]);
    assert!(shown.contains("agreed by both of you"), "{shown}");
}
