//! QUIC connections between a household's devices, authenticated by pinned device keys.
//!
//! This module owns the QUIC endpoint, its TLS configuration and the decision, at the
//! handshake, of whether a peer may connect at all. It does not frame messages, run sync
//! or pairing, or keep the roster: it asks a [`TrustPolicy`] which keys are allowed and
//! hands the caller an authenticated [`quinn::Connection`] together with the peer's key.
//! It must never log a key; peers appear in logs by [`DeviceId`] only.
//!
//! # Identity
//!
//! Each device has an Ed25519 [`DeviceKey`] and a self-signed X.509 certificate made from
//! it, with an empty subject (mutual TLS 1.3, rustls with the *ring* provider only).
//! There is no certificate authority: a verifier reads the Ed25519 key out of the peer's
//! certificate, asks the [`TrustPolicy`] about that key, and then lets rustls verify the
//! handshake signature (`CertificateVerify`) against that same key. The second step
//! matters: a certificate is public, so a verifier that only compared keys would let
//! anyone who had seen one impersonate its device. Certificate names and validity dates
//! carry no trust and are not checked; every device uses the fixed server name
//! [`SERVER_NAME`] and SNI is not sent.
//!
//! # What a sync listener shows a stranger: a cover, then a proof inside
//!
//! In TLS 1.3 the listener shows its certificate before the dialler shows anything, so a
//! listener that presented its device certificate would hand its long-term key (and so
//! its device id) to anyone who dials (THREAT-MODEL P5). On `hearth/1` it never does:
//!
//! 1. The listener presents a **cover certificate** made for this connection alone (see
//!    `cover`): a fresh Ed25519 key, an empty subject, and as serial number a MAC, under
//!    the current household secret ([`TrustPolicy::household_secrets`]), of that key and
//!    the listener's device key.
//! 2. The dialler tries the MAC with each of its household secrets and each device key
//!    it knows of ([`TrustPolicy::known_keys`]). A cover that names none is refused; one
//!    that names a device the dialler does not trust, or not the one it dialled, is
//!    refused with that device's id in the log. rustls then checks the
//!    `CertificateVerify` against the cover key, so a cover seen elsewhere cannot be
//!    replayed. Only then does the dialler send its own device certificate, which the
//!    listener judges exactly as before: pinned key, policy, signature.
//! 3. Once the listener has admitted the dialler, it opens the first stream and sends its
//!    device key with an Ed25519 signature over a TLS exporter value of this connection.
//!    [`Transport::connect`] reads it, checks the signature, that it is the key the
//!    cover named, and the policy, and only then returns: [`Dialed::peer`] is the proven
//!    key. A listener that fails this is closed before any application data. When the
//!    listener refuses the dialler instead, [`TransportError::RefusedByPeer`] names the
//!    device the cover claimed, so `status` can say who no longer accepts this device.
//!
//! So a stranger who dials gets a one-time key and a MAC it cannot check: nothing that
//! links two dials, two devices or two networks. Someone who holds the household secret
//! (a device removed before the secret changes, say) gets further: it can tell which
//! device a cover names, may show a device certificate (which the roster then refuses),
//! and, listening, can make a cover that names a device the dialler trusts and so see
//! the dialler's device certificate before the proof fails. Those are household members
//! past or present, who knew those keys already.
//!
//! # Protocols and who may use them
//!
//! ALPN [`ALPN_SYNC_LEAN`] (`hearth/2`) and [`ALPN_SYNC`] (`hearth/1`) carry sync, in
//! the lean and the classic layout of one vocabulary, and are open only to keys the policy
//! allows ([`TrustPolicy::allows_sync`]: on the roster and not revoked). ALPN
//! [`ALPN_PAIR`] (`hearth-pair/1`) carries pairing, whose peer is by definition not on the
//! roster yet; it accepts any well-formed Ed25519 certificate with a valid handshake
//! signature, but only while an invite is open ([`TrustPolicy::pairing_open`]). The
//! pairing code, checked by SPAKE2 inside the connection, is what authenticates that
//! peer, and [`Accepted::peer`] / [`Dialed::peer`] give the pairing state machine the
//! TLS key to bind the exchanged device key to. The inviting listener shows a one-time
//! certificate here too ([`Accepted::local_tls_key`]), never its device certificate;
//! it proves its device key inside the SPAKE2-sealed payload, by a signature over both
//! TLS keys (`hearth_core::pair::inviter_device_message`), to a joiner holding the code.
//!
//! rustls asks a client-certificate verifier about a certificate without telling it
//! which ALPN protocol the connection negotiated, and quinn picks a server configuration
//! per endpoint, not per protocol. Rather than run two ports, or accept everyone and sort
//! connections out afterwards, the listener builds **a fresh TLS configuration for every
//! incoming connection** ([`Incoming::handshake`], through
//! [`quinn::Incoming::accept_with`]). That configuration's certificate resolver sees the
//! ClientHello and records the protocol the client asks for in a per-connection gate;
//! its client verifier reads the gate and applies the rule for that protocol. So:
//!
//! - an unknown or revoked key asking for `hearth/1` is refused **at the handshake**,
//!   whether or not an invite is open. It gets no application data and opens no
//!   stream; the refusal is logged with its device id.
//! - a pairing attempt while no invite is open is refused at the ClientHello, before
//!   this device's certificate is even sent.
//! - all refusals use the same TLS alert (`access_denied`), so a refused peer cannot tell
//!   "unknown" from "revoked" from "pairing closed".
//!
//! The endpoint's own default server configuration refuses every connection, so an
//! accept loop that bypasses [`Transport::accept`] fails closed rather than open. Session
//! resumption and 0-RTT are disabled on both sides: a resumed session would skip the
//! certificate check, and a revoked device must not get back in that way.
//!
//! What a refused stranger *does* learn: that something answers QUIC with these ALPN ids
//! on that port (the ALPN id `hearth/1` also travels in clear in every ClientHello, which
//! QUIC's Initial protection does not hide). On `hearth/1` it sees only a cover; on
//! `hearth-pair/1`, while an invite is open, only a one-time certificate (and a dial
//! uses the invite up). A dialer sends its certificate only after it has accepted the
//! listener's, so a listener outside the household never sees the dialer's sync
//! certificate; a joiner shows its device certificate to whoever it dials with a code.
//!
//! # When a dialed connection counts as established
//!
//! For sync, [`Transport::connect`] returns only once the listener's proof has arrived,
//! which the listener sends only after admitting the dialler: the connection is
//! established. For pairing, the client finishes its TLS 1.3 handshake before the server
//! has judged the client certificate, so `connect` can return a connection that the
//! listener is about to refuse; a driver must treat it as established only once the
//! peer's first SPAKE2 message has arrived. Until then a refusal shows up as a
//! [`quinn::ConnectionError`] from a stream operation; [`connection_error`] turns it into
//! the actionable [`TransportError::RefusedByPeer`] or [`TransportError::PairingRefused`].
//! The accepting side has no such gap: [`Incoming::handshake`] returns only after the
//! peer's certificate and signature have been checked.
//!
//! # Liveness
//!
//! Keep-alives every [`KEEP_ALIVE`] and an idle timeout of [`IDLE_TIMEOUT`] make a dead
//! peer's connection fail within ten seconds, so a restarted peer's new
//! connection can replace the stale one. Revoking a key stops *new* handshakes; the
//! driver must close live connections with that peer itself
//! ([`close`] with [`CloseReason::Revoked`]).

