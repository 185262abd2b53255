use super::*;
use uuid::Uuid;

fn key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&crate::test_rng()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn ada() -> PersonId {
    Uuid::from_u128(0xada)
}

fn bo() -> PersonId {
    Uuid::from_u128(0xb0)
}

/// An entry for `subject`, admitted by `sponsor` as `role`, signed by itself.
fn admitted(
    subject: &Ed25519KeyPair,
    sponsor: &Ed25519KeyPair,
    person: PersonId,
    role: Admit,
) -> Device {
    let key = public_key(subject);
    let mut device = Device {
        id: DeviceId::from_public_key(&key).to_string(),
        person,
        name: "a device".into(),
        public_key: HEXLOWER.encode(&key),
        age_recipient: Some("age1example".into()),
        added_by: Some(DeviceId::from_public_key(&public_key(sponsor)).to_string()),
        added_at: 1,
        revoked_at: None,
        admission: Some(admit(sponsor, &key, person, role, 1)),
        self_sig: None,
        removal: None,
    };
    device.self_sig = Some(self_sign(subject, &device));
    device
}

/// Ada founded the household on `a1` and added `a2`; Bo joined on `b1` with Ada's
/// partner code and added `b2`.
struct Household {
    a1: Ed25519KeyPair,
    a2: Ed25519KeyPair,
    b1: Ed25519KeyPair,
    b2: Ed25519KeyPair,
    roster: Vec<Device>,
}

fn household() -> Household {
    let (a1, a2, b1, b2) = (key(), key(), key(), key());
    let roster = vec![
        founder_entry(&a1, ada(), "laptop", None, 1),
        admitted(&a2, &a1, ada(), Admit::OwnDevice),
        admitted(&b1, &a1, bo(), Admit::Partner),
        admitted(&b2, &b1, bo(), Admit::OwnDevice),
    ];
    Household {
        a1,
        a2,
        b1,
        b2,
        roster,
    }
}

fn trusted_ids(verified: &Verified) -> BTreeSet<String> {
    verified.devices.iter().map(|d| d.id.clone()).collect()
}

fn id(key: &Ed25519KeyPair) -> String {
    DeviceId::from_public_key(&public_key(key)).to_string()
}

#[test]
fn every_device_of_an_honest_household_trusts_every_other() {
    let h = household();
    for (me, person) in [(&h.a1, ada()), (&h.a2, ada()), (&h.b1, bo()), (&h.b2, bo())] {
        let verified = verify(&h.roster, &public_key(me), person);
        assert_eq!(verified.devices.len(), 4, "{:?}", verified.refused);
        assert!(verified.refused.is_empty());
        let other = if person == ada() { bo() } else { ada() };
        assert_eq!(verified.partner, Some(other));
    }
}

#[test]
fn a_partner_cannot_add_a_device_as_the_other_person() {
    let mut h = household();
    let rogue = key();
    // Bo's device signs an "own device" admission for a new key, claiming Ada.
    h.roster
        .push(admitted(&rogue, &h.b1, ada(), Admit::OwnDevice));
    // And a key that admits itself as Ada's founder.
    let fake_founder = key();
    h.roster
        .push(founder_entry(&fake_founder, ada(), "phone", None, 2));
    let verified = verify(&h.roster, &public_key(&h.a1), ada());
    assert!(!verified.contains(&id(&rogue)));
    assert!(!verified.contains(&id(&fake_founder)));
    assert_eq!(verified.devices.len(), 4);
    let reasons: Vec<_> = verified.refused.iter().map(|r| &r.reason).collect();
    assert_eq!(reasons, [&Refusal::NotVouched, &Refusal::NotVouched]);
}

#[test]
fn a_partner_cannot_bring_in_a_third_person() {
    // Keys are random: many households, so no lucky order of keys hides a bug.
    for _ in 0..20 {
        a_third_person_is_refused_in_one_household();
    }
}

fn a_third_person_is_refused_in_one_household() {
    let mut h = household();
    let stranger = key();
    h.roster.push(admitted(
        &stranger,
        &h.b1,
        Uuid::from_u128(0xc),
        Admit::Partner,
    ));
    for (me, person) in [(&h.a1, ada()), (&h.b2, bo())] {
        let verified = verify(&h.roster, &public_key(me), person);
        assert!(!verified.contains(&id(&stranger)), "{person}");
        assert_eq!(verified.people(person).len(), 2);
    }
}

