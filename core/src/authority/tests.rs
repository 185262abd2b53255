//! The rules, tried with real documents: honest use through `Docs`, and forgeries written
//! with raw Automerge on a rogue copy of the partner's document.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use age::secrecy::ExposeSecret;
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, Change, ObjId, ObjType, ReadDoc, ROOT};
use uuid::Uuid;

use super::*;
use crate::doc::tests::{actor, item, person};
use crate::doc::{Doc, Docs, SEP};
use crate::model::*;

/// Ada's device (actor 1) and Bo's (actor 2), after Ada's device wrote both people.
fn docs_pair() -> (Docs, Docs) {
    let (da, db, _, _) = crate::doc::tests::docs_pair();
    (da, db)
}

/// Who wrote what: actors 1 and 3 are Ada's devices, 2 is Bo's.
fn author_of(change: &Change) -> PersonId {
    match change.actor_id().to_bytes().first() {
        Some(1) | Some(3) => Uuid::from_u128(1),
        _ => Uuid::from_u128(2),
    }
}

/// The changes `from` holds that `to` lacks.
fn news(to: &Automerge, from: &Automerge) -> Vec<Change> {
    to.get_changes_added(from)
}

fn verdict(to: &Automerge, kind: DocKind, changes: &[Change]) -> Verdict {
    let authored: Vec<Authored<'_>> = changes
        .iter()
        .map(|c| Authored {
            change: c,
            person: author_of(c),
        })
        .collect();
    check_changes(to, kind, &authored)
}

/// Checks what `from` has for `to` and applies it; every change must pass.
fn sync_checked(to: &mut Doc, from: &Doc) {
    let changes = news(to.automerge(), from.automerge());
    let v = verdict(to.automerge(), to.kind(), &changes);
    assert!(
        v.all_accepted(),
        "honest changes refused: {:?}",
        v.refused
            .iter()
            .map(|(_, b)| b.to_string())
            .collect::<Vec<_>>()
    );
    to.automerge_mut().apply_changes(changes).unwrap();
}

fn sync_both(a: &mut Doc, b: &mut Doc) {
    let (ca, cb) = (a.clone(), b.clone());
    sync_checked(a, &cb);
    sync_checked(b, &ca);
}

fn checkin(author: PersonId, n: u128, day: i64, visibility: Visibility) -> CheckIn {
    CheckIn {
        id: Uuid::from_u128(n),
        author,
        when: When::from_utc(1_700_000_000_000 + day * 86_400_000, 0),
        battery: 40,
        signs: BTreeMap::from([(BurnoutSign::Dread, 2)]),
        body: BTreeSet::new(),
        basics: BTreeMap::new(),
        note: Some("long week".into()),
        ask: None,
        visibility,
        kept_to_self: Default::default(),
    }
}

fn handoff(n: u128, item: Uuid, from: PersonId, to: PersonId) -> Handoff {
    Handoff {
        id: Uuid::from_u128(n),
        item,
        stage: Stage::Plan,
        from,
        to,
        when: When::from_utc(1_700_000_000_000, 0),
        note: None,
        state: HandoffState::Open,
        answered_by: None,
        answered_at: None,
        counter: None,
    }
}

fn device(id: &str, person: PersonId) -> Device {
    Device::unsigned(id.into(), person, "laptop".into(), "00".repeat(32))
}

fn coll(am: &Automerge, c: Collection) -> ObjId {
    am.get(ROOT, c.key()).unwrap().unwrap().1
}

fn record(am: &Automerge, c: Collection, key: &str) -> ObjId {
    am.get(coll(am, c), key).unwrap().unwrap().1
}

fn text_at(am: &Automerge, c: Collection, key: &str) -> String {
    am.get(coll(am, c), key)
        .unwrap()
        .unwrap()
        .0
        .as_str()
        .unwrap()
        .to_string()
}

