//! [`Session`]: the sync state machine for one connected peer device.
//!
//! This module owns the `join`/`peer` exchange, one `automerge::sync::State` per
//! document for this peer, access control over which documents the peer may see,
//! pushing local commits, and the bounds that keep a reconciliation from looping. It
//! does no IO and reads no clock; see the [module docs](super) for how to drive it.
//!
//! **Access control.** A session is built with the set of documents its peer may see.
//! A `request` or `sync` for anything else is answered with `doc-unavailable`, exactly
//! as for a document that does not exist, and [`DocAccess`] is never asked about it:
//! a peer can neither read, write nor learn of the existence of a document outside its
//! set.
//!
//! **Bounds.** A reconciliation is the exchange that brings one document into sync
//! with the peer. It is aborted with [`SessionEvent::ReconciliationAborted`] if it runs
//! more than [`SyncLimits::max_rounds`] incoming messages, or lasts longer than
//! [`SyncLimits::max_duration`], without our copy of the document changing. An honest
//! exchange changes our heads or finishes within a few rounds, so only a stuck or
//! hostile peer reaches the limits. An aborted document is parked: messages for it
//! are ignored until the next local change to it, or until a new connection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use automerge::sync::{self as am_sync, SyncDoc};
use automerge::{Automerge, ChangeHash};

use super::message::{Message, PeerId, PeerMetadata, PROTOCOL_VERSION};
use super::{ApplicationErrorCode, DocId};
use crate::identity::DeviceId;
use crate::provenance::{Admission, ProofError};

/// Gives a session access to the documents it syncs.
///
/// The daemon implements this over its open documents. The session only ever asks for
/// documents in the peer's allowed set.
pub trait DocAccess {
    /// The document named `id`, if this device has it.
    fn doc_mut(&mut self, id: &DocId) -> Option<&mut Automerge>;

    /// Creates an empty document named `id` because the peer is sending it and this
    /// device does not have it yet (for example the household document on a freshly
    /// paired device). Return `None` to decline; the peer is then told the document
    /// is unavailable.
    fn create_doc(&mut self, id: &DocId) -> Option<&mut Automerge> {
        let _ = id;
        None
    }

    /// Checks the changes a peer sent for `id` and applies those whose author is proven
    /// and allowed (see [`crate::provenance`]). `None` leaves applying them to
    /// Automerge's sync unchecked, which only tests and the simulator do.
    fn admit(
        &mut self,
        id: &DocId,
        changes: &am_sync::ChunkList,
    ) -> Option<Result<Admission, crate::doc::DocError>> {
        let _ = (id, changes);
        None
    }

    /// Whether this device already has, holds or refused the change `hash` of `id`:
    /// a peer that announces only such heads brings nothing new.
    fn has_seen(&mut self, id: &DocId, hash: &ChangeHash) -> bool {
        self.doc_mut(id)
            .is_some_and(|am| am.get_change_meta_by_hash(hash).is_some())
    }

    /// Signed heads a peer needs to accept this document's changes from us.
    fn proofs(&mut self, id: &DocId) -> Vec<Vec<u8>> {
        let _ = id;
        Vec::new()
    }

    /// Signed heads the peer sent for `id`. Changes they let through now are applied
    /// and reported; an error means a signature does not hold.
    fn offer_proofs(&mut self, id: &DocId, proofs: &[Vec<u8>]) -> Result<Admission, ProofError> {
        let _ = (id, proofs);
        Ok(Admission::default())
    }
}

/// Which side of the connection this session is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that opened the connection; it sends `join`.
    Initiator,
    /// The side that accepted the connection; it answers with `peer`.
    Responder,
}

/// Timing and size bounds for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncLimits {
    /// How long the `join`/`peer` exchange may take.
    pub handshake_timeout: Duration,
    /// Incoming messages per reconciliation without our document changing.
    pub max_rounds: u32,
    /// Time per reconciliation without our document changing.
    pub max_duration: Duration,
    /// Local commits closer together than this are pushed as one message; the first
    /// commit after a quiet spell is pushed at once.
    pub push_debounce: Duration,
}

impl Default for SyncLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_rounds: 32,
            max_duration: Duration::from_secs(60),
            push_debounce: Duration::from_millis(5),
        }
    }
}

/// Everything a session needs to start.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// This device.
    pub local: DeviceId,
    /// The peer device, as authenticated by mutual TLS on this connection.
    pub remote: DeviceId,
    /// Which side opened the connection.
    pub role: Role,
    /// The documents this peer may see: the household document for every roster
    /// device, and a person's private document only for that person's devices.
    pub allowed_docs: BTreeSet<DocId>,
    /// Sync states saved by [`Session::persisted_states`] at the end of an earlier
    /// session with the same peer, so that this one exchanges heads, not history.
    /// States that do not decode, or that name documents outside `allowed_docs`, are
    /// dropped.
    pub persisted: Vec<(DocId, Vec<u8>)>,
    /// Timing and size bounds.
    pub limits: SyncLimits,
    /// The household secret epoch this device is on, for a peer the driver trusts with
    /// it. Its tag goes in the handshake; the epoch itself goes right after, only if the
    /// peer's tag says it is on another one.
    pub epoch: Option<crate::epochs::Epoch>,
}

/// Why a reconciliation was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// More than [`SyncLimits::max_rounds`] messages without progress.
    TooManyRounds,
    /// More than [`SyncLimits::max_duration`] without progress.
    TimedOut,
    /// The peer sent changes that were refused; it would only offer them again.
    Refused,
}

/// Something the driver may want to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The `join`/`peer` exchange finished; documents are syncing.
    PeerReady,
    /// A change from the peer was applied to this document. Pass it on as
    /// [`Session::handle_local_change`] to the sessions with every other peer, so that
    /// changes travel along chains of devices that are not all connected.
    DocChanged {
        /// The document.
        doc: DocId,
    },
    /// This document is in sync with the peer: both have the same heads.
    SyncCompleted {
        /// The document.
        doc: DocId,
    },
    /// The peer does not have this document or will not share it.
    DocUnavailable {
        /// The document.
        doc: DocId,
    },
    /// A reconciliation hit a bound and was abandoned; the document is parked until the
    /// next local change or the next connection.
    ReconciliationAborted {
        /// The document.
        doc: DocId,
        /// Which bound was hit.
        reason: AbortReason,
    },
    /// Some changes the peer sent were not applied: held until their author is proven,
    /// or refused for touching what is not their author's.
    ChangesNotApplied {
        /// The document.
        doc: DocId,
        /// What was held and refused, without content.
        admission: Admission,
    },
    /// The session ended with this error: close the connection with
    /// [`SessionError::code`] once the last messages (its `error` to the peer) are out.
    /// Inputs after it are ignored.
    Failed {
        /// What went wrong.
        error: SessionError,
    },
    /// The peer sent its current household secret epoch. The driver decides whether to
    /// adopt it (only from a device it trusts; see [`crate::epochs`]).
    Epoch {
        /// The epoch, whose `Debug` output never shows the secret.
        epoch: crate::epochs::Epoch,
    },
}

/// A fatal session error: close the stream with [`SessionError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The peer sent a message the protocol does not allow at this point.
    #[error(
        "the peer sent `{got}` where the sync protocol does not allow it; it may run an \
         incompatible version of Hearth, so update both devices"
    )]
    UnexpectedMessage {
        /// The message type received.
        got: &'static str,
    },
    /// `senderId` or `targetId` does not match the devices on this TLS connection.
    #[error(
        "the peer's messages name a different device than the one on this connection; \
         the connection was closed (check `hearth devices` for a stale or cloned device)"
    )]
    PeerMismatch,
    /// The peer speaks no protocol version we speak.
    #[error("the peer speaks a different sync protocol version; update Hearth on both devices")]
    UnsupportedVersion,
    /// The `join`/`peer` exchange did not finish in time.
    #[error("the peer did not finish the sync handshake in time; it will be retried")]
    HandshakeTimeout,
    /// The peer sent an `error` message and gave up.
    #[error("the peer closed the sync session with an error: {message}")]
    Remote {
        /// The peer's explanation, cut to a bounded length.
        message: String,
    },
    /// The peer's Automerge sync data could not be decoded or applied.
    #[error(
        "the peer sent sync data for `{doc}` that could not be applied; the connection was \
         closed and will be retried (if this repeats, update Hearth on both devices)"
    )]
    BadSyncData {
        /// The document.
        doc: DocId,
    },
    /// A signed head the peer sent does not verify: a relay can pass on another
    /// device's signature but never make one.
    #[error(
        "the peer sent a signature for `{doc}` that does not hold; the connection was \
         closed (the peer may run a modified or incompatible version of Hearth)"
    )]
    BadProof {
        /// The document.
        doc: DocId,
    },
    /// The session already failed; a new connection is needed.
    #[error("this sync session already ended with an error; reconnect to sync again")]
    Closed,
}

