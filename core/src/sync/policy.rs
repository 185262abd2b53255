//! Who a device syncs with, and which documents, as the household document says now:
//! the roster's removals, a person's pause and anyone's leaving. One pure type, so the
//! daemon's sync hub and the simulator apply the same rule.

use std::collections::BTreeSet;

use super::DocId;
use crate::doc::Docs;
use crate::model::{Device, Millis, PersonId};

/// Who this device syncs with, and how, as the household document says now.
///
/// Pure: built from the documents and the time the caller passes in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// This device's person.
    pub me: PersonId,
    /// This person's pause holds: sessions with other people's devices share nothing.
    pub hold_others: bool,
    /// When that pause ends by itself, Unix ms.
    pub hold_ends: Option<Millis>,
    /// People who ended sharing (`hearth leave`), this person included if they did.
    pub left: BTreeSet<PersonId>,
}

impl Policy {
    /// The policy the documents call for at `now`.
    pub fn from_docs(docs: &Docs, now: Millis) -> Policy {
        let pause = docs.pause_of(docs.me).filter(|p| p.active_at(now));
        Policy {
            me: docs.me,
            hold_others: pause.is_some(),
            hold_ends: pause.and_then(|p| p.until),
            left: docs
                .people()
                .into_iter()
                .filter(|p| docs.left_at(p.id).is_some())
                .map(|p| p.id)
                .collect(),
        }
    }

    /// Whether this device syncs with `device` at all: it is not removed, and its
    /// person is trusted ([`Policy::trusts_person`]).
    pub fn trusts(&self, device: &Device) -> bool {
        device.revoked_at.is_none() && self.trusts_person(device.person)
    }

    /// Whether this device syncs with a device of `person`: one of this person's own, or
    /// neither person has ended sharing.
    pub fn trusts_person(&self, person: PersonId) -> bool {
        person == self.me || (!self.left.contains(&self.me) && !self.left.contains(&person))
    }

    /// The documents a session with a trusted `device` may share.
    pub fn allowed_docs(&self, device: &Device) -> BTreeSet<DocId> {
        self.docs_for(device.person)
    }

    /// The documents a session with a trusted device of `person` may share: the
    /// household, and this person's private document between their own devices; nothing
    /// with anyone else's while this person's pause holds.
    pub fn docs_for(&self, person: PersonId) -> BTreeSet<DocId> {
        if person == self.me {
            BTreeSet::from([DocId::household(), DocId::private(&self.me)])
        } else if self.hold_others {
            BTreeSet::new()
        } else {
            BTreeSet::from([DocId::household()])
        }
    }
}

/// The devices on `docs`' roster that `policy` trusts, this one excluded.
pub fn trusted_devices(docs: &Docs, policy: &Policy, this_device: &str) -> Vec<Device> {
    docs.devices()
        .into_iter()
        .filter(|d| d.id != this_device && policy.trusts(d))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{Pause, Person};
    use uuid::Uuid;

    fn device(n: u8, person: PersonId) -> Device {
        Device::unsigned(
            format!("DEV{n}"),
            person,
            format!("device {n}"),
            "00".repeat(32),
        )
    }

    /// Ada (this device's person) and Bo, with no devices yet.
    fn two_people() -> (Docs, PersonId, PersonId) {
        let ada = Uuid::from_u128(1);
        let bo = Uuid::from_u128(2);
        let mut docs = Docs::new(ada, automerge::ActorId::from(vec![1u8; 16]));
        for (id, name) in [(ada, "Ada"), (bo, "Bo")] {
            docs.add_person(
                &Person {
                    id,
                    name: name.into(),
                    joined_at: 0,
                },
                0,
            )
            .unwrap();
        }
        (docs, ada, bo)
    }

    /// Ada (this device's person) with two devices, Bo with one.
    fn docs() -> (Docs, PersonId, PersonId) {
        let (mut docs, ada, bo) = two_people();
        for d in [device(1, ada), device(2, ada), device(3, bo)] {
            docs.put_device(&d, 0).unwrap();
        }
        (docs, ada, bo)
    }

    #[test]
    fn a_pause_holds_only_the_other_persons_devices_and_only_while_it_lasts() {
        let (mut docs, ada, bo) = docs();
        let pause = Pause {
            since: 100,
            until: Some(200),
        };
        docs.set_pause(ada, Some(&pause), 100).unwrap();
        let during = Policy::from_docs(&docs, 150);
        assert!(during.hold_others);
        assert_eq!(during.hold_ends, Some(200));
        assert!(during.allowed_docs(&device(3, bo)).is_empty());
        assert_eq!(
            during.allowed_docs(&device(2, ada)),
            BTreeSet::from([DocId::household(), DocId::private(&ada)])
        );
        // Paused or not, every device stays trusted: a pause is no removal.
        assert!(during.trusts(&device(3, bo)));
        let after = Policy::from_docs(&docs, 200);
        assert!(!after.hold_others && after.hold_ends.is_none());
        assert_eq!(
            after.allowed_docs(&device(3, bo)),
            BTreeSet::from([DocId::household()])
        );
        // Bo's pause does not hold Ada's sessions: only the pausing side holds back.
        docs.set_pause(ada, None, 300).unwrap();
        docs.set_pause(
            bo,
            Some(&Pause {
                since: 0,
                until: None,
            }),
            300,
        )
        .unwrap();
        assert!(!Policy::from_docs(&docs, 400).hold_others);
    }

    #[test]
    fn leaving_splits_trust_along_the_line_between_the_two_people() {
        let (mut docs, ada, bo) = docs();
        let mut removed = device(2, ada);
        removed.revoked_at = Some(5);
        docs.put_device(&removed, 5).unwrap();
        let policy = Policy::from_docs(&docs, 10);
        assert!(!policy.trusts(&removed));
        assert!(policy.trusts(&device(3, bo)));
        assert_eq!(
            trusted_devices(&docs, &policy, "DEV1")
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>(),
            vec!["DEV3"]
        );
        // Either person leaving ends trust across the line, never within one person.
        for who in [ada, bo] {
            let (mut docs, _, _) = self::docs();
            docs.set_left(who, 20, 20).unwrap();
            let policy = Policy::from_docs(&docs, 30);
            assert!(!policy.trusts(&device(3, bo)), "{who}");
            assert!(policy.trusts(&device(2, ada)), "{who}");
        }
    }
}
