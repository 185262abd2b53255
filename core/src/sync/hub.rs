//! Sync with every peer of one device, without IO: [`Hub`].
//!
//! The hub owns one [`Session`] per connection, the [`Policy`] and the roster it was
//! built from, the farewells that carry a pause or a leaving to the partner before a
//! session ends, how full each connection's send queue is, and the outbox: whatever a
//! batch of inputs would send waits there until the driver says the batch is durable
//! ([`Hub::handle_durable`]), so a peer never receives a change this device could
//! still lose.
//!
//! # Driving it
//!
//! As with a [`Session`]: feed inputs through the `handle_*` methods with the current
//! [`Now`], drain [`Hub::poll_output`] until `None` (frames to send, connections to
//! close, sync states to save, events), and arm one timer for [`Hub::poll_timeout`].
//! The hub reads no clock and touches no file or socket; documents come in through
//! [`HubDocs`], the household secret's epochs through [`EpochKeys`].
//!
//! # Who syncs what
//!
//! A session's documents are fixed when it starts: the household for every trusted
//! device, this person's private document for their own devices, and nothing for the
//! other person's devices while this person's pause holds (a *held* session: connected,
//! sharing nothing, so nobody redials in a loop). When the policy changes
//! ([`Hub::handle_policy`]) the sessions that no longer fit are closed, and the peers
//! reconnect into sessions that do. A pause or a leaving first lets the household
//! reach the partner's connected devices (a *farewell*, bounded by
//! [`HubConfig::farewell`]) so they learn of it; a removed device is cut off at once and
//! learns nothing more. Who may connect at all is the transport's business, kept equal
//! to [`Policy::trusts`] by the driver.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use super::{
    encode_frame_as, ApplicationErrorCode, DocAccess, DocId, Message, Policy, Role, Session,
    SessionConfig, SessionError, SessionEvent, SyncLimits, WireForm,
};
use crate::epochs::Epoch;
use crate::identity::DeviceId;
use crate::model::{Millis, PersonId};

/// Identifies one connection for its lifetime; the driver picks them.
pub type ConnId = u64;

/// The one time type of the hub: when an input happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time since an epoch the driver picks once and never moves backwards.
    /// Every timer the hub arms is in it.
    pub mono: Duration,
    /// Unix milliseconds, for what the documents say (when a pause ends) and what the
    /// driver shows (when a document last synced).
    pub wall: Millis,
}

impl Now {
    /// The monotonic time `wall_at` falls on, as seen from this moment.
    fn mono_at(self, wall_at: Millis) -> Duration {
        let ahead = u64::try_from(wall_at.saturating_sub(self.wall)).unwrap_or(0);
        self.mono.saturating_add(Duration::from_millis(ahead))
    }
}

/// One device on the roster, as the hub needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The device.
    pub device: DeviceId,
    /// Its person.
    pub person: PersonId,
    /// Removed from the roster.
    pub removed: bool,
}

impl Member {
    fn trusted_by(&self, policy: &Policy) -> bool {
        !self.removed && policy.trusts_person(self.person)
    }
}

/// The roster's devices as the hub needs them; an entry whose id does not parse is
/// left out, so nobody can connect as it.
pub fn roster_members(docs: &crate::doc::Docs) -> Vec<Member> {
    docs.devices()
        .into_iter()
        .filter_map(|d| {
            Some(Member {
                device: d.id.parse().ok()?,
                person: d.person,
                removed: d.revoked_at.is_some(),
            })
        })
        .collect()
}

/// The documents, as the hub's sessions see them.
pub trait HubDocs: DocAccess {
    /// The household document's heads (empty when there is none).
    fn household_heads(&mut self) -> Vec<ChangeHash>;
}

/// The household secret's epochs, kept by the driver (they are written to disk).
pub trait EpochKeys {
    /// Why an epoch could not be kept.
    type Error: std::fmt::Display;
    /// The epoch this device is on.
    fn current(&self) -> Option<Epoch>;
    /// Adopts `epoch` if it supersedes the current one; true if it did.
    fn adopt(&self, epoch: Epoch) -> Result<bool, Self::Error>;
    /// Moves to a fresh epoch above every known one.
    fn rotate(&self) -> Result<Epoch, Self::Error>;
}

