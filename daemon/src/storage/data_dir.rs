//! [`DataDir`]: every file hearthd keeps under its data directory, by name.
//!
//! The modules that own a file's meaning (the address book, the sync hub, the
//! household secret's epochs, the read cache, pairing) hand it bytes and ask for bytes;
//! only this type joins paths under the data directory, creates its private
//! directories and writes through [`atomic_write`]. Sealed files are sealed to and
//! opened with this device's age identity here, so no caller writes one in plain.
//!
//! ```text
//! <data>/device.json             who this device is (person, device id); not secret
//! <data>/household-secret.hearth the household secret's epochs             (sealed)
//! <data>/peers.hearth            the address book                          (sealed)
//! <data>/peers.json              an older version's plain address book, migrated
//! <data>/status-cache.hearth     the read cache of the last clean stop     (sealed)
//! <data>/sync/<device>.hearth    the sync states kept for one peer device  (sealed)
//! <data>/reminded                the date of the last weekly-walk reminder
//! ```
//!
//! Errors name the file as a path; a log line takes [`StoreError::for_log`], which keeps
//! only the file's name.

use serde::{Deserialize, Serialize};

use super::*;
use hearth_core::identity::DeviceId;
use hearth_core::model::PersonId;

/// Who this device is, kept beside the identity. Not secret.
pub const DEVICE_FILE: &str = "device.json";
/// The household secret's epochs. A joined device of an older version kept its one
/// secret here as 32 bytes.
pub const HOUSEHOLD_SECRET_FILE: &str = "household-secret.hearth";
/// The sealed address book.
pub const BOOK_FILE: &str = "peers.hearth";
/// The plain-text address book of older versions.
pub const LEGACY_BOOK_FILE: &str = "peers.json";
/// The read cache.
pub const STATUS_CACHE_FILE: &str = "status-cache.hearth";
/// One file of sync states per peer device.
pub const SYNC_DIR: &str = "sync";
/// The date of the last reminder.
pub const REMINDED_FILE: &str = "reminded";

/// Who this device is: its person (which an own-device join changes) and its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The person this device belongs to.
    pub person: PersonId,
    /// This device's id.
    pub device_id: String,
}

