//! The document owner's side of sync: one [`Session`] per connected peer, driven with
//! the documents the owner holds, and the [`Policy`] that says who syncs what.
//!
//! The network tasks in [`crate::net`] only move frames; every session input and output
//! happens here, on the owner's thread, so the sessions can touch the documents without
//! locks. Outgoing messages are held until the batch they came from has been committed,
//! so a peer never receives a change this device could still lose.
//!
//! **Who syncs what.** A session's documents are fixed when it starts: the household for
//! every trusted device, this person's private document for their own devices, and
//! nothing for the other person's devices while this person's pause holds (a *held*
//! session: connected, but sharing no document, so nobody redials in a loop). When the
//! policy changes (a pause, a resume, a pause running out, someone leaving, a removal),
//! [`SyncHub::enforce`] closes the sessions that no longer fit; the peers reconnect into
//! sessions that do. A pause or a leaving first lets the household document reach the
//! partner's connected devices (a *farewell*, bounded by [`FAREWELL`]), so they learn of
//! it; a removed device is cut off at once and learns nothing more.
//!
//! This module does not decide who may connect at all: the transport's trust set does
//! that at the handshake, kept equal to [`Policy::trusts`] by the owner.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::Automerge;
use hearth_core::doc::Docs;
use hearth_core::identity::DeviceId;
use hearth_core::model::{Device, Millis};
use hearth_core::provenance::{Admission, ProofError};
use hearth_core::sync::{
    encode_frame, DocAccess, DocId, Message, Role, Session, SessionConfig, SessionEvent, SyncLimits,
};
use ring::signature::Ed25519KeyPair;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use hearth_core::epochs::Epoch;

pub use hearth_core::sync::policy::{trusted_devices, Policy};

use crate::epochs::HouseholdKeys;
use crate::storage::{self, DataDir};
use hearth_api::Event;

/// Identifies one network connection for its lifetime.
pub type ConnId = u64;

/// What the owner tells a connection's writer to do.
#[derive(Debug)]
pub enum Outbound {
    /// Write this encoded frame.
    Frame(Vec<u8>),
    /// Close the connection with this application error code.
    Close(u32),
}

/// Frames queued for one connection and not yet taken by QUIC, past which its session
/// generates no new sync message (see [`Session::handle_send_room`]). Kept well under
/// the session's round bound (32 fruitless messages), so that a backlog delivered at
/// once after an outage is never mistaken for a reconciliation going nowhere.
pub const QUEUE_SOFT_FRAMES: usize = 16;
/// Bytes queued for one connection past which its session generates no new sync
/// message. One message per document may still be added beyond it, so the queue holds
/// at most this plus one frame ([`hearth_core::sync::MAX_FRAME`]) per shared document.
pub const QUEUE_SOFT_BYTES: usize = 1024 * 1024;
/// Frames queued past which the connection is closed: only a peer that keeps sending
/// while it reads nothing gets here, since sync messages stop at the soft bound.
pub const QUEUE_HARD_FRAMES: usize = 1024;

/// The outbound queue of one connection, filled by the owner and drained by the
/// connection's writer task. Only its size is shared; the frames travel on a channel.
#[derive(Debug, Default)]
pub struct SendQueue {
    frames: AtomicUsize,
    bytes: AtomicUsize,
    /// The owner found the queue full and waits to hear that it drained.
    wants_room: AtomicBool,
}

impl SendQueue {
    fn push(&self, len: usize) -> usize {
        self.bytes.fetch_add(len, Ordering::AcqRel);
        self.frames.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The writer handed one frame of `len` bytes to QUIC. Returns whether the owner
    /// is waiting for room and the queue is now empty: then the writer tells it so.
    pub fn sent(&self, len: usize) -> bool {
        self.bytes.fetch_sub(len, Ordering::AcqRel);
        let left = self.frames.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        left == 0 && self.wants_room.swap(false, Ordering::AcqRel)
    }

    fn below_soft_bound(&self) -> bool {
        self.frames.load(Ordering::Acquire) < QUEUE_SOFT_FRAMES
            && self.bytes.load(Ordering::Acquire) < QUEUE_SOFT_BYTES
    }

    /// Whether the owner may generate more sync messages. When not, the writer is
    /// asked to report once the queue drains; the second look closes the race with a
    /// writer that drained it in between.
    fn has_room(&self) -> bool {
        if self.below_soft_bound() {
            return true;
        }
        self.wants_room.store(true, Ordering::Release);
        if self.below_soft_bound() {
            self.wants_room.store(false, Ordering::Release);
            return true;
        }
        false
    }
}

/// Sync progress with one peer device, for `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    /// `hearth_core::provenance`), as of the last message.
    #[serde(default)]
    pub held_changes: usize,
    /// Changes it sent that were refused for touching what was not their author's,
    /// counted since this daemon started.
    #[serde(default)]
    pub refused_changes: usize,
    /// Why, in plain words and without content.
    #[serde(default)]
    pub refused_because: BTreeSet<String>,
}

/// How long, at most, a pause or a leaving waits for the household document to reach a
/// connected device of the partner before the session is closed anyway.
pub const FAREWELL: Duration = Duration::from_secs(3);

