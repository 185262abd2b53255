//! `export` and `import`: the whole household as one JSON file, and reading it back
//! with every record checked and every author the importing person.

use super::*;

/// The export format's name and version.
pub const EXPORT_FORMAT: &str = "hearth-export";
/// Bumped when the export shape changes incompatibly.
pub const EXPORT_VERSION: u64 = 1;

pub(super) fn export(docs: &Docs) -> Value {
    let reflections = docs.reflections();
    to_json(&ExportDocument {
        format: EXPORT_FORMAT.to_string(),
        version: EXPORT_VERSION,
        records: ExportRecords {
            people: docs.people(),
            devices: docs.devices(),
            checkins: docs.checkins(),
            reflections,
            ledger: docs.ledger_items(),
            done: docs.done_entries(),
            acks: docs.acks(),
            handoffs: docs.handoffs(),
            moments: docs.moments(),
            // The partner's answers still sealed: only that they exist. This person's
            // own are among `checkins` and `reflections`, readable.
            sealed: docs
                .sealed()
                .iter()
                .filter(|e| e.author != docs.me)
                .map(sealed_marker)
                .collect(),
        },
    })
}

pub(super) fn import_error(message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::Invalid,
        message,
        "nothing was imported; the file should come from `hearth export`",
    )
}

pub(super) fn records<T: serde::de::DeserializeOwned>(
    data: &Value,
    kind: &str,
) -> Result<Vec<T>, ApiError> {
    match data.get("records").and_then(|r| r.get(kind)) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| import_error(format!("the `{kind}` records could not be read: {e}"))),
    }
}