/// One change written by a rogue client on a copy of `base`, as `actor`.
fn forge(
    base: &Automerge,
    actor: ActorId,
    write: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> (Automerge, Change) {
    let mut am = base.clone();
    am.set_actor(actor);
    let mut tx = am.transaction();
    write(&mut tx);
    tx.commit();
    let change = am.get_last_local_change().unwrap();
    (am, change)
}

fn refused_with(doc: &Automerge, change: &Change) -> Breach {
    let v = verdict(doc, DocKind::Household, std::slice::from_ref(change));
    assert!(v.accepted.is_empty(), "a forged change was accepted");
    v.refused[0].1.clone()
}

/// Everything the `Docs` API writes, checked at every sync with its true author.
#[test]
fn honest_use_is_never_refused() {
    let a = Uuid::from_u128(1);
    let b = Uuid::from_u128(2);
    // Pairing: each side founded its own household and writes the other's record and
    // device concurrently.
    let mut da = Docs::new(a, actor(1));
    da.add_person(&person("Ada", 1), 1).unwrap();
    da.put_device(&device("ADA-1", a), 1).unwrap();
    let mut db = Docs::new(b, actor(2));
    db.add_person(&person("Bo", 2), 1).unwrap();
    db.put_device(&device("BO-1", b), 1).unwrap();
    da.add_person(&person("Bo", 2), 2).unwrap();
    da.put_device(&device("BO-1", b), 2).unwrap();
    db.add_person(&person("Ada", 1), 2).unwrap();
    db.put_device(&device("ADA-1", a), 2).unwrap();
    sync_both(&mut da.household, &mut db.household);
    // Ada's second device joins and syncs both documents.
    let mut da2 = Docs::new(a, actor(3));
    sync_checked(&mut da2.household, &da.household);
    sync_checked(&mut da2.private, &da.private);
    da2.put_device(&device("ADA-2", a), 3).unwrap();

    // Check-ins, shared and private and with answers kept, reflections, moments.
    da.add_checkin(&checkin(a, 10, 0, Visibility::Shared), 10)
        .unwrap();
    da.add_checkin(&checkin(a, 11, 0, Visibility::Private), 10)
        .unwrap();
    let mut kept = checkin(a, 12, 1, Visibility::Shared);
    kept.basics.insert(Basic::Safety, BasicLevel::No);
    kept.keep_own_answers();
    da.add_checkin(&kept, 11).unwrap();
    db.add_checkin(&checkin(b, 20, 0, Visibility::Shared), 10)
        .unwrap();
    db.add_reflection(
        &Reflection {
            id: Uuid::from_u128(21),
            author: b,
            when: When::from_utc(1_700_000_000_000, 0),
            energy: Answer::Yes,
            safe: Answer::Unsure,
            aligned: Answer::Yes,
            note: None,
            visibility: Visibility::Shared,
        },
        10,
    )
    .unwrap();
    let moment = Moment {
        id: Uuid::from_u128(22),
        kind: MomentKind::Laugh,
        started_by: b,
        when: When::from_utc(1_700_000_000_000, 0),
        note: Some("the cat".into()),
    };
    db.add_moment(&moment, 10).unwrap();
    sync_both(&mut da.household, &mut db.household);

    // Reveal together: both seal the same day; each publishes once the other's is there,
    // and Ada's two devices publish at once.
    da.add_sealed(
        &checkin(a, 30, 5, Visibility::RevealTogether),
        &age::x25519::Identity::generate(),
        20,
    )
    .unwrap();
    sync_checked(&mut da2.private, &da.private);
    sync_both(&mut da.household, &mut db.household);
    db.add_sealed(
        &checkin(b, 31, 5, Visibility::RevealTogether),
        &age::x25519::Identity::generate(),
        21,
    )
    .unwrap();
    assert_eq!(db.publish_reveals(22).unwrap().len(), 1);
    sync_both(&mut da.household, &mut db.household);
    sync_checked(&mut da2.household, &da.household);
    assert_eq!(da.publish_reveals(23).unwrap().len(), 1);
    assert_eq!(da2.publish_reveals(23).unwrap().len(), 1);
    sync_both(&mut da.household, &mut da2.household);
    sync_both(&mut da.household, &mut db.household);
    assert!(db.sealed().is_empty());

    // The ledger: added with an offered stage, edited on both sides at once, agreed,
    // paused and resumed; done entries and acknowledgments.
    let mut it = item(a, 40);
    it.owners.set(Stage::Do, Some(b));
    let mut ids = (50u128..).map(Uuid::from_u128);
    let (_, offered) = da
        .add_ledger_item_offering(&it, &mut ids, When::from_utc(0, 0), 30)
        .unwrap();
    sync_both(&mut da.household, &mut db.household);
    da.update_ledger_item(it.id, 31, |i| i.title = "Plan meals together".into())
        .unwrap();
    db.update_ledger_item(it.id, 31, |i| {
        i.title = "Plan the week's dinners".into();
        i.minutes_per_week = None;
    })
    .unwrap();
    db.agree_ledger_item(it.id, b, 31, 31).unwrap();
    sync_both(&mut da.household, &mut db.household);
    da.pause_ledger_item(it.id, None, 32).unwrap();
    db.resume_ledger_item(it.id, 33)
        .unwrap_or_else(|_| it.clone());
    let edit = crate::doc::ItemEdit {
        good_enough: Some("Most weeks".into()),
        owners: vec![(Stage::Notice, b)],
        ..Default::default()
    };
    db.edit_ledger_item(it.id, &edit, b, &mut ids, When::from_utc(0, 0), 34)
        .unwrap();
    let done = DoneEntry {
        id: Uuid::from_u128(41),
        item: Some(it.id),
        label: None,
        by: b,
        when: When::from_utc(1_700_000_000_000, 0),
        minutes: Some(20),
        note: None,
    };
    db.add_done(&done, 35).unwrap();
    sync_both(&mut da.household, &mut db.household);
    da.add_ack(
        &Acknowledgment {
            id: Uuid::from_u128(42),
            from: a,
            to: b,
            target: Target {
                kind: TargetKind::Done,
                id: done.id,
            },
            kind: AckKind::Thanks,
            when: When::from_utc(1_700_000_000_000, 0),
            note: None,
        },
        36,
    )
    .unwrap();
    sync_both(&mut da.household, &mut db.household);

    // Handoffs: accepted; countered and the counter accepted; withdrawn; and an accept
    // racing a withdraw.
    db.answer_handoff(offered[0].id, HandoffState::Accepted, b, None, 40)
        .unwrap();
    let h2 = handoff(60, it.id, a, b);
    da.propose_handoff(&h2, 40).unwrap();
    let h3 = handoff(61, it.id, b, a);
    db.propose_handoff(&h3, 40).unwrap();
    let h4 = handoff(62, it.id, a, b);
    da.propose_handoff(&h4, 40).unwrap();
    sync_both(&mut da.household, &mut db.household);
    db.answer_handoff(
        h2.id,
        HandoffState::Countered,
        b,
        Some("Alternate weeks?".into()),
        41,
    )
    .unwrap();
    db.answer_handoff(h3.id, HandoffState::Withdrawn, b, None, 41)
        .unwrap();
    db.answer_handoff(h4.id, HandoffState::Accepted, b, None, 41)
        .unwrap();
    da.answer_handoff(h4.id, HandoffState::Withdrawn, a, None, 41)
        .unwrap();
    sync_both(&mut da.household, &mut db.household);
    da.answer_handoff(h2.id, HandoffState::Accepted, a, None, 42)
        .unwrap();
    sync_both(&mut da.household, &mut db.household);

    // Pause, resume and leave, each by its own person; devices renamed and removed by
    // their own person; a partner's device distrusted in the private document.
    da.set_pause(
        a,
        Some(&Pause {
            since: 50,
            until: None,
        }),
        50,
    )
    .unwrap();
    sync_both(&mut da.household, &mut db.household);
    da2.household
        .automerge_mut()
        .merge(&mut da.household.automerge().clone())
        .unwrap();
    da2.set_pause(a, None, 51).unwrap();
    let mut renamed = device("BO-1", b);
    renamed.name = "phone".into();
    db.put_device(&renamed, 52).unwrap();
    let mut removed = device("ADA-2", a);
    removed.revoked_at = Some(53);
    removed.removal = Some("signed".into());
    sync_checked(&mut da.household, &da2.household);
    da.put_device(&removed, 53).unwrap();
    da.distrust("BO-1", 54).unwrap();
    sync_checked(&mut da2.private, &da.private);
    sync_both(&mut da.household, &mut db.household);
    db.set_left(b, 60, 60).unwrap();
    sync_both(&mut da.household, &mut db.household);
    assert_eq!(da.left_at(b), Some(60));
    assert_eq!(da.household.heads(), db.household.heads());
}

#[test]
fn forged_and_altered_personal_records_are_refused() {
    let (mut da, mut db) = docs_pair();
    let (a, b) = (da.me, db.me);
    let mine = checkin(a, 10, 0, Visibility::Shared);
    da.add_checkin(&mine, 1).unwrap();
    // Leaving ends a pause, so she leaves first and pauses after, to have both markers.
    da.set_left(a, 5, 5).unwrap();
    da.set_pause(
        a,
        Some(&Pause {
            since: 1,
            until: None,
        }),
        1,
    )
    .unwrap();
    sync_both(&mut da.household, &mut db.household);
    let victim = da.household.automerge();
    let bo = db.household.automerge();
    let key = mine.id.to_string();
    let original = text_at(bo, Collection::CheckIns, &key);
    let checkins = coll(bo, Collection::CheckIns);

    // A check-in in Ada's name.
    let forged = format!("h1{SEP}2023-11-14{SEP}{a}{SEP}{{\"battery\":1,\"note\":\"I want out\"}}");
    let new_id = Uuid::from_u128(77).to_string();
    let (_, c) = forge(bo, actor(2), |tx| {
        tx.put(&checkins, new_id.as_str(), forged.as_str()).unwrap();
    });
    assert_eq!(
        refused_with(victim, &c),
        Breach::WritesAsOther { kind: "check-in" }
    );
    // Ada's check-in edited, in her name or his.
    for person in [a, b] {
        let edited = original
            .replace(&a.to_string(), &person.to_string())
            .replace("40", "1");
        let (_, c) = forge(bo, actor(2), |tx| {
            tx.put(&checkins, key.as_str(), edited.as_str()).unwrap();
        });
        let breach = refused_with(victim, &c);
        assert!(
            matches!(
                breach,
                Breach::ChangesOthers { .. } | Breach::WritesAsOther { .. }
            ),
            "{breach}"
        );
    }
    // Deleted.
    let (_, c) = forge(bo, actor(2), |tx| {
        tx.delete(&checkins, key.as_str()).unwrap()
    });
    assert_eq!(
        refused_with(victim, &c),
        Breach::ChangesOthers { kind: "check-in" }
    );
    // A conflict forged with an empty pred, to hide it behind his own value.
    let hidden = format!("h1{SEP}2023-11-14{SEP}{b}{SEP}{{}}");
    let change = forge_conflict(bo, &checkins, &key, &hidden);
    assert_eq!(
        refused_with(victim, &change),
        Breach::ChangesOthers { kind: "check-in" }
    );

    // Her pause and leave markers, rewritten and cleared.
    let ada = record(bo, Collection::People, &a.to_string());
    for (field, value) in [
        ("sharing_pause", Some("{\"since\":1,\"until\":2}")),
        ("sharing_pause", None),
        ("sharing_left_at", None),
    ] {
        let (_, c) = forge(bo, actor(2), |tx| match value {
            Some(v) => tx.put(&ada, field, v).unwrap(),
            None => tx.delete(&ada, field).unwrap(),
        });
        assert_eq!(refused_with(victim, &c), Breach::ChangesOthersMarker);
    }
    let (_, c) = forge(bo, actor(2), |tx| {
        tx.put(&ada, "sharing_left_at", 99).unwrap()
    });
    assert_eq!(refused_with(victim, &c), Breach::ChangesOthersMarker);
    // Her name, and her record replaced by a new map.
    let (_, c) = forge(bo, actor(2), |tx| tx.put(&ada, "name", "Someone").unwrap());
    assert_eq!(refused_with(victim, &c), Breach::ChangesOtherPerson);
    let people = coll(bo, Collection::People);
    let (_, c) = forge(bo, actor(2), |tx| {
        tx.put_object(&people, a.to_string().as_str(), ObjType::Map)
            .unwrap();
    });
    assert_eq!(refused_with(victim, &c), Breach::ChangesOtherPerson);
    // ... or hidden behind a new map of his, forged as a concurrent create although hers
    // is in its past.
    let c = clear_preds(c);
    assert_eq!(refused_with(victim, &c), Breach::ChangesOtherPerson);
}

/// An op with an empty pred at `key`, as a modified client can write: Automerge keeps it
/// as a conflict beside what is there, although what is there is in its causal past.
fn forge_conflict(base: &Automerge, obj: &ObjId, key: &str, value: &str) -> Change {
    let (_, change) = forge(base, actor(2), |tx| tx.put(obj, key, value).unwrap());
    clear_preds(change)
}

/// The same change with every op's pred emptied.
fn clear_preds(change: Change) -> Change {
    let mut expanded = change.decode();
    for op in &mut expanded.operations {
        op.pred = automerge::legacy::SortedVec::new();
    }
    expanded.hash = None;
    Change::from(expanded)
}

#[test]
fn sealed_answers_are_written_once_and_open_only_with_their_key() {
    let (mut da, mut db) = docs_pair();
    let (a, b) = (da.me, db.me);
    let mine = checkin(a, 30, 0, Visibility::RevealTogether);
    da.add_sealed(&mine, &age::x25519::Identity::generate(), 1)
        .unwrap();
    sync_both(&mut da.household, &mut db.household);
    db.add_checkin(&checkin(b, 31, 0, Visibility::Shared), 2)
        .unwrap();
    sync_both(&mut da.household, &mut db.household);
    let doc = db.household.automerge();
    let key = mine.id.to_string();
    let sealed = text_at(doc, Collection::CheckIns, &key);
    let checkins = coll(doc, Collection::CheckIns);

    // Ada's own device rewrites her sealed answer after seeing Bo's.
    let other = crate::envelope::encrypt_to(
        [&age::x25519::Identity::generate().to_public() as &dyn age::Recipient],
        b"{}",
    )
    .unwrap();
    let mut parts: Vec<&str> = sealed.split(SEP).collect();
    let swapped = data_encoding::BASE64.encode(&other);
    parts[4] = &swapped;
    let rewritten = parts.join(&SEP.to_string());
    let (_, c) = forge(doc, actor(1), |tx| {
        tx.put(&checkins, key.as_str(), rewritten.as_str()).unwrap();
    });
    assert_eq!(
        refused_with(doc, &c),
        Breach::RewritesSealed { kind: "check-in" }
    );
    // ... or as a conflict beside the first.
    let c = forge_conflict(doc, &checkins, &key, &rewritten);
    let c = retag(c, actor(1));
    assert_eq!(
        refused_with(doc, &c),
        Breach::RewritesSealed { kind: "check-in" }
    );
    // A key that does not open it.
    let wrong = age::x25519::Identity::generate();
    let published = format!("{sealed}{SEP}{}", wrong.to_string().expose_secret());
    let (_, c) = forge(doc, actor(1), |tx| {
        tx.put(&checkins, key.as_str(), published.as_str()).unwrap();
    });
    assert_eq!(
        refused_with(doc, &c),
        Breach::KeyDoesNotOpen { kind: "check-in" }
    );
    // Bo publishing a key for her.
    let (_, c) = forge(doc, actor(2), |tx| {
        tx.put(&checkins, key.as_str(), published.as_str()).unwrap();
    });
    assert_eq!(
        refused_with(doc, &c),
        Breach::WritesAsOther { kind: "check-in" }
    );
    // The true key, from her device, passes.
    let before = da.household.automerge().clone();
    assert_eq!(da.publish_reveals(3).unwrap().len(), 1);
    let changes = news(&before, da.household.automerge());
    assert!(verdict(&before, DocKind::Household, &changes).all_accepted());
}

/// The same change written by another actor (so it reads as another person's).
fn retag(change: Change, actor: ActorId) -> Change {
    let mut expanded = change.decode();
    expanded.actor_id = actor;
    expanded.hash = None;
    Change::from(expanded)
}

#[test]
fn a_handoff_is_answered_only_by_the_person_it_was_offered_to() {
    let (mut da, mut db) = docs_pair();
    let (a, b) = (da.me, db.me);
    let it = item(a, 40);
    da.add_ledger_item(&it, 1).unwrap();
    let h = handoff(41, it.id, a, b);
    da.propose_handoff(&h, 1).unwrap();
    sync_both(&mut da.household, &mut db.household);
    let doc = da.household.automerge();
    let obj = record(doc, Collection::Handoffs, &h.id.to_string());
    // The proposer accepts on Bo's behalf, declines, or names herself as the answerer.
    for (state, by) in [("accepted", b), ("declined", a), ("countered", a)] {
        let (_, c) = forge(doc, actor(1), |tx| {
            tx.put(&obj, "state", state).unwrap();
            tx.put(&obj, "answered_by", by.to_string()).unwrap();
        });
        assert_eq!(refused_with(doc, &c), Breach::AnswersForOther, "{state}");
    }
    // Bo answers as himself but says Ada did.
    let (_, c) = forge(doc, actor(2), |tx| {
        tx.put(&obj, "state", "accepted").unwrap();
        tx.put(&obj, "answered_by", a.to_string()).unwrap();
    });
    assert_eq!(refused_with(doc, &c), Breach::AnswersForOther);
    // The handoff redirected, so that she may answer it.
    let (_, c) = forge(doc, actor(1), |tx| {
        tx.put(&obj, "to", a.to_string()).unwrap()
    });
    assert_eq!(refused_with(doc, &c), Breach::ChangesHandoffTerms);
    // Accepting without a counter to accept.
    let (_, c) = forge(doc, actor(1), |tx| {
        tx.put(&obj, "state", "accepted").unwrap();
        tx.put(&obj, "answered_by", a.to_string()).unwrap();
    });
    assert_eq!(refused_with(doc, &c), Breach::AnswersForOther);
    // Once answered, it cannot be deleted away.
    db.answer_handoff(h.id, HandoffState::Declined, b, None, 2)
        .unwrap();
    sync_both(&mut da.household, &mut db.household);
    let doc = da.household.automerge();
    let handoffs = coll(doc, Collection::Handoffs);
    let (_, c) = forge(doc, actor(1), |tx| {
        tx.delete(&handoffs, h.id.to_string().as_str()).unwrap()
    });
    assert_eq!(refused_with(doc, &c), Breach::RemovesAnswer);
}

#[test]
fn the_document_shape_is_fixed() {
    let (da, db) = docs_pair();
    let doc = da.household.automerge();
    let bo = db.household.automerge();
    let (_, c) = forge(bo, actor(2), |tx| tx.put(ROOT, "notes", "x").unwrap());
    assert_eq!(refused_with(doc, &c), Breach::OutsideCollections);
    let (_, c) = forge(bo, actor(2), |tx| tx.delete(ROOT, "checkins").unwrap());
    assert_eq!(refused_with(doc, &c), Breach::ReplacesCollection);
    let (_, c) = forge(bo, actor(2), |tx| {
        tx.put_object(ROOT, "moments", ObjType::Map).unwrap();
    });
    assert_eq!(refused_with(doc, &c), Breach::ReplacesCollection);
    let moments = coll(bo, Collection::Moments);
    let (_, c) = forge(bo, actor(2), |tx| {
        tx.put(&moments, "not-an-id", "x").unwrap()
    });
    assert_eq!(refused_with(doc, &c), Breach::UnknownKey { kind: "moment" });
    let id = Uuid::from_u128(5).to_string();
    let (_, c) = forge(bo, actor(2), |tx| {
        tx.put(&moments, id.as_str(), "garbage").unwrap()
    });
    assert_eq!(refused_with(doc, &c), Breach::Malformed { kind: "moment" });
    let (_, c) = forge(bo, actor(2), |tx| {
        tx.put_object(&moments, id.as_str(), ObjType::Map).unwrap();
    });
    assert_eq!(refused_with(doc, &c), Breach::Malformed { kind: "moment" });
    // The private document takes only its own person's changes.
    let mut theirs = Doc::new(DocKind::Private(da.me), actor(2));
    theirs
        .automerge_mut()
        .transact(|tx| tx.put(ROOT, "distrust:X", 1))
        .unwrap();
    let changes = news(da.private.automerge(), theirs.automerge());
    let v = verdict(da.private.automerge(), DocKind::Private(da.me), &changes);
    assert_eq!(v.refused, vec![(0, Breach::NotTheirDocument)]);
}

#[test]
fn a_device_entry_changes_only_by_its_person() {
    let (mut da, mut db) = docs_pair();
    let (a, b) = (da.me, db.me);
    da.put_device(&device("ADA-1", a), 1).unwrap();
    sync_both(&mut da.household, &mut db.household);
    let doc = da.household.automerge();
    let bo = db.household.automerge();
    let entry = record(bo, Collection::Devices, "ADA-1");
    let (_, c) = forge(bo, actor(2), |tx| tx.put(&entry, "name", "gone").unwrap());
    assert_eq!(refused_with(doc, &c), Breach::ChangesOthersDevice);
    let (_, c) = forge(bo, actor(2), |tx| {
        tx.put(&entry, "person", b.to_string()).unwrap()
    });
    assert_eq!(refused_with(doc, &c), Breach::ChangesOthersDevice);
    let devices = coll(bo, Collection::Devices);
    let (_, c) = forge(bo, actor(2), |tx| tx.delete(&devices, "ADA-1").unwrap());
    assert_eq!(refused_with(doc, &c), Breach::ChangesOthersDevice);
    // Bo may add an entry (its chain is checked by the roster), and change his own.
    db.put_device(&device("BO-1", b), 2).unwrap();
    let mut renamed = device("BO-1", b);
    renamed.name = "phone".into();
    db.put_device(&renamed, 3).unwrap();
    sync_checked(&mut da.household, &db.household);
}

#[test]
fn dependents_of_a_refused_change_wait_with_it_and_independent_ones_pass() {
    let (mut da, db) = docs_pair();
    let a = da.me;
    da.add_checkin(&checkin(a, 10, 0, Visibility::Shared), 1)
        .unwrap();
    let mut bo = db.clone();
    sync_checked(&mut bo.household, &da.household);
    let start = bo.household.automerge().clone();
    // An honest moment of Bo's, on its own branch.
    let mut honest = bo.clone();
    honest
        .add_moment(
            &Moment {
                id: Uuid::from_u128(90),
                kind: MomentKind::Talk,
                started_by: honest.me,
                when: When::from_utc(0, 0),
                note: None,
            },
            2,
        )
        .unwrap();
    // A forged deletion of Ada's check-in, then two honest-looking changes on top of it.
    let checkins = coll(&start, Collection::CheckIns);
    let key = Uuid::from_u128(10).to_string();
    let (mut rogue, _) = forge(&start, actor(2), |tx| {
        tx.delete(&checkins, key.as_str()).unwrap()
    });
    let mut rogue_docs = Docs::from_parts(
        Doc::from_automerge(DocKind::Household, rogue.clone(), actor(2)),
        bo.private.clone(),
        bo.me,
    );
    rogue_docs
        .add_checkin(&checkin(bo.me, 91, 0, Visibility::Shared), 3)
        .unwrap();
    rogue_docs
        .add_checkin(&checkin(bo.me, 92, 0, Visibility::Shared), 4)
        .unwrap();
    rogue = rogue_docs.household.automerge().clone();
    let mut batch = news(&start, &rogue);
    assert_eq!(batch.len(), 3);
    // The honest moment was made by another actor id of Bo's so the two branches do not
    // share a sequence.
    let moment = retag(
        news(&start, honest.household.automerge()).remove(0),
        actor(4),
    );
    batch.reverse();
    batch.insert(1, moment);
    let v = verdict(da.household.automerge(), DocKind::Household, &batch);
    assert_eq!(v.accepted, vec![1]);
    let mut refused = v.refused.clone();
    refused.sort_by_key(|(i, _)| *i);
    assert_eq!(
        refused.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>(),
        vec![
            Breach::DependsOnRefused,
            Breach::DependsOnRefused,
            Breach::ChangesOthers { kind: "check-in" }
        ]
    );
}

#[test]
fn breaches_name_no_content() {
    for b in [
        Breach::WritesAsOther { kind: "check-in" },
        Breach::KeyDoesNotOpen { kind: "reflection" },
        Breach::ChangesOthersMarker,
        Breach::DependsOnRefused,
    ] {
        let text = b.to_string();
        assert!(text.starts_with("it "), "{text}");
        assert!(!text.contains("AGE-SECRET"));
    }
}

/// About a year of use, about nine records a day: `cargo test -p hearth-core --release
/// -- --ignored --nocapture cost_per_change`.
#[test]
#[ignore]
// A measurement, not a rule of the core: the clock is read only to report the cost.
#[allow(clippy::disallowed_methods)]
fn cost_per_change() {
    let (mut da, mut db) = docs_pair();
    let (a, b) = (da.me, db.me);
    let items: Vec<Uuid> = (0..6u128).map(|n| Uuid::from_u128(0x1000 + n)).collect();
    for id in &items {
        da.add_ledger_item(&item(a, id.as_u128()), 1).unwrap();
    }
    sync_both(&mut da.household, &mut db.household);
    let genesis = Doc::new(DocKind::Household, actor(9));
    let mut n = 0u128;
    for day in 0..365i64 {
        let at = 1_700_000_000_000 + day * 86_400_000;
        for (docs, who) in [(&mut da, a), (&mut db, b)] {
            n += 1;
            docs.add_checkin(&checkin(who, 0x10_0000 + n, day, Visibility::Shared), at)
                .unwrap();
            n += 1;
            docs.add_moment(
                &Moment {
                    id: Uuid::from_u128(0x20_0000 + n),
                    kind: MomentKind::Talk,
                    started_by: who,
                    when: When::from_utc(at, 0),
                    note: None,
                },
                at,
            )
            .unwrap();
            n += 1;
            docs.add_done(
                &DoneEntry {
                    id: Uuid::from_u128(0x30_0000 + n),
                    item: Some(items[(n % 6) as usize]),
                    label: None,
                    by: who,
                    when: When::from_utc(at, 0),
                    minutes: Some(10),
                    note: None,
                },
                at,
            )
            .unwrap();
            let done = Uuid::from_u128(0x30_0000 + n);
            n += 1;
            let other = if who == a { b } else { a };
            docs.add_ack(
                &Acknowledgment {
                    id: Uuid::from_u128(0x40_0000 + n),
                    from: who,
                    to: other,
                    target: Target {
                        kind: TargetKind::Done,
                        id: done,
                    },
                    kind: AckKind::Seen,
                    when: When::from_utc(at, 0),
                    note: None,
                },
                at,
            )
            .unwrap();
            if day % 2 == 0 {
                let id = items[(n % 6) as usize];
                docs.update_ledger_item(id, at, |i| i.minutes_per_week = Some((n % 90) as u32))
                    .unwrap();
            }
        }
        if day % 3 == 0 {
            da.set_pause(
                a,
                Some(&Pause {
                    since: at,
                    until: Some(at + 1),
                }),
                at,
            )
            .unwrap();
        }
        let (ha, hb) = (da.household.clone(), db.household.clone());
        da.household
            .automerge_mut()
            .merge(&mut hb.automerge().clone())
            .unwrap();
        db.household
            .automerge_mut()
            .merge(&mut ha.automerge().clone())
            .unwrap();
    }
    let changes = news(genesis.automerge(), da.household.automerge());
    let authored: Vec<Authored<'_>> = changes
        .iter()
        .map(|c| Authored {
            change: c,
            person: author_of(c),
        })
        .collect();
    let started = std::time::Instant::now();
    let v = check_changes(genesis.automerge(), DocKind::Household, &authored);
    let catch_up = started.elapsed();
    assert!(
        v.all_accepted(),
        "{:?}",
        &v.refused[..v.refused.len().min(3)]
    );
    // Live: each change alone, against the document just before it.
    let mut live = genesis.automerge().clone();
    let mut checking = std::time::Duration::ZERO;
    for c in v.accepted.iter().map(|&i| &changes[i]) {
        let started = std::time::Instant::now();
        let v = check_changes(
            &live,
            DocKind::Household,
            &[Authored {
                change: c,
                person: author_of(c),
            }],
        );
        checking += started.elapsed();
        assert!(v.all_accepted(), "{:?}", v.refused);
        live.apply_changes([c.clone()]).unwrap();
    }
    // What decoding alone costs, for comparison.
    let started = std::time::Instant::now();
    let ops: usize = changes.iter().map(|c| c.decode().operations.len()).sum();
    let decoding = started.elapsed();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / changes.len() as f64;
    eprintln!(
        "decode() alone: {:.2} µs per change ({ops} ops)",
        per(decoding)
    );
    eprintln!(
        "{} changes: catch-up {:.1} ms ({:.2} µs per change); one at a time {:.2} µs per change",
        changes.len(),
        catch_up.as_secs_f64() * 1e3,
        per(catch_up),
        per(checking)
    );
}