struct Link {
    device: DeviceId,
    session: Session,
    out: mpsc::UnboundedSender<Outbound>,
    /// How full the writer's queue is; the channel `out` itself is unbounded, and this
    /// is what bounds it.
    queue: Arc<SendQueue>,
    ready: bool,
    last_saved: Option<Instant>,
    /// Its sync states are to be saved once this batch's frames are out.
    save_due: bool,
    /// The session shares no document because this person's pause holds.
    held: bool,
    /// Waiting for the household document to reach the peer before closing with this
    /// code; closed anyway at the deadline.
    farewell: Option<(Instant, u32)>,
    /// The farewell began in this batch: the batch's own changes (the pause or the
    /// leaving that began it) still go out on this session, nothing written later does.
    farewell_fresh: bool,
    /// The household's heads when the farewell began, moved on only by what the peer
    /// itself sends. Once the household holds anything else, the session is closed
    /// before it could answer with it.
    farewell_heads: Vec<automerge::ChangeHash>,
    /// A close was sent; the connection is going away.
    closing: bool,
    /// Saved sync states of documents this session does not share (while held), kept so
    /// that saving this session's states does not forget them.
    dormant: Vec<(DocId, Vec<u8>)>,
}

/// Where the owner's time goes while it syncs: cumulative since start, logged at debug
/// level under the target `hearth_phases` whenever a household reconciliation
/// completes, so `hearth-bench sync` can split a catch-up into its phases. Only counts
/// and durations, never contents. The owner is one thread, so a thread-local suffices.
pub mod phases {
    use std::cell::RefCell;
    use std::time::{Duration, Instant};

    /// One phase's total time and how often it ran.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Phase {
        /// Wall-clock time, fsync waits included.
        pub time: Duration,
        /// The owner thread's CPU time, which other work on the machine does not inflate.
        pub cpu: Duration,
        pub count: u64,
    }

    /// This thread's CPU time so far.
    pub fn thread_cpu() -> Duration {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    }

    /// The phases of sync work on the owner's thread.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Phases {
        /// Whole session calls (messages in, local changes, room, timers): Automerge's
        /// generate and receive, plus everything below that happens inside them.
        pub session: Phase,
        /// Checking and applying received changes (`Docs::admit`): decode, prove, the
        /// authorship rules, Automerge's apply.
        pub admit: Phase,
        /// Signed heads to send with our changes (`Docs::proofs_to_send`).
        pub proofs_out: Phase,
        /// Signed heads the peer sent (`Docs::offer_proofs`), with their verification.
        pub proofs_in: Phase,
        /// Sync-state files written (seal, temp file, fsync, rename).
        pub save_states: Phase,
        /// Chunk commits of the owner's batches (seal, write, fsync).
        pub commit: Phase,
        /// Compactions after a batch (zero-count: only their time).
        pub compact: Phase,
        /// Whole owner batches.
        pub batch: Phase,
        /// Frames encoded for peers, and their bytes in `count`.
        pub encode: Phase,
        /// Changes applied from peers.
        pub applied: u64,
        /// A household reconciliation completed in this batch: log at its end.
        pub report: bool,
    }

    thread_local! {
        static PHASES: RefCell<Phases> = RefCell::new(Phases::default());
    }

    /// Runs `f`, adding its time to the phase `pick` chooses.
    pub fn time<T>(pick: fn(&mut Phases) -> &mut Phase, f: impl FnOnce() -> T) -> T {
        let clock = Clock::start();
        let out = f();
        clock.stop(pick, 1);
        out
    }

    /// A phase being timed.
    pub struct Clock {
        wall: Instant,
        cpu: Duration,
    }

    impl Clock {
        /// Starts timing.
        pub fn start() -> Clock {
            Clock {
                wall: Instant::now(),
                cpu: thread_cpu(),
            }
        }

        /// Adds the time since [`Clock::start`], and `count`, to a phase.
        pub fn stop(self, pick: fn(&mut Phases) -> &mut Phase, count: u64) {
            let wall = self.wall.elapsed();
            let cpu = thread_cpu().saturating_sub(self.cpu);
            PHASES.with(|p| {
                let mut p = p.borrow_mut();
                let phase = pick(&mut p);
                phase.time += wall;
                phase.cpu += cpu;
                phase.count += count;
            });
        }
    }

    /// Changes all other fields.
    pub fn update(f: impl FnOnce(&mut Phases)) {
        PHASES.with(|p| f(&mut p.borrow_mut()));
    }

    /// Logs the totals if a household reconciliation completed since the last call.
    pub fn report_if_due() {
        let due = PHASES.with(|p| std::mem::take(&mut p.borrow_mut().report));
        if !due {
            return;
        }
        let p = PHASES.with(|p| *p.borrow());
        let ms = |ph: Phase| ph.time.as_secs_f64() * 1e3;
        let cpu = |ph: Phase| ph.cpu.as_secs_f64() * 1e3;
        tracing::debug!(
            target: "hearth_phases",
            session_ms = ms(p.session),
            session_cpu_ms = cpu(p.session),
            session_calls = p.session.count,
            admit_ms = ms(p.admit),
            admit_cpu_ms = cpu(p.admit),
            applied = p.applied,
            proofs_out_cpu_ms = cpu(p.proofs_out),
            proofs_in_cpu_ms = cpu(p.proofs_in),
            save_states_ms = ms(p.save_states),
            save_states_cpu_ms = cpu(p.save_states),
            save_states = p.save_states.count,
            commit_ms = ms(p.commit),
            commit_cpu_ms = cpu(p.commit),
            commits = p.commit.count,
            compact_ms = ms(p.compact),
            compact_cpu_ms = cpu(p.compact),
            batch_ms = ms(p.batch),
            batch_cpu_ms = cpu(p.batch),
            batches = p.batch.count,
            encode_cpu_ms = cpu(p.encode),
            bytes_out = p.encode.count,
            thread_cpu_ms = thread_cpu().as_secs_f64() * 1e3,
            "sync phases"
        );
    }
}

