//! The sealed read cache: what `status` said when the daemon last stopped cleanly, so
//! the next start can answer `status` before Automerge has loaded the documents.
//!
//! The rule, in full:
//! - The document owner writes `status-cache.hearth` at a clean stop, after its last
//!   write, sealed to this device's age identity like every other file (SECURITY.md
//!   P7). It holds the owner's part of `status` and a fingerprint of every file that
//!   part is read from: `docs/` (snapshots, chunks, quarantine), `sync/`,
//!   `household-secret.hearth` and `device.json`, each by name, length, inode and
//!   modification time.
//! - The next start reads it and deletes it before anything else, so it is used at most
//!   once. It is used only when the files still match the fingerprint: any write since
//!   (a chunk, a compaction, a restored backup, a quarantined file) makes a new file or a
//!   new inode, and the cache is ignored.
//! - It answers `status` only, with the state `loading`, until the documents are loaded;
//!   every other call waits for the load. A cache that is missing, damaged, sealed for
//!   another key or stale costs nothing but that early answer: the daemon loads as it
//!   always does. Nothing is ever read from it into the documents.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use hearth_core::envelope::{self, EnvelopeError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::storage::{DataDir, StoreError};

/// The cache file, directly under the data directory.
pub use crate::storage::STATUS_CACHE_FILE as CACHE_FILE;

/// Bumped when the cached fields change meaning; another version is ignored.
const VERSION: u32 = 1;

/// What the files the cache covers looked like, as a SHA-256.
type Fingerprint = [u8; 32];

/// Why the cache could not be written or used. None of these is ever fatal.
#[derive(Debug, Error)]
pub enum CacheError {
    /// The cache file could not be read, removed or written.
    #[error("{}", .0.for_log())]
    File(#[from] StoreError),
    /// Listing or inspecting the files the cache describes failed.
    #[error("could not {action} for the read cache: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The cache is sealed for another key, or damaged.
    #[error("the read cache cannot be opened ({0}); the documents load as usual")]
    Unsealed(#[from] EnvelopeError),
    /// The cache decrypts but is not a cache of this version.
    #[error(
        "the read cache is damaged or from another version ({0}); the documents load as usual"
    )]
    Malformed(&'static str),
    /// The store changed after the cache was written.
    #[error("the store changed since the read cache was written; the documents load as usual")]
    Stale,
}

fn io_error(action: &'static str) -> impl FnOnce(io::Error) -> CacheError {
    move |source| CacheError::Io { action, source }
}

/// The cache as written. Generic over the status it holds (the owner's
/// `actor::OwnerStatus`), so that this module needs nothing from the owner.
#[derive(Serialize, Deserialize)]
struct Cached<S> {
    version: u32,
    fingerprint: Fingerprint,
    status: S,
}

/// Writes the cache for `status`, which must describe the store as it is on disk now.
pub fn write<S: Serialize>(
    data_dir: &DataDir,
    recipient: &age::x25519::Recipient,
    status: &S,
) -> Result<(), CacheError> {
    let cached = Cached {
        version: VERSION,
        fingerprint: fingerprint(data_dir)?,
        status,
    };
    let plain = zeroize::Zeroizing::new(
        serde_json::to_vec(&cached).map_err(|_| CacheError::Malformed("it does not serialize"))?,
    );
    Ok(data_dir.save_status_cache(recipient, &plain)?)
}

/// Reads the cache, deletes it, and returns what it holds if the store is exactly as
/// it was when the cache was written. `Ok(None)` when there is no cache.
pub fn take<S: serde::de::DeserializeOwned>(
    data_dir: &DataDir,
    identity: &age::x25519::Identity,
) -> Result<Option<S>, CacheError> {
    // Used at most once: gone from the disk before it is read.
    let Some(sealed) = data_dir.take_status_cache()? else {
        return Ok(None);
    };
    let plain = zeroize::Zeroizing::new(envelope::open(identity, &sealed)?);
    let cached: Cached<S> = serde_json::from_slice(&plain)
        .map_err(|_| CacheError::Malformed("it is not the expected JSON"))?;
    if cached.version != VERSION {
        return Err(CacheError::Malformed("its version is not this daemon's"));
    }
    if cached.fingerprint != fingerprint(data_dir)? {
        return Err(CacheError::Stale);
    }
    Ok(Some(cached.status))
}

/// The fingerprint of every file the owner's status is read from.
fn fingerprint(data_dir: &DataDir) -> Result<Fingerprint, CacheError> {
    let mut lines = Vec::new();
    for (name, path) in data_dir.status_sources() {
        if path.is_dir() {
            walk(&path, name, &mut lines)?;
        } else {
            describe(&path, name, &mut lines)?;
        }
    }
    lines.sort();
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for line in &lines {
        digest.update(line.as_bytes());
        digest.update(b"\n");
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.finish().as_ref());
    Ok(out)
}

fn walk(dir: &Path, label: &str, lines: &mut Vec<String>) -> Result<(), CacheError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            lines.push(format!("{label} absent"));
            return Ok(());
        }
        Err(e) => return Err(io_error("list the store")(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error("list the store"))?;
        let name = format!("{label}/{}", entry.file_name().to_string_lossy());
        let meta = entry.metadata().map_err(io_error("look at a store file"))?;
        if meta.is_dir() {
            walk(&entry.path(), &name, lines)?;
        } else {
            lines.push(line(&name, &meta));
        }
    }
    Ok(())
}