/// The data directory of one daemon. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root`. Nothing is created until something is written.
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory itself, for messages to the person at the terminal (never logs).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the documents are stored, one directory each (see [`DocStore`]).
    pub fn docs(&self) -> PathBuf {
        self.root.join(DOCS_DIR)
    }

    /// Creates the directory (0700), or tightens an existing one to 0700.
    pub fn create(&self) -> io::Result<()> {
        hearth_api::paths::ensure_private_dir(&self.root)
    }

    /// Takes the data-directory lock: one hearthd per directory.
    pub fn lock(&self) -> Result<DataDirLock, StoreError> {
        DataDirLock::acquire(&self.root)
    }

    /// Whether an identity file exists: what marks the directory initialised.
    pub fn has_identity(&self) -> bool {
        secrets_path(&self.root).exists()
    }

    /// Reads the identity file.
    pub fn read_secrets(&self) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        read_secrets(&self.root)
    }

    /// Writes a new identity file; refuses to replace one.
    pub fn write_secrets(&self, bytes: &[u8]) -> Result<(), StoreError> {
        write_secrets(&self.root, bytes)
    }

    /// Replaces the identity file with the same secrets, encoded anew.
    pub fn replace_secrets(&self, bytes: &[u8]) -> Result<(), StoreError> {
        replace_secrets(&self.root, bytes)
    }

    /// Reads `device.json`. A missing or damaged one means the directory is incomplete.
    pub fn read_device_info(&self) -> Result<DeviceInfo, DeviceInfoError> {
        let path = self.root.join(DEVICE_FILE);
        let text = fs::read_to_string(&path).map_err(|source| DeviceInfoError::Unreadable {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| DeviceInfoError::Damaged {
            path,
            // A fixed description, not serde's message: that quotes the value it
            // choked on.
            reason: hearth_core::json_error_kind(&e),
        })
    }

    /// Writes `device.json`, durably. For an own-device join this is the commit point.
    pub fn write_device_info(&self, info: &DeviceInfo) -> Result<(), StoreError> {
        let path = self.root.join(DEVICE_FILE);
        let bytes = serde_json::to_vec_pretty(info).map_err(|e| StoreError::Io {
            action: "encode",
            path: path.clone(),
            source: io::Error::other(hearth_core::json_error_kind(&e)),
        })?;
        atomic_write(&self.root, DEVICE_FILE, &bytes).map_err(io_error("write", &path))
    }

    /// The household secret's epochs as this device last saved them, opened; `None`
    /// when there is no file.
    pub fn load_household_epochs(
        &self,
        identity: &age::x25519::Identity,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.open_sealed(&self.root, HOUSEHOLD_SECRET_FILE, identity)
    }

    /// Seals the household secret's epochs (`plain`, their file format) and writes them.
    pub fn save_household_epochs(
        &self,
        recipient: &age::x25519::Recipient,
        plain: &[u8],
    ) -> Result<(), StoreError> {
        self.write_sealed(&self.root, HOUSEHOLD_SECRET_FILE, recipient, plain)
    }

    /// The sync states saved for `device`, opened; `None` when there are none.
    pub fn load_sync_states(
        &self,
        identity: &age::x25519::Identity,
        device: &DeviceId,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.open_sealed(&self.root.join(SYNC_DIR), &sync_state_file(device), identity)
    }

    /// Seals the sync states for `device` and writes them, creating `sync/` (0700).
    pub fn save_sync_states(
        &self,
        recipient: &age::x25519::Recipient,
        device: &DeviceId,
        plain: &[u8],
    ) -> Result<(), StoreError> {
        let dir = self.root.join(SYNC_DIR);
        hearth_api::paths::ensure_private_dir(&dir).map_err(io_error("create", &dir))?;
        self.write_sealed(&dir, &sync_state_file(device), recipient, plain)
    }

    /// The sealed address book, opened; `None` when there is none.
    pub fn load_address_book(
        &self,
        identity: &age::x25519::Identity,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.open_sealed(&self.root, BOOK_FILE, identity)
    }

    /// Seals the address book and writes it.
    pub fn save_address_book(
        &self,
        recipient: &age::x25519::Recipient,
        plain: &[u8],
    ) -> Result<(), StoreError> {
        self.write_sealed(&self.root, BOOK_FILE, recipient, plain)
    }

    /// An older version's plain-text address book; `None` when there is none.
    pub fn read_legacy_address_book(&self) -> Result<Option<Vec<u8>>, StoreError> {
        read_if_present(&self.root.join(LEGACY_BOOK_FILE))
    }

    /// Removes the plain-text address book once its sealed copy is written.
    pub fn remove_legacy_address_book(&self) -> Result<(), StoreError> {
        remove_if_present(&self.root.join(LEGACY_BOOK_FILE))
    }

    /// Seals the read cache and writes it.
    pub fn save_status_cache(
        &self,
        recipient: &age::x25519::Recipient,
        plain: &[u8],
    ) -> Result<(), StoreError> {
        self.write_sealed(&self.root, STATUS_CACHE_FILE, recipient, plain)
    }

    /// Reads the sealed read cache and removes it, so that it is used at most once;
    /// `None` when there is none. Opening it is the caller's: a cache sealed for
    /// another key is a reason to load as usual, not an error of the store.
    pub fn take_status_cache(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.root.join(STATUS_CACHE_FILE);
        let Some(sealed) = read_if_present(&path)? else {
            return Ok(None);
        };
        // The cache's fingerprint still guards it should the removal be lost in a
        // crash, so no directory fsync is needed here.
        fs::remove_file(&path).map_err(io_error("remove", &path))?;
        Ok(Some(sealed))
    }

    /// What the owner's part of `status` is read from, for the read cache's
    /// fingerprint: a label and a path each, the directories before the files.
    pub fn status_sources(&self) -> [(&'static str, PathBuf); 4] {
        [DOCS_DIR, SYNC_DIR, HOUSEHOLD_SECRET_FILE, DEVICE_FILE].map(|name| (name, self.root.join(name)))
    }

    /// The date of the last reminder, as written; `None` when there is none.
    pub fn read_reminded(&self) -> Result<Option<Vec<u8>>, StoreError> {
        read_if_present(&self.root.join(REMINDED_FILE))
    }

    /// Writes the date of the last reminder.
    pub fn write_reminded(&self, text: &str) -> Result<(), StoreError> {
        atomic_write(&self.root, REMINDED_FILE, text.as_bytes())
            .map_err(io_error("write", &self.root.join(REMINDED_FILE)))
    }

    fn open_sealed(
        &self,
        dir: &Path,
        name: &str,
        identity: &age::x25519::Identity,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let path = dir.join(name);
        let Some(sealed) = read_if_present(&path)? else {
            return Ok(None);
        };
        envelope::open(identity, &sealed)
            .map(|plain| Some(Zeroizing::new(plain)))
            .map_err(|source| StoreError::Unsealed { path, source })
    }

    fn write_sealed(
        &self,
        dir: &Path,
        name: &str,
        recipient: &age::x25519::Recipient,
        plain: &[u8],
    ) -> Result<(), StoreError> {
        let sealed = envelope::seal(recipient, plain)?;
        atomic_write(dir, name, &sealed).map_err(io_error("write", &dir.join(name)))
    }
}

/// The sync-state file of `device`: its id without the dashes.
fn sync_state_file(device: &DeviceId) -> String {
    format!("{}{FILE_SUFFIX}", device.to_string().replace('-', ""))
}

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path)(e)),
    }
}

/// `device.json` could not be read at start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DeviceInfoError {
    /// The file is missing or unreadable.
    #[error("could not read {}; the data directory is incomplete", .path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file is not what this version writes.
    #[error("{} is damaged ({reason}); restore it from a backup", .path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong, without the file's contents.
        reason: &'static str,
    },
}
