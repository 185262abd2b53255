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
