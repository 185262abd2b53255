//! What a sync listener shows before the dialler has proved anything: a *cover*
//! certificate, and, once the dialler has been admitted, the proof of the listener's real
//! device key inside the encrypted channel.
//!
//! This module owns the cover certificate (a fresh Ed25519 key per connection, an empty
//! subject, and a serial number that is a MAC, under the household secret, of that key
//! and the listener's device key), its check on the dialling side, and the listener's
//! in-channel proof (its device key and an Ed25519 signature over a TLS exporter value of
//! this connection). It must never put the device key, the device id or anything stable
//! into a cover certificate in a form a stranger can read or link, and never accept a
//! proof that is not bound to the connection it arrives on.
//!
//! The MAC covers the device key so that a household member can tell *which* of the
//! devices it trusts claims to be listening (it tries each; a stranger cannot): it then
//! shows its own certificate only to a listener claiming a key it trusts and, when it is
//! refused, knows which device refused it. The claim is only as good as the household
//! secret, which past members may hold; the in-channel proof is what authenticates the
//! key, and it must match the claim.
//!
//! Why it holds:
//! - A stranger who dials gets a certificate for a key made for its connection alone and
//!   a serial that looks random to anyone without the household secret: nothing links
//!   two dials, two devices or two networks.
//! - A stranger cannot make a cover that a household device accepts (it lacks the
//!   secret), and cannot replay one it was shown: rustls checks the listener's
//!   `CertificateVerify` against the cover's key, whose private half never left the
//!   listener.
//! - The proof signs an exporter value, which is unique to this TLS session, so a proof
//!   seen on one connection is worthless on another.

use std::sync::Arc;

use ring::hmac;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use zeroize::Zeroizing;

use super::{certify, PublicKey, TransportError};

/// What the serial MAC is keyed for: the household secret is used for other things too.
const COVER_CONTEXT: &[u8] = b"hearth cover certificate v1\0";
/// Bytes in the serial number of a cover certificate (RFC 5280 allows up to 20).
pub(crate) const SERIAL_LEN: usize = 16;
/// The TLS exporter label the listener's proof signs (RFC 8446 §7.5). Never on the wire.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-hearth-listener-proof";
/// What the listener signs before the exporter value.
const PROOF_CONTEXT: &[u8] = b"hearth listener proof v1\0";
/// The version byte at the start of a proof.
const PROOF_VERSION: u8 = 1;
/// Bytes of a proof: version, device key, signature.
pub(crate) const PROOF_LEN: usize = 1 + 32 + 64;

/// The serial number a cover certificate for `cover_key` carries under `secret`, on a
/// listener whose device key is `device_key`.
///
/// The first byte is forced into `0x40..=0x7f` so that DER encodes the serial as a
/// positive integer of exactly [`SERIAL_LEN`] bytes; 126 bits of MAC remain.
pub(crate) fn serial_for(
    secret: &[u8; 32],
    cover_key: &PublicKey,
    device_key: &PublicKey,
) -> [u8; SERIAL_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(COVER_CONTEXT);
    ctx.update(cover_key);
    ctx.update(device_key);
    let tag = ctx.sign();
    let mut serial = [0u8; SERIAL_LEN];
    serial.copy_from_slice(&tag.as_ref()[..SERIAL_LEN]);
    serial[0] = (serial[0] & 0x3f) | 0x40;
    serial
}

/// A fresh cover certificate and its key, vouched for by `secret`, for the listener
/// whose device key is `device_key`.
pub(crate) fn make(
    secret: &[u8; 32],
    device_key: &PublicKey,
) -> Result<Arc<CertifiedKey>, TransportError> {
    let pkcs8 = Zeroizing::new(
        Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .map_err(|_| TransportError::NoRandomness)?
            .as_ref()
            .to_vec(),
    );
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
        .map_err(|_| TransportError::InvalidDeviceKey)?;
    let public = PublicKey::try_from(pair.public_key().as_ref())
        .map_err(|_| TransportError::InvalidDeviceKey)?;
    let (_, certified) = certify(&pkcs8, Some(serial_for(secret, &public, device_key)))?;
    Ok(Arc::new(certified))
}

/// A fresh certificate for a key made for one connection, vouched for by nothing: what
/// an inviter shows on `hearth-pair/1`, where the pairing code authenticates the peer.
/// Returns it with its public key.
pub(crate) fn one_time() -> Result<(PublicKey, Arc<CertifiedKey>), TransportError> {
    let pkcs8 = Zeroizing::new(
        Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .map_err(|_| TransportError::NoRandomness)?
            .as_ref()
            .to_vec(),
    );
    let (public, certified) = certify(&pkcs8, None)?;
    Ok((public, Arc::new(certified)))
}

