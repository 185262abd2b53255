//! The document owner's driver for [`hearth_core::sync::Hub`]: it turns the owner's
//! inputs into hub inputs and carries out what the hub asks for.
//!
//! Every sync rule (sessions, who syncs what, farewells, the outbox held until a batch
//! is durable, how full a connection's queue may get) lives in the sans-IO hub. This
//! driver only moves frames to the connections' writers, reads and writes the sealed
//! sync-state files, keeps the household secret's epochs on disk, turns hub events into
//! control-API events, and times the phases of sync work for `hearth-bench`.
//!
//! The network tasks in [`crate::net`] only move frames; every session input happens
//! here, on the owner's thread, so the sessions touch the documents without locks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use automerge::Automerge;
use hearth_core::doc::Docs;
use hearth_core::epochs::Epoch;
use hearth_core::identity::DeviceId;
use hearth_core::model::Millis;
use hearth_core::provenance::{Admission, ProofError};
use hearth_core::sync::hub::{
    roster_members, CloseWhy, EpochKeys, HubDocs, HubEvent, TimeoutOutcome,
};
use hearth_core::sync::{
    DocAccess, DocId, Hub, HubConfig, HubOutput, Message, Now, Role, SyncLimits, WireForm,
};
use ring::signature::Ed25519KeyPair;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use hearth_core::sync::hub::{ConnId, PeerProgress, FAREWELL};
pub use hearth_core::sync::policy::{trusted_devices, Policy};

use crate::clock::Clock;
use crate::epochs::HouseholdKeys;
use crate::storage::{self, DataDir};
use hearth_api::Event;

/// What the owner tells a connection's writer to do.
#[derive(Debug)]
pub enum Outbound {
    /// Write this encoded frame.
    Frame(Vec<u8>),
    /// Close the connection with this application error code.
    Close(u32),
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

impl HubDocs for DocsAccess<'_> {
    fn household_heads(&mut self) -> Vec<automerge::ChangeHash> {
        self.0.household.heads()
    }
}

impl EpochKeys for HouseholdKeys {
    type Error = std::io::Error;

    fn current(&self) -> Option<Epoch> {
        HouseholdKeys::current(self)
    }

    fn adopt(&self, epoch: Epoch) -> std::io::Result<bool> {
        HouseholdKeys::adopt(self, epoch)
    }

    fn rotate(&self) -> std::io::Result<Epoch> {
        HouseholdKeys::rotate(self)
    }
}

/// The close code on the wire for why the hub closes a connection.
fn close_code(why: CloseWhy) -> u32 {
    use crate::transport::CloseReason;
    match why {
        CloseWhy::Revoked => CloseReason::Revoked.code().into_inner() as u32,
        CloseWhy::Replaced => CloseReason::Replaced.code().into_inner() as u32,
        CloseWhy::Sync(code) => code.as_u32(),
    }
}

/// The sync states saved per peer device, sealed to this device's age identity.
struct SyncStates {
    data_dir: DataDir,
    identity: age::x25519::Identity,
}

#[derive(Serialize, Deserialize, Default)]
struct SavedStates {
    states: BTreeMap<String, String>,
}

impl SyncStates {
    fn load(&self, device: &DeviceId) -> Vec<(DocId, Vec<u8>)> {
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

    fn save(&self, device: &DeviceId, states: Vec<(DocId, Vec<u8>)>) {
        let saved = SavedStates {
            states: states
                .into_iter()
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
                    .save_sync_states(&self.identity.to_public(), device, &plain)
                    .map_err(|e| e.for_log())
            });
        if let Err(e) = result {
            // Losing a sync state costs one fuller exchange next time, never data.
            tracing::warn!(peer = %device, error = %e, "could not save a sync state");
        }
    }
}

