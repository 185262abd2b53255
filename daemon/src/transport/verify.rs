//! The rustls side of the transport: reading the Ed25519 key out of a peer certificate,
//! the two certificate verifiers, and the per-connection [`HandshakeGate`] that lets the
//! listener judge a client certificate by the ALPN protocol that client asked for.
//!
//! This module owns *how* a peer certificate is checked. It must not decide *whom* to
//! trust (that is the [`TrustPolicy`]'s job), must never accept a certificate without the
//! handshake signature being verified against the key inside it, and must never log a
//! key: a refused peer is named by its device id only.

use std::sync::{Arc, Mutex};

use hearth_core::identity::DeviceId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, PeerIncompatible,
    PeerMisbehaved, SignatureScheme,
};

use super::{cover, Alpn, PublicKey, TrustPolicy};

/// DER of an Ed25519 SubjectPublicKeyInfo up to the key bytes (RFC 8410 §4):
/// `SEQUENCE(42) { SEQUENCE(5) { OID 1.3.101.112 }, BIT STRING(33) { 0 unused bits, key } }`.
///
/// RFC 8410 requires the algorithm parameters to be absent, so a canonical Ed25519 SPKI
/// has exactly one encoding and comparing this prefix is a complete parse of it.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Returns the Ed25519 public key inside `cert`.
///
/// The certificate is parsed by rustls' own X.509 parser (webpki), the same one that
/// later checks the handshake signature against this certificate, so the key we judge
/// is exactly the key the signature is verified with.
pub(crate) fn ed25519_public_key(cert: &CertificateDer<'_>) -> Result<PublicKey, Error> {
    let parsed = ParsedCertificate::try_from(cert)?;
    let spki = parsed.subject_public_key_info();
    spki.as_ref()
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .and_then(|key| PublicKey::try_from(key).ok())
        .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// The one refusal every trust decision returns, whatever the reason.
///
/// It becomes the TLS alert `access_denied`. Using one alert for "unknown", "revoked",
/// "not the expected device" and "pairing closed" means a refused peer cannot tell which
/// of these it hit.
fn refused() -> Error {
    Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

/// Verifies a TLS 1.3 `CertificateVerify` against the key in `cert`.
///
/// This is the check that makes pinning meaningful: a certificate is public, so anyone
/// who saw one could present it; only the holder of the private key can sign the
/// transcript.
fn verify_signature(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    // Device keys are Ed25519 only; refusing other schemes up front keeps the set of
    // code paths a hostile peer can reach small.
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    verify_tls13_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

/// The schemes both verifiers advertise: Ed25519, the only device key type.
fn verify_schemes() -> Vec<SignatureScheme> {
    vec![SignatureScheme::ED25519]
}

/// What the listener learned during one handshake, shared by that connection's
/// certificate resolver (which sees the ClientHello) and client verifier (which sees the
/// client certificate), and read back by the accept path once the handshake is done.
///
/// rustls gives a client verifier no view of the connection, so without this a verifier
/// could not tell a sync attempt from a pairing attempt. Every connection gets a fresh
/// gate, so nothing leaks from one handshake into another.
#[derive(Debug, Default)]
pub(crate) struct HandshakeGate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct GateState {
    /// The protocol the client's ClientHello asks for, as rustls will select it.
    requested: Option<Alpn>,
    /// The protocol and key the verifier admitted, once it has.
    admitted: Option<(Alpn, PublicKey)>,
    /// The key of the one-time certificate this side presented for pairing.
    presented: Option<PublicKey>,
}

impl HandshakeGate {
    /// Records the protocol a ClientHello asks for.
    ///
    /// A HelloRetryRequest makes rustls read a second ClientHello, and the protocol
    /// finally negotiated comes from that one. Once any hello asked for sync, the gate
    /// stays in sync mode, so a client cannot ask for pairing first (and be judged by the
    /// looser pairing rule) and switch to sync in its second hello.
    fn record_request(&self, alpn: Option<Alpn>) -> Option<Alpn> {
        let Ok(mut state) = self.state.lock() else {
            return None;
        };
        state.requested = match (state.requested, alpn) {
            (Some(Alpn::Sync), _) | (_, Some(Alpn::Sync)) => Some(Alpn::Sync),
            (_, newer) => newer,
        };
        state.requested
    }

    fn requested(&self) -> Option<Alpn> {
        self.state.lock().ok().and_then(|state| state.requested)
    }

    fn admit(&self, alpn: Alpn, key: PublicKey) -> bool {
        match self.state.lock() {
            Ok(mut state) => {
                state.admitted = Some((alpn, key));
                true
            }
            Err(_) => false,
        }
    }

    /// The protocol and key the verifier admitted, if it admitted anything.
    pub(crate) fn admitted(&self) -> Option<(Alpn, PublicKey)> {
        self.state.lock().ok().and_then(|state| state.admitted)
    }

    fn present(&self, key: PublicKey) {
        if let Ok(mut state) = self.state.lock() {
            state.presented = Some(key);
        }
    }

    /// The key of the one-time certificate this listener presented for pairing.
    pub(crate) fn presented(&self) -> Option<PublicKey> {
        self.state.lock().ok().and_then(|state| state.presented)
    }
}

/// Picks the protocol rustls will negotiate: the first of the listener's protocols, in
/// the listener's order, that the client offers. Mirrors rustls' server-side selection.
fn selected_alpn(hello: &ClientHello<'_>) -> Option<Alpn> {
    let offered: Vec<&[u8]> = hello.alpn()?.collect();
    Alpn::LISTENER_ORDER
        .into_iter()
        .find(|ours| ours.protocol_ids().iter().any(|id| offered.contains(id)))
}

/// The listener's certificate resolver for one connection.
///
/// Besides handing rustls a certificate, it records which protocol the client asked
/// for, and it turns a pairing attempt away before our certificate is even sent when no
/// invite is open. For sync it never hands out the device certificate: it makes a fresh
/// cover certificate ([`cover`]) vouched for by the current household secret, since the
/// dialler has proved nothing yet.
#[derive(Debug)]
pub(crate) struct ListenerCertResolver {
    /// This device's key, which the cover's MAC names for household members only.
    pub(crate) device: PublicKey,
    pub(crate) trust: Arc<dyn TrustPolicy>,
    /// `None` for the endpoint's fallback configuration, which refuses everything.
    pub(crate) gate: Option<Arc<HandshakeGate>>,
}

impl ResolvesServerCert for ListenerCertResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(gate) = &self.gate else {
            tracing::warn!("refused a connection that bypassed the transport's accept path");
            return None;
        };
        if !client_hello
            .signature_schemes()
            .contains(&SignatureScheme::ED25519)
        {
            tracing::debug!("refused a client that cannot verify Ed25519 signatures");
            return None;
        }
        match gate.record_request(selected_alpn(&client_hello)) {
            Some(Alpn::Sync) => {
                let secrets = self.trust.household_secrets();
                let Some(secret) = secrets.first() else {
                    tracing::debug!("refused a sync attempt: this device has no household secret");
                    return None;
                };
                match cover::make(secret, &self.device) {
                    Ok(cover) => Some(cover),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not make a cover certificate");
                        None
                    }
                }
            }
            // Not the device certificate either: whoever dials during an open invite
            // gets a one-time key; the device key is proved inside SPAKE2, to a joiner
            // that holds the code.
            Some(Alpn::Pair) if self.trust.pairing_open() => match cover::one_time() {
                Ok((key, certified)) => {
                    gate.present(key);
                    Some(certified)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not make a one-time certificate");
                    None
                }
            },
            Some(Alpn::Pair) => {
                tracing::info!("refused a pairing attempt: no invite is open");
                None
            }
            None => None,
        }
    }
}

