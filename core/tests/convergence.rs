//! Convergence of the household documents under concurrent domain operations.
//!
//! Two or three replicas (partner A's device, partner B's device and, with three, A's
//! second device, which also shares A's private document) each apply a random sequence
//! of typed `Docs` operations, with random partial syncs in between. Then they all merge
//! in a random order, and must end with identical heads, identical contents and
//! identical answers to every query. The operations include the conflicting ones: a title
//! edited on two devices, an item retired on one while edited on another, a field
//! removed on one while set on another, and a handoff answered on two devices at once
//! (accepted by the partner it was offered to while the proposer withdraws it).
//!
//! Runs a few hundred cases by default; `HEARTH_LONG_TESTS=1` runs thousands.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use automerge::{ActorId, Automerge, Change};
use chrono::NaiveDate;
use hearth_core::authority::{check_changes, Authored};
use hearth_core::doc::{Doc, DocError, DocKind, Docs};
use hearth_core::model::*;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

const T0: Millis = 1_700_000_000_000;
const TITLES: &[&str] = &[
    "Bins",
    "Take the bins out",
    "Bins out on Tuesday",
    "Recycling and bins",
    "Plan meals",
];
const STANDARDS: &[&str] = &["", "Out by Tuesday", "Most weeks", "Out by Tuesday night"];

fn cases() -> u32 {
    match std::env::var("HEARTH_LONG_TESTS") {
        Ok(v) if v == "1" => 4000,
        _ => 300,
    }
}

fn person(n: u128, name: &str) -> Person {
    Person {
        id: Uuid::from_u128(n),
        name: name.into(),
        joined_at: T0,
    }
}

fn a() -> PersonId {
    Uuid::from_u128(0xA)
}

fn b() -> PersonId {
    Uuid::from_u128(0xB)
}

fn item(id: Uuid, by: PersonId, title: &str) -> LedgerItem {
    LedgerItem {
        id,
        title: title.into(),
        domain: Domain::Household,
        labour: Labour::Physical,
        invisible: false,
        owners: Owners::all(by),
        cadence: Some(Cadence::Weekly),
        minutes_per_week: Some(20),
        weight: 1,
        good_enough: "Out by Tuesday".into(),
        status: ItemStatus::Active,
        agreed_by: BTreeSet::from([by]),
        agreed_at: Some(T0),
        created_by: by,
        created_at: T0,
        created_utc_offset_min: 0,
        paused_until: None,
    }
}

fn handoff(id: Uuid, item: Uuid, stage: Stage, from: PersonId, to: PersonId) -> Handoff {
    Handoff {
        id,
        item,
        stage,
        from,
        to,
        when: When::from_utc(T0, 60),
        note: None,
        state: HandoffState::Open,
        answered_by: None,
        answered_at: None,
        counter: None,
    }
}

/// Replica 1 is B's device; replicas 0 and 2 are A's.
fn person_of(change: &Change) -> PersonId {
    match change.actor_id().to_bytes().first() {
        Some(2) => b(),
        _ => a(),
    }
}

/// Merges what `from` has into `into`, as sync would: every change must first pass the
/// authority rules with its true author, since honest use is never refused.
fn merge(into: &mut Doc, from: &Doc) {
    let changes = into.automerge().get_changes_added(from.automerge());
    let authored: Vec<Authored<'_>> = changes
        .iter()
        .map(|change| Authored {
            change,
            person: person_of(change),
        })
        .collect();
    let verdict = check_changes(into.automerge(), into.kind(), &authored);
    assert!(
        verdict.all_accepted(),
        "an honest change was refused: {:?}",
        verdict.refused
    );
    into.automerge_mut().apply_changes(changes).unwrap();
}

/// The replicas after a shared start: both people, three items, and one open handoff in
/// each direction, so that concurrent answers are likely.
fn replicas(n: usize) -> Vec<Docs> {
    let mut first = Docs::new(a(), ActorId::from(vec![1u8; 16]));
    first.add_person(&person(0xA, "Ada"), T0).unwrap();
    first.add_person(&person(0xB, "Bo"), T0).unwrap();
    for (k, title) in TITLES.iter().take(3).enumerate() {
        let owner = if k % 2 == 0 { a() } else { b() };
        first
            .add_ledger_item(&item(Uuid::from_u128(0x100 + k as u128), owner, title), T0)
            .unwrap();
    }
    first
        .propose_handoff(
            &handoff(
                Uuid::from_u128(0x200),
                Uuid::from_u128(0x100),
                Stage::Plan,
                a(),
                b(),
            ),
            T0,
        )
        .unwrap();
    first
        .propose_handoff(
            &handoff(
                Uuid::from_u128(0x201),
                Uuid::from_u128(0x101),
                Stage::FollowUp,
                b(),
                a(),
            ),
            T0,
        )
        .unwrap();
    let mut out = vec![first];
    for r in 1..n {
        let me = if r == 1 { b() } else { a() };
        let mut docs = Docs::new(me, ActorId::from(vec![r as u8 + 1; 16]));
        merge(&mut docs.household, &out[0].household);
        if me == a() {
            merge(&mut docs.private, &out[0].private);
        }
        out.push(docs);
    }
    out
}

