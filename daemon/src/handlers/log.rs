//! `log`: the timeline of entries, filtered by kind, person and dates, with what is
//! sealed or kept shown only as its marker.

use super::*;

/// One timeline entry.
pub(super) fn entry(
    kind: &'static str,
    id: Uuid,
    when: &When,
    person: PersonId,
    summary: String,
    record: Value,
    docs: &Docs,
) -> Value {
    json!({
        "kind": kind,
        "id": id,
        "at": when.at,
        "date": when.date,
        "utc_offset_min": when.utc_offset_min,
        "person": name_of(docs, person),
        "person_id": person,
        "summary": summary,
        "record": record,
    })
}

pub(super) fn log(docs: &Docs, p: &LogParams, now: Millis) -> Result<Value, ApiError> {
    for kind in &p.kinds {
        if !RECORD_KINDS.contains(&kind.as_str()) {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                format!("`{kind}` is not a record kind"),
                format!("use one of: {}", RECORD_KINDS.join(", ")),
            ));
        }
    }
    let person = match &p.person {
        Some(who) => Some(resolve_person(docs, who)?),
        None => None,
    };
    let wants = |kind: &str| p.kinds.is_empty() || p.kinds.iter().any(|k| k == kind);
    let in_range = |date: NaiveDate| {
        p.from.is_none_or(|from| date >= from) && p.to.is_none_or(|to| date <= to)
    };
    let by = |id: PersonId| person.is_none_or(|p| p == id);
    let mut entries: Vec<(Millis, Value)> = Vec::new();
    // Answers still sealed: this person's own read as theirs with a note that they
    // wait, the partner's show only that they exist.
    let sealed = docs.sealed();
    let waiting: BTreeSet<Uuid> = sealed
        .iter()
        .filter(|e| e.author == docs.me)
        .map(|e| e.id)
        .collect();
    let partner_name = docs
        .people()
        .into_iter()
        .find(|x| x.id != docs.me)
        .map(|x| x.name)
        .unwrap_or_else(|| "your partner".into());
    // This person's answers that opened a day ago or more while the partner's answer
    // for that day is still sealed here: said plainly, without guessing why.
    let theirs_late: BTreeMap<Uuid, NaiveDate> = docs
        .waiting_for_theirs(now)
        .into_iter()
        .map(|w| (w.id, w.date))
        .collect();
    let tag = |id: Uuid, v: Visibility| {
        if waiting.contains(&id) {
            format!(" (sealed until {partner_name} answers the same day)")
        } else if let Some(date) = theirs_late.get(&id) {
            format!(
                "{} · still waiting for {partner_name}'s answer from {} to open",
                visibility_tag(v),
                date.format("%A %-d %B")
            )
        } else {
            visibility_tag(v).to_string()
        }
    };
    // The same, for scripts: on each of this person's reveal-together answers.
    let mark_late = |record: &mut Value, author: PersonId, id: Uuid, v: Visibility| {
        if author == docs.me && v == Visibility::RevealTogether {
            record["waiting_for_theirs"] = Value::Bool(theirs_late.contains_key(&id));
        }
    };
    for e in sealed.iter().filter(|e| e.author != docs.me) {
        let kind = e.collection.key();
        if wants(kind) && by(e.author) && in_range(e.date) {
            let when = When {
                at: e.at,
                date: e.date,
                utc_offset_min: 0,
            };
            let summary = format!("sealed: opens once you have answered for {} too", e.date);
            entries.push((
                e.at,
                entry(
                    kind,
                    e.id,
                    &when,
                    e.author,
                    summary,
                    transfer::sealed_marker(e),
                    docs,
                ),
            ));
        }
    }
    let items: BTreeMap<Uuid, String> = docs
        .ledger_items()
        .into_iter()
        .map(|i| (i.id, i.title))
        .collect();
    if wants("checkins") {
        for c in docs.checkins() {
            if by(c.author) && in_range(c.when.date) {
                // The ask is for the partner, so it shows where they look, not only in JSON.
                let ask = c
                    .ask
                    .as_deref()
                    .map(|a| format!(" · asks: “{a}”"))
                    .unwrap_or_default();
                let summary = format!("battery {}%{}{ask}", c.battery, tag(c.id, c.visibility));
                let mut e = entry(
                    "checkins",
                    c.id,
                    &c.when,
                    c.author,
                    summary,
                    to_json(&c),
                    docs,
                );
                mark_late(&mut e, c.author, c.id, c.visibility);
                entries.push((c.when.at, e));
            }
        }
    }
    if wants("reflections") {
        for r in docs.reflections() {
            if by(r.author) && in_range(r.when.date) {
                let summary = format!(
                    "more energy: {}, safe: {}, aligned: {}{}",
                    r.energy,
                    r.safe,
                    r.aligned,
                    tag(r.id, r.visibility)
                );
                let mut e = entry(
                    "reflections",
                    r.id,
                    &r.when,
                    r.author,
                    summary,
                    to_json(&r),
                    docs,
                );
                mark_late(&mut e, r.author, r.id, r.visibility);
                entries.push((r.when.at, e));
            }
        }
    }
    if wants("done") {
        for d in docs.done_entries() {
            if by(d.by) && in_range(d.when.date) {
                let what = d
                    .item
                    .and_then(|i| items.get(&i).cloned())
                    .or_else(|| d.label.clone())
                    .unwrap_or_default();
                entries.push((
                    d.when.at,
                    entry(
                        "done",
                        d.id,
                        &d.when,
                        d.by,
                        format!("did {what}"),
                        to_json(&d),
                        docs,
                    ),
                ));
            }
        }
    }
    if wants("acks") {
        for a in docs.acks() {
            if by(a.from) && in_range(a.when.date) {
                let summary = format!("{} to {}", a.kind, name_of(docs, a.to));
                entries.push((
                    a.when.at,
                    entry("acks", a.id, &a.when, a.from, summary, to_json(&a), docs),
                ));
            }
        }
    }
    if wants("handoffs") {
        for h in docs.handoffs() {
            if by(h.from) && in_range(h.when.date) {
                let what = items.get(&h.item).cloned().unwrap_or_default();
                let summary = format!("offered {} of {what} ({})", h.stage, h.state);
                entries.push((
                    h.when.at,
                    entry(
                        "handoffs",
                        h.id,
                        &h.when,
                        h.from,
                        summary,
                        to_json(&h),
                        docs,
                    ),
                ));
            }
        }
    }
    if wants("moments") {
        for m in docs.moments() {
            if by(m.started_by) && in_range(m.when.date) {
                entries.push((
                    m.when.at,
                    entry(
                        "moments",
                        m.id,
                        &m.when,
                        m.started_by,
                        format!("a {} moment", m.kind),
                        to_json(&m),
                        docs,
                    ),
                ));
            }
        }
    }
    if wants("ledger") {
        for i in docs.ledger_items() {
            let w = i.created();
            if by(i.created_by) && in_range(w.date) {
                let summary = format!("added {}", i.title);
                entries.push((
                    i.created_at,
                    entry("ledger", i.id, &w, i.created_by, summary, to_json(&i), docs),
                ));
            }
        }
    }
    entries.sort_by_key(|(at, _)| *at);
    if let Some(limit) = p.limit {
        let skip = entries.len().saturating_sub(limit);
        entries.drain(..skip);
    }
    Ok(Value::Array(entries.into_iter().map(|(_, v)| v).collect()))
}

pub(super) fn visibility_tag(v: Visibility) -> &'static str {
    match v {
        Visibility::Private => " (private)",
        Visibility::Shared => "",
        Visibility::RevealTogether => " (revealed together)",
    }
}
