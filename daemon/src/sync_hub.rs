//! The document owner's side of sync: one [`Session`] per connected peer, driven with
//! the documents the owner holds.
//!
//! The network tasks in [`crate::net`] only move frames; every session input and output
//! happens here, on the owner's thread, so the sessions can touch the documents without
//! locks. Outgoing messages are held until the batch they came from has been committed,
//! so a peer never receives a change this device could still lose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use automerge::Automerge;
use hearth_core::doc::Docs;
use hearth_core::identity::DeviceId;
use hearth_core::model::{Device, Millis};
use hearth_core::sync::{
    DocAccess, DocId, Message, Role, Session, SessionConfig, SessionEvent, SyncLimits,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::api::Event;
use crate::storage;

/// Identifies one network connection for its lifetime.
pub type ConnId = u64;

/// What the owner tells a connection's task to do.
#[derive(Debug)]
pub enum Outbound {
    /// Send this message.
    Send(Message),
    /// Close the connection with this application error code.
    Close(u32),
}

/// Sync progress with one peer device, for `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeerProgress {
    /// Connected and past the sync handshake.
    pub connected: bool,
    /// Last time a document finished syncing with it.
    pub last_sync: Option<Millis>,
}

struct Link {
    device: DeviceId,
    session: Session,
    out: mpsc::UnboundedSender<Outbound>,
    ready: bool,
    last_saved: Option<Instant>,
}

/// Gives sessions the owner's documents.
struct DocsAccess<'a>(&'a mut Docs);

impl DocAccess for DocsAccess<'_> {
    fn doc_mut(&mut self, id: &DocId) -> Option<&mut Automerge> {
        self.0.by_id_mut(id.as_str()).map(|d| d.automerge_mut())
    }
}

/// How often, at most, a live session's sync states are written to disk. They are
/// always written when the connection ends; this bounds what a crash can lose.
const SAVE_INTERVAL: Duration = Duration::from_secs(30);

/// All sessions of this device.
pub struct SyncHub {
    epoch: Instant,
    me: DeviceId,
    sync_dir: PathBuf,
    identity: age::x25519::Identity,
    links: BTreeMap<ConnId, Link>,
    progress: BTreeMap<String, PeerProgress>,
    held: Vec<(ConnId, Outbound)>,
    /// Documents a peer changed in this batch, to commit and announce.
    pub remote_changes: BTreeSet<String>,
    /// Events to publish once the batch is durable.
    pub events: Vec<Event>,
    limits: SyncLimits,
}

#[derive(Serialize, Deserialize, Default)]
struct SavedStates {
    states: BTreeMap<String, String>,
}

impl SyncHub {
    /// An empty hub.
    pub fn new(me: DeviceId, sync_dir: PathBuf, identity: age::x25519::Identity) -> SyncHub {
        SyncHub {
            epoch: Instant::now(),
            me,
            sync_dir,
            identity,
            links: BTreeMap::new(),
            progress: BTreeMap::new(),
            held: Vec::new(),
            remote_changes: BTreeSet::new(),
            events: Vec::new(),
            limits: SyncLimits::default(),
        }
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
    ) {
        let roster = docs.devices();
        let Some(entry) = roster.iter().find(|d| d.id == device.to_string()) else {
            tracing::info!(peer = %device, "closing a connection from a device not on the roster");
            let _ = out.send(Outbound::Close(
                hearth_core::sync::ApplicationErrorCode::ProtocolViolation.as_u32(),
            ));
            return;
        };
        let mut allowed = BTreeSet::from([DocId::household()]);
        if entry.person == docs.me {
            allowed.insert(DocId::private(&docs.me));
        }
        let config = SessionConfig {
            local: self.me,
            remote: device,
            role,
            allowed_docs: allowed,
            persisted: self.load_states(&device),
            limits: self.limits,
        };
        let session = Session::new(config, self.now());
        self.links.insert(
            conn,
            Link {
                device,
                session,
                out,
                ready: false,
                last_saved: None,
            },
        );
        self.drain(docs, conn);
    }

