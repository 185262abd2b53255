//! Pairing: the sans-IO handshake spoken on ALPN `hearth-pair/1`.
//!
//! This module owns pairing codes ([`PairingCode`]) and the [`Handshake`] state
//! machine that turns a shared code into a verified exchange of device keys, person,
//! roster and household secret. It must not open sockets, read the clock or keep
//! invites: the daemon drives the bytes, enforces the 10-minute invite lifetime, and
//! burns the invite on any failure, including [`PairError::WrongCode`].
//!
//! # Protocol
//!
//! Both sides run symmetric SPAKE2 over Ed25519 with the canonical code as password,
//! so a passive or active attacker learns nothing it could test offline, and an active
//! one gets one guess per invite. The inviter decides the invite's [`InviteRole`]
//! (the partner, or another device of the inviter's person) and the role is bound into
//! every derived key, so the code admits that role and no other. Then, on one QUIC stream of length-prefixed CBOR
//! frames (the same framing as sync, with a 1 MiB cap):
//!
//! 1. Both send `spake` with their SPAKE2 message.
//! 2. Both derive keys with HKDF-SHA256: the salt is a hash of a transcript holding
//!    the invite's role, both SPAKE2 messages in side order and both TLS public keys
//!    in sorted order, so a relay that terminates TLS separately with each side ends
//!    up with keys that do not match. The inviter sends `confirm`: an HMAC over the
//!    transcript under a per-direction key and label.
//! 3. The joiner, which was not told the role, derives the keys of both roles and
//!    keeps the one the inviter's `confirm` verifies under; none is
//!    [`PairError::WrongCode`]. It answers with its own `confirm` under that role, and
//!    the inviter checks it under the role it chose: a joiner that binds the other role
//!    (a modified client pretending to be one of the inviter's own devices) fails here,
//!    exactly as a wrong code does.
//! 4. The rest is `sealed`: ChaCha20-Poly1305 under per-direction keys, with the
//!    message counter as nonce; a counter that is not exactly the next one is a
//!    [`PairError::Replay`]. The joiner stops right after its `confirm` if it cannot
//!    take the role ([`PairError::RoleNotAccepted`]); otherwise it sends its device
//!    key, person and names, never a role. The inviter checks that the key equals the
//!    joiner's TLS key, is not already on the roster, and, for a partner, that the
//!    person is new ([`Admission`]), and only then sends the role, its own key, name,
//!    person, the roster and the household secret; the joiner checks the inviter's key
//!    (equal to the inviter's TLS key, or, when the inviter showed a one-time TLS key,
//!    proved by its signature over both TLS keys) and role and answers `done`.
//!
//! # Driving a handshake
//!
//! After creating a handshake and after every [`Handshake::handle_bytes`], drain
//! [`Handshake::poll_transmit`] onto the stream, then check [`Handshake::outcome`].
//! An `Err` is final: drain [`Handshake::poll_transmit`] once more (so the peer gets
//! our key confirmation and can report the wrong code too), close the connection with
//! [`PairError::code`], and burn the invite.

mod code;
mod handshake;
mod words;

pub use code::{CodeError, PairingCode};
pub use handshake::{
    inviter_device_message, Admission, Handshake, InviteRole, InviterInfo, JoinerInfo,
    JoinerPolicy, PairOutcome, TlsBinding, PAIR_ALPN, PAIR_MAX_FRAME,
};

use crate::sync::{ApplicationErrorCode, FrameError};

