//! `Docs`, the domain API over the two documents a device holds: records added,
//! read, edited and routed by visibility, the roster as this device verified it, and
//! pause and leave.

use std::collections::BTreeSet;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use uuid::Uuid;

use crate::model::{
    Acknowledgment, CheckIn, Device, DoneEntry, Handoff, HandoffState, ItemStatus, LedgerItem,
    Millis, Moment, OwnParts, Pause, Person, PersonId, Reflection, Stage, TargetKind,
    ValidationError, Visibility, When,
};
use crate::roster;

use super::*;

/// What `hearth ledger edit` changes; fields left `None` stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemEdit {
    /// A new title.
    pub title: Option<String>,
    /// Who should hold which stage.
    pub owners: Vec<(Stage, PersonId)>,
    /// A new cadence.
    pub cadence: Option<crate::model::Cadence>,
    /// A new weight, 1–3.
    pub weight: Option<u8>,
    /// New rough minutes per week.
    pub minutes_per_week: Option<u32>,
    /// A new "good enough" standard.
    pub good_enough: Option<String>,
}

/// The pair of documents one device holds, with the typed API the daemon calls.
#[derive(Debug, Clone)]
pub struct Docs {
    /// The household document.
    pub household: Doc,
    /// This device's person's private document.
    pub private: Doc,
    /// Whose device this is.
    pub me: PersonId,
    /// How this device judges the roster.
    pub roster: RosterView,
}

/// The roster as this device verified it (see [`crate::roster`]). Until a device key
/// is set, nothing is verified and the roster reads as written: only tests and tools
/// that build documents by hand see that.
#[derive(Debug, Clone, Default)]
pub struct RosterView {
    key: Option<[u8; 32]>,
    verified: Option<roster::Verified>,
    /// What the last verification was made from: most household writes leave the
    /// roster alone, and checking signatures again for them would slow every write.
    made_from: Option<RosterInputs>,
}

/// What one verification was made from: the household's entries, the kept copies and
/// the distrusted devices.
type RosterInputs = (Vec<Device>, Vec<Device>, Vec<(String, Millis)>);

/// The root key prefix, in a person's private document, of a partner's device that
/// this person's devices no longer trust (`hearth devices remove` of a partner's
/// device). One scalar per device, so concurrent removals on two devices never
/// conflict.
const DISTRUST_PREFIX: &str = "distrust:";
/// The root key prefix, in a person's private document, of the copy of a roster entry
/// this person's devices verified. A partner can overwrite fields of an entry in the
/// household document, which breaks its signatures; the kept copy still verifies, so
/// that cannot make this person's devices drop each other.
const KEPT_PREFIX: &str = "roster:";

/// A record resolved from a short id prefix.
pub type ResolvedId = Uuid;

impl Docs {
    /// Fresh documents for a new household founded by `me`.
    pub fn new(me: PersonId, actor: ActorId) -> Docs {
        Docs {
            household: Doc::new(DocKind::Household, actor.clone()),
            private: Doc::new(DocKind::Private(me), actor),
            me,
            roster: RosterView::default(),
        }
    }

    /// Both documents of `me`, as loaded.
    pub fn from_parts(household: Doc, private: Doc, me: PersonId) -> Docs {
        Docs {
            household,
            private,
            me,
            roster: RosterView::default(),
        }
    }

    /// Sets this device's public key and verifies the roster from it. From then on
    /// [`Docs::devices`] and [`Docs::people`] give only what the signatures hold up.
    pub fn set_device_key(&mut self, key: [u8; 32]) {
        self.roster.key = Some(key);
        self.roster.made_from = None;
        self.refresh_roster();
    }

    /// Verifies the roster again; call after the household document changed.
    pub fn refresh_roster(&mut self) {
        let Some(key) = self.roster.key else {
            return;
        };
        let inputs = (
            self.roster_entries(),
            self.kept_entries(),
            self.distrusted(),
        );
        if self.roster.made_from.as_ref() == Some(&inputs) {
            return;
        }
        let entries: Vec<Device> = inputs.0.iter().chain(&inputs.1).cloned().collect();
        let mut verified = roster::verify(&entries, &key, self.me);
        // This person's own word about the partner's devices: removed for us.
        for (device, at) in inputs.2.iter().cloned() {
            if let Some(entry) = verified
                .devices
                .iter_mut()
                .find(|d| d.id == device && d.person != self.me)
            {
                entry.revoked_at = Some(entry.revoked_at.map_or(at, |r| r.min(at)));
            }
        }
        self.roster.verified = Some(verified);
        self.roster.made_from = Some(inputs);
    }