/// Which of `candidates` the cover certificate `cert` (whose Ed25519 key is `key`)
/// claims to come from, under one of `secrets`; `None` if it is not a cover made under
/// any of them for any of those devices.
pub(crate) fn claimed_device(
    cert: &CertificateDer<'_>,
    key: &PublicKey,
    secrets: &[Zeroizing<[u8; 32]>],
    candidates: &[PublicKey],
) -> Option<PublicKey> {
    let serial = serial_number(cert)?;
    secrets.iter().find_map(|secret| {
        candidates
            .iter()
            .find(|device| constant_time_eq(serial, &serial_for(secret, key, device)))
            .copied()
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The serial number's content octets in a DER certificate.
///
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber INTEGER, ... }, ... }`. The certificate has already been parsed whole by
/// webpki when this runs; this walk only finds the serial.
pub(crate) fn serial_number<'a>(cert: &'a CertificateDer<'_>) -> Option<&'a [u8]> {
    let (tag, certificate, _) = der_element(cert.as_ref())?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der_element(certificate)?;
    if tag != 0x30 {
        return None;
    }
    let (mut tag, mut value, rest) = der_element(tbs)?;
    if tag == 0xa0 {
        (tag, value, _) = der_element(rest)?;
    }
    (tag == 0x02).then_some(value)
}

/// One DER element: its tag, its content and what follows it.
fn der_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

/// The exporter value both ends of `connection` derive, which the proof signs.
fn exporter(connection: &quinn::Connection) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    connection
        .export_keying_material(&mut out, EXPORTER_LABEL, b"")
        .ok()?;
    Some(out)
}

fn signed_message(exported: &[u8; 32]) -> Vec<u8> {
    let mut message = PROOF_CONTEXT.to_vec();
    message.extend_from_slice(exported);
    message
}

/// The listener's proof for `connection`: its device key and a signature with it over
/// this connection's exporter value.
pub(crate) fn proof(
    connection: &quinn::Connection,
    signer: &Ed25519KeyPair,
) -> Option<[u8; PROOF_LEN]> {
    let exported = exporter(connection)?;
    let signature = signer.sign(&signed_message(&exported));
    let mut out = [0u8; PROOF_LEN];
    out[0] = PROOF_VERSION;
    out[1..33].copy_from_slice(signer.public_key().as_ref());
    out[33..].copy_from_slice(signature.as_ref());
    Some(out)
}

/// The device key a listener proved on `connection`, if `bytes` is a valid proof.
pub(crate) fn proven_key(connection: &quinn::Connection, bytes: &[u8]) -> Option<PublicKey> {
    if bytes.len() != PROOF_LEN || bytes[0] != PROOF_VERSION {
        return None;
    }
    let key = PublicKey::try_from(&bytes[1..33]).ok()?;
    let exported = exporter(connection)?;
    signature::UnparsedPublicKey::new(&signature::ED25519, &key)
        .verify(&signed_message(&exported), &bytes[33..])
        .ok()?;
    Some(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_cover_carries_its_mac_as_serial_and_nothing_else_of_ours() {
        let secret = [5u8; 32];
        let (me, other) = ([1u8; 32], [2u8; 32]);
        let cover = make(&secret, &me).unwrap();
        let cert = cover.cert[0].clone();
        let key = super::super::verify::ed25519_public_key(&cert).unwrap();
        assert_eq!(
            serial_number(&cert),
            Some(&serial_for(&secret, &key, &me)[..])
        );
        let ours = [Zeroizing::new(secret)];
        assert_eq!(claimed_device(&cert, &key, &ours, &[other, me]), Some(me));
        assert_eq!(claimed_device(&cert, &key, &ours, &[other]), None);
        assert_eq!(
            claimed_device(
                &cert,
                &key,
                &[Zeroizing::new([6u8; 32]), Zeroizing::new(secret)],
                &[me]
            ),
            Some(me)
        );
        assert_eq!(
            claimed_device(&cert, &key, &[Zeroizing::new([6u8; 32])], &[me]),
            None
        );
        assert_eq!(claimed_device(&cert, &key, &[], &[me]), None);
        assert!(!super::super::test_contains(cert.as_ref(), b"hearth"));
        assert!(!super::super::test_contains(cert.as_ref(), &me));
        // Each cover is new.
        let again = make(&secret, &me).unwrap();
        assert_ne!(again.cert[0], cert);
    }

    #[test]
    fn a_device_certificate_is_not_a_cover() {
        let device = super::super::DeviceKey::generate().unwrap();
        let cert = CertificateDer::from(device.certificate_der().to_vec());
        let key = device.public_key();
        assert_eq!(
            claimed_device(&cert, &key, &[Zeroizing::new([5u8; 32])], &[key]),
            None
        );
    }

    #[test]
    fn der_walk_refuses_truncated_input() {
        assert_eq!(serial_number(&CertificateDer::from(vec![0x30, 0x82])), None);
        assert_eq!(serial_number(&CertificateDer::from(Vec::new())), None);
        assert_eq!(
            serial_number(&CertificateDer::from(vec![0x30, 0x03, 0x30, 0x01, 0x02])),
            None
        );
    }
}
