//! The document owner's answers: what `checkin.add`, `ledger.*`, `log`, `today`,
//! `pause`, `bundle.*`, `pair.*` and the rest send back on success.
//!
//! The daemon builds these and the CLI reads them, so a field renamed on one side fails
//! to compile on the other. Records are core's model types, flattened, with the few
//! extra fields an answer adds beside them. The daemon turns each answer into a
//! `serde_json::Value` before it goes out, whose maps are sorted, so the order of fields
//! here does not change the bytes on the wire.

use std::collections::BTreeMap;

use hearth_core::model::{CheckIn, Handoff, LedgerItem, Millis, Reflection};
use hearth_core::today::ForYou;
use serde::{Deserialize, Serialize};

/// A check-in or reflection just written (`checkin.add`, `reflect.add`), with what the
/// answer adds for its author alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrySaved<R> {
    /// The record as written.
    #[serde(flatten)]
    pub record: R,
    /// Words of support, when the author answered that they do not feel safe. Only in
    /// the author's own answer: it never travels to the partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<String>,
    /// For a reveal-together entry: whether it waits for the partner's answer of the
    /// same day (`false`: both open now). Absent for other visibilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for_partner: Option<bool>,
}

/// The answer to `checkin.add`.
pub type CheckinSaved = EntrySaved<CheckIn>;
/// The answer to `reflect.add`.
pub type ReflectionSaved = EntrySaved<Reflection>;

impl<R> EntrySaved<R> {
    /// A plain entry: no support words, not sealed.
    pub fn plain(record: R) -> EntrySaved<R> {
        EntrySaved {
            record,
            support: None,
            waiting_for_partner: None,
        }
    }
}

/// A ledger item as a write left it (`ledger.add`, `edit`, `pause`, `resume`, `agree`,
/// `retire`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSaved {
    /// The item.
    #[serde(flatten)]
    pub item: LedgerItem,
    /// Stages put on the partner, offered to them as handoffs rather than assigned
    /// (`add` and `edit`); absent when none were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offered: Vec<Handoff>,
    /// After `agree`: whether everyone in the household has now agreed the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreed_by_everyone: Option<bool>,
}

impl ItemSaved {
    /// An item with nothing beside it.
    pub fn plain(item: LedgerItem) -> ItemSaved {
        ItemSaved {
            item,
            offered: Vec::new(),
            agreed_by_everyone: None,
        }
    }
}

/// The answer to `ledger.done`: the entry and its item's title (core builds it).
pub use hearth_core::ops::records::Done as DoneSaved;

/// The answer to `ledger.show`: one item and its history (core builds it).
pub use hearth_core::ops::records::ItemHistory;

/// The `log` timeline's entries and the marker of a sealed answer (core builds them).
pub use hearth_core::ops::log::{LogEntry, LogRecord, SealedMarker};

/// The answer to `today`: what waits for this person, and everyone's names by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Today {
    /// The view.
    #[serde(flatten)]
    pub view: ForYou,
    /// Everyone's name, by person id.
    pub names: BTreeMap<String, String>,
}

/// The answer to `export`, the file `import` reads back (core builds it).
pub use hearth_core::ops::transfer::{ExportDocument, ExportRecords};

/// The answer to `import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// How many records were new.
    pub imported: u64,
}

/// The answer to `pause`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    /// Always true.
    pub paused: bool,
    /// When the pause began.
    pub since: Millis,
    /// When it ends by itself; `null` until `resume`.
    pub until: Option<Millis>,
    /// The partner's names: whom sharing is paused with.
    pub with: Vec<String>,
}

/// The answer to `resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumed {
    /// Whether a pause was holding and has now ended.
    pub resumed: bool,
    /// The partner's names; absent when there was no pause to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Vec<String>>,
}

/// The answer to `leave`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// Always true.
    pub left: bool,
    /// This person had already left; nothing was done.
    pub already: bool,
    /// When they left, Unix ms.
    pub at: Millis,
    /// The partner's names; absent when they had already left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Vec<String>>,
}

/// The answers to `bundle.export` and `bundle.import` (core builds them).
pub use hearth_core::ops::bundle::{BundleDevice, BundleExported, BundleImported};

/// The answer to `pair.wait`: who joined with the invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteUsed {
    /// Always true.
    pub paired: bool,
    /// Whom the code admitted: `partner` or `own-device`.
    pub role: String,
    /// The joining person's name.
    pub name: String,
    /// The joining device's name.
    pub device_name: String,
    /// The joining device's id.
    pub device_id: String,
}

