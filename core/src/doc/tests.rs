use super::*;
use crate::model::*;
use automerge::ActorId;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// A person for tests: id `n`, joined at 0.
pub(crate) fn person(name: &str, n: u128) -> Person {
    Person {
        id: Uuid::from_u128(n),
        name: name.into(),
        joined_at: 0,
    }
}

/// An actor id for tests, all bytes `n`.
pub(crate) fn actor(n: u8) -> ActorId {
    ActorId::from(vec![n; 16])
}

/// Ada's device (actor 1) and Bo's (actor 2), after Ada's device wrote both people.
pub(crate) fn docs_pair() -> (Docs, Docs, PersonId, PersonId) {
    let a = person("Ada", 1);
    let b = person("Bo", 2);
    let mut da = Docs::new(a.id, actor(1));
    da.add_person(&a, 1000).unwrap();
    da.add_person(&b, 1000).unwrap();
    let mut db = Docs::new(b.id, actor(2));
    db.household
        .automerge_mut()
        .merge(&mut da.household.automerge().clone())
        .unwrap();
    (da, db, a.id, b.id)
}

/// An active ledger item `n` made by `by`.
pub(crate) fn item(by: PersonId, n: u128) -> LedgerItem {
    LedgerItem {
        id: Uuid::from_u128(n),
        title: "Plan the week's meals".into(),
        domain: Domain::Household,
        labour: Labour::Cognitive,
        invisible: true,
        owners: Owners::all(by),
        cadence: Some(Cadence::Weekly),
        minutes_per_week: Some(45),
        weight: 2,
        good_enough: "Five dinners sketched".into(),
        status: ItemStatus::Active,
        agreed_by: BTreeSet::new(),
        agreed_at: None,
        created_by: by,
        created_at: 1000,
        created_utc_offset_min: 0,
        paused_until: None,
    }
}

fn sync(a: &mut Doc, b: &mut Doc) {
    let mut ca = a.automerge().clone();
    let mut cb = b.automerge().clone();
    a.automerge_mut().merge(&mut cb).unwrap();
    b.automerge_mut().merge(&mut ca).unwrap();
}

#[test]
fn genesis_is_identical_everywhere_so_collections_never_fork() {
    let (mut da, mut db, a, b) = docs_pair();
    let c1 = checkin(a, 10, Visibility::Shared);
    let c2 = checkin(b, 11, Visibility::Shared);
    da.add_checkin(&c1, 2000).unwrap();
    db.add_checkin(&c2, 2000).unwrap();
    sync(&mut da.household, &mut db.household);
    assert_eq!(da.checkins().len(), 2);
    assert_eq!(db.checkins().len(), 2);
    // Two independently created empty docs also merge without losing a collection.
    let mut x = Doc::new(DocKind::Household, actor(7));
    let y = Doc::new(DocKind::Household, actor(8));
    assert_eq!(x.heads(), y.heads());
    x.automerge_mut().merge(&mut y.automerge().clone()).unwrap();
    assert_eq!(x.schema(), SCHEMA_VERSION);
}

fn checkin(author: PersonId, n: u128, visibility: Visibility) -> CheckIn {
    CheckIn {
        id: Uuid::from_u128(n),
        author,
        when: When::from_utc(1_700_000_000_000 + n as i64 * 86_400_000, 0),
        battery: 40,
        signs: BTreeMap::from([(BurnoutSign::Dread, 2)]),
        body: BTreeSet::from([BodySign::Fatigue]),
        basics: BTreeMap::from([(Basic::Sleep, BasicLevel::Partly)]),
        note: Some("long week".into()),
        ask: None,
        visibility,
        kept_to_self: Default::default(),
    }
}

#[test]
fn records_round_trip_and_private_ones_stay_out_of_the_household() {
    let (mut da, _db, a, _) = docs_pair();
    let shared = checkin(a, 10, Visibility::Shared);
    let private = checkin(a, 11, Visibility::Private);
    da.add_checkin(&shared, 1).unwrap();
    da.add_checkin(&private, 1).unwrap();
    assert_eq!(
        da.household.get::<CheckIn>(&shared.id.to_string()).unwrap(),
        Some(shared.clone())
    );
    assert!(!da
        .household
        .contains(Collection::CheckIns, &private.id.to_string()));
    assert_eq!(da.checkins(), vec![shared, private]);
}