/// Why the hub closes a connection; the driver maps it to its close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseWhy {
    /// The device was removed, or nobody shares with it any more.
    Revoked,
    /// The session no longer fits the policy; the peer reconnects into one that does.
    Replaced,
    /// The session failed or the peer broke the protocol, with the sync error code.
    Sync(ApplicationErrorCode),
}

/// Something the driver must do or may report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum HubOutput {
    /// Write this encoded frame on the connection, after what it already has.
    Send {
        /// The connection.
        conn: ConnId,
        /// One frame ([`encode_frame_as`], in the connection's layout).
        frame: Vec<u8>,
    },
    /// Close the connection, after what it already has to send.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        why: CloseWhy,
    },
    /// Save these sync states for `device` (replacing what was saved), so the next
    /// session with it exchanges heads, not history. Losing them costs a fuller
    /// exchange, never data.
    SaveSyncState {
        /// The peer device.
        device: DeviceId,
        /// Encoded states per document.
        states: Vec<(DocId, Vec<u8>)>,
    },
    /// Something subscribers may want to hear.
    Event(HubEvent),
}

/// What happened with a peer, once the batch it happened in is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// A session with the device is past its handshake.
    PeerUp {
        /// The device.
        device: DeviceId,
    },
    /// The device's last ready session ended.
    PeerDown {
        /// The device.
        device: DeviceId,
    },
    /// A document is in sync with the device.
    SyncCompleted {
        /// The device.
        device: DeviceId,
        /// The document.
        doc: DocId,
    },
    /// A session with the device ended with an error; it was closed with the error's
    /// code, after the error message to the peer.
    SessionFailed {
        /// The device.
        device: DeviceId,
        /// What went wrong.
        error: SessionError,
    },
    /// Whatever a session with the device reported, only with
    /// [`HubConfig::session_events`]: for drivers that watch sessions closely (the
    /// simulator, tests); the events above already say what a daemon needs.
    Session {
        /// The device.
        device: DeviceId,
        /// The session's event.
        event: SessionEvent,
    },
}

/// Sync progress with one peer device, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProgress {
    /// Connected and past the sync handshake.
    pub connected: bool,
    /// Last time a document finished syncing with it.
    pub last_sync: Option<Millis>,
    /// Connected, but no document is shared: this side's pause holds the session, or the
    /// peer answered that the household is not available to us now (its person paused).
    #[serde(default)]
    pub on_hold: bool,
    /// Changes it sent that wait until their author is proven (see
    /// `crate::provenance`), as of the last message.
    #[serde(default)]
    pub held_changes: usize,
    /// Changes it sent that were refused for touching what was not their author's,
    /// counted since the hub started.
    #[serde(default)]
    pub refused_changes: usize,
    /// Why, in plain words and without content.
    #[serde(default)]
    pub refused_because: BTreeSet<String>,
}

/// Frames queued for one connection and not yet written, past which its session
/// generates no new sync message (see [`Session::handle_send_room`]). Kept well under
/// the session's round bound (32 fruitless messages), so that a backlog delivered at
/// once after an outage is never mistaken for a reconciliation going nowhere.
pub const QUEUE_SOFT_FRAMES: usize = 16;
/// Bytes queued for one connection past which its session generates no new sync
/// message. One message per document may still be added beyond it, so the queue holds
/// at most this plus one frame ([`super::MAX_FRAME`]) per shared document.
pub const QUEUE_SOFT_BYTES: usize = 1024 * 1024;
/// Frames queued past which the connection is closed: only a peer that keeps sending
/// while it reads nothing gets here, since sync messages stop at the soft bound.
pub const QUEUE_HARD_FRAMES: usize = 1024;

/// How often, at most, a live session's sync states are saved. They are always saved
/// when the connection ends; this bounds what a crash can lose.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long, at most, a pause or a leaving waits for the household document to reach a
/// connected device of the partner before the session is closed anyway.
pub const FAREWELL: Duration = Duration::from_secs(3);