impl SessionError {
    /// The QUIC application error code to close the stream with.
    pub fn code(&self) -> ApplicationErrorCode {
        match self {
            Self::UnexpectedMessage { .. } | Self::Closed => {
                ApplicationErrorCode::ProtocolViolation
            }
            Self::PeerMismatch => ApplicationErrorCode::PeerMismatch,
            Self::UnsupportedVersion => ApplicationErrorCode::UnsupportedVersion,
            Self::HandshakeTimeout => ApplicationErrorCode::HandshakeTimeout,
            Self::Remote { .. } => ApplicationErrorCode::RemoteError,
            Self::BadSyncData { .. } | Self::BadProof { .. } => ApplicationErrorCode::BadSyncData,
        }
    }
}

/// Where the `join`/`peer` exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the peer's `join` or `peer`, until the deadline.
    Handshake { deadline: Duration },
    /// Documents are syncing.
    Ready,
    /// A fatal error happened.
    Closed,
}

/// Where one document's reconciliation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reconcile {
    /// In sync as far as we know, or never started.
    Idle,
    /// Messages are flowing; `since` and `rounds` count from the last progress.
    Active { since: Duration, rounds: u32 },
    /// Aborted by a bound; incoming messages are ignored until a local change.
    Parked,
}

/// Per-document sync bookkeeping for this peer.
#[derive(Debug)]
struct DocSync {
    state: am_sync::State,
    reconcile: Reconcile,
    last_push: Option<Duration>,
    flush_at: Option<Duration>,
    /// A message for this document was due while the driver had no room to send; it
    /// is generated, with everything new since, once room comes back.
    waits_for_room: bool,
    /// Signed heads already sent on this connection, so each goes once.
    sent_proofs: BTreeSet<Vec<u8>>,
}

impl DocSync {
    fn new(state: am_sync::State) -> Self {
        Self {
            state,
            reconcile: Reconcile::Idle,
            last_push: None,
            flush_at: None,
            waits_for_room: false,
            sent_proofs: BTreeSet::new(),
        }
    }

    /// Records that our copy of the document moved, which restarts the bounds.
    fn progress(&mut self, now: Duration) {
        if let Reconcile::Active { .. } = self.reconcile {
            self.reconcile = Reconcile::Active {
                since: now,
                rounds: 0,
            };
        }
    }

    fn activate(&mut self, now: Duration) {
        if self.reconcile == Reconcile::Idle {
            self.reconcile = Reconcile::Active {
                since: now,
                rounds: 0,
            };
        }
    }

    /// Keeps only what survives a reconnect, so an abandoned exchange leaves no
    /// half-finished in-flight bookkeeping behind.
    fn reset_state(&mut self) {
        self.state = am_sync::State::decode(&self.state.encode()).unwrap_or_default();
    }
}

/// The sync state machine for one connected peer device.
#[derive(Debug)]
pub struct Session {
    local: PeerId,
    remote: PeerId,
    role: Role,
    allowed: BTreeSet<DocId>,
    limits: SyncLimits,
    phase: Phase,
    docs: BTreeMap<DocId, DocSync>,
    transmit: VecDeque<Message>,
    events: VecDeque<SessionEvent>,
    /// The driver's outbound queue to this peer is full (see
    /// [`Session::handle_send_room`]): no sync message is generated until it drains.
    send_blocked: bool,
    /// An epoch to send once the handshake finishes.
    pending_epoch: Option<crate::epochs::Epoch>,
    /// The tag of the epoch the peer said it is on, in its `join` or `peer`.
    remote_epoch: Option<String>,
}

impl Session {
    /// Starts a session. An initiator queues its `join` at once.
    pub fn new(config: SessionConfig, now: Duration) -> Self {
        let SessionConfig {
            local,
            remote,
            role,
            allowed_docs,
            persisted,
            limits,
            epoch,
        } = config;
        let docs = persisted
            .into_iter()
            .filter(|(doc, _)| allowed_docs.contains(doc))
            .filter_map(|(doc, bytes)| {
                let state = am_sync::State::decode(&bytes).ok()?;
                Some((doc, DocSync::new(state)))
            })
            .collect();
        let mut session = Self {
            local: PeerId::from(&local),
            remote: PeerId::from(&remote),
            role,
            allowed: allowed_docs,
            limits,
            phase: Phase::Handshake {
                deadline: now.saturating_add(limits.handshake_timeout),
            },
            docs,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            send_blocked: false,
            pending_epoch: epoch,
            remote_epoch: None,
        };
        if role == Role::Initiator {
            session.transmit.push_back(Message::Join {
                sender_id: session.local.clone(),
                peer_metadata: session.local_metadata(),
                supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
            });
        }
        session
    }

    /// Sends an initiator's first sync message for each allowed document right behind
    /// its `join`, so that a reconnect with nothing new costs one round trip: the
    /// responder is ready once it has read `join`, answers `peer` with its own sync
    /// messages, and both sides agree on that one exchange. These first messages carry
    /// heads and a bloom filter only (no changes before the peer's `have` is known), for
    /// the same documents as after the handshake. Automerge marks them in flight, so the
    /// handshake's end sends nothing twice. A responder does nothing here.
    pub fn handle_start<D: DocAccess + ?Sized>(&mut self, now: Duration, docs: &mut D) {
        if self.role != Role::Initiator || !matches!(self.phase, Phase::Handshake { .. }) {
            return;
        }
        let allowed: Vec<DocId> = self.allowed.iter().cloned().collect();
        for doc in allowed {
            self.push_now(now, &doc, docs);
        }
    }

    /// Whether the `join`/`peer` exchange has finished.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether the session ended with a fatal error.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    // ----- inputs -------------------------------------------------------------------

    /// Handles one message from the peer. A message that ends the session is reported
    /// as [`SessionEvent::Failed`].
    pub fn handle_message<D: DocAccess + ?Sized>(
        &mut self,
        now: Duration,
        message: Message,
        docs: &mut D,
    ) {
        if self.phase == Phase::Closed {
            return;
        }
        if let Err(err) = self.dispatch(now, message, docs) {
            self.fail(err);
        }
    }

    /// Pushes a local commit on `doc` to the peer, at once or after a short debounce
    /// if commits come in a burst. Documents the peer may not see are ignored.
    pub fn handle_local_change<D: DocAccess + ?Sized>(
        &mut self,
        now: Duration,
        doc: &DocId,
        docs: &mut D,
    ) {
        match self.phase {
            // Every allowed document is synced when the handshake finishes; a closed
            // session has reported its end already.
            Phase::Closed | Phase::Handshake { .. } => return,
            Phase::Ready => {}
        }
        if !self.allowed.contains(doc) {
            return;
        }
        let debounce = self.limits.push_debounce;
        let entry = self.doc_entry(doc);
        if entry.reconcile == Reconcile::Parked {
            entry.reconcile = Reconcile::Idle;
        }
        entry.progress(now);
        match entry.last_push {
            Some(last) if now < last.saturating_add(debounce) => {
                entry.flush_at = Some(last.saturating_add(debounce));
            }
            _ => self.push_now(now, doc, docs),
        }
    }

    /// Sends this device's current household secret epoch to the peer: at once if the
    /// handshake has finished, else right after it (after the documents' first
    /// messages). The driver calls it only for peers it trusts. Never held back for room:
    /// it is one small message.
    pub fn send_epoch(&mut self, epoch: crate::epochs::Epoch) {
        match self.phase {
            Phase::Closed => {}
            Phase::Handshake { .. } => self.pending_epoch = Some(epoch),
            Phase::Ready => self.transmit.push_back(Message::Epoch {
                sender_id: self.local.clone(),
                target_id: self.remote.clone(),
                epoch,
            }),
        }
    }

    /// Tells the session whether the driver has room to send to this peer.
    ///
    /// While it has none, the session generates no sync message: local changes and
    /// replies to the peer only mark their document as waiting. When room comes back,
    /// each waiting document gets one message that carries everything new since, so a
    /// slow or stalled peer costs one message per document, not one per commit.
    /// Handshake, `doc-unavailable` and `error` messages are never held back.
    pub fn handle_send_room<D: DocAccess + ?Sized>(
        &mut self,
        now: Duration,
        has_room: bool,
        docs: &mut D,
    ) {
        let unblocked = self.send_blocked && has_room;
        self.send_blocked = !has_room;
        if !unblocked || self.phase != Phase::Ready {
            return;
        }
        let waiting: Vec<DocId> = self
            .docs
            .iter()
            .filter(|(_, d)| d.waits_for_room)
            .map(|(id, _)| id.clone())
            .collect();
        for doc in waiting {
            self.push_now(now, &doc, docs);
        }
    }

