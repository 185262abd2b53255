//! Pause, leave and removal under partitions, on 3 or 4 simulated devices of two
//! people, each device applying the daemon's own `Policy`.
//!
//! Random edits, deliveries, resets, partitions, pauses, resumes, leavings and removals,
//! then the network heals and settles. Whatever happened before:
//! - while a pause or a leaving separates the two people, no household change crosses
//!   the line between them: each side ends with only what it held when the separation
//!   began and what its own devices wrote since;
//! - a removed device gets nothing the others wrote or held after its removal, and
//!   nothing it writes afterwards reaches anyone;
//! - within what the policies still allow, every device converges, and no private
//!   document ever leaves its person's devices.
//!
//! A few hundred cases in CI; `HEARTH_LONG_TESTS=1` runs 3000.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use automerge::ChangeHash;
use hearth_core::sync::sim::{Network, Persist};
use hearth_core::sync::{DocId, SyncLimits};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    Edit {
        device: usize,
        private: bool,
        key: u8,
        value: i64,
    },
    Deliver(u8),
    Reset {
        a: usize,
        b: usize,
        persist: Persist,
    },
    Connect {
        a: usize,
        b: usize,
    },
    Partition(Vec<u8>),
    Heal,
    Wait(u16),
    Pause {
        bob: bool,
        on: bool,
    },
    Leave {
        bob: bool,
    },
    Remove(usize),
}

fn arb_op(devices: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..devices, any::<bool>(), 0u8..8, any::<i64>())
            .prop_map(|(device, private, key, value)| Op::Edit { device, private, key, value }),
        4 => (1u8..60).prop_map(Op::Deliver),
        1 => (0..devices, 0..devices, prop_oneof![
                Just(Persist::Current), Just(Persist::Stale), Just(Persist::Lost)
            ])
            .prop_map(|(a, b, persist)| Op::Reset { a, b, persist }),
        2 => (0..devices, 0..devices).prop_map(|(a, b)| Op::Connect { a, b }),
        1 => proptest::collection::vec(0u8..3, devices).prop_map(Op::Partition),
        1 => Just(Op::Heal),
        1 => (0u16..2_000).prop_map(Op::Wait),
        2 => (any::<bool>(), any::<bool>()).prop_map(|(bob, on)| Op::Pause { bob, on }),
        1 => prop_oneof![3 => Just(None), 1 => any::<bool>().prop_map(Some)]
            .prop_filter_map("mostly nobody leaves", |bob| bob.map(|bob| Op::Leave { bob })),
        1 => prop_oneof![3 => Just(None), 1 => (0..devices).prop_map(Some)]
            .prop_filter_map("mostly nobody is removed", |d| d.map(Op::Remove)),
    ]
}

fn arb_scenario() -> impl Strategy<Value = (u64, Vec<bool>, Vec<Op>)> {
    (3usize..=4).prop_flat_map(|devices| {
        (
            any::<u64>(),
            proptest::collection::vec(any::<bool>(), devices),
            proptest::collection::vec(arb_op(devices), 0..60),
        )
    })
}

fn cases() -> u32 {
    if std::env::var("HEARTH_LONG_TESTS").is_ok_and(|v| v == "1") {
        3000
    } else {
        200
    }
}

fn person(bob: bool) -> Uuid {
    Uuid::from_u128(if bob { 0xb0b } else { 0xa11ce })
}

/// What each device held, and of which documents, at one moment.
type Held = BTreeMap<usize, BTreeMap<DocId, BTreeSet<ChangeHash>>>;

fn held(net: &Network<ChaCha8Rng>, docs: &[DocId]) -> Held {
    (0..net.devices().len())
        .map(|d| {
            let per_doc = docs.iter().map(|doc| (doc.clone(), net.changes(d, doc)));
            (d, per_doc.collect())
        })
        .collect()
}

/// The changes of `doc` that any of `devices` held.
fn union(held: &Held, devices: impl Iterator<Item = usize>, doc: &DocId) -> BTreeSet<ChangeHash> {
    devices
        .filter_map(|d| held.get(&d).and_then(|h| h.get(doc)))
        .flatten()
        .copied()
        .collect()
}