/// This device, as `pair.join` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThisDevice {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// The answer to `pair.join`: whose household this device joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// Always true.
    pub paired: bool,
    /// As whom it joined: `partner` or `own-device`.
    pub role: String,
    /// The inviting person's name.
    pub name: String,
    /// The inviting device's id.
    pub device_id: String,
    /// This device.
    pub this_device: ThisDevice,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! Each typed answer against the `json!` the daemon built before it was typed: the
    //! bytes a client reads must not change.

    use std::collections::{BTreeMap, BTreeSet};

    use hearth_core::model::{
        Basic, BasicLevel, Domain, DoneEntry, HandoffState, ItemStatus, Labour, Moment, MomentKind,
        Owners, Stage, Visibility, When,
    };
    use serde_json::{json, Value};
    use uuid::Uuid;

    use super::*;

    const ME: Uuid = Uuid::from_u128(0xa);
    const PARTNER: Uuid = Uuid::from_u128(0xb);

    fn when() -> When {
        When::from_utc(1_700_000_000_000, 60)
    }

    fn checkin() -> CheckIn {
        CheckIn {
            id: Uuid::from_u128(1),
            author: ME,
            when: when(),
            battery: 30,
            signs: BTreeMap::new(),
            body: BTreeSet::new(),
            basics: BTreeMap::from([(Basic::Safety, BasicLevel::No)]),
            note: None,
            ask: Some("tea?".into()),
            visibility: Visibility::RevealTogether,
            kept_to_self: BTreeSet::new(),
        }
    }

    fn item() -> LedgerItem {
        LedgerItem {
            id: Uuid::from_u128(2),
            title: "Bins".into(),
            domain: Domain::Household,
            labour: Labour::Physical,
            invisible: false,
            owners: Owners::all(ME),
            cadence: None,
            minutes_per_week: None,
            weight: 2,
            good_enough: String::new(),
            status: ItemStatus::Active,
            agreed_by: BTreeSet::from([ME]),
            agreed_at: Some(5),
            created_by: ME,
            created_at: 5,
            created_utc_offset_min: 60,
            paused_until: None,
        }
    }

    fn handoff() -> Handoff {
        Handoff {
            id: Uuid::from_u128(3),
            item: Uuid::from_u128(2),
            stage: Stage::Do,
            from: ME,
            to: PARTNER,
            when: when(),
            note: None,
            state: HandoffState::Open,
            answered_by: None,
            answered_at: None,
            counter: None,
        }
    }

    /// What a client reads: the answer as a `Value` (as the daemon sends it) and as text.
    fn same_wire<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        typed: &T,
        before: Value,
    ) {
        let sent = crate::encode_answer(typed).unwrap();
        assert_eq!(sent, before);
        assert_eq!(
            serde_json::to_string(&sent).unwrap(),
            serde_json::to_string(&before).unwrap()
        );
        let read: T = serde_json::from_value(sent).unwrap();
        assert_eq!(&read, typed, "reads back as it was sent");
    }

    #[test]
    fn a_sealed_checkin_keeps_its_support_and_waiting_fields() {
        let record = checkin();
        let mut before = serde_json::to_value(&record).unwrap();
        before["support"] = Value::String("you are not alone".into());
        before["waiting_for_partner"] = Value::Bool(true);
        let saved = EntrySaved {
            record,
            support: Some("you are not alone".into()),
            waiting_for_partner: Some(true),
        };
        same_wire(&saved, before);
        // A plain one adds nothing beside the record.
        let plain = EntrySaved::plain(checkin());
        same_wire(&plain, serde_json::to_value(checkin()).unwrap());
    }

    #[test]
    fn items_add_offers_and_agreement_only_when_there_are_some() {
        same_wire(
            &ItemSaved::plain(item()),
            serde_json::to_value(item()).unwrap(),
        );
        let mut before = serde_json::to_value(item()).unwrap();
        before["offered"] = serde_json::to_value([handoff()]).unwrap();
        let offered = ItemSaved {
            offered: vec![handoff()],
            ..ItemSaved::plain(item())
        };
        same_wire(&offered, before);
        let mut before = serde_json::to_value(item()).unwrap();
        before["agreed_by_everyone"] = Value::Bool(false);
        let agreed = ItemSaved {
            agreed_by_everyone: Some(false),
            ..ItemSaved::plain(item())
        };
        same_wire(&agreed, before);
    }

    #[test]
    fn ledger_show_and_done_keep_their_shape() {
        let done = DoneEntry {
            id: Uuid::from_u128(4),
            item: Some(Uuid::from_u128(2)),
            label: None,
            by: PARTNER,
            when: when(),
            minutes: Some(5),
            note: None,
        };
        let mut before = serde_json::to_value(&done).unwrap();
        before["item_title"] = Value::String("Bins".into());
        let saved = DoneSaved {
            done: done.clone(),
            item_title: Some("Bins".into()),
        };
        same_wire(&saved, before);
        let history = ItemHistory {
            acks: Vec::new(),
            done: vec![done.clone()],
            handoffs: vec![handoff()],
            item: item(),
        };
        let before = json!({ "item": item(), "done": [done], "handoffs": [handoff()], "acks": [] });
        same_wire(&history, before);
    }

    #[test]
    fn log_entries_keep_their_shape_and_read_their_record_by_kind() {
        let moment = Moment {
            id: Uuid::from_u128(5),
            kind: MomentKind::Laugh,
            started_by: ME,
            when: when(),
            note: None,
        };
        let w = moment.when;
        let mut before = json!({
            "kind": "moments",
            "id": moment.id,
            "at": w.at,
            "date": w.date,
            "utc_offset_min": w.utc_offset_min,
            "person": "Robin",
            "person_id": ME,
            "summary": "a laugh moment",
            "record": moment,
        });
        let mut entry = LogEntry {
            at: w.at,
            date: w.date,
            id: moment.id,
            kind: "moments".into(),
            person: "Robin".into(),
            person_id: Some(ME),
            record: LogRecord::Moment(moment.clone()),
            summary: "a laugh moment".into(),
            utc_offset_min: w.utc_offset_min,
            waiting_for_theirs: None,
        };
        same_wire(&entry, before.clone());
        before["waiting_for_theirs"] = Value::Bool(false);
        entry.waiting_for_theirs = Some(false);
        same_wire(&entry, before);

        let marker = SealedMarker {
            id: Uuid::from_u128(6),
            kind: "checkins".into(),
            author: PARTNER,
            date: w.date,
            at: w.at,
            visibility: Visibility::RevealTogether,
            sealed: true,
        };
        let before = json!({
            "id": marker.id,
            "kind": "checkins",
            "author": PARTNER,
            "date": w.date,
            "at": w.at,
            "visibility": Visibility::RevealTogether,
            "sealed": true,
        });
        same_wire(&marker, before);
        let sealed = LogEntry {
            kind: "checkins".into(),
            record: LogRecord::Sealed(marker),
            ..entry.clone()
        };
        same_wire(&sealed, crate::encode_answer(&sealed).unwrap());
        let checkin = LogEntry {
            kind: "checkins".into(),
            record: LogRecord::CheckIn(checkin()),
            ..entry
        };
        same_wire(&checkin, crate::encode_answer(&checkin).unwrap());
    }

    #[test]
    fn a_log_record_that_does_not_fit_its_kind_is_refused() {
        let mut line = crate::encode_answer(&LogEntry {
            at: 0,
            date: chrono::NaiveDate::default(),
            id: Uuid::from_u128(7),
            kind: "checkins".into(),
            person: "Robin".into(),
            person_id: None,
            record: LogRecord::CheckIn(checkin()),
            summary: String::new(),
            utc_offset_min: 0,
            waiting_for_theirs: None,
        })
        .unwrap();
        line["kind"] = Value::String("moments".into());
        let err = serde_json::from_value::<LogEntry>(line).unwrap_err();
        assert!(err.to_string().contains("`moments` record"), "{err}");
    }

    #[test]
    fn today_puts_the_names_beside_the_view() {
        let view = ForYou {
            person: ME,
            today: when().date,
            asks: Vec::new(),
            handoffs: vec![handoff()],
            received: Vec::new(),
            replies: Vec::new(),
            since: None,
            checked_in_today: true,
            paused_due: Vec::new(),
        };
        let names = BTreeMap::from([(ME.to_string(), "Robin".to_string())]);
        let mut before = serde_json::to_value(&view).unwrap();
        before["names"] = json!(names);
        same_wire(&Today { view, names }, before);
    }

    #[test]
    fn roster_pairing_and_bundle_answers_keep_their_shape() {
        let with = vec!["Sam".to_string()];
        same_wire(
            &Paused {
                paused: true,
                since: 1,
                until: None,
                with: with.clone(),
            },
            json!({ "paused": true, "since": 1, "until": null, "with": with }),
        );
        same_wire(
            &Resumed {
                resumed: false,
                with: None,
            },
            json!({ "resumed": false }),
        );
        same_wire(
            &Left {
                left: true,
                already: true,
                at: 9,
                with: None,
            },
            json!({ "left": true, "already": true, "at": 9 }),
        );
        same_wire(&Imported { imported: 3 }, json!({ "imported": 3 }));
        same_wire(
            &Joined {
                paired: true,
                role: "own-device".into(),
                name: "Robin".into(),
                device_id: "AAAA".into(),
                this_device: ThisDevice {
                    id: "BBBB".into(),
                    name: "phone".into(),
                },
            },
            json!({
                "paired": true,
                "role": "own-device",
                "name": "Robin",
                "device_id": "AAAA",
                "this_device": { "id": "BBBB", "name": "phone" },
            }),
        );
        let device = BundleDevice {
            device_id: "CCCC".into(),
            name: "laptop".into(),
            person: "Sam".into(),
            person_id: PARTNER,
        };
        same_wire(
            &BundleImported {
                new_changes: 2,
                signer: device.clone(),
                created_at: 7,
                up_to_date: true,
            },
            json!({
                "new_changes": 2,
                "signer": {
                    "device_id": "CCCC",
                    "name": "laptop",
                    "person": "Sam",
                    "person_id": PARTNER,
                },
                "created_at": 7,
                "up_to_date": true,
            }),
        );
    }
}
