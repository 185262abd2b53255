//! Who wrote a change: actor ids bound to device keys, and signed heads that prove it.
//!
//! This module owns the actor id format, the signed statement a device makes over its
//! latest change ([`HeadProof`]), the book of proofs kept beside each document
//! ([`ProofBook`]), and the pure check that decides which received changes are proven
//! ([`prove`]). It reads no clock and makes no keys; whether a proven device may write
//! what it wrote is [`crate::authority`]'s business.
//!
//! # How a change is proven
//!
//! A device writes under an actor id that starts with its device id (the SHA-256 of
//! its Ed25519 public key), followed by 8 bytes it picks afresh at each start
//! ([`actor_for`]), so a sequence number is never reused even if a crash loses an
//! unsent change. The id rather than the key itself keeps keys out of every place an
//! actor id is shown, logs included. After it writes, the device
//! signs the hash of its latest change ([`HeadProof::sign`]). Every change it made
//! before is in that change's causal history (a change depends on the heads it was
//! written on), so one signature per device covers everything the device ever wrote,
//! whichever of its actor ids wrote it.
//!
//! A receiver accepts a change by actor `id‖nonce` only when it holds a valid proof by
//! a key whose hash is `id`, whose head is the change itself or a descendant of it, and
//! `id` is a device it trusts. A relaying device passes on the proofs it holds, and cannot make
//! new ones for keys that are not its own: what the relayer says is never trusted.
//!
//! **Why heads and not a signature per change:** verifying an Ed25519 signature costs
//! tens of microseconds; a catch-up of a year carries thousands of changes but a
//! handful of devices.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::{ActorId, Automerge, Change, ChangeHash};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use crate::identity::DeviceId;

/// Length of an actor id: the 32-byte device id and an 8-byte nonce.
pub const ACTOR_LEN: usize = 40;
/// Length of an encoded [`HeadProof`].
pub const PROOF_LEN: usize = 1 + 32 + 8 + 32 + 64;
/// Format version of an encoded proof.
const PROOF_VERSION: u8 = 1;
/// Domain separation for the signed statement.
const PROOF_CONTEXT: &[u8] = b"hearth head proof v1\0";
/// Proofs whose head has not arrived yet, kept per document. An honest peer sends a
/// proof just before the changes it covers, so a few per device are plenty.
const MAX_PENDING: usize = 64;
/// Devices told apart in one check; a household has a handful.
const MAX_DEVICES: usize = 64;

/// A proof that could not be read or does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Wrong length or version.
    #[error(
        "a signed head is malformed ({0}); the sending device may run another version of Hearth"
    )]
    Malformed(&'static str),
    /// The signature does not verify.
    #[error("a signed head does not verify; it was not made by the device it names")]
    BadSignature,
}

/// The actor id the device `device` writes under for one run.
pub fn actor_for(device: &DeviceId, nonce: [u8; 8]) -> ActorId {
    let mut bytes = [0u8; ACTOR_LEN];
    bytes[..32].copy_from_slice(device.as_bytes());
    bytes[32..].copy_from_slice(&nonce);
    ActorId::from(&bytes[..])
}

/// The device id an actor id claims, if it has Hearth's format.
pub fn device_of(actor: &ActorId) -> Option<[u8; 32]> {
    let bytes = actor.to_bytes();
    if bytes.len() != ACTOR_LEN {
        return None;
    }
    <[u8; 32]>::try_from(&bytes[..32]).ok()
}

/// A device's signature over the hash of its latest change to one document.
#[derive(Clone, PartialEq, Eq)]
pub struct HeadProof {
    /// The signing device's Ed25519 public key.
    pub device_key: [u8; 32],
    /// Grows with each proof the device makes, so the newest one is known without
    /// walking the history.
    pub counter: u64,
    /// The change it vouches for, with its whole causal history.
    pub head: ChangeHash,
    signature: [u8; 64],
}

impl std::fmt::Debug for HeadProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HeadProof {{ counter: {}, head: {} }}",
            self.counter, self.head
        )
    }
}

fn statement(doc_id: &str, device_key: &[u8; 32], counter: u64, head: &ChangeHash) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROOF_CONTEXT.len() + doc_id.len() + 1 + 32 + 8 + 32);
    out.extend_from_slice(PROOF_CONTEXT);
    out.extend_from_slice(doc_id.as_bytes());
    out.push(0);
    out.extend_from_slice(device_key);
    out.extend_from_slice(&counter.to_be_bytes());
    out.extend_from_slice(&head.0);
    out
}