/// The listener's verifier for one connection's client certificate.
#[derive(Debug)]
pub(crate) struct ClientVerifier {
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) trust: Arc<dyn TrustPolicy>,
    /// `None` for the endpoint's fallback configuration, which refuses everything.
    pub(crate) gate: Option<Arc<HandshakeGate>>,
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // There is no CA: trust is per key, so there are no issuers to hint at.
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        // A device certificate is self-signed; a chain means the peer is not a Hearth
        // device. Validity dates are not checked either: trust lives in the roster, not
        // in the certificate, and a device's certificate never needs renewing.
        if !intermediates.is_empty() {
            return Err(Error::InvalidCertificate(CertificateError::BadEncoding));
        }
        let key = ed25519_public_key(end_entity)?;
        let Some(gate) = &self.gate else {
            return Err(refused());
        };
        let requested = gate.requested();
        let allowed = match requested {
            Some(Alpn::Sync) => self.trust.allows_sync(&key),
            Some(Alpn::Pair) => self.trust.pairing_open(),
            None => false,
        };
        match requested {
            Some(alpn) if allowed && gate.admit(alpn, key) => {
                // The key is now admitted *provided* the CertificateVerify that rustls
                // checks next is signed by it; until then it is only a claim.
                Ok(ClientCertVerified::assertion())
            }
            _ => {
                tracing::info!(
                    peer = %DeviceId::from_public_key(&key),
                    protocol = requested.map(Alpn::name),
                    "refused an incoming connection: the device is not allowed to connect"
                );
                Err(refused())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(PeerIncompatible::Tls13RequiredForQuic.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_signature(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        verify_schemes()
    }
}

/// The dialer's verifier for the listener's certificate on one outgoing connection.
///
/// For sync the listener's certificate is a cover: the verifier accepts it only if one
/// of this device's household secrets vouches for it, and only then does rustls send
/// this device's own certificate. The listener's device key is judged afterwards, when
/// it proves it inside the channel ([`super::Transport::connect`]).
#[derive(Debug)]
pub(crate) struct ServerVerifier {
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) trust: Arc<dyn TrustPolicy>,
    pub(crate) alpn: Alpn,
    pub(crate) expected: Option<PublicKey>,
    /// For sync: the device key the listener's cover claims, once accepted.
    pub(crate) claim: Claim,
}

/// The device key a sync listener's cover certificate claims, as the dialler's verifier
/// found it; the in-channel proof must then be for this key.
pub(crate) type Claim = Arc<Mutex<Option<PublicKey>>>;

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        // Every device presents the same fixed name; identity is the key, so the name
        // carries no information and is not checked.
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if !intermediates.is_empty() {
            return Err(Error::InvalidCertificate(CertificateError::BadEncoding));
        }
        let key = ed25519_public_key(end_entity)?;
        if self.alpn == Alpn::Sync {
            // Which device of the household the cover claims to be, among those this
            // device knows of. A stranger's cover names none.
            let mut candidates = self.trust.known_keys();
            candidates.extend(self.expected);
            let secrets = self.trust.household_secrets();
            let Some(device) = cover::claimed_device(end_entity, &key, &secrets, &candidates)
            else {
                tracing::info!(
                    "refused to talk to a listener: it did not show it belongs to this household"
                );
                return Err(refused());
            };
            let is_expected = self.expected.is_none_or(|expected| expected == device);
            if is_expected && self.trust.allows_sync(&device) {
                if let Ok(mut claim) = self.claim.lock() {
                    *claim = Some(device);
                    return Ok(ServerCertVerified::assertion());
                }
            }
            // The claim is only as good as the household secret; it names the device
            // for the log, and this device's certificate is never sent.
            tracing::info!(
                peer = %DeviceId::from_public_key(&device),
                protocol = self.alpn.name(),
                expected_device = is_expected,
                "refused to talk to a device: it is not trusted or not the device we dialled"
            );
            return Err(refused());
        }
        let is_expected = self.expected.is_none_or(|expected| expected == key);
        // A joiner has no roster entry for the inviter yet; the pairing code, checked by
        // SPAKE2 inside this connection, is what authenticates it.
        let allowed = is_expected;
        if allowed {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::info!(
                peer = %DeviceId::from_public_key(&key),
                protocol = self.alpn.name(),
                expected_device = is_expected,
                "refused to talk to a device: it is not trusted or not the device we dialled"
            );
            Err(refused())
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(PeerIncompatible::Tls13RequiredForQuic.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_signature(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        verify_schemes()
    }
}

/// Presents this device's certificate when a listener asks for one.
#[derive(Debug)]
pub(crate) struct DialerCertResolver {
    pub(crate) certified: Arc<CertifiedKey>,
}

impl ResolvesClientCert for DialerCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        sigschemes
            .contains(&SignatureScheme::ED25519)
            .then(|| self.certified.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A `CertificateVerify` payload as it arrives on the wire. rustls only builds these
    /// by decoding, so the test does the same (through its test-only codec module).
    fn ed25519_dss(signature: &[u8]) -> DigitallySignedStruct {
        use rustls::internal::msgs::codec::{Codec, Reader};
        let mut wire = u16::from(SignatureScheme::ED25519).to_be_bytes().to_vec();
        wire.extend_from_slice(&u16::try_from(signature.len()).unwrap().to_be_bytes());
        wire.extend_from_slice(signature);
        DigitallySignedStruct::read(&mut Reader::init(&wire)).unwrap()
    }

    #[derive(Debug)]
    struct Everyone;
    impl TrustPolicy for Everyone {
        fn allows_sync(&self, _peer: &PublicKey) -> bool {
            true
        }
        fn pairing_open(&self) -> bool {
            true
        }
    }

    #[test]
    fn key_read_from_certificate_is_the_device_key() {
        let device = super::super::DeviceKey::generate().unwrap();
        let cert = CertificateDer::from(device.certificate_der().to_vec());
        assert_eq!(ed25519_public_key(&cert).unwrap(), device.public_key());
    }

    #[test]
    fn non_ed25519_certificate_is_rejected() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::default()
            .self_signed(&key)
            .unwrap();
        assert_eq!(
            ed25519_public_key(cert.der()),
            Err(Error::InvalidCertificate(CertificateError::BadEncoding))
        );
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let cert = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(ed25519_public_key(&cert).is_err());
        assert!(ed25519_public_key(&CertificateDer::from(Vec::new())).is_err());
    }

    #[test]
    fn tls12_signatures_are_always_refused() {
        let device = super::super::DeviceKey::generate().unwrap();
        let cert = CertificateDer::from(device.certificate_der().to_vec());
        let dss = ed25519_dss(&[0; 64]);
        let client = ClientVerifier {
            provider: provider(),
            trust: Arc::new(Everyone),
            gate: Some(Arc::default()),
        };
        assert!(client.verify_tls12_signature(b"m", &cert, &dss).is_err());
        let server = ServerVerifier {
            provider: provider(),
            trust: Arc::new(Everyone),
            alpn: Alpn::Sync,
            expected: None,
            claim: Arc::default(),
        };
        assert!(server.verify_tls12_signature(b"m", &cert, &dss).is_err());
    }

    #[test]
    fn tls13_signature_must_come_from_the_certified_key() {
        let device = super::super::DeviceKey::generate().unwrap();
        let other = super::super::DeviceKey::generate().unwrap();
        let cert = CertificateDer::from(device.certificate_der().to_vec());
        let message = b"transcript hash stand-in";
        let verifier = ServerVerifier {
            provider: provider(),
            trust: Arc::new(Everyone),
            alpn: Alpn::Sync,
            expected: None,
            claim: Arc::default(),
        };

        let good = device.sign_for_test(message);
        let dss = ed25519_dss(&good);
        assert!(verifier
            .verify_tls13_signature(message, &cert, &dss)
            .is_ok());

        let forged = other.sign_for_test(message);
        let dss = ed25519_dss(&forged);
        assert!(verifier
            .verify_tls13_signature(message, &cert, &dss)
            .is_err());
    }

    #[test]
    fn gate_stays_strict_once_sync_was_requested() {
        let gate = HandshakeGate::default();
        assert_eq!(gate.record_request(Some(Alpn::Sync)), Some(Alpn::Sync));
        assert_eq!(gate.record_request(Some(Alpn::Pair)), Some(Alpn::Sync));
        let gate = HandshakeGate::default();
        assert_eq!(gate.record_request(Some(Alpn::Pair)), Some(Alpn::Pair));
        assert_eq!(gate.record_request(Some(Alpn::Sync)), Some(Alpn::Sync));
        assert_eq!(gate.record_request(None), Some(Alpn::Sync));
    }

    #[test]
    fn verifier_without_a_gate_refuses_everyone() {
        let device = super::super::DeviceKey::generate().unwrap();
        let cert = CertificateDer::from(device.certificate_der().to_vec());
        let verifier = ClientVerifier {
            provider: provider(),
            trust: Arc::new(Everyone),
            gate: None,
        };
        assert_eq!(
            verifier
                .verify_client_cert(&cert, &[], UnixTime::now())
                .err(),
            Some(refused())
        );
    }
}