mod cover;
mod verify;

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use hearth_core::identity::DeviceId;
use hearth_core::sync::WireForm;
use quinn::crypto::rustls::{
    HandshakeData, NoInitialCipherSuite, QuicClientConfig, QuicServerConfig,
};
use quinn::{IdleTimeout, TransportConfig, VarInt};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use zeroize::Zeroizing;

use verify::{
    Claim, ClientVerifier, DialerCertResolver, HandshakeGate, ListenerCertResolver, ServerVerifier,
};

/// ALPN protocol id for sync connections in the classic layout, which every version
/// of Hearth speaks.
pub const ALPN_SYNC: &[u8] = b"hearth/1";
/// ALPN protocol id for sync connections in the lean layout
/// (`hearth_core::sync::lean`): the same messages without device ids.
pub const ALPN_SYNC_LEAN: &[u8] = b"hearth/2";
/// ALPN protocol id for pairing connections.
pub const ALPN_PAIR: &[u8] = b"hearth-pair/1";
/// The TLS server name every device dials. It is a placeholder (`.invalid` cannot
/// resolve) because identity is the pinned key, never a name; it is not sent as SNI.
pub const SERVER_NAME: &str = "hearth.invalid";
/// Interval between QUIC keep-alive packets on an otherwise quiet connection: a few
/// bytes every few seconds, on a home network.
pub const KEEP_ALIVE: Duration = Duration::from_secs(3);
/// Silence after which a connection is considered dead (QUIC takes the smaller of the
/// two peers' values): about three missed keep-alives. `status` says `connected` only
/// while the connection lives, so a peer that stopped answering shows as gone within
/// this time, and is redialled.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a dialler waits, after its handshake, for a sync listener's proof of its
/// device key.
pub const PROOF_TIMEOUT: Duration = Duration::from_secs(10);

/// An Ed25519 public key, 32 bytes, as carried in certificates and the roster.
pub type PublicKey = [u8; 32];

/// The application protocol of a connection, negotiated by ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alpn {
    /// Sync between trusted devices ([`ALPN_SYNC_LEAN`] or [`ALPN_SYNC`]).
    Sync,
    /// Pairing a new device ([`ALPN_PAIR`]).
    Pair,
}

impl Alpn {
    /// The listener's protocols in its order of preference, which rustls uses to choose
    /// when a client offers several.
    const LISTENER_ORDER: [Self; 2] = [Self::Sync, Self::Pair];

    /// The ALPN protocol ids that carry this protocol, most preferred first. Sync has
    /// two layouts of one vocabulary; a listener picks the first the dialler offers,
    /// so two devices that both know the lean one use it, and an older device is
    /// answered in the classic one without a retry.
    pub fn protocol_ids(self) -> &'static [&'static [u8]] {
        match self {
            Self::Sync => &[ALPN_SYNC_LEAN, ALPN_SYNC],
            Self::Pair => &[ALPN_PAIR],
        }
    }

    /// Reads an ALPN protocol id; `None` if it is not one of Hearth's.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Self::LISTENER_ORDER
            .into_iter()
            .find(|alpn| alpn.protocol_ids().contains(&bytes))
    }

    /// The protocol as text, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "hearth sync",
            Self::Pair => "hearth-pair/1",
        }
    }
}

/// Decides which peer keys may connect. Backed by the roster in the daemon.
///
/// Both methods are called from inside TLS handshakes, on the network tasks: they must
/// answer quickly from memory and never block on I/O.
pub trait TrustPolicy: Send + Sync + fmt::Debug + 'static {
    /// Whether `peer` may sync: it is a device on the roster and has not been revoked.
    fn allows_sync(&self, peer: &PublicKey) -> bool;

    /// Whether an invite is open right now, so that an unknown key may start pairing.
    fn pairing_open(&self) -> bool;

    /// The household secrets this device holds, current first. A sync listener vouches
    /// for its cover certificate with the first; a sync dialler accepts a cover vouched
    /// for by any of them. Without one this device neither accepts nor dials sync.
    fn household_secrets(&self) -> Vec<Zeroizing<[u8; 32]>> {
        Vec::new()
    }

    /// Every device key this device knows of, trusted or not (at least every key
    /// [`TrustPolicy::allows_sync`] allows), for a sync dialler to find which device a
    /// listener's cover certificate claims to be, and to name one it refuses.
    fn known_keys(&self) -> Vec<PublicKey> {
        Vec::new()
    }
}

