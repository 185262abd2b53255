//! The encrypted, crash-safe store on disk: document files, the data-directory lock and
//! the identity file.
//!
//! This module owns every byte hearthd writes under the data directory, and how it gets
//! there durably. It does not decide *when* to write (the document task batches changes
//! into one chunk, a group commit) and it never interprets document contents beyond
//! asking Automerge whether a chunk loads. It must never log contents, keys or paths
//! that could contain a person's name: warnings carry file names like `chunk-…` and the
//! document's directory name only.
//!
//! # Layout
//!
//! ```text
//! <data>/hearthd.lock            exclusive flock, holder's pid inside   (DataDirLock)
//! <data>/identity.age            device secrets, see hearth_core::secrets
//! <data>/docs/<doc>/             one directory per document             (DocStore)
//!     snapshot-<gen>.hearth      full save of the document
//!     chunk-<seq>.hearth         incremental save (one group commit)
//!     .<name>.tmp                a write in progress; removed at open
//!     quarantine/                files that failed to decrypt or load
//! ```
//!
//! Every `.hearth` file is a [`hearth_core::envelope`]: a key id, then age ciphertext to
//! this device's X25519 identity. Directories are created 0700 and files 0600. Numbers in
//! names are zero-padded to 20 digits, so names sort in numeric order.
//!
//! # Durability
//!
//! Every file is written by [`atomic_write`]: temp file, fsync, rename, fsync of the
//! directory. A file under its final name is therefore always complete; a crash leaves at
//! worst a temp file, which is ignored and removed at the next open. A call that returns
//! `Ok` is durable.
//!
//! # The compaction invariant
//!
//! Chunk sequence numbers only grow, for the whole life of a store, and a number is
//! never used twice, even when a write fails. A snapshot's generation is the sequence
//! number of the next chunk at the moment it was written, and:
//!
//! > `snapshot-G` contains every change of every chunk numbered below `G`.
//!
//! [`DocStore::compact`] keeps this true because it saves the caller's whole document,
//! which holds everything loaded at open and everything appended since. It then deletes
//! the chunks it loaded or wrote, and finally the old snapshot. A crash between any of
//! these steps leaves the new snapshot plus some files it covers. At open, the snapshot
//! with the highest generation wins. Chunks below it and older snapshots are covered, so
//! they are deleted there, which finishes the interrupted compaction. Reading them again
//! would also be harmless, because Automerge applies a change only once, but it would be
//! wasted work. Chunks at or above the generation are loaded in order.
//!
//! # What is never done
//!
//! A file that cannot be read is never overwritten or deleted. A chunk that fails to
//! decrypt or load is moved to `quarantine/` with a warning, and the rest loads: its
//! changes come back from a peer through sync. A snapshot that cannot be read, or a
//! store written by another identity, is a hard error that leaves the disk untouched,
//! because "quarantine everything" would silently empty the document.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use automerge::{
    Automerge, AutomergeError, LoadOptions, OnPartialLoad, SaveOptions, VerificationMode,
};
use hearth_core::envelope::{self, EnvelopeError, KeyId};
use thiserror::Error;
use zeroize::Zeroizing;

/// Directory under the data directory that holds one directory per document.
pub const DOCS_DIR: &str = "docs";
/// Directory inside a document directory for files that could not be read.
pub const QUARANTINE_DIR: &str = "quarantine";
/// The lock file that allows one daemon per data directory.
pub const LOCK_FILE: &str = "hearthd.lock";
/// The device secrets file (see `hearth_core::secrets`).
pub const SECRETS_FILE: &str = "identity.age";

const SNAPSHOT_PREFIX: &str = "snapshot-";
const CHUNK_PREFIX: &str = "chunk-";
const FILE_SUFFIX: &str = ".hearth";
const TEMP_SUFFIX: &str = ".tmp";

/// Chunks may grow to the snapshot's size before compaction; below this many bytes of
/// chunks it is not worth rewriting the snapshot at all.
const MIN_COMPACTION_BYTES: u64 = 64 * 1024;
/// Many tiny chunks cost a file open each at start-up, so compact past this count even
/// when they are small.
const MAX_CHUNKS: usize = 256;