/// The owner's side of sync: the hub, and where its outputs go.
pub struct SyncDriver {
    clock: Clock,
    hub: Hub,
    writers: BTreeMap<ConnId, mpsc::UnboundedSender<Outbound>>,
    states: SyncStates,
    /// This device's key, which signs the heads sent with its changes.
    signer: Arc<Ed25519KeyPair>,
    /// The household secret's epochs.
    keys: Arc<HouseholdKeys>,
    /// Events to publish, from the batches made durable so far.
    events: Vec<Event>,
}

impl SyncDriver {
    /// A driver with no connection.
    pub fn new(
        me: DeviceId,
        data_dir: DataDir,
        identity: age::x25519::Identity,
        signer: Arc<Ed25519KeyPair>,
        keys: Arc<HouseholdKeys>,
    ) -> SyncDriver {
        SyncDriver {
            clock: Clock::new(),
            hub: Hub::new(HubConfig {
                me,
                limits: SyncLimits::default(),
                farewell: Some(FAREWELL),
                session_events: false,
            }),
            writers: BTreeMap::new(),
            states: SyncStates { data_dir, identity },
            signer,
            keys,
            events: Vec::new(),
        }
    }

    /// The household secret's epochs.
    pub fn household_keys(&self) -> Arc<HouseholdKeys> {
        self.keys.clone()
    }

    /// The policy sessions start with.
    pub fn policy(&self) -> &Policy {
        self.hub.policy()
    }

    /// Progress with `device`, for `status`.
    pub fn progress_of(&self, device: &str) -> PeerProgress {
        device
            .parse::<DeviceId>()
            .ok()
            .and_then(|d| self.hub.progress().get(&d).cloned())
            .unwrap_or_default()
    }

    /// The documents peers changed in this batch.
    pub fn take_remote_changes(&mut self) -> BTreeSet<String> {
        self.hub
            .take_remote_changes()
            .into_iter()
            .map(|d| d.as_str().to_string())
            .collect()
    }

    /// The devices that changed the household in this batch.
    pub fn take_household_senders(&mut self) -> BTreeSet<String> {
        self.hub
            .take_household_senders()
            .into_iter()
            .map(|d| d.to_string())
            .collect()
    }

