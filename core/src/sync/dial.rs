//! When to dial whom, without IO: the reconnect backoff per address and the rule that
//! settles two devices dialling each other at once.
//!
//! The network driver asks [`Dialer::plan`] which addresses are due, dials them, and
//! reports back: [`Dialer::answered`] once a dialled peer spoke on the link,
//! [`Dialer::lost`] when a live connection ended. Time is the monotonic part of the
//! hub's [`super::Now`]; jitter comes from the caller's RNG.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng;

use crate::identity::DeviceId;

/// The first wait after a failed dial.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// The longest wait between dials of an address.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The backoff cap for an address whose device was connected within
/// [`RECENTLY_LOST`]: after a network outage both sides must find each other again
/// within seconds of it ending, while a device that has been away for long (a closed
/// laptop) is not dialled more than once a minute.
pub const BACKOFF_MAX_RECENT: Duration = Duration::from_secs(3);
/// How long after losing a connection its address keeps the short cap.
pub const RECENTLY_LOST: Duration = Duration::from_secs(10 * 60);
/// A connection this recent that we dialled is kept when the same peer dials us, if our
/// device id is the smaller: both sides then agree on which one survives.
pub const SIMULTANEOUS_DIAL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Backoff {
    wait: Duration,
    next: Duration,
}

/// The dial schedule of one device, keyed by address.
#[derive(Debug, Default)]
pub struct Dialer {
    backoff: BTreeMap<String, Backoff>,
    /// When each address last lost a live connection.
    lost: BTreeMap<String, Duration>,
}

/// What to dial now, and when to look again.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DialPlan {
    /// Addresses due now; each is marked in flight (its next attempt pushed back).
    pub dial: Vec<String>,
    /// When the next address falls due, if any is waiting.
    pub next_due: Option<Duration>,
}

impl Dialer {
    /// An empty schedule: every address is due.
    pub fn new() -> Dialer {
        Dialer::default()
    }

    /// Which of `targets` to dial at `now`. Each one dialled has its next attempt pushed
    /// back at once, so an attempt that never answers does not leave the driver asleep
    /// for the longest backoff, nor dialling it twice.
    pub fn plan(
        &mut self,
        now: Duration,
        targets: impl IntoIterator<Item = String>,
        rng: &mut impl Rng,
    ) -> DialPlan {
        let mut plan = DialPlan::default();
        let targets: BTreeSet<String> = targets.into_iter().collect();
        for key in targets {
            let due = self.backoff.get(&key).map_or(now, |b| b.next);
            let next = if due > now {
                due
            } else {
                plan.dial.push(key.clone());
                self.bump(&key, now, rng)
            };
            plan.next_due = Some(plan.next_due.map_or(next, |n: Duration| n.min(next)));
        }
        plan
    }

    /// Pushes the next attempt on `key` back, doubling the wait up to its cap, with
    /// jitter so two devices do not dial in lockstep. Returns when it is due.
    fn bump(&mut self, key: &str, now: Duration, rng: &mut impl Rng) -> Duration {
        let recent = self
            .lost
            .get(key)
            .is_some_and(|at| now.saturating_sub(*at) < RECENTLY_LOST);
        let cap = if recent {
            BACKOFF_MAX_RECENT
        } else {
            BACKOFF_MAX
        };
        let entry = self.backoff.entry(key.to_string()).or_insert(Backoff {
            wait: BACKOFF_MIN,
            next: now,
        });
        let jitter: f64 = rng.gen_range(0.5..1.5);
        entry.next = now + entry.wait.mul_f64(jitter);
        entry.wait = (entry.wait * 2).min(cap);
        entry.next
    }

    /// A peer dialled at `key` spoke on the link: the next loss redials from the
    /// shortest wait.
    pub fn answered(&mut self, key: &str) {
        self.backoff.remove(key);
    }

    /// A live connection to `key` ended at `now`.
    pub fn lost(&mut self, key: &str, now: Duration) {
        self.lost.insert(key.to_string(), now);
    }

