//! A deterministic network of devices for tests, each driving the real sync
//! [`Hub`], with no IO and no clock.
//!
//! This module owns a seeded simulation of several devices, each with in-memory
//! Automerge documents and the same [`Hub`] the daemon drives, connected pairwise over
//! simulated QUIC streams. It must stay free of sockets, threads and wall-clock time so
//! that every run is reproducible from its seed; it is public so that integration tests
//! in other crates can drive it too.
//!
//! **What the simulated transport guarantees, and what it does not.** A QUIC stream
//! delivers bytes reliably and in order, and Automerge's sync protocol relies on that
//! within one connection, so the simulator never drops or reorders bytes *inside* a
//! live stream. It does split them into arbitrary chunks. Everything the real network
//! can do is modelled at the connection level instead:
//!
//! * **reordering**: each direction of each link is an independent queue, and the
//!   simulator interleaves deliveries across all of them, and with local edits, at
//!   random;
//! * **drops**: [`Network::disconnect`] resets a connection, losing every byte in
//!   flight; each side keeps its persisted sync state, or loses it as if it crashed
//!   before persisting;
//! * **duplication**: after a reset the sides resume from persisted states that may
//!   lag behind what was actually delivered, so changes are sent again;
//! * **partitions**: [`Network::partition`] cuts every link between groups and keeps
//!   them from reconnecting until [`Network::heal`].
//!
//! Every frame goes through the real codec, and every sync message is checked on the
//! wire: a private document must only ever travel between devices of its person. A
//! frame is written as soon as the hub lets it out, and reported written at once.
//!
//! **Who syncs what** is each hub's own [`Policy`]: a pause ([`Network::pause`]), a
//! leaving ([`Network::leave`]) and a removal ([`Network::remove`]) hand every device
//! the policy and roster it calls for, and the hubs close the sessions that no longer
//! fit; a session closed to be replaced is reopened at once, as a daemon redials. One
//! simplification: a change of policy reaches every device at once, where the daemon
//! carries it in the household document, so the hubs here say no farewell (there is
//! nothing left to carry); the hub's own tests cover farewells.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use automerge::{transaction::Transactable, ActorId, Automerge, ChangeHash, ROOT};
use rand::{Rng, RngCore};
use uuid::Uuid;

use super::frame::FrameDecoder;
use super::hub::{CloseWhy, ConnId, Hub, HubConfig, HubDocs, HubEvent, HubOutput, Member, Now};
use super::lean::{LinkEnds, WireForm};
use super::message::{Message, PeerId};
use super::policy::Policy;
use super::session::{DocAccess, Role, SessionEvent, SyncLimits};
use super::DocId;
use crate::identity::DeviceId;

/// Why a simulation run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Messages or timers kept coming after the step budget ran out.
    #[error("the network did not settle within {steps} steps; a session may be looping")]
    DidNotSettle {
        /// The step budget.
        steps: u64,
    },
    /// A session or the codec reported an error between honest peers.
    #[error("an honest session failed: {0}")]
    Session(String),
    /// A document went somewhere it must never go.
    #[error("privacy violation: {0}")]
    Privacy(String),
    /// Replicas that should agree do not.
    #[error("replicas diverged: {0}")]
    Diverged(String),
}

/// What each side keeps of its sync state when a connection resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// The states as they are now, as after an orderly shutdown.
    Current,
    /// Whatever was saved at an earlier reset, as after a crash between saves; the
    /// next session then re-sends changes the peer already has.
    Stale,
    /// Nothing, as after losing the state file.
    Lost,
}

/// One simulated device.
pub struct SimDevice {
    /// The device's id.
    pub device: DeviceId,
    /// The person the device belongs to.
    pub person: Uuid,
    /// The documents the device holds.
    pub docs: BTreeMap<DocId, Automerge>,
    /// Events from this device's sessions, with the index of the peer device.
    pub events: Vec<(usize, SessionEvent)>,
    /// Removed from the roster: nobody syncs with it any more.
    pub removed: bool,
    /// The device's sync hub, as the daemon has it.
    hub: Hub,
    /// Sync states saved per peer device index.
    saved: BTreeMap<usize, Vec<(DocId, Vec<u8>)>>,
    actor_seq: u64,
}

impl std::fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDevice")
            .field("device", &self.device)
            .field("person", &self.person)
            .field("removed", &self.removed)
            .finish_non_exhaustive()
    }
}

impl SimDevice {
    /// Whether this device may hold `doc`.
    fn may_hold(&self, doc: &DocId) -> bool {
        may_hold(self.person, doc)
    }

