//! Where received changes enter: each is applied only once its author is proven
//! ([`crate::provenance`]) and the rules say the author may write it
//! ([`crate::authority`]). Sync, bundles and imports of bundles all come through here.
//!
//! A change that is not proven yet is held beside the document, not applied and not
//! passed on, and tried again whenever proofs or roster entries arrive. A change that
//! breaks a rule is refused, and so is everything that builds on it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use automerge::{Change, ChangeHash};
use ring::signature::Ed25519KeyPair;

use super::{Doc, DocError, DocKind, Docs};
use crate::authority::{self, Authored};
use crate::model::PersonId;
use crate::provenance::{self, Admission, HeadProof, Held, ProofBook, ProofError};

/// Most changes held per document; beyond it the oldest are dropped (a peer sends them
/// again once their author is proven).
const MAX_HELD: usize = 4096;
/// Most refused change hashes remembered per document.
const MAX_REFUSED: usize = 4096;
/// Rounds of "apply, learn new roster entries, retry what was held" per batch. Each
/// round can only trust devices admitted by the round before, and a household's
/// chains of admission are short.
const MAX_ROUNDS: usize = 4;

impl Doc {
    /// The signed heads kept beside this document.
    pub fn proofs(&self) -> &ProofBook {
        &self.proofs
    }

    /// Mutable access, for the store to restore and collect them.
    pub fn proofs_mut(&mut self) -> &mut ProofBook {
        &mut self.proofs
    }

    /// Keeps a signed head read back from this device's own store, or handed over by
    /// a tool that holds the signing device's copy.
    pub fn restore_proof(&mut self, proof: HeadProof) {
        self.proofs.restore(proof, &self.am);
    }

    /// How many received changes wait for their author to be proven.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Signs this device's latest change, if no proof covers it yet.
    pub fn sign_latest(&mut self, signer: &Ed25519KeyPair) -> bool {
        let doc_id = self.kind.doc_id();
        self.proofs.sign_latest(signer, &doc_id, &self.am)
    }
}

impl Docs {
    fn doc_by_kind(&mut self, kind: DocKind) -> &mut Doc {
        if kind == DocKind::Household {
            &mut self.household
        } else {
            &mut self.private
        }
    }

    fn kind_of(&self, doc_id: &str) -> Result<DocKind, DocError> {
        match DocKind::from_doc_id(doc_id) {
            Some(DocKind::Household) => Ok(DocKind::Household),
            Some(kind) if kind == self.private.kind => Ok(kind),
            _ => Err(DocError::NotMine),
        }
    }

    /// The devices trusted to write `kind`, by device id, with their person: the verified
    /// roster's devices that are not removed, and for a private document only this
    /// person's.
    fn writers(&self, kind: DocKind) -> BTreeMap<[u8; 32], PersonId> {
        let Some(verified) = self.verified_roster() else {
            return BTreeMap::new();
        };
        verified
            .devices
            .iter()
            .filter(|d| d.revoked_at.is_none())
            .filter(|d| kind == DocKind::Household || d.person == self.me)
            .filter_map(|d| {
                let key = crate::roster::parse_key(&d.public_key).ok()?;
                Some((
                    *crate::identity::DeviceId::from_public_key(&key).as_bytes(),
                    d.person,
                ))
            })
            .collect()
    }

    /// Checks changes a peer sent for `doc_id` and applies those that are proven and
    /// allowed. `chunks` are the change or document chunks of a sync message or bundle.
    pub fn admit(&mut self, doc_id: &str, chunks: &[&[u8]]) -> Result<Admission, DocError> {
        let kind = self.kind_of(doc_id)?;
        let doc = self.doc_by_kind(kind);
        let received = provenance::changes_in(chunks, &doc.am).map_err(DocError::Automerge)?;
        Ok(self.admit_changes(kind, received))
    }

