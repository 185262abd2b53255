//! `export` and `import`: the whole household as one JSON file, and reading it back
//! with every record checked and every new record the importing person's own.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::log::SealedMarker;
use super::{Fresh, Touched, Written};
use crate::doc::{Collection, DocError, DocKind, Docs, Record, Sealable};
use crate::model::{
    Acknowledgment, CheckIn, Device, DoneEntry, Handoff, LedgerItem, Millis, Moment, Person,
    PersonId, Reflection, ValidationError, Visibility,
};

/// The export format's name.
pub const EXPORT_FORMAT: &str = "hearth-export";
/// Bumped when the export shape changes incompatibly.
pub const EXPORT_VERSION: u64 = 1;

/// How many refused records an error names; the rest are counted.
const SHOWN: usize = 5;

/// Why an import was refused. Nothing was imported in any case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file has no `hearth-export` format tag.
    #[error("this file is not a Hearth export")]
    NotAnExport,
    /// The file is of another export version.
    #[error("this export has version {version}, and this Hearth reads version {EXPORT_VERSION}")]
    Version {
        /// The file's version (0 when it has none).
        version: u64,
    },
    /// A collection of the file could not be read as records.
    #[error("the `{kind}` records could not be read: {reason}")]
    Unreadable {
        /// The collection key.
        kind: String,
        /// Why.
        reason: String,
    },
    /// The documents refused one record.
    #[error("{kind} {id}: {reason}")]
    Refused {
        /// The collection key.
        kind: &'static str,
        /// The record's id.
        id: uuid::Uuid,
        /// Why, in the document error's words.
        reason: String,
    },
    /// New records in the file speak for someone else.
    #[error("{count} record(s) in the file were written by someone else, and an import brings in only your own: {shown}{more}", count = .records.len(), shown = shown(.records).join(", "), more = more(.records))]
    Foreign {
        /// `kind id` of each.
        records: Vec<String>,
    },
    /// Records in the file have the id of different records here.
    #[error("{count} record(s) in the file have the same id as different records here: {shown}", count = .records.len(), shown = shown(.records).join(", "))]
    Conflicts {
        /// `kind id` of each.
        records: Vec<String>,
    },
}

fn shown(records: &[String]) -> Vec<&str> {
    records.iter().take(SHOWN).map(String::as_str).collect()
}

fn more(records: &[String]) -> String {
    match records.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    }
}

impl ImportError {
    /// What to do next, for an API error's hint.
    pub fn hint(&self) -> &'static str {
        match self {
            ImportError::Foreign { .. } => {
                "nothing was imported; take those records out of the file and import it again. Your partner's entries reach you from their own devices when you sync"
            }
            ImportError::Conflicts { .. } => {
                "nothing was imported; this file may come from another household, or the records were edited since it was exported"
            }
            _ => "nothing was imported; the file should come from `hearth export`",
        }
    }
}

/// The answer to `export`: everything this device can read, in the file format
/// `import` reads back. Its field names are the file format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportDocument {
    /// Always `hearth-export`.
    pub format: String,
    /// The format's version.
    pub version: u64,
    /// The records, by collection.
    pub records: ExportRecords,
}

/// The records of an export, one list per collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecords {
    /// Everyone in the household.
    pub people: Vec<Person>,
    /// The roster.
    pub devices: Vec<Device>,
    /// Check-ins this device can read.
    pub checkins: Vec<CheckIn>,
    /// Reflections this device can read.
    pub reflections: Vec<Reflection>,
    /// The ledger.
    pub ledger: Vec<LedgerItem>,
    /// What was done.
    pub done: Vec<DoneEntry>,
    /// Acknowledgments.
    pub acks: Vec<Acknowledgment>,
    /// Handoffs.
    pub handoffs: Vec<Handoff>,
    /// Moments.
    pub moments: Vec<Moment>,
    /// The partner's answers still sealed: only that they exist. This person's own are
    /// among `checkins` and `reflections`, readable.
    pub sealed: Vec<SealedMarker>,
}

/// Everything this device can read, as a file `import` reads back. The partner's
/// answers still sealed appear only as [`SealedMarker`]s; this person's own are among
/// `checkins` and `reflections`, readable.
pub fn export(docs: &Docs) -> ExportDocument {
    ExportDocument {
        format: EXPORT_FORMAT.to_string(),
        version: EXPORT_VERSION,
        records: ExportRecords {
            people: docs.people(),
            devices: docs.devices(),
            checkins: docs.checkins(),
            reflections: docs.reflections(),
            ledger: docs.ledger_items(),
            done: docs.done_entries(),
            acks: docs.acks(),
            handoffs: docs.handoffs(),
            moments: docs.moments(),
            sealed: docs
                .sealed()
                .iter()
                .filter(|e| e.author != docs.me)
                .map(SealedMarker::of)
                .collect(),
        },
    }
}