    /// The heads of `doc`, if the device has it.
    pub fn heads(&self, doc: &DocId) -> Option<Vec<ChangeHash>> {
        self.docs.get(doc).map(|d| {
            let mut heads = d.get_heads();
            heads.sort();
            heads
        })
    }

    /// Who this device syncs with, and what, as its hub has it.
    pub fn policy(&self) -> &Policy {
        self.hub.policy()
    }
}

fn may_hold(person: Uuid, doc: &DocId) -> bool {
    *doc == DocId::household() || *doc == DocId::private(&person)
}

/// The documents of one device, as its hub's sessions see them.
struct HostDocs<'a> {
    docs: &'a mut BTreeMap<DocId, Automerge>,
    person: Uuid,
    actor: ActorId,
}

impl DocAccess for HostDocs<'_> {
    fn doc_mut(&mut self, id: &DocId) -> Option<&mut Automerge> {
        self.docs.get_mut(id)
    }

    fn create_doc(&mut self, id: &DocId) -> Option<&mut Automerge> {
        if !may_hold(self.person, id) {
            return None;
        }
        let doc = Automerge::new().with_actor(self.actor.clone());
        Some(self.docs.entry(id.clone()).or_insert(doc))
    }
}

impl HubDocs for HostDocs<'_> {
    fn household_heads(&mut self) -> Vec<ChangeHash> {
        self.docs
            .get(&DocId::household())
            .map(Automerge::get_heads)
            .unwrap_or_default()
    }
}

/// One end of a simulated connection.
#[derive(Debug)]
struct End {
    /// Bytes sent towards this end and not yet delivered, in stream order.
    inbox: Vec<u8>,
    decoder: FrameDecoder,
}

/// A simulated connection between devices `pair.0 < pair.1`, known to both hubs as
/// `conn`; `ends[0]` lives on the lower index, which also opened the connection.
#[derive(Debug)]
struct Link {
    conn: ConnId,
    form: WireForm,
    ends: [End; 2],
}

/// A seeded network of devices and their sync hubs.
#[derive(Debug)]
pub struct Network<R> {
    rng: R,
    now: Duration,
    limits: SyncLimits,
    devices: Vec<SimDevice>,
    links: BTreeMap<(usize, usize), Link>,
    next_conn: ConnId,
    blocked: BTreeSet<(usize, usize)>,
    violations: Vec<String>,
    errors: Vec<String>,
    bytes_sent: u64,
    /// Which device made each change written through [`Network::edit`].
    authors: BTreeMap<ChangeHash, usize>,
}

