//! [`Handshake`]: the pairing state machine (see the [module docs](super) for the
//! protocol).
//!
//! This module owns the key schedule, the confirmation MACs, the sealed channel and
//! the payloads. It never logs or formats secrets: every type holding one has a
//! redacting `Debug`, and key material is wiped when dropped.

use std::collections::VecDeque;
use std::fmt;

use ciborium::value::Value;
use rand::{CryptoRng, RngCore};
use ring::{aead, digest, hkdf, hmac};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use super::{PairError, PairingCode};
use crate::sync::frame::{frame_value, text, CborMap, FrameDecoder, MapBuilder};

/// The ALPN protocol id for pairing connections.
pub const PAIR_ALPN: &[u8] = b"hearth-pair/1";

/// Largest pairing frame: room for a roster of many devices, small enough that a
/// stranger cannot make the inviter buffer much.
pub const PAIR_MAX_FRAME: usize = 1024 * 1024;

/// Longest display name accepted, in bytes.
const MAX_NAME_LEN: usize = 256;

/// Domain separation for every derivation and MAC, so no value computed here can be
/// confused with one from another protocol or version.
const LABEL: &[u8] = b"hearth-pair/1";

// Wire message types.
const SPAKE: &str = "spake";
const CONFIRM: &str = "confirm";
const SEALED: &str = "sealed";
// Sealed payload types.
const JOINER: &str = "joiner";
const INVITER: &str = "inviter";
const DONE: &str = "done";

/// The TLS public keys of the pairing connection, as each side sees them.
///
/// Both are Ed25519 keys. The joiner's is its device key. The inviter's is either its
/// device key or, so that a stranger who dials during an open invite learns nothing
/// stable, a key made for this connection alone; then the inviter proves its device key
/// with [`InviterInfo::device_sig`] over both TLS keys. They are bound into key
/// confirmation, and each payload's device key must equal the peer's TLS key or be
/// proved that way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsBinding {
    /// This device's TLS public key.
    pub local_tls_key: [u8; 32],
    /// The TLS public key the peer presented on this connection.
    pub peer_tls_key: [u8; 32],
}

/// Whom an invite admits. The inviting device decides; the joiner never chooses.
///
/// The role is bound into the key schedule (see the [module docs](super)), so a
/// joiner that binds the other role fails key confirmation exactly as a wrong code
/// does, and an honest joiner learns the role only from the inviter's confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InviteRole {
    /// The partner: a new person joining the household for the first time.
    Partner,
    /// Another device of the person who owns the inviting device.
    OwnDevice,
}

impl InviteRole {
    /// Both roles, in the order an honest joiner tries them.
    pub const ALL: [InviteRole; 2] = [InviteRole::Partner, InviteRole::OwnDevice];

    /// The stable key, as in the control API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Partner => "partner",
            Self::OwnDevice => "own-device",
        }
    }

    fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == key)
    }
}

/// What the joining device tells the inviter. It says nothing about its role: the
/// inviter decided that when it made the code.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinerInfo {
    /// The joiner's Ed25519 device public key (checked against its TLS key).
    pub device_key: [u8; 32],
    /// The person the joining device made for itself at `init`. It becomes the new
    /// person when the invite is for the partner, and is ignored for an own device.
    pub person_id: Uuid,
    /// That person's name, e.g. "Sam".
    pub person_name: String,
    /// A name for the device, e.g. "Sam's phone".
    pub device_name: String,
}

impl fmt::Debug for JoinerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinerInfo").finish_non_exhaustive()
    }
}

/// What the joining device will accept, decided before it dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinerPolicy {
    /// Whether this device can join as the partner (e.g. it holds no entries of its own,
    /// or the user agreed to merge them).
    pub accepts_partner: bool,
    /// Whether this device can join as another device of the inviting person (only a
    /// fresh device can give up its own person).
    pub accepts_own_device: bool,
    /// Bind this role into the key schedule instead of learning it from the inviter.
    /// Honest joiners leave it `None`; with `Some`, a code for the other role fails as
    /// a wrong code does.
    pub claim: Option<InviteRole>,
}

impl Default for JoinerPolicy {
    fn default() -> Self {
        Self {
            accepts_partner: true,
            accepts_own_device: true,
            claim: None,
        }
    }
}

/// What the inviting device checks a joiner against before anything private leaves.
/// It never travels.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// The people already in the household: a partner may not claim to be one of them.
    pub people: Vec<Uuid>,
    /// Every device key on the roster, removed ones included: none may join again.
    pub device_keys: Vec<[u8; 32]>,
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("people", &self.people.len())
            .field("device_keys", &self.device_keys.len())
            .finish()
    }
}

/// What the inviting device tells the joiner.
#[derive(Clone, PartialEq, Eq)]
pub struct InviterInfo {
    /// Whom the invite admits. On the joiner it must equal the role key confirmation
    /// proved.
    pub role: InviteRole,
    /// The inviter's Ed25519 device public key: equal to its TLS key, or proved by
    /// [`InviterInfo::device_sig`].
    pub device_key: [u8; 32],
    /// When the inviter's TLS key is a one-time key: its device key's Ed25519 signature
    /// over [`inviter_device_message`] of this connection's two TLS keys.
    pub device_sig: Option<[u8; 64]>,
    /// A name for the device.
    pub display_name: String,
    /// The person who owns the inviting device.
    pub person_id: Uuid,
    /// The household roster, serialized by the caller.
    pub roster: Vec<u8>,
    /// The 32-byte household secret of the current epoch.
    pub household_secret: Zeroizing<[u8; 32]>,
    /// The number of that epoch (see [`crate::epochs`]); 0 from an inviter that
    /// predates epochs.
    pub household_epoch: u64,
}

/// What an inviter with a one-time TLS key signs with its device key: both TLS keys of
/// the connection, its own first. It travels inside the SPAKE2-sealed payload, so only
/// a joiner holding the code sees it.
pub fn inviter_device_message(inviter_tls_key: &[u8; 32], joiner_tls_key: &[u8; 32]) -> Vec<u8> {
    let mut message = INVITER_DEVICE_CONTEXT.to_vec();
    message.extend_from_slice(inviter_tls_key);
    message.extend_from_slice(joiner_tls_key);
    message
}

const INVITER_DEVICE_CONTEXT: &[u8] = b"hearth pair inviter device v1\0";