    /// Feeds one message from a peer.
    pub fn message(&mut self, docs: &mut Docs, conn: ConnId, message: Message) {
        let now = self.now();
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        let result = link
            .session
            .handle_message(now, message, &mut DocsAccess(docs));
        self.drain(docs, conn);
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
                self.progress.entry(device.clone()).or_default().connected = false;
                self.events.push(Event::PeerDown { device });
            }
        }
    }

    /// Pushes a committed local change of `doc` to every peer that may see it.
    pub fn local_change(&mut self, docs: &mut Docs, doc: &str) {
        let now = self.now();
        let doc_id = DocId::new(doc);
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            if let Some(link) = self.links.get_mut(&conn) {
                if let Err(e) =
                    link.session
                        .handle_local_change(now, &doc_id, &mut DocsAccess(docs))
                {
                    self.held.push((conn, Outbound::Close(e.code().as_u32())));
                }
            }
            self.drain(docs, conn);
        }
    }

    /// Fires due timers.
    pub fn tick(&mut self, docs: &mut Docs) {
        let now = self.now();
        let due: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.session.poll_timeout().is_some_and(|t| t <= now))
            .map(|(c, _)| *c)
            .collect();
        for conn in due {
            if let Some(link) = self.links.get_mut(&conn) {
                if let Err(e) = link.session.handle_timeout(now, &mut DocsAccess(docs)) {
                    tracing::info!(error = %e, "a sync session timed out");
                    self.held.push((conn, Outbound::Close(e.code().as_u32())));
                }
            }
            self.drain(docs, conn);
        }
    }

    /// When the next timer is due, as an instant.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|l| l.session.poll_timeout())
            .min()
            .map(|d| self.epoch + d)
    }

    /// Sends everything held back in this batch, now that it is durable.
    pub fn release(&mut self) {
        for (conn, out) in self.held.drain(..) {
            if let Some(link) = self.links.get(&conn) {
                let _ = link.out.send(out);
            }
        }
    }

    /// Drops what this batch would have sent and closes every connection: a commit
    /// failed, so the documents were rolled back and the sessions' view of them is stale.
    /// The peers reconnect and resync from what is on disk.
    pub fn abandon(&mut self) {
        self.held.clear();
        for link in self.links.values() {
            let _ = link.out.send(Outbound::Close(
                hearth_core::sync::ApplicationErrorCode::RemoteError.as_u32(),
            ));
        }
    }

    /// Closes connections with devices that are no longer on the roster or were revoked.
    pub fn enforce_roster(&mut self, roster: &[Device]) {
        let trusted: BTreeSet<&str> = roster
            .iter()
            .filter(|d| d.revoked_at.is_none())
            .map(|d| d.id.as_str())
            .collect();
        for link in self.links.values() {
            if !trusted.contains(link.device.to_string().as_str()) {
                tracing::info!(peer = %link.device, "closing the connection of a removed device");
                let _ = link.out.send(Outbound::Close(
                    crate::transport::CloseReason::Revoked.code().into_inner() as u32,
                ));
            }
        }
    }

    /// Saves every live session's sync states, at shutdown.
    pub fn save_all(&mut self) {
        for link in self.links.values() {
            self.save_states(link);
        }
    }

    fn drain(&mut self, docs: &mut Docs, conn: ConnId) {
        let _ = docs;
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        while let Some(message) = link.session.poll_transmit() {
            self.held.push((conn, Outbound::Send(message)));
        }
        let mut save = false;
        let device = link.device.to_string();
        while let Some(event) = link.session.poll_event() {
            match event {
                SessionEvent::PeerReady => {
                    link.ready = true;
                    self.progress.entry(device.clone()).or_default().connected = true;
                    self.events.push(Event::PeerUp {
                        device: device.clone(),
                    });
                }
                SessionEvent::DocChanged { doc } => {
                    self.remote_changes.insert(doc.as_str().to_string());
                }
                SessionEvent::SyncCompleted { doc } => {
                    self.progress.entry(device.clone()).or_default().last_sync =
                        Some(crate::actor::now_millis());
                    self.events.push(Event::SyncCompleted {
                        device: device.clone(),
                        doc: doc.as_str().to_string(),
                    });
                    save = link.last_saved.is_none_or(|t| t.elapsed() >= SAVE_INTERVAL);
                }
                SessionEvent::DocUnavailable { .. }
                | SessionEvent::ReconciliationAborted { .. } => {}
                _ => {}
            }
        }
        if save {
            link.last_saved = Some(Instant::now());
            let link = &self.links[&conn];
            self.save_states(link);
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

    fn state_file(device: &DeviceId) -> String {
        format!("{}.hearth", device.to_string().replace('-', ""))
    }

    fn load_states(&self, device: &DeviceId) -> Vec<(DocId, Vec<u8>)> {
        let path = self.sync_dir.join(Self::state_file(device));
        let Ok(sealed) = std::fs::read(&path) else {
            return Vec::new();
        };
        let parsed = hearth_core::envelope::open(&self.identity, &sealed)
            .ok()
            .and_then(|plain| serde_json::from_slice::<SavedStates>(&plain).ok());
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
        let saved = SavedStates {
            states: link
                .session
                .persisted_states()
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
                hearth_core::envelope::seal(&self.identity.to_public(), &plain)
                    .map_err(|e| e.to_string())
            })
            .and_then(|sealed| {
                crate::paths::ensure_private_dir(&self.sync_dir)
                    .and_then(|()| {
                        storage::atomic_write(
                            &self.sync_dir,
                            &Self::state_file(&link.device),
                            &sealed,
                        )
                    })
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            // Losing a sync state costs one fuller exchange next time, never data.
            tracing::warn!(peer = %link.device, error = %e, "could not save a sync state");
        }
    }
}
