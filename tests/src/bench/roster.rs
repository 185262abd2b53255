//! The roster section: what verifying the signed roster costs a device at start-up.
//!
//! It builds a household of two people with `devices` live devices and `removed` more
//! that their own person removed (each with a founder, own-device and partner admission
//! chain and a signed removal), then times `roster::verify` from one device's key.

use std::time::Instant;

use hearth_core::identity::DeviceId;
use hearth_core::model::{Device, PersonId};
use hearth_core::roster::{self, Admit};
use ring::signature::{Ed25519KeyPair, KeyPair};
use uuid::Uuid;

use super::{BenchError, Report, Samples, Unit};

const SECTION: &str = "roster";

fn keypair() -> Result<Ed25519KeyPair, BenchError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| BenchError::Check("no key could be made".into()))?;
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| BenchError::Check("no key could be read".into()))
}

fn public(key: &Ed25519KeyPair) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(key.public_key().as_ref());
    out
}

fn entry(
    subject: &Ed25519KeyPair,
    sponsor: &Ed25519KeyPair,
    person: PersonId,
    role: Admit,
) -> Device {
    let key = public(subject);
    let mut device = Device {
        id: DeviceId::from_public_key(&key).to_string(),
        person,
        name: "a device".into(),
        public_key: data_encoding::HEXLOWER.encode(&key),
        age_recipient: Some("age1bench".into()),
        added_by: None,
        added_at: 1,
        revoked_at: None,
        admission: Some(roster::admit(sponsor, &key, person, role, 1)),
        self_sig: None,
        removal: None,
    };
    device.self_sig = Some(roster::self_sign(subject, &device));
    device
}

/// Times the verification of a roster with `live` live devices and `removed` removed
/// ones, `runs` times, and reports the median and p95.
pub fn run(
    live: usize,
    removed: usize,
    runs: usize,
    report: &mut Report,
) -> Result<(), BenchError> {
    let (ada, bo) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let founder = keypair()?;
    let partner = keypair()?;
    let mut roster = vec![
        roster::founder_entry(&founder, ada, "laptop", None, 1),
        entry(&partner, &founder, bo, Admit::Partner),
    ];
    for n in 0..live.saturating_sub(2) + removed {
        let (sponsor, person) = if n % 2 == 0 {
            (&founder, ada)
        } else {
            (&partner, bo)
        };
        let key = keypair()?;
        let mut device = entry(&key, sponsor, person, Admit::OwnDevice);
        if n >= live.saturating_sub(2) {
            device.removal = Some(roster::remove(sponsor, &public(&key), 2));
        }
        roster.push(device);
    }
    let me = public(&founder);
    let mut samples = Samples::default();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let verified = roster::verify(&roster, &me, ada);
        samples.push(started.elapsed());
        let gone = verified
            .devices
            .iter()
            .filter(|d| d.revoked_at.is_some())
            .count();
        if verified.devices.len() != roster.len() || gone != removed {
            return Err(BenchError::Check(format!(
                "the bench roster did not verify: {} trusted, {gone} removed",
                verified.devices.len()
            )));
        }
    }
    let data = format!("{live} devices, {removed} removals");
    report.add(
        SECTION,
        &data,
        "verify p50",
        samples.percentile(50.0),
        Unit::Ms,
    );
    report.add(
        SECTION,
        &data,
        "verify p95",
        samples.percentile(95.0),
        Unit::Ms,
    );
    Ok(())
}