/// One domain operation, with indices resolved against the replica's current state.
#[derive(Debug, Clone)]
enum Op {
    CheckIn {
        battery: u8,
        dread: u8,
        private: bool,
    },
    AddItem {
        title: usize,
    },
    Title {
        item: usize,
        title: usize,
    },
    GoodEnough {
        item: usize,
        text: usize,
    },
    Owner {
        item: usize,
        stage: usize,
        owner: u8,
    },
    Status {
        item: usize,
        status: usize,
    },
    Minutes {
        item: usize,
        minutes: Option<u32>,
    },
    Done {
        item: Option<usize>,
        minutes: Option<u32>,
    },
    Ack {
        target: usize,
        kind: usize,
    },
    Propose {
        item: usize,
        stage: usize,
    },
    Answer {
        handoff: usize,
        choice: usize,
    },
    Moment {
        kind: usize,
    },
    Pause {
        on: bool,
    },
}

#[derive(Debug, Clone)]
enum Step {
    Apply { replica: usize, op: Op },
    Sync { from: usize, to: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let idx = 0usize..8;
    prop_oneof![
        1 => (0u8..=100, 0u8..=4, any::<bool>())
            .prop_map(|(battery, dread, private)| Op::CheckIn { battery, dread, private }),
        1 => (0..TITLES.len()).prop_map(|title| Op::AddItem { title }),
        3 => (idx.clone(), 0..TITLES.len()).prop_map(|(item, title)| Op::Title { item, title }),
        1 => (idx.clone(), 0..STANDARDS.len()).prop_map(|(item, text)| Op::GoodEnough { item, text }),
        2 => (idx.clone(), 0usize..4, 0u8..3).prop_map(|(item, stage, owner)| Op::Owner { item, stage, owner }),
        2 => (idx.clone(), 0usize..3).prop_map(|(item, status)| Op::Status { item, status }),
        1 => (idx.clone(), proptest::option::of(0u32..600)).prop_map(|(item, minutes)| Op::Minutes { item, minutes }),
        2 => (proptest::option::of(idx.clone()), proptest::option::of(1u32..120))
            .prop_map(|(item, minutes)| Op::Done { item, minutes }),
        1 => (0usize..32, 0usize..3).prop_map(|(target, kind)| Op::Ack { target, kind }),
        2 => (idx.clone(), 0usize..4).prop_map(|(item, stage)| Op::Propose { item, stage }),
        4 => (idx, 0usize..4).prop_map(|(handoff, choice)| Op::Answer { handoff, choice }),
        1 => (0usize..6).prop_map(|kind| Op::Moment { kind }),
        1 => any::<bool>().prop_map(|on| Op::Pause { on }),
    ]
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..n, op()).prop_map(|(replica, op)| Step::Apply { replica, op }),
        1 => (0..n, 0..n).prop_map(|(from, to)| Step::Sync { from, to }),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Step>, Vec<usize>, u64)> {
    (2usize..=3).prop_flat_map(|n| {
        (
            Just(n),
            proptest::collection::vec(step(n), 1..60),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            any::<u64>(),
        )
    })
}

/// Ids unique across replicas and steps, so concurrent inserts never share a key by
/// accident (they would not in real life either: ids are random v4 UUIDs).
fn fresh_id(replica: usize, step: usize) -> Uuid {
    Uuid::from_u128(((replica as u128 + 1) << 64) | step as u128)
}

fn pick<T: Clone>(list: &[T], index: usize) -> Option<T> {
    (!list.is_empty()).then(|| list[index % list.len()].clone())
}