/// Whether `inviter` proved its device key on the connection `tls` (seen by the joiner).
fn inviter_key_bound(inviter: &InviterInfo, tls: &TlsBinding) -> bool {
    if inviter.device_key == tls.peer_tls_key {
        return true;
    }
    inviter.device_sig.as_ref().is_some_and(|sig| {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, inviter.device_key)
            .verify(
                &inviter_device_message(&tls.peer_tls_key, &tls.local_tls_key),
                sig,
            )
            .is_ok()
    })
}

impl fmt::Debug for InviterInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviterInfo")
            .field("role", &self.role)
            .field("roster_len", &self.roster.len())
            .finish_non_exhaustive()
    }
}

/// The result of a successful handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairOutcome {
    /// On the inviter: the joiner, verified; add it to the roster.
    Joiner(JoinerInfo),
    /// On the joiner: the inviter, verified, with the roster and household secret.
    Inviter(InviterInfo),
}

impl PairOutcome {
    /// The peer's device key, already checked to equal its TLS key or (an inviter's)
    /// proved by a signature over both TLS keys.
    pub fn peer_device_key(&self) -> &[u8; 32] {
        match self {
            Self::Joiner(info) => &info.device_key,
            Self::Inviter(info) => &info.device_key,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Inviter,
    Joiner,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Inviter => b"inviter",
            Self::Joiner => b"joiner",
        }
    }

    fn peer(self) -> Self {
        match self {
            Self::Inviter => Self::Joiner,
            Self::Joiner => Self::Inviter,
        }
    }
}

/// One message on the pairing stream.
#[derive(Clone, PartialEq, Eq)]
enum PairMessage {
    Spake { msg: Vec<u8> },
    Confirm { mac: [u8; 32] },
    Sealed { seq: u64, sealed: Vec<u8> },
}

impl PairMessage {
    fn to_frame(&self) -> Result<Vec<u8>, PairError> {
        let value = match self {
            Self::Spake { msg } => MapBuilder::new(SPAKE)
                .field("msg", Value::Bytes(msg.clone()))
                .build(),
            Self::Confirm { mac } => MapBuilder::new(CONFIRM)
                .field("mac", Value::Bytes(mac.to_vec()))
                .build(),
            Self::Sealed { seq, sealed } => MapBuilder::new(SEALED)
                .field("seq", Value::Integer((*seq).into()))
                .field("box", Value::Bytes(sealed.clone()))
                .build(),
        };
        Ok(frame_value(&value, PAIR_MAX_FRAME)?)
    }

    fn decode(payload: &[u8]) -> Result<Self, PairError> {
        let mut map = CborMap::decode(payload, &[SPAKE, CONFIRM, SEALED])?;
        Ok(match map.kind() {
            SPAKE => Self::Spake {
                msg: map.bytes("msg")?,
            },
            CONFIRM => Self::Confirm {
                mac: map.byte_array("mac")?,
            },
            _ => Self::Sealed {
                seq: map.u64("seq")?,
                sealed: map.bytes("box")?,
            },
        })
    }
}

/// The payload inside a sealed message.
enum Payload {
    Joiner(JoinerInfo),
    Inviter(InviterInfo),
    Done,
}

impl Payload {
    fn to_cbor(&self) -> Result<Zeroizing<Vec<u8>>, PairError> {
        let value = match self {
            Self::Joiner(info) => MapBuilder::new(JOINER)
                .field("deviceKey", Value::Bytes(info.device_key.to_vec()))
                .field("personId", Value::Bytes(info.person_id.as_bytes().to_vec()))
                .field("personName", text(&info.person_name))
                .field("deviceName", text(&info.device_name))
                .build(),
            Self::Inviter(info) => {
                let builder = MapBuilder::new(INVITER)
                    .field("role", text(info.role.as_str()))
                    .field("deviceKey", Value::Bytes(info.device_key.to_vec()))
                    .field("displayName", text(&info.display_name))
                    .field("personId", Value::Bytes(info.person_id.as_bytes().to_vec()))
                    .field("roster", Value::Bytes(info.roster.clone()))
                    .field(
                        "householdSecret",
                        Value::Bytes(info.household_secret.to_vec()),
                    )
                    .field(
                        "householdEpoch",
                        Value::Integer(info.household_epoch.into()),
                    );
                match &info.device_sig {
                    Some(sig) => builder.field("deviceSig", Value::Bytes(sig.to_vec())),
                    None => builder,
                }
                .build()
            }
            Self::Done => MapBuilder::new(DONE).build(),
        };
        let mut out = Zeroizing::new(Vec::new());
        ciborium::ser::into_writer(&value, &mut *out).map_err(|_| PairError::Malformed {
            detail: "payload could not be encoded",
        })?;
        wipe_value(value);
        Ok(out)
    }

    fn decode(plaintext: &[u8]) -> Result<Self, PairError> {
        let mut map = CborMap::decode(plaintext, &[JOINER, INVITER, DONE])?;
        Ok(match map.kind() {
            JOINER => Self::Joiner(JoinerInfo {
                device_key: map.byte_array("deviceKey")?,
                person_id: Uuid::from_bytes(map.byte_array("personId")?),
                person_name: name(&mut map, "personName")?,
                device_name: name(&mut map, "deviceName")?,
            }),
            INVITER => Self::Inviter(InviterInfo {
                role: InviteRole::parse(&map.text("role")?).ok_or(PairError::Malformed {
                    detail: "unknown role",
                })?,
                device_key: map.byte_array("deviceKey")?,
                display_name: name(&mut map, "displayName")?,
                person_id: Uuid::from_bytes(map.byte_array("personId")?),
                roster: map.bytes("roster")?,
                household_secret: Zeroizing::new(map.byte_array("householdSecret")?),
                household_epoch: map.opt_u64("householdEpoch")?.unwrap_or(0),
                device_sig: match map.byte_array("deviceSig") {
                    Ok(sig) => Some(sig),
                    Err(crate::sync::frame::FrameError::MissingField { .. }) => None,
                    Err(e) => return Err(e.into()),
                },
            }),
            _ => Self::Done,
        })
    }
}

fn name(map: &mut CborMap, field: &'static str) -> Result<String, PairError> {
    let name = map.text(field)?;
    if name.len() > MAX_NAME_LEN {
        return Err(PairError::Malformed {
            detail: "display name too long",
        });
    }
    Ok(name)
}

/// Overwrites the byte strings of a CBOR value before it is freed, so a copy of the
/// household secret does not linger in the heap.
fn wipe_value(value: Value) {
    if let Value::Map(entries) = value {
        for (_, mut v) in entries {
            if let Value::Bytes(bytes) = &mut v {
                bytes.zeroize();
            }
        }
    }
}