fn records<T: serde::de::DeserializeOwned>(
    data: &Value,
    kind: &str,
) -> Result<Vec<T>, ImportError> {
    match data.get("records").and_then(|r| r.get(kind)) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| ImportError::Unreadable {
            kind: kind.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Imports a `hearth export` file, all or nothing, and answers how many records came
/// in. Records already present with the same content are skipped; a record whose id
/// exists with different content is a conflict and stops the import before anything is
/// written.
///
/// Only this person's own records come in: a new record whose author (`author`, `by`,
/// `from`, `started_by`, a handoff's `answered_by`) is someone else, or a new person
/// record other than this person's, refuses the whole import. Another person's records
/// reach this device from their own devices, where their authorship can be proven.
/// This person's reveal-together answers are sealed again under keys from `fresh`.
pub fn import(
    docs: &mut Docs,
    data: &Value,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<usize>, ImportError> {
    if data.get("format").and_then(Value::as_str) != Some(EXPORT_FORMAT) {
        return Err(ImportError::NotAnExport);
    }
    let version = data.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version != EXPORT_VERSION {
        return Err(ImportError::Version { version });
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
    let mut touched = Touched::new();
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
                        $add(&mut scratch, record).map_err(|error: DocError| {
                            ImportError::Refused {
                                kind: $coll.key(),
                                id: record.id,
                                reason: error.to_string(),
                            }
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
                return import_answer(d, r, fresh, now);
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
                return import_answer(d, r, fresh, now);
            }
            d.add_reflection(r, now)
        },
        |d: &Docs, r: &Reflection| d.doc_kind_for(r.visibility)
    );
    merge!(
        done,
        Collection::Done,
        |d: &Docs, r: &DoneEntry| stored_in_household::<DoneEntry>(d, r),
        |r: &DoneEntry| [r.by],
        |d: &mut Docs, r: &DoneEntry| d.add_done(r, now),
        household
    );
    merge!(
        moments,
        Collection::Moments,
        |d: &Docs, r: &Moment| stored_in_household::<Moment>(d, r),
        |r: &Moment| [r.started_by],
        |d: &mut Docs, r: &Moment| d.add_moment(r, now),
        household
    );
    merge!(
        handoffs,
        Collection::Handoffs,
        |d: &Docs, r: &Handoff| stored_in_household::<Handoff>(d, r),
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
        |d: &Docs, r: &Acknowledgment| stored_in_household::<Acknowledgment>(d, r),
        |r: &Acknowledgment| [r.from],
        |d: &mut Docs, r: &Acknowledgment| d.add_ack(r, now),
        household
    );

    if !foreign.is_empty() {
        return Err(ImportError::Foreign { records: foreign });
    }
    if !conflicts.is_empty() {
        return Err(ImportError::Conflicts { records: conflicts });
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
    Ok(Written {
        record: added,
        touched,
    })
}

fn household<T>(_: &Docs, _: &T) -> DocKind {
    DocKind::Household
}

/// One record by its key, from whichever of the two documents holds it. A keyed read,
/// so checking a whole import file for conflicts stays linear.
fn stored<R: Record>(docs: &Docs, key: &str) -> Option<R> {
    docs.household
        .get::<R>(key)
        .ok()
        .flatten()
        .or_else(|| docs.private.get::<R>(key).ok().flatten())
}

/// The household's record with the id of `record`, if any.
fn stored_in_household<R: Record>(docs: &Docs, record: &R) -> Option<R> {
    docs.household.get::<R>(&record.key()).ok().flatten()
}

/// An answer that is here sealed, unreadable to this device, counts as already here:
/// an import must never overwrite it with text from a file.
fn sealed_here<R: Sealable + Clone>(docs: &Docs, record: &R) -> Option<R> {
    docs.household
        .contains(R::COLLECTION, &record.key())
        .then(|| record.clone())
}

/// Imports one of this person's reveal-together answers: it is sealed again under a
/// fresh key, and opens by the usual rule. Another person's answer never gets here
/// ([`import`] refuses it first); should it, it is refused again rather than written.
fn import_answer<R: Sealable>(
    docs: &mut Docs,
    record: &R,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<(), DocError> {
    if record.author() != docs.me {
        return Err(DocError::from(ValidationError::Invalid {
            field: "author",
            reason: "an import brings in only your own answers".into(),
        }));
    }
    docs.add_sealed(record, &fresh.sealing_key(), now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::doc::tests::{docs_pair, item};
    use crate::model::{MomentKind, When};
    use crate::ops::CountingFresh;
    use serde_json::json;

    const NOW: Millis = 1_767_225_600_000;

    fn moment(id: u128, by: PersonId) -> Moment {
        Moment {
            id: uuid::Uuid::from_u128(id),
            kind: MomentKind::Laugh,
            started_by: by,
            when: When::from_utc(NOW - 1000, 0),
            note: Some("the cat".into()),
        }
    }

    #[test]
    fn an_export_imports_into_a_fresh_copy_and_again_changes_nothing() {
        let (mut ada, _, ada_id, _) = docs_pair();
        ada.add_moment(&moment(7, ada_id), NOW).unwrap();
        ada.household.put(&item(ada_id, 8), NOW).unwrap();
        let file = serde_json::to_value(export(&ada)).unwrap();
        assert_eq!(file["format"], EXPORT_FORMAT);

        // A copy that knows both people (as after pairing) and nothing else.
        let (mut copy, _, _, _) = docs_pair();
        let first = import(&mut copy, &file, &mut CountingFresh(0), NOW).unwrap();
        assert_eq!(first.record, 2);
        assert_eq!(
            first.touched,
            Touched::from([(DocKind::Household, ["ledger", "moments"].into())])
        );
        let second = import(&mut copy, &file, &mut CountingFresh(0), NOW).unwrap();
        assert_eq!(second.record, 0);
        assert!(second.touched.is_empty());
    }

    #[test]
    fn records_of_someone_else_refuse_the_whole_import() {
        let (mut ada, _, ada_id, bo_id) = docs_pair();
        ada.add_moment(&moment(7, ada_id), NOW).unwrap();
        ada.add_moment(&moment(8, bo_id), NOW).unwrap();
        let file = serde_json::to_value(export(&ada)).unwrap();
        let (_, mut bo, _, _) = docs_pair();
        let heads = bo.household.heads();
        let refused = import(&mut bo, &file, &mut CountingFresh(0), NOW).unwrap_err();
        assert!(matches!(&refused, ImportError::Foreign { records } if records.len() == 1));
        assert!(refused.to_string().contains("moments "), "{refused}");
        assert_eq!(bo.household.heads(), heads, "nothing was written");
    }

    #[test]
    fn a_different_record_under_a_known_id_is_a_conflict() {
        let (mut ada, _, ada_id, _) = docs_pair();
        ada.add_moment(&moment(7, ada_id), NOW).unwrap();
        let mut file = serde_json::to_value(export(&ada)).unwrap();
        file["records"]["moments"][0]["note"] = Value::String("edited".into());
        let refused = import(&mut ada, &file, &mut CountingFresh(0), NOW).unwrap_err();
        assert!(matches!(refused, ImportError::Conflicts { .. }));
        assert!(refused.hint().contains("another household"));
    }

    #[test]
    fn a_file_that_is_not_an_export_of_this_version_is_refused() {
        let (mut ada, _, _, _) = docs_pair();
        let fresh = &mut CountingFresh(0);
        assert!(matches!(
            import(&mut ada, &json!({ "format": "other" }), fresh, NOW),
            Err(ImportError::NotAnExport)
        ));
        assert!(matches!(
            import(&mut ada, &json!({ "format": EXPORT_FORMAT }), fresh, NOW),
            Err(ImportError::Version { version: 0 })
        ));
        let unreadable =
            json!({ "format": EXPORT_FORMAT, "version": 1, "records": { "moments": 3 } });
        assert!(matches!(
            import(&mut ada, &unreadable, fresh, NOW),
            Err(ImportError::Unreadable { .. })
        ));
    }

    #[test]
    fn many_foreign_records_are_named_five_at_a_time() {
        let records: Vec<String> = (0..7).map(|n| format!("moments {n}")).collect();
        let message = ImportError::Foreign { records }.to_string();
        assert!(message.starts_with("7 record(s)"), "{message}");
        assert!(message.ends_with("moments 4 and 2 more"), "{message}");
    }
}
