//! Human output: tables, short summaries and the plain words for every stable key.
//!
//! Renderers take the daemon's JSON results and return finished text, so they are pure
//! and tested on fixed inputs. They read fields leniently: a field this build does not
//! know is ignored, and a missing one is left out rather than failing the command. They
//! must not call the daemon or print; the commands do that. Wording is warm and plain,
//! and describes signals, never verdicts.

use std::collections::HashMap;
use std::fmt::Write as _;

use hearth_core::model::{Basic, Domain, MomentKind};
use serde_json::Value;

use hearth_api::{People, PersonSummary, Status};

use crate::out::Style;

/// The first 8 characters of an id: enough to refer to it, as git does.
pub(crate) fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// People by id, from `status`, to show names instead of ids.
#[derive(Debug, Clone, Default)]
pub(crate) struct Names {
    pub(crate) by_id: HashMap<String, String>,
    me: Option<String>,
}

impl Names {
    /// Reads `people` and `person` from a status result.
    pub(crate) fn from_status(status: &Status) -> Names {
        Names::new(&status.people, status.person.as_ref().map(|p| p.id.clone()))
    }

    /// Reads who is who from the people a write's answer carries.
    pub(crate) fn from_people(people: &People) -> Names {
        Names::new(&people.people, Some(people.me.clone()))
    }

    fn new(people: &[PersonSummary], me: Option<String>) -> Names {
        let by_id = people
            .iter()
            .map(|p| (p.id.clone(), p.name.clone()))
            .collect();
        Names { by_id, me }
    }

    /// A person's name; "you" for the caller; the short id when unknown.
    pub(crate) fn name(&self, id: &str) -> String {
        if self.me.as_deref() == Some(id) {
            return "you".into();
        }
        match self.by_id.get(id) {
            Some(name) => name.clone(),
            None => short_id(id).to_string(),
        }
    }

    pub(crate) fn of(&self, v: &Value) -> String {
        v.as_str().map(|id| self.name(id)).unwrap_or_default()
    }
}

/// Local wall-clock time of an entry: its instant shifted by the author's offset.
pub(crate) fn local_time(at_ms: i64, utc_offset_min: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms + utc_offset_min * 60_000)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "?".into())
}

pub(crate) fn when_of(record: &Value) -> String {
    match record["at"].as_i64() {
        Some(at) => local_time(at, record["utc_offset_min"].as_i64().unwrap_or(0)),
        None => record["date"].as_str().unwrap_or_default().to_string(),
    }
}