/// Keys derived after SPAKE2; `ring` keys are opaque and wiped by `ring` itself.
struct Keys {
    transcript: [u8; 32],
    confirm_mine: hmac::Key,
    confirm_theirs: hmac::Key,
    seal: aead::LessSafeKey,
    open: aead::LessSafeKey,
}

impl Keys {
    /// Derives every key from the SPAKE2 key and a transcript that binds the invite's
    /// role, both SPAKE2 messages and both TLS keys: two sides that disagree on any of
    /// them, the code included, end up with unrelated keys and fail confirmation.
    fn derive(
        side: Side,
        role: InviteRole,
        spake_key: &[u8],
        own_msg: &[u8],
        peer_msg: &[u8],
        tls: &TlsBinding,
    ) -> Result<Self, PairError> {
        let (inviter_msg, joiner_msg) = match side {
            Side::Inviter => (own_msg, peer_msg),
            Side::Joiner => (peer_msg, own_msg),
        };
        // Sorted, because each side calls its own key "local": sorting gives both the
        // same order without either needing to know which TLS side it is on.
        let (low, high) = if tls.local_tls_key <= tls.peer_tls_key {
            (tls.local_tls_key, tls.peer_tls_key)
        } else {
            (tls.peer_tls_key, tls.local_tls_key)
        };
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(LABEL);
        ctx.update(b" transcript");
        for part in [
            role.as_str().as_bytes(),
            inviter_msg,
            joiner_msg,
            &low,
            &high,
        ] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut transcript = [0u8; 32];
        transcript.copy_from_slice(ctx.finish().as_ref());

        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &transcript).extract(spake_key);
        let confirm = |who: Side| -> Result<hmac::Key, PairError> {
            let info = [LABEL, b" confirm ", who.label()];
            let okm = prk
                .expand(&info, hmac::HMAC_SHA256)
                .map_err(|_| KDF_FAILED)?;
            Ok(hmac::Key::from(okm))
        };
        let seal = |from: Side| -> Result<aead::LessSafeKey, PairError> {
            let info = [LABEL, b" seal from ", from.label()];
            let okm = prk
                .expand(&info, &aead::CHACHA20_POLY1305)
                .map_err(|_| KDF_FAILED)?;
            Ok(aead::LessSafeKey::new(aead::UnboundKey::from(okm)))
        };
        Ok(Self {
            transcript,
            confirm_mine: confirm(side)?,
            confirm_theirs: confirm(side.peer())?,
            seal: seal(side)?,
            open: seal(side.peer())?,
        })
    }

    fn confirm_input(&self, who: Side) -> Vec<u8> {
        [LABEL, b" confirm ", who.label(), &self.transcript].concat()
    }
}

/// HKDF only fails for outputs far longer than the 32 bytes asked for here.
const KDF_FAILED: PairError = PairError::Malformed {
    detail: "key derivation failed",
};

/// The sealed channel after key confirmation, with a counter per direction.
struct Channel {
    keys: Keys,
    side: Side,
    send_seq: u64,
    recv_seq: u64,
}

impl Channel {
    fn nonce_and_aad(from: Side, seq: u64) -> (aead::Nonce, Vec<u8>) {
        let mut nonce = [0u8; aead::NONCE_LEN];
        nonce[aead::NONCE_LEN - 8..].copy_from_slice(&seq.to_be_bytes());
        let aad = [LABEL, b" sealed ", from.label(), &seq.to_be_bytes()].concat();
        (aead::Nonce::assume_unique_for_key(nonce), aad)
    }

    fn seal(&mut self, payload: &Payload) -> Result<PairMessage, PairError> {
        let seq = self.send_seq;
        self.send_seq = seq.checked_add(1).ok_or(PairError::Replay)?;
        let plaintext = payload.to_cbor()?;
        let mut buf = plaintext.to_vec();
        let (nonce, aad) = Self::nonce_and_aad(self.side, seq);
        self.keys
            .seal
            .seal_in_place_append_tag(nonce, aead::Aad::from(aad), &mut buf)
            .map_err(|_| PairError::Malformed {
                detail: "sealing failed",
            })?;
        Ok(PairMessage::Sealed { seq, sealed: buf })
    }

    fn open(&mut self, seq: u64, mut sealed: Vec<u8>) -> Result<Payload, PairError> {
        // Only the very next counter is acceptable: an old one is a replay, a later one
        // means a message was dropped or reordered, which QUIC never does on its own.
        if seq != self.recv_seq {
            return Err(PairError::Replay);
        }
        let (nonce, aad) = Self::nonce_and_aad(self.side.peer(), seq);
        let plaintext = self
            .keys
            .open
            .open_in_place(nonce, aead::Aad::from(aad), &mut sealed)
            .map_err(|_| PairError::Malformed {
                detail: "authentication failed",
            })?;
        let payload = Payload::decode(plaintext);
        sealed.zeroize();
        self.recv_seq += 1;
        payload
    }
}

enum State {
    /// Waiting for the peer's SPAKE2 message.
    AwaitSpake(Spake2<Ed25519Group>),
    /// Waiting for the peer's key confirmation, with the keys of each role this side
    /// may be in: the inviter's own role, or the roles a joiner would take.
    AwaitConfirm(Vec<(InviteRole, Keys)>),
    /// Waiting for the peer's sealed payload.
    AwaitPayload(Channel),
    /// Inviter only: payload sent, waiting for the joiner's `done`.
    AwaitDone(Channel, JoinerInfo),
    /// Finished with an outcome.
    Finished,
    /// Failed; nothing more will happen.
    Failed,
}

/// What this side will send once the channel is up.
enum LocalInfo {
    Inviter(InviterInfo, Admission),
    Joiner(JoinerInfo, JoinerPolicy),
}