/// Applies one op. Refusals that the API may legitimately give (an answered handoff, a
/// retired item) are fine; anything else fails the test.
fn apply(docs: &mut Docs, replica: usize, n: usize, op: &Op) {
    let now = T0 + 60_000 * (n as i64 + 1);
    let when = When::from_utc(now, 60);
    let me = docs.me;
    let other = if me == a() { b() } else { a() };
    let items: Vec<Uuid> = docs.ledger_items().iter().map(|i| i.id).collect();
    let result: Result<(), DocError> = match op {
        Op::CheckIn {
            battery,
            dread,
            private,
        } => docs.add_checkin(
            &CheckIn {
                id: fresh_id(replica, n),
                author: me,
                when,
                battery: *battery,
                signs: [(BurnoutSign::Dread, *dread)].into(),
                body: BTreeSet::new(),
                basics: [(Basic::Sleep, BasicLevel::Partly)].into(),
                note: None,
                ask: None,
                visibility: if *private {
                    Visibility::Private
                } else {
                    Visibility::Shared
                },
                kept_to_self: BTreeSet::new(),
            },
            now,
        ),
        Op::AddItem { title } => {
            docs.add_ledger_item(&item(fresh_id(replica, n), me, TITLES[*title]), now)
        }
        Op::Title { item, title } => match pick(&items, *item) {
            Some(id) => docs
                .update_ledger_item(id, now, |i| i.title = TITLES[*title].into())
                .map(drop),
            None => Ok(()),
        },
        Op::GoodEnough { item, text } => match pick(&items, *item) {
            Some(id) => docs
                .update_ledger_item(id, now, |i| i.good_enough = STANDARDS[*text].into())
                .map(drop),
            None => Ok(()),
        },
        Op::Owner { item, stage, owner } => match pick(&items, *item) {
            Some(id) => {
                let owner = [Some(a()), Some(b()), None][usize::from(*owner)];
                docs.update_ledger_item(id, now, |i| i.owners.set(Stage::ALL[*stage], owner))
                    .map(drop)
            }
            None => Ok(()),
        },
        Op::Status { item, status } => match pick(&items, *item) {
            Some(id) => docs
                .update_ledger_item(id, now, |i| i.status = ItemStatus::ALL[*status])
                .map(drop),
            None => Ok(()),
        },
        Op::Minutes { item, minutes } => match pick(&items, *item) {
            Some(id) => docs
                .update_ledger_item(id, now, |i| i.minutes_per_week = *minutes)
                .map(drop),
            None => Ok(()),
        },
        Op::Done { item, minutes } => {
            let item = item.and_then(|i| pick(&items, i));
            docs.add_done(
                &DoneEntry {
                    id: fresh_id(replica, n),
                    item,
                    label: item.is_none().then(|| "Found the lost shoe".into()),
                    by: me,
                    when,
                    minutes: *minutes,
                    note: None,
                },
                now,
            )
        }
        Op::Ack { target, kind } => {
            let mut targets: Vec<Target> = Vec::new();
            let mut add = |kind: TargetKind, ids: Vec<Uuid>| {
                targets.extend(ids.into_iter().map(|id| Target { kind, id }));
            };
            add(TargetKind::Item, items.clone());
            add(
                TargetKind::Done,
                docs.done_entries().iter().map(|d| d.id).collect(),
            );
            add(
                TargetKind::Moment,
                docs.moments().iter().map(|m| m.id).collect(),
            );
            add(
                TargetKind::CheckIn,
                docs.household
                    .all::<CheckIn>()
                    .iter()
                    .map(|c| c.id)
                    .collect(),
            );
            match pick(&targets, *target) {
                Some(target) => docs.add_ack(
                    &Acknowledgment {
                        id: fresh_id(replica, n),
                        from: me,
                        to: other,
                        target,
                        kind: AckKind::ALL[*kind],
                        when,
                        note: None,
                    },
                    now,
                ),
                None => Ok(()),
            }
        }
        Op::Propose { item, stage } => match pick(&items, *item) {
            Some(id) => docs.propose_handoff(
                &handoff(fresh_id(replica, n), id, Stage::ALL[*stage], me, other),
                now,
            ),
            None => Ok(()),
        },
        Op::Answer { handoff, choice } => {
            // Open ones, and the counters made to this person, which they may accept.
            let open: Vec<Handoff> = docs
                .handoffs()
                .into_iter()
                .filter(|h| {
                    h.state == HandoffState::Open
                        || (h.state == HandoffState::Countered && h.from == me)
                })
                .collect();
            match pick(&open, *handoff) {
                Some(h) => {
                    let (state, counter) = if h.state == HandoffState::Countered {
                        (HandoffState::Accepted, None)
                    } else if me == h.from {
                        (HandoffState::Withdrawn, None)
                    } else {
                        match choice % 3 {
                            0 => (HandoffState::Accepted, None),
                            1 => (HandoffState::Declined, None),
                            _ => (
                                HandoffState::Countered,
                                Some("Alternate weeks?".to_string()),
                            ),
                        }
                    };
                    docs.answer_handoff(h.id, state, me, counter, now).map(drop)
                }
                None => Ok(()),
            }
        }
        Op::Pause { on } => {
            let pause = Pause {
                since: now,
                until: Some(now + 3_600_000),
            };
            docs.set_pause(me, on.then_some(&pause), now)
        }
        Op::Moment { kind } => docs.add_moment(
            &Moment {
                id: fresh_id(replica, n),
                kind: MomentKind::ALL[*kind],
                started_by: me,
                when,
                note: None,
            },
            now,
        ),
    };
    match result {
        Ok(()) | Err(DocError::Invalid(_)) => {}
        Err(e) => panic!("{op:?} on replica {replica} failed unexpectedly: {e}"),
    }
}