fn play(seed: u64, is_bob: &[bool], ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut net = Network::new(ChaCha8Rng::seed_from_u64(seed), SyncLimits::default());
    for b in is_bob {
        net.add_device(person(*b));
    }
    let household = DocId::household();
    let docs = [
        household.clone(),
        DocId::private(&person(false)),
        DocId::private(&person(true)),
    ];
    net.create_doc(0, &household);
    for bob in [false, true] {
        if let Some(first) = is_bob.iter().position(|b| *b == bob) {
            net.create_doc(first, &DocId::private(&person(bob)));
        }
    }
    net.connect_all();
    let (mut paused, mut left) = ([false; 2], false);
    // What each device held when the current separation of the two people began.
    let mut separated_since: Option<Held> = None;
    // What everyone held when each removed device was removed.
    let mut removals: BTreeMap<usize, Held> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Edit {
                device,
                private,
                key,
                value,
            } => {
                let doc = if private {
                    DocId::private(&person(is_bob[device]))
                } else {
                    household.clone()
                };
                net.edit(device, &doc, &format!("k{key}"), value);
            }
            Op::Deliver(n) => {
                for _ in 0..n {
                    net.step();
                }
            }
            Op::Reset { a, b, persist } => {
                net.disconnect(a, b, persist);
            }
            Op::Connect { a, b } => {
                net.connect(a, b);
            }
            Op::Partition(groups) => net.partition(&groups),
            Op::Heal => net.heal(),
            Op::Wait(ms) => {
                net.advance(Duration::from_millis(u64::from(ms)));
                net.step();
            }
            Op::Pause { bob, on } => {
                let was = left || paused[0] || paused[1];
                paused[usize::from(bob)] = on;
                let now = left || paused[0] || paused[1];
                if now && !was {
                    separated_since = Some(held(&net, &docs));
                } else if !now {
                    separated_since = None;
                }
                net.pause(person(bob), on);
            }
            Op::Leave { bob } => {
                if !(left || paused[0] || paused[1]) {
                    separated_since = Some(held(&net, &docs));
                }
                left = true;
                net.leave(person(bob));
            }
            Op::Remove(device) => {
                removals.entry(device).or_insert_with(|| held(&net, &docs));
                net.remove(device);
            }
        }
        net.check_health()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    net.heal();
    net.connect_all();
    net.run_until_quiescent(200_000)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    net.check_converged()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;

    let devices = 0..is_bob.len();
    let wrote =
        |change: &ChangeHash, who: &dyn Fn(usize) -> bool| net.author_of(change).is_some_and(who);
    if let Some(before) = &separated_since {
        for side in [false, true] {
            let mine = |d: usize| is_bob[d] == side;
            let had = union(before, devices.clone().filter(|d| mine(*d)), &household);
            for d in devices
                .clone()
                .filter(|d| mine(*d) && !removals.contains_key(d))
            {
                for change in net.changes(d, &household) {
                    prop_assert!(
                        had.contains(&change) || wrote(&change, &mine),
                        "a household change crossed to device {d} while the two people \
                         were apart"
                    );
                }
            }
        }
    }
    for (removed, before) in &removals {
        let others = |d: usize| d != *removed;
        for doc in &docs {
            let it_had = union(before, std::iter::once(*removed), doc);
            for change in net.changes(*removed, doc) {
                prop_assert!(
                    it_had.contains(&change) || wrote(&change, &|d| d == *removed),
                    "removed device {removed} got a change of {doc} after its removal"
                );
            }
            let they_had = union(before, devices.clone().filter(|d| others(*d)), doc);
            for d in devices.clone().filter(|d| others(*d)) {
                for change in net.changes(d, doc) {
                    prop_assert!(
                        they_had.contains(&change) || wrote(&change, &others),
                        "device {d} got a change of {doc} from removed device {removed}"
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn pause_leave_and_removal_keep_documents_apart_and_the_rest_converges(
        (seed, is_bob, ops) in arb_scenario()
    ) {
        play(seed, &is_bob, ops)?;
    }
}

/// The checks above can fail: Bo's device writes while Ada's pause holds, and nothing of
/// it reaches Ada's devices until she resumes.
#[test]
fn a_pause_holds_back_the_partners_writes_until_it_ends() {
    let mut net = Network::new(ChaCha8Rng::seed_from_u64(7), SyncLimits::default());
    let (ada, bo) = (person(false), person(true));
    let ada_laptop = net.add_device(ada);
    let ada_phone = net.add_device(ada);
    let bo_laptop = net.add_device(bo);
    let household = DocId::household();
    net.create_doc(ada_laptop, &household);
    assert!(net.edit(ada_laptop, &household, "bins", 0));
    net.connect_all();
    net.run_until_quiescent(10_000).unwrap();
    net.pause(ada, true);
    assert!(net.edit(bo_laptop, &household, "dinner", 1));
    assert!(net.edit(ada_phone, &household, "laundry", 2));
    net.connect_all();
    net.run_until_quiescent(10_000).unwrap();
    let bos = net.changes(bo_laptop, &household);
    let adas = net.changes(ada_laptop, &household);
    assert!(
        bos.iter().any(|c| !adas.contains(c)),
        "Bo's write reached Ada"
    );
    // Ada's own devices still sync with each other.
    assert_eq!(adas, net.changes(ada_phone, &household));
    net.check_converged().unwrap();
    net.pause(ada, false);
    net.connect_all();
    net.run_until_quiescent(10_000).unwrap();
    assert_eq!(
        net.changes(bo_laptop, &household),
        net.changes(ada_laptop, &household)
    );
}