fn ordered(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl<R: RngCore> Network<R> {
    /// An empty network whose randomness all comes from `rng`.
    pub fn new(rng: R, limits: SyncLimits) -> Self {
        Self {
            rng,
            now: Duration::ZERO,
            limits,
            devices: Vec::new(),
            links: BTreeMap::new(),
            next_conn: 1,
            blocked: BTreeSet::new(),
            violations: Vec::new(),
            errors: Vec::new(),
            bytes_sent: 0,
            authors: BTreeMap::new(),
        }
    }

    /// Adds a device of `person` and returns its index. Every device learns of it.
    pub fn add_device(&mut self, person: Uuid) -> usize {
        let mut key = [0u8; 32];
        self.rng.fill_bytes(&mut key);
        let device = DeviceId::from_public_key(&key);
        self.devices.push(SimDevice {
            device,
            person,
            docs: BTreeMap::new(),
            events: Vec::new(),
            removed: false,
            hub: Hub::new(HubConfig {
                me: device,
                limits: self.limits,
                farewell: None,
                session_events: true,
            }),
            saved: BTreeMap::new(),
            actor_seq: 0,
        });
        let index = self.devices.len() - 1;
        let policy = Policy {
            me: person,
            ..Policy::default()
        };
        self.set_policy(index, policy);
        for other in 0..index {
            let policy = self.devices[other].policy().clone();
            self.set_policy(other, policy);
        }
        index
    }

    /// The devices, by index.
    pub fn devices(&self) -> &[SimDevice] {
        &self.devices
    }

    /// The simulated time.
    pub fn now(&self) -> Duration {
        self.now
    }

    fn clock(&self) -> Now {
        Now {
            mono: self.now,
            wall: i64::try_from(self.now.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Moves simulated time forward.
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now.saturating_add(by);
    }

    /// Total bytes put on the wire so far, frames included.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Whether devices `a` and `b` are connected.
    pub fn is_connected(&self, a: usize, b: usize) -> bool {
        self.links.contains_key(&ordered(a, b))
    }

    /// A fresh actor id for `device`, drawn from the seeded RNG so runs are
    /// reproducible (Automerge would otherwise pick a random one).
    fn next_actor(&mut self, device: usize) -> ActorId {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        if let Some(dev) = self.devices.get_mut(device) {
            dev.actor_seq += 1;
            bytes[..8].copy_from_slice(&dev.actor_seq.to_be_bytes());
        }
        ActorId::from(bytes.to_vec())
    }

    /// Creates an empty `doc` on `device`, as the first device of a household or person
    /// does. Returns false if the device may not hold it or already has it.
    pub fn create_doc(&mut self, device: usize, doc: &DocId) -> bool {
        let actor = self.next_actor(device);
        let Some(dev) = self.devices.get_mut(device) else {
            return false;
        };
        if !dev.may_hold(doc) || dev.docs.contains_key(doc) {
            return false;
        }
        dev.docs
            .insert(doc.clone(), Automerge::new().with_actor(actor));
        true
    }

    /// Commits `key = value` to `doc` on `device` and tells its hub. Returns false if
    /// the device does not have the document.
    pub fn edit(&mut self, device: usize, doc: &DocId, key: &str, value: i64) -> bool {
        let Some(automerge) = self
            .devices
            .get_mut(device)
            .and_then(|d| d.docs.get_mut(doc))
        else {
            return false;
        };
        let mut tx = automerge.transaction();
        if tx.put(ROOT, key, value).is_err() {
            return false;
        }
        if let (Some(hash), _) = tx.commit() {
            self.authors.insert(hash, device);
        }
        self.with_hub(device, |hub, now, docs| {
            hub.handle_local_change(now, docs, doc)
        });
        true
    }

    /// The device that made `change`, if it was made by [`Network::edit`].
    pub fn author_of(&self, change: &ChangeHash) -> Option<usize> {
        self.authors.get(change).copied()
    }

    /// Every change of `doc` that `device` holds.
    pub fn changes(&self, device: usize, doc: &DocId) -> BTreeSet<ChangeHash> {
        self.devices
            .get(device)
            .and_then(|d| d.docs.get(doc))
            .map(|d| d.get_changes(&[]).iter().map(|c| c.hash()).collect())
            .unwrap_or_default()
    }

    /// Whether device `me` syncs with `them` at all: neither is removed and `me`'s
    /// policy trusts `them`'s person.
    fn trusts(&self, me: usize, them: usize) -> bool {
        matches!((self.devices.get(me), self.devices.get(them)),
            (Some(m), Some(t)) if !m.removed && !t.removed && m.policy().trusts_person(t.person))
    }

    /// The documents device `me` lets a session with `them` share, as its policy says;
    /// empty when it does not trust `them` ([`Self::trusts`]).
    fn allowed(&self, me: usize, them: usize) -> BTreeSet<DocId> {
        match (
            self.trusts(me, them),
            self.devices.get(me),
            self.devices.get(them),
        ) {
            (true, Some(m), Some(t)) => m.policy().docs_for(t.person),
            _ => BTreeSet::new(),
        }
    }

    /// Whether `a` and `b` would accept a connection from each other (the transport's
    /// check, before any session).
    fn trusted(&self, a: usize, b: usize) -> bool {
        self.trusts(a, b) && self.trusts(b, a)
    }

    /// Starts (`on`) or ends `person`'s pause on all their devices.
    pub fn pause(&mut self, person: Uuid, on: bool) {
        for index in 0..self.devices.len() {
            if self.devices[index].person == person {
                let mut policy = self.devices[index].policy().clone();
                policy.hold_others = on;
                self.set_policy(index, policy);
            }
        }
    }

    /// `person` ends sharing: every device stops syncing across the line between them
    /// and the other person.
    pub fn leave(&mut self, person: Uuid) {
        for index in 0..self.devices.len() {
            let mut policy = self.devices[index].policy().clone();
            policy.left.insert(person);
            self.set_policy(index, policy);
        }
    }

    /// Removes `device` from the roster: nobody syncs with it any more.
    pub fn remove(&mut self, device: usize) {
        if let Some(dev) = self.devices.get_mut(device) {
            dev.removed = true;
        }
        for index in 0..self.devices.len() {
            let policy = self.devices[index].policy().clone();
            self.set_policy(index, policy);
        }
    }

    /// Hands device `index` its policy and the roster; its hub closes what no longer
    /// fits.
    fn set_policy(&mut self, index: usize, policy: Policy) {
        let members: Vec<Member> = self
            .devices
            .iter()
            .map(|d| Member {
                device: d.device,
                person: d.person,
                removed: d.removed,
            })
            .collect();
        self.with_hub(index, |hub, now, docs| {
            hub.handle_policy(now, docs, policy, members)
        });
    }

    /// Opens a connection between `a` and `b`, unless they are the same device, already
    /// connected, partitioned, or refused by the transport. The lower index connects.
    pub fn connect(&mut self, a: usize, b: usize) -> bool {
        let pair = ordered(a, b);
        if a == b
            || pair.1 >= self.devices.len()
            || self.links.contains_key(&pair)
            || self.blocked.contains(&pair)
            || !self.trusted(pair.0, pair.1)
        {
            return false;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        // Half the links speak the lean layout, so every property covers both.
        let form = if conn % 2 == 1 {
            WireForm::Lean
        } else {
            WireForm::Classic
        };
        let end = |local: usize, remote: usize| End {
            inbox: Vec::new(),
            decoder: FrameDecoder::for_link(form, self.ends(local, remote)),
        };
        let ends = [end(pair.0, pair.1), end(pair.1, pair.0)];
        self.links.insert(pair, Link { conn, form, ends });
        for (me, them, role) in [
            (pair.0, pair.1, Role::Initiator),
            (pair.1, pair.0, Role::Responder),
        ] {
            let saved = self.devices[me]
                .saved
                .get(&them)
                .cloned()
                .unwrap_or_default();
            let peer = self.devices[them].device;
            self.with_hub(me, |hub, now, docs| {
                hub.handle_connected(now, docs, conn, peer, role, form, saved, None);
            });
        }
        true
    }

    /// Connects every pair that is not partitioned.
    pub fn connect_all(&mut self) {
        for a in 0..self.devices.len() {
            for b in a + 1..self.devices.len() {
                self.connect(a, b);
            }
        }
    }

    /// Resets the connection between `a` and `b`, losing the bytes in flight; `persist`
    /// says what both sides keep of their sync states. Returns false if they were not
    /// connected.
    pub fn disconnect(&mut self, a: usize, b: usize, persist: Persist) -> bool {
        let pair = ordered(a, b);
        let Some(link) = self.links.remove(&pair) else {
            return false;
        };
        for (me, them) in [pair, (pair.1, pair.0)] {
            let Some(dev) = self.devices.get_mut(me) else {
                continue;
            };
            dev.hub.handle_closed(link.conn);
            while let Some(output) = dev.hub.poll_output() {
                if let HubOutput::SaveSyncState { states, .. } = output {
                    match persist {
                        Persist::Current => {
                            dev.saved.insert(them, states);
                        }
                        Persist::Stale => {}
                        Persist::Lost => {
                            dev.saved.remove(&them);
                        }
                    }
                }
            }
        }
        true
    }

    /// Splits the network: device `i` is in group `groups[i]` (missing entries are
    /// group 0). Links between groups are reset, keeping state, and stay down until
    /// [`Self::heal`].
    pub fn partition(&mut self, groups: &[u8]) {
        let group = |i: usize| groups.get(i).copied().unwrap_or(0);
        for a in 0..self.devices.len() {
            for b in a + 1..self.devices.len() {
                if group(a) != group(b) {
                    self.blocked.insert((a, b));
                    self.disconnect(a, b, Persist::Current);
                }
            }
        }
    }

    /// Lifts every partition (links are not reopened until [`Self::connect`]).
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Runs `f` on device `me`'s hub with its documents, then carries out what the hub
    /// lets out.
    fn with_hub<T>(
        &mut self,
        me: usize,
        f: impl FnOnce(&mut Hub, Now, &mut HostDocs<'_>) -> T,
    ) -> Option<T> {
        let actor = self.next_actor(me);
        let now = self.clock();
        let dev = self.devices.get_mut(me)?;
        let mut docs = HostDocs {
            docs: &mut dev.docs,
            person: dev.person,
            actor,
        };
        let out = f(&mut dev.hub, now, &mut docs);
        self.settle(me);
        Some(out)
    }

    /// The link a connection of device `me` belongs to, and `me`'s side of it.
    /// Device `local`'s view of its link with `remote`, as the TLS handshake proves it.
    fn ends(&self, local: usize, remote: usize) -> LinkEnds {
        LinkEnds {
            local: PeerId::from(&self.devices[local].device),
            remote: PeerId::from(&self.devices[remote].device),
        }
    }

    fn link_of(&self, me: usize, conn: ConnId) -> Option<((usize, usize), usize)> {
        self.links
            .iter()
            .find(|(pair, link)| link.conn == conn && (pair.0 == me || pair.1 == me))
            .map(|(pair, _)| (*pair, usize::from(pair.1 == me)))
    }

    fn index_of(&self, device: &DeviceId) -> Option<usize> {
        self.devices.iter().position(|d| d.device == *device)
    }

    /// Device `me`'s batch is durable at once (its documents live in memory): carries
    /// out what its hub lets out, reports the frames written, and passes peers' changes
    /// on to its other sessions, until the hub has nothing more.
    fn settle(&mut self, me: usize) {
        loop {
            let Some(dev) = self.devices.get_mut(me) else {
                return;
            };
            dev.hub.handle_durable();
            let outputs: Vec<HubOutput> = std::iter::from_fn(|| dev.hub.poll_output()).collect();
            let changed = dev.hub.take_remote_changes();
            if outputs.is_empty() && changed.is_empty() {
                return;
            }
            let mut written: BTreeMap<ConnId, (usize, usize)> = BTreeMap::new();
            for output in outputs {
                match output {
                    HubOutput::Send { conn, frame } => {
                        let len = frame.len();
                        if self.put_on_wire(me, conn, frame) {
                            let (frames, bytes) = written.entry(conn).or_default();
                            *frames += 1;
                            *bytes += len;
                        }
                    }
                    HubOutput::Close { conn, why } => {
                        if let Some((pair, _)) = self.link_of(me, conn) {
                            self.disconnect(pair.0, pair.1, Persist::Current);
                            if why == CloseWhy::Replaced {
                                self.connect(pair.0, pair.1);
                            }
                        }
                    }
                    HubOutput::SaveSyncState { device, states } => {
                        if let Some(them) = self.index_of(&device) {
                            self.devices[me].saved.insert(them, states);
                        }
                    }
                    HubOutput::Event(HubEvent::Session { device, event }) => {
                        if let Some(them) = self.index_of(&device) {
                            self.devices[me].events.push((them, event));
                        }
                    }
                    HubOutput::Event(HubEvent::SessionFailed { error, .. }) => {
                        self.errors.push(error.to_string());
                    }
                    HubOutput::Event(_) => {}
                }
            }
            let actor = self.next_actor(me);
            let now = self.clock();
            let Some(dev) = self.devices.get_mut(me) else {
                return;
            };
            let mut docs = HostDocs {
                docs: &mut dev.docs,
                person: dev.person,
                actor,
            };
            for (conn, (frames, bytes)) in written {
                dev.hub.handle_sent(now, &mut docs, conn, frames, bytes);
            }
            // Like the daemon, pass a change from one peer on to every other peer, so
            // changes travel along chains of devices that are not all connected.
            for doc in changed {
                dev.hub.handle_local_change(now, &mut docs, &doc);
            }
        }
    }

    /// Puts one frame from device `me` on `conn`'s wire, checking that no private
    /// document travels to a device outside its person. False if the link is gone.
    fn put_on_wire(&mut self, me: usize, conn: ConnId, frame: Vec<u8>) -> bool {
        let Some((pair, side)) = self.link_of(me, conn) else {
            return false;
        };
        let them = if side == 0 { pair.1 } else { pair.0 };
        let payload = frame.get(4..).unwrap_or_default();
        let lean = self.links.get(&pair).map(|link| link.form) == Some(WireForm::Lean);
        let ends = lean.then(|| self.ends(them, me));
        if let Ok(Message::Sync { document_id, .. } | Message::Request { document_id, .. }) =
            Message::decode_as(payload, ends.as_ref())
        {
            for end in [me, them] {
                if let Some(dev) = self.devices.get(end) {
                    if document_id.as_str().starts_with("private-") && !dev.may_hold(&document_id) {
                        self.violations.push(format!(
                            "{document_id} was sent on a link with {}",
                            dev.device.short()
                        ));
                    }
                }
            }
        }
        self.bytes_sent += frame.len() as u64;
        if let Some(link) = self.links.get_mut(&pair) {
            link.ends[1 - side].inbox.extend(frame);
        }
        true
    }

    /// Fires every hub timer that is due.
    fn fire_due_timers(&mut self) {
        let due: Vec<usize> = (0..self.devices.len())
            .filter(|&i| {
                self.devices[i]
                    .hub
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
            })
            .collect();
        for me in due {
            self.with_hub(me, |hub, now, docs| {
                let _ = hub.handle_timeout(now, docs);
            });
        }
    }

    /// Delivers one random chunk of bytes on one random link direction. Returns false
    /// if nothing was in flight.
    pub fn step(&mut self) -> bool {
        self.fire_due_timers();
        let pending: Vec<((usize, usize), usize)> = self
            .links
            .iter()
            .flat_map(|(pair, link)| {
                link.ends
                    .iter()
                    .enumerate()
                    .filter(|(_, end)| !end.inbox.is_empty())
                    .map(|(side, _)| (*pair, side))
            })
            .collect();
        if pending.is_empty() {
            return false;
        }
        let (pair, side) = pending[self.rng.gen_range(0..pending.len())];
        let tick = self.rng.gen_range(0..3u64);
        self.advance(Duration::from_millis(tick));
        let Some(link) = self.links.get_mut(&pair) else {
            return true;
        };
        let conn = link.conn;
        let end = &mut link.ends[side];
        // Usually deliver everything queued, sometimes a partial read, to exercise
        // frame reassembly.
        let len = if self.rng.gen_bool(0.5) {
            end.inbox.len()
        } else {
            self.rng.gen_range(1..=end.inbox.len())
        };
        let chunk: Vec<u8> = end.inbox.drain(..len).collect();
        let mut messages = Vec::new();
        let mut failure = end.decoder.push(&chunk).err();
        while failure.is_none() {
            match end.decoder.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(err) => failure = Some(err),
            }
        }
        if let Some(err) = failure {
            self.errors.push(err.to_string());
            self.disconnect(pair.0, pair.1, Persist::Current);
            return true;
        }
        let me = if side == 0 { pair.0 } else { pair.1 };
        for message in messages {
            if self.links.get(&pair).is_none_or(|l| l.conn != conn) {
                break;
            }
            self.with_hub(me, |hub, now, docs| {
                hub.handle_message(now, docs, conn, message)
            });
        }
        true
    }

    /// Delivers messages and fires timers until nothing is in flight and no timer is
    /// armed, or fails after `max_steps` steps.
    pub fn run_until_quiescent(&mut self, max_steps: u64) -> Result<u64, SimError> {
        let mut steps = 0;
        loop {
            if steps >= max_steps {
                return Err(SimError::DidNotSettle { steps });
            }
            steps += 1;
            if self.step() {
                continue;
            }
            let next = self
                .devices
                .iter()
                .filter_map(|d| d.hub.poll_timeout())
                .min();
            match next {
                Some(at) => {
                    self.now = self.now.max(at);
                    self.fire_due_timers();
                }
                None => break,
            }
        }
        self.check_health()?;
        Ok(steps)
    }

    /// Fails if any honest session errored or any privacy rule was broken.
    pub fn check_health(&self) -> Result<(), SimError> {
        if let Some(err) = self.errors.first() {
            return Err(SimError::Session(err.clone()));
        }
        if let Some(violation) = self.violations.first() {
            return Err(SimError::Privacy(violation.clone()));
        }
        for dev in &self.devices {
            if let Some(doc) = dev.docs.keys().find(|d| !dev.may_hold(d)) {
                return Err(SimError::Privacy(format!(
                    "{} holds {doc}",
                    dev.device.short()
                )));
            }
        }
        Ok(())
    }

    /// Fails unless every document is on every device that should hold it, with the
    /// same heads wherever the policies let it travel: within each group of devices
    /// that, directly or through each other, may share it.
    pub fn check_converged(&self) -> Result<(), SimError> {
        let doc_ids: BTreeSet<DocId> = self
            .devices
            .iter()
            .flat_map(|d| d.docs.keys().cloned())
            .collect();
        for doc in doc_ids {
            // A device that lacks a document agrees with one that holds it empty: an
            // empty document has nothing to sync, and a `request` for it is answered
            // with `doc-unavailable` by design.
            let holders: Vec<usize> = (0..self.devices.len())
                .filter(|&i| self.devices[i].may_hold(&doc) && !self.devices[i].removed)
                .collect();
            for group in self.groups_sharing(&doc, &holders) {
                let Some((&first, rest)) = group.split_first() else {
                    continue;
                };
                let expected = self.devices[first].heads(&doc).unwrap_or_default();
                for &dev in rest {
                    if self.devices[dev].heads(&doc).unwrap_or_default() != expected {
                        return Err(SimError::Diverged(format!(
                            "{doc} differs between {} and {}",
                            self.devices[first].device.short(),
                            self.devices[dev].device.short()
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Splits `devices` into the groups that can pass `doc` to each other, each pair
    /// of neighbours allowing it both ways.
    fn groups_sharing(&self, doc: &DocId, devices: &[usize]) -> Vec<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for &dev in devices {
            let shares = |other: usize| {
                self.allowed(dev, other).contains(doc) && self.allowed(other, dev).contains(doc)
            };
            let (joined, apart): (Vec<Vec<usize>>, Vec<Vec<usize>>) = groups
                .into_iter()
                .partition(|g| g.iter().any(|&other| shares(other)));
            let mut merged: Vec<usize> = joined.into_iter().flatten().collect();
            merged.push(dev);
            groups = apart;
            groups.push(merged);
        }
        groups
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use automerge::ReadDoc;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const STEPS: u64 = 200_000;

    fn alice() -> Uuid {
        Uuid::from_u128(0xa11ce)
    }

    fn bob() -> Uuid {
        Uuid::from_u128(0xb0b)
    }

    fn network(seed: u64) -> Network<ChaCha8Rng> {
        Network::new(ChaCha8Rng::seed_from_u64(seed), SyncLimits::default())
    }

    fn value(net: &Network<ChaCha8Rng>, device: usize, doc: &DocId, key: &str) -> Option<i64> {
        let doc = net.devices()[device].docs.get(doc)?;
        let (value, _) = doc.get(ROOT, key).ok()??;
        value.as_i64()
    }

    #[test]
    fn two_partners_converge_and_keep_private_docs_apart() {
        let mut net = network(1);
        let household = DocId::household();
        // 1. Alice has a laptop and a phone, Bob a laptop.
        let alice_laptop = net.add_device(alice());
        let alice_phone = net.add_device(alice());
        let bob_laptop = net.add_device(bob());
        // 2. The household and each private document start on one device.
        assert!(net.create_doc(alice_laptop, &household));
        assert!(net.create_doc(alice_laptop, &DocId::private(&alice())));
        assert!(net.create_doc(bob_laptop, &DocId::private(&bob())));
        // 3. Everyone writes before connecting.
        assert!(net.edit(alice_laptop, &household, "chores", 1));
        assert!(net.edit(alice_laptop, &DocId::private(&alice()), "battery", 3));
        assert!(net.edit(bob_laptop, &DocId::private(&bob()), "battery", 2));
        // 4. Connect everyone and let it settle.
        net.connect_all();
        net.run_until_quiescent(STEPS).unwrap();
        net.check_converged().unwrap();
        // 5. The household reached everyone; each private doc only its person.
        assert_eq!(value(&net, bob_laptop, &household, "chores"), Some(1));
        assert_eq!(
            value(&net, alice_phone, &DocId::private(&alice()), "battery"),
            Some(3)
        );
        assert!(!net.devices()[bob_laptop]
            .docs
            .contains_key(&DocId::private(&alice())));
        assert!(!net.devices()[alice_phone]
            .docs
            .contains_key(&DocId::private(&bob())));
        // 6. Both sides of every session reported completion for the household.
        let completed = net.devices()[bob_laptop]
            .events
            .iter()
            .filter(|(_, e)| {
                *e == SessionEvent::SyncCompleted {
                    doc: household.clone(),
                }
            })
            .count();
        assert_eq!(completed, 2);
    }

    #[test]
    fn live_edits_are_pushed_without_polling() {
        let mut net = network(2);
        let household = DocId::household();
        let a = net.add_device(alice());
        let b = net.add_device(bob());
        net.create_doc(a, &household);
        net.connect_all();
        net.run_until_quiescent(STEPS).unwrap();
        // 1. With the link idle and no timer armed, a local edit alone reaches Bob.
        net.edit(a, &household, "dishes", 7);
        net.run_until_quiescent(STEPS).unwrap();
        assert_eq!(value(&net, b, &household, "dishes"), Some(7));
        // 2. A burst of edits is debounced but still fully delivered.
        for i in 0..20 {
            net.edit(b, &household, "laundry", i);
        }
        net.run_until_quiescent(STEPS).unwrap();
        net.check_converged().unwrap();
        assert_eq!(value(&net, a, &household, "laundry"), Some(19));
    }

    /// Bytes on the wire when `a` and `b` reconnect after syncing `history` changes.
    fn reconnect_cost(history: i64, persist: Persist) -> u64 {
        let household = DocId::household();
        let mut net = network(3);
        let a = net.add_device(alice());
        let b = net.add_device(bob());
        net.create_doc(a, &household);
        for i in 0..history {
            net.edit(a, &household, &format!("key-{i}"), i);
        }
        net.connect_all();
        net.run_until_quiescent(STEPS).unwrap();
        net.disconnect(a, b, persist);
        let before = net.bytes_sent();
        net.connect(a, b);
        net.run_until_quiescent(STEPS).unwrap();
        net.check_converged().unwrap();
        net.bytes_sent() - before
    }

    #[test]
    fn reconnect_with_persisted_state_sends_heads_not_history() {
        // With persisted states a reconnect costs the same however long the history:
        // heads, not a summary of every change.
        let short = reconnect_cost(20, Persist::Current);
        let long = reconnect_cost(2000, Persist::Current);
        assert!(
            long <= short + 64,
            "{short} bytes after 20 changes, {long} after 2000"
        );
        // Without them, the peers have to compare their whole histories.
        let lost = reconnect_cost(2000, Persist::Lost);
        assert!(
            lost > long + 1000,
            "{lost} bytes without state vs {long} with"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Edit {
            device: usize,
            private: bool,
            key: u8,
            value: i64,
        },
        Deliver(u8),
        Disconnect {
            a: usize,
            b: usize,
            persist: Persist,
        },
        Connect {
            a: usize,
            b: usize,
        },
        Partition(Vec<u8>),
        Heal,
        Tick(u16),
    }

    fn arb_op(devices: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..devices, any::<bool>(), 0u8..6, any::<i64>()).prop_map(
                |(device, private, key, value)| Op::Edit { device, private, key, value }
            ),
            4 => (1u8..40).prop_map(Op::Deliver),
            1 => (0..devices, 0..devices, prop_oneof![
                    Just(Persist::Current), Just(Persist::Stale), Just(Persist::Lost)
                ])
                .prop_map(|(a, b, persist)| Op::Disconnect { a, b, persist }),
            2 => (0..devices, 0..devices).prop_map(|(a, b)| Op::Connect { a, b }),
            1 => proptest::collection::vec(0u8..2, devices).prop_map(Op::Partition),
            1 => Just(Op::Heal),
            1 => (0u16..2000).prop_map(Op::Tick),
        ]
    }

    fn arb_scenario() -> impl Strategy<Value = (u64, Vec<bool>, Vec<Op>)> {
        (2usize..=5).prop_flat_map(|devices| {
            (
                any::<u64>(),
                proptest::collection::vec(any::<bool>(), devices),
                proptest::collection::vec(arb_op(devices), 0..60),
            )
        })
    }

    fn cases() -> u32 {
        if std::env::var_os("HEARTH_LONG_TESTS").is_some_and(|v| v == "1") {
            2000
        } else {
            200
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn replicas_converge_after_healing_and_private_docs_stay_home(
            (seed, is_bob, ops) in arb_scenario()
        ) {
            let mut net = network(seed);
            let household = DocId::household();
            let people: Vec<Uuid> = is_bob.iter().map(|b| if *b { bob() } else { alice() }).collect();
            for person in &people {
                net.add_device(*person);
            }
            // The household starts on device 0, each private doc on its person's first
            // device; everyone else receives them by sync.
            net.create_doc(0, &household);
            for person in [alice(), bob()] {
                if let Some(first) = people.iter().position(|p| *p == person) {
                    net.create_doc(first, &DocId::private(&person));
                }
            }
            net.connect_all();
            for op in ops {
                match op {
                    Op::Edit { device, private, key, value } => {
                        let doc = if private { DocId::private(&people[device]) } else { household.clone() };
                        net.edit(device, &doc, &format!("k{key}"), value);
                    }
                    Op::Deliver(n) => {
                        for _ in 0..n {
                            net.step();
                        }
                    }
                    Op::Disconnect { a, b, persist } => { net.disconnect(a, b, persist); }
                    Op::Connect { a, b } => { net.connect(a, b); }
                    Op::Partition(groups) => net.partition(&groups),
                    Op::Heal => net.heal(),
                    Op::Tick(ms) => {
                        net.advance(Duration::from_millis(u64::from(ms)));
                        net.step();
                    }
                }
                net.check_health().map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            net.heal();
            net.connect_all();
            net.run_until_quiescent(STEPS).map_err(|e| TestCaseError::fail(e.to_string()))?;
            net.check_converged().map_err(|e| TestCaseError::fail(e.to_string()))?;
            // Every device holds every non-empty document it may hold.
            for (index, person) in people.iter().enumerate() {
                for doc in [household.clone(), DocId::private(person)] {
                    let holds = net.devices()[index].heads(&doc).is_some_and(|h| !h.is_empty());
                    let someone_has_data = net.devices().iter()
                        .any(|d| d.heads(&doc).is_some_and(|h| !h.is_empty()));
                    prop_assert_eq!(holds, someone_has_data);
                }
            }
        }
    }
}