#[test]
fn an_edited_entry_loses_its_trust() {
    let h = household();
    let a2 = id(&h.a2);
    for edit in [
        |d: &mut Device| d.person = bo(),
        |d: &mut Device| d.age_recipient = Some("age1partner".into()),
        |d: &mut Device| d.admission = None,
        |d: &mut Device| d.self_sig = None,
    ] {
        let mut roster = h.roster.clone();
        let entry = roster.iter_mut().find(|d| d.id == a2).unwrap();
        edit(entry);
        let verified = verify(&roster, &public_key(&h.a1), ada());
        assert!(!verified.contains(&a2));
        assert_eq!(verified.refused.len(), 1);
    }
    // A key swapped under an id is refused too.
    let mut roster = h.roster.clone();
    roster[1].public_key = HEXLOWER.encode(&public_key(&h.b2));
    let verified = verify(&roster, &public_key(&h.a1), ada());
    assert_eq!(verified.refused[0].reason, Refusal::BadKey);
}

#[test]
fn only_a_devices_own_person_removes_it() {
    let mut h = household();
    let a2 = parse_key(&h.roster[1].public_key).unwrap();
    let b2 = parse_key(&h.roster[3].public_key).unwrap();
    // Bo's device "removes" Ada's second device: it does not count.
    h.roster[1].removal = Some(remove(&h.b1, &a2, 5));
    // Bo removes his own second device: it counts everywhere.
    h.roster[3].removal = Some(remove(&h.b1, &b2, 6));
    for (me, person) in [(&h.a1, ada()), (&h.b1, bo())] {
        let verified = verify(&h.roster, &public_key(me), person);
        let by_id = |k: &Ed25519KeyPair| {
            verified
                .devices
                .iter()
                .find(|d| d.id == id(k))
                .unwrap()
                .revoked_at
        };
        assert_eq!(by_id(&h.a2), None);
        assert_eq!(by_id(&h.b2), Some(6));
        assert_eq!(verified.ignored_removals.len(), 1);
    }
}

#[test]
fn a_removed_device_cannot_remove_the_one_that_removed_it() {
    let mut h = household();
    let a1 = parse_key(&h.roster[0].public_key).unwrap();
    let a2 = parse_key(&h.roster[1].public_key).unwrap();
    h.roster[1].removal = Some(remove(&h.a1, &a2, 5));
    h.roster[0].removal = Some(remove(&h.a2, &a1, 9));
    let verified = verify(&h.roster, &public_key(&h.b1), bo());
    let a1_entry = verified.devices.iter().find(|d| d.id == id(&h.a1)).unwrap();
    assert_eq!(a1_entry.revoked_at, None);
    assert_eq!(verified.ignored_removals.len(), 1);
}

#[test]
fn trust_follows_the_chain_from_the_device_that_asks() {
    let h = household();
    // Bo's second device sees only its own entry at first: it trusts itself.
    let alone = verify(&h.roster[3..], &public_key(&h.b2), bo());
    assert_eq!(trusted_ids(&alone), BTreeSet::from([id(&h.b2)]));
    assert!(alone.refused.is_empty() && alone.partner.is_none());
    // With the whole roster it reaches Ada's devices through Bo's first device.
    let all = verify(&h.roster, &public_key(&h.b2), bo());
    assert_eq!(trusted_ids(&all).len(), 4);
    // An unrelated device trusts nothing on this roster.
    let outsider = verify(&h.roster, &public_key(&key()), Uuid::from_u128(0xd));
    assert!(outsider.devices.is_empty());
    assert_eq!(outsider.refused.len(), 4);
}

#[test]
fn statements_in_a_damaged_form_are_refused_not_panicked_on() {
    let mut h = household();
    for bad in [
        "",
        ":",
        "own:zz:1:x",
        "partner::::",
        "own:00:notanumber:AAAA",
    ] {
        h.roster[1].admission = Some(bad.into());
        h.roster[1].removal = Some(bad.into());
        let verified = verify(&h.roster, &public_key(&h.a1), ada());
        assert!(!verified.contains(&id(&h.a2)), "{bad}");
    }
    assert!(Admission::parse("founder:00:1:AAAA").is_err());
}

#[test]
fn a_kept_copy_outlasts_an_overwritten_entry_and_removals_count_from_any_copy() {
    let h = household();
    let a2 = id(&h.a2);
    let kept = h.roster[1].clone();
    // The partner overwrites the recipient of Ada's second device in the household.
    let mut roster = h.roster.clone();
    roster[1].age_recipient = Some("age1partner".into());
    roster.push(kept.clone());
    let verified = verify(&roster, &public_key(&h.a1), ada());
    let entry = verified.devices.iter().find(|d| d.id == a2).unwrap();
    assert_eq!(entry.age_recipient, kept.age_recipient);
    assert_eq!(
        verified.refused.len(),
        1,
        "the overwritten copy is reported"
    );
    // A removal signed by Ada counts even though it sits on the household copy only.
    let key = parse_key(&kept.public_key).unwrap();
    roster[1].removal = Some(remove(&h.a1, &key, 7));
    let verified = verify(&roster, &public_key(&h.a1), ada());
    let entry = verified.devices.iter().find(|d| d.id == a2).unwrap();
    assert_eq!(entry.revoked_at, Some(7));
}
