//! The sync wire protocol and the per-peer sync session, without any IO.
//!
//! This module owns what travels on a `hearth/1` QUIC stream and how one peer
//! connection reconciles Automerge documents. It must not open sockets, spawn tasks,
//! read the clock or touch the disk: the daemon's per-peer task moves bytes and timers
//! and hands documents in through [`DocAccess`].
//!
//! * [`frame`]: a 4-byte big-endian length, then one CBOR message, with a size cap.
//! * [`message`]: the vocabulary of automerge-repo's sync protocol (`join`, `peer`,
//!   `request`, `sync`, `doc-unavailable`, `error`), so a samod or automerge-repo peer
//!   could speak it over a QUIC stream.
//! * [`lean`]: the same vocabulary without device ids or key names, which two Hearth
//!   devices agree on by ALPN (`hearth/2`).
//! * [`session`]: [`Session`], one state machine per connected peer device.
//! * [`sim`]: a deterministic multi-peer network of sessions for tests.
//!
//! # Driving a session
//!
//! Time is a [`std::time::Duration`] since an arbitrary epoch that the driver picks
//! once (for example a `tokio::time::Instant` captured at start-up) and never moves
//! backwards. The contract, in the style of quinn-proto and str0m:
//!
//! 1. Feed one input: [`Session::handle_message`] for each decoded frame,
//!    [`Session::handle_local_change`] after each local commit, or
//!    [`Session::handle_timeout`] when the armed timer fires, or
//!    [`Session::handle_send_room`] when the driver's outbound queue to the peer fills
//!    up or drains (a full queue holds sync messages back and coalesces them).
//! 2. Drain [`Session::poll_transmit`] until `None`, writing each message with
//!    [`encode_frame`], then drain [`Session::poll_event`] until `None`.
//! 3. Arm a timer for [`Session::poll_timeout`] (replacing any earlier one).
//!
//! A session that ends reports it once, as [`SessionEvent::Failed`]: send what
//! `poll_transmit` still gives (its `error` message for the peer), then close the stream
//! with [`SessionError::code`]. Inputs after that are ignored.

pub mod dial;
pub mod frame;
pub mod hub;
pub mod lean;
pub mod message;
pub mod policy;
pub mod session;
pub mod sim;

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use frame::{encode_frame, encode_frame_as, FrameDecoder, FrameError, MAX_FRAME};
pub use hub::{Hub, HubConfig, HubOutput, Now};
pub use lean::{LinkEnds, WireForm};
pub use message::{Message, PeerId, PeerMetadata, PROTOCOL_VERSION};
pub use policy::Policy;
pub use session::{
    AbortReason, DocAccess, Role, Session, SessionConfig, SessionError, SessionEvent, SyncLimits,
};

/// Longest document or peer id accepted from the wire, in bytes; ours are far shorter,
/// and a cap keeps a hostile peer from making us store or echo megabytes of id.
pub const MAX_ID_LEN: usize = 256;

/// The name of one synced Automerge document, e.g. `household` or
/// `private-<person uuid>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocId(String);

impl DocId {
    /// The household document that every device on the roster shares.
    pub fn household() -> Self {
        Self("household".to_owned())
    }

    /// The private document of one person, synced only among that person's devices.
    pub fn private(person: &Uuid) -> Self {
        Self(format!("private-{}", person.hyphenated()))
    }

    /// Wraps an id read from the wire or from storage.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({:?})", self.0)
    }
}

/// The QUIC application error code used to close a stream or connection, one per kind
/// of failure, so the other side can tell a size violation from a wrong pairing code
/// without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum ApplicationErrorCode {
    /// Orderly close: nothing went wrong.
    NoError = 0,
    /// A frame's length prefix exceeded the cap.
    FrameTooLarge = 0x10,
    /// A frame did not hold a well-formed CBOR message.
    MalformedFrame = 0x11,
    /// A frame held a message type this side does not know.
    UnknownMessageType = 0x12,
    /// A well-formed message arrived at a point where the protocol does not allow it.
    ProtocolViolation = 0x20,
    /// The peer claimed to be a different device than the one on the TLS connection.
    PeerMismatch = 0x21,
    /// The peers share no protocol version.
    UnsupportedVersion = 0x22,
    /// The peer did not finish the `join`/`peer` exchange in time.
    HandshakeTimeout = 0x23,
    /// The peer reported an error and gave up.
    RemoteError = 0x24,
    /// The peer sent Automerge sync data this side could not decode or apply.
    BadSyncData = 0x25,
    /// The pairing code did not match (key confirmation failed).
    PairWrongCode = 0x40,
    /// A pairing message was replayed or arrived out of order.
    PairReplay = 0x41,
    /// A pairing message was malformed or failed authentication.
    PairMalformed = 0x42,
    /// The pairing payload's device key differs from the TLS key on the connection.
    PairKeyMismatch = 0x43,
    /// A pairing message arrived at a point where the handshake does not allow it.
    PairUnexpectedMessage = 0x44,
}

impl ApplicationErrorCode {
    /// The numeric code to pass to QUIC.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn doc_ids_have_the_documented_shape() {
        assert_eq!(DocId::household().as_str(), "household");
        let person = Uuid::from_u128(0x1234);
        assert_eq!(
            DocId::private(&person).as_str(),
            "private-00000000-0000-0000-0000-000000001234"
        );
        assert_eq!(
            serde_json::to_string(&DocId::household()).unwrap(),
            "\"household\""
        );
    }
}
