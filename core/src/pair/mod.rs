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
//! one gets one guess per invite. Then, on one QUIC stream of length-prefixed CBOR
//! frames (the same framing as sync, with a 1 MiB cap):
//!
//! 1. Both send `spake` with their SPAKE2 message.
//! 2. Both derive keys with HKDF-SHA256: the salt is a hash of a transcript holding
//!    both SPAKE2 messages in role order and both TLS public keys in sorted order, so a
//!    relay that terminates TLS separately with each side ends up with keys that do
//!    not match. Both send `confirm`: an HMAC over the transcript under a
//!    per-direction key and label.
//! 3. Each verifies the other's `confirm`. A mismatch is [`PairError::WrongCode`].
//! 4. The rest is `sealed`: ChaCha20-Poly1305 under per-direction keys, with the
//!    message counter as nonce; a counter that is not exactly the next one is a
//!    [`PairError::Replay`]. The joiner sends its device key, name and whether it is a
//!    new person; the inviter checks that the key equals the joiner's TLS key and only
//!    then sends its own key, name, person, the roster and the household secret; the
//!    joiner checks the inviter's key the same way and answers `done`.
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
    Handshake, InviterInfo, JoinerInfo, JoiningAs, PairOutcome, TlsBinding, PAIR_ALPN,
    PAIR_MAX_FRAME,
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
    /// The handshake already ended, with an outcome or an error.
    #[error("this pairing attempt has already ended; start a new one with `hearth pair invite`")]
    Closed,
}

impl PairError {
    /// The QUIC application error code to close the connection with.
    pub fn code(&self) -> ApplicationErrorCode {
        match self {
            Self::WrongCode => ApplicationErrorCode::PairWrongCode,
            Self::Replay => ApplicationErrorCode::PairReplay,
            Self::Malformed { .. } | Self::TooLarge => ApplicationErrorCode::PairMalformed,
            Self::KeyMismatch => ApplicationErrorCode::PairKeyMismatch,
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
