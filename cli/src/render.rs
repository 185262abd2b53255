//! Human output: tables, short summaries and the plain words for every stable key.
//!
//! Renderers take the daemon's answers, read into `hearth-api`'s types, and return
//! finished text, so they are pure and tested on fixed inputs. A field this build does
//! not know is ignored; an answer that lacks one it needs fails to read, with a message
//! about versions, before any renderer runs. They must not call the daemon or print; the
//! commands do that. Wording is warm and plain, and describes signals, never verdicts.

use std::collections::HashMap;
use std::fmt::Write as _;

use hearth_core::model::{
    Acknowledgment, Answer, Basic, BasicLevel, Handoff, HandoffState, Moment, OwnAnswer, PersonId,
    TargetKind, When,
};

use hearth_api::{
    CheckinSaved, DoneSaved, ItemSaved, People, PersonSummary, ReflectionSaved, Status,
};

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

    /// A person's name by their id, as [`Names::name`].
    pub(crate) fn of(&self, id: &PersonId) -> String {
        self.name(&id.to_string())
    }
}

/// Local wall-clock time of an entry: its instant shifted by the author's offset.
pub(crate) fn local_time(at_ms: i64, utc_offset_min: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms + utc_offset_min * 60_000)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "?".into())
}

/// Local wall-clock time of a record's [`When`].
pub(crate) fn when_of(when: &When) -> String {
    local_time(when.at, i64::from(when.utc_offset_min))
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
pub(crate) fn sealed_note(out: &mut String, waiting_for_partner: Option<bool>) {
    match waiting_for_partner {
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

fn dim_id(id: &impl std::fmt::Display, style: Style) -> String {
    style.dim(short_id(&id.to_string()))
}

/// The answer to `hearth checkin`: what was saved, and a gentle signal if any.
pub(crate) fn checkin_saved(saved: &CheckinSaved, _names: &Names, style: Style) -> String {
    let r = &saved.record;
    let id = dim_id(&r.id, style);
    let when = when_of(&r.when);
    let mut out = String::new();
    // Support for not feeling safe comes first, before anything else is said.
    if let Some(support) = &saved.support {
        let _ = writeln!(out, "{}", style.warn(support));
    }
    let _ = writeln!(
        out,
        "Check-in saved for {when}: battery {}, {} sign(s) rated, {}.  {id}",
        r.battery,
        r.signs.len(),
        r.visibility
    );
    // In the order of their keys, as they have always been listed.
    let mut unmet: Vec<Basic> = r
        .basics
        .iter()
        .filter(|(basic, level)| **level == BasicLevel::No && **basic != Basic::Safety)
        .map(|(basic, _)| *basic)
        .collect();
    unmet.sort_by_key(|basic| basic.key());
    let unmet: Vec<&str> = unmet.iter().map(|basic| basic.label()).collect();
    let kept: Vec<&str> = r
        .kept_to_self
        .iter()
        .map(|answer| match answer {
            OwnAnswer::Safety => "feeling safe",
            OwnAnswer::Relief => "wishing for relief",
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
    if let Some(ask) = &r.ask {
        let _ = writeln!(out, "Your ask is there for your partner: “{ask}”");
    }
    sealed_note(&mut out, saved.waiting_for_partner);
    out
}

/// The answer to `hearth reflect`.
pub(crate) fn reflection_saved(saved: &ReflectionSaved, _names: &Names, style: Style) -> String {
    let r = &saved.record;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Reflection saved for {} ({}).  {}",
        when_of(&r.when),
        r.visibility,
        dim_id(&r.id, style)
    );
    sealed_note(&mut out, saved.waiting_for_partner);
    if [r.energy, r.safe, r.aligned]
        .iter()
        .all(|a| *a == Answer::Yes)
    {
        let _ = writeln!(
            out,
            "Yes to all three often points to depletion rather than a deeper mismatch: rest and small moments tend to help most."
        );
    } else if r.safe == Answer::No {
        let _ = writeln!(
            out,
            "Not feeling safe matters more than any chart. Talking with someone you trust outside the two of you can help."
        );
    }
    out
}

/// The answer to `hearth reply`.
pub(crate) fn reply_sent(r: &Acknowledgment, names: &Names, style: Style) -> String {
    format!(
        "Your reply is on its way to {}: “{}”  {}\n",
        names.of(&r.to),
        r.note.as_deref().unwrap_or_default(),
        dim_id(&r.id, style)
    )
}

/// Stages meant for the partner are offered, not assigned: say so plainly.
fn offered_lines(out: &mut String, offered: &[Handoff], stays: &str, names: &Names, style: Style) {
    for h in offered {
        let _ = writeln!(
            out,
            "Offered the {} stage to {}; it stays {stays} until they accept.  {}",
            h.stage,
            names.of(&h.to),
            dim_id(&h.id, style)
        );
    }
}

/// The answer to `hearth ledger add` (and each item `ledger starter` adds).
pub(crate) fn item_added(saved: &ItemSaved, names: &Names, style: Style) -> String {
    let r = &saved.item;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Added “{}” ({}, weight {}).  {}",
        r.title,
        r.domain.label(),
        r.weight,
        dim_id(&r.id, style)
    );
    offered_lines(&mut out, &saved.offered, "with you", names, style);
    out
}

/// The answer to `hearth ledger edit`.
pub(crate) fn item_edited(saved: &ItemSaved, names: &Names, style: Style) -> String {
    let r = &saved.item;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Changed “{}”. Agree it again together with `hearth ledger agree`.  {}",
        r.title,
        dim_id(&r.id, style)
    );
    offered_lines(&mut out, &saved.offered, "where it is", names, style);
    out
}

/// The answer to `hearth ledger pause`.
pub(crate) fn item_paused(saved: &ItemSaved, _names: &Names, style: Style) -> String {
    let r = &saved.item;
    let until = r
        .paused_until
        .map(|d| format!(" until {d}"))
        .unwrap_or_default();
    format!(
        "Paused “{}”{until}: it carries no load for now. `hearth ledger resume` brings it back.  {}\n",
        r.title,
        dim_id(&r.id, style)
    )
}

/// The answer to `hearth ledger resume`.
pub(crate) fn item_resumed(saved: &ItemSaved, _names: &Names, style: Style) -> String {
    let r = &saved.item;
    format!("“{}” is active again.  {}\n", r.title, dim_id(&r.id, style))
}

/// The answer to `hearth ledger agree`.
pub(crate) fn item_agreed(saved: &ItemSaved, _names: &Names, style: Style) -> String {
    let r = &saved.item;
    format!(
        "You agreed to “{}”{}.  {}\n",
        r.title,
        if saved.agreed_by_everyone == Some(true) {
            "; you have both agreed it now"
        } else {
            "; it shows as agreed once your partner agrees too"
        },
        dim_id(&r.id, style)
    )
}

/// The answer to `hearth ledger retire`.
pub(crate) fn item_retired(saved: &ItemSaved, _names: &Names, style: Style) -> String {
    let r = &saved.item;
    format!("Retired “{}”.  {}\n", r.title, dim_id(&r.id, style))
}

/// The answer to `hearth ledger done`.
pub(crate) fn done_saved(saved: &DoneSaved, names: &Names, style: Style) -> String {
    let r = &saved.done;
    let what = match (&r.label, &saved.item_title) {
        (Some(label), _) | (None, Some(label)) => format!("“{label}”"),
        (None, None) => {
            let item = r.item.map(|i| i.to_string()).unwrap_or_default();
            format!("item {}", short_id(&item))
        }
    };
    let minutes = r.minutes.map(|m| format!(", {m} min")).unwrap_or_default();
    format!(
        "Noted: {} did {what} ({}{minutes}).  {}\n",
        names.of(&r.by),
        when_of(&r.when),
        dim_id(&r.id, style)
    )
}

/// The answer to `hearth ledger ack`.
pub(crate) fn ack_sent(r: &Acknowledgment, names: &Names, style: Style) -> String {
    let about = match r.target.kind {
        TargetKind::Item => "an item",
        TargetKind::Done => "something done",
        TargetKind::CheckIn => "a check-in",
        TargetKind::Moment => "a moment",
    };
    format!(
        "Sent {} “{}” about {about}.  {}\n",
        names.of(&r.to),
        r.kind,
        dim_id(&r.id, style)
    )
}

/// The answer to `hearth ledger handoff` and to an answer of one (accept, decline, ...).
pub(crate) fn handoff_saved(r: &Handoff, names: &Names, style: Style) -> String {
    let id = r.id.to_string();
    let short = short_id(&id);
    let mut out = String::new();
    if r.state == HandoffState::Open {
        let item = r.item.to_string();
        let _ = writeln!(
            out,
            "Proposed handing “{}” of item {} to {}.  {}",
            r.stage,
            short_id(&item),
            names.of(&r.to),
            style.dim(short)
        );
        let _ = writeln!(
            out,
            "They can answer with {} or {}.",
            style.cmd(&format!("hearth ledger accept {short}")),
            style.cmd(&format!("hearth ledger decline {short}"))
        );
    } else {
        let _ = writeln!(out, "Handoff {}.  {}", r.state, style.dim(short));
    }
    out
}

/// The answer to `hearth moment`.
pub(crate) fn moment_saved(r: &Moment, names: &Names, style: Style) -> String {
    format!(
        "Moment noted: {}, started by {} ({}).  {}\n",
        r.kind.label(),
        names.of(&r.started_by),
        when_of(&r.when),
        dim_id(&r.id, style)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::commands::data::render_log;
    use crate::commands::ledger;
    use crate::commands::lifecycle::render_status;
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};

    /// Reads a fixture into the protocol type the renderer takes.
    fn typed<T: DeserializeOwned>(v: &Value) -> T {
        serde_json::from_value(v.clone()).unwrap()
    }

    fn status(v: &Value, style: Style) -> String {
        render_status(&typed(v), style)
    }

    fn created(kind: &str, r: &Value, names: &Names, style: Style) -> String {
        match kind {
            "checkin" => checkin_saved(&typed(r), names, style),
            "reflection" => reflection_saved(&typed(r), names, style),
            other => panic!("no fixture renderer for {other}"),
        }
    }

    fn ledger_list(items: &[Value], names: &Names, style: Style) -> String {
        let items: Vec<_> = items.iter().map(typed).collect();
        ledger::ledger_list(&items, names, style)
    }

    fn ledger_show(v: &Value, names: &Names, style: Style) -> String {
        ledger::ledger_show(&typed(v), names, style)
    }

    fn log(entries: &[Value], names: &Names, style: Style) -> String {
        let entries: Vec<_> = entries.iter().map(typed).collect();
        render_log(&entries, names, style)
    }

    fn imported(v: &Value) -> String {
        crate::commands::data::imported(&typed(v))
    }

    const ROBIN: &str = "aaaaaaaa-1111-4111-8111-111111111111";
    const SAM: &str = "bbbbbbbb-2222-4222-8222-222222222222";

    /// Robin (the caller) and Sam, with ids that read as the records' UUIDs.
    fn people() -> Names {
        Names::from_status(&typed(&json!({
            "person": {"id": ROBIN, "name": "Robin"},
            "people": [{"id": ROBIN, "name": "Robin"}, {"id": SAM, "name": "Sam"}]
        })))
    }

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
            "id": "01234567-89ab-cdef-0123-456789abcdef", "author": ROBIN,
            "at": 0, "date": "1970-01-01", "utc_offset_min": 0, "battery": 20,
            "signs": {"dread": 3}, "basics": {"sleep": "no", "food": "met"},
            "visibility": "shared"
        });
        let s = created("checkin", &r, &people(), Style::plain());
        assert!(
            s.contains("battery 20, 1 sign(s) rated, shared.  01234567"),
            "{s}"
        );
        assert!(s.contains("Basics first: Sleep not met"), "{s}");
        assert!(!s.contains("Food"), "{s}");
    }

    #[test]
    fn reflection_summary_is_a_signal_not_a_verdict() {
        let r = json!({"id": "01234567-89ab-cdef-0123-456789abcdef", "author": ROBIN,
            "at": 0, "date": "1970-01-01",
            "energy": "yes", "safe": "yes", "aligned": "yes", "visibility": "private"});
        let s = created("reflection", &r, &people(), Style::plain());
        assert!(s.contains("often points to depletion"), "{s}");
        assert!(!s.to_lowercase().contains("diagnos"), "{s}");
    }

    #[test]
    fn ledger_list_shows_owner_names_per_stage() {
        let items = vec![json!({
            "id": "12345678-90ab-4cde-8f01-234567890abc", "title": "School forms",
            "domain": "parenting", "labour": "cognitive", "weight": 2,
            "invisible": true, "status": "active", "created_by": ROBIN, "created_at": 0,
            "owners": {"notice": SAM, "plan": SAM, "do": ROBIN}
        })];
        let s = ledger_list(&items, &people(), Style::plain());
        let row = s.lines().nth(1).unwrap();
        assert!(
            row.starts_with("12345678  School forms (invisible)  parenting"),
            "{row}"
        );
        assert!(row.contains("Sam     Sam   you  -"), "{row}");
        assert!(ledger_list(&[], &people(), Style::plain()).contains("ledger is empty"));
    }

    #[test]
    fn ledger_show_lists_history() {
        const ITEM: &str = "11111111-0000-4000-8000-000000000001";
        let v = json!({
            "item": {"id": ITEM, "title": "Bins", "domain": "household", "labour": "physical",
                      "weight": 1, "status": "active", "owners": {"do": SAM},
                      "good_enough": "out by 8", "created_by": SAM, "created_at": 0},
            "done": [{"id": "22222222-0000-4000-8000-000000000002", "item": ITEM, "by": SAM,
                      "at": 0, "date": "1970-01-01", "utc_offset_min": 0, "minutes": 5}],
            "handoffs": [{"id": "33333333-0000-4000-8000-000000000003", "item": ITEM,
                          "stage": "do", "from": ROBIN, "to": SAM,
                          "state": "open", "at": 0, "date": "1970-01-01", "utc_offset_min": 0}],
            "acks": []
        });
        let s = ledger_show(&v, &people(), Style::plain());
        assert!(s.contains("good enough   out by 8"), "{s}");
        assert!(s.contains("1970-01-01 00:00  Sam (5 min)"), "{s}");
        assert!(s.contains("do from you to Sam: open"), "{s}");
    }

    #[test]
    fn log_rows_show_time_kind_person_and_summary() {
        let moment = |id: &str, by: &str| json!({"id": id, "kind": "laugh", "started_by": by, "at": 0, "date": "1970-01-01"});
        const MOMENT: &str = "abcdef01-2300-4000-8000-000000000000";
        let entries = vec![json!({
            "kind": "moments", "id": MOMENT, "at": 0, "utc_offset_min": 120,
            "date": "1970-01-01", "person": "Sam", "person_id": SAM,
            "summary": "a laugh\nover tea", "record": moment(MOMENT, SAM)
        })];
        let s = log(&entries, &people(), Style::plain());
        assert_eq!(
            s.lines().nth(1).unwrap(),
            "1970-01-01 02:00  moment  Sam  a laugh over tea  abcdef01"
        );
        assert!(log(&[], &people(), Style::plain()).contains("Nothing"));
        // Without an id the name is shown as sent.
        const KIMS: &str = "cccccccc-0000-4000-8000-000000000000";
        let entries = vec![
            json!({"kind": "moments", "id": KIMS, "at": 0, "date": "1970-01-01",
            "person": "Kim", "summary": "", "record": moment(KIMS, KIMS)}),
        ];
        assert!(log(&entries, &people(), Style::plain()).contains("Kim"));
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
