//! The document owner: one thread that holds both documents and their stores, and is
//! their only writer.
//!
//! Control requests (and, later, peer messages) reach it over a channel. It drains
//! whatever is waiting into one batch, applies every call to the in-memory documents,
//! writes one chunk per touched document and fsyncs it (a group commit), and only then
//! answers each call. So a burst of writes shares one fsync, and every answer still means
//! "on disk".
//!
//! It runs on a plain thread rather than a tokio task because its work is blocking file
//! IO; nothing async ever waits on a lock it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::ChangeHash;
use hearth_core::doc::{Doc, DocKind, Docs};
use hearth_core::identity::DeviceId;
use hearth_core::model::{Millis, PersonId};
use hearth_core::provenance::HeadProof;
use hearth_core::sync::{Message, Role, WireForm};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::handlers::{self, Outcome};
use crate::storage::{DataDir, DeviceInfo, DocStore, StoreError};
use crate::sync_hub::{ConnId, Outbound, SyncDriver};
use crate::transport::TrustSet;
use hearth_api::{
    ApiError, BundleCall, DocCall, DocStatus, ErrorCode, Event, PeerStatus, People, PersonSummary,
    RefusedStatus, RosterCall,
};
use hearth_core::roster::RosterExport;

/// The most calls folded into one group commit.
const MAX_BATCH: usize = 512;
/// How long the owner must have had nothing to do before it compacts a store: longer
/// than the gaps inside a burst of writes or a sync exchange, short enough that a
/// person never waits behind it after putting the laptop down.
const COMPACT_WHEN_IDLE: Duration = Duration::from_millis(250);

/// Where a call's answer goes.
type Reply = oneshot::Sender<Result<Value, ApiError>>;

/// The calls the document owner answers, by who answers them on its thread.
#[derive(Debug)]
pub enum OwnerCall {
    /// Entries, the ledger, reads, export and import: `handlers::handle`.
    Doc(DocCall),
    /// The roster, pausing and leaving: `handlers::roster_call`.
    Roster(RosterCall),
    /// Offline bundles: made after the batch's commit, merged like a write.
    Bundle(BundleCall),
}

/// A message for the document owner.
#[derive(Debug)]
pub enum ActorMsg {
    /// A control call.
    Call {
        /// The call.
        call: OwnerCall,
        /// Where the answer goes once it is durable.
        reply: oneshot::Sender<Result<Value, ApiError>>,
    },
    /// Status of the documents.
    Status {
        /// Where the answer goes: documents, then people.
        reply: oneshot::Sender<OwnerStatus>,
    },
    /// Who is who, to name people beside a write's answer.
    People {
        /// Where the answer goes.
        reply: oneshot::Sender<People>,
    },
    /// A peer connection was authenticated; start its sync session.
    PeerConnected {
        /// The connection.
        conn: ConnId,
        /// The peer device.
        device: DeviceId,
        /// Which side dialled.
        role: Role,
        /// The layout its frames use, as the handshake settled.
        form: WireForm,
        /// Where the session's messages go.
        out: mpsc::UnboundedSender<Outbound>,
    },
    /// A connection's writer wrote frames and has nothing more waiting: the sync hub
    /// counts them off the connection's queue.
    Sent {
        /// The connection.
        conn: ConnId,
        /// Frames written since the last report.
        frames: usize,
        /// Their bytes.
        bytes: usize,
    },
    /// A sync message arrived from a peer.
    PeerMessage {
        /// The connection.
        conn: ConnId,
        /// The message.
        message: Message,
    },
    /// A peer connection ended.
    PeerClosed {
        /// The connection.
        conn: ConnId,
    },
    /// A session timer is due.
    Tick,
    /// The people and devices, for pairing.
    Roster {
        /// Where the answer goes.
        reply: oneshot::Sender<RosterExport>,
    },
    /// Adds people and devices learnt in pairing; answered once durable.
    AddToRoster {
        /// What to add.
        roster: RosterExport,
        /// Where the answer goes.
        reply: Reply,
    },
    /// Whether this device holds entries of its own (beyond its roster).
    HoldsEntries {
        /// Where the answer goes.
        reply: oneshot::Sender<bool>,
    },
    /// Whether this device is fresh: no entries, nobody on its roster but itself.
    IsFresh {
        /// Where the answer goes.
        reply: oneshot::Sender<bool>,
    },
    /// Makes this fresh device another device of `person` (an own-device join): its
    /// documents are replaced by a household holding `roster` and `person`'s private
    /// document, and `device_info` (who this device is) is rewritten as the commit point.
    BecomePerson {
        /// The person this device now belongs to.
        person: PersonId,
        /// The roster the inviting device sent.
        roster: RosterExport,
        /// This device's own roster entry under its new person, with its age recipient
        /// (the inviting device writes one too, without it; the two are concurrent
        /// versions of one entry, and bundles read the recipient from either).
        own: Box<hearth_core::model::Device>,
        /// The new `device.json`.
        device_info: DeviceInfo,
        /// Where the answer goes once everything is durable.
        reply: Reply,
    },
    /// Offer every document to every connected peer now.
    SyncNow,
    /// Stop after answering everything queued before this.
    Shutdown {
        /// Signalled once the owner has stopped.
        done: oneshot::Sender<()>,
    },
}