    /// Whether the session is holding messages back for lack of room to send.
    pub fn is_send_blocked(&self) -> bool {
        self.send_blocked
    }

    /// Handles the timer armed from [`Self::poll_timeout`]: flushes debounced pushes,
    /// aborts reconciliations past their time bound, and fails a handshake that took
    /// too long.
    pub fn handle_timeout<D: DocAccess + ?Sized>(&mut self, now: Duration, docs: &mut D) {
        match self.phase {
            Phase::Closed => return,
            Phase::Handshake { deadline } => {
                if now >= deadline {
                    self.fail(SessionError::HandshakeTimeout);
                }
                return;
            }
            Phase::Ready => {}
        }
        let due: Vec<DocId> = self
            .docs
            .iter()
            .filter(|(_, d)| d.flush_at.is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for doc in due {
            self.push_now(now, &doc, docs);
        }
        let max_duration = self.limits.max_duration;
        let expired: Vec<DocId> = self
            .docs
            .iter()
            .filter(|(_, d)| match d.reconcile {
                Reconcile::Active { since, .. } => now >= since.saturating_add(max_duration),
                _ => false,
            })
            .map(|(id, _)| id.clone())
            .collect();
        for doc in expired {
            self.abort(&doc, AbortReason::TimedOut);
        }
    }

    // ----- outputs ------------------------------------------------------------------

    /// The next message to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmit.pop_front()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Closed => None,
            Phase::Handshake { deadline } => Some(deadline),
            Phase::Ready => self
                .docs
                .values()
                .flat_map(|d| {
                    let bound = match d.reconcile {
                        Reconcile::Active { since, .. } => {
                            Some(since.saturating_add(self.limits.max_duration))
                        }
                        _ => None,
                    };
                    [d.flush_at, bound]
                })
                .flatten()
                .min(),
        }
    }

    /// The sync state per document, encoded for storage, so that the next session
    /// with this peer starts from the heads both sides already share.
    pub fn persisted_states(&self) -> Vec<(DocId, Vec<u8>)> {
        self.docs
            .iter()
            .map(|(id, d)| (id.clone(), d.state.encode()))
            .collect()
    }

    // ----- internals ----------------------------------------------------------------

    fn dispatch<D: DocAccess + ?Sized>(
        &mut self,
        now: Duration,
        message: Message,
        docs: &mut D,
    ) -> Result<(), SessionError> {
        let kind = message.kind();
        match (self.phase, self.role, message) {
            (Phase::Closed, _, _) => Err(SessionError::Closed),
            (_, _, Message::Error { message }) => Err(SessionError::Remote { message }),
            (
                Phase::Handshake { .. },
                Role::Responder,
                Message::Join {
                    sender_id,
                    supported_protocol_versions,
                    peer_metadata,
                },
            ) => {
                if sender_id != self.remote {
                    return Err(SessionError::PeerMismatch);
                }
                self.remote_epoch = peer_metadata.household_epoch;
                if !supported_protocol_versions
                    .iter()
                    .any(|v| v == PROTOCOL_VERSION)
                {
                    return Err(SessionError::UnsupportedVersion);
                }
                self.transmit.push_back(Message::Peer {
                    sender_id: self.local.clone(),
                    target_id: self.remote.clone(),
                    peer_metadata: self.local_metadata(),
                    selected_protocol_version: PROTOCOL_VERSION.to_owned(),
                });
                self.become_ready(now, docs);
                Ok(())
            }
            (
                Phase::Handshake { .. },
                Role::Initiator,
                Message::Peer {
                    sender_id,
                    target_id,
                    selected_protocol_version,
                    peer_metadata,
                },
            ) => {
                self.check_ids(&sender_id, &target_id)?;
                self.remote_epoch = peer_metadata.household_epoch;
                if selected_protocol_version != PROTOCOL_VERSION {
                    return Err(SessionError::UnsupportedVersion);
                }
                self.become_ready(now, docs);
                Ok(())
            }
            (
                Phase::Ready,
                _,
                Message::Sync {
                    sender_id,
                    target_id,
                    document_id,
                    data,
                },
            ) => {
                self.check_ids(&sender_id, &target_id)?;
                self.on_sync(now, document_id, &data, false, docs)
            }
            (
                Phase::Ready,
                _,
                Message::Request {
                    sender_id,
                    target_id,
                    document_id,
                    data,
                },
            ) => {
                self.check_ids(&sender_id, &target_id)?;
                self.on_sync(now, document_id, &data, true, docs)
            }
            (
                Phase::Ready,
                _,
                Message::Proofs {
                    sender_id,
                    target_id,
                    document_id,
                    proofs,
                },
            ) => {
                self.check_ids(&sender_id, &target_id)?;
                // Outside the allowed set the message is dropped unseen, like a sync.
                if !self.allowed.contains(&document_id) {
                    return Ok(());
                }
                let before = docs.doc_mut(&document_id).map(|am| am.get_heads());
                let admission = docs.offer_proofs(&document_id, &proofs).map_err(|_| {
                    SessionError::BadProof {
                        doc: document_id.clone(),
                    }
                })?;
                let after = docs.doc_mut(&document_id).map(|am| am.get_heads());
                self.note_admission(&document_id, admission);
                if before != after {
                    if let Some(entry) = self.docs.get_mut(&document_id) {
                        entry.progress(now);
                    }
                    self.events
                        .push_back(SessionEvent::DocChanged { doc: document_id });
                }
                Ok(())
            }
            (
                Phase::Ready,
                _,
                Message::Epoch {
                    sender_id,
                    target_id,
                    epoch,
                },
            ) => {
                self.check_ids(&sender_id, &target_id)?;
                self.events.push_back(SessionEvent::Epoch { epoch });
                Ok(())
            }
            (
                Phase::Ready,
                _,
                Message::DocUnavailable {
                    sender_id,
                    target_id,
                    document_id,
                },
            ) => {
                self.check_ids(&sender_id, &target_id)?;
                // A doc we never offered needs no answer and gets no bookkeeping.
                if self.allowed.contains(&document_id) {
                    if let Some(entry) = self.docs.get_mut(&document_id) {
                        if entry.reconcile != Reconcile::Parked {
                            entry.reconcile = Reconcile::Idle;
                        }
                    }
                    self.events
                        .push_back(SessionEvent::DocUnavailable { doc: document_id });
                }
                Ok(())
            }
            _ => Err(SessionError::UnexpectedMessage { got: kind }),
        }
    }

    fn check_ids(&self, sender: &PeerId, target: &PeerId) -> Result<(), SessionError> {
        if *sender != self.remote || *target != self.local {
            return Err(SessionError::PeerMismatch);
        }
        Ok(())
    }

    fn become_ready<D: DocAccess + ?Sized>(&mut self, now: Duration, docs: &mut D) {
        self.phase = Phase::Ready;
        self.events.push_back(SessionEvent::PeerReady);
        let allowed: Vec<DocId> = self.allowed.iter().cloned().collect();
        for doc in allowed {
            self.push_now(now, &doc, docs);
        }
        if let Some(epoch) = self.pending_epoch.take() {
            // A peer already on this epoch needs nothing: a reconnect stays one frame
            // each way shorter.
            if self.remote_epoch.as_deref() != Some(epoch.fingerprint().as_str()) {
                self.send_epoch(epoch);
            }
        }
    }

    /// What this device says about itself in `join` and `peer`.
    fn local_metadata(&self) -> PeerMetadata {
        PeerMetadata {
            household_epoch: self.pending_epoch.as_ref().map(|e| e.fingerprint()),
            ..PeerMetadata::default()
        }
    }

    fn doc_entry(&mut self, doc: &DocId) -> &mut DocSync {
        self.docs
            .entry(doc.clone())
            .or_insert_with(|| DocSync::new(am_sync::State::new()))
    }

    /// Sends whatever Automerge says the peer is missing of an allowed `doc` we have.
    fn push_now<D: DocAccess + ?Sized>(&mut self, now: Duration, doc: &DocId, docs: &mut D) {
        let Some(automerge) = docs.doc_mut(doc) else {
            return;
        };
        let empty = automerge.get_heads().is_empty();
        let entry = self
            .docs
            .entry(doc.clone())
            .or_insert_with(|| DocSync::new(am_sync::State::new()));
        entry.flush_at = None;
        if self.send_blocked {
            entry.waits_for_room = true;
            return;
        }
        entry.waits_for_room = false;
        entry.last_push = Some(now);
        if entry.reconcile == Reconcile::Parked {
            return;
        }
        if let Some(sync) = automerge.generate_sync_message(&mut entry.state) {
            entry.activate(now);
            // automerge-repo asks with `request` for a document it has nothing of.
            self.send_sync(doc, sync, empty, docs);
        }
    }

    /// Queues a sync message, preceded by the signed heads the peer needs to prove
    /// the authors of the changes it carries, each sent once per connection.
    fn send_sync<D: DocAccess + ?Sized>(
        &mut self,
        doc: &DocId,
        sync: am_sync::Message,
        request: bool,
        docs: &mut D,
    ) {
        if !sync.changes.is_empty() {
            let proofs = docs.proofs(doc);
            let entry = self.doc_entry(doc);
            let fresh: Vec<Vec<u8>> = proofs
                .into_iter()
                .filter(|p| !entry.sent_proofs.contains(p))
                .take(super::message::MAX_PROOFS)
                .collect();
            if !fresh.is_empty() {
                entry.sent_proofs.extend(fresh.iter().cloned());
                self.transmit.push_back(Message::Proofs {
                    sender_id: self.local.clone(),
                    target_id: self.remote.clone(),
                    document_id: doc.clone(),
                    proofs: fresh,
                });
            }
        }
        let data = sync.encode();
        let message = if request {
            Message::Request {
                sender_id: self.local.clone(),
                target_id: self.remote.clone(),
                document_id: doc.clone(),
                data,
            }
        } else {
            Message::Sync {
                sender_id: self.local.clone(),
                target_id: self.remote.clone(),
                document_id: doc.clone(),
                data,
            }
        };
        self.transmit.push_back(message);
    }

    /// Reports what a check of the peer's changes did not apply.
    fn note_admission(&mut self, doc: &DocId, admission: Admission) {
        if admission.held > 0 || admission.refused > 0 {
            self.events.push_back(SessionEvent::ChangesNotApplied {
                doc: doc.clone(),
                admission,
            });
        }
    }

    fn unavailable(&mut self, doc: DocId) {
        self.transmit.push_back(Message::DocUnavailable {
            sender_id: self.local.clone(),
            target_id: self.remote.clone(),
            document_id: doc,
        });
    }

    fn on_sync<D: DocAccess + ?Sized>(
        &mut self,
        now: Duration,
        doc: DocId,
        data: &[u8],
        is_request: bool,
        docs: &mut D,
    ) -> Result<(), SessionError> {
        // Access control comes first: a document outside the allowed set gets the same
        // answer as a missing one, and `docs` is never consulted about it.
        if !self.allowed.contains(&doc) {
            self.unavailable(doc);
            return Ok(());
        }
        let Ok(sync) = am_sync::Message::decode(data) else {
            return Err(SessionError::BadSyncData { doc });
        };
        // A parked document ignores the peer, so that a fruitless exchange cannot loop,
        // unless the peer announces heads this device does not have: then it has made
        // progress since, and waiting for a local change to unpark could wait forever.
        if self
            .docs
            .get(&doc)
            .is_some_and(|d| d.reconcile == Reconcile::Parked)
        {
            let news = sync.heads.iter().any(|h| !docs.has_seen(&doc, h));
            if !news {
                return Ok(());
            }
            if let Some(entry) = self.docs.get_mut(&doc) {
                entry.reconcile = Reconcile::Idle;
            }
        }
        // A `request` means the peer has nothing; creating an empty document to answer
        // it would just trade two empty documents.
        let automerge = match docs.doc_mut(&doc) {
            Some(found) => Some(found),
            None if !is_request => docs.create_doc(&doc),
            None => None,
        };
        let Some(automerge) = automerge else {
            self.unavailable(doc);
            return Ok(());
        };
        let before = automerge.get_heads();
        let mut sync = sync;
        let mut refused = false;
        if !sync.changes.is_empty() {
            match docs.admit(&doc, &sync.changes) {
                None => {}
                Some(Ok(admission)) => {
                    // Applied (or held) already; what is left updates the sync state.
                    sync.changes = am_sync::ChunkList::empty();
                    refused = admission.refused > 0;
                    self.note_admission(&doc, admission);
                }
                Some(Err(_)) => return Err(SessionError::BadSyncData { doc }),
            }
        }
        let Some(automerge) = docs.doc_mut(&doc) else {
            return Err(SessionError::BadSyncData { doc });
        };
        let entry = self
            .docs
            .entry(doc.clone())
            .or_insert_with(|| DocSync::new(am_sync::State::new()));
        let now_heads = automerge.get_heads();
        let applied_here = now_heads != before;
        if applied_here {
            // What Automerge's own apply would do: the changes the peer just sent are
            // shared with it now, so a later reconnect starts from them.
            advance_shared_heads(&mut entry.state, &before, &now_heads);
        }
        let last_sent = entry.state.last_sent_heads.clone();
        if automerge
            .receive_sync_message(&mut entry.state, sync)
            .is_err()
        {
            return Err(SessionError::BadSyncData { doc });
        }
        // Automerge takes a message without changes whose heads equal ours as if we had
        // told the peer those heads. We may not have: the changes were applied just
        // before (above), or reached us through a third device. Then the peer still
        // waits to hear that we agree, so what we last really sent stays on record and
        // the next message carries our heads once.
        entry.state.last_sent_heads = last_sent;
        if refused {
            // The peer holds changes this device will never take, and would offer them
            // in every round: stop here until it writes something new.
            if applied_here {
                self.events
                    .push_back(SessionEvent::DocChanged { doc: doc.clone() });
            }
            self.abort(&doc, AbortReason::Refused);
            return Ok(());
        }
        let after = automerge.get_heads();
        let changed = before != after;
        if changed {
            entry.progress(now);
        }
        let in_sync = heads_equal(entry.state.their_heads.as_deref(), &after);
        match entry.reconcile {
            Reconcile::Active { since, rounds } => {
                let rounds = rounds.saturating_add(1);
                entry.reconcile = Reconcile::Active { since, rounds };
                // Progress resets `rounds`, so only a run of fruitless messages gets here.
                if rounds > self.limits.max_rounds && !in_sync {
                    if changed {
                        self.events
                            .push_back(SessionEvent::DocChanged { doc: doc.clone() });
                    }
                    self.abort(&doc, AbortReason::TooManyRounds);
                    return Ok(());
                }
            }
            Reconcile::Idle => {
                if !in_sync {
                    entry.activate(now);
                }
            }
            Reconcile::Parked => {}
        }
        // Without room to send, the reply waits and folds into the next message.
        let reply = if self.send_blocked {
            entry.waits_for_room = true;
            None
        } else {
            entry.waits_for_room = false;
            automerge.generate_sync_message(&mut entry.state)
        };
        let completed = in_sync && matches!(entry.reconcile, Reconcile::Active { .. });
        if completed {
            entry.reconcile = Reconcile::Idle;
        }
        if let Some(reply) = reply {
            self.send_sync(&doc, reply, false, docs);
        }
        if changed {
            self.events
                .push_back(SessionEvent::DocChanged { doc: doc.clone() });
        }
        if completed {
            self.events.push_back(SessionEvent::SyncCompleted { doc });
        }
        Ok(())
    }

    fn abort(&mut self, doc: &DocId, reason: AbortReason) {
        if let Some(entry) = self.docs.get_mut(doc) {
            entry.reconcile = Reconcile::Parked;
            entry.flush_at = None;
            entry.reset_state();
        }
        self.events.push_back(SessionEvent::ReconciliationAborted {
            doc: doc.clone(),
            reason,
        });
    }

    /// Ends the session: tells the peer why (unless the peer is the one who gave up)
    /// and stops all further work.
    /// Ends the session: an `error` message for the peer (unless the peer itself gave
    /// up), then [`SessionEvent::Failed`] for the driver. Reported once.
    fn fail(&mut self, err: SessionError) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.transmit.clear();
        self.pending_epoch = None;
        if !matches!(err, SessionError::Remote { .. } | SessionError::Closed) {
            self.transmit.push_back(Message::error(&err.to_string()));
        }
        self.events.push_back(SessionEvent::Failed { error: err });
    }
}