/// Gives sessions the owner's documents, and checks what peers send before it is
/// applied.
struct DocsAccess<'a>(&'a mut Docs, &'a Ed25519KeyPair);

impl DocAccess for DocsAccess<'_> {
    fn doc_mut(&mut self, id: &DocId) -> Option<&mut Automerge> {
        self.0.by_id_mut(id.as_str()).map(|d| d.automerge_mut())
    }

    fn admit(
        &mut self,
        id: &DocId,
        changes: &automerge::sync::ChunkList,
    ) -> Option<Result<Admission, hearth_core::doc::DocError>> {
        if crate::handlers::rogue::relays_unchecked() {
            return None;
        }
        let chunks: Vec<&[u8]> = changes.iter().collect();
        let result = phases::time(|p| &mut p.admit, || self.0.admit(id.as_str(), &chunks));
        if let Ok(admission) = &result {
            let applied = admission.applied as u64;
            phases::update(|p| p.applied += applied);
        }
        Some(result)
    }

    fn has_seen(&mut self, id: &DocId, hash: &automerge::ChangeHash) -> bool {
        self.0.has_seen(id.as_str(), hash)
    }

    fn proofs(&mut self, id: &DocId) -> Vec<Vec<u8>> {
        phases::time(
            |p| &mut p.proofs_out,
            || self.0.proofs_to_send(id.as_str(), Some(self.1)),
        )
    }

    fn offer_proofs(&mut self, id: &DocId, proofs: &[Vec<u8>]) -> Result<Admission, ProofError> {
        phases::time(
            |p| &mut p.proofs_in,
            || self.0.offer_proofs(id.as_str(), proofs),
        )
    }
}

/// How often, at most, a live session's sync states are written to disk. They are
/// always written when the connection ends; this bounds what a crash can lose.
const SAVE_INTERVAL: Duration = Duration::from_secs(30);

/// All sessions of this device.
pub struct SyncHub {
    epoch: Instant,
    me: DeviceId,
    data_dir: DataDir,
    identity: age::x25519::Identity,
    links: BTreeMap<ConnId, Link>,
    progress: BTreeMap<String, PeerProgress>,
    held: Vec<(ConnId, Outbound)>,
    /// Documents a peer changed in this batch, to commit and announce.
    pub remote_changes: BTreeSet<String>,
    /// Devices that changed the household document in this batch, to credit what the
    /// roster refuses to the one who sent it.
    pub household_senders: BTreeSet<String>,
    /// Events to publish once the batch is durable.
    pub events: Vec<Event>,
    limits: SyncLimits,
    policy: Policy,
    /// This device's key, which signs the heads sent with its changes.
    signer: Arc<Ed25519KeyPair>,
    /// The household secret's epochs.
    keys: Arc<HouseholdKeys>,
    /// Epochs peers sent in this batch (the greatest per connection), judged once the
    /// batch's policy is known.
    epochs_in: Vec<(ConnId, Epoch)>,
}

#[derive(Serialize, Deserialize, Default)]
struct SavedStates {
    states: BTreeMap<String, String>,
}

impl SyncHub {
    /// An empty hub.
    pub fn new(
        me: DeviceId,
        data_dir: DataDir,
        identity: age::x25519::Identity,
        signer: Arc<Ed25519KeyPair>,
        keys: Arc<HouseholdKeys>,
    ) -> SyncHub {
        SyncHub {
            epoch: Instant::now(),
            me,
            data_dir,
            identity,
            links: BTreeMap::new(),
            progress: BTreeMap::new(),
            held: Vec::new(),
            remote_changes: BTreeSet::new(),
            household_senders: BTreeSet::new(),
            events: Vec::new(),
            limits: SyncLimits::default(),
            policy: Policy::default(),
            signer,
            keys,
            epochs_in: Vec::new(),
        }
    }

    /// The household secret's epochs.
    pub fn household_keys(&self) -> Arc<HouseholdKeys> {
        self.keys.clone()
    }