/// A cheap handle to the document owner.
#[derive(Debug, Clone)]
pub struct ActorHandle {
    tx: mpsc::Sender<ActorMsg>,
}

impl ActorHandle {
    /// Sends a call and waits for its durable answer.
    pub async fn call(&self, call: OwnerCall) -> Result<Value, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(ActorMsg::Call { call, reply })
            .await
            .map_err(|_| ApiError::stopping())?;
        answer.await.map_err(|_| ApiError::stopping())?
    }

    /// Who is who; `None` when the owner has stopped.
    pub async fn people(&self) -> Option<People> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(ActorMsg::People { reply }).await.ok()?;
        answer.await.ok()
    }

    /// Document status.
    pub async fn status(&self) -> OwnerStatus {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(ActorMsg::Status { reply }).await.is_err() {
            return Default::default();
        }
        answer.await.unwrap_or_default()
    }

    /// Sends a message that needs no answer. Fails only when the owner has stopped.
    pub async fn send(&self, msg: ActorMsg) -> Result<(), ApiError> {
        self.tx.send(msg).await.map_err(|_| ApiError::stopping())
    }

    /// Stops the owner after it has answered everything queued so far.
    pub async fn shutdown(&self) {
        let (done, stopped) = oneshot::channel();
        if self.tx.send(ActorMsg::Shutdown { done }).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

/// What the owner reports for `status`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct OwnerStatus {
    /// This device's person (it changes once, when a fresh device joins as the same
    /// person as the inviting one).
    pub me: PersonId,
    /// The documents and their size.
    pub documents: Vec<DocStatus>,
    /// Everyone in the household.
    pub people: Vec<PersonSummary>,
    /// Every other live device on the roster, with sync progress.
    pub peers: Vec<PeerStatus>,
    /// Roster entries and removals this device does not trust.
    pub refused: Vec<RefusedStatus>,
    /// The household secret's current epoch, without the secret.
    pub household_epoch: Option<hearth_api::HouseholdEpochStatus>,
}

impl OwnerStatus {
    /// Shows only the pauses that hold at `now`.
    pub fn settle(&mut self, now: Millis) {
        settle_pauses(&mut self.people, now);
    }
}

/// Keeps only the pauses that hold at `now`.
fn settle_pauses(people: &mut [PersonSummary], now: Millis) {
    for person in people {
        person.paused = person.paused.take().filter(|p| p.active_at(now));
    }
}

/// One document with its store and what is already durable.
struct Stored {
    doc_kind: DocKind,
    store: DocStore,
    quarantined: Vec<String>,
    /// Heads that are on disk; the next chunk holds the changes after these.
    durable_heads: Vec<ChangeHash>,
}

/// The document owner's state.
pub struct Actor {
    docs: Docs,
    household: Stored,
    private: Stored,
    events: broadcast::Sender<Event>,
    hub: SyncDriver,
    trust: Arc<TrustSet>,
    me_device: String,
    deadline: watch::Sender<Option<Instant>>,
    identity: age::x25519::Identity,
    /// Signs offline bundles.
    signer: Arc<ring::signature::Ed25519KeyPair>,
    /// Whether sealed answers were looked at since start-up: a key may have become due
    /// while the daemon was stopped.
    reveals_checked: bool,
    /// Which device brought each refused roster entry, as far as this device saw.
    refused_from: BTreeMap<String, String>,
    /// The devices the transport trusts now, to notice when one stops being trusted.
    trusted: BTreeSet<[u8; 32]>,
    /// A device stopped being trusted in this batch: the household secret moves to a
    /// new epoch before anything else goes out.
    trust_shrank: bool,
    /// Documents whose chunks call for compaction, done once the owner is idle for
    /// [`COMPACT_WHEN_IDLE`].
    compaction_due: BTreeSet<DocKind>,
    /// The data directory: the documents, the read cache and `device.json`.
    data_dir: DataDir,
}

fn open_doc(
    data_dir: &DataDir,
    identity: &age::x25519::Identity,
    kind: DocKind,
    actor_id: &automerge::ActorId,
) -> Result<(Doc, Stored), StoreError> {
    let (store, loaded) = DocStore::open(&data_dir.doc(kind), identity)?;
    let durable_heads = loaded.doc.get_heads();
    let mut doc = Doc::from_automerge(kind, loaded.doc, actor_id.clone());
    for bytes in &loaded.proofs {
        // Verified when they were first kept; a damaged one is just left out.
        if let Ok(proof) = HeadProof::decode(bytes) {
            doc.restore_proof(proof);
        }
    }
    Ok((
        doc,
        Stored {
            doc_kind: kind,
            store,
            quarantined: loaded.quarantined,
            durable_heads,
        },
    ))
}