#[test]
fn kept_answers_stay_in_the_private_document_and_come_back_for_the_author() {
    let (mut da, mut db, a, _) = docs_pair();
    let mut c = checkin(a, 12, Visibility::Shared);
    c.basics.insert(Basic::Safety, BasicLevel::No);
    c.signs.insert(BurnoutSign::Relief, 3);
    c.keep_own_answers();
    assert_eq!(
        c.kept_to_self,
        BTreeSet::from([OwnAnswer::Safety, OwnAnswer::Relief])
    );
    da.add_checkin(&c, 1).unwrap();
    // The household copy has neither the answers nor the list of them.
    let shared = da
        .household
        .get::<CheckIn>(&c.id.to_string())
        .unwrap()
        .unwrap();
    assert!(!shared.basics.contains_key(&Basic::Safety));
    assert!(!shared.signs.contains_key(&BurnoutSign::Relief));
    assert!(shared.kept_to_self.is_empty());
    assert_eq!(shared.basics.get(&Basic::Sleep), Some(&BasicLevel::Partly));
    let household =
        String::from_utf8_lossy(&da.household.automerge().clone().save_nocompress()).to_string();
    assert!(!household.contains("safety") && !household.contains("relief"));
    // The author reads it whole, from every read path.
    assert_eq!(da.checkins(), vec![c.clone()]);
    assert_eq!(
        da.checkins_between(a, c.when.date, c.when.date),
        vec![c.clone()]
    );
    // The partner's device, after sync, reads the shared part only.
    sync(&mut da.household, &mut db.household);
    assert_eq!(db.checkins(), vec![shared.clone()]);
    // Shared by choice: nothing is kept.
    let mut open = checkin(a, 13, Visibility::Shared);
    open.basics.insert(Basic::Safety, BasicLevel::Met);
    da.add_checkin(&open, 1).unwrap();
    sync(&mut da.household, &mut db.household);
    assert!(db
        .checkins()
        .iter()
        .any(|x| x.id == open.id && x.basics.contains_key(&Basic::Safety)));
    // Nobody keeps answers for someone else.
    let mut theirs = checkin(db.me, 14, Visibility::Shared);
    theirs.basics.insert(Basic::Safety, BasicLevel::No);
    theirs.keep_own_answers();
    assert!(da.add_checkin(&theirs, 1).is_err());
}