    /// Settles the household secret at the end of a batch, after [`Self::enforce`]:
    /// adopts the greatest epoch a still-trusted peer sent (see
    /// [`hearth_core::epochs`]), then, if `rotate` (this device stopped trusting some
    /// device in this batch), moves to a fresh epoch above it. When the epoch changed,
    /// it goes to every connected device this one still trusts, and to none in a
    /// farewell or on its way out. Returns false when a rotation could not be written.
    pub fn settle_epochs(&mut self, docs: &Docs, rotate: bool) -> bool {
        let received = std::mem::take(&mut self.epochs_in);
        let mut changed = false;
        let mut from = None;
        for (conn, epoch) in received {
            let Some(link) = self.links.get(&conn) else {
                continue;
            };
            if !self.shares_epochs(docs, link) {
                tracing::info!(peer = %link.device, "ignored a household secret epoch from a device this one no longer shares with");
                continue;
            }
            let number = epoch.number;
            match self.keys.adopt(epoch) {
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
        let mut written = true;
        if rotate {
            match self.keys.rotate() {
                Ok(epoch) => {
                    tracing::info!(epoch = epoch.number, "moved the household secret to a new epoch, shared only with the devices this one still trusts");
                    changed = true;
                    from = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not move the household secret to a new epoch; trying again with the next change");
                    written = false;
                }
            }
        }
        if changed {
            if let Some(current) = self.keys.current() {
                // Not back to the device it came from, which has it already.
                let conns: Vec<ConnId> = self
                    .links
                    .iter()
                    .filter(|(conn, link)| Some(**conn) != from && self.shares_epochs(docs, link))
                    .map(|(conn, _)| *conn)
                    .collect();
                for conn in conns {
                    if let Some(link) = self.links.get_mut(&conn) {
                        link.session.send_epoch(current.clone());
                    }
                    self.drain(conn);
                }
            }
        }
        written
    }

    /// Whether epochs go to and come from this link: its device is on the roster and
    /// trusted, and the session is neither closing nor in a farewell.
    fn shares_epochs(&self, docs: &Docs, link: &Link) -> bool {
        !link.closing
            && link.farewell.is_none()
            && docs
                .devices()
                .iter()
                .any(|d| d.id == link.device.to_string() && self.policy.trusts(d))
    }

    /// The policy sessions are started with.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Progress per peer device id.
    pub fn progress(&self) -> &BTreeMap<String, PeerProgress> {
        &self.progress
    }

    /// Starts a session for a new connection with `device`.
    pub fn connected(
        &mut self,
        docs: &mut Docs,
        conn: ConnId,
        device: DeviceId,
        role: Role,
        out: mpsc::UnboundedSender<Outbound>,
        queue: Arc<SendQueue>,
    ) {
        let roster = docs.devices();
        let Some(entry) = roster.iter().find(|d| d.id == device.to_string()) else {
            tracing::info!(peer = %device, "closing a connection from a device not on the roster");
            let _ = out.send(Outbound::Close(
                hearth_core::sync::ApplicationErrorCode::ProtocolViolation.as_u32(),
            ));
            return;
        };
        if !self.policy.trusts(entry) {
            // The handshake let it through just before the trust set changed.
            tracing::info!(peer = %device, "closing a connection from a device this one no longer syncs with");
            let _ = out.send(Outbound::Close(revoked_code()));
            return;
        }
        let allowed = self.policy.allowed_docs(entry);
        let held = allowed.is_empty();
        let (persisted, dormant) = self
            .load_states(&device)
            .into_iter()
            .partition(|(doc, _)| allowed.contains(doc));
        let config = SessionConfig {
            local: self.me,
            remote: device,
            role,
            allowed_docs: allowed,
            persisted,
            limits: self.limits,
            // Only trusted devices get this far (checked just above).
            epoch: self.keys.current(),
        };
        let session = Session::new(config, self.now());
        self.links.insert(
            conn,
            Link {
                device,
                session,
                out,
                queue,
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
        self.drain(conn);
    }

    /// Feeds one message from a peer.
    pub fn message(&mut self, docs: &mut Docs, conn: ConnId, message: Message) {
        let signer = self.signer.clone();
        let now = self.now();
        let Some(link) = self.open_link(docs, conn, now) else {
            return;
        };
        let result = phases::time(
            |p| &mut p.session,
            || {
                link.session
                    .handle_message(now, message, &mut DocsAccess(docs, &signer))
            },
        );
        if link.farewell.is_some() {
            // Whatever changed came from this peer, which has it already.
            link.farewell_heads = docs.household.heads();
        }
        self.drain(conn);
        if let Err(e) = result {
            tracing::info!(error = %e, "a sync session ended with an error");
            self.held.push((conn, Outbound::Close(e.code().as_u32())));
        }
    }

    /// A connection ended.
    pub fn closed(&mut self, conn: ConnId) {
        if let Some(link) = self.links.remove(&conn) {
            self.save_states(&link);
            let device = link.device.to_string();
            let still_connected = self
                .links
                .values()
                .any(|l| l.device.to_string() == device && l.ready);
            if link.ready && !still_connected {
                let progress = self.progress.entry(device.clone()).or_default();
                progress.connected = false;
                progress.on_hold = false;
                self.events.push(Event::PeerDown { device });
            }
        }
    }

    /// Pushes a committed local change of `doc` to every peer that may see it.
    pub fn local_change(&mut self, docs: &mut Docs, doc: &str) {
        let signer = self.signer.clone();
        let now = self.now();
        let doc_id = DocId::new(doc);
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            if self.farewell_outgrown(docs, conn) {
                continue;
            }
            if let Some(link) = self.links.get_mut(&conn) {
                // A session on its way out gets nothing written after its farewell began.
                if link.closing || (link.farewell.is_some() && !link.farewell_fresh) {
                    continue;
                }
                refresh_room(link, now, docs, &signer);
                let result = phases::time(
                    |p| &mut p.session,
                    || {
                        link.session.handle_local_change(
                            now,
                            &doc_id,
                            &mut DocsAccess(docs, &signer),
                        )
                    },
                );
                if let Err(e) = result {
                    self.held.push((conn, Outbound::Close(e.code().as_u32())));
                }
            }
            self.drain(conn);
        }
    }

    /// A connection's writer drained its queue: the session may send again, and
    /// whatever waited for room goes out as one message per document.
    pub fn send_room(&mut self, docs: &mut Docs, conn: ConnId) {
        let now = self.now();
        if self.open_link(docs, conn, now).is_some() {
            self.drain(conn);
        }
    }

    /// The link of `conn` if it still takes input (not closing, no farewell outgrown),
    /// with its session told whether its writer has room.
    fn open_link(&mut self, docs: &mut Docs, conn: ConnId, now: Duration) -> Option<&mut Link> {
        let signer = self.signer.clone();
        if self.farewell_outgrown(docs, conn) {
            return None;
        }
        let link = self.links.get_mut(&conn).filter(|l| !l.closing)?;
        refresh_room(link, now, docs, &signer);
        Some(link)
    }

    /// Fires due timers: sessions', farewells that ran out, and the end of a pause.
    pub fn tick(&mut self, docs: &mut Docs) {
        let signer = self.signer.clone();
        let wall = crate::actor::now_millis();
        if self.policy.hold_ends.is_some_and(|end| end <= wall) {
            self.enforce(docs, wall);
        }
        let instant = Instant::now();
        let overdue: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.farewell.is_some_and(|(at, _)| at <= instant))
            .map(|(c, _)| *c)
            .collect();
        for conn in overdue {
            self.close_now(conn, None);
        }
        let now = self.now();
        let due: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.session.poll_timeout().is_some_and(|t| t <= now))
            .map(|(c, _)| *c)
            .collect();
        for conn in due {
            if self.farewell_outgrown(docs, conn) {
                continue;
            }
            if let Some(link) = self.links.get_mut(&conn) {
                if link.closing {
                    continue;
                }
                refresh_room(link, now, docs, &signer);
                if let Err(e) = link
                    .session
                    .handle_timeout(now, &mut DocsAccess(docs, &signer))
                {
                    tracing::info!(error = %e, "a sync session timed out");
                    self.held.push((conn, Outbound::Close(e.code().as_u32())));
                }
            }
            self.drain(conn);
        }
    }

    /// When the next timer is due, as an instant.
    pub fn next_deadline(&self) -> Option<Instant> {
        let sessions = self
            .links
            .values()
            .filter_map(|l| l.session.poll_timeout())
            .min()
            .map(|d| self.epoch + d);
        let farewells = self
            .links
            .values()
            .filter_map(|l| l.farewell.map(|(at, _)| at))
            .min();
        let pause_end = self.policy.hold_ends.map(|end| {
            let left = end.saturating_sub(crate::actor::now_millis()).max(0);
            Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(0))
        });
        [sessions, farewells, pause_end].into_iter().flatten().min()
    }

