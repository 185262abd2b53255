//! Human output: tables, short summaries and the plain words for every stable key.
//!
//! Renderers take the daemon's JSON results and return finished text, so they are pure
//! and tested on fixed inputs. They read fields leniently: a field this build does not
//! know is ignored, and a missing one is left out rather than failing the command. They
//! must not call the daemon or print; the commands do that. Wording is warm and plain,
//! and describes signals, never verdicts.

use std::collections::HashMap;
use std::fmt::Write as _;

use hearth_core::model::{Basic, Domain, MomentKind, Stage};
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
    by_id: HashMap<String, String>,
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

    fn of(&self, v: &Value) -> String {
        v.as_str().map(|id| self.name(id)).unwrap_or_default()
    }
}

/// Local wall-clock time of an entry: its instant shifted by the author's offset.
pub(crate) fn local_time(at_ms: i64, utc_offset_min: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms + utc_offset_min * 60_000)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "?".into())
}

fn when_of(record: &Value) -> String {
    match record["at"].as_i64() {
        Some(at) => local_time(at, record["utc_offset_min"].as_i64().unwrap_or(0)),
        None => record["date"].as_str().unwrap_or_default().to_string(),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
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

/// `hearth status`.
pub(crate) fn status(s: &Value, style: Style) -> String {
    let mut out = String::new();
    let label = |l: &str| style.dim(&format!("{l:<15}"));
    let _ = writeln!(out, "{}{}", label("Data directory"), text(s, "data_dir"));
    let state = text(s, "state");
    let state_words = match state {
        "ready" => style.good("ready"),
        "locked" => style.warn("locked until the passphrase is given"),
        "uninitialized" => style.warn("not set up yet"),
        other => other.to_string(),
    };
    let _ = writeln!(
        out,
        "{}running (pid {}), {state_words}",
        label("Daemon"),
        s["pid"]
    );
    if state == "uninitialized" {
        let _ = writeln!(
            out,
            "\nTo begin, choose the name your partner will see: {}",
            style.cmd("hearth init --name NAME")
        );
        return out;
    }
    if let Some(name) = s["person"]["name"].as_str() {
        let device = text(s, "device_id");
        let device = if device.is_empty() {
            String::new()
        } else {
            format!("  {}", style.dim(&format!("device {device}")))
        };
        let _ = writeln!(out, "{}{name}{device}", label("You"));
    }
    let docs = s["documents"].as_array().cloned().unwrap_or_default();
    // The private document's id carries the person's id; the word is enough here.
    let doc_name = |d: &Value| -> String {
        let id = text(d, "id");
        if id.starts_with("private") {
            "private".into()
        } else {
            id.to_string()
        }
    };
    let id_width = docs
        .iter()
        .map(|d| doc_name(d).chars().count())
        .max()
        .unwrap_or(0);
    let mut first = true;
    for doc in &docs {
        let mut counts: Vec<String> = doc["records"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_u64().filter(|n| *n > 0).map(|n| format!("{n} {k}")))
            .collect();
        if counts.is_empty() {
            counts.push("empty".into());
        }
        let _ = writeln!(
            out,
            "{}{:<id_width$}  {:>9}  {}",
            label(if first { "Documents" } else { "" }),
            doc_name(doc),
            bytes(doc["disk_bytes"].as_u64().unwrap_or(0)),
            style.dim(&counts.join(", "))
        );
        first = false;
        if let Some(q) = doc["quarantined"].as_array().filter(|q| !q.is_empty()) {
            let _ = writeln!(
                out,
                "{}{}",
                label(""),
                style.warn(&format!(
                    "{} file(s) could not be read and were set aside in quarantine/; a partner's device can bring their changes back",
                    q.len()
                ))
            );
        }
    }
    let peers = s["peers"].as_array().cloned().unwrap_or_default();
    let sharing_notes = sharing(s, style);
    let ended = s["people"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["left_at"].is_i64());
    if peers.is_empty() && !ended {
        let _ = writeln!(
            out,
            "{}no partner yet; everything stays on this device until you pair",
            label("Partner")
        );
    } else {
        let mut first = true;
        for p in &peers {
            let connected = if p["refuses_this_device"].as_bool().unwrap_or(false) {
                style.dim("no longer accepts this device")
            } else if p["on_hold"].as_bool().unwrap_or(false) {
                style.dim("connected, sharing on hold")
            } else if p["connected"].as_bool().unwrap_or(false) {
                style.good("connected")
            } else {
                let last = p["last_sync"]
                    .as_i64()
                    .map(|t| format!("last synced {}", local_time(t, local_offset_min())))
                    .unwrap_or_else(|| "not synced yet".into());
                style.dim(&last)
            };
            let _ = writeln!(
                out,
                "{}{} ({})  {connected}",
                label(if first { "Devices" } else { "" }),
                text(p, "name"),
                text(p, "person"),
            );
            first = false;
        }
    }
    out.push_str(&sharing_notes);
    out.push_str(&refused(s, style));
    out.push_str(&unproven_changes(&peers, style));
    out
}

/// Changes a peer sent that were held or refused because their author could not be
/// shown to be allowed to write them. Counts and plain reasons, never content.
fn unproven_changes(peers: &[Value], style: Style) -> String {
    let mut out = String::new();
    for p in peers {
        let held = p["held_changes"].as_u64().unwrap_or(0);
        let refused = p["refused_changes"].as_u64().unwrap_or(0);
        if held > 0 {
            let _ = writeln!(
                out,
                "{}",
                style.dim(&format!(
                    "Waiting: {held} change(s) from {} ({}) wait until the device that wrote them is confirmed.",
                    text(p, "name"),
                    text(p, "person"),
                ))
            );
        }
        if refused > 0 {
            let reasons: Vec<&str> = p["refused_because"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let _ = writeln!(
                out,
                "{}",
                style.warn(&format!(
                    "Not accepted: {refused} change(s) from {} ({}) touched entries that were not theirs to change ({}). Nothing here changed because of them.",
                    text(p, "name"),
                    text(p, "person"),
                    if reasons.is_empty() { "no reason given".to_string() } else { reasons.join("; ") },
                ))
            );
        }
    }
    out
}

/// Roster entries and removals this device did not accept, said plainly: someone's
/// changes asked for something their signatures do not back, and nothing changed.
fn refused(s: &Value, style: Style) -> String {
    let mut out = String::new();
    let refused = s["refused"].as_array().cloned().unwrap_or_default();
    if refused.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{}",
        style.warn(&format!(
            "Not accepted: {} change(s) to the list of devices that this device could not verify. Nothing about who can sync changed.",
            refused.len()
        ))
    );
    for r in &refused {
        let what = if text(r, "what") == "removal" {
            "a removal of device"
        } else {
            "device"
        };
        let from = r["sent_by"]
            .as_str()
            .map(|by| format!(", from {}", short_device_ids(by)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {what} {}: {}{from}",
            short_device_ids(text(r, "device_id")),
            text(r, "reason"),
        );
    }
    out
}

/// The first groups of each device id in `id` (one id, or several joined by commas).
fn short_device_ids(id: &str) -> String {
    if id.contains('-') && id.len() > 14 {
        id.split(',')
            .map(|one| one.trim().split('-').take(3).collect::<Vec<_>>().join("-"))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        id.to_string()
    }
}

/// The pause and leaving lines of `status`, worded gently: a pause is a breather that
/// either partner may take, and nobody is to blame for it.
pub(crate) fn sharing(s: &Value, style: Style) -> String {
    let mut out = String::new();
    let me = s["person"]["id"].as_str().unwrap_or_default();
    let people = s["people"].as_array().cloned().unwrap_or_default();
    let others: Vec<&str> = people
        .iter()
        .filter(|p| text(p, "id") != me)
        .map(|p| text(p, "name"))
        .collect();
    let partner = if others.is_empty() {
        "your partner".to_string()
    } else {
        others.join(" and ")
    };
    let at = |v: &Value| -> String {
        v.as_i64()
            .map(|t| local_time(t, local_offset_min()))
            .unwrap_or_default()
    };
    for p in &people {
        let mine = text(p, "id") == me;
        let name = text(p, "name");
        if p["left_at"].is_i64() {
            let when = at(&p["left_at"]);
            let line = if mine {
                format!("You ended sharing with {partner} on {when}. Your copy of everything and your private entries stay on your devices; `hearth export` still writes them out.")
            } else {
                format!("{name} ended sharing on {when}. Everything you had stays here with you; `hearth export` still writes it out.")
            };
            let _ = writeln!(out, "{}{line}", style.dim(&format!("{:<15}", "Sharing")));
            continue;
        }
        if p["paused"].is_object() {
            let until = match p["paused"]["until"].as_i64() {
                Some(t) => format!("until {}", at(&Value::from(t))),
                None if mine => "until you resume".to_string(),
                None => "for now".to_string(),
            };
            let line = if mine {
                format!("paused with {partner} {until}. Your own devices keep syncing; what you write reaches {partner} after the pause ({}).", style.cmd("hearth resume"))
            } else {
                format!("{name} is taking a pause from sharing {until}. What you write stays safe here and reaches {name} when the pause ends.")
            };
            let _ = writeln!(out, "{}{line}", style.dim(&format!("{:<15}", "Sharing")));
        }
    }
    out
}

/// This machine's current UTC offset in minutes, for showing daemon-side instants.
pub(crate) fn local_offset_min() -> i64 {
    use chrono::Offset;
    i64::from(chrono::Local::now().offset().fix().local_minus_utc() / 60)
}

/// For a reveal-together answer: whether it waits for the partner or opens now.
fn sealed_note(out: &mut String, r: &Value) {
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

/// "For you" (`hearth today`, and the top of `hearth status` on a terminal): a few lines,
/// each with the one command that answers it.
pub(crate) fn for_you(v: &Value, style: Style) -> String {
    let name = |id: &Value| {
        id.as_str()
            .and_then(|id| v["names"][id].as_str())
            .unwrap_or("your partner")
            .to_string()
    };
    let list = |key: &str| v[key].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.bold("For you"));
    let mut quiet = true;
    for ask in list("asks") {
        quiet = false;
        let id = short_id(text(&ask, "checkin"));
        let _ = writeln!(
            out,
            "  {} asks: “{}”",
            name(&ask["from"]),
            text(&ask, "ask")
        );
        let _ = writeln!(
            out,
            "    {}",
            style.dim(&format!("answer: hearth reply {id} \"...\""))
        );
    }
    for h in list("handoffs") {
        quiet = false;
        let id = short_id(text(&h, "id"));
        let _ = writeln!(
            out,
            "  {} offers you the {} stage of an item{}",
            name(&h["from"]),
            text(&h, "stage"),
            h["note"]
                .as_str()
                .map(|n| format!(": “{n}”"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "    {}",
            style.dim(&format!(
                "answer: hearth ledger accept {id} · hearth ledger counter {id} \"...\" · hearth ledger decline {id}"
            ))
        );
    }
    for a in list("replies") {
        quiet = false;
        let _ = writeln!(
            out,
            "  {} replied to your ask: “{}”",
            name(&a["from"]),
            text(&a, "note")
        );
    }
    for a in list("received") {
        quiet = false;
        let what = match text(&a, "kind") {
            "thanks" => "thanked you",
            "repair" => "reached out to make things right",
            _ => "saw what you did",
        };
        let note = a["note"]
            .as_str()
            .map(|n| format!(": “{n}”"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {} {what}{note}", name(&a["from"]));
    }
    for item in list("paused_due") {
        quiet = false;
        let id = short_id(text(&item, "id"));
        let _ = writeln!(
            out,
            "  “{}” was paused until {}: look at it again together?",
            text(&item, "title"),
            text(&item, "paused_until")
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
    if v["checked_in_today"].as_bool() == Some(true) {
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
pub(crate) fn together_step(n: usize, step: &Value, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{}",
        style.bold(&format!("{n}. {}", text(step, "title")))
    );
    let _ = writeln!(out, "   {}", text(step, "text"));
    if let Some(prompt) = step["prompt"].as_str() {
        let _ = writeln!(out, "   {} {prompt}", style.dim("To start:"));
    }
    out
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

fn owner_cell(item: &Value, stage: Stage, names: &Names) -> String {
    match item["owners"][stage.key()].as_str() {
        Some(id) => names.name(id),
        None => "-".into(),
    }
}

/// `hearth ledger list`.
pub(crate) fn ledger_list(items: &[Value], names: &Names, style: Style) -> String {
    if items.is_empty() {
        return format!(
            "The ledger is empty. Add what the household carries with {}\n",
            style.cmd("hearth ledger add TITLE --domain household")
        );
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let mut title = text(item, "title").to_string();
            if item["invisible"].as_bool().unwrap_or(false) {
                title.push_str(" (invisible)");
            }
            vec![
                short_id(text(item, "id")).to_string(),
                title,
                text(item, "domain").to_string(),
                item["weight"].to_string(),
                owner_cell(item, Stage::Notice, names),
                owner_cell(item, Stage::Plan, names),
                owner_cell(item, Stage::Do, names),
                owner_cell(item, Stage::FollowUp, names),
                text(item, "status").to_string(),
            ]
        })
        .collect();
    table(
        style,
        &[
            "ID",
            "TITLE",
            "DOMAIN",
            "WEIGHT",
            "NOTICE",
            "PLAN",
            "DO",
            "FOLLOW-UP",
            "STATUS",
        ],
        &rows,
    )
}

/// `hearth ledger show`.
pub(crate) fn ledger_show(v: &Value, names: &Names, style: Style) -> String {
    let item = &v["item"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {}",
        style.bold(text(item, "title")),
        style.dim(text(item, "id"))
    );
    let field = |out: &mut String, name: &str, value: String| {
        if !value.is_empty() {
            let _ = writeln!(out, "  {}{value}", style.dim(&format!("{name:<14}")));
        }
    };
    let mut kind = format!("{}, {}", text(item, "domain"), text(item, "labour"));
    if item["invisible"].as_bool().unwrap_or(false) {
        kind.push_str(", invisible");
    }
    field(&mut out, "kind", kind);
    field(&mut out, "weight", item["weight"].to_string());
    field(&mut out, "status", text(item, "status").to_string());
    let mut rhythm = Vec::new();
    if let Some(c) = item["cadence"].as_str() {
        rhythm.push(c.to_string());
    }
    if let Some(m) = item["minutes_per_week"].as_u64() {
        rhythm.push(format!("about {m} min a week"));
    }
    field(&mut out, "rhythm", rhythm.join(", "));
    for stage in Stage::ALL {
        field(&mut out, stage.key(), owner_cell(item, *stage, names));
    }
    field(
        &mut out,
        "good enough",
        text(item, "good_enough").to_string(),
    );
    // Agreed once everyone in the household has agreed (`hearth ledger agree`).
    let agreed: Vec<&str> = item["agreed_by"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let everyone =
        !names.by_id.is_empty() && names.by_id.keys().all(|p| agreed.contains(&p.as_str()));
    let agreement = if everyone && names.by_id.len() > 1 {
        "agreed by both of you".to_string()
    } else {
        let by: Vec<String> = agreed.iter().map(|p| names.name(p)).collect();
        format!(
            "agreed by {} so far (`hearth ledger agree` to add yours)",
            if by.is_empty() {
                "nobody".to_string()
            } else {
                by.join(" and ")
            }
        )
    };
    field(&mut out, "agreed", agreement);

    let done = v["done"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "\n{}", style.bold("Done"));
    if done.is_empty() {
        let _ = writeln!(out, "  nothing recorded yet");
    }
    for d in &done {
        let minutes = d["minutes"]
            .as_u64()
            .map(|m| format!(" ({m} min)"))
            .unwrap_or_default();
        let note = d["note"]
            .as_str()
            .map(|n| format!(" — {n}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  {}{minutes}{note}  {}",
            when_of(d),
            names.of(&d["by"]),
            style.dim(short_id(text(d, "id")))
        );
    }
    let handoffs = v["handoffs"].as_array().cloned().unwrap_or_default();
    if !handoffs.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Handoffs"));
        for h in &handoffs {
            let counter = h["counter"]
                .as_str()
                .map(|c| format!(" — counter: {c}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  {} from {} to {}: {}{counter}  {}",
                when_of(h),
                text(h, "stage"),
                names.of(&h["from"]),
                names.of(&h["to"]),
                text(h, "state"),
                style.dim(short_id(text(h, "id")))
            );
        }
    }
    let acks = v["acks"].as_array().cloned().unwrap_or_default();
    if !acks.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Acknowledgments"));
        for a in &acks {
            let note = a["note"]
                .as_str()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  {} to {}: {}{note}",
                when_of(a),
                names.of(&a["from"]),
                names.of(&a["to"]),
                text(a, "kind")
            );
        }
    }
    out
}

/// A record kind of the log (`checkins`, ...) as one word for a table cell.
fn kind_label(kind: &str) -> &str {
    match kind {
        "checkins" => "check-in",
        "reflections" => "reflection",
        "ledger" => "item",
        "done" => "done",
        "acks" => "ack",
        "handoffs" => "handoff",
        "moments" => "moment",
        other => other,
    }
}

/// `hearth log`: one row per entry, with the local time it happened.
pub(crate) fn log(entries: &[Value], names: &Names, style: Style) -> String {
    if entries.is_empty() {
        return "Nothing in this range yet.\n".into();
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            // The daemon sends the name and the id; the id lets us say "you".
            let person = match e["person_id"].as_str() {
                Some(id) => names.name(id),
                None => text(e, "person").to_string(),
            };
            vec![
                when_of(e),
                kind_label(text(e, "kind")).to_string(),
                person,
                text(e, "summary").replace(['\n', '\r'], " "),
                short_id(text(e, "id")).to_string(),
            ]
        })
        .collect();
    table(style, &["WHEN", "KIND", "WHO", "WHAT", "ID"], &rows)
}

/// `hearth import`: how many records were new.
pub(crate) fn imported(v: &Value) -> String {
    match v["imported"].as_u64() {
        Some(0) => "Nothing new: every record in the file is already here.\n".into(),
        Some(n) => {
            format!("Imported {n} new record(s); records already here were left as they were.\n")
        }
        None => "Import merged.\n".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
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
