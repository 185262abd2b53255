//! `DocStore`: one document's snapshot and chunk files, with the signed heads in front
//! of each, opened, appended to and compacted.

use super::*;

/// The directory of document `doc_name` under `data_dir`.
///
/// Names are plain identifiers chosen by hearthd (for example `household`), never user
/// input; anything that could escape the directory is refused.
pub fn doc_dir(data_dir: &Path, doc_name: &str) -> Result<PathBuf, StoreError> {
    let valid = !doc_name.is_empty()
        && doc_name.len() <= 128
        && doc_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(StoreError::InvalidDocName {
            name: doc_name.chars().take(64).collect(),
        });
    }
    Ok(data_dir.join(DOCS_DIR).join(doc_name))
}

/// What [`DocStore::open`] found.
#[derive(Debug)]
pub struct Loaded {
    /// The document: the snapshot, then every chunk that loaded, in order.
    pub doc: Automerge,
    /// File names moved to `quarantine/` during this open.
    pub quarantined: Vec<String>,
    /// Signed heads saved beside the changes (`hearth_core::provenance`), oldest first.
    pub proofs: Vec<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub(super) struct StoredFile {
    name: String,
    /// Size on disk, sealed.
    len: u64,
}

/// The files of one document, and the only writer of them.
///
/// Hold the [`DataDirLock`] while a `DocStore` exists: two writers would reuse sequence
/// numbers.
#[derive(Debug)]
pub struct DocStore {
    dir: PathBuf,
    recipient: age::x25519::Recipient,
    /// The current snapshot; its generation is in its name.
    snapshot: Option<StoredFile>,
    /// Chunks loaded at open or written since, all at or above the snapshot generation.
    pub(super) chunks: Vec<StoredFile>,
    /// The number of the next chunk. Never reused, even after a failed write.
    next_seq: u64,
    /// Files a finished snapshot covers but that could not be removed yet.
    obsolete: Vec<String>,
}

/// A point inside [`DocStore::compact`], reported to the test hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CompactionStep {
    /// The new snapshot is durable under its final name.
    SnapshotWritten,
    /// One covered file was removed (not yet fsynced); `left` more to go.
    FileRemoved { left: usize },
}

/// A file the directory listing recognised.
pub(super) enum Entry {
    Snapshot(u64, String),
    Chunk(u64, String),
    Temp(String),
}