    /// Sends everything held back in this batch, now that it is durable.
    pub fn release(&mut self) {
        for link in self.links.values_mut() {
            link.farewell_fresh = false;
        }
        for (conn, out) in self.held.drain(..) {
            if let Some(link) = self.links.get(&conn) {
                let _ = link.out.send(out);
            }
        }
        for link in self.links.values() {
            if link.save_due {
                self.save_states(link);
            }
        }
        for link in self.links.values_mut() {
            link.save_due = false;
        }
    }

    /// Drops what this batch would have sent and closes every connection: a commit
    /// failed, so the documents were rolled back and the sessions' view of them is stale.
    /// The peers reconnect and resync from what is on disk.
    pub fn abandon(&mut self) {
        self.held.clear();
        for link in self.links.values_mut() {
            // Their states may name heads that were just rolled back.
            link.save_due = false;
            let _ = link.out.send(Outbound::Close(
                hearth_core::sync::ApplicationErrorCode::RemoteError.as_u32(),
            ));
        }
    }

    /// Brings every session in line with the policy the documents call for at `now`:
    /// a removed device is cut off at once; a device nobody shares with any more since
    /// someone left, and a partner's device when this person's pause begins, first get
    /// a farewell; a held session ends when the pause does. Closed peers reconnect into
    /// sessions that fit the new policy (or are refused at the handshake).
    pub fn enforce(&mut self, docs: &Docs, now: Millis) {
        self.policy = Policy::from_docs(docs, now);
        let roster: BTreeMap<String, Device> = docs
            .devices()
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        let replaced = crate::transport::CloseReason::Replaced.code().into_inner() as u32;
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            let Some(link) = self.links.get(&conn) else {
                continue;
            };
            if link.closing {
                continue;
            }
            let entry = roster.get(&link.device.to_string());
            let action = match entry {
                None => Some((false, revoked_code())),
                Some(d) if d.revoked_at.is_some() => Some((false, revoked_code())),
                Some(d) if !self.policy.trusts(d) => Some((true, revoked_code())),
                Some(d) if d.person != self.policy.me => {
                    match (self.policy.hold_others, link.held) {
                        (true, false) => Some((true, replaced)),
                        (false, true) => Some((false, replaced)),
                        _ => None,
                    }
                }
                Some(_) => None,
            };
            let Some((farewell, code)) = action else {
                continue;
            };
            if farewell && link.ready {
                if link.farewell.is_none() {
                    tracing::info!(peer = %link.device, "sharing with this device ends once it has the household document");
                    if let Some(link) = self.links.get_mut(&conn) {
                        link.farewell = Some((Instant::now() + FAREWELL, code));
                        link.farewell_fresh = true;
                        link.farewell_heads = docs.household.heads();
                    }
                }
            } else {
                tracing::info!(peer = %link.device, "closing a session that no longer fits who syncs what");
                self.close_now(conn, Some(code));
            }
        }
    }

    /// Closes a session in farewell as soon as the household holds something written
    /// after the farewell began (here, or relayed from another peer), before the session
    /// could send it: a farewell carries the pause or the leaving, nothing newer.
    /// Returns whether the session is closing.
    fn farewell_outgrown(&mut self, docs: &Docs, conn: ConnId) -> bool {
        let Some(link) = self.links.get(&conn) else {
            return false;
        };
        if link.closing {
            return true;
        }
        let outgrown = link.farewell.is_some()
            && !link.farewell_fresh
            && docs.household.heads() != link.farewell_heads;
        if outgrown {
            tracing::debug!(peer = %link.device, "ending a farewell early: the household moved on");
            self.close_now(conn, None);
        }
        outgrown
    }

    /// Sends a close to one connection now, after whatever it already has to send.
    fn close_now(&mut self, conn: ConnId, code: Option<u32>) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        let Some(code) = code.or(link.farewell.map(|(_, c)| c)) else {
            return;
        };
        link.farewell = None;
        link.closing = true;
        self.held.push((conn, Outbound::Close(code)));
    }

    /// Saves every live session's sync states, at shutdown.
    pub fn save_all(&mut self) {
        for link in self.links.values() {
            self.save_states(link);
        }
    }

    fn drain(&mut self, conn: ConnId) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        let mut overflow = false;
        while let Some(message) = link.session.poll_transmit() {
            let clock = phases::Clock::start();
            let frame = match encode_frame(&message) {
                Ok(frame) => {
                    clock.stop(|p| &mut p.encode, frame.len() as u64);
                    frame
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not encode a sync message");
                    continue;
                }
            };
            if link.queue.push(frame.len()) > QUEUE_HARD_FRAMES {
                overflow = true;
                break;
            }
            self.held.push((conn, Outbound::Frame(frame)));
        }
        if overflow {
            tracing::info!(peer = %link.device, "closing a link: the peer keeps sending but reads nothing");
            link.closing = true;
            self.held.push((
                conn,
                Outbound::Close(
                    hearth_core::sync::ApplicationErrorCode::ProtocolViolation.as_u32(),
                ),
            ));
            return;
        }
        let mut save = false;
        let mut farewell_done = None;
        let device = link.device.to_string();
        while let Some(event) = link.session.poll_event() {
            match event {
                SessionEvent::PeerReady => {
                    link.ready = true;
                    let progress = self.progress.entry(device.clone()).or_default();
                    progress.connected = true;
                    progress.on_hold = link.held;
                    self.events.push(Event::PeerUp {
                        device: device.clone(),
                    });
                }
                SessionEvent::DocChanged { doc } => {
                    if doc == DocId::household() {
                        self.household_senders.insert(device.clone());
                    }
                    self.remote_changes.insert(doc.as_str().to_string());
                }
                SessionEvent::SyncCompleted { doc } => {
                    let progress = self.progress.entry(device.clone()).or_default();
                    progress.last_sync = Some(crate::actor::now_millis());
                    if doc == DocId::household() {
                        phases::update(|p| p.report = true);
                        progress.on_hold = false;
                        // The household document, with whatever began the farewell, has
                        // reached the peer: now the session can end.
                        if let Some((_, code)) = link.farewell.take() {
                            link.closing = true;
                            farewell_done = Some(code);
                        }
                    }
                    self.events.push(Event::SyncCompleted {
                        device: device.clone(),
                        doc: doc.as_str().to_string(),
                    });
                    save = link.last_saved.is_none_or(|t| t.elapsed() >= SAVE_INTERVAL);
                }
                // Only another person's device withholds the household: its person has
                // paused sharing, whether or not we have heard of it yet.
                SessionEvent::DocUnavailable { doc } if doc == DocId::household() => {
                    self.progress.entry(device.clone()).or_default().on_hold = true;
                }
                SessionEvent::ReconciliationAborted { reason, .. } => {
                    tracing::info!(peer = %device, ?reason, "a reconciliation was given up; it resumes when either side has something new");
                }
                SessionEvent::ChangesNotApplied { doc, admission } => {
                    let progress = self.progress.entry(device.clone()).or_default();
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
                SessionEvent::DocUnavailable { .. } => {}
                _ => {}
            }
        }
        if save {
            // Written in `release`, once the batch is durable and its frames and events
            // are out: a state file's fsync never delays the peer or the subscriber, and
            // a saved state never names heads this device could still lose.
            link.last_saved = Some(Instant::now());
            link.save_due = true;
        }
        if let Some(code) = farewell_done {
            self.held.push((conn, Outbound::Close(code)));
        }
    }

    /// The heads of `doc` that this device and `device` were last known to share: from
    /// a live session if there is one, else from the saved sync state. `None` when they
    /// never synced it. Offline bundles start from these.
    pub fn known_heads(&self, device: &DeviceId, doc: &str) -> Option<Vec<automerge::ChangeHash>> {
        let live = self
            .links
            .values()
            .filter(|l| l.device == *device)
            .flat_map(|l| l.session.persisted_states())
            .find(|(id, _)| id.as_str() == doc)
            .map(|(_, bytes)| bytes);
        let encoded = live.or_else(|| {
            self.load_states(device)
                .into_iter()
                .find(|(id, _)| id.as_str() == doc)
                .map(|(_, bytes)| bytes)
        })?;
        let state = automerge::sync::State::decode(&encoded).ok()?;
        Some(state.shared_heads).filter(|heads| !heads.is_empty())
    }

    fn load_states(&self, device: &DeviceId) -> Vec<(DocId, Vec<u8>)> {
        // A file that cannot be read counts as none; one that does not open or parse is
        // warned about below.
        let parsed = match self.data_dir.load_sync_states(&self.identity, device) {
            Ok(Some(plain)) => serde_json::from_slice::<SavedStates>(&plain).ok(),
            Err(storage::StoreError::Unsealed { .. }) => None,
            Ok(None) | Err(_) => return Vec::new(),
        };
        match parsed {
            Some(saved) => saved
                .states
                .into_iter()
                .filter_map(|(doc, b64)| {
                    data_encoding::BASE64
                        .decode(b64.as_bytes())
                        .ok()
                        .map(|bytes| (DocId::new(doc), bytes))
                })
                .collect(),
            None => {
                // A damaged sync state only costs a full exchange of heads; start over.
                tracing::warn!(peer = %device, "ignoring an unreadable saved sync state");
                Vec::new()
            }
        }
    }

    fn save_states(&self, link: &Link) {
        phases::time(|p| &mut p.save_states, || self.save_states_now(link))
    }

    fn save_states_now(&self, link: &Link) {
        let saved = SavedStates {
            states: link
                .session
                .persisted_states()
                .into_iter()
                .chain(link.dormant.iter().cloned())
                .map(|(doc, bytes)| {
                    (
                        doc.as_str().to_string(),
                        data_encoding::BASE64.encode(&bytes),
                    )
                })
                .collect(),
        };
        let result = serde_json::to_vec(&saved)
            .map_err(|e| e.to_string())
            .and_then(|plain| {
                self.data_dir
                    .save_sync_states(&self.identity.to_public(), &link.device, &plain)
                    .map_err(|e| e.for_log())
            });
        if let Err(e) = result {
            // Losing a sync state costs one fuller exchange next time, never data.
            tracing::warn!(peer = %link.device, error = %e, "could not save a sync state");
        }
    }
}