/// Imports a `hearth export` file, all or nothing. Records already present with the same
/// content are skipped; a record whose id exists with different content is a conflict and
/// stops the import before anything is written.
///
/// Only this person's own records come in: a new record whose author (`author`, `by`,
/// `from`, `started_by`, a handoff's `answered_by`) is someone else, or a new person
/// record other than this person's, refuses the whole import. Another person's records
/// reach this device from their own devices, where their authorship can be proven.
pub(super) fn import(docs: &mut Docs, data: &Value, now: Millis) -> Result<Outcome, ApiError> {
    if data.get("format").and_then(Value::as_str) != Some(EXPORT_FORMAT) {
        return Err(import_error("this file is not a Hearth export"));
    }
    let version = data.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version != EXPORT_VERSION {
        return Err(import_error(format!(
            "this export has version {version}, and this Hearth reads version {EXPORT_VERSION}"
        )));
    }
    let people: Vec<Person> = records(data, "people")?;
    // Answers a check-in's author kept to themselves (`kept_to_self`) go only to the
    // author's own devices: into another person's household they come without them.
    let checkins: Vec<CheckIn> = records::<CheckIn>(data, "checkins")?
        .into_iter()
        .map(|c| {
            if c.author == docs.me {
                c
            } else {
                c.split_own().0
            }
        })
        .collect();
    let reflections: Vec<Reflection> = records(data, "reflections")?;
    let ledger: Vec<LedgerItem> = records(data, "ledger")?;
    let done: Vec<DoneEntry> = records(data, "done")?;
    let acks: Vec<Acknowledgment> = records(data, "acks")?;
    let handoffs: Vec<Handoff> = records(data, "handoffs")?;
    let moments: Vec<Moment> = records(data, "moments")?;

    // Work on a copy, so that a failure half way leaves the real documents untouched.
    let mut scratch = docs.clone();
    let mut conflicts = Vec::new();
    let mut foreign = Vec::new();
    let mut added = 0usize;
    let mut touched: BTreeMap<DocKind, BTreeSet<&'static str>> = BTreeMap::new();
    let me = docs.me;

    // `$authors` names the people a record speaks for. A record that would be written
    // is checked against them before it is written, and one that speaks for anyone
    // else is set aside: the import is then refused whole and the scratch copy dropped.
    macro_rules! merge {
        ($list:expr, $coll:expr, $existing:expr, $authors:expr, $add:expr, $doc:expr) => {
            for record in &$list {
                match $existing(&scratch, record) {
                    Some(current) if current == *record => {}
                    Some(_) => conflicts.push(format!("{} {}", $coll.key(), record.id)),
                    None if $authors(record).into_iter().any(|p: PersonId| p != me) => {
                        foreign.push(format!("{} {}", $coll.key(), record.id));
                    }
                    None => {
                        $add(&mut scratch, record).map_err(|e: DocError| {
                            import_error(format!("{} {}: {}", $coll.key(), record.id, e))
                        })?;
                        touched
                            .entry($doc(&scratch, record))
                            .or_default()
                            .insert($coll.key());
                        added += 1;
                    }
                }
            }
        };
    }

    merge!(
        people,
        Collection::People,
        |d: &Docs, r: &Person| d.people().into_iter().find(|p| p.id == r.id),
        |r: &Person| [r.id],
        |d: &mut Docs, r: &Person| d.add_person(r, now),
        household
    );
    merge!(
        ledger,
        Collection::Ledger,
        |d: &Docs, r: &LedgerItem| d.ledger_item(r.id).ok(),
        // Ledger items are the household's: either person may add them.
        |_: &LedgerItem| -> [PersonId; 0] { [] },
        |d: &mut Docs, r: &LedgerItem| {
            r.validate()?;
            d.household.put(r, now)
        },
        household
    );
    merge!(
        checkins,
        Collection::CheckIns,
        |d: &Docs, r: &CheckIn| stored::<CheckIn>(d, &r.id.to_string())
            .map(|c| d.with_own(c))
            .or_else(|| sealed_here(d, r)),
        |r: &CheckIn| [r.author],
        |d: &mut Docs, r: &CheckIn| {
            if r.visibility == Visibility::Private && r.author != d.me {
                // Another person's private entry cannot be in this device's export.
                return Err(DocError::from(ValidationError::Invalid {
                    field: "visibility",
                    reason: "a private check-in of someone else cannot be imported here".into(),
                }));
            }
            if r.visibility == Visibility::RevealTogether {
                return import_answer(d, r, now);
            }
            d.add_checkin(r, now)
        },
        |d: &Docs, r: &CheckIn| d.doc_kind_for(r.visibility)
    );
    merge!(
        reflections,
        Collection::Reflections,
        |d: &Docs, r: &Reflection| stored(d, &r.id.to_string()).or_else(|| sealed_here(d, r)),
        |r: &Reflection| [r.author],
        |d: &mut Docs, r: &Reflection| {
            if r.visibility == Visibility::Private && r.author != d.me {
                return Err(DocError::from(ValidationError::Invalid {
                    field: "visibility",
                    reason: "a private reflection of someone else cannot be imported here".into(),
                }));
            }
            if r.visibility == Visibility::RevealTogether {
                return import_answer(d, r, now);
            }
            d.add_reflection(r, now)
        },
        |d: &Docs, r: &Reflection| d.doc_kind_for(r.visibility)
    );
    merge!(
        done,
        Collection::Done,
        |d: &Docs, r: &DoneEntry| d
            .household
            .get::<DoneEntry>(&r.id.to_string())
            .ok()
            .flatten(),
        |r: &DoneEntry| [r.by],
        |d: &mut Docs, r: &DoneEntry| d.add_done(r, now),
        household
    );
    merge!(
        moments,
        Collection::Moments,
        |d: &Docs, r: &Moment| d.household.get::<Moment>(&r.id.to_string()).ok().flatten(),
        |r: &Moment| [r.started_by],
        |d: &mut Docs, r: &Moment| d.add_moment(r, now),
        household
    );
    merge!(
        handoffs,
        Collection::Handoffs,
        |d: &Docs, r: &Handoff| d.household.get::<Handoff>(&r.id.to_string()).ok().flatten(),
        // An answer to a handoff is the answerer's, so it counts as theirs too.
        |r: &Handoff| std::iter::once(r.from).chain(r.answered_by),
        |d: &mut Docs, r: &Handoff| {
            r.validate()?;
            if d.ledger_item(r.item).is_err() {
                return Err(DocError::from(ValidationError::UnknownReference {
                    field: "item",
                    id: r.item.to_string(),
                }));
            }
            d.household.put(r, now)
        },
        household
    );
    merge!(
        acks,
        Collection::Acks,
        |d: &Docs, r: &Acknowledgment| d
            .household
            .get::<Acknowledgment>(&r.id.to_string())
            .ok()
            .flatten(),
        |r: &Acknowledgment| [r.from],
        |d: &mut Docs, r: &Acknowledgment| d.add_ack(r, now),
        household
    );

    if !foreign.is_empty() {
        let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
        let more = match foreign.len() - shown.len() {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!(
                "{} record(s) in the file were written by someone else, and an import brings in only your own: {}{more}",
                foreign.len(),
                shown.join(", ")
            ),
            "nothing was imported; take those records out of the file and import it again. Your partner's entries reach you from their own devices when you sync",
        ));
    }
    if !conflicts.is_empty() {
        let shown: Vec<&String> = conflicts.iter().take(5).collect();
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!(
                "{} record(s) in the file have the same id as different records here: {}",
                conflicts.len(),
                shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "nothing was imported; this file may come from another household, or the records were edited since it was exported",
        ));
    }
    // This person's own reveal-together answers keep their new keys in the private
    // document, and their kept answers (`kept_to_self`) go there too, so it must be made
    // durable with the household.
    let sealed_own = checkins.iter().any(|c| {
        c.author == me && (c.visibility == Visibility::RevealTogether || !c.kept_to_self.is_empty())
    }) || reflections
        .iter()
        .any(|r| r.visibility == Visibility::RevealTogether && r.author == me);
    if sealed_own && touched.contains_key(&DocKind::Household) {
        touched.entry(scratch.private.kind()).or_default();
    }
    *docs = scratch;
    Ok(Outcome {
        value: to_json(&Imported {
            imported: added as u64,
        }),
        touched,
    })
}

pub(super) fn household<T>(_: &Docs, _: &T) -> DocKind {
    DocKind::Household
}

/// An answer that is here sealed, unreadable to this device, counts as already here:
/// an import must never overwrite it with text from a file.
/// One record by its key, from whichever of the two documents holds it. A keyed read,
/// so checking a whole import file for conflicts stays linear.
pub(super) fn stored<R: hearth_core::doc::Record>(docs: &Docs, key: &str) -> Option<R> {
    docs.household
        .get::<R>(key)
        .ok()
        .flatten()
        .or_else(|| docs.private.get::<R>(key).ok().flatten())
}

pub(super) fn sealed_here<R: Sealable + Clone>(docs: &Docs, record: &R) -> Option<R> {
    docs.household
        .contains(R::COLLECTION, &record.key())
        .then(|| record.clone())
}

/// Imports one of this person's reveal-together answers: it is sealed again under a
/// fresh key, and opens by the usual rule. Another person's answer never gets here
/// ([`import`] refuses it first); should it, it is refused again rather than written.
pub(super) fn import_answer<R: Sealable>(
    docs: &mut Docs,
    record: &R,
    now: Millis,
) -> Result<(), DocError> {
    if record.author() != docs.me {
        return Err(DocError::from(ValidationError::Invalid {
            field: "author",
            reason: "an import brings in only your own answers".into(),
        }));
    }
    docs.add_sealed(record, &age::x25519::Identity::generate(), now)
}