/// Errors from the store, the lock and the identity file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file system operation failed. Nothing was half-written.
    #[error("could not {action} {}: {source}; {}", .path.display(), io_hint(.source))]
    Io {
        /// What the store was doing, as a verb phrase ("write chunk").
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another process holds the data-directory lock.
    #[error(
        "another hearthd (pid {}) is already using {}; stop it with `hearth daemon stop` or \
         pick another --data-dir",
        .pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
        .dir.display()
    )]
    Locked {
        /// The pid written by the holder, if it could be read.
        pid: Option<u32>,
        /// The data directory.
        dir: PathBuf,
    },
    /// The document was written by a different age identity than the one given.
    #[error(
        "the document in {} was written by a different identity (key {found}, this device's \
         key is {expected}); nothing was changed. Start hearthd with the identity file that \
         belongs to this data directory, or pick another --data-dir",
        .dir.display()
    )]
    WrongIdentity {
        /// The document directory.
        dir: PathBuf,
        /// The key id of the identity that tried to open it.
        expected: KeyId,
        /// The key id found in the files.
        found: KeyId,
    },
    /// The newest snapshot cannot be decrypted or loaded.
    #[error(
        "the snapshot {} cannot be read ({reason}); nothing was changed. Move it into the \
         quarantine/ folder next to it and restart: hearthd then loads what is left, and \
         sync brings the rest back from a paired device",
        .path.display()
    )]
    SnapshotUnreadable {
        /// The snapshot file.
        path: PathBuf,
        /// What failed, without contents.
        reason: String,
    },
    /// There is no identity file yet.
    #[error("there is no identity in {}; run `hearth init` first", .dir.display())]
    NotInitialized {
        /// The data directory.
        dir: PathBuf,
    },
    /// An identity file exists already, and replacing it would lose the keys to the store.
    #[error(
        "{} already holds an identity; replacing it would make the stored documents \
         unreadable. Pick another --data-dir to start afresh",
        .dir.display()
    )]
    AlreadyInitialized {
        /// The data directory.
        dir: PathBuf,
    },
    /// A document name that cannot be used as a directory name.
    #[error(
        "{name:?} is not a valid document name (use letters, digits, '-' and '_'); this is \
         a bug in Hearth, please report it"
    )]
    InvalidDocName {
        /// The rejected name.
        name: String,
    },
    /// Encrypting a file failed.
    #[error("could not encrypt a file for the store: {0}")]
    Seal(#[from] EnvelopeError),
}

impl StoreError {
    /// The error for a log line: every path shortened to its last part, since a data
    /// directory's path may name the person it belongs to (`/home/ada/...`). The full
    /// message, paths included, is for the person at the terminal.
    pub fn for_log(&self) -> String {
        let short = |p: &Path| {
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        };
        match self {
            StoreError::Io {
                action,
                path,
                source,
            } => format!("could not {action} {}: {source}", short(path)),
            StoreError::Locked { pid, .. } => format!(
                "another hearthd (pid {}) holds the data directory",
                pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
            ),
            StoreError::WrongIdentity {
                expected, found, ..
            } => format!(
                "a document was written by another identity (key {found}, this device's key \
                 is {expected})"
            ),
            StoreError::SnapshotUnreadable { path, reason } => {
                format!("the snapshot {} cannot be read ({reason})", short(path))
            }
            StoreError::NotInitialized { .. } => "there is no identity yet".to_owned(),
            StoreError::AlreadyInitialized { .. } => "an identity exists already".to_owned(),
            other => other.to_string(),
        }
    }
}

/// The "what to do next" half of an IO error message.
fn io_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "the disk is full: free some space and try again (nothing was half-written)"
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            "the file system is read-only: pick a writable --data-dir"
        }
        io::ErrorKind::PermissionDenied => {
            "check that the data directory belongs to the user running hearthd"
        }
        _ => "check that the data directory exists and is writable, then try again",
    }
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Creates `path` and any missing parents with mode 0700. An existing directory is left
/// as it is.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Writes `bytes` to `dir/name` so that a crash leaves either the old file or the new
/// one, never a mix: temp file (mode 0600) in the same directory, fsync, rename over the
/// target, fsync of the directory.
///
/// On error the temp file is removed when possible and the error is returned. Note that
/// an error from the final directory fsync comes after the rename, so the new file may
/// be in place but is not known to be durable.
pub fn atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = dir.join(temp_name(name));
    let target = dir.join(name);
    let written = write_synced(&temp, bytes).and_then(|()| fs::rename(&temp, &target));
    if let Err(error) = written {
        match fs::remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // The first error is the one to report; a leftover temp file is removed at
            // the next open anyway.
            Err(e) => {
                tracing::warn!(file = %temp_name(name), error = %e, "could not remove temp file")
            }
        }
        return Err(error);
    }
    sync_dir(dir)
}