pub(crate) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// Human-friendly byte counts.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A table with a header row; columns padded to the widest cell.
pub(crate) fn table(style: Style, headers: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            s.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(width(cell)) + 2;
                s.push_str(&" ".repeat(pad));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    let header = line(headers.iter().map(|h| h.to_string()).collect());
    out.push_str(&style.bold(&header));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

/// This machine's current UTC offset in minutes, for showing daemon-side instants.
pub(crate) fn local_offset_min() -> i64 {
    use chrono::Offset;
    i64::from(chrono::Local::now().offset().fix().local_minus_utc() / 60)
}

/// For a reveal-together answer: whether it waits for the partner or opens now.
pub(crate) fn sealed_note(out: &mut String, r: &Value) {
    match r["waiting_for_partner"].as_bool() {
        Some(true) => {
            let _ = writeln!(
                out,
                "Sealed: your partner's devices hold it locked until they answer for this day too; then both open."
            );
        }
        Some(false) => {
            let _ = writeln!(
                out,
                "Your partner has answered for this day too, so both answers open now."
            );
        }
        None => {}
    }
}

/// The one-paragraph answer to a write: what was saved, and a gentle signal if any.
pub(crate) fn created(kind: &str, r: &Value, names: &Names, style: Style) -> String {
    let id = style.dim(short_id(text(r, "id")));
    let when = when_of(r);
    let mut out = String::new();
    match kind {
        "checkin" => {
            // Support for not feeling safe comes first, before anything else is said.
            if let Some(support) = r["support"].as_str() {
                let _ = writeln!(out, "{}", style.warn(support));
            }
            let signs = r["signs"].as_object().map(|m| m.len()).unwrap_or(0);
            let _ = writeln!(
                out,
                "Check-in saved for {when}: battery {}, {signs} sign(s) rated, {}.  {id}",
                r["battery"],
                text(r, "visibility")
            );
            let unmet: Vec<&str> = r["basics"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, level)| level.as_str() == Some("no"))
                .filter_map(|(k, _)| k.parse::<Basic>().ok())
                .filter(|b| *b != Basic::Safety)
                .map(|v| v.label())
                .collect();
            let kept: Vec<&str> = r["kept_to_self"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|k| match k {
                    "safety" => "feeling safe",
                    _ => "wishing for relief",
                })
                .collect();
            if !kept.is_empty() {
                let _ = writeln!(
                    out,
                    "Your answer on {} stays on your own devices.",
                    kept.join(" and on ")
                );
            }
            if !unmet.is_empty() {
                let _ = writeln!(
                    out,
                    "{} {} not met. Restoring the basics comes before anything else.",
                    style.warn("Basics first:"),
                    unmet.join(", ")
                );
            }
            if let Some(ask) = r["ask"].as_str() {
                let _ = writeln!(out, "Your ask is there for your partner: “{ask}”");
            }
            sealed_note(&mut out, r);
        }
        "reflection" => {
            let _ = writeln!(
                out,
                "Reflection saved for {when} ({}).  {id}",
                text(r, "visibility")
            );
            sealed_note(&mut out, r);
            let answers: Vec<&str> = ["energy", "safe", "aligned"]
                .iter()
                .map(|k| text(r, k))
                .collect();
            if answers.iter().all(|a| *a == "yes") {
                let _ = writeln!(
                    out,
                    "Yes to all three often points to depletion rather than a deeper mismatch: rest and small moments tend to help most."
                );
            } else if answers[1] == "no" {
                let _ = writeln!(
                    out,
                    "Not feeling safe matters more than any chart. Talking with someone you trust outside the two of you can help."
                );
            }
        }
        "reply" => {
            let _ = writeln!(
                out,
                "Your reply is on its way to {}: “{}”  {id}",
                names.of(&r["to"]),
                text(r, "note")
            );
        }
        "item" => {
            let domain = text(r, "domain")
                .parse::<Domain>()
                .map(|v| v.label())
                .unwrap_or("other");
            let _ = writeln!(
                out,
                "Added “{}” ({domain}, weight {}).  {id}",
                text(r, "title"),
                r["weight"]
            );
            // Stages meant for the partner are offered, not assigned: say so plainly.
            for h in r["offered"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "Offered the {} stage to {}; it stays with you until they accept.  {}",
                    text(h, "stage"),
                    names.of(&h["to"]),
                    style.dim(short_id(text(h, "id")))
                );
            }
        }
        "edited" => {
            let _ = writeln!(
                out,
                "Changed “{}”. Agree it again together with `hearth ledger agree`.  {id}",
                text(r, "title")
            );
            for h in r["offered"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "Offered the {} stage to {}; it stays where it is until they accept.  {}",
                    text(h, "stage"),
                    names.of(&h["to"]),
                    style.dim(short_id(text(h, "id")))
                );
            }
        }
        "paused" => {
            let until = r["paused_until"]
                .as_str()
                .map(|d| format!(" until {d}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "Paused “{}”{until}: it carries no load for now. `hearth ledger resume` brings it back.  {id}",
                text(r, "title")
            );
        }
        "resumed" => {
            let _ = writeln!(out, "“{}” is active again.  {id}", text(r, "title"));
        }
        "agreed" => {
            let _ = writeln!(
                out,
                "You agreed to “{}”{}.  {id}",
                text(r, "title"),
                if r["agreed_by_everyone"].as_bool() == Some(true) {
                    "; you have both agreed it now"
                } else {
                    "; it shows as agreed once your partner agrees too"
                }
            );
        }
        "retired" => {
            let _ = writeln!(out, "Retired “{}”.  {id}", text(r, "title"));
        }
        "done" => {
            let what = match (r["label"].as_str(), r["item_title"].as_str()) {
                (Some(label), _) | (None, Some(label)) => format!("“{label}”"),
                (None, None) => format!("item {}", short_id(text(r, "item"))),
            };
            let minutes = r["minutes"]
                .as_u64()
                .map(|m| format!(", {m} min"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "Noted: {} did {what} ({when}{minutes}).  {id}",
                names.of(&r["by"])
            );
        }
        "ack" => {
            let about = match text(&r["target"], "kind") {
                "item" => "an item",
                "done" => "something done",
                "checkin" => "a check-in",
                "moment" => "a moment",
                _ => "an entry",
            };
            let _ = writeln!(
                out,
                "Sent {} “{}” about {about}.  {id}",
                names.of(&r["to"]),
                text(r, "kind"),
            );
        }
        "handoff" => {
            let state = text(r, "state");
            if state == "open" {
                let _ = writeln!(
                    out,
                    "Proposed handing “{}” of item {} to {}.  {id}",
                    text(r, "stage"),
                    short_id(text(r, "item")),
                    names.of(&r["to"])
                );
                let _ = writeln!(
                    out,
                    "They can answer with {} or {}.",
                    style.cmd(&format!("hearth ledger accept {}", short_id(text(r, "id")))),
                    style.cmd(&format!(
                        "hearth ledger decline {}",
                        short_id(text(r, "id"))
                    ))
                );
            } else {
                let _ = writeln!(out, "Handoff {state}.  {id}");
            }
        }
        "moment" => {
            let kind = text(r, "kind")
                .parse::<MomentKind>()
                .map(|v| v.label())
                .unwrap_or("a moment");
            let _ = writeln!(
                out,
                "Moment noted: {kind}, started by {} ({when}).  {id}",
                names.of(&r["started_by"])
            );
        }
        _ => {
            let _ = writeln!(out, "Saved.  {id}");
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::commands::data::imported;
    use crate::commands::data::render_log as log;
    use crate::commands::ledger::ledger_list;
    use crate::commands::ledger::ledger_show;
    use crate::commands::lifecycle::render_status as status;
    use serde_json::json;

    fn names() -> Names {
        Names::from_status(
            &serde_json::from_value(json!({
                "protocol": 1, "pid": 1, "data_dir": "/d", "socket": "/s", "state": "ready",
                "person": {"id": "aaaaaaaa-1111", "name": "Robin"},
                "people": [
                    {"id": "aaaaaaaa-1111", "name": "Robin"},
                    {"id": "bbbbbbbb-2222", "name": "Sam"}
                ]
            }))
            .unwrap(),
        )
    }

    #[test]
    fn names_say_you_for_the_caller_and_fall_back_to_short_ids() {
        let n = names();
        assert_eq!(n.name("aaaaaaaa-1111"), "you");
        assert_eq!(n.name("bbbbbbbb-2222"), "Sam");
        assert_eq!(n.name("cccccccc-3333-4444"), "cccccccc");
    }

    #[test]
    fn local_time_uses_the_authors_offset() {
        // 2026-11-20T20:30Z in UTC+1 is 21:30 local.
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-20T20:30:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(local_time(at, 60), "2026-11-20 21:30");
        assert_eq!(local_time(at, -300), "2026-11-20 15:30");
    }

    #[test]
    fn tables_pad_columns_and_trim_line_ends() {
        let t = table(
            Style::plain(),
            &["ID", "TITLE", "X"],
            &[
                vec!["1".into(), "Bins".into(), "".into()],
                vec!["22".into(), "Laundry".into(), "y".into()],
            ],
        );
        assert_eq!(t, "ID  TITLE    X\n1   Bins\n22  Laundry  y\n");
    }

    #[test]
    fn status_names_refused_roster_changes_and_who_sent_them() {
        let s = status(
            &json!({
                "pid": 42, "data_dir": "/d", "state": "ready",
                "person": {"id": "a", "name": "Robin"}, "device_id": "ABCD-EFGH",
                "documents": [], "peers": [],
                "refused": [
                    {"device_id": "AAAA-BBBB-CCCC-DDDD-EEEE", "what": "device",
                     "reason": "no device of this household vouches for it",
                     "sent_by": "QQQQ-RRRR-SSSS-TTTT"},
                    {"device_id": "ZZZZ-YYYY-XXXX-WWWW", "what": "removal",
                     "reason": "it is not signed by a device of the same person"}
                ]
            }),
            Style::plain(),
        );
        assert!(s.contains("Not accepted: 2 change(s)"), "{s}");
        assert!(s.contains("device AAAA-BBBB-CCCC: no device of this household vouches for it, from QQQQ-RRRR-SSSS"), "{s}");
        assert!(s.contains("a removal of device ZZZZ-YYYY-XXXX"), "{s}");
        assert!(!s.contains('%'), "{s}");
    }

    #[test]
    fn status_says_no_partner_yet_gently() {
        let s = status(
            &json!({
                "pid": 42, "data_dir": "/d", "state": "ready",
                "person": {"id": "a", "name": "Robin"}, "device_id": "ABCD-EFGH",
                "documents": [{"id": "household", "disk_bytes": 2048, "records": {"checkins": 3, "moments": 0}}],
                "peers": []
            }),
            Style::plain(),
        );
        assert!(s.contains("running (pid 42), ready"), "{s}");
        assert!(s.contains("Robin"), "{s}");
        assert!(s.contains("2.0 KiB"), "{s}");
        assert!(s.contains("3 checkins"), "{s}");
        assert!(!s.contains("0 moments"), "{s}");
        assert!(s.contains("no partner yet"), "{s}");
    }

    #[test]
    fn status_shows_a_pause_on_both_sides_without_blame() {
        let base = |me: &str| {
            json!({
                "pid": 1, "data_dir": "/d", "state": "ready",
                "person": {"id": me, "name": if me == "a" { "Robin" } else { "Sam" }},
                "people": [
                    {"id": "a", "name": "Robin", "paused": {"since": 0, "until": 86_400_000}},
                    {"id": "b", "name": "Sam"}
                ],
                "documents": [],
                "peers": [{"name": "phone", "person": "Sam", "connected": true, "on_hold": true}]
            })
        };
        let pauser = status(&base("a"), Style::plain());
        assert!(pauser.contains("paused with Sam until 19"), "{pauser}");
        assert!(pauser.contains("Your own devices keep syncing"), "{pauser}");
        assert!(pauser.contains("sharing on hold"), "{pauser}");
        let partner = status(&base("b"), Style::plain());
        assert!(
            partner.contains("Robin is taking a pause from sharing until"),
            "{partner}"
        );
        for s in [&pauser, &partner] {
            let lower = s.to_lowercase();
            for word in ["fault", "blame", "refused", "rejected", "blocked"] {
                assert!(!lower.contains(word), "{word} in {s}");
            }
        }
    }

    #[test]
    fn status_after_leaving_says_export_still_works() {
        let s = status(
            &json!({
                "pid": 1, "data_dir": "/d", "state": "ready",
                "person": {"id": "b", "name": "Sam"},
                "people": [{"id": "a", "name": "Robin", "left_at": 0}, {"id": "b", "name": "Sam"}],
                "documents": [], "peers": []
            }),
            Style::plain(),
        );
        assert!(s.contains("Robin ended sharing on"), "{s}");
        assert!(s.contains("hearth export"), "{s}");
        assert!(!s.contains("no partner yet"), "{s}");
    }

    #[test]
    fn status_while_loading_says_it_is_from_the_last_stop() {
        let s = status(
            &json!({
                "pid": 1, "data_dir": "/d", "state": "loading",
                "person": {"id": "a", "name": "Robin"}, "device_id": "ABCD-EFGH",
                "documents": [], "peers": []
            }),
            Style::plain(),
        );
        assert!(s.contains("running (pid 1), opening your entries"), "{s}");
        assert!(s.contains("when it last stopped"), "{s}");
    }

    #[test]
    fn status_before_init_points_at_init() {
        let s = status(
            &json!({"pid": 1, "data_dir": "/d", "state": "uninitialized"}),
            Style::plain(),
        );
        assert!(s.contains("not set up yet"), "{s}");
        assert!(s.contains("hearth init --name NAME"), "{s}");
    }

    #[test]
    fn checkin_summary_puts_basics_first() {
        let r = json!({
            "id": "0123456789abcdef", "at": 0, "utc_offset_min": 0, "battery": 20,
            "signs": {"dread": 3}, "basics": {"sleep": "no", "food": "met"},
            "visibility": "shared"
        });
        let s = created("checkin", &r, &names(), Style::plain());
        assert!(
            s.contains("battery 20, 1 sign(s) rated, shared.  01234567"),
            "{s}"
        );
        assert!(s.contains("Basics first: Sleep not met"), "{s}");
        assert!(!s.contains("Food"), "{s}");
    }

    #[test]
    fn reflection_summary_is_a_signal_not_a_verdict() {
        let r = json!({"id": "x", "energy": "yes", "safe": "yes", "aligned": "yes", "visibility": "private"});
        let s = created("reflection", &r, &names(), Style::plain());
        assert!(s.contains("often points to depletion"), "{s}");
        assert!(!s.to_lowercase().contains("diagnos"), "{s}");
    }

    #[test]
    fn ledger_list_shows_owner_names_per_stage() {
        let items = vec![json!({
            "id": "1234567890", "title": "School forms", "domain": "parenting", "weight": 2,
            "invisible": true, "status": "active",
            "owners": {"notice": "bbbbbbbb-2222", "plan": "bbbbbbbb-2222", "do": "aaaaaaaa-1111"}
        })];
        let s = ledger_list(&items, &names(), Style::plain());
        let row = s.lines().nth(1).unwrap();
        assert!(
            row.starts_with("12345678  School forms (invisible)  parenting"),
            "{row}"
        );
        assert!(row.contains("Sam     Sam   you  -"), "{row}");
        assert!(ledger_list(&[], &names(), Style::plain()).contains("ledger is empty"));
    }

    #[test]
    fn ledger_show_lists_history() {
        let v = json!({
            "item": {"id": "i1", "title": "Bins", "domain": "household", "labour": "physical",
                      "weight": 1, "status": "active", "owners": {"do": "bbbbbbbb-2222"},
                      "good_enough": "out by 8"},
            "done": [{"id": "d1", "by": "bbbbbbbb-2222", "at": 0, "utc_offset_min": 0, "minutes": 5}],
            "handoffs": [{"id": "h1", "stage": "do", "from": "aaaaaaaa-1111", "to": "bbbbbbbb-2222",
                          "state": "open", "at": 0, "utc_offset_min": 0}],
            "acks": []
        });
        let s = ledger_show(&v, &names(), Style::plain());
        assert!(s.contains("good enough   out by 8"), "{s}");
        assert!(s.contains("1970-01-01 00:00  Sam (5 min)"), "{s}");
        assert!(s.contains("do from you to Sam: open"), "{s}");
    }

    #[test]
    fn log_rows_show_time_kind_person_and_summary() {
        let entries = vec![json!({
            "kind": "moments", "id": "abcdef0123", "at": 0, "utc_offset_min": 120,
            "date": "1970-01-01", "person": "Sam", "person_id": "bbbbbbbb-2222",
            "summary": "a laugh\nover tea"
        })];
        let s = log(&entries, &names(), Style::plain());
        assert_eq!(
            s.lines().nth(1).unwrap(),
            "1970-01-01 02:00  moment  Sam  a laugh over tea  abcdef01"
        );
        assert!(log(&[], &names(), Style::plain()).contains("Nothing"));
        // Without an id the name is shown as sent.
        let entries =
            vec![json!({"kind": "moments", "id": "x", "at": 0, "person": "Kim", "summary": ""})];
        assert!(log(&entries, &names(), Style::plain()).contains("Kim"));
    }

    #[test]
    fn import_counts_new_records() {
        assert!(imported(&json!({"imported": 0})).starts_with("Nothing new"));
        assert!(imported(&json!({"imported": 7})).starts_with("Imported 7 new"));
    }

    #[test]
    fn bytes_are_humane() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