/// How a hub starts.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// This device.
    pub me: DeviceId,
    /// Bounds for every session.
    pub limits: SyncLimits,
    /// How long a farewell may last ([`FAREWELL`]); `None` closes at once, for a
    /// network where a change of policy reaches every device together (the simulator).
    pub farewell: Option<Duration>,
    /// Also report every session event as [`HubEvent::Session`]. The simulator and tests
    /// watch them; a daemon does not, and saves a copy of each on its busiest path.
    pub session_events: bool,
}

struct Link {
    device: DeviceId,
    session: Session,
    /// The layout this connection's frames use, as its ALPN settled.
    form: WireForm,
    /// Frames and bytes handed to the driver and not yet reported written.
    queued_frames: usize,
    queued_bytes: usize,
    ready: bool,
    last_saved: Option<Duration>,
    /// Its sync states are to be saved once this batch is durable.
    save_due: bool,
    /// The session shares no document because this person's pause holds.
    held: bool,
    /// Waiting for the household document to reach the peer before closing; closed
    /// anyway at the deadline.
    farewell: Option<(Duration, CloseWhy)>,
    /// The farewell began in this batch: the batch's own changes (the pause or the
    /// leaving that began it) still go out on this session, nothing written later does.
    farewell_fresh: bool,
    /// The household's heads when the farewell began, moved on only by what the peer
    /// itself sends. Once the household holds anything else, the session is closed
    /// before it could answer with it.
    farewell_heads: Vec<ChangeHash>,
    /// A close was queued; the connection is going away.
    closing: bool,
    /// Saved sync states of documents this session does not share (while held), kept so
    /// that saving this session's states does not forget them.
    dormant: Vec<(DocId, Vec<u8>)>,
}

impl Link {
    fn has_room(&self) -> bool {
        self.queued_frames < QUEUE_SOFT_FRAMES && self.queued_bytes < QUEUE_SOFT_BYTES
    }

    /// Whether the session still takes input that could make it send.
    fn takes_input(&self) -> bool {
        !self.closing
    }

    fn states(&self) -> Vec<(DocId, Vec<u8>)> {
        let mut states = self.session.persisted_states();
        states.extend(self.dormant.iter().cloned());
        states
    }
}

/// All sync sessions of one device. See the module docs.
pub struct Hub {
    config: HubConfig,
    links: BTreeMap<ConnId, Link>,
    progress: BTreeMap<DeviceId, PeerProgress>,
    policy: Policy,
    members: BTreeMap<DeviceId, Member>,
    /// When this person's pause ends by itself, on the monotonic clock.
    hold_ends: Option<Duration>,
    /// Outputs of the current batch, released once it is durable.
    held: Vec<HubOutput>,
    /// Outputs the driver may carry out now.
    ready: VecDeque<HubOutput>,
    /// Documents a peer changed in this batch.
    remote_changes: BTreeSet<DocId>,
    /// Devices that changed the household in this batch.
    household_senders: BTreeSet<DeviceId>,
    /// Epochs peers sent in this batch (the greatest per connection), judged once the
    /// batch's policy is known.
    epochs_in: Vec<(ConnId, Epoch)>,
}

impl Hub {
    /// A hub with no connection, trusting nobody until [`Hub::handle_policy`].
    pub fn new(config: HubConfig) -> Hub {
        Hub {
            config,
            links: BTreeMap::new(),
            progress: BTreeMap::new(),
            policy: Policy::default(),
            members: BTreeMap::new(),
            hold_ends: None,
            held: Vec::new(),
            ready: VecDeque::new(),
            remote_changes: BTreeSet::new(),
            household_senders: BTreeSet::new(),
            epochs_in: Vec::new(),
        }
    }

    /// The policy sessions start with.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Progress per peer device.
    pub fn progress(&self) -> &BTreeMap<DeviceId, PeerProgress> {
        &self.progress
    }

    /// The documents peers changed since the last call: commit them, and pass each on
    /// with [`Hub::handle_local_change`] once committed.
    pub fn take_remote_changes(&mut self) -> BTreeSet<DocId> {
        std::mem::take(&mut self.remote_changes)
    }

