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
/// Both are Ed25519 device keys (the TLS certificates are made from them). They are
/// bound into key confirmation, and each payload's device key must equal the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsBinding {
    /// This device's TLS public key.
    pub local_tls_key: [u8; 32],
    /// The TLS public key the peer presented on this connection.
    pub peer_tls_key: [u8; 32],
}

/// Whether the joining device belongs to a new person or to the inviter's person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoiningAs {
    /// The partner, joining the household for the first time, with the person id the
    /// joining device made for itself.
    NewPartner {
        /// The new person's id.
        person_id: Uuid,
    },
    /// Another device of the person who owns the inviting device.
    SamePersonAsInviter,
}

/// What the joining device tells the inviter.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinerInfo {
    /// The joiner's Ed25519 device public key (checked against its TLS key).
    pub device_key: [u8; 32],
    /// A name for the device, e.g. "Sam's phone".
    pub display_name: String,
    /// Which person the device belongs to.
    pub joining_as: JoiningAs,
}

impl fmt::Debug for JoinerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinerInfo")
            .field("joining_as", &self.joining_as)
            .finish_non_exhaustive()
    }
}

/// What the inviting device tells the joiner.
#[derive(Clone, PartialEq, Eq)]
pub struct InviterInfo {
    /// The inviter's Ed25519 device public key (checked against its TLS key).
    pub device_key: [u8; 32],
    /// A name for the device.
    pub display_name: String,
    /// The person who owns the inviting device.
    pub person_id: Uuid,
    /// The household roster, serialized by the caller.
    pub roster: Vec<u8>,
    /// The 32-byte household secret.
    pub household_secret: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for InviterInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviterInfo")
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
    /// The peer's device key, already checked to equal its TLS key.
    pub fn peer_device_key(&self) -> &[u8; 32] {
        match self {
            Self::Joiner(info) => &info.device_key,
            Self::Inviter(info) => &info.device_key,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Inviter,
    Joiner,
}

impl Role {
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
            Self::Joiner(info) => {
                let map = MapBuilder::new(JOINER)
                    .field("deviceKey", Value::Bytes(info.device_key.to_vec()))
                    .field("displayName", text(&info.display_name));
                match info.joining_as {
                    JoiningAs::NewPartner { person_id } => map
                        .field("joiningAs", text("new-partner"))
                        .field("personId", Value::Bytes(person_id.as_bytes().to_vec())),
                    JoiningAs::SamePersonAsInviter => map.field("joiningAs", text("same-person")),
                }
                .build()
            }
            Self::Inviter(info) => MapBuilder::new(INVITER)
                .field("deviceKey", Value::Bytes(info.device_key.to_vec()))
                .field("displayName", text(&info.display_name))
                .field("personId", Value::Bytes(info.person_id.as_bytes().to_vec()))
                .field("roster", Value::Bytes(info.roster.clone()))
                .field(
                    "householdSecret",
                    Value::Bytes(info.household_secret.to_vec()),
                )
                .build(),
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
            JOINER => {
                let device_key = map.byte_array("deviceKey")?;
                let display_name = name(&mut map)?;
                let joining_as = match map.text("joiningAs")?.as_str() {
                    "new-partner" => JoiningAs::NewPartner {
                        person_id: Uuid::from_bytes(map.byte_array("personId")?),
                    },
                    "same-person" => JoiningAs::SamePersonAsInviter,
                    _ => {
                        return Err(PairError::Malformed {
                            detail: "unknown joiningAs",
                        })
                    }
                };
                Self::Joiner(JoinerInfo {
                    device_key,
                    display_name,
                    joining_as,
                })
            }
            INVITER => Self::Inviter(InviterInfo {
                device_key: map.byte_array("deviceKey")?,
                display_name: name(&mut map)?,
                person_id: Uuid::from_bytes(map.byte_array("personId")?),
                roster: map.bytes("roster")?,
                household_secret: Zeroizing::new(map.byte_array("householdSecret")?),
            }),
            _ => Self::Done,
        })
    }
}