/// Finishes or forgets an own-device join that a crash interrupted. The new
/// `device.json` is the commit point: if it names a person of the household built in
/// `household-joining`, the join happened and the swap is finished; otherwise the
/// half-built household is thrown away and the device is as fresh as before.
fn recover_join(
    data_dir: &DataDir,
    identity: &age::x25519::Identity,
    me: PersonId,
) -> Result<(), StoreError> {
    let joining = data_dir.joining_household();
    if joining.exists() {
        let (_, loaded) = DocStore::open(&joining, identity)?;
        let doc = Doc::from_automerge(DocKind::Household, loaded.doc, automerge::ActorId::random());
        let committed = doc
            .all::<hearth_core::model::Person>()
            .iter()
            .any(|p| p.id == me);
        if committed {
            tracing::warn!("finishing an own-device join that was interrupted");
            data_dir.swap_in_joined_household()?;
        } else {
            tracing::warn!("forgetting an own-device join that did not finish");
            data_dir.remove_joining_household()?;
        }
    }
    data_dir.remove_replaced_household()
}

/// What the owner needs beyond its documents.
pub struct ActorContext {
    /// Where events go.
    pub events: broadcast::Sender<Event>,
    /// The set of keys the QUIC transport accepts; kept equal to the roster.
    pub trust: Arc<TrustSet>,
    /// This device.
    pub device: DeviceId,
    /// Where documents, sync states and the read cache are kept.
    pub data_dir: DataDir,
    /// This device's Ed25519 key, which signs offline bundles.
    pub signer: Arc<ring::signature::Ed25519KeyPair>,
    /// The household secret's epochs, which the owner moves on and adopts.
    pub keys: Arc<crate::epochs::HouseholdKeys>,
}

pub use crate::clock::now_millis;

impl Actor {
    /// Opens both documents from their stores.
    pub fn open(
        identity: &age::x25519::Identity,
        me: hearth_core::model::PersonId,
        ctx: ActorContext,
    ) -> Result<Actor, StoreError> {
        let actor_id = run_actor(&ctx.signer);
        recover_join(&ctx.data_dir, identity, me)?;
        let (household_doc, household) =
            open_doc(&ctx.data_dir, identity, DocKind::Household, &actor_id)?;
        let (private_doc, private) =
            open_doc(&ctx.data_dir, identity, DocKind::Private(me), &actor_id)?;
        let (deadline, _) = watch::channel(None);
        let mut actor = Actor {
            docs: Docs::from_parts(household_doc, private_doc, me),
            household,
            private,
            events: ctx.events,
            hub: SyncDriver::new(
                ctx.device,
                ctx.data_dir.clone(),
                identity.clone(),
                ctx.signer.clone(),
                ctx.keys,
            ),
            trust: ctx.trust,
            me_device: ctx.device.to_string(),
            deadline,
            identity: identity.clone(),
            signer: ctx.signer,
            reveals_checked: false,
            refused_from: BTreeMap::new(),
            trusted: BTreeSet::new(),
            trust_shrank: false,
            compaction_due: BTreeSet::new(),
            data_dir: ctx.data_dir,
        };
        actor.docs.set_device_key(signer_key(&actor.signer));
        actor.note_refusals("this device");
        actor.hub.enforce(&mut actor.docs, now_millis());
        actor.refresh_trust();
        // A household secret that never moved on while devices were removed (or a
        // person left), as a version before epochs left it: move on now.
        let untrusted = actor
            .docs
            .devices()
            .iter()
            .any(|d| d.id != actor.me_device && !actor.hub.policy().trusts(d));
        if untrusted && actor.hub.household_keys().is_legacy() {
            actor.trust_shrank = !actor.hub.settle_epochs(true);
        }
        Ok(actor)
    }

    /// Logs and remembers roster entries refused since the last look, crediting them
    /// to `source`, the device whose changes brought them.
    fn note_refusals(&mut self, source: &str) {
        let Some(verified) = self.docs.verified_roster() else {
            return;
        };
        let now_refused: BTreeSet<String> = verified
            .refused
            .iter()
            .map(|r| r.device_id.clone())
            .chain(
                verified
                    .ignored_removals
                    .iter()
                    .map(|r| format!("removal of {}", r.device_id)),
            )
            .collect();
        self.refused_from.retain(|id, _| now_refused.contains(id));
        for id in now_refused {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.refused_from.entry(id) {
                tracing::warn!(
                    source,
                    "refused a roster entry whose signatures do not hold up"
                );
                slot.insert(source.to_string());
            }
        }
    }

    /// Keeps the transport's trusted keys equal to the devices the policy trusts: on
    /// the roster, not removed, and nobody ended sharing between the two. Notes when a
    /// device stopped being trusted, so the household secret moves on (see
    /// `SyncHub::settle_epochs`).
    fn refresh_trust(&mut self) {
        fn key(d: &hearth_core::model::Device) -> Option<[u8; 32]> {
            let bytes = data_encoding::HEXLOWER
                .decode(d.public_key.as_bytes())
                .ok()?;
            <[u8; 32]>::try_from(bytes.as_slice()).ok()
        }
        let keys: BTreeSet<[u8; 32]> =
            crate::sync_hub::trusted_devices(&self.docs, self.hub.policy(), &self.me_device)
                .iter()
                .filter_map(key)
                .collect();
        // Every other device on the roster, trusted or not: the transport only uses these
        // to name a listener it refuses.
        let known = self
            .docs
            .devices()
            .iter()
            .filter(|d| d.id != self.me_device)
            .filter_map(key)
            .collect::<Vec<_>>();
        self.trust.set_known(known);
        if !self.trusted.is_subset(&keys) {
            self.trust_shrank = true;
        }
        self.trust.replace(keys.iter().copied());
        self.trusted = keys;
    }