    /// Checks a bundle's changes: all of them must be proven and allowed, or nothing
    /// is applied. Returns the admission, whose `held` and `refused` are zero on success.
    pub fn admit_all_or_nothing(
        &mut self,
        doc_id: &str,
        chunks: &[&[u8]],
        proofs: &[Vec<u8>],
    ) -> Result<Admission, DocError> {
        let kind = self.kind_of(doc_id)?;
        let mut trial = self.clone();
        let doc = trial.doc_by_kind(kind);
        let received = provenance::changes_in(chunks, &doc.am).map_err(DocError::Automerge)?;
        for bytes in proofs {
            let proof = HeadProof::decode(bytes)?;
            doc.proofs.offer(doc_id, proof, &doc.am)?;
        }
        let admission = trial.admit_changes(kind, received);
        if admission.held == 0 && admission.refused == 0 {
            *self = trial;
        }
        Ok(admission)
    }

    /// Signed heads a peer sent for `doc_id`; whatever they let through is applied.
    pub fn offer_proofs(
        &mut self,
        doc_id: &str,
        proofs: &[Vec<u8>],
    ) -> Result<Admission, ProofError> {
        let kind = self
            .kind_of(doc_id)
            .map_err(|_| ProofError::Malformed("unknown document"))?;
        let doc = self.doc_by_kind(kind);
        for bytes in proofs {
            let proof = HeadProof::decode(bytes)?;
            doc.proofs.offer(doc_id, proof, &doc.am)?;
        }
        if doc.held.is_empty() {
            return Ok(Admission::default());
        }
        Ok(self.admit_changes(kind, Vec::new()))
    }

    /// Whether `doc_id` has, holds or refused the change `hash`.
    pub fn has_seen(&self, doc_id: &str, hash: &ChangeHash) -> bool {
        let doc = match DocKind::from_doc_id(doc_id) {
            Some(DocKind::Household) => &self.household,
            Some(kind) if kind == self.private.kind => &self.private,
            _ => return false,
        };
        doc.am.get_change_meta_by_hash(hash).is_some()
            || doc.refused.contains(hash)
            || doc.held.iter().any(|c| c.hash() == *hash)
    }

    /// The signed heads to send with `doc_id`'s changes, this device's own included.
    pub fn proofs_to_send(
        &mut self,
        doc_id: &str,
        signer: Option<&Ed25519KeyPair>,
    ) -> Vec<Vec<u8>> {
        let Ok(kind) = self.kind_of(doc_id) else {
            return Vec::new();
        };
        let doc = self.doc_by_kind(kind);
        // Proofs whose head came in since (by any path) are passed on too.
        doc.proofs.settle(&doc.am);
        if let Some(signer) = signer {
            doc.sign_latest(signer);
        }
        doc.proofs.settled().map(HeadProof::encode).collect()
    }