fn describe(path: &Path, label: &str, lines: &mut Vec<String>) -> Result<(), CacheError> {
    match fs::metadata(path) {
        Ok(meta) => lines.push(line(label, &meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => lines.push(format!("{label} absent")),
        Err(e) => return Err(io_error("look at a store file")(e)),
    }
    Ok(())
}

fn line(name: &str, meta: &fs::Metadata) -> String {
    format!(
        "{name} {} {} {}.{}",
        meta.len(),
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::actor::OwnerStatus;
    use crate::storage;
    use hearth_api::{DocStatus, PersonSummary};

    fn store() -> (tempfile::TempDir, age::x25519::Identity) {
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("docs").join("household");
        storage::create_private_dir(&docs).unwrap();
        storage::atomic_write(&docs, "snapshot-00000000000000000001.hearth", b"sealed").unwrap();
        (dir, age::x25519::Identity::generate())
    }

    fn status() -> OwnerStatus {
        OwnerStatus {
            documents: vec![DocStatus {
                id: "household".into(),
                disk_bytes: 6,
                ..DocStatus::default()
            }],
            people: vec![PersonSummary {
                id: "p".into(),
                name: "Ada".into(),
                ..PersonSummary::default()
            }],
            ..OwnerStatus::default()
        }
    }

    #[test]
    fn a_cache_is_used_once_when_nothing_changed() {
        let (dir, id) = store();
        write(&DataDir::new(dir.path()), &id.to_public(), &status()).unwrap();
        let got = take::<OwnerStatus>(&DataDir::new(dir.path()), &id)
            .unwrap()
            .unwrap();
        assert_eq!(got.people[0].name, "Ada");
        assert_eq!(got.documents[0].disk_bytes, 6);
        assert!(
            take::<OwnerStatus>(&DataDir::new(dir.path()), &id)
                .unwrap()
                .is_none(),
            "used at most once"
        );
    }

    #[test]
    fn it_is_sealed() {
        let (dir, id) = store();
        write(&DataDir::new(dir.path()), &id.to_public(), &status()).unwrap();
        let on_disk = fs::read(dir.path().join(CACHE_FILE)).unwrap();
        assert!(!String::from_utf8_lossy(&on_disk).contains("Ada"));
    }

    #[test]
    fn a_new_chunk_or_a_rewritten_file_makes_it_stale() {
        let (dir, id) = store();
        let docs = dir.path().join("docs").join("household");
        write(&DataDir::new(dir.path()), &id.to_public(), &status()).unwrap();
        storage::atomic_write(&docs, "chunk-00000000000000000001.hearth", b"x").unwrap();
        assert!(matches!(
            take::<OwnerStatus>(&DataDir::new(dir.path()), &id),
            Err(CacheError::Stale)
        ));
        assert!(
            !dir.path().join(CACHE_FILE).exists(),
            "a stale cache is removed"
        );

        // The same name and length, written again: a new inode.
        write(&DataDir::new(dir.path()), &id.to_public(), &status()).unwrap();
        storage::atomic_write(&docs, "snapshot-00000000000000000001.hearth", b"SEALED").unwrap();
        assert!(matches!(
            take::<OwnerStatus>(&DataDir::new(dir.path()), &id),
            Err(CacheError::Stale)
        ));

        // The secret epochs and the sync states count too.
        write(&DataDir::new(dir.path()), &id.to_public(), &status()).unwrap();
        storage::atomic_write(dir.path(), storage::HOUSEHOLD_SECRET_FILE, b"e").unwrap();
        assert!(matches!(
            take::<OwnerStatus>(&DataDir::new(dir.path()), &id),
            Err(CacheError::Stale)
        ));
        write(&DataDir::new(dir.path()), &id.to_public(), &status()).unwrap();
        storage::create_private_dir(&dir.path().join("sync")).unwrap();
        assert!(matches!(
            take::<OwnerStatus>(&DataDir::new(dir.path()), &id),
            Err(CacheError::Stale)
        ));
    }

    #[test]
    fn a_damaged_or_foreign_cache_is_refused_and_removed() {
        let (dir, id) = store();
        write(&DataDir::new(dir.path()), &id.to_public(), &status()).unwrap();
        let other = age::x25519::Identity::generate();
        assert!(matches!(
            take::<OwnerStatus>(&DataDir::new(dir.path()), &other),
            Err(CacheError::Unsealed(_))
        ));
        assert!(!dir.path().join(CACHE_FILE).exists());

        write(&DataDir::new(dir.path()), &id.to_public(), &status()).unwrap();
        let path = dir.path().join(CACHE_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            take::<OwnerStatus>(&DataDir::new(dir.path()), &id),
            Err(CacheError::Unsealed(_))
        ));

        let sealed = envelope::seal(&id.to_public(), b"{\"not\": \"a cache\"}").unwrap();
        fs::write(&path, sealed).unwrap();
        assert!(matches!(
            take::<OwnerStatus>(&DataDir::new(dir.path()), &id),
            Err(CacheError::Malformed(_))
        ));
    }
}