    /// The household secret's epochs, shared with pairing and discovery.
    pub fn household_keys(&self) -> Arc<crate::epochs::HouseholdKeys> {
        self.hub.household_keys()
    }

    /// Mutable access to the documents before the owner starts, for initialisation.
    pub fn docs_mut(&mut self) -> &mut Docs {
        &mut self.docs
    }

    /// The documents, read-only.
    pub fn docs(&self) -> &Docs {
        &self.docs
    }

    /// Makes everything in memory durable now. Used at init and shutdown.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let kinds = [DocKind::Household, self.private.doc_kind];
        for kind in kinds {
            self.commit(kind)?;
        }
        Ok(())
    }

    fn parts(&mut self, kind: DocKind) -> (&mut Doc, &mut Stored) {
        if kind == DocKind::Household {
            (&mut self.docs.household, &mut self.household)
        } else {
            (&mut self.docs.private, &mut self.private)
        }
    }

    /// Writes the changes after the durable heads as one chunk.
    fn commit(&mut self, kind: DocKind) -> Result<(), StoreError> {
        let signer = self.signer.clone();
        let (doc, stored) = self.parts(kind);
        let heads = doc.heads();
        if heads == stored.durable_heads {
            return Ok(());
        }
        // This device's own writes get their signed head now, and it is saved with
        // them, together with the heads peers sent for what they wrote.
        doc.sign_latest(&signer);
        let proofs: Vec<Vec<u8>> = doc
            .proofs_mut()
            .take_changed()
            .iter()
            .map(HeadProof::encode)
            .collect();
        let chunk =
            crate::storage::with_proofs(&proofs, doc.automerge().save_after(&stored.durable_heads));
        match stored.store.append_chunk(&chunk) {
            Ok(()) => {
                stored.durable_heads = heads;
                Ok(())
            }
            Err(e) => {
                // Forget what could not be made durable, so memory never runs ahead of
                // the disk: the caller is told the write failed, and it must not
                // reappear later.
                let rolled_back = doc.automerge().fork_at(&stored.durable_heads);
                match rolled_back {
                    // A fresh actor id, so the next change never reuses a sequence number
                    // that the forgotten change had.
                    Ok(am) => {
                        let proofs = doc.proofs().clone();
                        *doc = Doc::from_automerge(kind, am, run_actor(&signer));
                        *doc.proofs_mut() = proofs;
                    }
                    Err(fork) => {
                        tracing::error!(error = %fork, "could not roll back an unsaved change")
                    }
                }
                Err(e)
            }
        }
    }

    /// Marks `kind` for compaction at the next quiet moment if its chunks call for it,
    /// or compacts it now if they have piled up past what waiting is worth.
    fn compact_when_idle(&mut self, kind: DocKind) {
        let store = &self.parts(kind).1.store;
        if store.must_compact() {
            self.compact(kind);
        } else if store.needs_compaction() {
            self.compaction_due.insert(kind);
        }
    }

    /// Compacts every document marked for it.
    fn compact_due(&mut self) {
        for kind in std::mem::take(&mut self.compaction_due) {
            self.compact(kind);
        }
    }

    fn compact(&mut self, kind: DocKind) {
        self.compaction_due.remove(&kind);
        let clock = crate::sync_hub::phases::Clock::start();
        let (doc, stored) = self.parts(kind);
        if stored.store.needs_compaction() {
            let proofs: Vec<Vec<u8>> = doc.proofs().settled().map(HeadProof::encode).collect();
            match stored.store.compact(doc.automerge(), &proofs) {
                Ok(()) => {
                    tracing::info!(doc = %stored.doc_kind.doc_id(), "compacted a document into one snapshot")
                }
                // Compaction is an optimisation: the chunks it would replace are intact.
                Err(e) => {
                    tracing::warn!(doc = %stored.doc_kind.doc_id(), error = %e.for_log(), "compaction failed; will retry later")
                }
            }
        }
        clock.stop(|p| &mut p.compact, 0);
    }

    /// A own-device join on this fresh device: see [`ActorMsg::BecomePerson`].
    ///
    /// The new household is built and made durable beside the old one; then the new
    /// `device.json` is written, which is the commit point ([`recover_join`] finishes or
    /// forgets the join after a crash on either side of it); then the household is
    /// swapped in and both documents are reopened under the new person.
    fn become_person(
        &mut self,
        person: PersonId,
        roster: RosterExport,
        own: hearth_core::model::Device,
        device_info: DeviceInfo,
        now: Millis,
    ) -> Result<Value, ApiError> {
        if !handlers::is_fresh_device(&self.docs, &self.me_device) {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                "this device already holds entries or a household of its own, so it cannot become another device of someone else",
                "join an own-device invite (`hearth pair invite --own-device`) from a fresh device (`hearth init` with a new --data-dir)",
            ));
        }
        if !roster.people.iter().any(|p| p.id == person) {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                "the inviting device sent a roster without its own person",
                "run `hearth pair invite` again on your other device and retry",
            ));
        }
        let old = self.docs.me;
        let store_err = |e: StoreError| storage_error(&e);
        // 1. The new household, durable beside the old one. A fresh actor id: the old
        //    documents' changes must never meet changes with the same sequence numbers.
        let actor_id = run_actor(&self.signer);
        let joining = self.data_dir.joining_household();
        self.data_dir
            .remove_joining_household()
            .map_err(store_err)?;
        let (mut store, loaded) = DocStore::open(&joining, &self.identity).map_err(store_err)?;
        let mut fresh = Docs::from_parts(
            Doc::from_automerge(DocKind::Household, loaded.doc, actor_id.clone()),
            Doc::new(DocKind::Private(person), actor_id.clone()),
            person,
        );
        handlers::add_to_roster(&mut fresh, roster, now)?;
        fresh.put_device(&own, now).map_err(handlers::api_error)?;
        store
            .append_chunk(&fresh.household.automerge().save())
            .map_err(store_err)?;
        drop(store);
        // 2. The commit point.
        if let Err(e) = self.data_dir.write_device_info(&device_info) {
            let _ = self.data_dir.remove_joining_household();
            return Err(store_err(e));
        }
        // 3. Swap and reopen. The sessions (a fresh device has none worth keeping) end.
        self.hub.abandon();
        self.data_dir
            .swap_in_joined_household()
            .map_err(store_err)?;
        self.data_dir
            .remove_doc(DocKind::Private(old))
            .map_err(store_err)?;
        let (household_doc, household) = open_doc(
            &self.data_dir,
            &self.identity,
            DocKind::Household,
            &actor_id,
        )
        .map_err(store_err)?;
        let (private_doc, private) = open_doc(
            &self.data_dir,
            &self.identity,
            DocKind::Private(person),
            &actor_id,
        )
        .map_err(store_err)?;
        self.docs = Docs::from_parts(household_doc, private_doc, person);
        self.household = household;
        self.private = private;
        self.docs.set_device_key(signer_key(&self.signer));
        self.hub.enforce(&mut self.docs, now);
        self.refresh_trust();
        tracing::info!("this device joined as another device of the inviting person");
        Ok(serde_json::json!({ "person_id": person }))
    }

    /// Everyone in the household as `status` shows them, with the pauses that hold at
    /// `now`.
    fn people(&self, now: Millis) -> Vec<PersonSummary> {
        let mut people = self.people_unsettled();
        settle_pauses(&mut people, now);
        people
    }

    /// Everyone in the household with every pause as written, current or not.
    fn people_unsettled(&self) -> Vec<PersonSummary> {
        self.docs
            .people()
            .into_iter()
            .map(|p| PersonSummary {
                id: p.id.to_string(),
                paused: self.docs.pause_of(p.id),
                left_at: self.docs.left_at(p.id),
                name: p.name,
            })
            .collect()
    }

    fn status(&self) -> OwnerStatus {
        let mut status = self.status_unsettled();
        status.settle(now_millis());
        status
    }

    /// The owner's status with every pause as written, current or not: what the read
    /// cache keeps, since a pause may begin or end before it is read.
    fn status_unsettled(&self) -> OwnerStatus {
        let people = self.people_unsettled();
        let documents = [
            (&self.docs.household, &self.household),
            (&self.docs.private, &self.private),
        ]
        .into_iter()
        .map(|(doc, stored)| DocStatus {
            id: stored.doc_kind.doc_id(),
            disk_bytes: stored.store.disk_bytes(),
            records: handlers::record_counts(doc),
            quarantined: stored.quarantined.clone(),
            heads: doc.heads().iter().map(|h| h.to_string()).collect(),
            held_changes: doc.held_count(),
        })
        .collect();
        let peers =
            crate::sync_hub::trusted_devices(&self.docs, self.hub.policy(), &self.me_device)
                .into_iter()
                .map(|d| {
                    let p = self.hub.progress_of(&d.id);
                    PeerStatus {
                        person: people
                            .iter()
                            .find(|x| x.id == d.person.to_string())
                            .map(|x| x.name.clone())
                            .unwrap_or_default(),
                        device_id: d.id,
                        name: d.name,
                        connected: p.connected,
                        last_sync: p.last_sync,
                        last_addr: None,
                        on_hold: p.connected && p.on_hold,
                        held_changes: p.held_changes,
                        refused_changes: p.refused_changes,
                        refused_because: p.refused_because.into_iter().collect(),
                        ..PeerStatus::default()
                    }
                })
                .collect();
        let refused = self
            .docs
            .verified_roster()
            .map(|verified| {
                let sent_by = |id: &str| self.refused_from.get(id).cloned();
                verified
                    .refused
                    .iter()
                    .map(|r| RefusedStatus {
                        device_id: r.device_id.clone(),
                        what: "device".into(),
                        reason: r.reason.to_string(),
                        sent_by: sent_by(&r.device_id),
                    })
                    .chain(verified.ignored_removals.iter().map(|r| RefusedStatus {
                        device_id: r.device_id.clone(),
                        what: "removal".into(),
                        reason: r.reason.to_string(),
                        sent_by: sent_by(&format!("removal of {}", r.device_id)),
                    }))
                    .collect()
            })
            .unwrap_or_default();
        OwnerStatus {
            me: self.docs.me,
            documents,
            people,
            peers,
            refused,
            household_epoch: self.hub.household_keys().current().map(|e| {
                hearth_api::HouseholdEpochStatus {
                    number: e.number,
                    fingerprint: e.fingerprint(),
                }
            }),
        }
    }

    /// Leaves the sealed read cache for the next start (`read_cache`), describing the
    /// store as it is on disk now. Nothing is lost without it.
    fn write_read_cache(&self) {
        let mut status = self.status_unsettled();
        for peer in &mut status.peers {
            // Nobody is connected to a daemon that has just started.
            peer.connected = false;
            peer.on_hold = false;
        }
        if let Err(e) =
            crate::read_cache::write(&self.data_dir, &self.identity.to_public(), &status)
        {
            tracing::warn!(error = %e, "could not leave a read cache; the next start answers after loading");
        }
    }

    /// Starts the owner thread, and a timer task on the current tokio runtime that
    /// wakes it when a session timer is due.
    pub fn spawn(self) -> std::io::Result<ActorHandle> {
        let runtime = tokio::runtime::Handle::current();
        let (tx, rx) = mpsc::channel(4096);
        let mut deadline = self.deadline.subscribe();
        let timer_tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let next = *deadline.borrow_and_update();
                match next {
                    Some(at) => tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {
                            if timer_tx.send(ActorMsg::Tick).await.is_err() {
                                return;
                            }
                            // Wait for the owner to arm the next deadline.
                            if deadline.changed().await.is_err() {
                                return;
                            }
                        }
                        changed = deadline.changed() => if changed.is_err() { return },
                    },
                    None => {
                        if deadline.changed().await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        std::thread::Builder::new()
            .name("hearth-docs".into())
            .spawn(move || {
                let _exit_on_panic = ExitOnPanic(owner_stopped_on_a_bug);
                self.run(rx, runtime);
            })?;
        Ok(ActorHandle { tx })
    }

    fn run(mut self, mut rx: mpsc::Receiver<ActorMsg>, runtime: tokio::runtime::Handle) {
        // A store left with many chunks (a crash, an old version) is compacted at the
        // first quiet moment after start, so the next start opens one snapshot.
        for kind in [DocKind::Household, self.private.doc_kind] {
            if self.parts(kind).1.store.needs_compaction() {
                self.compaction_due.insert(kind);
            }
        }
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        while shutdown.is_none() {
            let first = if self.compaction_due.is_empty() {
                rx.blocking_recv()
            } else {
                // Compaction waits until nothing has come for a moment, so it never
                // holds up a write, a sync round or a read that is under way.
                // The timer is made inside the runtime's context, which `block_on` enters.
                let quiet = async { tokio::time::timeout(COMPACT_WHEN_IDLE, rx.recv()).await };
                match runtime.block_on(quiet) {
                    Ok(next) => next,
                    Err(_quiet) => {
                        self.compact_due();
                        continue;
                    }
                }
            };
            let Some(first) = first else {
                break;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            let clock = crate::sync_hub::phases::Clock::start();
            shutdown = self.handle_batch(batch);
            clock.stop(|p| &mut p.batch, 1);
            crate::sync_hub::phases::report_if_due();
        }
        let flushed = self.flush();
        if let Err(e) = &flushed {
            tracing::error!(error = %e.for_log(), "could not flush at shutdown");
        }
        self.hub.save_all();
        if flushed.is_ok() {
            self.write_read_cache();
        }
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
    }

    /// Applies a batch, commits once per touched document, then answers and lets the
    /// sync sessions send what the batch produced.
    fn handle_batch(&mut self, batch: Vec<ActorMsg>) -> Option<oneshot::Sender<()>> {
        let now = now_millis();
        let mut pending: Vec<(Reply, Result<Outcome, ApiError>)> = Vec::new();
        let mut shutdown = None;
        let mut sync_now = false;
        let mut exports: Vec<(Reply, bool)> = Vec::new();
        for msg in batch {
            match msg {
                // A bundle is made after this batch's commit, so it never carries a
                // change that could still be rolled back.
                ActorMsg::Call {
                    call: OwnerCall::Bundle(BundleCall::BundleExport { all }),
                    reply,
                } => exports.push((reply, all)),
                ActorMsg::Call {
                    call: OwnerCall::Bundle(BundleCall::BundleImport { bundle }),
                    reply,
                } => {
                    let result = handlers::bundle::import(
                        &mut self.docs,
                        &self.identity,
                        &self.me_device,
                        &bundle,
                    );
                    pending.push((reply, result));
                }
                ActorMsg::Call {
                    call: OwnerCall::Roster(call),
                    reply,
                } => {
                    let result = handlers::roster_call(
                        &mut self.docs,
                        &self.me_device,
                        &self.signer,
                        call,
                        now,
                    );
                    pending.push((reply, result));
                }
                ActorMsg::Call {
                    call: OwnerCall::Doc(call),
                    reply,
                } => pending.push((reply, handlers::handle(&mut self.docs, call, now))),
                ActorMsg::Status { reply } => {
                    let _ = reply.send(self.status());
                }
                ActorMsg::People { reply } => {
                    let _ = reply.send(People {
                        me: self.docs.me.to_string(),
                        people: self.people(now),
                    });
                }
                ActorMsg::PeerConnected {
                    conn,
                    device,
                    role,
                    form,
                    out,
                } => self
                    .hub
                    .connected(&mut self.docs, conn, device, role, form, out),
                ActorMsg::Sent {
                    conn,
                    frames,
                    bytes,
                } => self.hub.sent(&mut self.docs, conn, frames, bytes),
                ActorMsg::PeerMessage { conn, message } => {
                    self.hub.message(&mut self.docs, conn, message)
                }
                ActorMsg::PeerClosed { conn } => self.hub.closed(conn),
                ActorMsg::Tick => self.hub.tick(&mut self.docs),
                ActorMsg::Roster { reply } => {
                    let _ = reply.send(RosterExport {
                        people: self.docs.people(),
                        devices: self.docs.devices(),
                        left: self.hub.policy().left.iter().copied().collect(),
                    });
                }
                ActorMsg::AddToRoster { roster, reply } => {
                    let result = handlers::add_to_roster(&mut self.docs, roster, now);
                    pending.push((reply, result));
                }
                ActorMsg::HoldsEntries { reply } => {
                    let _ = reply.send(handlers::holds_entries(&self.docs));
                }
                ActorMsg::IsFresh { reply } => {
                    let _ = reply.send(handlers::is_fresh_device(&self.docs, &self.me_device));
                }
                ActorMsg::BecomePerson {
                    person,
                    roster,
                    own,
                    device_info,
                    reply,
                } => {
                    // Answered at once: the join writes its own files, durably, and the
                    // batch's commit below has nothing of it left to do.
                    let _ = reply.send(self.become_person(person, roster, *own, device_info, now));
                }
                ActorMsg::SyncNow => sync_now = true,
                ActorMsg::Shutdown { done } => shutdown = Some(done),
            }
        }
        // Which documents changed, locally (with the record kinds) or from a peer.
        let mut touched: BTreeMap<DocKind, BTreeSet<&'static str>> = BTreeMap::new();
        for (_, result) in &pending {
            if let Ok(outcome) = result {
                for (doc, kinds) in &outcome.touched {
                    touched
                        .entry(*doc)
                        .or_default()
                        .extend(kinds.iter().copied());
                }
            }
        }
        let remote: BTreeSet<DocKind> = self
            .hub
            .take_remote_changes()
            .iter()
            .filter_map(|id| DocKind::from_doc_id(id))
            .collect();
        // A partner's answer may have arrived (or been written here) that one of this
        // person's sealed answers waits for: publish its key in this same commit.
        let answers_moved = [DocKind::Household, self.private.doc_kind]
            .iter()
            .any(|d| touched.contains_key(d) || remote.contains(d));
        if answers_moved || !self.reveals_checked {
            self.reveals_checked = true;
            match self.docs.publish_reveals(now) {
                Ok(revealed) => {
                    // The key goes into the household document, and the time it was
                    // published beside it in the private one.
                    for (coll, _) in revealed {
                        for doc in [DocKind::Household, self.private.doc_kind] {
                            touched.entry(doc).or_default().insert(coll.key());
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not reveal a sealed answer"),
            }
        }
        // The roster is verified again before anything is committed, so that copies of
        // newly verified entries are kept (in the private document) in the same commit.
        let roster_moved = [DocKind::Household, self.private.doc_kind]
            .iter()
            .any(|d| touched.contains_key(d) || remote.contains(d));
        if roster_moved {
            self.docs.refresh_roster();
            match self.docs.keep_verified_entries(now) {
                Ok(true) => {
                    touched
                        .entry(self.private.doc_kind)
                        .or_default()
                        .insert("devices");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not keep a copy of the verified roster")
                }
            }
        }
        let mut failed: BTreeMap<DocKind, ApiError> = BTreeMap::new();
        for doc in touched.keys().chain(remote.iter()).collect::<BTreeSet<_>>() {
            let clock = crate::sync_hub::phases::Clock::start();
            let committed = self.commit(*doc);
            clock.stop(|p| &mut p.commit, 1);
            if let Err(e) = committed {
                tracing::error!(doc = %doc.doc_id(), error = %e.for_log(), "could not write a chunk");
                failed.insert(*doc, storage_error(&e));
            }
        }
        // The transport must trust a newly paired device before anyone hears the write
        // is done: the pairing driver closes the pairing connection on that answer, and
        // the new device dials back at once.
        let household_changed =
            touched.contains_key(&DocKind::Household) || remote.contains(&DocKind::Household);
        let private_changed =
            touched.contains_key(&self.private.doc_kind) || remote.contains(&self.private.doc_kind);
        if (household_changed || private_changed) && failed.is_empty() {
            let senders = self.hub.take_household_senders();
            let source = if remote.contains(&DocKind::Household) && !senders.is_empty() {
                senders.into_iter().collect::<Vec<_>>().join(", ")
            } else {
                "this device".to_string()
            };
            self.note_refusals(&source);
            self.hub.enforce(&mut self.docs, now);
            self.refresh_trust();
        }
        for (reply, result) in pending {
            let answer = result.and_then(|outcome| {
                match outcome.touched.keys().find_map(|d| failed.get(d)) {
                    Some(err) => Err(err.clone()),
                    None => Ok(outcome.value),
                }
            });
            let _ = reply.send(answer);
        }
        if !failed.is_empty() {
            self.hub.abandon();
        }
        for (reply, all) in exports {
            let hub = &self.hub;
            let known = |device: &DeviceId, doc: &str| hub.known_heads(device, doc);
            let ctx = handlers::bundle::ExportContext {
                signer: &self.signer,
                known_heads: &known,
            };
            let _ = reply.send(handlers::bundle::export(&self.docs, &ctx, all, now));
        }
        for (doc, kinds) in &touched {
            if failed.contains_key(doc) {
                continue;
            }
            let _ = self.events.send(Event::DocChanged {
                doc: doc.doc_id(),
                kinds: kinds.iter().map(|k| k.to_string()).collect(),
                remote: false,
            });
            self.hub.local_change(&mut self.docs, &doc.doc_id());
        }
        for doc in &remote {
            if failed.contains_key(doc) || touched.contains_key(doc) {
                continue;
            }
            let _ = self.events.send(Event::DocChanged {
                doc: doc.doc_id(),
                kinds: Vec::new(),
                remote: true,
            });
            // Pass a peer's change on to the other peers, so it travels along chains of
            // devices that are not all connected to each other.
            self.hub.local_change(&mut self.docs, &doc.doc_id());
        }
        if sync_now {
            for doc in [DocKind::Household, self.private.doc_kind] {
                self.hub.local_change(&mut self.docs, &doc.doc_id());
            }
        }
        // A device stopped being trusted, or a trusted peer sent a newer epoch: settle
        // the household secret before this batch's messages go out.
        if failed.is_empty() {
            let rotate = std::mem::take(&mut self.trust_shrank);
            // A rotation that could not be written is tried again with the next batch.
            self.trust_shrank = !self.hub.settle_epochs(rotate);
        }
        self.hub.release();
        for event in self.hub.take_events() {
            let _ = self.events.send(event);
        }
        let next = self.hub.next_deadline();
        self.deadline.send_if_modified(|current| {
            let changed = *current != next;
            *current = next;
            changed
        });
        for doc in touched.keys().chain(remote.iter()).collect::<BTreeSet<_>>() {
            if !failed.contains_key(doc) {
                self.compact_when_idle(*doc);
            }
        }
        shutdown
    }
}

/// Calls its function if the thread holding it unwinds from a panic.
///
/// Without its owner thread the daemon would go on answering `status` while every
/// write and read waited forever, which looks like a hang to the person using it.
struct ExitOnPanic(fn());

impl Drop for ExitOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.0)();
        }
    }
}