/// Moves the heads this device knows it shares with the peer past changes the peer
/// sent and this device applied itself, as `receive_sync_message` does for changes it
/// applies.
fn advance_shared_heads(state: &mut am_sync::State, before: &[ChangeHash], after: &[ChangeHash]) {
    let mut shared: BTreeSet<ChangeHash> = after
        .iter()
        .filter(|head| !before.contains(head))
        .copied()
        .collect();
    shared.extend(
        state
            .shared_heads
            .iter()
            .filter(|head| after.contains(head))
            .copied(),
    );
    state.shared_heads = shared.into_iter().collect();
}

fn heads_equal(theirs: Option<&[ChangeHash]>, ours: &[ChangeHash]) -> bool {
    theirs.is_some_and(|theirs| {
        // Automerge keeps heads sorted, but compare as sets so ordering never matters.
        theirs.len() == ours.len() && theirs.iter().all(|h| ours.contains(h))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The error the session ended with, if it ended (draining its events).
    fn failure(session: &mut Session) -> Option<SessionError> {
        std::iter::from_fn(|| session.poll_event()).find_map(|e| match e {
            SessionEvent::Failed { error } => Some(error),
            _ => None,
        })
    }
    use automerge::transaction::Transactable;
    use automerge::ROOT;
    use uuid::Uuid;

    /// Documents that remember every id a session asked about.
    #[derive(Default)]
    struct Docs {
        docs: BTreeMap<DocId, Automerge>,
        touched: Vec<DocId>,
        may_create: bool,
    }

    impl Docs {
        fn with(ids: &[DocId]) -> Self {
            let mut docs = Self::default();
            for id in ids {
                docs.docs.insert(id.clone(), Automerge::new());
                edit(&mut docs, id, "seed", id.as_str());
            }
            docs
        }
    }

    impl DocAccess for Docs {
        fn doc_mut(&mut self, id: &DocId) -> Option<&mut Automerge> {
            self.touched.push(id.clone());
            self.docs.get_mut(id)
        }

        fn create_doc(&mut self, id: &DocId) -> Option<&mut Automerge> {
            self.touched.push(id.clone());
            if !self.may_create {
                return None;
            }
            Some(self.docs.entry(id.clone()).or_default())
        }
    }

    fn edit(docs: &mut Docs, id: &DocId, key: &str, value: &str) {
        let doc = docs.docs.get_mut(id).unwrap();
        let mut tx = doc.transaction();
        tx.put(ROOT, key, value).unwrap();
        tx.commit();
    }

    fn alice_dev() -> DeviceId {
        DeviceId::from_public_key(&[1; 32])
    }

    fn bob_dev() -> DeviceId {
        DeviceId::from_public_key(&[2; 32])
    }

    fn alice_private() -> DocId {
        DocId::private(&Uuid::from_u128(0xa11ce))
    }

    fn config(local: DeviceId, remote: DeviceId, role: Role, allowed: &[DocId]) -> SessionConfig {
        SessionConfig {
            local,
            remote,
            role,
            allowed_docs: allowed.iter().cloned().collect(),
            persisted: Vec::new(),
            limits: SyncLimits::default(),
            epoch: None,
        }
    }

    /// Alice's initiating session with Bob and Bob's answering one, sharing `allowed`.
    fn alice_and_bob(allowed: &[DocId]) -> (Session, Session) {
        let a = Session::new(
            config(alice_dev(), bob_dev(), Role::Initiator, allowed),
            Duration::ZERO,
        );
        let b = Session::new(
            config(bob_dev(), alice_dev(), Role::Responder, allowed),
            Duration::ZERO,
        );
        (a, b)
    }

    fn drain(session: &mut Session) -> Vec<Message> {
        std::iter::from_fn(|| session.poll_transmit()).collect()
    }

    fn events(session: &mut Session) -> Vec<SessionEvent> {
        std::iter::from_fn(|| session.poll_event()).collect()
    }

    /// Moves messages both ways until neither side has anything to send.
    fn pump(a: &mut Session, a_docs: &mut Docs, b: &mut Session, b_docs: &mut Docs) {
        for _ in 0..100 {
            let to_b = drain(a);
            let to_a = drain(b);
            if to_a.is_empty() && to_b.is_empty() {
                return;
            }
            for m in to_b {
                b.handle_message(Duration::ZERO, m, b_docs);
            }
            for m in to_a {
                a.handle_message(Duration::ZERO, m, a_docs);
            }
        }
        panic!("sessions kept talking");
    }

    fn sync_msg(from: DeviceId, to: DeviceId, doc: DocId, data: Vec<u8>) -> Message {
        Message::Sync {
            sender_id: PeerId::from(&from),
            target_id: PeerId::from(&to),
            document_id: doc,
            data,
        }
    }

    /// A ready responder session on Alice's device for peer Bob.
    fn ready_responder(allowed: &[DocId], docs: &mut Docs) -> Session {
        let mut session = Session::new(
            config(alice_dev(), bob_dev(), Role::Responder, allowed),
            Duration::ZERO,
        );
        let join = Message::Join {
            sender_id: PeerId::from(&bob_dev()),
            peer_metadata: PeerMetadata::default(),
            supported_protocol_versions: vec!["1".to_owned()],
        };
        session.handle_message(Duration::ZERO, join, docs);
        assert!(session.is_ready());
        session
    }

    /// Alice (initiating) and Bob with the same household, synced once, and a new
    /// session each that resumes from the sync state saved at the end of that one.
    fn reconnected(allowed: &[DocId]) -> (Docs, Docs, Session, Session) {
        let household = DocId::household();
        let mut a_docs = Docs::with(std::slice::from_ref(&household));
        let mut b_docs = Docs::with(&[]);
        b_docs.docs.insert(
            household.clone(),
            a_docs.docs[&household]
                .fork()
                .with_actor("b0".as_bytes().into()),
        );
        let (mut a, mut b) = alice_and_bob(allowed);
        a.handle_start(Duration::ZERO, &mut a_docs);
        pump(&mut a, &mut a_docs, &mut b, &mut b_docs);
        assert!(events(&mut b).contains(&SessionEvent::SyncCompleted {
            doc: household.clone()
        }));
        let a = resumed(
            alice_dev(),
            bob_dev(),
            Role::Initiator,
            allowed,
            a.persisted_states(),
        );
        let b = resumed(
            bob_dev(),
            alice_dev(),
            Role::Responder,
            allowed,
            b.persisted_states(),
        );
        (a_docs, b_docs, a, b)
    }

    fn resumed(
        local: DeviceId,
        remote: DeviceId,
        role: Role,
        allowed: &[DocId],
        saved: Vec<(DocId, Vec<u8>)>,
    ) -> Session {
        let mut config = config(local, remote, role, allowed);
        config.persisted = saved;
        Session::new(config, Duration::ZERO)
    }

    /// The Automerge sync payload of a `sync` or `request`.
    fn payload(message: &Message) -> Option<am_sync::Message> {
        match message {
            Message::Sync { data, .. } | Message::Request { data, .. } => {
                am_sync::Message::decode(data).ok()
            }
            _ => None,
        }
    }

    #[test]
    fn a_reconnect_with_nothing_new_takes_one_round_trip() {
        let household = DocId::household();
        let allowed = [household.clone()];
        let (mut a_docs, mut b_docs, mut a, mut b) = reconnected(&allowed);
        a.handle_start(Duration::ZERO, &mut a_docs);

        // Flight 1, Alice → Bob: `join` and her sync, without waiting for `peer`. It
        // carries heads, never changes.
        let first = drain(&mut a);
        assert_eq!(first.len(), 2, "{first:?}");
        assert!(matches!(first[0], Message::Join { .. }));
        assert!(
            matches!(&first[1], Message::Sync { document_id, .. } if *document_id == household)
        );
        assert!(payload(&first[1]).unwrap().changes.is_empty());
        for m in first {
            b.handle_message(Duration::ZERO, m, &mut b_docs);
        }
        // Bob is done on reading it.
        let b_events = events(&mut b);
        assert_eq!(b_events[0], SessionEvent::PeerReady);
        assert!(b_events.contains(&SessionEvent::SyncCompleted {
            doc: household.clone()
        }));

        // Flight 2, Bob → Alice: `peer` and his sync; Alice is done on reading it.
        let second = drain(&mut b);
        assert_eq!(second.len(), 2, "{second:?}");
        assert!(matches!(second[0], Message::Peer { .. }));
        assert!(matches!(second[1], Message::Sync { .. }));
        for m in second {
            a.handle_message(Duration::ZERO, m, &mut a_docs);
        }
        let a_events = events(&mut a);
        assert_eq!(a_events[0], SessionEvent::PeerReady);
        assert!(a_events.contains(&SessionEvent::SyncCompleted { doc: household }));

        // Nothing is left to say, and nothing went twice: one round trip in all.
        assert!(drain(&mut a).is_empty());
        assert!(drain(&mut b).is_empty());
        assert_eq!(a.poll_timeout(), None);
        assert_eq!(b.poll_timeout(), None);
    }

    #[test]
    fn an_initiator_that_waits_for_peer_still_syncs_with_a_responder() {
        // A session never told to start is an initiator of the version before: `join`
        // alone, then its sync once `peer` is in. The responder's code is the same for
        // both, so this and the test above cover old and new initiators against it.
        let household = DocId::household();
        let allowed = [household.clone()];
        let (mut a_docs, mut b_docs, mut a, mut b) = reconnected(&allowed);
        let first = drain(&mut a);
        assert_eq!(first.len(), 1);
        pump_from(first, &mut a, &mut a_docs, &mut b, &mut b_docs);
        assert!(events(&mut a).contains(&SessionEvent::SyncCompleted {
            doc: household.clone()
        }));
        assert!(events(&mut b).contains(&SessionEvent::SyncCompleted { doc: household }));
    }

    /// Delivers `first` to `b`, then pumps both ways.
    fn pump_from(
        first: Vec<Message>,
        a: &mut Session,
        a_docs: &mut Docs,
        b: &mut Session,
        b_docs: &mut Docs,
    ) {
        for m in first {
            b.handle_message(Duration::ZERO, m, b_docs);
        }
        pump(a, a_docs, b, b_docs);
    }

    #[test]
    fn a_change_during_the_handshake_goes_once_it_ends() {
        let household = DocId::household();
        let allowed = [household.clone()];
        let (mut a_docs, mut b_docs, mut a, mut b) = reconnected(&allowed);
        a.handle_start(Duration::ZERO, &mut a_docs);
        let first = drain(&mut a);
        edit(&mut a_docs, &household, "late", "yes");
        a.handle_local_change(Duration::ZERO, &household, &mut a_docs);
        pump_from(first, &mut a, &mut a_docs, &mut b, &mut b_docs);
        assert_eq!(
            a_docs.docs[&household].get_heads(),
            b_docs.docs[&household].get_heads()
        );
        assert!(events(&mut a).contains(&SessionEvent::SyncCompleted { doc: household }));
    }

    #[test]
    fn the_first_flight_names_only_allowed_documents() {
        // Alice holds her private document too; Bob's device may see the household only.
        let household = DocId::household();
        let mut a_docs = Docs::with(&[household.clone(), alice_private()]);
        let mut a = Session::new(
            config(
                alice_dev(),
                bob_dev(),
                Role::Initiator,
                std::slice::from_ref(&household),
            ),
            Duration::ZERO,
        );
        a.handle_start(Duration::ZERO, &mut a_docs);
        let first = drain(&mut a);
        assert!(matches!(first[0], Message::Join { .. }));
        for m in &first[1..] {
            match m {
                Message::Sync { document_id, .. } | Message::Request { document_id, .. } => {
                    assert_eq!(*document_id, household);
                }
                other => panic!("unexpected {other:?}"),
            }
            assert!(payload(m).unwrap().changes.is_empty());
        }
        assert_eq!(first.len(), 2);
        assert!(!a_docs.touched.contains(&alice_private()));
        // A responder has nothing to say before `join`.
        let mut b = Session::new(
            config(
                bob_dev(),
                alice_dev(),
                Role::Responder,
                std::slice::from_ref(&household),
            ),
            Duration::ZERO,
        );
        let mut b_docs = Docs::with(std::slice::from_ref(&household));
        b.handle_start(Duration::ZERO, &mut b_docs);
        assert!(drain(&mut b).is_empty());
    }

    #[test]
    fn two_sessions_handshake_sync_and_complete() {
        let household = DocId::household();
        let mut a_docs = Docs::with(std::slice::from_ref(&household));
        let mut b_docs = Docs {
            may_create: true,
            ..Docs::default()
        };
        let (mut a, mut b) = alice_and_bob(std::slice::from_ref(&household));
        // 1. The initiator speaks first with `join`.
        assert!(matches!(a.poll_transmit(), Some(Message::Join { .. })));
        let join = Message::Join {
            sender_id: PeerId::from(&alice_dev()),
            peer_metadata: PeerMetadata::default(),
            supported_protocol_versions: vec!["1".to_owned()],
        };
        b.handle_message(Duration::ZERO, join, &mut b_docs);
        // 2. The rest flows until quiet; Bob creates the household on first sync.
        pump(&mut a, &mut a_docs, &mut b, &mut b_docs);
        assert_eq!(
            a_docs.docs[&household].get_heads(),
            b_docs.docs[&household].get_heads()
        );
        let a_events = events(&mut a);
        let b_events = events(&mut b);
        assert_eq!(a_events[0], SessionEvent::PeerReady);
        assert!(a_events.contains(&SessionEvent::SyncCompleted {
            doc: household.clone()
        }));
        assert!(b_events.contains(&SessionEvent::DocChanged {
            doc: household.clone()
        }));
        assert!(b_events.contains(&SessionEvent::SyncCompleted { doc: household }));
        assert_eq!(a.poll_timeout(), None);
        assert_eq!(b.poll_timeout(), None);
    }

    #[test]
    fn an_epoch_goes_after_the_handshake_and_arrives_as_an_event() {
        use crate::epochs::Epoch;
        let household = DocId::household();
        let mut a_docs = Docs::with(std::slice::from_ref(&household));
        let mut b_docs = Docs::with(&[]);
        b_docs.may_create = true;
        let (mut a, mut b) = alice_and_bob(std::slice::from_ref(&household));
        // Asked before the handshake, it waits for it.
        a.send_epoch(Epoch::new(2, [7; 32]));
        let first = drain(&mut a);
        assert!(first.iter().all(|m| !matches!(m, Message::Epoch { .. })));
        for m in first {
            b.handle_message(Duration::ZERO, m, &mut b_docs);
        }
        pump(&mut a, &mut a_docs, &mut b, &mut b_docs);
        let got: Vec<SessionEvent> = events(&mut b)
            .into_iter()
            .filter(|e| matches!(e, SessionEvent::Epoch { .. }))
            .collect();
        assert_eq!(
            got,
            vec![SessionEvent::Epoch {
                epoch: Epoch::new(2, [7; 32])
            }]
        );
        // Sent by anyone but the peer on this connection, it ends the session.
        let forged = Message::Epoch {
            sender_id: PeerId::new("someone-else"),
            target_id: PeerId::from(&bob_dev()),
            epoch: Epoch::new(9, [1; 32]),
        };
        b.handle_message(Duration::ZERO, forged, &mut b_docs);
        assert_eq!(failure(&mut b), Some(SessionError::PeerMismatch));
    }

    #[test]
    fn an_epoch_goes_only_to_a_peer_on_another_one() {
        use crate::epochs::Epoch;
        let household = DocId::household();
        let run = |alice: Epoch, bob: Epoch| -> Vec<SessionEvent> {
            let mut a_docs = Docs::with(std::slice::from_ref(&household));
            let mut b_docs = Docs::with(&[]);
            b_docs.may_create = true;
            let allowed = [household.clone()];
            let mut a = Session::new(
                SessionConfig {
                    epoch: Some(alice),
                    ..config(alice_dev(), bob_dev(), Role::Initiator, &allowed)
                },
                Duration::ZERO,
            );
            let mut b = Session::new(
                SessionConfig {
                    epoch: Some(bob),
                    ..config(bob_dev(), alice_dev(), Role::Responder, &allowed)
                },
                Duration::ZERO,
            );
            pump(&mut a, &mut a_docs, &mut b, &mut b_docs);
            let mut got = events(&mut a);
            got.extend(events(&mut b));
            got.retain(|e| matches!(e, SessionEvent::Epoch { .. }));
            got
        };
        // Both on one epoch: nothing to send, and a reconnect stays short.
        assert!(run(Epoch::new(3, [1; 32]), Epoch::new(3, [1; 32])).is_empty());
        // On different ones: each tells the other, and the adoption rule picks one.
        assert_eq!(run(Epoch::new(3, [1; 32]), Epoch::new(4, [2; 32])).len(), 2);
    }

    #[test]
    fn an_epoch_before_the_handshake_is_a_protocol_violation() {
        let mut docs = Docs::with(&[]);
        let mut b = Session::new(
            config(bob_dev(), alice_dev(), Role::Responder, &[]),
            Duration::ZERO,
        );
        let early = Message::Epoch {
            sender_id: PeerId::from(&alice_dev()),
            target_id: PeerId::from(&bob_dev()),
            epoch: crate::epochs::Epoch::new(1, [1; 32]),
        };
        b.handle_message(Duration::ZERO, early, &mut docs);
        assert!(matches!(
            failure(&mut b),
            Some(SessionError::UnexpectedMessage { .. })
        ));
    }

    #[test]
    fn hostile_peer_cannot_read_write_or_probe_a_private_doc() {
        let household = DocId::household();
        let mut docs = Docs::with(&[household.clone(), alice_private()]);
        docs.may_create = true;
        let heads_before = docs.docs[&alice_private()].get_heads();
        // Alice's device talks to Bob's device: only the household is allowed.
        let mut session = ready_responder(std::slice::from_ref(&household), &mut docs);
        drain(&mut session);
        docs.touched.clear();

        // 1. Bob asks for Alice's private doc, and for a doc that does not exist.
        let probe = Automerge::new();
        let mut state = am_sync::State::new();
        let ask = probe.generate_sync_message(&mut state).unwrap().encode();
        let missing = DocId::new("private-does-not-exist");
        let mut replies = Vec::new();
        for doc in [alice_private(), missing.clone()] {
            let request = Message::Request {
                sender_id: PeerId::from(&bob_dev()),
                target_id: PeerId::from(&alice_dev()),
                document_id: doc.clone(),
                data: ask.clone(),
            };
            session.handle_message(Duration::ZERO, request, &mut docs);
            replies.push(drain(&mut session));
        }
        // 2. Both get the same answer: unavailable. Existence is not revealed.
        for (reply, doc) in replies.iter().zip([alice_private(), missing]) {
            assert_eq!(
                reply,
                &vec![Message::DocUnavailable {
                    sender_id: PeerId::from(&alice_dev()),
                    target_id: PeerId::from(&bob_dev()),
                    document_id: doc,
                }]
            );
        }

        // 3. Bob pushes real changes into Alice's private doc id.
        let mut forged = Automerge::new();
        let mut tx = forged.transaction();
        tx.put(ROOT, "battery", 0).unwrap();
        tx.commit();
        let mut state = am_sync::State::new();
        let push = forged.generate_sync_message(&mut state).unwrap().encode();
        let message = sync_msg(bob_dev(), alice_dev(), alice_private(), push);
        session.handle_message(Duration::ZERO, message, &mut docs);
        assert!(matches!(
            drain(&mut session).as_slice(),
            [Message::DocUnavailable { .. }]
        ));

        // 4. Garbage data for a forbidden doc is not even decoded.
        let garbage = sync_msg(bob_dev(), alice_dev(), alice_private(), vec![0xff; 8]);
        session.handle_message(Duration::ZERO, garbage, &mut docs);

        // 5. A local change to the private doc is never pushed to Bob.
        edit(&mut docs, &alice_private(), "note", "x");
        session.handle_local_change(Duration::ZERO, &alice_private(), &mut docs);
        assert!(drain(&mut session)
            .iter()
            .all(|m| matches!(m, Message::DocUnavailable { .. })));

        // 6. The private doc was never touched, and nothing leaks into persistence.
        assert!(!docs.touched.contains(&alice_private()));
        assert_eq!(docs.docs[&alice_private()].get_heads().len(), 1);
        assert_ne!(docs.docs[&alice_private()].get_heads(), heads_before);
        assert!(session
            .persisted_states()
            .iter()
            .all(|(doc, _)| *doc == household));
        assert!(!events(&mut session)
            .iter()
            .any(|e| format!("{e:?}").contains("private")));
    }

    #[test]
    fn persisted_states_outside_the_allowed_set_are_dropped() {
        let mut state = am_sync::State::new();
        state.shared_heads = Vec::new();
        let mut cfg = config(
            alice_dev(),
            bob_dev(),
            Role::Initiator,
            &[DocId::household()],
        );
        cfg.persisted = vec![
            (alice_private(), state.encode()),
            (DocId::household(), state.encode()),
            (DocId::new("other"), vec![0xff]),
        ];
        let session = Session::new(cfg, Duration::ZERO);
        let kept: Vec<DocId> = session
            .persisted_states()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(kept, vec![DocId::household()]);
    }

    #[test]
    fn join_from_the_wrong_device_is_rejected() {
        let mut docs = Docs::default();
        let mut session = Session::new(
            config(alice_dev(), bob_dev(), Role::Responder, &[]),
            Duration::ZERO,
        );
        let join = Message::Join {
            sender_id: PeerId::new("SOMEONE-ELSE"),
            peer_metadata: PeerMetadata::default(),
            supported_protocol_versions: vec!["1".to_owned()],
        };
        session.handle_message(Duration::ZERO, join, &mut docs);
        let err = failure(&mut session).unwrap();
        assert_eq!(err, SessionError::PeerMismatch);
        assert_eq!(err.code(), ApplicationErrorCode::PeerMismatch);
        assert!(matches!(
            drain(&mut session).as_slice(),
            [Message::Error { .. }]
        ));
        assert!(session.is_closed());
        session.handle_timeout(Duration::ZERO, &mut docs);
        // Ended once: later inputs are ignored, not reported again.
        assert_eq!(failure(&mut session), None);
    }

    #[test]
    fn unsupported_version_and_early_sync_are_rejected() {
        let mut docs = Docs::default();
        let mut session = Session::new(
            config(alice_dev(), bob_dev(), Role::Responder, &[]),
            Duration::ZERO,
        );
        let join = Message::Join {
            sender_id: PeerId::from(&bob_dev()),
            peer_metadata: PeerMetadata::default(),
            supported_protocol_versions: vec!["2".to_owned()],
        };
        session.handle_message(Duration::ZERO, join, &mut docs);
        assert_eq!(
            failure(&mut session),
            Some(SessionError::UnsupportedVersion)
        );

        let mut session = Session::new(
            config(alice_dev(), bob_dev(), Role::Responder, &[]),
            Duration::ZERO,
        );
        let early = sync_msg(bob_dev(), alice_dev(), DocId::household(), vec![]);
        session.handle_message(Duration::ZERO, early, &mut docs);
        assert_eq!(
            failure(&mut session),
            Some(SessionError::UnexpectedMessage { got: "sync" })
        );
    }

    #[test]
    fn handshake_times_out() {
        let mut docs = Docs::default();
        let mut session = Session::new(
            config(alice_dev(), bob_dev(), Role::Initiator, &[]),
            Duration::from_secs(5),
        );
        let deadline = session.poll_timeout().unwrap();
        assert_eq!(deadline, Duration::from_secs(15));
        session.handle_timeout(Duration::from_secs(14), &mut docs);
        session.handle_timeout(deadline, &mut docs);
        let err = failure(&mut session).unwrap();
        assert_eq!(err, SessionError::HandshakeTimeout);
        assert_eq!(err.code(), ApplicationErrorCode::HandshakeTimeout);
    }

    #[test]
    fn remote_error_closes_without_answering() {
        let mut docs = Docs::default();
        let mut session = ready_responder(&[], &mut docs);
        drain(&mut session);
        session.handle_message(Duration::ZERO, Message::error("bye"), &mut docs);
        let err = failure(&mut session).unwrap();
        assert_eq!(
            err,
            SessionError::Remote {
                message: "bye".to_owned()
            }
        );
        assert!(drain(&mut session).is_empty());
    }

    #[test]
    fn undecodable_sync_data_is_fatal() {
        let household = DocId::household();
        let mut docs = Docs::with(std::slice::from_ref(&household));
        let mut session = ready_responder(std::slice::from_ref(&household), &mut docs);
        drain(&mut session);
        let bad = sync_msg(bob_dev(), alice_dev(), household.clone(), vec![0x42, 0xff]);
        session.handle_message(Duration::ZERO, bad, &mut docs);
        let err = failure(&mut session).unwrap();
        assert_eq!(err, SessionError::BadSyncData { doc: household });
        assert_eq!(err.code(), ApplicationErrorCode::BadSyncData);
    }

    #[test]
    fn a_peer_that_never_progresses_hits_the_round_bound() {
        let household = DocId::household();
        let mut docs = Docs::with(std::slice::from_ref(&household));
        let mut session = ready_responder(std::slice::from_ref(&household), &mut docs);
        drain(&mut session);
        // The peer keeps saying "I have nothing" and never takes what it is sent.
        let empty = Automerge::new();
        let mut aborted = None;
        let mut sent_after_abort = 0;
        for round in 0..100 {
            let mut state = am_sync::State::new();
            let data = empty.generate_sync_message(&mut state).unwrap().encode();
            let message = sync_msg(bob_dev(), alice_dev(), household.clone(), data);
            session.handle_message(Duration::from_millis(round), message, &mut docs);
            let sent = drain(&mut session).len();
            if aborted.is_some() {
                sent_after_abort += sent;
            }
            if let Some(SessionEvent::ReconciliationAborted { reason, .. }) = events(&mut session)
                .into_iter()
                .find(|e| matches!(e, SessionEvent::ReconciliationAborted { .. }))
            {
                aborted = Some((round, reason));
            }
        }
        let (round, reason) = aborted.unwrap();
        assert_eq!(reason, AbortReason::TooManyRounds);
        assert!(round <= u64::from(SyncLimits::default().max_rounds) + 1);
        // A parked document ignores the peer until something changes locally.
        assert_eq!(sent_after_abort, 0);
        edit(&mut docs, &household, "new", "entry");
        session.handle_local_change(Duration::from_secs(1), &household, &mut docs);
        assert_eq!(drain(&mut session).len(), 1);
    }

    #[test]
    fn a_silent_peer_hits_the_time_bound() {
        let household = DocId::household();
        let mut docs = Docs::with(std::slice::from_ref(&household));
        let mut session = ready_responder(std::slice::from_ref(&household), &mut docs);
        // Our opening sync message went out and the peer never answers.
        assert_eq!(drain(&mut session).len(), 2);
        let limit = SyncLimits::default().max_duration;
        assert_eq!(session.poll_timeout(), Some(limit));
        session.handle_timeout(limit, &mut docs);
        assert!(
            events(&mut session).contains(&SessionEvent::ReconciliationAborted {
                doc: household,
                reason: AbortReason::TimedOut,
            })
        );
        assert_eq!(session.poll_timeout(), None);
    }

    #[test]
    fn bursts_of_local_commits_are_debounced() {
        let household = DocId::household();
        let mut docs = Docs::with(std::slice::from_ref(&household));
        let mut session = ready_responder(std::slice::from_ref(&household), &mut docs);
        drain(&mut session);
        let t0 = Duration::from_secs(1);
        let debounce = SyncLimits::default().push_debounce;
        // 1. The first commit after a quiet spell goes out at once.
        edit(&mut docs, &household, "a", "1");
        session.handle_local_change(t0, &household, &mut docs);
        assert_eq!(drain(&mut session).len(), 1);
        // 2. Commits right after it wait for the debounce timer.
        for i in 0..3u64 {
            edit(&mut docs, &household, "b", "2");
            session.handle_local_change(t0 + Duration::from_millis(i), &household, &mut docs);
        }
        assert!(drain(&mut session).is_empty());
        assert_eq!(session.poll_timeout(), Some(t0 + debounce));
        // 3. The timer pushes them together.
        session.handle_timeout(t0 + debounce, &mut docs);
        assert_eq!(drain(&mut session).len(), 1);
    }

    #[test]
    fn without_room_to_send_commits_and_replies_fold_into_one_message_per_doc() {
        let household = DocId::household();
        let mut a_docs = Docs::with(std::slice::from_ref(&household));
        let mut b_docs = Docs::with(std::slice::from_ref(&household));
        let (mut a, mut b) = alice_and_bob(std::slice::from_ref(&household));
        pump(&mut a, &mut a_docs, &mut b, &mut b_docs);
        assert!(a.is_ready() && b.is_ready());
        // 1. The driver's queue to Bo is full: a hundred commits send nothing.
        let mut now = Duration::from_secs(1);
        a.handle_send_room(now, false, &mut a_docs);
        assert!(a.is_send_blocked());
        for i in 0..100u32 {
            now += Duration::from_millis(10);
            edit(&mut a_docs, &household, &format!("k{i}"), "v");
            a.handle_local_change(now, &household, &mut a_docs);
            a.handle_timeout(now, &mut a_docs);
        }
        assert!(drain(&mut a).is_empty());
        // 2. A message from Bo is applied, but the reply waits too.
        edit(&mut b_docs, &household, "from-bo", "v");
        b.handle_local_change(now, &household, &mut b_docs);
        for message in drain(&mut b) {
            a.handle_message(now, message, &mut a_docs);
        }
        assert!(drain(&mut a).is_empty());
        // 3. Room comes back: one message carries all of it.
        a.handle_send_room(now, true, &mut a_docs);
        let sent = drain(&mut a);
        assert_eq!(sent.len(), 1, "{sent:?}");
        for message in sent {
            b.handle_message(now, message, &mut b_docs);
        }
        pump(&mut a, &mut a_docs, &mut b, &mut b_docs);
        assert_eq!(
            a_docs.docs[&household].get_heads(),
            b_docs.docs[&household].get_heads()
        );
    }

    #[derive(Debug, Clone)]
    enum Hostile {
        Sync {
            doc: u8,
            valid: bool,
            request: bool,
            bytes: Vec<u8>,
        },
        Unavailable {
            doc: u8,
        },
        Join,
        LocalChange {
            doc: u8,
        },
        Tick {
            ms: u32,
        },
    }

    fn hostile_doc(index: u8) -> DocId {
        match index % 3 {
            0 => DocId::household(),
            1 => alice_private(),
            _ => DocId::new("x"),
        }
    }

    fn arb_hostile() -> impl proptest::strategy::Strategy<Value = Hostile> {
        use proptest::prelude::*;
        prop_oneof![
            12 => (any::<u8>(), proptest::bool::weighted(0.85), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(doc, valid, request, bytes)| Hostile::Sync { doc, valid, request, bytes }),
            2 => any::<u8>().prop_map(|doc| Hostile::Unavailable { doc }),
            1 => Just(Hostile::Join),
            3 => any::<u8>().prop_map(|doc| Hostile::LocalChange { doc }),
            2 => (0u32..120_000).prop_map(|ms| Hostile::Tick { ms }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn hostile_message_sequences_never_touch_or_leak_a_forbidden_doc(
            ops in proptest::collection::vec(arb_hostile(), 1..40)
        ) {
            let household = DocId::household();
            let mut docs = Docs::with(&[household.clone(), alice_private()]);
            docs.may_create = true;
            let mut session = ready_responder(std::slice::from_ref(&household), &mut docs);
            let mut now = Duration::ZERO;
            // The peer's own view of the household, so some of its messages are valid.
            let mut theirs = Automerge::new();
            let mut their_state = am_sync::State::new();
            for op in ops {
                match op {
                    Hostile::Sync { doc, valid, request, bytes } => {
                        if valid {
                            let mut tx = theirs.transaction();
                            tx.put(ROOT, "k", bytes.len() as i64).unwrap();
                            tx.commit();
                        }
                        let data = if valid {
                            theirs
                                .generate_sync_message(&mut their_state)
                                .map(|m| m.encode())
                                .unwrap_or(bytes)
                        } else {
                            bytes
                        };
                        let (sender_id, target_id) = (PeerId::from(&bob_dev()), PeerId::from(&alice_dev()));
                        let document_id = hostile_doc(doc);
                        let message = if request {
                            Message::Request { sender_id, target_id, document_id, data }
                        } else {
                            Message::Sync { sender_id, target_id, document_id, data }
                        };
                        session.handle_message(now, message, &mut docs)
                    }
                    Hostile::Unavailable { doc } => session.handle_message(
                        now,
                        Message::DocUnavailable {
                            sender_id: PeerId::from(&bob_dev()),
                            target_id: PeerId::from(&alice_dev()),
                            document_id: hostile_doc(doc),
                        },
                        &mut docs,
                    ),
                    Hostile::Join => session.handle_message(
                        now,
                        Message::Join {
                            sender_id: PeerId::from(&bob_dev()),
                            peer_metadata: PeerMetadata::default(),
                            supported_protocol_versions: vec!["1".to_owned()],
                        },
                        &mut docs,
                    ),
                    Hostile::LocalChange { doc } => {
                        let doc = hostile_doc(doc);
                        if docs.docs.contains_key(&doc) {
                            edit(&mut docs, &doc, "local", "change");
                        }
                        session.handle_local_change(now, &doc, &mut docs)
                    }
                    Hostile::Tick { ms } => {
                        now += Duration::from_millis(u64::from(ms));
                        session.handle_timeout(now, &mut docs)
                    }
                };
                for message in drain(&mut session) {
                    if let Message::Sync { document_id, .. } | Message::Request { document_id, .. } = &message {
                        proptest::prop_assert_eq!(document_id, &household);
                    }
                }
                proptest::prop_assert!(!docs.touched.contains(&alice_private()));
                proptest::prop_assert!(!docs.touched.contains(&DocId::new("x")));
                if failure(&mut session).is_some() {
                    proptest::prop_assert!(session.is_closed());
                    break;
                }
            }
            // Local edits may have moved Alice's private doc, but never a remote one:
            // every head was made here.
            let private = &docs.docs[&alice_private()];
            for head in private.get_heads() {
                let change = automerge::ReadDoc::get_change_by_hash(private, &head).unwrap();
                proptest::prop_assert_eq!(change.actor_id(), private.get_actor());
            }
        }
    }
}