/// An in-memory [`TrustPolicy`]: a set of trusted keys that the daemon refreshes from
/// the roster, and a count of open pairing windows.
///
/// Changes take effect for the next handshake; connections already open are the
/// driver's to close.
#[derive(Default)]
pub struct TrustSet {
    state: RwLock<TrustState>,
}

#[derive(Default)]
struct TrustState {
    trusted: HashSet<PublicKey>,
    open_windows: usize,
    secrets: Vec<Zeroizing<[u8; 32]>>,
    /// Keys of devices this device knows of but may no longer trust (removed, or across
    /// a leaving): only used to name a listener it refuses.
    known: HashSet<PublicKey>,
}

impl TrustSet {
    /// An empty set: nobody may sync and pairing is closed.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    // The critical sections below cannot panic, so a poisoned lock still holds a
    // consistent set; recovering it keeps revocations working instead of wedging.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, TrustState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, TrustState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the trusted keys with `keys`, e.g. after the roster changed. Keys not in
    /// `keys` (revoked or removed devices) are refused from the next handshake on.
    pub fn replace(&self, keys: impl IntoIterator<Item = PublicKey>) {
        let keys: HashSet<PublicKey> = keys.into_iter().collect();
        let mut state = self.write();
        let dropped: Vec<PublicKey> = state.trusted.difference(&keys).copied().collect();
        state.known.extend(dropped);
        state.trusted = keys;
    }

    /// Replaces the keys of devices this device knows of without trusting them, e.g.
    /// removed devices on the roster. They are never allowed; a sync dialler only uses
    /// them to say which device it refused.
    pub fn set_known(&self, keys: impl IntoIterator<Item = PublicKey>) {
        self.write().known = keys.into_iter().collect();
    }

    /// Replaces the household secrets (current first) that vouch for cover
    /// certificates, e.g. once pairing delivered the secret.
    pub fn set_household_secrets(&self, secrets: Vec<Zeroizing<[u8; 32]>>) {
        self.write().secrets = secrets;
    }

    /// Trusts one more key.
    pub fn insert(&self, key: PublicKey) {
        self.write().trusted.insert(key);
    }

    /// Stops trusting `key`; returns whether it was trusted.
    pub fn remove(&self, key: &PublicKey) -> bool {
        let mut state = self.write();
        state.known.insert(*key);
        state.trusted.remove(key)
    }

    /// Opens a pairing window. Unknown keys may connect with [`ALPN_PAIR`] until the
    /// returned guard is dropped, so a pairing task that ends in any way, including a
    /// panic or a cancelled future, closes its window.
    pub fn open_pairing(self: &Arc<Self>) -> PairingWindow {
        self.write().open_windows += 1;
        PairingWindow {
            trust: Arc::clone(self),
        }
    }
}

impl TrustPolicy for TrustSet {
    fn allows_sync(&self, peer: &PublicKey) -> bool {
        self.read().trusted.contains(peer)
    }

    fn pairing_open(&self) -> bool {
        self.read().open_windows > 0
    }

    fn household_secrets(&self) -> Vec<Zeroizing<[u8; 32]>> {
        self.read().secrets.clone()
    }

    fn known_keys(&self) -> Vec<PublicKey> {
        let state = self.read();
        state.trusted.union(&state.known).copied().collect()
    }
}

impl fmt::Debug for TrustSet {
    // Lists no keys: Debug output may end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read();
        f.debug_struct("TrustSet")
            .field("trusted", &state.trusted.len())
            .field("pairing_open", &(state.open_windows > 0))
            .finish()
    }
}

/// An open pairing window on a [`TrustSet`]; dropping it closes the window.
#[must_use = "the pairing window closes as soon as this guard is dropped"]
#[derive(Debug)]
pub struct PairingWindow {
    trust: Arc<TrustSet>,
}

impl Drop for PairingWindow {
    fn drop(&mut self) {
        let mut state = self.trust.write();
        state.open_windows = state.open_windows.saturating_sub(1);
    }
}

/// This device's Ed25519 key, with the self-signed certificate made from it.
#[derive(Clone)]
pub struct DeviceKey {
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicKey,
    certified: Arc<CertifiedKey>,
}

impl DeviceKey {
    /// Generates a new device key from the operating system's random source.
    pub fn generate() -> Result<Self, TransportError> {
        let document = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .map_err(|_| TransportError::NoRandomness)?;
        Self::from_pkcs8(document.as_ref())
    }

    /// Loads a device key from its PKCS#8 (v1 or v2) DER encoding and makes its
    /// certificate.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, TransportError> {
        let (public, certified) = certify(pkcs8, None)?;
        Ok(Self {
            pkcs8: Zeroizing::new(pkcs8.to_vec()),
            public,
            certified: Arc::new(certified),
        })
    }

    /// The PKCS#8 encoding, for the key file. Secret: never log or send it.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        DeviceId::from_public_key(&self.public)
    }

    /// The DER of this device's self-signed certificate.
    pub fn certificate_der(&self) -> &[u8] {
        self.certified
            .cert
            .first()
            .map_or(&[][..], |cert| cert.as_ref())
    }

    /// Signs `message` with this key, for verifier tests.
    #[cfg(test)]
    fn sign_for_test(&self, message: &[u8]) -> Vec<u8> {
        #[allow(clippy::unwrap_used)]
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.pkcs8).unwrap();
        pair.sign(message).as_ref().to_vec()
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey")
            .field("device", &self.device_id())
            .finish_non_exhaustive()
    }
}