fn name(map: &mut CborMap) -> Result<String, PairError> {
    let name = map.text("displayName")?;
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
    fn derive(
        role: Role,
        spake_key: &[u8],
        own_msg: &[u8],
        peer_msg: &[u8],
        tls: &TlsBinding,
    ) -> Result<Self, PairError> {
        let (inviter_msg, joiner_msg) = match role {
            Role::Inviter => (own_msg, peer_msg),
            Role::Joiner => (peer_msg, own_msg),
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
        for part in [inviter_msg, joiner_msg, &low, &high] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut transcript = [0u8; 32];
        transcript.copy_from_slice(ctx.finish().as_ref());

        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &transcript).extract(spake_key);
        let confirm = |who: Role| -> Result<hmac::Key, PairError> {
            let info = [LABEL, b" confirm ", who.label()];
            let okm = prk
                .expand(&info, hmac::HMAC_SHA256)
                .map_err(|_| KDF_FAILED)?;
            Ok(hmac::Key::from(okm))
        };
        let seal = |from: Role| -> Result<aead::LessSafeKey, PairError> {
            let info = [LABEL, b" seal from ", from.label()];
            let okm = prk
                .expand(&info, &aead::CHACHA20_POLY1305)
                .map_err(|_| KDF_FAILED)?;
            Ok(aead::LessSafeKey::new(aead::UnboundKey::from(okm)))
        };
        Ok(Self {
            transcript,
            confirm_mine: confirm(role)?,
            confirm_theirs: confirm(role.peer())?,
            seal: seal(role)?,
            open: seal(role.peer())?,
        })
    }

    fn confirm_input(&self, who: Role) -> Vec<u8> {
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
    role: Role,
    send_seq: u64,
    recv_seq: u64,
}

impl Channel {
    fn nonce_and_aad(from: Role, seq: u64) -> (aead::Nonce, Vec<u8>) {
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
        let (nonce, aad) = Self::nonce_and_aad(self.role, seq);
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
        let (nonce, aad) = Self::nonce_and_aad(self.role.peer(), seq);
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
    /// Waiting for the peer's key confirmation.
    AwaitConfirm(Keys),
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
    Inviter(InviterInfo),
    Joiner(JoinerInfo),
}

/// The pairing handshake for one side of one `hearth-pair/1` connection.
pub struct Handshake {
    role: Role,
    tls: TlsBinding,
    own_msg: Vec<u8>,
    local: LocalInfo,
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
            .field("role", &self.role)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts the inviting side, which will send `local` (roster and household secret
    /// included) only after verifying the joiner.
    pub fn new_inviter<R: RngCore + CryptoRng>(
        code: &PairingCode,
        local: InviterInfo,
        tls: TlsBinding,
        rng: &mut R,
    ) -> Self {
        Self::start(Role::Inviter, code, LocalInfo::Inviter(local), tls, rng)
    }

    /// Starts the joining side.
    pub fn new_joiner<R: RngCore + CryptoRng>(
        code: &PairingCode,
        local: JoinerInfo,
        tls: TlsBinding,
        rng: &mut R,
    ) -> Self {
        Self::start(Role::Joiner, code, LocalInfo::Joiner(local), tls, rng)
    }

    fn start<R: RngCore + CryptoRng>(
        role: Role,
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
            role,
            tls,
            own_msg: own_msg.clone(),
            local,
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
                let keys = Keys::derive(self.role, &key, &self.own_msg, &msg, &self.tls)?;
                let tag = hmac::sign(&keys.confirm_mine, &keys.confirm_input(self.role));
                let mut mac = [0u8; 32];
                mac.copy_from_slice(tag.as_ref());
                self.send(&PairMessage::Confirm { mac })?;
                State::AwaitConfirm(keys)
            }
            (State::AwaitConfirm(keys), PairMessage::Confirm { mac }) => {
                hmac::verify(
                    &keys.confirm_theirs,
                    &keys.confirm_input(self.role.peer()),
                    &mac,
                )
                .map_err(|_| PairError::WrongCode)?;
                let mut channel = Channel {
                    keys,
                    role: self.role,
                    send_seq: 0,
                    recv_seq: 0,
                };
                // The joiner speaks first, so the inviter's secrets only ever go to a
                // device whose key it has checked.
                if let LocalInfo::Joiner(info) = &self.local {
                    let sealed = channel.seal(&Payload::Joiner(info.clone()))?;
                    self.send(&sealed)?;
                }
                State::AwaitPayload(channel)
            }
            (State::AwaitPayload(mut channel), PairMessage::Sealed { seq, sealed }) => {
                match (channel.open(seq, sealed)?, &self.local) {
                    (Payload::Joiner(joiner), LocalInfo::Inviter(info)) => {
                        if joiner.device_key != self.tls.peer_tls_key {
                            return Err(PairError::KeyMismatch);
                        }
                        let sealed = channel.seal(&Payload::Inviter(info.clone()))?;
                        self.send(&sealed)?;
                        State::AwaitDone(channel, joiner)
                    }
                    (Payload::Inviter(inviter), LocalInfo::Joiner(_)) => {
                        if inviter.device_key != self.tls.peer_tls_key {
                            return Err(PairError::KeyMismatch);
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
            device_key: INVITER_KEY,
            display_name: "Ana's laptop".to_owned(),
            person_id: Uuid::from_u128(1),
            roster: b"opaque roster".to_vec(),
            household_secret: Zeroizing::new([0x5e; 32]),
        }
    }

    fn joiner_info() -> JoinerInfo {
        JoinerInfo {
            device_key: JOINER_KEY,
            display_name: "Sam's phone".to_owned(),
            joining_as: JoiningAs::NewPartner {
                person_id: Uuid::from_u128(2),
            },
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
            tls(INVITER_KEY, JOINER_KEY),
            &mut rng,
        );
        let joiner = Handshake::new_joiner(
            joiner_code,
            joiner_info(),
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
    fn same_person_joiner_round_trips() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let info = JoinerInfo {
            joining_as: JoiningAs::SamePersonAsInviter,
            ..joiner_info()
        };
        let mut inviter = Handshake::new_inviter(
            &code(),
            inviter_info(),
            tls(INVITER_KEY, JOINER_KEY),
            &mut rng,
        );
        let mut joiner = Handshake::new_joiner(
            &code(),
            info.clone(),
            tls(JOINER_KEY, INVITER_KEY),
            &mut rng,
        );
        run(&mut inviter, &mut joiner, 64, &mut Vec::new());
        assert_eq!(inviter.take_outcome(), Some(PairOutcome::Joiner(info)));
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
        // 1. The joiner gets the inviter's SPAKE2 message and answers.
        let spake = inviter.poll_transmit().unwrap();
        joiner.handle_bytes(&spake).unwrap();
        // 2. The inviter reads the joiner's SPAKE2 message and confirmation in one go.
        let burst: Vec<u8> = std::iter::from_fn(|| joiner.poll_transmit())
            .flatten()
            .collect();
        assert_eq!(inviter.handle_bytes(&burst), Err(PairError::WrongCode));
        // 3. Its own confirmation is still flushed, so the joiner fails the same way.
        let rest: Vec<u8> = std::iter::from_fn(|| inviter.poll_transmit())
            .flatten()
            .collect();
        assert_eq!(joiner.handle_bytes(&rest), Err(PairError::WrongCode));
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
            tls(INVITER_KEY, relay_key),
            &mut rng,
        );
        let mut joiner =
            Handshake::new_joiner(&code(), joiner_info(), tls(JOINER_KEY, relay_key), &mut rng);
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
            tls(INVITER_KEY, JOINER_KEY),
            &mut rng,
        );
        let lying = JoinerInfo {
            device_key: [0x77; 32],
            ..joiner_info()
        };
        let mut joiner =
            Handshake::new_joiner(&code(), lying, tls(JOINER_KEY, INVITER_KEY), &mut rng);
        let (a, _) = run(&mut inviter, &mut joiner, 4096, &mut Vec::new());
        assert_eq!(a, Some(PairError::KeyMismatch));
        assert!(joiner.outcome().is_none());
        assert!(inviter.outcome().is_none());
    }

    #[test]
    fn a_roster_over_the_frame_cap_fails_cleanly() {
        let mut rng = ChaCha20Rng::seed_from_u64(17);
        let huge = InviterInfo {
            roster: vec![0; PAIR_MAX_FRAME],
            ..inviter_info()
        };
        let mut inviter =
            Handshake::new_inviter(&code(), huge, tls(INVITER_KEY, JOINER_KEY), &mut rng);
        let mut joiner = Handshake::new_joiner(
            &code(),
            joiner_info(),
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
            let mut fresh = Handshake::new_inviter(&code(), inviter_info(), tls(INVITER_KEY, JOINER_KEY), &mut rng);
            let _ = fresh.handle_bytes(&bytes);
            prop_assert!(fresh.outcome().is_none());
        }
    }
}