impl DocStore {
    /// Opens (creating if needed) the document directory `dir` and loads the document.
    ///
    /// Leftover temp files are removed, covered files from an interrupted compaction are
    /// removed, and chunks that fail to decrypt or load are moved to `quarantine/`. All of
    /// that happens only after every file was read and the identity was found to be the
    /// right one, so a wrong identity changes nothing.
    pub fn open(
        dir: &Path,
        identity: &age::x25519::Identity,
    ) -> Result<(Self, Loaded), StoreError> {
        create_private_dir(dir).map_err(io_error("create document directory", dir))?;
        let doc_label = doc_label(dir);

        let mut snapshots = Vec::new();
        let mut chunks = Vec::new();
        let mut temps = Vec::new();
        for entry in list(dir)? {
            match entry {
                Entry::Snapshot(generation, name) => snapshots.push((generation, name)),
                Entry::Chunk(seq, name) => chunks.push((seq, name)),
                Entry::Temp(name) => temps.push(name),
            }
        }
        snapshots.sort_unstable();
        chunks.sort_unstable();

        // Decide everything before touching the disk.
        let recipient = identity.to_public();
        let key_id = envelope::key_id(&recipient);
        let mut doc = Automerge::new();
        let mut snapshot = None;
        let mut obsolete = Vec::new();
        let mut found_wrong_key = None;
        let mut proofs = Vec::new();
        // The snapshot's plaintext and where its document starts: kept to start again
        // from, should the chunks fail to apply as one batch.
        let mut snapshot_plain: Option<(Vec<u8>, usize)> = None;
        let generation = match snapshots.pop() {
            Some((generation, name)) => {
                let path = dir.join(&name);
                let sealed = fs::read(&path).map_err(io_error("read snapshot", &path))?;
                let plain = match envelope::open_as(identity, key_id, &sealed) {
                    Ok(plain) => plain,
                    Err(EnvelopeError::WrongKey { expected, found }) => {
                        return Err(StoreError::WrongIdentity {
                            dir: dir.to_owned(),
                            expected,
                            found,
                        })
                    }
                    Err(e) => {
                        return Err(StoreError::SnapshotUnreadable {
                            path,
                            reason: e.to_string(),
                        })
                    }
                };
                let (snapshot_proofs, body) =
                    split_proofs(&plain).map_err(|reason| StoreError::SnapshotUnreadable {
                        path: path.clone(),
                        reason: reason.to_string(),
                    })?;
                proofs.extend(snapshot_proofs);
                doc = load_snapshot(body).map_err(|e| StoreError::SnapshotUnreadable {
                    path: path.clone(),
                    reason: format!("it decrypts but does not load: {e}"),
                })?;
                let body_start = plain.len() - body.len();
                snapshot_plain = Some((plain, body_start));
                snapshot = Some(StoredFile {
                    name,
                    len: sealed.len() as u64,
                });
                // Older snapshots are covered by this one.
                obsolete.extend(snapshots.into_iter().map(|(_, name)| name));
                generation
            }
            None => 0,
        };

        let next_seq = chunks
            .last()
            .map_or(generation, |(seq, _)| (seq + 1).max(generation));
        let mut live = Vec::new();
        let mut bad = Vec::new();
        for (seq, name) in chunks {
            if seq < generation {
                obsolete.push(name);
                continue;
            }
            let path = dir.join(&name);
            let sealed = fs::read(&path).map_err(io_error("read chunk", &path))?;
            match envelope::open_as(identity, key_id, &sealed) {
                Ok(plain) => live.push((name, sealed.len() as u64, plain)),
                Err(e) => {
                    if let EnvelopeError::WrongKey { expected, found } = &e {
                        found_wrong_key.get_or_insert((*expected, *found));
                    }
                    bad.push((name, e.to_string()));
                }
            }
        }
        // Nothing readable and at least one file for another key: this is the wrong
        // identity, not a pile of damaged files.
        if snapshot.is_none() && live.is_empty() {
            if let Some((expected, found)) = found_wrong_key {
                return Err(StoreError::WrongIdentity {
                    dir: dir.to_owned(),
                    expected,
                    found,
                });
            }
        }

        // Each chunk is parsed strictly on its own, then all the good ones are applied
        // in one batch: Automerge applies a batch about ten times faster than the same
        // changes chunk by chunk. Should the batch fail as a whole, the chunks are
        // applied one by one to a fresh copy, so one bad chunk costs only itself.
        let mut loaded_chunks = Vec::new();
        let mut parsed_chunks: Vec<ParsedChunk> = Vec::new();
        let mut batch: Vec<u8> = Vec::new();
        for (name, len, plain) in live {
            let parsed = split_proofs(&plain)
                .map_err(str::to_string)
                .and_then(|(chunk_proofs, body)| check_chunk(body).map(|()| (chunk_proofs, body)));
            match parsed {
                Ok((proofs, body)) => {
                    let start = batch.len();
                    batch.extend_from_slice(body);
                    parsed_chunks.push(ParsedChunk {
                        name,
                        len,
                        proofs,
                        body: start..batch.len(),
                    });
                }
                Err(reason) => bad.push((name, format!("it decrypts but does not load: {reason}"))),
            }
        }
        let batched = batch.is_empty() || doc.load_incremental(&batch).is_ok();
        if !batched {
            doc = match &snapshot_plain {
                // It loaded a moment ago.
                Some((plain, start)) => load_snapshot(&plain[*start..]).unwrap_or_default(),
                None => Automerge::new(),
            };
        }
        for ParsedChunk {
            name,
            len,
            proofs: chunk_proofs,
            body,
        } in parsed_chunks
        {
            if !batched {
                if let Err(e) = doc.load_incremental(&batch[body]) {
                    bad.push((name, format!("it decrypts but does not load: {e}")));
                    continue;
                }
            }
            proofs.extend(chunk_proofs);
            loaded_chunks.push(StoredFile { name, len });
        }

        // Now act on the disk.
        for name in &temps {
            remove_if_present(&dir.join(name))?;
        }
        for name in &obsolete {
            tracing::info!(doc = %doc_label, file = %name, "removing a file an interrupted compaction left behind");
            remove_if_present(&dir.join(name))?;
        }
        let mut quarantined = Vec::new();
        for (name, reason) in bad {
            tracing::warn!(
                doc = %doc_label,
                file = %name,
                %reason,
                "moved an unreadable chunk to quarantine/; its changes will come back from a paired device through sync"
            );
            quarantine(dir, &name)?;
            quarantined.push(name);
        }
        if !(temps.is_empty() && obsolete.is_empty() && quarantined.is_empty()) {
            sync_dir(dir).map_err(io_error("sync directory", dir))?;
        }

        let store = DocStore {
            dir: dir.to_owned(),
            recipient,
            snapshot,
            chunks: loaded_chunks,
            next_seq,
            obsolete: Vec::new(),
        };
        Ok((
            store,
            Loaded {
                doc,
                quarantined,
                proofs,
            },
        ))
    }