/// A self-signed certificate for the Ed25519 key in `pkcs8`, with an empty subject (a
/// certificate must never carry a name, and says nothing about the program either) and,
/// for a cover certificate, the given serial number.
fn certify(
    pkcs8: &[u8],
    serial: Option<[u8; cover::SERIAL_LEN]>,
) -> Result<(PublicKey, CertifiedKey), TransportError> {
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .map_err(|_| TransportError::InvalidDeviceKey)?;
    let public = PublicKey::try_from(pair.public_key().as_ref())
        .map_err(|_| TransportError::InvalidDeviceKey)?;

    let cert_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8),
        &rcgen::PKCS_ED25519,
    )
    .map_err(TransportError::Certificate)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(serial) = serial {
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    }
    let cert = params
        .self_signed(&cert_key)
        .map_err(TransportError::Certificate)?;

    let signing_key = provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            pkcs8.to_vec(),
        )))?;
    let certified = CertifiedKey::new(vec![cert.der().clone()], signing_key);
    // The certificate and the signing key come from the same bytes; checking they
    // agree catches a library disagreement here rather than as a peer's refusal.
    certified.keys_match()?;
    Ok((public, certified))
}

/// Whether `haystack` holds `needle`, ignoring ASCII case; for tests that look for what
/// must not be there.
#[cfg(test)]
fn test_contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The only crypto provider the transport uses: *ring*, passed explicitly to every
/// builder so that nothing depends on a process-wide default.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a connection is being closed, sent to the peer as the QUIC application close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The work is done; nothing went wrong.
    Done,
    /// This device's daemon is shutting down.
    Shutdown,
    /// The peer was removed from the roster.
    Revoked,
    /// A newer connection with the same peer replaces this one.
    Replaced,
    /// The peer broke the protocol.
    ProtocolViolation,
    /// The peer took no data for too long while some waited; the link is redialled.
    Stalled,
}

impl CloseReason {
    const ALL: [Self; 6] = [
        Self::Done,
        Self::Shutdown,
        Self::Revoked,
        Self::Replaced,
        Self::ProtocolViolation,
        Self::Stalled,
    ];

    /// The application close code on the wire.
    pub fn code(self) -> VarInt {
        VarInt::from_u32(match self {
            Self::Done => 0,
            Self::Shutdown => 1,
            Self::Revoked => 2,
            Self::Replaced => 3,
            Self::ProtocolViolation => 4,
            Self::Stalled => 5,
        })
    }

    /// Reads a close code sent by a peer; `None` if it is not one of ours.
    pub fn from_code(code: VarInt) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.code() == code)
    }

    /// A short description for messages and logs.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Shutdown => "the daemon is shutting down",
            Self::Revoked => "this device was removed from the household",
            Self::Replaced => "a newer connection replaced this one",
            Self::ProtocolViolation => "protocol violation",
            Self::Stalled => "the link stopped moving and will be redialled",
        }
    }
}

fn describe_close(reason: Option<CloseReason>) -> &'static str {
    reason.map_or("an unknown reason", CloseReason::describe)
}

/// Closes `connection`, telling the peer why.
pub fn close(connection: &quinn::Connection, reason: CloseReason) {
    connection.close(reason.code(), reason.describe().as_bytes());
}

/// The Ed25519 key in the certificate the peer of `connection` presented, once the
/// handshake is done.
///
/// On an accepted connection this is the dialler's device key. On a dialled *sync*
/// connection it is only the listener's one-time cover key: use [`Dialed::peer`], the
/// key the listener proved inside the channel.
pub fn peer_public_key(connection: &quinn::Connection) -> Option<PublicKey> {
    let identity = connection.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    verify::ed25519_public_key(certs.first()?).ok()
}

/// The protocol `connection` negotiated.
pub fn negotiated_alpn(connection: &quinn::Connection) -> Option<Alpn> {
    Alpn::from_bytes(&negotiated_protocol_id(connection)?)
}

/// The layout a sync connection's frames use, by the ALPN id it negotiated.
pub fn negotiated_sync_form(connection: &quinn::Connection) -> WireForm {
    if negotiated_protocol_id(connection).as_deref() == Some(ALPN_SYNC_LEAN) {
        WireForm::Lean
    } else {
        WireForm::Classic
    }
}

/// The ALPN id `connection` negotiated, as bytes.
fn negotiated_protocol_id(connection: &quinn::Connection) -> Option<Vec<u8>> {
    connection
        .handshake_data()?
        .downcast::<HandshakeData>()
        .ok()?
        .protocol
}

/// Turns a [`quinn::ConnectionError`] seen on `connection` (for instance from a stream
/// read) into an actionable [`TransportError`]; in particular a handshake refusal that
/// arrives after [`Transport::connect`] returned becomes
/// [`TransportError::RefusedByPeer`] or [`TransportError::PairingRefused`].
pub fn connection_error(
    connection: &quinn::Connection,
    error: quinn::ConnectionError,
) -> TransportError {
    classify(
        connection.remote_address(),
        negotiated_alpn(connection),
        error,
    )
}

/// TLS alert `no_application_protocol` (RFC 8446 §6).
const ALERT_NO_APPLICATION_PROTOCOL: u8 = 120;

/// The TLS alert carried by a QUIC `CRYPTO_ERROR` code (0x100 + alert), if it is one.
fn tls_alert(code: quinn::TransportErrorCode) -> Option<u8> {
    u64::from(code)
        .checked_sub(0x100)
        .and_then(|alert| u8::try_from(alert).ok())
}