impl HeadProof {
    /// Signs `head` of document `doc_id` with this device's key.
    pub fn sign(
        signer: &Ed25519KeyPair,
        doc_id: &str,
        head: ChangeHash,
        counter: u64,
    ) -> HeadProof {
        let mut device_key = [0u8; 32];
        device_key.copy_from_slice(signer.public_key().as_ref());
        let sig = signer.sign(&statement(doc_id, &device_key, counter, &head));
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig.as_ref());
        HeadProof {
            device_key,
            counter,
            head,
            signature,
        }
    }

    /// Whether the signature holds for document `doc_id`.
    pub fn verify(&self, doc_id: &str) -> Result<(), ProofError> {
        UnparsedPublicKey::new(&ED25519, self.device_key)
            .verify(
                &statement(doc_id, &self.device_key, self.counter, &self.head),
                &self.signature,
            )
            .map_err(|_| ProofError::BadSignature)
    }

    /// The wire and disk form: version, key, counter, head, signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROOF_LEN);
        out.push(PROOF_VERSION);
        out.extend_from_slice(&self.device_key);
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&self.head.0);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Reads [`HeadProof::encode`]'s form. Does not verify.
    pub fn decode(bytes: &[u8]) -> Result<HeadProof, ProofError> {
        if bytes.len() != PROOF_LEN {
            return Err(ProofError::Malformed("wrong length"));
        }
        if bytes[0] != PROOF_VERSION {
            return Err(ProofError::Malformed("unknown version"));
        }
        let take = |from: usize, to: usize| &bytes[from..to];
        let mut device_key = [0u8; 32];
        device_key.copy_from_slice(take(1, 33));
        let mut counter = [0u8; 8];
        counter.copy_from_slice(take(33, 41));
        let mut head = [0u8; 32];
        head.copy_from_slice(take(41, 73));
        let mut signature = [0u8; 64];
        signature.copy_from_slice(take(73, PROOF_LEN));
        Ok(HeadProof {
            device_key,
            counter: u64::from_be_bytes(counter),
            head: ChangeHash(head),
            signature,
        })
    }
}

/// The proofs one document holds: the newest few per device whose head is in the
/// document, and verified ones still waiting for their head to arrive.
///
/// **Why a few and not one:** a device's history is one line, so its newest signed head
/// covers everything it wrote, except when its history forked: a store restored from an
/// older copy writes on beside what the lost copy wrote. Keeping the newest
/// [`KEPT_PER_DEVICE`] heads keeps both branches provable for the devices that still
/// lack one of them.
#[derive(Debug, Clone, Default)]
pub struct ProofBook {
    /// Per device key, newest first, at most one per actor id (the latest change of
    /// one actor covers its earlier ones).
    settled: BTreeMap<[u8; 32], Vec<Kept>>,
    pending: Vec<HeadProof>,
    /// Devices whose settled proofs changed since [`ProofBook::take_changed`].
    changed: BTreeSet<[u8; 32]>,
}

/// A settled proof, with the actor and sequence number of its head.
#[derive(Debug, Clone)]
struct Kept {
    actor: Option<ActorId>,
    seq: u64,
    proof: HeadProof,
}

/// Signed heads kept per device: one per recent run (actor id) of the device.
pub const KEPT_PER_DEVICE: usize = 4;

impl ProofBook {
    /// Every settled proof, each device's newest first.
    pub fn settled(&self) -> impl Iterator<Item = &HeadProof> {
        self.settled.values().flatten().map(|k| &k.proof)
    }

    /// The newest settled proof of one device.
    pub fn of(&self, device_key: &[u8; 32]) -> Option<&HeadProof> {
        self.settled
            .get(device_key)
            .and_then(|kept| kept.first())
            .map(|k| &k.proof)
    }

    /// Settled and pending proofs, for checking a batch.
    fn all(&self) -> impl Iterator<Item = &HeadProof> {
        self.settled().chain(self.pending.iter())
    }

    /// Files a proof whose head is in `doc` under its device: it replaces a proof of
    /// the same actor with an earlier head, and the oldest beyond [`KEPT_PER_DEVICE`]
    /// go. Returns whether it was kept.
    fn file(&mut self, proof: HeadProof, doc: &Automerge) -> bool {
        let (actor, seq) = match doc.get_change_meta_by_hash(&proof.head) {
            Some(meta) => (Some(meta.actor.into_owned()), meta.seq),
            None => (None, 0),
        };
        let kept = self.settled.entry(proof.device_key).or_default();
        if kept.iter().any(|k| k.proof.head == proof.head) {
            return false;
        }
        if let Some(same) = kept
            .iter()
            .position(|k| actor.is_some() && k.actor == actor)
        {
            if kept[same].seq >= seq {
                return false;
            }
            kept.remove(same);
        }
        let at = kept
            .iter()
            .position(|k| k.proof.counter < proof.counter)
            .unwrap_or(kept.len());
        if at >= KEPT_PER_DEVICE {
            return false;
        }
        kept.insert(at, Kept { actor, seq, proof });
        kept.truncate(KEPT_PER_DEVICE);
        true
    }