fn sync(replicas: &mut [Docs], from: usize, to: usize) {
    if from == to {
        return;
    }
    let source = replicas[from].clone();
    merge(&mut replicas[to].household, &source.household);
    if replicas[to].me == source.me {
        merge(&mut replicas[to].private, &source.private);
    }
}

/// Everything a user could see, from one replica.
#[derive(Debug, PartialEq)]
struct View {
    people: Vec<Person>,
    devices: Vec<Device>,
    items: Vec<LedgerItem>,
    shared_checkins: Vec<CheckIn>,
    reflections: Vec<Reflection>,
    done: Vec<DoneEntry>,
    acks: Vec<Acknowledgment>,
    handoffs: Vec<Handoff>,
    moments: Vec<Moment>,
}

fn view(docs: &Docs) -> View {
    let mut shared_checkins = docs.household.all::<CheckIn>();
    shared_checkins.sort_by_key(|c| c.id);
    View {
        people: docs.people(),
        devices: docs.devices(),
        items: docs.ledger_items(),
        shared_checkins,
        reflections: docs.household.all(),
        done: docs.done_entries(),
        acks: docs.acks(),
        handoffs: docs.handoffs(),
        moments: docs.moments(),
    }
}

/// Applies `changes` to an empty document one at a time, in the given order; Automerge
/// holds back a change until its dependencies arrive.
fn replay(changes: &[Change]) -> Automerge {
    let mut am = Automerge::new();
    for change in changes {
        am.apply_changes([change.clone()]).unwrap();
    }
    am
}

fn run_scenario(n: usize, steps: &[Step], order: &[usize], seed: u64) {
    let mut reps = replicas(n);
    for (k, s) in steps.iter().enumerate() {
        match s {
            Step::Apply { replica, op } => apply(&mut reps[*replica], *replica, k, op),
            Step::Sync { from, to } => sync(&mut reps, *from, *to),
        }
    }
    // Merge everything into the first in `order`, then hand the result back out in the
    // reverse order, so each replica sees the others' changes in a different sequence.
    let hub = order[0];
    for &r in &order[1..] {
        sync(&mut reps, r, hub);
    }
    for &r in order[1..].iter().rev() {
        sync(&mut reps, hub, r);
        // Private documents meet only on the same person's devices, through the hub
        // when the hub is theirs, or directly otherwise.
        for &s in order {
            if s != r && reps[s].me == reps[r].me {
                sync(&mut reps, s, r);
                sync(&mut reps, r, s);
            }
        }
    }

    // Same heads means the same set of changes; the hydrated tree shows that they also
    // mean the same document. (Saved bytes are not compared: Automerge orders its actor
    // table by first appearance, so equal documents can save differently.)
    let heads = reps[0].household.heads();
    let tree = reps[0].household.automerge().hydrate(None);
    let expected = view(&reps[0]);
    for docs in &reps[1..] {
        assert_eq!(docs.household.heads(), heads, "household heads differ");
        assert!(
            docs.household.automerge().hydrate(None) == tree,
            "household contents differ"
        );
        assert_eq!(view(docs), expected);
    }
    for x in 0..n {
        for y in 0..n {
            if reps[x].me == reps[y].me {
                assert_eq!(reps[x].private.heads(), reps[y].private.heads());
                let me = reps[x].me;
                let (from, to) = (
                    NaiveDate::from_ymd_opt(2023, 11, 1).unwrap(),
                    NaiveDate::from_ymd_opt(2023, 12, 1).unwrap(),
                );
                assert_eq!(
                    reps[x].checkins_between(me, from, to),
                    reps[y].checkins_between(me, from, to)
                );
            }
        }
    }

    // Every change, applied in a random order to a fresh document, gives the same state.
    let mut changes = reps[0].household.automerge().get_changes(&[]);
    changes.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let replayed = replay(&changes);
    assert_eq!(replayed.get_heads(), heads);
    let replayed = Docs::from_parts(
        Doc::from_automerge(DocKind::Household, replayed, ActorId::from(vec![0xee; 16])),
        reps[0].private.clone(),
        reps[0].me,
    );
    assert_eq!(view(&replayed), expected);

    // What the merged state must mean, whatever the order.
    let item_ids: BTreeSet<Uuid> = expected.items.iter().map(|i| i.id).collect();
    for d in &expected.done {
        if let Some(item) = d.item {
            assert!(item_ids.contains(&item), "a done entry lost its item");
        }
    }
    for h in &expected.handoffs {
        assert!(item_ids.contains(&h.item), "a handoff lost its item");
        assert_eq!(h.state == HandoffState::Open, h.answered_by.is_none());
    }
}