fn classify(addr: SocketAddr, alpn: Option<Alpn>, error: quinn::ConnectionError) -> TransportError {
    use quinn::ConnectionError as E;
    match error {
        // The peer's TLS stack refused us.
        E::ConnectionClosed(ref close) => match tls_alert(close.error_code) {
            Some(ALERT_NO_APPLICATION_PROTOCOL) => TransportError::ProtocolMismatch { addr },
            Some(_) if alpn == Some(Alpn::Pair) => TransportError::PairingRefused { addr },
            Some(_) => TransportError::RefusedByPeer { addr, by: None },
            None => TransportError::Connection {
                addr,
                source: error,
            },
        },
        // Our own TLS stack refused the peer.
        E::TransportError(ref local) => match tls_alert(local.code) {
            Some(ALERT_NO_APPLICATION_PROTOCOL) => TransportError::ProtocolMismatch { addr },
            Some(_) => TransportError::PeerNotTrusted { addr },
            None => TransportError::Connection {
                addr,
                source: error,
            },
        },
        E::ApplicationClosed(ref close) => TransportError::Closed {
            addr,
            reason: CloseReason::from_code(close.error_code),
        },
        E::TimedOut => TransportError::Unreachable { addr },
        E::LocallyClosed => TransportError::EndpointClosed,
        _ => TransportError::Connection {
            addr,
            source: error,
        },
    }
}

/// The ALPN ids of `protocols`, in order, leaving out the lean sync layout for an
/// endpoint that speaks only the classic one.
fn protocol_ids(protocols: &[Alpn], classic_only: bool) -> Vec<Vec<u8>> {
    protocols
        .iter()
        .flat_map(|alpn| alpn.protocol_ids())
        .filter(|id| !(classic_only && **id == ALPN_SYNC_LEAN))
        .map(|id| id.to_vec())
        .collect()
}

/// Everything the endpoint needs to build per-connection TLS configurations.
#[derive(Debug, Clone)]
struct Shared {
    certified: Arc<CertifiedKey>,
    /// Signs the in-channel proof of this device's key on accepted sync connections.
    signer: Arc<Ed25519KeyPair>,
    /// This device's public key, which its cover certificates name for the household.
    device: PublicKey,
    trust: Arc<dyn TrustPolicy>,
    provider: Arc<CryptoProvider>,
    transport: Arc<TransportConfig>,
    /// The endpoint's default configuration, which refuses everyone; per-connection
    /// configurations are clones of it with their own TLS configuration.
    fallback: quinn::ServerConfig,
    /// Offers and accepts only `hearth/1` for sync, as a device from before the lean
    /// layout did (tests of the two talking to each other).
    classic_only: bool,
}

impl Shared {
    /// The listener's TLS configuration. With `gate: None` it refuses every connection.
    fn server_crypto(
        device: PublicKey,
        trust: &Arc<dyn TrustPolicy>,
        provider: &Arc<CryptoProvider>,
        gate: Option<Arc<HandshakeGate>>,
        protocol_ids: Vec<Vec<u8>>,
    ) -> Result<Arc<QuicServerConfig>, TransportError> {
        let verifier = ClientVerifier {
            provider: Arc::clone(provider),
            trust: Arc::clone(trust),
            gate: gate.clone(),
        };
        let resolver = ListenerCertResolver {
            device,
            trust: Arc::clone(trust),
            gate,
        };
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::clone(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_cert_resolver(Arc::new(resolver));
        tls.alpn_protocols = protocol_ids;
        // No 0-RTT and no resumption: both would let a peer in without its certificate
        // being judged again.
        tls.max_early_data_size = 0;
        tls.send_tls13_tickets = 0;
        tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(QuicServerConfig::try_from(tls)?))
    }

    fn server_config(
        &self,
        gate: Arc<HandshakeGate>,
    ) -> Result<quinn::ServerConfig, TransportError> {
        let mut config = self.fallback.clone();
        config.crypto = Self::server_crypto(
            self.device,
            &self.trust,
            &self.provider,
            Some(gate),
            self.offered(&Alpn::LISTENER_ORDER),
        )?;
        Ok(config)
    }

    /// The ALPN ids of `protocols`, in order, that this endpoint speaks.
    fn offered(&self, protocols: &[Alpn]) -> Vec<Vec<u8>> {
        protocol_ids(protocols, self.classic_only)
    }

    fn client_config(
        &self,
        alpn: Alpn,
        expected: Option<PublicKey>,
        claim: Claim,
    ) -> Result<quinn::ClientConfig, TransportError> {
        let verifier = ServerVerifier {
            provider: Arc::clone(&self.provider),
            trust: Arc::clone(&self.trust),
            alpn,
            expected,
            claim,
        };
        let resolver = DialerCertResolver {
            certified: Arc::clone(&self.certified),
        };
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(resolver));
        tls.alpn_protocols = self.offered(&[alpn]);
        tls.resumption = rustls::client::Resumption::disabled();
        tls.enable_early_data = false;
        // The name is the same fixed placeholder for every device; sending it would
        // only make Hearth traffic easier to spot on the network.
        tls.enable_sni = false;
        let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
        config.transport_config(Arc::clone(&self.transport));
        Ok(config)
    }
}

/// The transport settings shared by both directions.
fn transport_config() -> TransportConfig {
    let mut config = TransportConfig::default();
    config.keep_alive_interval(Some(KEEP_ALIVE));
    let idle_ms = u32::try_from(IDLE_TIMEOUT.as_millis()).unwrap_or(u32::MAX);
    config.max_idle_timeout(Some(IdleTimeout::from(VarInt::from_u32(idle_ms))));
    // Hearth frames travel on bidirectional streams only; refusing unidirectional ones
    // leaves a peer one fewer thing to open.
    config.max_concurrent_uni_streams(VarInt::from_u32(0));
    config
}

/// A QUIC endpoint that both accepts and dials, with this device's identity.
///
/// Cheap to clone; clones share the endpoint.
#[derive(Clone, Debug)]
pub struct Transport {
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
}