    /// The events of the batches made durable so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn now(&self) -> Now {
        self.clock.now()
    }

    /// Runs `f` with the hub and the documents, timed as session work, then carries out
    /// what the hub asks for.
    fn input<T>(
        &mut self,
        docs: &mut Docs,
        f: impl FnOnce(&mut Hub, Now, &mut DocsAccess<'_>) -> T,
    ) -> T {
        let now = self.now();
        let signer = self.signer.clone();
        let out = phases::time(
            |p| &mut p.session,
            || f(&mut self.hub, now, &mut DocsAccess(docs, &signer)),
        );
        self.flush();
        out
    }

    /// Starts a session for a new connection with `device`; `out` reaches its writer.
    pub fn connected(
        &mut self,
        docs: &mut Docs,
        conn: ConnId,
        device: DeviceId,
        role: Role,
        form: WireForm,
        out: mpsc::UnboundedSender<Outbound>,
    ) {
        self.writers.insert(conn, out);
        let saved = self.states.load(&device);
        let epoch = self.keys.current();
        self.input(docs, |hub, now, docs| {
            hub.handle_connected(now, docs, conn, device, role, form, saved, epoch)
        });
    }

    /// Feeds one message from a peer.
    pub fn message(&mut self, docs: &mut Docs, conn: ConnId, message: Message) {
        self.input(docs, |hub, now, docs| {
            hub.handle_message(now, docs, conn, message)
        });
    }

    /// A connection ended.
    pub fn closed(&mut self, conn: ConnId) {
        self.hub.handle_closed(conn);
        self.flush();
        self.writers.remove(&conn);
    }

    /// Pushes a committed change of `doc` to every peer that may see it.
    pub fn local_change(&mut self, docs: &mut Docs, doc: &str) {
        let doc = DocId::new(doc);
        self.input(docs, |hub, now, docs| {
            hub.handle_local_change(now, docs, &doc)
        });
    }

    /// A connection's writer wrote `frames` frames of `bytes` bytes.
    pub fn sent(&mut self, docs: &mut Docs, conn: ConnId, frames: usize, bytes: usize) {
        self.input(docs, |hub, now, docs| {
            hub.handle_sent(now, docs, conn, frames, bytes)
        });
    }

    /// Fires due timers; when this person's pause ran out, takes the policy it leaves.
    pub fn tick(&mut self, docs: &mut Docs) {
        let TimeoutOutcome { pause_ended } =
            self.input(docs, |hub, now, docs| hub.handle_timeout(now, docs));
        if pause_ended {
            let wall = self.now().wall;
            self.enforce(docs, wall);
        }
    }

    /// When the next timer is due, as an instant.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.hub.poll_timeout().map(|at| self.clock.instant_at(at))
    }

    /// Brings every session in line with the policy the documents call for at `now`.
    pub fn enforce(&mut self, docs: &mut Docs, now: Millis) {
        let policy = Policy::from_docs(docs, now);
        let members = roster_members(docs);
        self.input(docs, |hub, now, docs| {
            hub.handle_policy(now, docs, policy, members)
        });
    }

    /// Settles the household secret at the end of a batch (see
    /// [`Hub::settle_epochs`]). Returns false when a rotation could not be written.
    pub fn settle_epochs(&mut self, rotate: bool) -> bool {
        let now = self.now();
        let kept = self.hub.settle_epochs(now, &*self.keys, rotate);
        self.flush();
        kept
    }

    /// Sends everything held back in this batch, now that it is durable.
    pub fn release(&mut self) {
        self.hub.handle_durable();
        self.flush();
    }

    /// Drops what this batch would have sent and closes every connection: a commit
    /// failed, so the documents were rolled back and the sessions' view is stale.
    pub fn abandon(&mut self) {
        self.hub.handle_rollback();
        self.flush();
    }

    /// Saves every live session's sync states, at shutdown.
    pub fn save_all(&mut self) {
        self.hub.handle_shutdown();
        self.flush();
    }

    /// The heads of `doc` that this device and `device` were last known to share: from
    /// a live session if there is one, else from the saved sync state. `None` when they
    /// never synced it. Offline bundles start from these.
    pub fn known_heads(&self, device: &DeviceId, doc: &str) -> Option<Vec<automerge::ChangeHash>> {
        let doc = DocId::new(doc);
        let encoded = self.hub.live_state(device, &doc).or_else(|| {
            self.states
                .load(device)
                .into_iter()
                .find(|(id, _)| *id == doc)
                .map(|(_, bytes)| bytes)
        })?;
        hearth_core::sync::hub::shared_heads(&encoded)
    }

    /// Carries out everything the hub asks for now.
    fn flush(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            match output {
                HubOutput::Send { conn, frame } => {
                    let len = frame.len() as u64;
                    phases::update(|p| p.encode.count += len);
                    if let Some(out) = self.writers.get(&conn) {
                        let _ = out.send(Outbound::Frame(frame));
                    }
                }
                HubOutput::Close { conn, why } => {
                    if let Some(out) = self.writers.get(&conn) {
                        let _ = out.send(Outbound::Close(close_code(why)));
                    }
                }
                HubOutput::SaveSyncState { device, states } => {
                    phases::time(|p| &mut p.save_states, || self.states.save(&device, states));
                }
                HubOutput::Event(event) => self.events.extend(match event {
                    HubEvent::PeerUp { device } => Some(Event::PeerUp {
                        device: device.to_string(),
                    }),
                    HubEvent::PeerDown { device } => Some(Event::PeerDown {
                        device: device.to_string(),
                    }),
                    HubEvent::SyncCompleted { device, doc } => {
                        if doc == DocId::household() {
                            phases::update(|p| p.report = true);
                        }
                        Some(Event::SyncCompleted {
                            device: device.to_string(),
                            doc: doc.as_str().to_string(),
                        })
                    }
                    // Logged by the hub; subscribers hear of sessions only as above.
                    HubEvent::SessionFailed { .. } | HubEvent::Session { .. } => None,
                }),
            }
        }
    }
}