    fn admit_changes(&mut self, kind: DocKind, received: Vec<Change>) -> Admission {
        let mut admission = Admission::default();
        let mut batch = {
            let doc = self.doc_by_kind(kind);
            let mut seen: HashSet<ChangeHash> = HashSet::new();
            let mut batch: Vec<Change> = std::mem::take(&mut doc.held)
                .into_iter()
                .chain(received)
                .filter(|c| seen.insert(c.hash()))
                .filter(|c| doc.am.get_change_meta_by_hash(&c.hash()).is_none())
                .collect();
            let known_bad = batch.len();
            batch.retain(|c| !doc.refused.contains(&c.hash()));
            let known_bad = known_bad - batch.len();
            if known_bad > 0 {
                admission.refused += known_bad;
                admission
                    .refused_because
                    .insert("it was refused before".to_string());
            }
            batch
        };
        for _ in 0..MAX_ROUNDS {
            if batch.is_empty() {
                break;
            }
            let writers = self.writers(kind);
            let doc = self.doc_by_kind(kind);
            let proven = provenance::prove(&batch, &doc.proofs, |k| writers.contains_key(k));
            let present =
                |doc: &Doc, hash: &ChangeHash| doc.am.get_change_meta_by_hash(hash).is_some();
            // Proven changes whose earlier changes are all here or proven in this batch.
            let order = provenance::causal_order(&batch);
            let mut ready: BTreeSet<usize> = BTreeSet::new();
            let mut hold: BTreeMap<usize, Held> = BTreeMap::new();
            let mut refuse: BTreeMap<usize, String> = BTreeMap::new();
            let index: std::collections::HashMap<ChangeHash, usize> = batch
                .iter()
                .enumerate()
                .map(|(i, c)| (c.hash(), i))
                .collect();
            for &i in &order {
                let change = &batch[i];
                if change.deps().iter().any(|d| {
                    doc.refused.contains(d) || index.get(d).is_some_and(|j| refuse.contains_key(j))
                }) {
                    refuse.insert(i, "it builds on a change that was refused".to_string());
                    continue;
                }
                match proven.verdicts[i] {
                    Err(why) => {
                        hold.insert(i, why);
                    }
                    Ok(_) => {
                        let deps_ok = change.deps().iter().all(|d| match index.get(d) {
                            Some(j) => ready.contains(j),
                            None => present(doc, d),
                        });
                        if deps_ok {
                            ready.insert(i);
                        } else {
                            let why = if change.deps().iter().any(|d| index.contains_key(d)) {
                                Held::DependsOnHeld
                            } else {
                                Held::WaitsForEarlier
                            };
                            hold.insert(i, why);
                        }
                    }
                }
            }
            // The rules, over the proven and complete part, in causal order.
            let candidates: Vec<usize> = order
                .iter()
                .copied()
                .filter(|i| ready.contains(i))
                .collect();
            let authored: Vec<Authored<'_>> = candidates
                .iter()
                .filter_map(|&i| {
                    let device = provenance::device_of(batch[i].actor_id())?;
                    Some(Authored {
                        change: &batch[i],
                        person: *writers.get(&device)?,
                    })
                })
                .collect();
            let verdict = authority::check_changes(&doc.am, kind, &authored);
            let mut accepted: BTreeSet<usize> = BTreeSet::new();
            for pos in verdict.accepted {
                if let Some(&i) = candidates.get(pos) {
                    accepted.insert(i);
                }
            }
            for (pos, breach) in verdict.refused {
                if let Some(&i) = candidates.get(pos) {
                    refuse.insert(i, breach.to_string());
                }
            }
            let to_apply: Vec<Change> = order
                .iter()
                .filter(|i| accepted.contains(i))
                .map(|&i| batch[i].clone())
                .collect();
            let applied = to_apply.len();
            if applied > 0 {
                if let Err(e) = doc.am.apply_changes(to_apply) {
                    tracing::warn!(error = %e, "received changes could not be applied");
                }
            }
            for (&i, why) in &refuse {
                admission.refused += 1;
                admission.refused_because.insert(why.clone());
                if doc.refused.len() < MAX_REFUSED {
                    doc.refused.insert(batch[i].hash());
                }
            }
            admission.applied += applied;
            doc.proofs.settle(&doc.am);
            let mut still: Vec<(usize, Held)> = hold.into_iter().collect();
            // Whatever was ready but not judged (no person for its key) waits too.
            for &i in &candidates {
                if !accepted.contains(&i) && !refuse.contains_key(&i) {
                    still.push((i, Held::UnknownDevice));
                }
            }
            still.sort_unstable_by_key(|(i, _)| *i);
            let reasons: BTreeSet<Held> = still.iter().map(|(_, why)| *why).collect();
            let mut keep = vec![false; batch.len()];
            for (i, _) in &still {
                keep[*i] = true;
            }
            batch = batch
                .into_iter()
                .enumerate()
                .filter(|(i, _)| keep[*i])
                .map(|(_, c)| c)
                .collect();
            let learnt = applied > 0 && kind == DocKind::Household;
            if batch.is_empty() || !learnt {
                admission.held_because = reasons;
                break;
            }
            // New roster entries may vouch for devices whose changes wait.
            self.refresh_roster();
            admission.held_because = reasons;
        }
        let doc = self.doc_by_kind(kind);
        admission.held = batch.len();
        if batch.len() > MAX_HELD {
            let drop = batch.len() - MAX_HELD;
            batch.drain(..drop);
        }
        doc.held = batch;
        admission
    }
}