    /// Takes a proof whose signature was checked by the caller or made here.
    fn keep(&mut self, proof: HeadProof, doc: &Automerge) {
        if doc.get_change_meta_by_hash(&proof.head).is_some() {
            let device = proof.device_key;
            if self.file(proof, doc) {
                self.changed.insert(device);
            }
        } else if !self.pending.contains(&proof) {
            if self.pending.len() >= MAX_PENDING {
                self.pending.remove(0);
            }
            self.pending.push(proof);
        }
    }

    /// Verifies and keeps a proof a peer sent for document `doc_id`.
    pub fn offer(
        &mut self,
        doc_id: &str,
        proof: HeadProof,
        doc: &Automerge,
    ) -> Result<(), ProofError> {
        proof.verify(doc_id)?;
        self.keep(proof, doc);
        Ok(())
    }

    /// Adds a proof read back from this device's own store (verified when it was
    /// kept), for the document `doc` loaded from the same store.
    pub fn restore(&mut self, proof: HeadProof, doc: &Automerge) {
        self.file(proof, doc);
    }

    /// Moves pending proofs whose head has arrived into the settled set.
    pub fn settle(&mut self, doc: &Automerge) {
        let pending = std::mem::take(&mut self.pending);
        for proof in pending {
            self.keep(proof, doc);
        }
    }

    /// Makes and keeps this device's proof over its latest change in `doc`, if the
    /// book's own proof does not cover it yet. Returns whether a proof was made.
    pub fn sign_latest(&mut self, signer: &Ed25519KeyPair, doc_id: &str, doc: &Automerge) -> bool {
        let Some(latest) = doc.get_last_local_change() else {
            return false;
        };
        let key: [u8; 32] = match signer.public_key().as_ref().try_into() {
            Ok(key) => key,
            Err(_) => return false,
        };
        let head = latest.hash();
        let counter = match self.of(&key) {
            Some(own) if own.head == head => return false,
            Some(own) => own.counter.saturating_add(1),
            None => 1,
        };
        // The counter also grows with time, so a store restored from an old copy does
        // not sign proofs that lose to the ones its peers already hold.
        let counter = counter.max(latest.timestamp().max(0) as u64 * 1000);
        let proof = HeadProof::sign(signer, doc_id, head, counter);
        self.changed.insert(key);
        self.file(proof, doc);
        true
    }

    /// Proofs of the devices whose proofs changed since the last call, to write with
    /// the next chunk.
    pub fn take_changed(&mut self) -> Vec<HeadProof> {
        let changed = std::mem::take(&mut self.changed);
        changed
            .iter()
            .filter_map(|k| self.settled.get(k))
            .flatten()
            .map(|k| k.proof.clone())
            .collect()
    }
}

/// What became of the changes a peer sent: how many were applied, held and refused.
/// Never carries content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// Changes applied.
    pub applied: usize,
    /// Changes held until their author is proven.
    pub held: usize,
    /// Why they are held.
    pub held_because: BTreeSet<Held>,
    /// Changes refused for breaking the authorship rules.
    pub refused: usize,
    /// Why they were refused.
    pub refused_because: BTreeSet<String>,
}

/// Why a received change is not applied yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Held {
    /// Its actor id does not name a device key.
    NotSigned,
    /// The device that wrote it is not one this device trusts.
    UnknownDevice,
    /// No signed head of its device covers it yet.
    Unproven,
    /// It builds on a change that is held.
    DependsOnHeld,
    /// It builds on a change that has not arrived yet.
    WaitsForEarlier,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Held::NotSigned => "it was written without a device signature",
            Held::UnknownDevice => "it was written by a device this one does not trust",
            Held::Unproven => "no signature of the device that wrote it covers it yet",
            Held::DependsOnHeld => "it builds on a change that is held",
            Held::WaitsForEarlier => "it builds on a change that has not arrived yet",
        })
    }
}

/// The outcome of [`prove`] over a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proven {
    /// For each change of the batch, in the caller's order: the id of the device that
    /// proved it, or why it is held.
    pub verdicts: Vec<Result<[u8; 32], Held>>,
}

impl Proven {
    /// Indexes of proven changes.
    pub fn proven(&self) -> impl Iterator<Item = (usize, [u8; 32])> + '_ {
        self.verdicts
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().ok().map(|k| (i, *k)))
    }
}