/// The pairing handshake for one side of one `hearth-pair/1` connection.
pub struct Handshake {
    side: Side,
    tls: TlsBinding,
    own_msg: Vec<u8>,
    local: LocalInfo,
    /// The invite's role once key confirmation proved it.
    role: Option<InviteRole>,
    state: State,
    decoder: FrameDecoder,
    transmit: VecDeque<Vec<u8>>,
    outcome: Option<PairOutcome>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::AwaitSpake(_) => "await-spake",
            State::AwaitConfirm(_) => "await-confirm",
            State::AwaitPayload(_) => "await-payload",
            State::AwaitDone(..) => "await-done",
            State::Finished => "finished",
            State::Failed => "failed",
        };
        f.debug_struct("Handshake")
            .field("side", &self.side)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts the inviting side, which will send `local` (roster and household secret
    /// included) only after verifying the joiner.
    /// The role of the invite (`local.role`) is bound into every key; the joiner is
    /// checked against `admission` before any of it goes out.
    pub fn new_inviter<R: RngCore + CryptoRng>(
        code: &PairingCode,
        local: InviterInfo,
        admission: Admission,
        tls: TlsBinding,
        rng: &mut R,
    ) -> Self {
        Self::start(
            Side::Inviter,
            code,
            LocalInfo::Inviter(local, admission),
            tls,
            rng,
        )
    }

    /// Starts the joining side. It learns the invite's role from the inviter's key
    /// confirmation and refuses, before saying anything about itself, a role `policy`
    /// does not accept.
    pub fn new_joiner<R: RngCore + CryptoRng>(
        code: &PairingCode,
        local: JoinerInfo,
        policy: JoinerPolicy,
        tls: TlsBinding,
        rng: &mut R,
    ) -> Self {
        Self::start(
            Side::Joiner,
            code,
            LocalInfo::Joiner(local, policy),
            tls,
            rng,
        )
    }

    /// The invite's role, once key confirmation has proved it.
    pub fn role(&self) -> Option<InviteRole> {
        self.role
    }

    fn start<R: RngCore + CryptoRng>(
        side: Side,
        code: &PairingCode,
        local: LocalInfo,
        tls: TlsBinding,
        rng: &mut R,
    ) -> Self {
        let password = Zeroizing::new(code.canonical());
        let (spake, own_msg) = Spake2::<Ed25519Group>::start_symmetric_with_rng(
            &Password::new(password.as_bytes()),
            &Identity::new(LABEL),
            &mut *rng,
        );
        let mut handshake = Self {
            side,
            tls,
            own_msg: own_msg.clone(),
            local,
            role: None,
            state: State::AwaitSpake(spake),
            decoder: FrameDecoder::with_max_frame(PAIR_MAX_FRAME),
            transmit: VecDeque::new(),
            outcome: None,
        };
        // A SPAKE2 message is 33 bytes, far below the frame cap, so this cannot fail;
        // if it somehow did, the peer would see silence and the invite would expire.
        let _ = handshake.send(&PairMessage::Spake { msg: own_msg });
        handshake
    }

    /// Feeds bytes read from the pairing stream, in any chunking.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), PairError> {
        if matches!(self.state, State::Failed) {
            return Err(PairError::Closed);
        }
        let result = self.process(bytes);
        if result.is_err() {
            // Frames already queued stay queued: each was queued only once its
            // preconditions held, and the peer needs our confirmation to learn that
            // the code was wrong on its side too.
            self.state = State::Failed;
        }
        result
    }

    /// The next frame to write to the stream.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The verified result, once the handshake has finished.
    pub fn outcome(&self) -> Option<&PairOutcome> {
        self.outcome.as_ref()
    }

    /// Takes the verified result out, once the handshake has finished.
    pub fn take_outcome(&mut self) -> Option<PairOutcome> {
        self.outcome.take()
    }

    /// Whether the handshake finished successfully (the last frames may still be
    /// waiting in [`Self::poll_transmit`]).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    fn send_confirm(&mut self, keys: &Keys) -> Result<(), PairError> {
        let tag = hmac::sign(&keys.confirm_mine, &keys.confirm_input(self.side));
        let mut mac = [0u8; 32];
        mac.copy_from_slice(tag.as_ref());
        self.send(&PairMessage::Confirm { mac })
    }

    fn send(&mut self, message: &PairMessage) -> Result<(), PairError> {
        // Only the inviter's payload can grow (the caller's roster); one over the
        // frame cap fails the handshake here instead of being cut off in flight.
        let frame = message.to_frame().map_err(|_| PairError::TooLarge)?;
        self.transmit.push_back(frame);
        Ok(())
    }

    fn process(&mut self, bytes: &[u8]) -> Result<(), PairError> {
        self.decoder.push(bytes)?;
        while let Some(payload) = self.decoder.next_frame()? {
            let message = PairMessage::decode(&payload)?;
            self.step(message)?;
        }
        Ok(())
    }

    fn step(&mut self, message: PairMessage) -> Result<(), PairError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        self.state = match (state, message) {
            (State::AwaitSpake(spake), PairMessage::Spake { msg }) => {
                // Our own message reflected back would let an attacker skip the guess.
                if msg == self.own_msg {
                    return Err(PairError::Malformed {
                        detail: "reflected SPAKE2 message",
                    });
                }
                let key = Zeroizing::new(spake.finish(&msg).map_err(|_| PairError::Malformed {
                    detail: "bad SPAKE2 message",
                })?);
                let roles: Vec<InviteRole> = match &self.local {
                    LocalInfo::Inviter(info, _) => vec![info.role],
                    LocalInfo::Joiner(_, policy) => match policy.claim {
                        Some(role) => vec![role],
                        None => InviteRole::ALL.to_vec(),
                    },
                };
                let mut candidates = Vec::with_capacity(roles.len());
                for role in roles {
                    let keys = Keys::derive(self.side, role, &key, &self.own_msg, &msg, &self.tls)?;
                    candidates.push((role, keys));
                }
                // The inviter confirms first: its confirmation is what tells an honest
                // joiner the role, and the joiner answers only under that role.
                if self.side == Side::Inviter {
                    self.send_confirm(&candidates[0].1)?;
                }
                State::AwaitConfirm(candidates)
            }
            (State::AwaitConfirm(candidates), PairMessage::Confirm { mac }) => {
                let peer = self.side.peer();
                let proved = candidates.iter().position(|(_, keys)| {
                    hmac::verify(&keys.confirm_theirs, &keys.confirm_input(peer), &mac).is_ok()
                });
                let Some(index) = proved else {
                    if self.side == Side::Joiner {
                        // Answer anyway, so the inviter learns the code was wrong on its
                        // side too (a MAC under our wrong keys tells it nothing else).
                        if let Some((_, keys)) = candidates.first() {
                            self.send_confirm(keys)?;
                        }
                    }
                    return Err(PairError::WrongCode);
                };
                let Some((role, keys)) = candidates.into_iter().nth(index) else {
                    return Err(PairError::WrongCode);
                };
                self.role = Some(role);
                let mut channel = Channel {
                    keys,
                    side: self.side,
                    send_seq: 0,
                    recv_seq: 0,
                };
                // The joiner speaks first, so the inviter's secrets only ever go to a
                // device it has checked. A role this device cannot take is refused
                // before it says anything about itself; its confirmation still goes,
                // so the inviter knows the code was right and the joiner chose to stop.
                if let LocalInfo::Joiner(info, policy) = &self.local {
                    let accepted = match role {
                        InviteRole::Partner => policy.accepts_partner,
                        InviteRole::OwnDevice => policy.accepts_own_device,
                    };
                    let info = info.clone();
                    self.send_confirm(&channel.keys)?;
                    if !accepted {
                        return Err(PairError::RoleNotAccepted { role });
                    }
                    let sealed = channel.seal(&Payload::Joiner(info))?;
                    self.send(&sealed)?;
                }
                State::AwaitPayload(channel)
            }
            (State::AwaitPayload(mut channel), PairMessage::Sealed { seq, sealed }) => {
                match (channel.open(seq, sealed)?, &self.local) {
                    (Payload::Joiner(joiner), LocalInfo::Inviter(info, admission)) => {
                        if joiner.device_key != self.tls.peer_tls_key {
                            return Err(PairError::KeyMismatch);
                        }
                        if admission.device_keys.contains(&joiner.device_key) {
                            return Err(PairError::AlreadyPaired);
                        }
                        if info.role == InviteRole::Partner
                            && admission.people.contains(&joiner.person_id)
                        {
                            return Err(PairError::PersonTaken);
                        }
                        let sealed = channel.seal(&Payload::Inviter(info.clone()))?;
                        self.send(&sealed)?;
                        State::AwaitDone(channel, joiner)
                    }
                    (Payload::Inviter(inviter), LocalInfo::Joiner(..)) => {
                        if !inviter_key_bound(&inviter, &self.tls) {
                            return Err(PairError::KeyMismatch);
                        }
                        if Some(inviter.role) != self.role {
                            return Err(PairError::Malformed {
                                detail: "role differs from the confirmed one",
                            });
                        }
                        let sealed = channel.seal(&Payload::Done)?;
                        self.send(&sealed)?;
                        self.outcome = Some(PairOutcome::Inviter(inviter));
                        State::Finished
                    }
                    _ => return Err(PairError::UnexpectedMessage),
                }
            }
            (State::AwaitDone(mut channel, joiner), PairMessage::Sealed { seq, sealed }) => {
                match channel.open(seq, sealed)? {
                    Payload::Done => {
                        self.outcome = Some(PairOutcome::Joiner(joiner));
                        State::Finished
                    }
                    _ => return Err(PairError::UnexpectedMessage),
                }
            }
            (State::Finished, _) => {
                self.state = State::Finished;
                return Err(PairError::UnexpectedMessage);
            }
            _ => return Err(PairError::UnexpectedMessage),
        };
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const INVITER_KEY: [u8; 32] = [0x11; 32];
    const JOINER_KEY: [u8; 32] = [0x22; 32];

    fn code() -> PairingCode {
        "4-amber-orbit-lantern".parse().unwrap()
    }

    fn inviter_info() -> InviterInfo {
        InviterInfo {
            role: InviteRole::Partner,
            device_key: INVITER_KEY,
            display_name: "Ana's laptop".to_owned(),
            person_id: Uuid::from_u128(1),
            roster: b"opaque roster".to_vec(),
            household_secret: Zeroizing::new([0x5e; 32]),
            household_epoch: 3,
            device_sig: None,
        }
    }

    fn joiner_info() -> JoinerInfo {
        JoinerInfo {
            device_key: JOINER_KEY,
            person_id: Uuid::from_u128(2),
            person_name: "Sam".to_owned(),
            device_name: "Sam's phone".to_owned(),
        }
    }

    fn tls(local: [u8; 32], peer: [u8; 32]) -> TlsBinding {
        TlsBinding {
            local_tls_key: local,
            peer_tls_key: peer,
        }
    }

    fn pair_with(
        inviter_code: &PairingCode,
        joiner_code: &PairingCode,
        seed: u64,
    ) -> (Handshake, Handshake) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let inviter = Handshake::new_inviter(
            inviter_code,
            inviter_info(),
            Admission::default(),
            tls(INVITER_KEY, JOINER_KEY),
            &mut rng,
        );
        let joiner = Handshake::new_joiner(
            joiner_code,
            joiner_info(),
            JoinerPolicy::default(),
            tls(JOINER_KEY, INVITER_KEY),
            &mut rng,
        );
        (inviter, joiner)
    }

    /// Runs both sides until quiet, delivering frames in `chunk`-byte pieces, and
    /// returns each side's first error. `joiner_log` records what the joiner sent.
    fn run(
        inviter: &mut Handshake,
        joiner: &mut Handshake,
        chunk: usize,
        joiner_log: &mut Vec<Vec<u8>>,
    ) -> (Option<PairError>, Option<PairError>) {
        let (mut inviter_err, mut joiner_err) = (None, None);
        for _ in 0..20 {
            let to_joiner: Vec<Vec<u8>> = std::iter::from_fn(|| inviter.poll_transmit()).collect();
            let to_inviter: Vec<Vec<u8>> = std::iter::from_fn(|| joiner.poll_transmit()).collect();
            if to_joiner.is_empty() && to_inviter.is_empty() {
                break;
            }
            joiner_log.extend(to_inviter.iter().cloned());
            for piece in to_inviter.concat().chunks(chunk) {
                if inviter_err.is_none() {
                    inviter_err = inviter.handle_bytes(piece).err();
                }
            }
            for piece in to_joiner.concat().chunks(chunk) {
                if joiner_err.is_none() {
                    joiner_err = joiner.handle_bytes(piece).err();
                }
            }
        }
        (inviter_err, joiner_err)
    }

    #[test]
    fn both_sides_learn_the_other() {
        for chunk in [1, 7, 4096] {
            let (mut inviter, mut joiner) = pair_with(&code(), &code(), 1);
            let (a, b) = run(&mut inviter, &mut joiner, chunk, &mut Vec::new());
            assert_eq!((a, b), (None, None));
            assert!(inviter.is_finished() && joiner.is_finished());
            assert_eq!(
                inviter.take_outcome(),
                Some(PairOutcome::Joiner(joiner_info()))
            );
            let outcome = joiner.take_outcome().unwrap();
            assert_eq!(outcome.peer_device_key(), &INVITER_KEY);
            assert_eq!(outcome, PairOutcome::Inviter(inviter_info()));
        }
    }

    #[test]
    fn wrong_code_fails_on_both_sides_and_says_the_invite_is_used_up() {
        let other: PairingCode = "4-amber-orbit-lava".parse().unwrap();
        let (mut inviter, mut joiner) = pair_with(&code(), &other, 2);
        let (a, b) = run(&mut inviter, &mut joiner, 4096, &mut Vec::new());
        assert_eq!(a, Some(PairError::WrongCode));
        assert_eq!(b, Some(PairError::WrongCode));
        let message = PairError::WrongCode.to_string();
        assert!(message.contains("used up") && message.contains("hearth pair invite"));
        assert_eq!(
            PairError::WrongCode.code(),
            crate::sync::ApplicationErrorCode::PairWrongCode
        );
        assert!(inviter.outcome().is_none() && joiner.outcome().is_none());
        assert_eq!(inviter.handle_bytes(&[]), Err(PairError::Closed));
    }

    #[test]
    fn wrong_code_reaches_both_sides_even_when_frames_arrive_together() {
        let other: PairingCode = "5-amber-orbit-lantern".parse().unwrap();
        let (mut inviter, mut joiner) = pair_with(&code(), &other, 16);
        // 1. The inviter reads the joiner's SPAKE2 message and confirms at once.
        let spake = joiner.poll_transmit().unwrap();
        inviter.handle_bytes(&spake).unwrap();
        // 2. The joiner reads the inviter's SPAKE2 message and confirmation in one go.
        let burst: Vec<u8> = std::iter::from_fn(|| inviter.poll_transmit())
            .flatten()
            .collect();
        assert_eq!(joiner.handle_bytes(&burst), Err(PairError::WrongCode));
        // 3. Its own confirmation is still flushed, so the inviter fails the same way.
        let rest: Vec<u8> = std::iter::from_fn(|| joiner.poll_transmit())
            .flatten()
            .collect();
        assert_eq!(inviter.handle_bytes(&rest), Err(PairError::WrongCode));
    }

    fn other_role(role: InviteRole) -> InviteRole {
        match role {
            InviteRole::Partner => InviteRole::OwnDevice,
            InviteRole::OwnDevice => InviteRole::Partner,
        }
    }

    /// Both sides of an invite for `role`, the inviter checking against `admission`.
    fn pair_roles(
        role: InviteRole,
        admission: Admission,
        policy: JoinerPolicy,
        seed: u64,
    ) -> (Handshake, Handshake) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let inviter = Handshake::new_inviter(
            &code(),
            InviterInfo {
                role,
                ..inviter_info()
            },
            admission,
            tls(INVITER_KEY, JOINER_KEY),
            &mut rng,
        );
        let joiner = Handshake::new_joiner(
            &code(),
            joiner_info(),
            policy,
            tls(JOINER_KEY, INVITER_KEY),
            &mut rng,
        );
        (inviter, joiner)
    }

    /// Runs both sides until quiet and returns each side's first error and the
    /// messages each side sent.
    #[allow(clippy::type_complexity)]
    fn run_both(
        inviter: &mut Handshake,
        joiner: &mut Handshake,
    ) -> (
        (Option<PairError>, Option<PairError>),
        Vec<PairMessage>,
        Vec<PairMessage>,
    ) {
        let (mut inviter_err, mut joiner_err) = (None, None);
        let (mut from_inviter, mut from_joiner) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            let to_joiner: Vec<Vec<u8>> = std::iter::from_fn(|| inviter.poll_transmit()).collect();
            let to_inviter: Vec<Vec<u8>> = std::iter::from_fn(|| joiner.poll_transmit()).collect();
            if to_joiner.is_empty() && to_inviter.is_empty() {
                break;
            }
            for frame in &to_inviter {
                from_joiner.push(PairMessage::decode(&frame[4..]).unwrap());
                if inviter_err.is_none() {
                    inviter_err = inviter.handle_bytes(frame).err();
                }
            }
            for frame in &to_joiner {
                from_inviter.push(PairMessage::decode(&frame[4..]).unwrap());
                if joiner_err.is_none() {
                    joiner_err = joiner.handle_bytes(frame).err();
                }
            }
        }
        ((inviter_err, joiner_err), from_inviter, from_joiner)
    }

    fn sealed_count(sent: &[PairMessage]) -> usize {
        sent.iter()
            .filter(|m| matches!(m, PairMessage::Sealed { .. }))
            .count()
    }

    #[test]
    fn the_joiner_learns_the_role_only_from_the_inviter() {
        for role in InviteRole::ALL {
            let (mut inviter, mut joiner) =
                pair_roles(role, Admission::default(), JoinerPolicy::default(), 20);
            let (errors, _, _) = run_both(&mut inviter, &mut joiner);
            assert_eq!(errors, (None, None));
            assert_eq!((inviter.role(), joiner.role()), (Some(role), Some(role)));
            let Some(PairOutcome::Inviter(info)) = joiner.take_outcome() else {
                panic!("no outcome")
            };
            assert_eq!(info.role, role);
            assert_eq!(
                inviter.take_outcome(),
                Some(PairOutcome::Joiner(joiner_info()))
            );
        }
    }

    #[test]
    fn a_joiner_that_binds_the_other_role_fails_exactly_like_a_wrong_code() {
        for role in InviteRole::ALL {
            // A modified client pretending to be the other role binds that role into
            // its keys; binding the inviter's own role is what an honest joiner does.
            let claiming = JoinerPolicy {
                claim: Some(other_role(role)),
                ..JoinerPolicy::default()
            };
            let (mut inviter, mut joiner) = pair_roles(role, Admission::default(), claiming, 21);
            let (errors, from_inviter, _) = run_both(&mut inviter, &mut joiner);
            assert_eq!(
                errors,
                (Some(PairError::WrongCode), Some(PairError::WrongCode))
            );
            assert_eq!(sealed_count(&from_inviter), 0, "nothing sealed went out");
            assert!(inviter.outcome().is_none() && joiner.outcome().is_none());
            assert_eq!(inviter.role(), None);

            let honest = JoinerPolicy {
                claim: Some(role),
                ..JoinerPolicy::default()
            };
            let (mut inviter, mut joiner) = pair_roles(role, Admission::default(), honest, 22);
            assert_eq!(run_both(&mut inviter, &mut joiner).0, (None, None));
        }
    }

    #[test]
    fn a_joiner_refuses_a_role_it_cannot_take_before_saying_anything_about_itself() {
        for role in InviteRole::ALL {
            let policy = JoinerPolicy {
                accepts_partner: role != InviteRole::Partner,
                accepts_own_device: role != InviteRole::OwnDevice,
                claim: None,
            };
            let (mut inviter, mut joiner) = pair_roles(role, Admission::default(), policy, 23);
            let (errors, from_inviter, from_joiner) = run_both(&mut inviter, &mut joiner);
            assert_eq!(errors.1, Some(PairError::RoleNotAccepted { role }));
            // Its SPAKE2 message and confirmation, and nothing about itself.
            assert!(matches!(
                from_joiner.as_slice(),
                [PairMessage::Spake { .. }, PairMessage::Confirm { .. }]
            ));
            assert_eq!(
                inviter.role(),
                Some(role),
                "the inviter knows the code was right"
            );
            assert_eq!(sealed_count(&from_inviter), 0);
            assert!(inviter.outcome().is_none() && joiner.outcome().is_none());
        }
        let message = PairError::RoleNotAccepted {
            role: InviteRole::OwnDevice,
        }
        .to_string();
        assert!(message.contains("fresh device") && message.contains("partner invite"));
    }

    #[test]
    fn a_partner_claiming_someone_already_in_the_household_gets_nothing() {
        let known = Admission {
            people: vec![joiner_info().person_id],
            device_keys: vec![[0x55; 32]],
        };
        let (mut inviter, mut joiner) = pair_roles(
            InviteRole::Partner,
            known.clone(),
            JoinerPolicy::default(),
            24,
        );
        let (errors, from_inviter, _) = run_both(&mut inviter, &mut joiner);
        assert_eq!(errors.0, Some(PairError::PersonTaken));
        assert_eq!(sealed_count(&from_inviter), 0, "no roster, no secret");
        assert!(joiner.outcome().is_none() && inviter.outcome().is_none());
        // Another device of the inviter's person brings a throwaway person of its own,
        // which the inviter ignores, so the same check does not apply.
        let (mut inviter, mut joiner) =
            pair_roles(InviteRole::OwnDevice, known, JoinerPolicy::default(), 25);
        assert_eq!(run_both(&mut inviter, &mut joiner).0, (None, None));
    }

    #[test]
    fn a_device_already_on_the_roster_cannot_join_again() {
        for role in InviteRole::ALL {
            let known = Admission {
                people: Vec::new(),
                device_keys: vec![JOINER_KEY],
            };
            let (mut inviter, mut joiner) = pair_roles(role, known, JoinerPolicy::default(), 26);
            let (errors, from_inviter, _) = run_both(&mut inviter, &mut joiner);
            assert_eq!(errors.0, Some(PairError::AlreadyPaired));
            assert_eq!(sealed_count(&from_inviter), 0);
            assert!(joiner.outcome().is_none());
        }
    }

    #[test]
    fn a_relay_between_two_tls_sessions_fails_key_confirmation() {
        // A relay terminates TLS with each side using its own key and forwards the
        // pairing bytes. Each side sees the relay's key instead of the other's.
        let relay_key = [0x99; 32];
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut inviter = Handshake::new_inviter(
            &code(),
            inviter_info(),
            Admission::default(),
            tls(INVITER_KEY, relay_key),
            &mut rng,
        );
        let mut joiner = Handshake::new_joiner(
            &code(),
            joiner_info(),
            JoinerPolicy::default(),
            tls(JOINER_KEY, relay_key),
            &mut rng,
        );
        let (a, b) = run(&mut inviter, &mut joiner, 4096, &mut Vec::new());
        assert_eq!(a, Some(PairError::WrongCode));
        assert_eq!(b, Some(PairError::WrongCode));
    }

    #[test]
    fn a_recorded_transcript_replayed_to_a_fresh_inviter_fails() {
        let (mut inviter, mut joiner) = pair_with(&code(), &code(), 4);
        let mut recorded = Vec::new();
        run(&mut inviter, &mut joiner, 4096, &mut recorded);
        assert!(inviter.is_finished());
        // A fresh inviter with the same code, on a new connection with new TLS keys,
        // and one on the same keys: neither accepts the replay.
        for peer_key in [[0x33; 32], JOINER_KEY] {
            let mut rng = ChaCha20Rng::seed_from_u64(5);
            let mut fresh = Handshake::new_inviter(
                &code(),
                inviter_info(),
                Admission::default(),
                tls([0x44; 32], peer_key),
                &mut rng,
            );
            let result = fresh.handle_bytes(&recorded.concat());
            assert_eq!(result, Err(PairError::WrongCode));
            assert!(fresh.outcome().is_none());
            // Nothing but the opening SPAKE2 message and confirmation goes out: no
            // secrets.
            let sent: Vec<PairMessage> = std::iter::from_fn(|| fresh.poll_transmit())
                .map(|frame| PairMessage::decode(&frame[4..]).unwrap())
                .collect();
            assert!(matches!(
                sent.as_slice(),
                [PairMessage::Spake { .. }, PairMessage::Confirm { .. }]
            ));
        }
    }

    /// Runs to the point where the joiner's sealed payload is in flight and returns
    /// the inviter and that frame.
    fn inviter_and_sealed_joiner_frame(seed: u64) -> (Handshake, Vec<u8>) {
        let (mut inviter, mut joiner) = pair_with(&code(), &code(), seed);
        for frame in std::iter::from_fn(|| joiner.poll_transmit()) {
            inviter.handle_bytes(&frame).unwrap();
        }
        for frame in std::iter::from_fn(|| inviter.poll_transmit()) {
            joiner.handle_bytes(&frame).unwrap();
        }
        let frames: Vec<Vec<u8>> = std::iter::from_fn(|| joiner.poll_transmit()).collect();
        let sealed = frames.last().unwrap().clone();
        for frame in &frames[..frames.len() - 1] {
            inviter.handle_bytes(frame).unwrap();
        }
        // Drop the inviter's queued confirmation: the test only watches what follows.
        while inviter.poll_transmit().is_some() {}
        (inviter, sealed)
    }

    fn mutate_sealed(frame: &[u8], f: impl FnOnce(&mut u64, &mut Vec<u8>)) -> Vec<u8> {
        let PairMessage::Sealed {
            mut seq,
            mut sealed,
        } = PairMessage::decode(&frame[4..]).unwrap()
        else {
            panic!("not sealed")
        };
        f(&mut seq, &mut sealed);
        PairMessage::Sealed { seq, sealed }.to_frame().unwrap()
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let (mut inviter, sealed) = inviter_and_sealed_joiner_frame(6);
        let tampered = mutate_sealed(&sealed, |_, bytes| bytes[3] ^= 1);
        assert_eq!(
            inviter.handle_bytes(&tampered),
            Err(PairError::Malformed {
                detail: "authentication failed"
            })
        );
        assert!(inviter.poll_transmit().is_none());
    }

    #[test]
    fn replayed_or_skipped_counters_fail() {
        let (mut inviter, sealed) = inviter_and_sealed_joiner_frame(7);
        let skipped = mutate_sealed(&sealed, |seq, _| *seq = 1);
        assert_eq!(inviter.handle_bytes(&skipped), Err(PairError::Replay));

        let (mut inviter, sealed) = inviter_and_sealed_joiner_frame(7);
        inviter.handle_bytes(&sealed).unwrap();
        assert_eq!(inviter.handle_bytes(&sealed), Err(PairError::Replay));
    }

    #[test]
    fn a_payload_key_that_differs_from_the_tls_key_is_rejected_before_secrets_go_out() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let mut inviter = Handshake::new_inviter(
            &code(),
            inviter_info(),
            Admission::default(),
            tls(INVITER_KEY, JOINER_KEY),
            &mut rng,
        );
        let lying = JoinerInfo {
            device_key: [0x77; 32],
            ..joiner_info()
        };
        let mut joiner = Handshake::new_joiner(
            &code(),
            lying,
            JoinerPolicy::default(),
            tls(JOINER_KEY, INVITER_KEY),
            &mut rng,
        );
        let (a, _) = run(&mut inviter, &mut joiner, 4096, &mut Vec::new());
        assert_eq!(a, Some(PairError::KeyMismatch));
        assert!(joiner.outcome().is_none());
        assert!(inviter.outcome().is_none());
    }

    #[test]
    fn an_inviter_with_a_one_time_tls_key_proves_its_device_key_by_signature() {
        let device = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[0x33; 32]).unwrap();
        let device_key: [u8; 32] = ring::signature::KeyPair::public_key(&device)
            .as_ref()
            .try_into()
            .unwrap();
        let one_time = [0x44; 32];
        let signed =
            |message: &[u8]| -> [u8; 64] { device.sign(message).as_ref().try_into().unwrap() };
        let good = signed(&inviter_device_message(&one_time, &JOINER_KEY));
        let for_another_joiner = signed(&inviter_device_message(&one_time, &[0x55; 32]));
        for (sig, pairs) in [
            (Some(good), true),
            (Some(for_another_joiner), false),
            (None, false),
            (Some([0u8; 64]), false),
        ] {
            let mut rng = ChaCha20Rng::seed_from_u64(21);
            let mut inviter = Handshake::new_inviter(
                &code(),
                InviterInfo {
                    device_key,
                    device_sig: sig,
                    ..inviter_info()
                },
                Admission::default(),
                tls(one_time, JOINER_KEY),
                &mut rng,
            );
            let mut joiner = Handshake::new_joiner(
                &code(),
                joiner_info(),
                JoinerPolicy::default(),
                tls(JOINER_KEY, one_time),
                &mut rng,
            );
            let (_, b) = run(&mut inviter, &mut joiner, 4096, &mut Vec::new());
            if pairs {
                assert_eq!(b, None);
                assert_eq!(joiner.outcome().unwrap().peer_device_key(), &device_key);
            } else {
                assert_eq!(b, Some(PairError::KeyMismatch), "{sig:?}");
                assert!(joiner.outcome().is_none());
            }
        }
    }

    #[test]
    fn a_roster_over_the_frame_cap_fails_cleanly() {
        let mut rng = ChaCha20Rng::seed_from_u64(17);
        let huge = InviterInfo {
            roster: vec![0; PAIR_MAX_FRAME],
            ..inviter_info()
        };
        let mut inviter = Handshake::new_inviter(
            &code(),
            huge,
            Admission::default(),
            tls(INVITER_KEY, JOINER_KEY),
            &mut rng,
        );
        let mut joiner = Handshake::new_joiner(
            &code(),
            joiner_info(),
            JoinerPolicy::default(),
            tls(JOINER_KEY, INVITER_KEY),
            &mut rng,
        );
        let (a, _) = run(&mut inviter, &mut joiner, 4096, &mut Vec::new());
        assert_eq!(a, Some(PairError::TooLarge));
        assert!(joiner.outcome().is_none());
    }

    #[test]
    fn out_of_turn_messages_are_unexpected() {
        let (mut inviter, _) = pair_with(&code(), &code(), 10);
        let confirm = PairMessage::Confirm { mac: [0; 32] }.to_frame().unwrap();
        assert_eq!(
            inviter.handle_bytes(&confirm),
            Err(PairError::UnexpectedMessage)
        );
        let (mut inviter, _) = pair_with(&code(), &code(), 10);
        let own = inviter.poll_transmit().unwrap();
        assert!(matches!(
            inviter.handle_bytes(&own),
            Err(PairError::Malformed { .. })
        ));
    }

    #[test]
    fn debug_output_holds_no_secrets_or_names() {
        let shown = format!("{:?} {:?}", inviter_info(), joiner_info());
        assert!(!shown.contains("Ana") && !shown.contains("Sam"));
        assert!(!shown.contains("94")); // 0x5e, the secret byte, in decimal
        let (inviter, _) = pair_with(&code(), &code(), 11);
        assert!(!format!("{inviter:?}").contains("lantern"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400),
                                       chunk in 1usize..50,
                                       after_spake in any::<bool>()) {
            let (mut inviter, mut joiner) = pair_with(&code(), &code(), 12);
            if after_spake {
                let spake = joiner.poll_transmit().unwrap();
                inviter.handle_bytes(&spake).unwrap();
            }
            for piece in bytes.chunks(chunk) {
                if inviter.handle_bytes(piece).is_err() {
                    break;
                }
            }
        }

        #[test]
        fn framed_garbage_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let (mut inviter, _) = pair_with(&code(), &code(), 13);
            let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(&payload);
            let _ = inviter.handle_bytes(&frame);
        }

        #[test]
        fn mutated_transcripts_never_panic_or_succeed(index in any::<usize>(), flip in 1u8..=255) {
            let (mut inviter, mut joiner) = pair_with(&code(), &code(), 14);
            let mut log = Vec::new();
            run(&mut inviter, &mut joiner, 4096, &mut log);
            let mut bytes = log.concat();
            let i = index % bytes.len();
            bytes[i] ^= flip;
            let mut rng = ChaCha20Rng::seed_from_u64(15);
            let mut fresh = Handshake::new_inviter(&code(), inviter_info(), Admission::default(), tls(INVITER_KEY, JOINER_KEY), &mut rng);
            let _ = fresh.handle_bytes(&bytes);
            prop_assert!(fresh.outcome().is_none());
        }
    }
}