/// Tells `link`'s session whether its writer has room, before any input that could
/// make it send.
fn refresh_room(link: &mut Link, now: Duration, docs: &mut Docs, signer: &Ed25519KeyPair) {
    let has_room = link.queue.has_room();
    link.session
        .handle_send_room(now, has_room, &mut DocsAccess(docs, signer));
}

fn revoked_code() -> u32 {
    crate::transport::CloseReason::Revoked.code().into_inner() as u32
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hearth_core::model::{Pause, Person, PersonId};
    use uuid::Uuid;

    fn device(n: u8, person: PersonId) -> Device {
        Device {
            id: format!("DEV{n}"),
            person,
            name: format!("device {n}"),
            public_key: "00".repeat(32),
            age_recipient: None,
            added_by: None,
            added_at: 0,
            revoked_at: None,
            admission: None,
            self_sig: None,
            removal: None,
        }
    }

    /// Ada (this device's person) and Bo, with no devices yet.
    fn two_people() -> (Docs, PersonId, PersonId) {
        let ada = Uuid::from_u128(1);
        let bo = Uuid::from_u128(2);
        let mut docs = Docs::new(ada, automerge::ActorId::random());
        for (id, name) in [(ada, "Ada"), (bo, "Bo")] {
            docs.add_person(
                &Person {
                    id,
                    name: name.into(),
                    joined_at: 0,
                },
                0,
            )
            .unwrap();
        }
        (docs, ada, bo)
    }

    /// Ada (this device's person) with two devices, Bo with one.
    fn docs() -> (Docs, PersonId, PersonId) {
        let (mut docs, ada, bo) = two_people();
        for d in [device(1, ada), device(2, ada), device(3, bo)] {
            docs.put_device(&d, 0).unwrap();
        }
        (docs, ada, bo)
    }

    #[test]
    fn a_pause_holds_only_the_other_persons_devices_and_only_while_it_lasts() {
        let (mut docs, ada, bo) = docs();
        let pause = Pause {
            since: 100,
            until: Some(200),
        };
        docs.set_pause(ada, Some(&pause), 100).unwrap();
        let during = Policy::from_docs(&docs, 150);
        assert!(during.hold_others);
        assert_eq!(during.hold_ends, Some(200));
        assert!(during.allowed_docs(&device(3, bo)).is_empty());
        assert_eq!(
            during.allowed_docs(&device(2, ada)),
            BTreeSet::from([DocId::household(), DocId::private(&ada)])
        );
        // Paused or not, every device stays trusted: a pause is no removal.
        assert!(during.trusts(&device(3, bo)));
        let after = Policy::from_docs(&docs, 200);
        assert!(!after.hold_others && after.hold_ends.is_none());
        assert_eq!(
            after.allowed_docs(&device(3, bo)),
            BTreeSet::from([DocId::household()])
        );
        // Bo's pause does not hold Ada's sessions: only the pausing side holds back.
        docs.set_pause(ada, None, 300).unwrap();
        docs.set_pause(
            bo,
            Some(&Pause {
                since: 0,
                until: None,
            }),
            300,
        )
        .unwrap();
        assert!(!Policy::from_docs(&docs, 400).hold_others);
    }

    #[test]
    fn leaving_splits_trust_along_the_line_between_the_two_people() {
        let (mut docs, ada, bo) = docs();
        let mut removed = device(2, ada);
        removed.revoked_at = Some(5);
        docs.put_device(&removed, 5).unwrap();
        let policy = Policy::from_docs(&docs, 10);
        assert!(!policy.trusts(&removed));
        assert!(policy.trusts(&device(3, bo)));
        assert_eq!(
            trusted_devices(&docs, &policy, "DEV1")
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>(),
            vec!["DEV3"]
        );
        // Either person leaving ends trust across the line, never within one person.
        for who in [ada, bo] {
            let (mut docs, _, _) = self::docs();
            docs.set_left(who, 20, 20).unwrap();
            let policy = Policy::from_docs(&docs, 30);
            assert!(!policy.trusts(&device(3, bo)), "{who}");
            assert!(policy.trusts(&device(2, ada)), "{who}");
        }
    }

    /// A device with a real id, so sessions accept its messages.
    fn keyed(n: u8, person: PersonId) -> (Device, DeviceId) {
        let key = [n; 32];
        let id = DeviceId::from_public_key(&key);
        let mut d = device(n, person);
        d.id = id.to_string();
        d.public_key = data_encoding::HEXLOWER.encode(&key);
        (d, id)
    }

    /// Epochs sent on the frames `out` received, by number.
    fn epochs_sent(out: &mut mpsc::UnboundedReceiver<Outbound>) -> Vec<u64> {
        let mut sent = Vec::new();
        while let Ok(o) = out.try_recv() {
            if let Outbound::Frame(frame) = o {
                if let Ok(Message::Epoch { epoch, .. }) = Message::decode(&frame[4..]) {
                    sent.push(epoch.number);
                }
            }
        }
        sent
    }

    /// Ada's device with her phone and Bo's device connected and past the handshake,
    /// each on its own connection (the partner's on connection 1 when
    /// `partner_first`).
    struct EpochRig {
        docs: Docs,
        keys: Arc<HouseholdKeys>,
        hub: SyncHub,
        outs: Vec<mpsc::UnboundedReceiver<Outbound>>,
        me_id: DeviceId,
        phone_id: DeviceId,
        partner_id: DeviceId,
        _dir: tempfile::TempDir,
    }

    fn epoch_rig(partner_first: bool) -> EpochRig {
        use hearth_core::sync::{PeerId, PeerMetadata};
        let (mut docs, ada, bo) = two_people();
        let (me, me_id) = keyed(1, ada);
        let (phone, phone_id) = keyed(2, ada);
        let (partner, partner_id) = keyed(3, bo);
        for d in [&me, &phone, &partner] {
            docs.put_device(d, 0).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let secrets =
            hearth_core::secrets::DeviceSecrets::generate(&ring::rand::SystemRandom::new())
                .unwrap();
        let keys = Arc::new(HouseholdKeys::load(DataDir::new(dir.path()), &secrets));
        let signer =
            Arc::new(Ed25519KeyPair::from_pkcs8_maybe_unchecked(secrets.device_pkcs8()).unwrap());
        let mut hub = SyncHub::new(
            me_id,
            DataDir::new(dir.path()),
            secrets.age_identity().clone(),
            signer,
            keys.clone(),
        );
        hub.enforce(&docs, 0);
        let mut outs = Vec::new();
        let order = if partner_first {
            [(1, partner_id), (2, phone_id)]
        } else {
            [(1, phone_id), (2, partner_id)]
        };
        for (conn, peer) in order {
            let (tx, rx) = mpsc::unbounded_channel();
            hub.connected(&mut docs, conn, peer, Role::Responder, tx, Arc::default());
            let join = Message::Join {
                sender_id: PeerId::from(&peer),
                peer_metadata: PeerMetadata::default(),
                supported_protocol_versions: vec!["1".into()],
            };
            hub.message(&mut docs, conn, join);
            outs.push(rx);
        }
        hub.settle_epochs(&docs, false);
        hub.release();
        EpochRig {
            docs,
            keys,
            hub,
            outs,
            me_id,
            phone_id,
            partner_id,
            _dir: dir,
        }
    }

    #[test]
    fn epochs_come_from_and_go_to_trusted_devices_only() {
        use hearth_core::epochs::Epoch;
        use hearth_core::sync::PeerId;
        let EpochRig {
            mut docs,
            keys,
            mut hub,
            mut outs,
            me_id,
            phone_id,
            partner_id,
            _dir,
        } = epoch_rig(false);
        // Each trusted peer got the current epoch once the session was ready.
        for out in &mut outs {
            assert_eq!(epochs_sent(out), vec![0]);
        }
        let epoch_from = |peer: &DeviceId, number: u64| Message::Epoch {
            sender_id: PeerId::from(peer),
            target_id: PeerId::from(&me_id),
            epoch: Epoch::new(number, [number as u8; 32]),
        };

        // 1. The phone sends a newer epoch: adopted, passed to the partner, not back.
        hub.message(&mut docs, 1, epoch_from(&phone_id, 4));
        hub.settle_epochs(&docs, false);
        hub.release();
        assert_eq!(keys.current().unwrap().number, 4);
        assert_eq!(epochs_sent(&mut outs[0]), Vec::<u64>::new());
        assert_eq!(epochs_sent(&mut outs[1]), vec![4]);

        // 2. Bo leaves. In the same batch his device sends a newer epoch: it is
        //    ignored, this device moves on by itself, and only the phone hears of it.
        hub.message(&mut docs, 2, epoch_from(&partner_id, 9));
        docs.set_left(Uuid::from_u128(2), 10, 10).unwrap();
        hub.enforce(&docs, 10);
        hub.settle_epochs(&docs, true);
        hub.release();
        let current = keys.current().unwrap();
        assert_eq!(current.number, 5);
        assert_ne!(*current.secret, [9u8; 32]);
        assert_eq!(epochs_sent(&mut outs[0]), vec![5]);
        assert_eq!(epochs_sent(&mut outs[1]), Vec::<u64>::new());
        assert!(keys.secrets().iter().all(|s| **s != [9u8; 32]));
    }

    #[test]
    fn a_peer_that_floods_epochs_does_not_crowd_out_another_peers() {
        use hearth_core::epochs::Epoch;
        use hearth_core::sync::PeerId;
        let EpochRig {
            mut docs,
            keys,
            mut hub,
            outs: _,
            me_id,
            phone_id,
            partner_id,
            _dir,
        } = epoch_rig(true);
        let epoch_from = |peer: &DeviceId, number: u64| Message::Epoch {
            sender_id: PeerId::from(peer),
            target_id: PeerId::from(&me_id),
            epoch: Epoch::new(number, [number as u8; 32]),
        };
        assert!(keys.adopt(Epoch::new(2, [2; 32])).unwrap());
        // In one batch, the partner's modified client sends a hundred stale epochs,
        // then the phone sends the newer one it moved to (after a removal, say).
        for _ in 0..100 {
            hub.message(&mut docs, 1, epoch_from(&partner_id, 1));
        }
        hub.message(&mut docs, 2, epoch_from(&phone_id, 4));
        hub.settle_epochs(&docs, false);
        hub.release();
        assert_eq!(keys.current().unwrap().number, 4);
    }
}