    /// Forgets every backoff: everything is due now (`hearth sync`).
    pub fn dial_now(&mut self) {
        self.backoff.clear();
    }
}

/// A connection already live with a peer, as the simultaneous-dial rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct LiveLink {
    /// This device dialled it.
    pub dialled: bool,
    /// How long it has been up.
    pub age: Duration,
}

/// Whether a new connection with `peer` (dialled by this device when `new_dialled`)
/// gives way to the live one. A newer connection replaces the old one at once (a peer
/// that dials again has restarted or lost its link), except when the two devices
/// dialled each other at the same moment: then the one dialled by the smaller device
/// id wins on both sides, so they do not replace each other in a loop.
pub fn keep_existing(me: &DeviceId, peer: &DeviceId, live: LiveLink, new_dialled: bool) -> bool {
    let simultaneous = live.dialled != new_dialled && live.age < SIMULTANEOUS_DIAL;
    simultaneous && live.dialled == (me.to_string() < peer.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(5)
    }

    #[test]
    fn a_failing_address_waits_longer_each_time_up_to_its_cap() {
        let mut dialer = Dialer::new();
        let mut rng = rng();
        let mut now = Duration::ZERO;
        let mut waits = Vec::new();
        for _ in 0..12 {
            let plan = dialer.plan(now, ["10.0.0.2:7447".to_string()], &mut rng);
            assert_eq!(plan.dial.len(), 1);
            let next = plan.next_due.unwrap();
            waits.push(next - now);
            // Nothing is due before then.
            assert!(dialer
                .plan(
                    next - Duration::from_millis(1),
                    ["10.0.0.2:7447".to_string()],
                    &mut rng
                )
                .dial
                .is_empty());
            now = next;
        }
        assert!(waits[0] <= BACKOFF_MIN.mul_f64(1.5));
        assert!(waits.iter().all(|w| *w <= BACKOFF_MAX.mul_f64(1.5)));
        assert!(waits[11] >= BACKOFF_MAX / 2, "{waits:?}");
        // An answer starts over from the shortest wait.
        dialer.answered("10.0.0.2:7447");
        let plan = dialer.plan(now, ["10.0.0.2:7447".to_string()], &mut rng);
        assert!(plan.next_due.unwrap() - now <= BACKOFF_MIN.mul_f64(1.5));
    }

    #[test]
    fn a_recently_lost_address_is_redialled_within_seconds() {
        let mut dialer = Dialer::new();
        let mut rng = rng();
        let key = "10.0.0.3:7447".to_string();
        dialer.lost(&key, Duration::ZERO);
        let mut now = Duration::ZERO;
        for _ in 0..20 {
            let plan = dialer.plan(now, [key.clone()], &mut rng);
            let wait = plan.next_due.unwrap() - now;
            assert!(wait <= BACKOFF_MAX_RECENT.mul_f64(1.5), "{wait:?}");
            now = plan.next_due.unwrap();
        }
        dialer.dial_now();
        assert_eq!(dialer.plan(now, [key], &mut rng).dial.len(), 1);
    }

    #[test]
    fn two_devices_dialling_each_other_keep_the_same_connection() {
        let a = DeviceId::from_public_key(&[1; 32]);
        let b = DeviceId::from_public_key(&[2; 32]);
        let (small, large) = if a.to_string() < b.to_string() {
            (a, b)
        } else {
            (b, a)
        };
        let fresh = |dialled| LiveLink {
            dialled,
            age: Duration::from_millis(100),
        };
        // The smaller id's dial survives on both sides.
        assert!(keep_existing(&small, &large, fresh(true), false));
        assert!(!keep_existing(&small, &large, fresh(false), true));
        assert!(keep_existing(&large, &small, fresh(false), true));
        assert!(!keep_existing(&large, &small, fresh(true), false));
        // Not simultaneous: the newer connection wins.
        let old = LiveLink {
            dialled: true,
            age: SIMULTANEOUS_DIAL,
        };
        assert!(!keep_existing(&small, &large, old, false));
        assert!(!keep_existing(&small, &large, fresh(true), true));
    }
}