    /// The document directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` (for example `Automerge::save_after` of the last persisted heads)
    /// as the next chunk. Durable when it returns `Ok`.
    ///
    /// On error the chunk must be treated as not written: include its changes in the next
    /// append. If the failure came after the rename, the file may still load at the next
    /// open; Automerge applies a change only once, so the duplicate is harmless. Empty
    /// input writes nothing.
    pub fn append_chunk(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let sealed = envelope::seal(&self.recipient, bytes)?;
        let name = chunk_name(self.next_seq);
        // Burn the number before touching the disk: after a failure a file with this
        // name may exist, and a retry must never replace it.
        self.next_seq += 1;
        atomic_write(&self.dir, &name, &sealed)
            .map_err(io_error("write chunk", &self.dir.join(&name)))?;
        self.chunks.push(StoredFile {
            name,
            len: sealed.len() as u64,
        });
        Ok(())
    }

    /// True when the chunks outweigh the snapshot (or are many), so that
    /// [`compact`](Self::compact) would shrink the store and speed up the next open.
    pub fn needs_compaction(&self) -> bool {
        let snapshot_len = self.snapshot.as_ref().map_or(0, |s| s.len);
        self.chunk_bytes() > snapshot_len.max(MIN_COMPACTION_BYTES)
            || self.chunks.len() >= MAX_CHUNKS
            || !self.obsolete.is_empty()
    }

    /// True when the chunks have piled up so far past [`needs_compaction`]
    /// (Self::needs_compaction) that compaction should not wait for a quiet moment:
    /// a daemon that is never idle still keeps its store small.
    pub fn must_compact(&self) -> bool {
        let snapshot_len = self.snapshot.as_ref().map_or(0, |s| s.len);
        self.chunk_bytes() > PILED_UP * snapshot_len.max(MIN_COMPACTION_BYTES)
            || self.chunks.len() >= PILED_UP as usize * MAX_CHUNKS
    }

    /// Replaces the snapshot and chunks with one new snapshot of `doc`.
    ///
    /// `doc` must be the document this store loaded, with every appended change in it:
    /// the new snapshot stands in for every chunk written so far. Changes whose
    /// dependencies are missing (after a chunk was quarantined) are kept in the snapshot
    /// too, so compaction never drops them.
    pub fn compact(&mut self, doc: &Automerge, proofs: &[Vec<u8>]) -> Result<(), StoreError> {
        self.compact_with(doc, proofs, |_| ControlFlow::Continue(()))
    }

    /// [`compact`](Self::compact), reporting each step to `step` and stopping early,
    /// as a crash would, when it breaks.
    pub(super) fn compact_with(
        &mut self,
        doc: &Automerge,
        proofs: &[Vec<u8>],
        mut step: impl FnMut(CompactionStep) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let full = with_proofs(
            proofs,
            doc.save_with_options(SaveOptions {
                deflate: true,
                retain_orphans: true,
            }),
        );
        let sealed = envelope::seal(&self.recipient, &full)?;
        let name = snapshot_name(self.next_seq);
        atomic_write(&self.dir, &name, &sealed)
            .map_err(io_error("write snapshot", &self.dir.join(&name)))?;

        // The new snapshot is the truth from here on; everything it covers is obsolete.
        // Removal pops from the end, so chunks (newest first) go before the old
        // snapshot, though any order is safe: the generation in the name says what is
        // covered.
        let old = self.snapshot.replace(StoredFile {
            name: name.clone(),
            len: sealed.len() as u64,
        });
        // With no chunk since the last compaction the name is the same, and the rename
        // above has already replaced the old file.
        if let Some(old) = old.filter(|old| old.name != name) {
            self.obsolete.push(old.name);
        }
        self.obsolete.extend(self.chunks.drain(..).map(|c| c.name));
        if step(CompactionStep::SnapshotWritten).is_break() {
            return Ok(());
        }

        while let Some(name) = self.obsolete.last() {
            let path = self.dir.join(name);
            remove_if_present(&path)?;
            self.obsolete.pop();
            if step(CompactionStep::FileRemoved {
                left: self.obsolete.len(),
            })
            .is_break()
            {
                return Ok(());
            }
        }
        sync_dir(&self.dir).map_err(io_error("sync directory", &self.dir))
    }

    fn chunk_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.len).sum()
    }

    /// Bytes on disk of the snapshot and chunks that the next open will read.
    pub fn disk_bytes(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.len) + self.chunk_bytes()
    }
}

pub(super) fn snapshot_name(generation: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{generation:020}{FILE_SUFFIX}")
}

