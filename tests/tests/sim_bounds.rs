//! Simulator properties beyond convergence (which `core::sync::sim`'s own property test
//! covers): after a hostile stretch of partitions, resets with stale or lost sync
//! state, reordering, delays and partial reads, honest sessions on 3 or 4 devices
//! respect their bounds. Once the network heals, every device converges, every session
//! falls quiet within its time bound (nothing keeps a timer armed past it), no honest
//! reconciliation is ever cut off by either bound, the catch-up traffic is bounded,
//! and no session errors or leaks a private document.
//!
//! A few hundred cases in CI; `HEARTH_LONG_TESTS=1` runs 3000.
//!
//! The named test at the end is a case the property found: a peer that reached the
//! same heads through a third device must still say so.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hearth_core::sync::sim::{Network, Persist};
use hearth_core::sync::{DocId, SessionEvent, SyncLimits};
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
}

fn arb_op(devices: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..devices, any::<bool>(), 0u8..8, any::<i64>())
            .prop_map(|(device, private, key, value)| Op::Edit { device, private, key, value }),
        4 => (1u8..60).prop_map(Op::Deliver),
        1 => (0..devices, 0..devices, prop_oneof![
                Just(Persist::Current), Just(Persist::Stale), Just(Persist::Lost)
            ])
            .prop_map(|(a, b, persist)| Op::Reset { a, b, persist }),
        2 => (0..devices, 0..devices).prop_map(|(a, b)| Op::Connect { a, b }),
        1 => proptest::collection::vec(0u8..3, devices).prop_map(Op::Partition),
        1 => Just(Op::Heal),
        // Delays, not drops: a wait past the handshake timeout is a lost connection,
        // which `Reset` models.
        1 => (0u16..2_000).prop_map(Op::Wait),
    ]
}

const MAX_OPS: usize = 80;

fn arb_scenario() -> impl Strategy<Value = (u64, Vec<bool>, Vec<Op>)> {
    (3usize..=4).prop_flat_map(|devices| {
        (
            any::<u64>(),
            proptest::collection::vec(any::<bool>(), devices),
            proptest::collection::vec(arb_op(devices), 0..MAX_OPS),
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

/// What happened after the network healed.
struct Settled {
    net: Network<ChaCha8Rng>,
    /// Simulated time from the heal until every session was quiet.
    took: Duration,
    /// Steps that took.
    steps: u64,
    /// Wire bytes sent after the heal.
    bytes: u64,
    /// Session events after the heal, with (device, peer).
    events: Vec<(usize, usize, SessionEvent)>,
}

/// Plays `ops` on a fresh network, then heals it, reconnects everyone and runs it
/// until nothing is in flight and no timer is armed.
fn play(seed: u64, is_bob: &[bool], ops: Vec<Op>) -> Result<Settled, String> {
    let mut net = Network::new(ChaCha8Rng::seed_from_u64(seed), SyncLimits::default());
    let people: Vec<Uuid> = is_bob.iter().map(|b| person(*b)).collect();
    for p in &people {
        net.add_device(*p);
    }
    let household = DocId::household();
    net.create_doc(0, &household);
    for p in [person(false), person(true)] {
        if let Some(first) = people.iter().position(|x| *x == p) {
            net.create_doc(first, &DocId::private(&p));
        }
    }
    net.connect_all();
    for op in ops {
        match op {
            Op::Edit {
                device,
                private,
                key,
                value,
            } => {
                let doc = if private {
                    DocId::private(&people[device])
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
        }
        net.check_health().map_err(|e| e.to_string())?;
    }
    net.heal();
    net.connect_all();
    let seen: Vec<usize> = net.devices().iter().map(|d| d.events.len()).collect();
    let (started, bytes_before) = (net.now(), net.bytes_sent());
    let steps = net
        .run_until_quiescent(200_000)
        .map_err(|e| e.to_string())?;
    net.check_converged().map_err(|e| e.to_string())?;
    let events = net
        .devices()
        .iter()
        .zip(seen)
        .enumerate()
        .flat_map(|(device, (d, before))| {
            d.events[before..]
                .iter()
                .map(move |(peer, e)| (device, *peer, e.clone()))
        })
        .collect();
    Ok(Settled {
        took: net.now() - started,
        steps,
        bytes: net.bytes_sent() - bytes_before,
        events,
        net,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn after_healing_honest_sessions_settle_within_their_bounds(
        (seed, is_bob, ops) in arb_scenario()
    ) {
        let limits = SyncLimits::default();
        let settled = play(seed, &is_bob, ops).map_err(TestCaseError::fail)?;
        // Every session is quiet within its time bound: no timer outlives it.
        prop_assert!(
            settled.took <= limits.max_duration + limits.handshake_timeout,
            "settling took {:?} of simulated time ({} steps)",
            settled.took,
            settled.steps
        );
        // Honest peers always make progress and say when they agree, so neither the
        // round bound nor the time bound cuts them off.
        for (device, peer, event) in &settled.events {
            prop_assert!(
                !matches!(event, SessionEvent::ReconciliationAborted { .. }),
                "device {device} gave up on {peer}: {event:?}"
            );
        }
        // The catch-up is bounded by what was written, not by the chaos before it.
        let cap = 64 * 1024 + MAX_OPS as u64 * 4 * 1024;
        prop_assert!(settled.bytes < cap, "healing sent {} bytes", settled.bytes);
        settled.net.check_health().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

/// Found by the property above (as a 60 s settle before its bound was relaxed): three
/// devices of one person, where device 1 learns the private document's final heads
/// from device 2 right after telling device 0 about older ones. Automerge on device 1
/// then has nothing to send, so device 0 never hears that they agree and its
/// reconciliation stayed open until the 60 s time bound aborted it, with a
/// `ReconciliationAborted { TimedOut }` between converged, honest peers. Now device 1
/// sends its heads once, since it never told device 0 it has them.
#[test]
fn a_peer_that_caught_up_through_a_third_device_leaves_no_reconciliation_open() {
    use Op::*;
    let ops = vec![
        Partition(vec![0, 1, 2]),
        Heal,
        Connect { a: 0, b: 2 },
        Edit {
            device: 0,
            private: true,
            key: 0,
            value: 1_048_576,
        },
        Edit {
            device: 0,
            private: true,
            key: 4,
            value: -36_028_797_018_963_969,
        },
        Edit {
            device: 0,
            private: true,
            key: 0,
            value: 36_028_797_018_963_968,
        },
        Deliver(11),
        Edit {
            device: 2,
            private: true,
            key: 3,
            value: 0,
        },
        Connect { a: 2, b: 1 },
        Edit {
            device: 2,
            private: true,
            key: 2,
            value: -34_424_797,
        },
        Deliver(13),
        Connect { a: 0, b: 0 },
        Edit {
            device: 0,
            private: true,
            key: 0,
            value: 0,
        },
    ];
    let settled = play(11_399_581_475_865_268_154, &[false, false, false], ops).unwrap();
    let timed_out: Vec<_> = settled
        .events
        .iter()
        .filter(|(_, _, e)| matches!(e, SessionEvent::ReconciliationAborted { .. }))
        .collect();
    assert!(
        timed_out.is_empty(),
        "aborted between converged peers: {timed_out:?}"
    );
    assert!(
        settled.took < Duration::from_secs(1),
        "took {:?}",
        settled.took
    );
}