/// Ends the daemon after the owner thread panicked. Every acknowledged write is already
/// on disk, so this is no worse than a crash, and whoever started the daemon (the CLI's
/// autostart, a service manager) can start it again.
fn owner_stopped_on_a_bug() {
    tracing::error!("the document owner stopped on a bug; hearthd exits so that it can be started again (nothing acknowledged is lost)");
    std::process::exit(70);
}

/// The actor id this device writes under until it stops: its key, which every
/// receiver checks against a signed head (`hearth_core::provenance`), and a fresh
/// nonce, so that a change lost in a crash never shares a sequence number with a later
/// one.
pub fn run_actor(signer: &ring::signature::Ed25519KeyPair) -> automerge::ActorId {
    let device = hearth_core::identity::DeviceId::from_public_key(&signer_key(signer));
    hearth_core::provenance::actor_for(&device, rand::random())
}

/// This device's Ed25519 public key.
pub fn signer_key(signer: &ring::signature::Ed25519KeyPair) -> [u8; 32] {
    use ring::signature::KeyPair as _;
    let mut key = [0u8; 32];
    key.copy_from_slice(signer.public_key().as_ref());
    key
}

/// The control API's view of a storage failure.
pub fn storage_error(e: &StoreError) -> ApiError {
    ApiError::new(
        ErrorCode::Storage,
        format!("this could not be saved: {e}"),
        "nothing was saved from this request; everything saved before is safe",
    )
}

#[cfg(test)]
mod panic_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::ExitOnPanic;

    static CALLED: AtomicUsize = AtomicUsize::new(0);

    fn count() {
        CALLED.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn only_a_panicking_owner_thread_ends_the_daemon() {
        let normal = std::thread::spawn(|| {
            let _guard = ExitOnPanic(count);
        });
        assert!(normal.join().is_ok());
        assert_eq!(CALLED.load(Ordering::SeqCst), 0);
        let panicking = std::thread::spawn(|| {
            let _guard = ExitOnPanic(count);
            panic!("a bug in the owner");
        });
        assert!(panicking.join().is_err());
        assert_eq!(CALLED.load(Ordering::SeqCst), 1);
    }
}