#[test]
fn checkins_between_filters_by_person_and_local_date() {
    let (mut da, _db, a, b) = docs_pair();
    for n in 0..10 {
        da.add_checkin(&checkin(a, n, Visibility::Shared), 1)
            .unwrap();
        da.add_checkin(&checkin(b, 100 + n, Visibility::Shared), 1)
            .unwrap();
    }
    let first = checkin(a, 2, Visibility::Shared).when.date;
    let last = checkin(a, 4, Visibility::Shared).when.date;
    let got = da.checkins_between(a, first, last);
    assert_eq!(
        got.iter().map(|c| c.id.as_u128()).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
}

#[test]
fn unknown_author_and_missing_references_are_refused() {
    let (mut da, _db, a, _) = docs_pair();
    let stranger = Uuid::from_u128(99);
    let err = da
        .add_checkin(&checkin(stranger, 1, Visibility::Shared), 1)
        .unwrap_err();
    assert!(err.to_string().contains("author points at"), "{err}");
    let ack = Acknowledgment {
        id: Uuid::from_u128(5),
        from: a,
        to: a,
        target: Target {
            kind: TargetKind::Item,
            id: Uuid::from_u128(404),
        },
        kind: AckKind::Thanks,
        when: When::from_utc(0, 0),
        note: None,
    };
    assert!(matches!(
        da.add_ack(&ack, 1),
        Err(DocError::Invalid(ValidationError::UnknownReference {
            field: "target",
            ..
        }))
    ));
    assert_eq!(da.household.count(Collection::Acks), 0);
}

#[test]
fn prefixes_resolve_like_git() {
    let (mut da, _db, a, _) = docs_pair();
    let mut i1 = item(a, 0xabc1 << 112);
    i1.title = "one".into();
    let mut i2 = item(a, 0xabc2 << 112);
    i2.title = "two".into();
    da.add_ledger_item(&i1, 1).unwrap();
    da.add_ledger_item(&i2, 1).unwrap();
    assert_eq!(da.resolve(Collection::Ledger, "abc1").unwrap(), i1.id);
    assert!(matches!(
        da.resolve(Collection::Ledger, "abc"),
        Err(DocError::Ambiguous { count: 2, .. })
    ));
    assert!(matches!(
        da.resolve(Collection::Ledger, "ffff"),
        Err(DocError::NotFound { .. })
    ));
}

#[test]
fn concurrent_edits_to_one_item_merge_deterministically() {
    let (mut da, mut db, a, b) = docs_pair();
    let it = item(a, 42);
    da.add_ledger_item(&it, 1).unwrap();
    sync(&mut da.household, &mut db.household);
    da.update_ledger_item(it.id, 2, |i| {
        i.title = "Plan the week's meals together".into();
        i.owners.plan = Some(b);
    })
    .unwrap();
    db.update_ledger_item(it.id, 2, |i| {
        i.title = "Plan the week's dinners".into();
        i.status = ItemStatus::Paused;
        i.owners.plan = Some(a);
    })
    .unwrap();
    sync(&mut da.household, &mut db.household);
    let left = da.ledger_item(it.id).unwrap();
    let right = db.ledger_item(it.id).unwrap();
    assert_eq!(left, right);
    // Text edits merge rather than one overwriting the other.
    assert_eq!(left.title, "Plan the week's dinners together");
    assert_eq!(left.status, ItemStatus::Paused);
    assert_eq!(da.household.heads(), db.household.heads());
}

#[test]
fn the_proposer_can_accept_a_counter_and_a_new_item_offers_the_partners_stages() {
    let (mut da, mut db, a, b) = docs_pair();
    // Ada adds an item meaning Bo to plan it: the plan stage is offered, not given.
    let mut it = item(a, 50);
    it.owners.set(Stage::Plan, Some(b));
    let mut ids = (60u128..).map(Uuid::from_u128);
    let (kept, offered) = da
        .add_ledger_item_offering(&it, &mut ids, When::from_utc(0, 0), 1)
        .unwrap();
    assert_eq!(kept.owners.plan, Some(a));
    assert_eq!(offered.len(), 1);
    assert_eq!((offered[0].stage, offered[0].to), (Stage::Plan, b));
    assert_eq!(offered[0].state, HandoffState::Open);
    sync(&mut da.household, &mut db.household);
    // Bo counters; Ada, who proposed, accepts the counter; nobody else can.
    let h = offered[0].id;
    db.answer_handoff(
        h,
        HandoffState::Countered,
        b,
        Some("I plan, you shop".into()),
        2,
    )
    .unwrap();
    sync(&mut da.household, &mut db.household);
    assert!(db
        .answer_handoff(h, HandoffState::Accepted, b, None, 3)
        .is_err());
    let done = da
        .answer_handoff(h, HandoffState::Accepted, a, None, 3)
        .unwrap();
    assert_eq!(done.state, HandoffState::Accepted);
    assert_eq!(done.answered_by, Some(a));
    assert_eq!(done.counter.as_deref(), Some("I plan, you shop"));
    // Words move no stage by themselves.
    assert_eq!(da.ledger_item(it.id).unwrap().owners.plan, Some(a));

    // An edit that puts a stage on Bo offers it; one Ada takes is hers at once; the
    // agreement starts again with her alone.
    da.agree_ledger_item(it.id, b, 4, 4).unwrap();
    let edit = ItemEdit {
        good_enough: Some("Signed by Friday".into()),
        owners: vec![(Stage::Do, b), (Stage::FollowUp, a)],
        ..ItemEdit::default()
    };
    let (edited, offered) = da
        .edit_ledger_item(it.id, &edit, a, &mut ids, When::from_utc(5, 0), 5)
        .unwrap();
    assert_eq!(edited.good_enough, "Signed by Friday");
    assert_eq!(edited.owners.do_, Some(a));
    assert_eq!(edited.owners.follow_up, Some(a));
    assert_eq!(edited.agreed_by, BTreeSet::from([a]));
    assert_eq!((offered[0].stage, offered[0].to), (Stage::Do, b));
    // Paused items carry no load until resumed.
    let paused = da.pause_ledger_item(it.id, None, 6).unwrap();
    assert_eq!(paused.status, ItemStatus::Paused);
    assert_eq!(
        da.resume_ledger_item(it.id, 7).unwrap().status,
        ItemStatus::Active
    );
}

#[test]
fn accepting_a_handoff_moves_the_stage() {
    let (mut da, mut db, a, b) = docs_pair();
    let it = item(a, 42);
    da.add_ledger_item(&it, 1).unwrap();
    let h = Handoff {
        id: Uuid::from_u128(7),
        item: it.id,
        stage: Stage::FollowUp,
        from: a,
        to: b,
        when: When::from_utc(0, 0),
        note: None,
        state: HandoffState::Open,
        answered_by: None,
        answered_at: None,
        counter: None,
    };
    da.propose_handoff(&h, 1).unwrap();
    sync(&mut da.household, &mut db.household);
    // Only the person it was offered to can accept.
    assert!(da
        .answer_handoff(h.id, HandoffState::Accepted, a, None, 2)
        .is_err());
    db.answer_handoff(h.id, HandoffState::Accepted, b, None, 2)
        .unwrap();
    assert_eq!(db.ledger_item(it.id).unwrap().owners.follow_up, Some(b));
    let bad = Handoff {
        id: Uuid::from_u128(8),
        item: Uuid::from_u128(404),
        ..h
    };
    assert!(matches!(
        db.propose_handoff(&bad, 3),
        Err(DocError::Invalid(ValidationError::UnknownReference {
            field: "item",
            ..
        }))
    ));
}

#[test]
fn removing_an_optional_field_deletes_it() {
    let (mut da, _db, a, _) = docs_pair();
    let mut it = item(a, 1);
    da.add_ledger_item(&it, 1).unwrap();
    it.minutes_per_week = None;
    da.household.put(&it, 2).unwrap();
    assert_eq!(da.ledger_item(it.id).unwrap().minutes_per_week, None);
}

#[test]
fn a_pause_travels_beside_the_person_and_survives_a_rewrite_of_the_record() {
    let (mut da, mut db, a, b) = docs_pair();
    assert_eq!(db.pause_of(a), None);
    let pause = Pause {
        since: 5_000,
        until: Some(9_000),
    };
    da.set_pause(a, Some(&pause), 5_000).unwrap();
    // Rewriting the person (as an import or a rename would) keeps the pause.
    let ada = da.people().into_iter().find(|p| p.id == a).unwrap();
    da.household.put(&ada, 6_000).unwrap();
    assert_eq!(da.pause_of(a), Some(pause));
    assert_eq!(da.people().len(), 2, "the side field is not a record");
    sync(&mut da.household, &mut db.household);
    assert_eq!(db.pause_of(a), Some(pause));
    assert_eq!(db.pause_of(b), None);
    assert!(pause.active_at(8_999) && !pause.active_at(9_000) && !pause.active_at(4_999));
    // Resume clears it everywhere.
    da.set_pause(a, None, 7_000).unwrap();
    sync(&mut da.household, &mut db.household);
    assert_eq!(db.pause_of(a), None);
    let backwards = Pause {
        since: 10,
        until: Some(10),
    };
    assert!(da.set_pause(a, Some(&backwards), 7_000).is_err());
    assert!(da.set_pause(Uuid::from_u128(99), None, 7_000).is_err());
}

#[test]
fn leaving_is_kept_from_the_earliest_record_and_ends_a_pause() {
    let (mut da, mut db, a, _) = docs_pair();
    da.set_pause(
        a,
        Some(&Pause {
            since: 1,
            until: None,
        }),
        1,
    )
    .unwrap();
    sync(&mut da.household, &mut db.household);
    db.set_left(a, 300, 300).unwrap();
    da.set_left(a, 200, 200).unwrap();
    sync(&mut da.household, &mut db.household);
    // Both wrote; whichever value wins, a later call never moves it forward.
    let left = da.left_at(a).unwrap();
    assert!(left == 200 || left == 300);
    da.set_left(a, 900, 900).unwrap();
    assert_eq!(da.left_at(a), Some(left));
    assert_eq!(da.pause_of(a), None);
    assert_eq!(db.left_at(a), Some(left));
}