/// Why a pairing handshake failed. Every failure ends the attempt and burns the invite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    /// Key confirmation failed: the two sides did not use the same code, or someone
    /// relayed the connection.
    #[error(
        "the pairing code did not match, so this invite is now used up; run `hearth pair \
         invite` again on the inviting device and type the new code carefully"
    )]
    WrongCode,
    /// A sealed message was replayed or arrived out of order.
    #[error(
        "a pairing message was replayed or reordered, which an honest device never does; \
         the invite is used up, so create a new one with `hearth pair invite`"
    )]
    Replay,
    /// A message was malformed or failed authentication.
    #[error(
        "a pairing message was malformed or tampered with; the invite is used up, so \
         create a new one with `hearth pair invite` (and update Hearth if this repeats)"
    )]
    Malformed {
        /// What was wrong, without any secret material.
        detail: &'static str,
    },
    /// The device key in the payload differs from the key on the TLS connection.
    #[error(
        "the other device's key does not match the key of the connection it used, so it \
         was not trusted; the invite is used up, so create a new one with `hearth pair \
         invite`"
    )]
    KeyMismatch,
    /// A well-formed message arrived at a point where the handshake does not allow it.
    #[error(
        "the other device sent a pairing message out of turn; it may run an incompatible \
         version of Hearth, so update both devices and create a new invite"
    )]
    UnexpectedMessage,
    /// This side's own payload does not fit in a pairing frame (the roster is too big).
    #[error(
        "the household roster is too large to send while pairing; this is a bug in Hearth, \
         please report it"
    )]
    TooLarge,
    /// The invite is for a role this joining device cannot take as it is.
    #[error("{}", role_not_accepted(*role))]
    RoleNotAccepted {
        /// The role the inviter chose.
        role: InviteRole,
    },
    /// The joining device's key is already on the roster.
    #[error(
        "the joining device is already on this household's roster, so it was not let in \
         again and nothing was sent to it; the invite is used up. To add a new device, run \
         `hearth pair invite --own-device` and join from that device"
    )]
    AlreadyPaired,
    /// A joining partner claimed a person who is already in the household.
    #[error(
        "the joining device claimed to be someone already in this household, which an \
         honest partner's device never does, so nothing was sent to it; the invite is used \
         up. To add another device of yours, run `hearth pair invite --own-device`; your \
         partner adds theirs from one of their own devices"
    )]
    PersonTaken,
    /// The handshake already ended, with an outcome or an error.
    #[error("this pairing attempt has already ended; start a new one with `hearth pair invite`")]
    Closed,
}

fn role_not_accepted(role: InviteRole) -> &'static str {
    match role {
        InviteRole::OwnDevice => {
            "this code adds another device of the person who invited, and only a fresh device \
             can join that way (this one already holds entries or has been paired), so it said \
             nothing about itself and the invite is used up. Join from a fresh device (`hearth \
             init` with a new --data-dir); if you are their partner, ask them for a partner \
             invite (`hearth pair invite`)"
        }
        InviteRole::Partner => {
            "this code invites a partner, and this device already holds entries of its own \
             that joining would mix into the shared household, so it said nothing about \
             itself and the invite is used up. Ask for a new invite, then join from a fresh \
             device or add --merge to bring these entries along"
        }
    }
}

impl PairError {
    /// The QUIC application error code to close the connection with.
    pub fn code(&self) -> ApplicationErrorCode {
        match self {
            Self::WrongCode => ApplicationErrorCode::PairWrongCode,
            Self::Replay => ApplicationErrorCode::PairReplay,
            Self::Malformed { .. } | Self::TooLarge => ApplicationErrorCode::PairMalformed,
            Self::KeyMismatch | Self::AlreadyPaired | Self::PersonTaken => {
                ApplicationErrorCode::PairKeyMismatch
            }
            Self::RoleNotAccepted { .. } => ApplicationErrorCode::PairUnexpectedMessage,
            Self::UnexpectedMessage | Self::Closed => ApplicationErrorCode::PairUnexpectedMessage,
        }
    }
}

impl From<FrameError> for PairError {
    fn from(err: FrameError) -> Self {
        let detail = match err {
            FrameError::TooLarge { .. } => "frame too large",
            FrameError::UnknownType { .. } => "unknown message type",
            FrameError::MissingField { .. } => "missing field",
            FrameError::InvalidField { .. } => "invalid field",
            _ => "malformed CBOR",
        };
        Self::Malformed { detail }
    }
}