proptest! {
    // Integration tests have no lib.rs for proptest's default persistence to anchor on,
    // so failures are kept next to this file.
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn replicas_converge_whatever_the_merge_order((n, steps, order, seed) in scenario()) {
        run_scenario(n, &steps, &order, seed);
    }
}

/// Accepting on B's device while A withdraws on A's: both devices end the same, whichever
/// write Automerge ranks last (the higher Lamport counter, then the higher actor id).
#[test]
fn concurrent_accept_and_withdraw_converge() {
    for a_busier in [false, true] {
        let outcome = accept_against_withdraw(a_busier);
        eprintln!("A wrote more before withdrawing: {a_busier}: {outcome}");
    }
}

/// Runs the race and describes the merged result. With `a_busier`, A's device has made
/// more writes before it withdraws, so its write to `state` carries the higher counter.
fn accept_against_withdraw(a_busier: bool) -> String {
    let mut reps = replicas(2);
    if a_busier {
        for n in 0..5u8 {
            apply(
                &mut reps[0],
                0,
                1000 + usize::from(n),
                &Op::Moment { kind: 0 },
            );
        }
    }
    let h = Uuid::from_u128(0x200);
    let before = reps[0].handoff(h).unwrap();
    assert_eq!((before.from, before.to), (a(), b()));
    reps[1]
        .answer_handoff(h, HandoffState::Accepted, b(), None, T0 + 1000)
        .unwrap();
    reps[0]
        .answer_handoff(h, HandoffState::Withdrawn, a(), None, T0 + 1000)
        .unwrap();
    sync(&mut reps, 0, 1);
    sync(&mut reps, 1, 0);
    assert_eq!(view(&reps[0]), view(&reps[1]));
    let merged = reps[0].handoff(h).unwrap();
    assert!(matches!(
        merged.state,
        HandoffState::Accepted | HandoffState::Withdrawn
    ));
    let moved = reps[0].ledger_item(before.item).unwrap().owners.plan == Some(b());
    format!(
        "handoff ends {:?}, stage {}",
        merged.state,
        if moved { "moved to B" } else { "stayed with A" }
    )
}

/// The domain rule a merge should keep: a handoff that ends withdrawn (or declined) never
/// moved its stage. The owner change is a separate write from the answer, so when an
/// accept races a withdraw, `Docs` settles the handoff as accepted.
#[test]
fn withdrawn_handoff_never_moved_the_stage() {
    for a_busier in [false, true] {
        let outcome = accept_against_withdraw(a_busier);
        assert!(
            !outcome.contains("Withdrawn") || outcome.contains("stayed with A"),
            "{outcome}"
        );
    }
}

/// A retire on one device and a title edit on the other both survive the merge.
#[test]
fn retire_against_edit_keeps_both() {
    let mut reps = replicas(2);
    let id = Uuid::from_u128(0x102);
    reps[0]
        .update_ledger_item(id, T0 + 1, |i| i.status = ItemStatus::Retired)
        .unwrap();
    reps[1]
        .update_ledger_item(id, T0 + 1, |i| i.title = "Plan meals for the week".into())
        .unwrap();
    sync(&mut reps, 0, 1);
    sync(&mut reps, 1, 0);
    for docs in &reps {
        let it = docs.ledger_item(id).unwrap();
        assert_eq!(it.status, ItemStatus::Retired);
        assert_eq!(it.title, "Plan meals for the week");
    }
}