impl Transport {
    /// Opens a UDP socket on `bind` and starts a QUIC endpoint on it. Must be called
    /// inside a tokio runtime.
    pub fn bind(
        bind: SocketAddr,
        key: &DeviceKey,
        trust: Arc<dyn TrustPolicy>,
    ) -> Result<Self, TransportError> {
        let provider = provider();
        let certified = Arc::clone(&key.certified);
        let signer = Arc::new(
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.pkcs8())
                .map_err(|_| TransportError::InvalidDeviceKey)?,
        );
        let transport = Arc::new(transport_config());
        let mut fallback = quinn::ServerConfig::with_crypto(Shared::server_crypto(
            key.public_key(),
            &trust,
            &provider,
            None,
            protocol_ids(&Alpn::LISTENER_ORDER, false),
        )?);
        fallback.transport_config(Arc::clone(&transport));
        let socket = bind_udp(bind)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(fallback.clone()),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| bind_error(bind, source))?;
        tracing::debug!(device = %key.device_id(), "QUIC endpoint ready");
        Ok(Self {
            endpoint,
            shared: Arc::new(Shared {
                certified,
                signer,
                device: key.public_key(),
                trust,
                provider,
                transport,
                fallback,
                classic_only: false,
            }),
        })
    }

    /// This endpoint speaks sync only as a device from before `hearth/2` did: for tests
    /// of the classic layout and of mixed versions.
    pub fn classic_only(mut self) -> Self {
        self.shared = Arc::new(Shared {
            classic_only: true,
            ..Shared::clone(&self.shared)
        });
        self
    }

    /// This device's id, the key its endpoint proves.
    pub fn device_id(&self) -> DeviceId {
        DeviceId::from_public_key(&self.shared.device)
    }

    /// The address the endpoint listens on (with the real port if bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.endpoint
            .local_addr()
            .map_err(|source| TransportError::Socket { source })
    }

    /// The underlying quinn endpoint, e.g. for statistics.
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// Dials `addr` for `alpn`.
    ///
    /// For [`Alpn::Sync`] the listener's key must be allowed by the trust policy and, if
    /// `expected_peer` is given, be that key. For [`Alpn::Pair`] any key is accepted
    /// (the pairing code authenticates it) unless `expected_peer` pins one.
    ///
    /// For [`Alpn::Sync`] the returned connection is established: the listener accepted
    /// this device and proved its own device key inside the channel, and
    /// [`Dialed::peer`] is that key. For [`Alpn::Pair`] it is not yet confirmed by the
    /// listener: see the module docs on when a dialed connection counts as established.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        alpn: Alpn,
        expected_peer: Option<PublicKey>,
    ) -> Result<Dialed, TransportError> {
        let claim = Claim::default();
        let config = self
            .shared
            .client_config(alpn, expected_peer, Arc::clone(&claim))?;
        let connecting = self
            .endpoint
            .connect_with(config, addr, SERVER_NAME)
            .map_err(|source| match source {
                quinn::ConnectError::EndpointStopping => TransportError::EndpointClosed,
                source => TransportError::Dial { addr, source },
            })?;
        let claimed = || claim.lock().ok().and_then(|claim| *claim);
        let connection = connecting.await.map_err(|error| {
            match classify(addr, Some(alpn), error) {
                // The refusal can overtake the end of our side of the handshake.
                TransportError::RefusedByPeer { addr, by: None } => TransportError::RefusedByPeer {
                    addr,
                    by: claimed().map(|key| DeviceId::from_public_key(&key)),
                },
                other => other,
            }
        })?;
        let peer = match alpn {
            Alpn::Pair => peer_public_key(&connection),
            Alpn::Sync => Some(self.await_proof(&connection, claimed()).await?),
        };
        let Some(peer) = peer else {
            close(&connection, CloseReason::ProtocolViolation);
            return Err(TransportError::HandshakeMismatch { addr });
        };
        Ok(Dialed { connection, peer })
    }

    /// Reads the sync listener's proof of its device key and judges that key: it must be
    /// the key its cover claimed (which the verifier already found pinned, if a key was
    /// expected, and trusted), and still allowed by the policy.
    async fn await_proof(
        &self,
        connection: &quinn::Connection,
        claimed: Option<PublicKey>,
    ) -> Result<PublicKey, TransportError> {
        let addr = connection.remote_address();
        let Some(claimed) = claimed else {
            close(connection, CloseReason::ProtocolViolation);
            return Err(TransportError::HandshakeMismatch { addr });
        };
        let read = async {
            let (_send, mut recv) = connection
                .accept_bi()
                .await
                .map_err(|error| connection_error(connection, error))?;
            recv.read_to_end(cover::PROOF_LEN)
                .await
                .map_err(|error| match error {
                    quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(error)) => {
                        connection_error(connection, error)
                    }
                    _ => TransportError::HandshakeMismatch { addr },
                })
        };
        let bytes = match tokio::time::timeout(PROOF_TIMEOUT, read).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(TransportError::RefusedByPeer { addr, .. })) => {
                // The listener refused this device. Only the household secret vouches for
                // whom its cover claimed to be, but that is enough to show who to ask.
                return Err(TransportError::RefusedByPeer {
                    addr,
                    by: Some(DeviceId::from_public_key(&claimed)),
                });
            }
            Ok(Err(error)) => {
                close(connection, CloseReason::ProtocolViolation);
                return Err(error);
            }
            Err(_) => {
                close(connection, CloseReason::ProtocolViolation);
                return Err(TransportError::Unreachable { addr });
            }
        };
        let Some(key) = cover::proven_key(connection, &bytes) else {
            tracing::info!(
                "refused to talk to a device: its proof of its device key did not verify"
            );
            close(connection, CloseReason::ProtocolViolation);
            return Err(TransportError::PeerNotTrusted { addr });
        };
        let is_expected = key == claimed;
        if !is_expected || !self.shared.trust.allows_sync(&key) {
            tracing::info!(
                peer = %DeviceId::from_public_key(&key),
                expected_device = is_expected,
                "refused to talk to a device: it is not trusted or not the device we dialled"
            );
            close(connection, CloseReason::Revoked);
            return Err(TransportError::PeerNotTrusted { addr });
        }
        Ok(key)
    }

    /// Waits for the next incoming connection attempt; `None` once the endpoint is
    /// closed. Run [`Incoming::handshake`] on its own task so one slow peer does not
    /// hold up the accept loop.
    pub async fn accept(&self) -> Option<Incoming> {
        let incoming = self.endpoint.accept().await?;
        Some(Incoming {
            incoming,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Closes every connection, telling peers the daemon is shutting down, and waits
    /// briefly for them to be told.
    pub async fn shutdown(&self) {
        let reason = CloseReason::Shutdown;
        self.endpoint
            .close(reason.code(), reason.describe().as_bytes());
        self.endpoint.wait_idle().await;
    }
}

/// An incoming connection attempt, not yet authenticated.
#[derive(Debug)]
pub struct Incoming {
    incoming: quinn::Incoming,
    shared: Arc<Shared>,
}

impl Incoming {
    /// The address the attempt comes from (not authenticated).
    pub fn remote_address(&self) -> SocketAddr {
        self.incoming.remote_address()
    }

    /// Drops the attempt without answering the handshake, e.g. when shutting down.
    pub fn ignore(self) {
        self.incoming.ignore();
    }

    /// Runs the handshake with this connection's own TLS configuration and returns the
    /// authenticated connection, or why the peer was refused.
    pub async fn handshake(self) -> Result<Accepted, TransportError> {
        let addr = self.incoming.remote_address();
        let gate = Arc::new(HandshakeGate::default());
        let config = self.shared.server_config(Arc::clone(&gate))?;
        let connection = self
            .incoming
            .accept_with(Arc::new(config))
            .map_err(|error| classify(addr, None, error))?
            .await
            .map_err(|error| classify(addr, None, error))?;

        // The verifier judged the key under the protocol the ClientHello asked for. Check
        // that this is the protocol and key the finished handshake actually carries, and
        // that the key was not revoked while the handshake ran.
        let alpn = negotiated_alpn(&connection);
        let peer = peer_public_key(&connection);
        let admitted = gate.admitted();
        let (alpn, peer) = match (alpn, peer) {
            (Some(alpn), Some(peer)) if admitted == Some((alpn, peer)) => (alpn, peer),
            _ => {
                close(&connection, CloseReason::ProtocolViolation);
                return Err(TransportError::HandshakeMismatch { addr });
            }
        };
        let still_allowed = match alpn {
            Alpn::Sync => self.shared.trust.allows_sync(&peer),
            Alpn::Pair => self.shared.trust.pairing_open(),
        };
        if !still_allowed {
            close(&connection, CloseReason::Revoked);
            return Err(TransportError::PeerNotTrusted { addr });
        }
        if alpn == Alpn::Sync {
            // The dialler has shown a trusted device key; only now does it learn ours,
            // inside the channel, bound to this connection.
            send_proof(&connection, &self.shared.signer).await?;
        }
        tracing::debug!(
            peer = %DeviceId::from_public_key(&peer),
            protocol = alpn.name(),
            "accepted a connection"
        );
        Ok(Accepted {
            connection,
            alpn,
            peer,
            local_tls_key: gate.presented(),
        })
    }
}

/// Sends the listener's proof of its device key on the first stream of `connection`.
async fn send_proof(
    connection: &quinn::Connection,
    signer: &Ed25519KeyPair,
) -> Result<(), TransportError> {
    {
        let Some(proof) = cover::proof(connection, signer) else {
            close(connection, CloseReason::ProtocolViolation);
            return Err(TransportError::HandshakeMismatch {
                addr: connection.remote_address(),
            });
        };
        let lost = |error| connection_error(connection, error);
        let (mut send, _recv) = connection.open_bi().await.map_err(lost)?;
        send.write_all(&proof).await.map_err(|error| match error {
            quinn::WriteError::ConnectionLost(error) => lost(error),
            _ => TransportError::HandshakeMismatch {
                addr: connection.remote_address(),
            },
        })?;
        let _ = send.finish();
        Ok(())
    }
}

/// A dialled connection.
#[derive(Debug)]
pub struct Dialed {
    /// The connection.
    pub connection: quinn::Connection,
    /// The listener's Ed25519 device key: for sync, the key it proved inside the
    /// channel (already judged by the trust policy); for pairing, the key in its
    /// certificate, which the pairing code then authenticates.
    pub peer: PublicKey,
}

impl Dialed {
    /// The listener's device id.
    pub fn peer_device_id(&self) -> DeviceId {
        DeviceId::from_public_key(&self.peer)
    }
}

/// An authenticated incoming connection.
#[derive(Debug)]
pub struct Accepted {
    /// The connection; the peer has proved it holds [`Accepted::peer`].
    pub connection: quinn::Connection,
    /// The protocol the peer connected for.
    pub alpn: Alpn,
    /// The peer's Ed25519 public key.
    pub peer: PublicKey,
    /// For pairing: the key of the one-time certificate this device presented, which
    /// the pairing handshake binds (and over which it proves its device key).
    pub local_tls_key: Option<PublicKey>,
}

impl Accepted {
    /// The peer's device id.
    pub fn peer_device_id(&self) -> DeviceId {
        DeviceId::from_public_key(&self.peer)
    }
}

/// Opens the UDP socket. The unspecified IPv6 address (the default, `[::]`) is made
/// dual-stack, so one socket reaches both IPv4 peers and IPv6 link-local ones found by
/// mDNS; where the machine has IPv6 turned off, the same port on IPv4 stands in.
fn bind_udp(bind: SocketAddr) -> Result<std::net::UdpSocket, TransportError> {
    if bind.ip() != std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) {
        return std::net::UdpSocket::bind(bind).map_err(|source| bind_error(bind, source));
    }
    let dual_stack = || -> io::Result<std::net::UdpSocket> {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV6,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        socket.set_only_v6(false)?;
        socket.bind(&bind.into())?;
        Ok(socket.into())
    };
    match dual_stack() {
        Ok(socket) => Ok(socket),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error()) => {
            let v4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, bind.port()));
            tracing::info!("IPv6 is turned off on this machine; listening on IPv4 only");
            std::net::UdpSocket::bind(v4).map_err(|source| bind_error(v4, source))
        }
        Err(source) => Err(bind_error(bind, source)),
    }
}