fn temp_name(name: &str) -> String {
    format!(".{name}{TEMP_SUFFIX}")
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // A stale temp file from a crash may exist with other permissions; create_new below
    // then guarantees the mode, so remove it first.
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

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
struct StoredFile {
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
    chunks: Vec<StoredFile>,
    /// The number of the next chunk. Never reused, even after a failed write.
    next_seq: u64,
    /// Files a finished snapshot covers but that could not be removed yet.
    obsolete: Vec<String>,
}

/// A point inside [`DocStore::compact`], reported to the test hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompactionStep {
    /// The new snapshot is durable under its final name.
    SnapshotWritten,
    /// One covered file was removed (not yet fsynced); `left` more to go.
    FileRemoved { left: usize },
}

/// A file the directory listing recognised.
enum Entry {
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
    fn compact_with(
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

fn snapshot_name(generation: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{generation:020}{FILE_SUFFIX}")
}

fn chunk_name(seq: u64) -> String {
    format!("{CHUNK_PREFIX}{seq:020}{FILE_SUFFIX}")
}

fn parse_number(name: &str, prefix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(FILE_SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The document's directory name, safe to log (it is an identifier, never a person).
fn doc_label(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Regular files in `dir` that the store recognises. Anything else, including
/// `quarantine/`, is left alone.
fn list(dir: &Path) -> Result<Vec<Entry>, StoreError> {
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
const PROOFS_MAGIC: &[u8; 8] = b"HRTHPRF1";
/// Most signed heads one file carries.
const MAX_FILE_PROOFS: usize = 4096;

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
fn split_proofs(plain: &[u8]) -> Result<(Vec<Vec<u8>>, &[u8]), &'static str> {
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

fn load_snapshot(plain: &[u8]) -> Result<Automerge, AutomergeError> {
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
struct ParsedChunk {
    name: String,
    len: u64,
    proofs: Vec<Vec<u8>>,
    /// Where its document bytes sit in the batch.
    body: std::ops::Range<usize>,
}

/// Checks that one chunk parses, or explains why it does not.
fn check_chunk(plain: &[u8]) -> Result<(), String> {
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

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove", path)(e)),
    }
}

/// Moves `dir/name` into `dir/quarantine/`, never replacing an earlier file there.
fn quarantine(dir: &Path, name: &str) -> Result<(), StoreError> {
    let qdir = dir.join(QUARANTINE_DIR);
    create_private_dir(&qdir).map_err(io_error("create", &qdir))?;
    let mut target = qdir.join(name);
    let mut n = 1u32;
    while fs::symlink_metadata(&target).is_ok() {
        target = qdir.join(format!("{name}.{n}"));
        n += 1;
    }
    let source = dir.join(name);
    fs::rename(&source, &target).map_err(io_error("move to quarantine", &source))?;
    sync_dir(&qdir).map_err(io_error("sync directory", &qdir))
}

/// The exclusive lock that allows one hearthd per data directory.
///
/// The lock is an `flock` on `<data>/hearthd.lock`, held for as long as this value
/// lives; the kernel drops it when the process exits, even after a crash, so a stale
/// file never blocks a restart. The file holds the holder's pid, for the error message.
#[derive(Debug)]
pub struct DataDirLock {
    // Held for the lock, which lives as long as this open file description.
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock, creating the data directory (0700) if needed. Does not wait.
    pub fn acquire(data_dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(data_dir).map_err(io_error("create data directory", data_dir))?;
        let path = data_dir.join(LOCK_FILE);
        // No truncate here: the pid in the file belongs to the holder until we have the lock.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_error("open lock file", &path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let mut text = String::new();
                // The holder may not have written its pid yet; then it is "unknown".
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(StoreError::Locked {
                    pid,
                    dir: data_dir.to_owned(),
                });
            }
            Err(e) => return Err(io_error("lock", &path)(e.into())),
        }
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_all())
            .map_err(io_error("write lock file", &path))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where the device secrets live.
pub fn secrets_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SECRETS_FILE)
}

/// Writes a new identity file (mode 0600, atomically). Refuses to replace an existing
/// one, because the old identity is the only key to the stored documents; use
/// [`replace_secrets`] to re-encode the same secrets, for example with a new passphrase.
pub fn write_secrets(data_dir: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let path = secrets_path(data_dir);
    if fs::symlink_metadata(&path).is_ok() {
        return Err(StoreError::AlreadyInitialized {
            dir: data_dir.to_owned(),
        });
    }
    replace_secrets(data_dir, bytes)
}

/// Writes the identity file (mode 0600, atomically), replacing any previous one.
pub fn replace_secrets(data_dir: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    create_private_dir(data_dir).map_err(io_error("create data directory", data_dir))?;
    atomic_write(data_dir, SECRETS_FILE, bytes)
        .map_err(io_error("write identity file", &secrets_path(data_dir)))
}

/// Reads the identity file. The bytes are wiped from memory when dropped.
pub fn read_secrets(data_dir: &Path) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let path = secrets_path(data_dir);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StoreError::NotInitialized {
                dir: data_dir.to_owned(),
            })
        }
        Err(e) => return Err(io_error("open identity file", &path)(e)),
    };
    let mode = file
        .metadata()
        .map_err(io_error("inspect identity file", &path))?
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            mode = %format!("{:o}", mode & 0o777),
            "the identity file is readable by other users; run `chmod 600` on it"
        );
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.read_to_end(&mut bytes)
        .map_err(io_error("read identity file", &path))?;
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ReadDoc, ROOT};
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    fn identity() -> age::x25519::Identity {
        age::x25519::Identity::generate()
    }

    #[test]
    fn a_storage_error_in_a_log_line_names_the_file_not_the_data_directory() {
        let dir = Path::new("/home/ada/.local/share/hearth/docs/household");
        let io = StoreError::Io {
            action: "write chunk",
            path: dir.join("chunk-000042.hearth"),
            source: io::Error::from(io::ErrorKind::StorageFull),
        };
        // The person at the terminal gets the whole path; a log line only the file.
        assert!(io.to_string().contains("/home/ada"));
        let logged = io.for_log();
        assert!(logged.contains("chunk-000042.hearth"), "{logged}");
        for error in [
            io,
            StoreError::Locked {
                pid: Some(7),
                dir: dir.to_path_buf(),
            },
            StoreError::NotInitialized {
                dir: dir.to_path_buf(),
            },
            StoreError::SnapshotUnreadable {
                path: dir.join("snapshot.hearth"),
                reason: "truncated".into(),
            },
        ] {
            assert!(!error.for_log().contains("ada"), "{}", error.for_log());
        }
    }

    /// A document plus the heads last written, as the document task keeps them.
    struct Writer {
        doc: Automerge,
        saved: Vec<automerge::ChangeHash>,
    }

    impl Writer {
        fn new(doc: Automerge) -> Self {
            let saved = doc.get_heads();
            Writer { doc, saved }
        }

        /// Sets `key` and returns the new changes as a chunk.
        fn put(&mut self, key: &str, value: i64) -> Vec<u8> {
            let mut tx = self.doc.transaction();
            tx.put(ROOT, key, value).unwrap();
            tx.commit();
            let chunk = self.doc.save_after(&self.saved);
            self.saved = self.doc.get_heads();
            chunk
        }

        fn put_and_append(&mut self, store: &mut DocStore, key: &str, value: i64) {
            let chunk = self.put(key, value);
            store.append_chunk(&chunk).unwrap();
        }
    }

    fn contents(doc: &Automerge) -> BTreeMap<String, i64> {
        doc.keys(ROOT)
            .map(|k| {
                let value = doc.get(ROOT, &k).unwrap().unwrap().0;
                (k, value.as_i64().unwrap())
            })
            .collect()
    }

    /// Every file name under `dir`, recursively, with its bytes.
    fn snapshot_of_disk(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    out.insert(path.clone(), Vec::new());
                    stack.push(path);
                } else {
                    out.insert(path.clone(), fs::read(&path).unwrap());
                }
            }
        }
        out
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip_snapshot_and_chunks() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("docs").join("household");
        let id = identity();

        let (mut store, loaded) = DocStore::open(&dir, &id).unwrap();
        assert!(loaded.quarantined.is_empty());
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "a", 1);
        w.put_and_append(&mut store, "b", 2);
        store.compact(&w.doc, &[]).unwrap();
        w.put_and_append(&mut store, "c", 3);
        w.put_and_append(&mut store, "a", 4);
        let expected = contents(&w.doc);
        assert!(store.disk_bytes() > 0);
        drop(store);

        let (store, loaded) = DocStore::open(&dir, &id).unwrap();
        assert_eq!(contents(&loaded.doc), expected);
        assert_eq!(
            names(&dir),
            vec![chunk_name(2), chunk_name(3), snapshot_name(2),]
        );
        assert_eq!(
            store.disk_bytes(),
            names(&dir)
                .iter()
                .map(|n| fs::metadata(dir.join(n)).unwrap().len())
                .sum::<u64>()
        );
    }

    #[test]
    fn signed_heads_ride_in_front_of_snapshots_and_chunks() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("docs").join("household");
        let id = identity();
        let (mut store, loaded) = DocStore::open(&dir, &id).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "a", 1);
        store
            .compact(&w.doc, &[vec![1; 137], vec![2; 137]])
            .unwrap();
        let before = w.doc.get_heads();
        w.doc
            .transact::<_, _, automerge::AutomergeError>(|tx| {
                tx.put(ROOT, "b", 2)?;
                Ok(())
            })
            .unwrap();
        store
            .append_chunk(&with_proofs(&[vec![3; 137]], w.doc.save_after(&before)))
            .unwrap();
        let expected = contents(&w.doc);
        drop(store);
        let (_, loaded) = DocStore::open(&dir, &id).unwrap();
        assert!(loaded.quarantined.is_empty());
        assert_eq!(contents(&loaded.doc), expected);
        assert_eq!(
            loaded.proofs,
            vec![vec![1; 137], vec![2; 137], vec![3; 137]]
        );
        // A cut-short list of heads is a damaged file, not a panic.
        assert!(split_proofs(&with_proofs(&[vec![1; 137]], Vec::new())[..20]).is_err());
    }

    #[test]
    fn files_are_encrypted() {
        let tmp = tempfile::tempdir().unwrap();
        let id = identity();
        let (mut store, loaded) = DocStore::open(tmp.path(), &id).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "needle-in-plaintext", 1);
        let sealed = fs::read(tmp.path().join(chunk_name(0))).unwrap();
        assert!(sealed.starts_with(b"HEARTH"));
        assert!(!sealed
            .windows(b"needle-in-plaintext".len())
            .any(|w| w == b"needle-in-plaintext"));
    }

    #[test]
    fn leftover_temp_files_are_ignored_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let id = identity();
        let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "kept", 1);
        drop(store);
        // A crash in the middle of writing the next chunk and of a compaction.
        fs::write(dir.join(temp_name(&chunk_name(1))), b"HEARTH\x01half").unwrap();
        fs::write(dir.join(temp_name(&snapshot_name(1))), b"").unwrap();

        let (_store, loaded) = DocStore::open(dir, &id).unwrap();
        assert_eq!(contents(&loaded.doc), BTreeMap::from([("kept".into(), 1)]));
        assert!(loaded.quarantined.is_empty());
        assert_eq!(names(dir), vec![chunk_name(0)]);
    }

    #[test]
    fn truncated_and_garbage_chunks_are_quarantined_and_the_rest_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let id = identity();
        let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "first", 1);
        w.put_and_append(&mut store, "second", 2);
        w.put_and_append(&mut store, "third", 3);
        w.put_and_append(&mut store, "fourth", 4);
        drop(store);

        // Chunk 1 loses its tail, chunk 2 is random noise with our header, and a chunk
        // that decrypts fine but is not Automerge appears as number 4.
        let one = dir.join(chunk_name(1));
        let bytes = fs::read(&one).unwrap();
        fs::write(&one, &bytes[..bytes.len() / 2]).unwrap();
        fs::write(dir.join(chunk_name(2)), b"not even a Hearth file").unwrap();
        let garbage = envelope::seal(&id.to_public(), b"sealed but not automerge").unwrap();
        fs::write(dir.join(chunk_name(4)), garbage).unwrap();

        let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
        assert_eq!(
            loaded.quarantined,
            vec![chunk_name(1), chunk_name(2), chunk_name(4)]
        );
        let keys: Vec<_> = contents(&loaded.doc).into_keys().collect();
        assert_eq!(keys, vec!["first".to_owned()]);
        // "fourth" depends on the lost changes; Automerge queues it instead of dropping it.
        assert!(!loaded.doc.get_missing_deps(&[]).is_empty());
        assert_eq!(
            names(dir),
            vec![chunk_name(0), chunk_name(3), QUARANTINE_DIR.to_owned()]
        );
        assert_eq!(
            names(&dir.join(QUARANTINE_DIR)),
            vec![chunk_name(1), chunk_name(2), chunk_name(4)]
        );
        assert_eq!(mode(&dir.join(QUARANTINE_DIR)), 0o700);

        // New chunks never reuse a quarantined number, and compaction keeps the queued
        // change, so "fourth" appears once a peer brings back what was lost.
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "fifth", 5);
        assert!(names(dir).contains(&chunk_name(5)));
        store.compact(&w.doc, &[]).unwrap();
        drop(store);
        let (_store, loaded) = DocStore::open(dir, &id).unwrap();
        assert_eq!(
            loaded.doc.get_missing_deps(&[]),
            w.doc.get_missing_deps(&[])
        );
        assert_eq!(contents(&loaded.doc), contents(&w.doc));
    }

    #[test]
    fn a_chunk_that_breaks_the_batch_costs_only_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let id = identity();
        let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "first", 1);
        // A rival first change under the same actor and sequence number: it parses on
        // its own, so only applying it (in the batch) shows it cannot go in.
        let mut rival = Writer::new(Automerge::new().with_actor(w.doc.get_actor().clone()));
        let chunk = rival.put("rival", 9);
        store.append_chunk(&chunk).unwrap();
        w.put_and_append(&mut store, "second", 2);
        drop(store);

        let (_store, loaded) = DocStore::open(dir, &id).unwrap();
        assert_eq!(loaded.quarantined, vec![chunk_name(1)]);
        let keys: Vec<_> = contents(&loaded.doc).into_keys().collect();
        assert_eq!(keys, vec!["first".to_owned(), "second".to_owned()]);
    }

    #[test]
    fn quarantine_never_replaces_an_earlier_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let id = identity();
        for round in 0..2 {
            fs::write(dir.join(chunk_name(7)), format!("garbage {round}")).unwrap();
            let (_store, loaded) = DocStore::open(dir, &id).unwrap();
            assert_eq!(loaded.quarantined, vec![chunk_name(7)]);
        }
        assert_eq!(
            names(&dir.join(QUARANTINE_DIR)),
            vec![chunk_name(7), format!("{}.1", chunk_name(7))]
        );
    }

    /// A store with a snapshot, chunks after it, a leftover covered chunk and a temp file.
    fn busy_store(dir: &Path, id: &age::x25519::Identity) {
        let (mut store, loaded) = DocStore::open(dir, id).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "a", 1);
        store.compact(&w.doc, &[]).unwrap();
        w.put_and_append(&mut store, "b", 2);
        drop(store);
        fs::write(dir.join(temp_name(&chunk_name(9))), b"partial").unwrap();
    }

    #[test]
    fn wrong_identity_is_a_clear_error_and_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let owner = identity();
        busy_store(dir, &owner);
        let before = snapshot_of_disk(dir);

        let stranger = identity();
        let err = DocStore::open(dir, &stranger).unwrap_err();
        match &err {
            StoreError::WrongIdentity {
                expected, found, ..
            } => {
                assert_eq!(*expected, envelope::key_id(&stranger.to_public()));
                assert_eq!(*found, envelope::key_id(&owner.to_public()));
            }
            other => panic!("expected WrongIdentity, got {other:?}"),
        }
        assert!(err.to_string().contains("different identity"));
        assert!(err.to_string().contains("nothing was changed"));
        assert_eq!(snapshot_of_disk(dir), before);

        // The right identity still opens everything.
        let (_store, loaded) = DocStore::open(dir, &owner).unwrap();
        assert_eq!(contents(&loaded.doc).len(), 2);
    }

    #[test]
    fn wrong_identity_without_a_snapshot_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let owner = identity();
        let (mut store, loaded) = DocStore::open(dir, &owner).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "a", 1);
        w.put_and_append(&mut store, "b", 2);
        drop(store);
        // One damaged chunk among them must not turn this into "quarantine the rest".
        fs::write(dir.join(chunk_name(5)), b"noise").unwrap();
        let before = snapshot_of_disk(dir);

        assert!(matches!(
            DocStore::open(dir, &identity()),
            Err(StoreError::WrongIdentity { .. })
        ));
        assert_eq!(snapshot_of_disk(dir), before);
    }

    #[test]
    fn unreadable_snapshot_is_a_hard_error_that_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let id = identity();
        busy_store(dir, &id);
        let snapshot = dir.join(snapshot_name(1));
        let mut bytes = fs::read(&snapshot).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&snapshot, bytes).unwrap();
        let before = snapshot_of_disk(dir);

        let err = DocStore::open(dir, &id).unwrap_err();
        assert!(
            matches!(err, StoreError::SnapshotUnreadable { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("quarantine"));
        assert_eq!(snapshot_of_disk(dir), before);
    }

    /// Builds a store with a snapshot and four chunks after it, then compacts it,
    /// stopping (as a crash would) at step `stop`. Returns false when compaction
    /// finished before reaching that step.
    fn crash_during_compaction(
        dir: &Path,
        id: &age::x25519::Identity,
        stop: usize,
    ) -> (bool, BTreeMap<String, i64>) {
        let (mut store, loaded) = DocStore::open(dir, id).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "a", 1);
        w.put_and_append(&mut store, "b", 2);
        store.compact(&w.doc, &[]).unwrap();
        for (i, key) in ["c", "d", "e", "a"].into_iter().enumerate() {
            w.put_and_append(&mut store, key, 10 + i as i64);
        }
        let expected = contents(&w.doc);

        let mut seen = 0;
        let mut stopped = false;
        store
            .compact_with(&w.doc, &[], |step| {
                if seen == stop {
                    stopped = true;
                    return ControlFlow::Break(());
                }
                seen += 1;
                if let CompactionStep::FileRemoved { left } = step {
                    // Four chunks and the old snapshot, one removal per step.
                    assert_eq!(left, 6 - seen);
                }
                ControlFlow::Continue(())
            })
            .unwrap();
        // The process dies here: nothing of the in-memory state survives.
        drop(store);
        (stopped, expected)
    }

    #[test]
    fn crash_at_every_compaction_step_loses_nothing() {
        let id = identity();
        let mut stops = 0;
        for stop in 0.. {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            let (stopped, expected) = crash_during_compaction(dir, &id, stop);
            if !stopped {
                break;
            }
            stops += 1;

            let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
            assert_eq!(contents(&loaded.doc), expected, "stop {stop}");
            assert!(loaded.quarantined.is_empty());
            // The open finished the interrupted compaction: one snapshot, no chunks.
            assert_eq!(names(dir), vec![snapshot_name(6)], "stop {stop}");

            // And the store keeps working afterwards.
            let mut w = Writer::new(loaded.doc);
            w.put_and_append(&mut store, "after", 99);
            drop(store);
            let (_store, loaded) = DocStore::open(dir, &id).unwrap();
            assert_eq!(
                loaded.doc.get(ROOT, "after").unwrap().unwrap().0.as_i64(),
                Some(99)
            );
        }
        // Snapshot written, then four chunks and the old snapshot removed one by one.
        assert_eq!(stops, 6);
    }

    #[test]
    fn compaction_without_new_chunks_replaces_the_snapshot_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let id = identity();
        let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "a", 1);
        store.compact(&w.doc, &[]).unwrap();
        store.compact(&w.doc, &[]).unwrap();
        assert_eq!(names(dir), vec![snapshot_name(1)]);
        drop(store);
        let (_store, loaded) = DocStore::open(dir, &id).unwrap();
        assert_eq!(contents(&loaded.doc), contents(&w.doc));
    }

    #[test]
    fn needs_compaction_when_chunks_outweigh_the_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let id = identity();
        let (mut store, loaded) = DocStore::open(tmp.path(), &id).unwrap();
        let mut w = Writer::new(loaded.doc);
        assert!(!store.needs_compaction());
        w.put_and_append(&mut store, "small", 1);
        assert!(
            !store.needs_compaction(),
            "one small chunk is not worth a rewrite"
        );
        // A chunk bigger than the minimum tips it over. The text must not compress,
        // since Automerge deflates large changes.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let noise: String = (0..2 * MIN_COMPACTION_BYTES)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect();
        let mut tx = w.doc.transaction();
        tx.put(ROOT, "big", noise).unwrap();
        tx.commit();
        let chunk = w.doc.save_after(&w.saved);
        w.saved = w.doc.get_heads();
        store.append_chunk(&chunk).unwrap();
        assert!(store.needs_compaction());
        store.compact(&w.doc, &[]).unwrap();
        assert!(!store.needs_compaction());
        assert_eq!(store.chunks.len(), 0);
    }

    #[test]
    fn failed_append_leaves_no_half_chunk_and_keeps_numbering_sound() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let id = identity();
        let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "a", 1);

        // Make the next write fail for real: a directory sits where its temp file goes.
        let blocker = dir.join(temp_name(&chunk_name(1)));
        fs::create_dir(&blocker).unwrap();
        let chunk_b = w.put("b", 2);
        let err = store.append_chunk(&chunk_b).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Io {
                    action: "write chunk",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!dir.join(chunk_name(1)).exists());
        fs::remove_dir(&blocker).unwrap();

        // The caller retries the same changes; they go to a fresh number.
        store.append_chunk(&chunk_b).unwrap();
        assert_eq!(names(dir), vec![chunk_name(0), chunk_name(2)]);
        drop(store);
        let (_store, loaded) = DocStore::open(dir, &id).unwrap();
        assert_eq!(contents(&loaded.doc), contents(&w.doc));
    }

    #[test]
    fn full_disk_error_says_to_free_space() {
        let err = StoreError::Io {
            action: "write chunk",
            path: PathBuf::from("/data/docs/household/chunk-1.hearth"),
            source: io::Error::from(rustix::io::Errno::NOSPC),
        };
        let message = err.to_string();
        assert!(message.contains("disk is full"), "{message}");
        assert!(message.contains("free some space"), "{message}");
        assert!(message.contains("chunk-1.hearth"), "{message}");
    }

    #[test]
    fn directories_are_0700_and_files_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let dir = doc_dir(&data, "household").unwrap();
        let id = identity();
        let _lock = DataDirLock::acquire(&data).unwrap();
        write_secrets(&data, b"secret").unwrap();
        let (mut store, loaded) = DocStore::open(&dir, &id).unwrap();
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "a", 1);
        store.compact(&w.doc, &[]).unwrap();
        w.put_and_append(&mut store, "b", 1);

        for d in [&data, &data.join(DOCS_DIR), &dir] {
            assert_eq!(mode(d), 0o700, "{}", d.display());
        }
        for f in [
            data.join(LOCK_FILE),
            secrets_path(&data),
            dir.join(snapshot_name(1)),
            dir.join(chunk_name(1)),
        ] {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }

    #[test]
    fn doc_names_cannot_escape_the_data_directory() {
        let data = Path::new("/data");
        assert_eq!(
            doc_dir(data, "household").unwrap(),
            Path::new("/data/docs/household")
        );
        for bad in ["", "..", "../x", "a/b", ".hidden", "x\0y"] {
            assert!(doc_dir(data, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn second_lock_holder_is_refused_with_the_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = DataDirLock::acquire(tmp.path()).unwrap();
        assert_eq!(lock.path(), tmp.path().join(LOCK_FILE));
        let err = DataDirLock::acquire(tmp.path()).unwrap_err();
        let pid = std::process::id();
        assert!(
            matches!(err, StoreError::Locked { pid: Some(p), .. } if p == pid),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&format!("pid {pid}")), "{message}");
        assert!(message.contains("hearth daemon stop"), "{message}");

        // Released on drop, so a restart is never blocked by a stale file.
        drop(lock);
        DataDirLock::acquire(tmp.path()).unwrap();
    }

    #[test]
    fn secrets_round_trip_and_are_never_silently_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        assert!(matches!(
            read_secrets(&data),
            Err(StoreError::NotInitialized { .. })
        ));
        write_secrets(&data, b"first").unwrap();
        assert_eq!(read_secrets(&data).unwrap().as_slice(), b"first");
        assert!(matches!(
            write_secrets(&data, b"second"),
            Err(StoreError::AlreadyInitialized { .. })
        ));
        assert_eq!(read_secrets(&data).unwrap().as_slice(), b"first");
        replace_secrets(&data, b"re-encoded").unwrap();
        assert_eq!(read_secrets(&data).unwrap().as_slice(), b"re-encoded");
        assert_eq!(names(&data), vec![SECRETS_FILE.to_owned()]);
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let tmp = tempfile::tempdir().unwrap();
        atomic_write(tmp.path(), "f", b"old contents").unwrap();
        atomic_write(tmp.path(), "f", b"new").unwrap();
        assert_eq!(fs::read(tmp.path().join("f")).unwrap(), b"new");
        assert_eq!(names(tmp.path()), vec!["f".to_owned()]);
        let err = atomic_write(&tmp.path().join("missing"), "f", b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
