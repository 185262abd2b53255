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
//! [`DataDir`] names every file; the store's own are:
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
/// How many times past those bounds compaction stops waiting for the owner to be idle.
const PILED_UP: u64 = 4;

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
    /// A sealed file does not open with this device's identity: it is damaged, or
    /// sealed for another key.
    #[error("{} cannot be opened with this device's key ({source})", .path.display())]
    Unsealed {
        /// The file.
        path: PathBuf,
        /// Why it does not open.
        #[source]
        source: EnvelopeError,
    },
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
            StoreError::Unsealed { path, source } => {
                format!(
                    "{} cannot be opened with this device's key ({source})",
                    short(path)
                )
            }
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

mod data_dir;
mod doc_store;
mod files;
mod identity_file;
mod lock;

pub use data_dir::*;
pub use doc_store::*;
pub use files::*;
pub use identity_file::*;
pub use lock::*;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