fn bind_error(addr: SocketAddr, source: io::Error) -> TransportError {
    match source.kind() {
        io::ErrorKind::AddrInUse => TransportError::PortInUse { addr },
        io::ErrorKind::AddrNotAvailable => TransportError::AddressUnavailable { addr },
        _ => TransportError::Bind { addr, source },
    }
}

/// Errors of the QUIC transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The stored device key is not an Ed25519 PKCS#8 key.
    #[error(
        "the device key is not a valid Ed25519 PKCS#8 key; the key file is damaged: restore \
         it from a backup, or start over with `hearth init` in a new data directory and pair \
         this device again"
    )]
    InvalidDeviceKey,
    /// The operating system's random source failed while generating a key.
    #[error("could not read the system's random source to generate a device key; check that /dev/urandom is readable")]
    NoRandomness,
    /// The device certificate could not be made from the key.
    #[error(
        "could not make this device's certificate: {0}; this is a bug in Hearth, please report it"
    )]
    Certificate(#[source] rcgen::Error),
    /// rustls refused a configuration or key this module built.
    #[error("could not set up TLS: {0}; this is a bug in Hearth, please report it")]
    Tls(#[from] rustls::Error),
    /// The crypto provider lacks the cipher suite QUIC requires for its initial packets.
    #[error("the TLS provider lacks the cipher suite QUIC needs; this is a bug in Hearth, please report it")]
    NoInitialCipherSuite(#[from] NoInitialCipherSuite),
    /// Another process already listens on the chosen UDP port.
    #[error(
        "the QUIC port {addr} is already in use (another hearthd?); stop the other process, \
         or set `listen` in config.toml or HEARTH_LISTEN to a free port"
    )]
    PortInUse {
        /// The address we tried to bind.
        addr: SocketAddr,
    },
    /// The chosen address does not belong to this machine.
    #[error(
        "cannot listen on {addr}: that address does not belong to this machine; set `listen` \
         in config.toml or HEARTH_LISTEN to a local address such as [::]:7447"
    )]
    AddressUnavailable {
        /// The address we tried to bind.
        addr: SocketAddr,
    },
    /// Opening the UDP socket failed for another reason.
    #[error("cannot open the QUIC socket on {addr}: {source}; check `listen` in config.toml or HEARTH_LISTEN")]
    Bind {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The socket's local address could not be read.
    #[error("cannot read the QUIC socket's address: {source}; restart hearthd")]
    Socket {
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The endpoint was shut down, so nothing can be dialed or accepted.
    #[error("the QUIC endpoint is shut down; restart hearthd")]
    EndpointClosed,
    /// quinn refused to start dialing `addr`.
    #[error("cannot dial {addr}: {source}; check the peer address")]
    Dial {
        /// The address dialed.
        addr: SocketAddr,
        /// quinn's reason.
        #[source]
        source: quinn::ConnectError,
    },
    /// The peer refused this device at the sync handshake.
    #[error(
        "the device at {addr} refused this device: this device is not on its household roster \
         or was removed from it; check `hearth devices` there, and pair again with \
         `hearth pair invite` / `hearth pair join` if needed"
    )]
    RefusedByPeer {
        /// The peer's address.
        addr: SocketAddr,
        /// The device that refused, as its cover certificate claimed under the household
        /// secret (a hint, not proof), when a sync dial got that far.
        by: Option<DeviceId>,
    },
    /// The peer refused a pairing connection.
    #[error(
        "the device at {addr} is not accepting pairing: run `hearth pair invite` there and use \
         its code within 10 minutes"
    )]
    PairingRefused {
        /// The peer's address.
        addr: SocketAddr,
    },
    /// This device refused the peer during the handshake.
    #[error(
        "refused the device at {addr}: its key is not on the roster, was removed, is not the \
         device that was dialed, or its handshake signature did not verify; check `hearth devices`"
    )]
    PeerNotTrusted {
        /// The peer's address.
        addr: SocketAddr,
    },
    /// The peer speaks none of this version's protocols.
    #[error(
        "the program at {addr} does not speak this version of Hearth's protocol; update Hearth \
         on both devices"
    )]
    ProtocolMismatch {
        /// The peer's address.
        addr: SocketAddr,
    },
    /// A finished handshake did not carry the protocol or key the verifier admitted.
    #[error("the connection from {addr} changed protocol or key during its handshake and was closed; no action needed")]
    HandshakeMismatch {
        /// The peer's address.
        addr: SocketAddr,
    },
    /// Nothing answered within the idle timeout.
    #[error(
        "no answer from {addr} within {}s; check that hearthd runs there and that UDP traffic \
         to that port is not blocked",
        IDLE_TIMEOUT.as_secs()
    )]
    Unreachable {
        /// The peer's address.
        addr: SocketAddr,
    },
    /// The peer closed the connection.
    #[error("the device at {addr} closed the connection: {}", describe_close(*.reason))]
    Closed {
        /// The peer's address.
        addr: SocketAddr,
        /// The reason it gave, if it is one Hearth knows.
        reason: Option<CloseReason>,
    },
    /// Any other connection failure.
    #[error("the connection with {addr} failed: {source}; it will be retried")]
    Connection {
        /// The peer's address.
        addr: SocketAddr,
        /// quinn's reason.
        #[source]
        source: quinn::ConnectionError,
    },
}

impl TransportError {
    /// Whether this is a trust refusal at the handshake, by either side. Such errors do
    /// not heal by retrying soon; the roster has to change first.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::RefusedByPeer { .. } | Self::PairingRefused { .. } | Self::PeerNotTrusted { .. }
        )
    }
}

#[cfg(test)]
mod tests;