    /// The roster as verified, once a device key is set.
    pub fn verified_roster(&self) -> Option<&roster::Verified> {
        self.roster.verified.as_ref()
    }

    /// Every device entry as written in the household document, trusted or not.
    pub fn roster_entries(&self) -> Vec<Device> {
        self.household.all()
    }

    /// The copies of roster entries this person's devices kept.
    fn kept_entries(&self) -> Vec<Device> {
        let am = &self.private.am;
        am.keys(automerge::ROOT)
            .filter(|key| key.starts_with(KEPT_PREFIX))
            .filter_map(|key| match am.get(automerge::ROOT, key.as_str()).ok()?? {
                (Value::Scalar(v), _) => match v.as_ref() {
                    ScalarValue::Str(json) => serde_json::from_str(json).ok(),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Keeps a copy, in the private document, of every trusted entry whose household
    /// version verifies and differs from the copy kept so far. Returns whether anything
    /// was written.
    pub fn keep_verified_entries(&mut self, now: Millis) -> Result<bool, DocError> {
        // The entries the last verification read, not read again.
        let (Some(verified), Some((household, kept, _))) =
            (&self.roster.verified, &self.roster.made_from)
        else {
            return Ok(false);
        };
        let mut copies = Vec::new();
        for device in &verified.devices {
            let Some(written) = household.iter().find(|d| d.id == device.id) else {
                continue;
            };
            // Only a household version that is itself the verified one is kept.
            let same = |a: &Device, b: &Device| {
                a.public_key == b.public_key
                    && a.person == b.person
                    && a.admission == b.admission
                    && a.self_sig == b.self_sig
                    && a.age_recipient == b.age_recipient
            };
            if !same(written, device) {
                continue;
            }
            let mut copy = written.clone();
            copy.revoked_at = None;
            // An entry kept already is skipped before its signature is checked again:
            // either way nothing is written for it, and this runs on every household
            // write, where one Ed25519 check per device was a tenth of the owner's time.
            if kept.contains(&copy) || !roster::self_signature_holds(written) {
                continue;
            }
            let json = serde_json::to_string(&copy).map_err(|e| DocError::Decode {
                kind: Collection::Devices.key(),
                reason: crate::json_error_kind(&e),
            })?;
            copies.push((format!("{KEPT_PREFIX}{}", copy.id), json));
        }
        if copies.is_empty() {
            return Ok(false);
        }
        self.private
            .am
            .transact_with(
                |_| CommitOptions::default().with_time(now / 1000),
                |tx| -> Result<(), automerge::AutomergeError> {
                    for (key, json) in &copies {
                        tx.put(automerge::ROOT, key.as_str(), json.as_str())?;
                    }
                    Ok(())
                },
            )
            .map_err(|f| DocError::Automerge(f.error))?;
        self.refresh_roster();
        Ok(true)
    }

    /// Records that this person's devices stop trusting a partner's device.
    pub fn distrust(&mut self, device: &str, now: Millis) -> Result<(), DocError> {
        let key = format!("{DISTRUST_PREFIX}{device}");
        self.private
            .am
            .transact_with(
                |_| CommitOptions::default().with_time(now / 1000),
                |tx| tx.put(automerge::ROOT, key.as_str(), now),
            )
            .map_err(|f| DocError::Automerge(f.error))?;
        self.refresh_roster();
        Ok(())
    }

    /// The partner's devices this person no longer trusts, with when.
    pub fn distrusted(&self) -> Vec<(String, Millis)> {
        let am = &self.private.am;
        am.keys(automerge::ROOT)
            .filter_map(|key| {
                let device = key.strip_prefix(DISTRUST_PREFIX)?.to_string();
                let at = match am.get(automerge::ROOT, key.as_str()).ok()?? {
                    (Value::Scalar(v), _) => match v.as_ref() {
                        ScalarValue::Int(at) => *at,
                        _ => return None,
                    },
                    _ => return None,
                };
                Some((device, at))
            })
            .collect()
    }

    /// The document with this id, if this device holds it.
    pub fn by_id_mut(&mut self, doc_id: &str) -> Option<&mut Doc> {
        if doc_id == self.household.kind.doc_id() {
            Some(&mut self.household)
        } else if doc_id == self.private.kind.doc_id() {
            Some(&mut self.private)
        } else {
            None
        }
    }

    /// Which document a record of `visibility` is written to: a reveal-together
    /// answer's sealed value goes to the household, like a shared one.
    pub fn doc_kind_for(&self, visibility: Visibility) -> DocKind {
        match visibility {
            Visibility::Private => self.private.kind(),
            Visibility::Shared | Visibility::RevealTogether => DocKind::Household,
        }
    }

    fn doc_for(&mut self, visibility: Visibility) -> Result<&mut Doc, DocError> {
        match visibility {
            Visibility::Private => Ok(&mut self.private),
            Visibility::Shared => Ok(&mut self.household),
            // The one-time key has to come from the caller: see `Docs::add_sealed`.
            Visibility::RevealTogether => Err(ValidationError::Invalid {
                field: "visibility",
                reason: "a reveal-together answer is sealed with a one-time key; write it with `Docs::add_sealed`".into(),
            }
            .into()),
        }
    }

    /// Resolves a full id or a short prefix to one record, as git does with hashes.
    pub fn resolve(&self, coll: Collection, prefix: &str) -> Result<ResolvedId, DocError> {
        let kind = coll.key();
        let prefix = prefix.trim();
        if prefix.is_empty() {
            return Err(DocError::NotFound {
                kind,
                prefix: prefix.into(),
            });
        }
        let mut keys: BTreeSet<String> = self
            .household
            .keys_with_prefix(coll, prefix)
            .into_iter()
            .collect();
        if matches!(coll, Collection::CheckIns | Collection::Reflections) {
            keys.extend(self.private.keys_with_prefix(coll, prefix));
        }
        let mut iter = keys.iter();
        match (iter.next(), iter.next()) {
            (None, _) => Err(DocError::NotFound {
                kind,
                prefix: prefix.into(),
            }),
            (Some(one), None) => Uuid::parse_str(one).map_err(|_| DocError::NotFound {
                kind,
                prefix: prefix.into(),
            }),
            (Some(_), Some(_)) => Err(DocError::Ambiguous {
                kind,
                prefix: prefix.into(),
                count: keys.len(),
            }),
        }
    }

    /// Adds a person to the household.
    pub fn add_person(&mut self, person: &Person, now: Millis) -> Result<(), DocError> {
        person.validate()?;
        self.household.put(person, now)
    }

    /// Everyone in the household: once the roster is verified, only this person and
    /// the partner its signatures lead to, whatever other person records say.
    pub fn people(&self) -> Vec<Person> {
        let people: Vec<Person> = self.household.all();
        match &self.roster.verified {
            Some(verified) => {
                let known = verified.people(self.me);
                people
                    .into_iter()
                    .filter(|p| known.contains(&p.id))
                    .collect()
            }
            None => people,
        }
    }

    /// Adds or updates a device on the roster.
    pub fn put_device(&mut self, device: &Device, now: Millis) -> Result<(), DocError> {
        device.validate()?;
        if !self
            .household
            .contains(Collection::People, &device.person.to_string())
        {
            return Err(ValidationError::UnknownReference {
                field: "person",
                id: device.person.to_string(),
            }
            .into());
        }
        self.household.put(device, now)
    }

    /// The roster: once verified, only trusted entries, with removals as verified.
    pub fn devices(&self) -> Vec<Device> {
        match &self.roster.verified {
            Some(verified) => verified.devices.clone(),
            None => self.household.all(),
        }
    }

    /// The map of `person`'s record in the household document.
    fn person_obj(&self, person: PersonId) -> Option<ObjId> {
        let people = self.household.collection(Collection::People).ok()?;
        match self.household.am.get(&people, person.to_string()).ok()? {
            Some((Value::Object(ObjType::Map), id)) => Some(id),
            _ => None,
        }
    }

    fn side_field(&self, person: PersonId, field: &str) -> Option<ScalarValue> {
        let obj = self.person_obj(person)?;
        match self.household.am.get(&obj, field).ok()? {
            Some((Value::Scalar(s), _)) => Some(s.into_owned()),
            _ => None,
        }
    }

    fn put_side_field(
        &mut self,
        person: PersonId,
        field: &'static str,
        value: Option<ScalarValue>,
        now: Millis,
    ) -> Result<(), DocError> {
        let obj = self
            .person_obj(person)
            .ok_or_else(|| ValidationError::UnknownReference {
                field: "person",
                id: person.to_string(),
            })?;
        let current = self.side_field(person, field);
        if current == value {
            return Ok(());
        }
        self.household
            .am
            .transact_with(
                |_| CommitOptions::default().with_time(now / 1000),
                |tx| match value {
                    Some(v) => tx.put(&obj, field, v),
                    None => tx.delete(&obj, field),
                },
            )
            .map_err(|f| DocError::Automerge(f.error))?;
        Ok(())
    }

    /// `person`'s pause of sharing, if one is recorded (it may have ended by itself;
    /// see [`Pause::active_at`]).
    pub fn pause_of(&self, person: PersonId) -> Option<Pause> {
        match self.side_field(person, SHARING_PAUSE)? {
            ScalarValue::Str(text) => serde_json::from_str(text.as_str()).ok(),
            _ => None,
        }
    }

    /// Records `person`'s pause of sharing, or clears it with `None`.
    pub fn set_pause(
        &mut self,
        person: PersonId,
        pause: Option<&Pause>,
        now: Millis,
    ) -> Result<(), DocError> {
        let value = match pause {
            Some(pause) => {
                pause.validate()?;
                let text = serde_json::to_string(pause).map_err(|e| DocError::Decode {
                    kind: Collection::People.key(),
                    reason: crate::json_error_kind(&e),
                })?;
                Some(ScalarValue::Str(text.into()))
            }
            None => None,
        };
        self.put_side_field(person, SHARING_PAUSE, value, now)
    }

    /// When `person` ended sharing with `hearth leave`, if they did.
    pub fn left_at(&self, person: PersonId) -> Option<Millis> {
        match self.side_field(person, SHARING_LEFT_AT)? {
            ScalarValue::Int(v) => Some(v),
            ScalarValue::Uint(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Records that `person` ended sharing at `at`. Leaving is for good: an earlier
    /// record stays, and a pause ends with it.
    pub fn set_left(&mut self, person: PersonId, at: Millis, now: Millis) -> Result<(), DocError> {
        let at = self.left_at(person).map_or(at, |earlier| earlier.min(at));
        self.put_side_field(person, SHARING_LEFT_AT, Some(ScalarValue::Int(at)), now)?;
        self.set_pause(person, None, now)
    }

    pub(super) fn require_person(
        &self,
        field: &'static str,
        person: PersonId,
    ) -> Result<(), DocError> {
        if self
            .household
            .contains(Collection::People, &person.to_string())
        {
            Ok(())
        } else {
            Err(ValidationError::UnknownReference {
                field,
                id: person.to_string(),
            }
            .into())
        }
    }

    /// Records a check-in in the document its visibility calls for. The answers listed
    /// in its `kept_to_self` go to this person's private document instead, and the
    /// household copy carries neither them nor the list.
    pub fn add_checkin(&mut self, checkin: &CheckIn, now: Millis) -> Result<(), DocError> {
        checkin.validate()?;
        self.require_person("author", checkin.author)?;
        let (shared, own) = checkin.split_own();
        if let Some(own) = own {
            // The kept answers go first: should the household write fail, what is left
            // is a private note for nothing, never an answer in the shared document.
            self.put_own(checkin.author, checkin.id, &own, now)?;
        }
        self.doc_for(shared.visibility)?.put(&shared, now)
    }

    /// Writes the answers the author keeps to themselves into their private document.
    pub(super) fn put_own(
        &mut self,
        author: PersonId,
        id: Uuid,
        own: &OwnParts,
        now: Millis,
    ) -> Result<(), DocError> {
        if author != self.me || self.private.kind != DocKind::Private(author) {
            return Err(ValidationError::Invalid {
                field: "kept_to_self",
                reason: "only the author's own devices can keep answers to the author".into(),
            }
            .into());
        }
        let json = serde_json::to_string(own).map_err(|e| DocError::Decode {
            kind: "checkins",
            reason: crate::json_error_kind(&e),
        })?;
        self.private.put_text(
            Collection::CheckIns,
            &own_key(id),
            &format!("{OWN_TAG}{json}"),
            now,
        )
    }

    /// The check-in as its reader may see it: with the answers its author kept to
    /// themselves put back when this device is one of the author's.
    pub fn with_own(&self, mut checkin: CheckIn) -> CheckIn {
        if checkin.author != self.me
            || checkin.visibility == Visibility::Private
            || self.private.kind != DocKind::Private(checkin.author)
        {
            return checkin;
        }
        let Some(text) = self
            .private
            .text_at(Collection::CheckIns, &own_key(checkin.id))
        else {
            return checkin;
        };
        let Some(json) = text.strip_prefix(OWN_TAG) else {
            return checkin;
        };
        match serde_json::from_str::<OwnParts>(json) {
            Ok(own) => checkin.merge_own(own),
            // The parser's message can quote the value, which is an answer: log none of it.
            Err(_) => tracing::warn!("could not read the answers a check-in's author kept"),
        }
        checkin
    }

    /// Records a reflection in the document its visibility calls for.
    pub fn add_reflection(&mut self, reflection: &Reflection, now: Millis) -> Result<(), DocError> {
        reflection.validate()?;
        self.require_person("author", reflection.author)?;
        self.doc_for(reflection.visibility)?.put(reflection, now)
    }

    /// A person's check-ins whose local date falls in `from..=to`, from both documents,
    /// oldest first.
    pub fn checkins_between(
        &self,
        person: PersonId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Vec<CheckIn> {
        let author = person.to_string();
        let (from_date, to_date) = (from, to);
        let (from, to) = (from.to_string(), to.to_string());
        let keep = |f: &Fields<'_>| {
            f.str("author").as_deref() == Some(author.as_str())
                && f.str("date").is_some_and(|d| d >= from && d <= to)
        };
        let mut out = self.household.filter::<CheckIn>(keep);
        if self.private.kind == DocKind::Private(person) {
            out.extend(self.private.filter::<CheckIn>(keep));
            out.extend(
                self.own_sealed::<CheckIn>()
                    .into_iter()
                    .filter(|c| c.when.date >= from_date && c.when.date <= to_date),
            );
        }
        let mut out: Vec<CheckIn> = out.into_iter().map(|c| self.with_own(c)).collect();
        out.sort_by_key(|c| (c.when.at, c.id));
        out
    }

    /// Every check-in this device can read: shared, revealed, its person's private
    /// ones, and its person's own answers still sealed for the partner.
    pub fn checkins(&self) -> Vec<CheckIn> {
        let mut out = self.household.all::<CheckIn>();
        out.extend(self.private.all::<CheckIn>());
        out.extend(self.own_sealed::<CheckIn>());
        let mut out: Vec<CheckIn> = out.into_iter().map(|c| self.with_own(c)).collect();
        out.sort_by_key(|c| (c.when.at, c.id));
        out
    }

    /// Every reflection this device can read, as [`Docs::checkins`] does.
    pub fn reflections(&self) -> Vec<Reflection> {
        let mut out = self.household.all::<Reflection>();
        out.extend(self.private.all::<Reflection>());
        out.extend(self.own_sealed::<Reflection>());
        out.sort_by_key(|r| (r.when.at, r.id));
        out
    }

    /// Adds a ledger item.
    pub fn add_ledger_item(&mut self, item: &LedgerItem, now: Millis) -> Result<(), DocError> {
        item.validate()?;
        self.require_person("created by", item.created_by)?;
        self.household.put(item, now)
    }

    /// One ledger item.
    pub fn ledger_item(&self, id: Uuid) -> Result<LedgerItem, DocError> {
        self.household
            .get::<LedgerItem>(&id.to_string())?
            .ok_or(DocError::NotFound {
                kind: "ledger",
                prefix: id.to_string(),
            })
    }

    /// Every ledger item.
    pub fn ledger_items(&self) -> Vec<LedgerItem> {
        self.household.all()
    }

    /// Changes a ledger item and writes back only the fields that changed.
    pub fn update_ledger_item(
        &mut self,
        id: Uuid,
        now: Millis,
        change: impl FnOnce(&mut LedgerItem),
    ) -> Result<LedgerItem, DocError> {
        let mut item = self.ledger_item(id)?;
        change(&mut item);
        item.validate()?;
        self.household.put(&item, now)?;
        Ok(item)
    }

    /// Pauses an item, "do less for now": a paused item carries no load in the
    /// balance, and comes back with [`Docs::resume_ledger_item`].
    pub fn pause_ledger_item(
        &mut self,
        id: Uuid,
        until: Option<chrono::NaiveDate>,
        now: Millis,
    ) -> Result<LedgerItem, DocError> {
        let item = self.ledger_item(id)?;
        if item.status == ItemStatus::Retired {
            return Err(ValidationError::Invalid {
                field: "item",
                reason: "this item is retired, so there is nothing to pause".into(),
            }
            .into());
        }
        self.update_ledger_item(id, now, |item| {
            item.status = ItemStatus::Paused;
            item.paused_until = until;
        })
    }

    /// Brings a paused or retired item back as active.
    pub fn resume_ledger_item(&mut self, id: Uuid, now: Millis) -> Result<LedgerItem, DocError> {
        self.update_ledger_item(id, now, |item| {
            item.status = ItemStatus::Active;
            item.paused_until = None;
        })
    }

    /// Edits an item. Stages put on someone other than `by` are offered to them as open
    /// handoffs (ids from `handoff_ids`) rather than assigned; stages `by` takes on are
    /// set at once. Any edit changes what was agreed, so the agreement starts again
    /// with `by` alone.
    #[allow(clippy::too_many_arguments)]
    pub fn edit_ledger_item(
        &mut self,
        id: Uuid,
        edit: &ItemEdit,
        by: PersonId,
        handoff_ids: &mut dyn Iterator<Item = Uuid>,
        when: When,
        now: Millis,
    ) -> Result<(LedgerItem, Vec<Handoff>), DocError> {
        let mut offers = Vec::new();
        for (stage, owner) in &edit.owners {
            self.require_person("owner", *owner)?;
            if *owner != by {
                offers.push((*stage, *owner));
            }
        }
        let item = self.update_ledger_item(id, now, |item| {
            if let Some(title) = &edit.title {
                item.title = title.trim().to_string();
            }
            if let Some(cadence) = edit.cadence {
                item.cadence = Some(cadence);
            }
            if let Some(weight) = edit.weight {
                item.weight = weight;
            }
            if let Some(minutes) = edit.minutes_per_week {
                item.minutes_per_week = Some(minutes);
            }
            if let Some(good_enough) = &edit.good_enough {
                item.good_enough = good_enough.trim().to_string();
            }
            for (stage, owner) in &edit.owners {
                if *owner == by {
                    item.owners.set(*stage, Some(by));
                }
            }
            item.agreed_by = std::collections::BTreeSet::from([by]);
            item.agreed_at = Some(when.at);
        })?;
        let handoffs = self.offer_stages(id, by, offers, handoff_ids, when, now)?;
        Ok((item, handoffs))
    }

    /// Offers each `(stage, to)` of `item` from `from` as an open handoff, with ids from
    /// `handoff_ids`: a stage is put on someone else only as a proposal they answer.
    fn offer_stages(
        &mut self,
        item: Uuid,
        from: PersonId,
        offers: Vec<(Stage, PersonId)>,
        handoff_ids: &mut dyn Iterator<Item = Uuid>,
        when: When,
        now: Millis,
    ) -> Result<Vec<Handoff>, DocError> {
        let mut handoffs = Vec::new();
        for ((stage, to), id) in offers.into_iter().zip(handoff_ids) {
            let handoff = Handoff {
                id,
                item,
                stage,
                from,
                to,
                when,
                note: None,
                state: HandoffState::Open,
                answered_by: None,
                answered_at: None,
                counter: None,
            };
            self.propose_handoff(&handoff, now)?;
            handoffs.push(handoff);
        }
        Ok(handoffs)
    }

    /// Records that `by` agrees with an item as it stands, its "good enough" standard
    /// included. It counts as agreed once everyone in the household has.
    pub fn agree_ledger_item(
        &mut self,
        id: Uuid,
        by: PersonId,
        at: Millis,
        now: Millis,
    ) -> Result<(LedgerItem, bool), DocError> {
        self.require_person("agreed by", by)?;
        let item = self.update_ledger_item(id, now, |item| {
            item.agreed_by.insert(by);
            item.agreed_at = Some(at);
        })?;
        let everyone = self.people().iter().all(|p| item.agreed_by.contains(&p.id));
        Ok((item, everyone))
    }

    /// Records that someone did an item or a piece of unlisted work.
    pub fn add_done(&mut self, done: &DoneEntry, now: Millis) -> Result<(), DocError> {
        done.validate()?;
        self.require_person("by", done.by)?;
        if let Some(item) = done.item {
            if !self
                .household
                .contains(Collection::Ledger, &item.to_string())
            {
                return Err(ValidationError::UnknownReference {
                    field: "item",
                    id: item.to_string(),
                }
                .into());
            }
        }
        self.household.put(done, now)
    }

    /// Records an acknowledgment, which must point at a record that exists here.
    pub fn add_ack(&mut self, ack: &Acknowledgment, now: Millis) -> Result<(), DocError> {
        ack.validate()?;
        self.require_person("from", ack.from)?;
        self.require_person("to", ack.to)?;
        let key = ack.target.id.to_string();
        let exists = match ack.target.kind {
            TargetKind::Item => self.household.contains(Collection::Ledger, &key),
            TargetKind::Done => self.household.contains(Collection::Done, &key),
            TargetKind::Moment => self.household.contains(Collection::Moments, &key),
            // An acknowledgment lives in the household document, so it may only point at
            // a check-in the partner can read too.
            TargetKind::CheckIn => self.household.contains(Collection::CheckIns, &key),
        };
        if !exists {
            return Err(ValidationError::UnknownReference {
                field: "target",
                id: key,
            }
            .into());
        }
        self.household.put(ack, now)
    }

    /// Proposes a handoff of one stage of an active item.
    pub fn propose_handoff(&mut self, handoff: &Handoff, now: Millis) -> Result<(), DocError> {
        handoff.validate()?;
        self.require_person("from", handoff.from)?;
        self.require_person("to", handoff.to)?;
        let item = self
            .household
            .get::<LedgerItem>(&handoff.item.to_string())?
            .ok_or_else(|| ValidationError::UnknownReference {
                field: "item",
                id: handoff.item.to_string(),
            })?;
        if item.status == ItemStatus::Retired {
            return Err(ValidationError::Invalid {
                field: "item",
                reason: "this item is retired; bring it back before handing it off".into(),
            }
            .into());
        }
        self.household.put(handoff, now)
    }

    /// Adds an item, offering to other people the stages its creator would put on them.
    ///
    /// Putting a stage on the partner is a proposal, not an assignment: each stage of
    /// `item.owners` held by someone other than `item.created_by` starts with the
    /// creator, and an open handoff (ids from `handoff_ids`, in stage order) offers it to
    /// that person, who accepts, declines or counters it. Returns the item as written and
    /// the handoffs.
    pub fn add_ledger_item_offering(
        &mut self,
        item: &LedgerItem,
        handoff_ids: &mut dyn Iterator<Item = Uuid>,
        when: When,
        now: Millis,
    ) -> Result<(LedgerItem, Vec<Handoff>), DocError> {
        let mut kept = item.clone();
        let mut offers = Vec::new();
        for stage in Stage::ALL {
            if let Some(owner) = item.owners.get(*stage) {
                if owner != item.created_by {
                    self.require_person("owner", owner)?;
                    kept.owners.set(*stage, Some(item.created_by));
                    offers.push((*stage, owner));
                }
            }
        }
        self.add_ledger_item(&kept, now)?;
        let handoffs =
            self.offer_stages(kept.id, item.created_by, offers, handoff_ids, when, now)?;
        Ok((kept, handoffs))
    }

    /// One handoff.
    pub fn handoff(&self, id: Uuid) -> Result<Handoff, DocError> {
        self.household
            .get::<Handoff>(&id.to_string())?
            .map(|h| self.settle_handoff(h))
            .ok_or(DocError::NotFound {
                kind: "handoffs",
                prefix: id.to_string(),
            })
    }

    /// Every handoff.
    pub fn handoffs(&self) -> Vec<Handoff> {
        self.household
            .all::<Handoff>()
            .into_iter()
            .map(|h| self.settle_handoff(h))
            .collect()
    }

    /// Accepting moves the stage in the same change; a concurrent decline or withdraw
    /// does not move it back. So when answers raced, an accept among them wins: the
    /// handoff reads as accepted, which is what the ledger already shows.
    fn settle_handoff(&self, mut handoff: Handoff) -> Handoff {
        if handoff.state != HandoffState::Accepted {
            let answers = self.household.field_conflicts(
                Collection::Handoffs,
                &handoff.id.to_string(),
                "state",
            );
            if answers.len() > 1 && answers.iter().any(|a| a == HandoffState::Accepted.key()) {
                handoff.state = HandoffState::Accepted;
                handoff.answered_by = Some(handoff.to);
                handoff.counter = None;
            }
        }
        handoff
    }

    /// Answers an open handoff. Accepting moves the stage to the person it was offered to.
    pub fn answer_handoff(
        &mut self,
        id: Uuid,
        answer: HandoffState,
        by: PersonId,
        counter: Option<String>,
        now: Millis,
    ) -> Result<Handoff, DocError> {
        let mut handoff = self.handoff(id)?;
        // A counter goes back to the one who proposed: they may accept it. The counter is
        // in words, so accepting it records the agreement and moves no stage by itself.
        let counter_accepted = handoff.state == HandoffState::Countered
            && answer == HandoffState::Accepted
            && by == handoff.from;
        if counter_accepted {
            handoff.state = HandoffState::Accepted;
            handoff.answered_by = Some(by);
            handoff.answered_at = Some(now);
            handoff.validate()?;
            self.household.put(&handoff, now)?;
            return Ok(handoff);
        }
        if handoff.state != HandoffState::Open {
            return Err(ValidationError::Invalid {
                field: "handoff",
                reason: format!("it was already {}", handoff.state),
            }
            .into());
        }
        let allowed = match answer {
            HandoffState::Withdrawn => by == handoff.from,
            HandoffState::Accepted | HandoffState::Declined | HandoffState::Countered => {
                by == handoff.to
            }
            HandoffState::Open => false,
        };
        if !allowed {
            return Err(ValidationError::Invalid {
                field: "handoff",
                reason: "only the person it was offered to can answer it, and only the proposer can withdraw it".into(),
            }
            .into());
        }
        handoff.state = answer;
        handoff.answered_by = Some(by);
        handoff.answered_at = Some(now);
        handoff.counter = counter;
        handoff.validate()?;
        if answer == HandoffState::Accepted {
            let (stage, to) = (handoff.stage, handoff.to);
            self.update_ledger_item(handoff.item, now, |item| item.owners.set(stage, Some(to)))?;
        }
        self.household.put(&handoff, now)?;
        Ok(handoff)
    }

    /// Records a moment of connection.
    pub fn add_moment(&mut self, moment: &Moment, now: Millis) -> Result<(), DocError> {
        moment.validate()?;
        self.require_person("started by", moment.started_by)?;
        self.household.put(moment, now)
    }

    /// Every moment.
    pub fn moments(&self) -> Vec<Moment> {
        let mut out = self.household.all::<Moment>();
        out.sort_by_key(|m| (m.when.at, m.id));
        out
    }

    /// Every done entry.
    pub fn done_entries(&self) -> Vec<DoneEntry> {
        let mut out = self.household.all::<DoneEntry>();
        out.sort_by_key(|d| (d.when.at, d.id));
        out
    }

    /// Every acknowledgment.
    pub fn acks(&self) -> Vec<Acknowledgment> {
        let mut out = self.household.all::<Acknowledgment>();
        out.sort_by_key(|a| (a.when.at, a.id));
        out
    }
}