/// Orders a batch so that every change comes after its dependencies within the batch.
/// Changes in a cycle (impossible for real hashes) come last, in input order.
pub fn causal_order(changes: &[Change]) -> Vec<usize> {
    let index: HashMap<ChangeHash, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash(), i))
        .collect();
    let mut waiting = vec![0usize; changes.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, change) in changes.iter().enumerate() {
        for dep in change.deps() {
            if let Some(&d) = index.get(dep) {
                waiting[i] += 1;
                children[d].push(i);
            }
        }
    }
    let mut ready: Vec<usize> = (0..changes.len()).filter(|&i| waiting[i] == 0).collect();
    ready.reverse();
    let mut order = Vec::with_capacity(changes.len());
    let mut placed = vec![false; changes.len()];
    while let Some(i) = ready.pop() {
        order.push(i);
        placed[i] = true;
        for &child in children[i].iter().rev() {
            waiting[child] -= 1;
            if waiting[child] == 0 {
                ready.push(child);
            }
        }
    }
    order.extend((0..changes.len()).filter(|&i| !placed[i]));
    order
}

/// Decides which changes of a received batch are proven, for a document that holds
/// `book`'s proofs. `trusted` says whether a device id is one this device trusts to
/// write.
///
/// A change is proven when its actor names a trusted device and a proof by that
/// device's key has its head at the change or at a change of the batch that descends
/// from it. A change
/// that depends on a held change within the batch is held too.
pub fn prove(changes: &[Change], book: &ProofBook, trusted: impl Fn(&[u8; 32]) -> bool) -> Proven {
    let order = causal_order(changes);
    let index: HashMap<ChangeHash, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash(), i))
        .collect();
    // One bit per device with a proof whose head is in the batch.
    let mut bits: BTreeMap<[u8; 32], u64> = BTreeMap::new();
    let mut covered = vec![0u64; changes.len()];
    for proof in book.all() {
        let Some(&at) = index.get(&proof.head) else {
            continue;
        };
        let next = bits.len();
        let device = *DeviceId::from_public_key(&proof.device_key).as_bytes();
        let bit = *bits.entry(device).or_insert(next as u64);
        if (bit as usize) < MAX_DEVICES {
            covered[at] |= 1 << bit;
        }
    }
    // Descendants first, so each change passes on everything that covers it.
    for &i in order.iter().rev() {
        let mask = covered[i];
        if mask == 0 {
            continue;
        }
        for dep in changes[i].deps() {
            if let Some(&d) = index.get(dep) {
                covered[d] |= mask;
            }
        }
    }
    let mut verdicts: Vec<Result<[u8; 32], Held>> = vec![Err(Held::Unproven); changes.len()];
    for &i in &order {
        let change = &changes[i];
        let held_dep = change
            .deps()
            .iter()
            .any(|dep| index.get(dep).is_some_and(|&d| verdicts[d].is_err()));
        verdicts[i] = if held_dep {
            Err(Held::DependsOnHeld)
        } else {
            match device_of(change.actor_id()) {
                None => Err(Held::NotSigned),
                Some(key) if !trusted(&key) => Err(Held::UnknownDevice),
                Some(key) => match bits.get(&key) {
                    Some(&bit) if (bit as usize) < MAX_DEVICES && covered[i] & (1 << bit) != 0 => {
                        Ok(key)
                    }
                    _ => Err(Held::Unproven),
                },
            }
        };
    }
    Proven { verdicts }
}

/// Reads the changes a sync message or a bundle carries: change chunks one by one, and
/// a whole-document chunk (which automerge sends when a peer lacks much) through a
/// scratch load. Only changes `doc` does not have yet are returned.
pub fn changes_in(
    chunks: &[&[u8]],
    doc: &Automerge,
) -> Result<Vec<Change>, automerge::AutomergeError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut split = Vec::new();
    for run in chunks {
        split.extend(split_chunks(run));
    }
    for chunk in &split {
        match Change::try_from(*chunk) {
            Ok(change) => {
                if doc.get_change_meta_by_hash(&change.hash()).is_none()
                    && seen.insert(change.hash())
                {
                    out.push(change);
                }
            }
            Err(_) => {
                let scratch = Automerge::load(chunk)?;
                for change in doc.get_changes_added(&scratch) {
                    if seen.insert(change.hash()) {
                        out.push(change);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Automerge's chunk magic bytes.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Splits concatenated Automerge chunks (what `save_after` writes) into single ones.
/// Anything that does not parse as a chunk header is returned whole, for Automerge to
/// judge.
fn split_chunks(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some(len) = chunk_len(rest) else {
            out.push(rest);
            break;
        };
        out.push(&rest[..len]);
        at += len;
    }
    out
}

/// The length of the chunk at the start of `bytes`: magic, checksum, type, LEB128
/// length, body.
fn chunk_len(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < 9 || bytes[..4] != CHUNK_MAGIC {
        return None;
    }
    let mut body: u64 = 0;
    let mut shift = 0;
    let mut at = 9;
    loop {
        let byte = *bytes.get(at)?;
        body |= u64::from(byte & 0x7f).checked_shl(shift)?;
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let end = at.checked_add(usize::try_from(body).ok()?)?;
    (end <= bytes.len()).then_some(end)
}

#[cfg(test)]
mod tests;