pub(super) fn chunk_name(seq: u64) -> String {
    format!("{CHUNK_PREFIX}{seq:020}{FILE_SUFFIX}")
}

pub(super) fn parse_number(name: &str, prefix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(FILE_SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The document's directory name, safe to log (it is an identifier, never a person).
pub(super) fn doc_label(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Regular files in `dir` that the store recognises. Anything else, including
/// `quarantine/`, is left alone.
pub(super) fn list(dir: &Path) -> Result<Vec<Entry>, StoreError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        let is_file = entry.file_type().map_err(io_error("list", dir))?.is_file();
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_file {
            continue;
        }
        if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
            entries.push(Entry::Temp(name));
        } else if let Some(generation) = parse_number(&name, SNAPSHOT_PREFIX) {
            entries.push(Entry::Snapshot(generation, name));
        } else if let Some(seq) = parse_number(&name, CHUNK_PREFIX) {
            entries.push(Entry::Chunk(seq, name));
        }
    }
    Ok(entries)
}

/// The first bytes of a chunk or snapshot that carries signed heads before its
/// Automerge bytes (which start with Automerge's own magic, so the two never mix up).
pub(super) const PROOFS_MAGIC: &[u8; 8] = b"HRTHPRF1";
/// Most signed heads one file carries.
pub(super) const MAX_FILE_PROOFS: usize = 4096;

/// Puts signed heads in front of Automerge bytes, so they are written with the same
/// fsync as the changes they vouch for. Without heads, the bytes are left as they are.
pub fn with_proofs(proofs: &[Vec<u8>], automerge_bytes: Vec<u8>) -> Vec<u8> {
    if proofs.is_empty() {
        return automerge_bytes;
    }
    let mut out = Vec::with_capacity(automerge_bytes.len() + 16 + proofs.len() * 160);
    out.extend_from_slice(PROOFS_MAGIC);
    out.extend_from_slice(&(proofs.len() as u32).to_be_bytes());
    for proof in proofs {
        out.extend_from_slice(&(proof.len() as u16).to_be_bytes());
        out.extend_from_slice(proof);
    }
    out.extend_from_slice(&automerge_bytes);
    out
}

/// Splits what [`with_proofs`] wrote. Files from before signed heads have none.
pub(super) fn split_proofs(plain: &[u8]) -> Result<(Vec<Vec<u8>>, &[u8]), &'static str> {
    let Some(rest) = plain.strip_prefix(PROOFS_MAGIC.as_slice()) else {
        return Ok((Vec::new(), plain));
    };
    let truncated = "its signed heads are cut short";
    let (count, mut rest) = rest.split_first_chunk::<4>().ok_or(truncated)?;
    let count = u32::from_be_bytes(*count) as usize;
    if count > MAX_FILE_PROOFS {
        return Err("it claims more signed heads than a household has");
    }
    let mut proofs = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, after) = rest.split_first_chunk::<2>().ok_or(truncated)?;
        let len = u16::from_be_bytes(*len) as usize;
        if after.len() < len {
            return Err(truncated);
        }
        proofs.push(after[..len].to_vec());
        rest = &after[len..];
    }
    Ok((proofs, rest))
}

pub(super) fn load_snapshot(plain: &[u8]) -> Result<Automerge, AutomergeError> {
    // A snapshot is a document chunk followed by any orphaned changes, so missing
    // dependencies are allowed here by Automerge itself; anything unparseable is not.
    Automerge::load_with_options(
        plain,
        LoadOptions::new()
            .on_partial_load(OnPartialLoad::Error)
            .verification_mode(VerificationMode::Check),
    )
}

/// A chunk that decrypted and parsed, waiting to be applied.
pub(super) struct ParsedChunk {
    name: String,
    len: u64,
    proofs: Vec<Vec<u8>>,
    /// Where its document bytes sit in the batch.
    body: std::ops::Range<usize>,
}

/// Checks that one chunk parses, or explains why it does not.
pub(super) fn check_chunk(plain: &[u8]) -> Result<(), String> {
    // `load_incremental` skips an unparseable tail with only a log line, so a garbled
    // chunk would load as "nothing" and later be deleted by compaction. Parse it strictly
    // on its own first. A chunk usually depends on earlier ones, so missing dependencies
    // are expected there; since the changes then just wait in a queue, this costs a
    // parse, not a replay.
    match Automerge::load_with_options(
        plain,
        LoadOptions::new()
            .on_partial_load(OnPartialLoad::Error)
            .verification_mode(VerificationMode::DontCheck),
    ) {
        Ok(_) | Err(AutomergeError::MissingDeps) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