    /// The devices that changed the household since the last call.
    pub fn take_household_senders(&mut self) -> BTreeSet<DeviceId> {
        std::mem::take(&mut self.household_senders)
    }

    /// The next output, if any.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<HubOutput> {
        self.ready.pop_front()
    }

    /// When [`Hub::handle_timeout`] is next due: a session's timer, a farewell running
    /// out or this person's pause ending.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        let sessions = self.links.values().filter_map(|l| l.session.poll_timeout());
        let farewells = self
            .links
            .values()
            .filter_map(|l| l.farewell.map(|(at, _)| at));
        sessions.chain(farewells).chain(self.hold_ends).min()
    }

    /// The encoded sync state of `doc` with `device` in a live session, if there is one.
    pub fn live_state(&self, device: &DeviceId, doc: &DocId) -> Option<Vec<u8>> {
        self.links
            .values()
            .filter(|l| l.device == *device)
            .flat_map(|l| l.session.persisted_states())
            .find(|(id, _)| id == doc)
            .map(|(_, bytes)| bytes)
    }

    /// Takes the policy and roster the documents call for now, and brings every session
    /// in line: a removed device is cut off at once; a device nobody shares with any
    /// more since someone left, and a partner's device when this person's pause begins,
    /// first get a farewell; a held session ends when the pause does.
    pub fn handle_policy<D: HubDocs + ?Sized>(
        &mut self,
        now: Now,
        docs: &mut D,
        policy: Policy,
        members: impl IntoIterator<Item = Member>,
    ) {
        self.hold_ends = policy.hold_ends.map(|end| now.mono_at(end));
        self.policy = policy;
        self.members = members.into_iter().map(|m| (m.device, m)).collect();
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            let Some(link) = self.links.get(&conn).filter(|l| !l.closing) else {
                continue;
            };
            let action = match self.members.get(&link.device) {
                None => Some((false, CloseWhy::Revoked)),
                Some(m) if m.removed => Some((false, CloseWhy::Revoked)),
                Some(m) if !m.trusted_by(&self.policy) => Some((true, CloseWhy::Revoked)),
                Some(m) if m.person != self.policy.me => {
                    match (self.policy.hold_others, link.held) {
                        (true, false) => Some((true, CloseWhy::Replaced)),
                        (false, true) => Some((false, CloseWhy::Replaced)),
                        _ => None,
                    }
                }
                Some(_) => None,
            };
            let Some((farewell, why)) = action else {
                continue;
            };
            let farewell_for = self.config.farewell.filter(|_| farewell && link.ready);
            match farewell_for {
                Some(bound) => {
                    if link.farewell.is_none() {
                        tracing::info!(peer = %link.device, "sharing with this device ends once it has the household document");
                        let heads = docs.household_heads();
                        if let Some(link) = self.links.get_mut(&conn) {
                            link.farewell = Some((now.mono.saturating_add(bound), why));
                            link.farewell_fresh = true;
                            link.farewell_heads = heads;
                        }
                    }
                }
                None => {
                    tracing::info!(peer = %link.device, "closing a session that no longer fits who syncs what");
                    self.close_held(conn, Some(why));
                }
            }
        }
    }

    /// Starts a session for a new connection with `device`, resuming from the sync
    /// states saved for it, and telling it this device's epoch of the household secret.
    /// An initiator's first flight carries its sync messages behind `join`.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_connected<D: HubDocs + ?Sized>(
        &mut self,
        now: Now,
        docs: &mut D,
        conn: ConnId,
        device: DeviceId,
        role: Role,
        form: WireForm,
        saved: Vec<(DocId, Vec<u8>)>,
        epoch: Option<Epoch>,
    ) {
        let Some(member) = self.members.get(&device) else {
            tracing::info!(peer = %device, "closing a connection from a device not on the roster");
            self.ready.push_back(HubOutput::Close {
                conn,
                why: CloseWhy::Sync(ApplicationErrorCode::ProtocolViolation),
            });
            return;
        };
        if !member.trusted_by(&self.policy) {
            // The handshake let it through just before the trust set changed.
            tracing::info!(peer = %device, "closing a connection from a device this one no longer syncs with");
            self.ready.push_back(HubOutput::Close {
                conn,
                why: CloseWhy::Revoked,
            });
            return;
        }
        let allowed = self.policy.docs_for(member.person);
        let held = allowed.is_empty();
        let (persisted, dormant) = saved
            .into_iter()
            .partition(|(doc, _)| allowed.contains(doc));
        let config = SessionConfig {
            local: self.config.me,
            remote: device,
            role,
            allowed_docs: allowed,
            persisted,
            limits: self.config.limits,
            // Only trusted devices get this far (checked just above).
            epoch,
        };
        let mut session = Session::new(config, now.mono);
        session.handle_start(now.mono, docs);
        self.links.insert(
            conn,
            Link {
                device,
                session,
                form,
                queued_frames: 0,
                queued_bytes: 0,
                ready: false,
                last_saved: None,
                save_due: false,
                held,
                farewell: None,
                farewell_fresh: false,
                farewell_heads: Vec::new(),
                closing: false,
                dormant,
            },
        );
        self.drain(now, conn);
    }

    /// Feeds one message from the peer on `conn`.
    pub fn handle_message<D: HubDocs + ?Sized>(
        &mut self,
        now: Now,
        docs: &mut D,
        conn: ConnId,
        message: Message,
    ) {
        if !self.open_for_input(now, docs, conn) {
            return;
        }
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        link.session.handle_message(now.mono, message, docs);
        if link.farewell.is_some() {
            // Whatever changed came from this peer, which has it already.
            link.farewell_heads = docs.household_heads();
        }
        self.drain(now, conn);
    }

    /// The connection ended; its sync states are saved.
    pub fn handle_closed(&mut self, conn: ConnId) {
        let Some(link) = self.links.remove(&conn) else {
            return;
        };
        self.ready.push_back(HubOutput::SaveSyncState {
            device: link.device,
            states: link.states(),
        });
        let still_connected = self
            .links
            .values()
            .any(|l| l.device == link.device && l.ready);
        if link.ready && !still_connected {
            let progress = self.progress.entry(link.device).or_default();
            progress.connected = false;
            progress.on_hold = false;
            self.held.push(HubOutput::Event(HubEvent::PeerDown {
                device: link.device,
            }));
        }
    }

    /// Pushes a committed change of `doc` (written here, or a peer's passed on) to every
    /// peer that may see it.
    pub fn handle_local_change<D: HubDocs + ?Sized>(
        &mut self,
        now: Now,
        docs: &mut D,
        doc: &DocId,
    ) {
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            if !self.open_for_input(now, docs, conn) {
                continue;
            }
            let Some(link) = self.links.get_mut(&conn) else {
                continue;
            };
            // A session in farewell gets nothing written after its farewell began.
            if link.farewell.is_some() && !link.farewell_fresh {
                continue;
            }
            link.session.handle_local_change(now.mono, doc, docs);
            self.drain(now, conn);
        }
    }

    /// The driver wrote `frames` frames of `bytes` bytes in all from `conn`'s queue:
    /// the session may send again, and whatever waited for room goes out.
    pub fn handle_sent<D: HubDocs + ?Sized>(
        &mut self,
        now: Now,
        docs: &mut D,
        conn: ConnId,
        frames: usize,
        bytes: usize,
    ) {
        if let Some(link) = self.links.get_mut(&conn) {
            link.queued_frames = link.queued_frames.saturating_sub(frames);
            link.queued_bytes = link.queued_bytes.saturating_sub(bytes);
        }
        if self.open_for_input(now, docs, conn) {
            self.drain(now, conn);
        }
    }

    /// Fires what is due at `now`: sessions' timers, farewells that ran out, and the end
    /// of this person's pause, by the monotonic deadline or the wall clock, whichever
    /// says so first (the driver then hands in the policy it calls for, through
    /// [`Hub::handle_policy`]; until then the hub keeps the old one, arms no timer for
    /// it, and says `pause_ended` on every call).
    pub fn handle_timeout<D: HubDocs + ?Sized>(
        &mut self,
        now: Now,
        docs: &mut D,
    ) -> TimeoutOutcome {
        let pause_ended = self.hold_ends.is_some_and(|at| at <= now.mono)
            || self.policy.hold_ends.is_some_and(|end| end <= now.wall);
        if pause_ended {
            self.hold_ends = None;
        }
        let overdue: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.farewell.is_some_and(|(at, _)| at <= now.mono))
            .map(|(c, _)| *c)
            .collect();
        for conn in overdue {
            self.close_held(conn, None);
        }
        let due: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.session.poll_timeout().is_some_and(|t| t <= now.mono))
            .map(|(c, _)| *c)
            .collect();
        for conn in due {
            if !self.open_for_input(now, docs, conn) {
                continue;
            }
            let Some(link) = self.links.get_mut(&conn) else {
                continue;
            };
            link.session.handle_timeout(now.mono, docs);
            self.drain(now, conn);
        }
        TimeoutOutcome { pause_ended }
    }

    /// Settles the household secret at the end of a batch, after
    /// [`Hub::handle_policy`]: adopts the greatest epoch a still-trusted peer sent (see
    /// [`crate::epochs`]), then, if `rotate` (this device stopped trusting some device
    /// in this batch), moves to a fresh epoch above it. When the epoch changed, it goes
    /// to every connected device this one still trusts, and to none in a farewell or on
    /// its way out. Returns false when a rotation could not be kept.
    pub fn settle_epochs<K: EpochKeys + ?Sized>(
        &mut self,
        now: Now,
        keys: &K,
        rotate: bool,
    ) -> bool {
        let received = std::mem::take(&mut self.epochs_in);
        let mut changed = false;
        let mut from = None;
        for (conn, epoch) in received {
            let Some(link) = self.links.get(&conn) else {
                continue;
            };
            if !self.shares_epochs(link) {
                tracing::info!(peer = %link.device, "ignored a household secret epoch from a device this one no longer shares with");
                continue;
            }
            let number = epoch.number;
            match keys.adopt(epoch) {
                Ok(true) => {
                    tracing::info!(
                        epoch = number,
                        "moved to the household's newer secret epoch"
                    );
                    changed = true;
                    from = Some(conn);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not save the household's newer secret epoch")
                }
            }
        }
        let mut kept = true;
        if rotate {
            match keys.rotate() {
                Ok(epoch) => {
                    tracing::info!(epoch = epoch.number, "moved the household secret to a new epoch, shared only with the devices this one still trusts");
                    changed = true;
                    from = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not move the household secret to a new epoch; trying again with the next change");
                    kept = false;
                }
            }
        }
        if let Some(current) = keys.current().filter(|_| changed) {
            // Not back to the device it came from, which has it already.
            let conns: Vec<ConnId> = self
                .links
                .iter()
                .filter(|(conn, link)| Some(**conn) != from && self.shares_epochs(link))
                .map(|(conn, _)| *conn)
                .collect();
            for conn in conns {
                if let Some(link) = self.links.get_mut(&conn) {
                    link.session.send_epoch(current.clone());
                }
                self.drain(now, conn);
            }
        }
        kept
    }

    /// The batch is durable: everything it would send goes out, and the sync states due
    /// are saved (after the frames, so a state file never delays a peer, and never names
    /// heads this device could still lose).
    pub fn handle_durable(&mut self) {
        for link in self.links.values_mut() {
            link.farewell_fresh = false;
        }
        self.ready.extend(self.held.drain(..));
        for link in self.links.values_mut() {
            if std::mem::take(&mut link.save_due) {
                self.ready.push_back(HubOutput::SaveSyncState {
                    device: link.device,
                    states: link.states(),
                });
            }
        }
    }

    /// The batch could not be made durable and was rolled back: drops what it would
    /// have sent and closes every connection, since the sessions' view of the documents
    /// is stale. The peers reconnect and resync from what is on disk.
    pub fn handle_rollback(&mut self) {
        self.held.clear();
        self.remote_changes.clear();
        self.household_senders.clear();
        for (conn, link) in &mut self.links {
            // Their states may name heads that were just rolled back.
            link.save_due = false;
            link.closing = true;
            self.ready.push_back(HubOutput::Close {
                conn: *conn,
                why: CloseWhy::Sync(ApplicationErrorCode::RemoteError),
            });
        }
    }

    /// The driver is stopping: every live session's sync states are to be saved.
    pub fn handle_shutdown(&mut self) {
        for link in self.links.values() {
            self.ready.push_back(HubOutput::SaveSyncState {
                device: link.device,
                states: link.states(),
            });
        }
    }

    /// Whether epochs go to and come from this link: its device is on the roster and
    /// trusted, and the session is neither closing nor in a farewell.
    fn shares_epochs(&self, link: &Link) -> bool {
        !link.closing
            && link.farewell.is_none()
            && self
                .members
                .get(&link.device)
                .is_some_and(|m| m.trusted_by(&self.policy))
    }

    /// Whether `conn` still takes input (not closing, its farewell not outgrown); if
    /// so, its session is told whether the queue has room.
    fn open_for_input<D: HubDocs + ?Sized>(
        &mut self,
        now: Now,
        docs: &mut D,
        conn: ConnId,
    ) -> bool {
        if self.farewell_outgrown(docs, conn) {
            return false;
        }
        let Some(link) = self.links.get_mut(&conn).filter(|l| l.takes_input()) else {
            return false;
        };
        let room = link.has_room();
        link.session.handle_send_room(now.mono, room, docs);
        true
    }

    /// Closes a session in farewell as soon as the household holds something written
    /// after the farewell began (here, or relayed from another peer), before the session
    /// could send it: a farewell carries the pause or the leaving, nothing newer.
    /// Returns whether the session is closing.
    fn farewell_outgrown<D: HubDocs + ?Sized>(&mut self, docs: &mut D, conn: ConnId) -> bool {
        let Some(link) = self.links.get(&conn) else {
            return false;
        };
        if link.closing {
            return true;
        }
        if link.farewell.is_none() || link.farewell_fresh {
            return false;
        }
        if docs.household_heads() == link.farewell_heads {
            return false;
        }
        tracing::debug!(peer = %link.device, "ending a farewell early: the household moved on");
        self.close_held(conn, None);
        true
    }

    /// Queues a close of one connection with this batch, after whatever it already has
    /// to send; `None` takes the farewell's reason.
    fn close_held(&mut self, conn: ConnId, why: Option<CloseWhy>) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        let Some(why) = why.or(link.farewell.map(|(_, w)| w)) else {
            return;
        };
        link.farewell = None;
        link.closing = true;
        self.held.push(HubOutput::Close { conn, why });
    }

    /// Moves a session's messages into the outbox and handles its events.
    fn drain(&mut self, now: Now, conn: ConnId) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        let device = link.device;
        let mut overflow = false;
        while let Some(message) = link.session.poll_transmit() {
            let frame = match encode_frame_as(&message, link.form) {
                Ok(frame) => frame,
                Err(e) => {
                    tracing::warn!(error = %e, "could not encode a sync message");
                    continue;
                }
            };
            link.queued_frames += 1;
            link.queued_bytes += frame.len();
            if link.queued_frames > QUEUE_HARD_FRAMES {
                overflow = true;
                break;
            }
            self.held.push(HubOutput::Send { conn, frame });
        }
        if overflow {
            tracing::info!(peer = %link.device, "closing a link: the peer keeps sending but reads nothing");
            link.closing = true;
            link.farewell = None;
            self.held.push(HubOutput::Close {
                conn,
                why: CloseWhy::Sync(ApplicationErrorCode::ProtocolViolation),
            });
            return;
        }
        let mut save = false;
        let mut farewell_done = None;
        let mut failed = None;
        while let Some(event) = link.session.poll_event() {
            if self.config.session_events {
                self.held.push(HubOutput::Event(HubEvent::Session {
                    device,
                    event: event.clone(),
                }));
            }
            match event {
                SessionEvent::PeerReady => {
                    link.ready = true;
                    let progress = self.progress.entry(device).or_default();
                    progress.connected = true;
                    progress.on_hold = link.held;
                    self.held
                        .push(HubOutput::Event(HubEvent::PeerUp { device }));
                }
                SessionEvent::DocChanged { doc } => {
                    if doc == DocId::household() {
                        self.household_senders.insert(device);
                    }
                    self.remote_changes.insert(doc);
                }
                SessionEvent::SyncCompleted { doc } => {
                    let progress = self.progress.entry(device).or_default();
                    progress.last_sync = Some(now.wall);
                    if doc == DocId::household() {
                        progress.on_hold = false;
                        // The household document, with whatever began the farewell, has
                        // reached the peer: now the session can end.
                        if let Some((_, why)) = link.farewell.take() {
                            link.closing = true;
                            farewell_done = Some(why);
                        }
                    }
                    self.held
                        .push(HubOutput::Event(HubEvent::SyncCompleted { device, doc }));
                    save = link
                        .last_saved
                        .is_none_or(|t| now.mono.saturating_sub(t) >= SAVE_INTERVAL);
                }
                // Only another person's device withholds the household: its person has
                // paused sharing, whether or not we have heard of it yet.
                SessionEvent::DocUnavailable { doc } if doc == DocId::household() => {
                    self.progress.entry(device).or_default().on_hold = true;
                }
                SessionEvent::Failed { error } => {
                    tracing::info!(error = %error, "a sync session ended with an error");
                    failed = Some(error);
                }
                SessionEvent::ReconciliationAborted { reason, .. } => {
                    tracing::info!(peer = %device, ?reason, "a reconciliation was given up; it resumes when either side has something new");
                }
                SessionEvent::ChangesNotApplied { doc, admission } => {
                    let progress = self.progress.entry(device).or_default();
                    progress.held_changes = admission.held;
                    progress.refused_changes += admission.refused;
                    for why in &admission.refused_because {
                        if progress.refused_because.len() < 8 {
                            progress.refused_because.insert(why.clone());
                        }
                    }
                    if admission.refused > 0 {
                        tracing::warn!(peer = %device, doc = %doc, refused = admission.refused, reasons = ?admission.refused_because, "refused changes that touch what is not their author's");
                    }
                    if admission.held > 0 {
                        tracing::info!(peer = %device, doc = %doc, held = admission.held, reasons = ?admission.held_because, "holding changes until their author is proven");
                    }
                }
                // Judged at the end of the batch, against the policy it ends with. Only
                // the greatest one per connection is kept, so a peer that floods them
                // only replaces its own and never crowds out another peer's.
                SessionEvent::Epoch { epoch } => {
                    match self.epochs_in.iter_mut().find(|(c, _)| *c == conn) {
                        Some((_, kept)) => {
                            if epoch.supersedes(kept) {
                                *kept = epoch;
                            }
                        }
                        None => self.epochs_in.push((conn, epoch)),
                    }
                }
                _ => {}
            }
        }
        if save {
            link.last_saved = Some(now.mono);
            link.save_due = true;
        }
        if let Some(why) = farewell_done {
            self.held.push(HubOutput::Close { conn, why });
        }
        if let Some(error) = failed {
            let why = CloseWhy::Sync(error.code());
            self.held
                .push(HubOutput::Event(HubEvent::SessionFailed { device, error }));
            self.close_held(conn, Some(why));
        }
    }
}

/// What [`Hub::handle_timeout`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct TimeoutOutcome {
    /// This person's pause ran out: hand in the policy the documents call for now.
    pub pause_ended: bool,
}

/// The heads two devices last shared, from an encoded sync state; `None` when the
/// state does not decode or names none.
pub fn shared_heads(state: &[u8]) -> Option<Vec<ChangeHash>> {
    let state = automerge::sync::State::decode(state).ok()?;
    Some(state.shared_heads).filter(|heads| !heads.is_empty())
}

#[cfg(test)]
mod tests;
