//! [`DataDir`]: every file hearthd keeps under its data directory, by name.
//!
//! The modules that own a file's meaning (the address book, the sync hub, the
//! household secret's epochs, the read cache, pairing) hand it bytes and ask for bytes;
//! only this type joins paths under the data directory, creates its private
//! directories and writes through [`atomic_write`]. Sealed files are sealed to and
//! opened with this device's age identity here, so no caller writes one in plain.
//!
//! ```text
//! <data>/docs/<doc>/            one document's store (see the store's layout)
//! <data>/docs/household-joining  an own-device join's new household, until swapped in
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
use hearth_core::doc::DocKind;
use hearth_core::identity::DeviceId;
use hearth_core::model::PersonId;

/// Who this device is, kept beside the identity. Not secret.
pub const DEVICE_FILE: &str = "device.json";
/// The household secret's epochs. A joined device of an older version kept its one
/// secret here as 32 bytes.
pub const HOUSEHOLD_SECRET_FILE: &str = "household-secret.hearth";
/// Where an own-device join builds the new household, under `docs/`.
const JOINING_DIR: &str = "household-joining";
/// Where the replaced household sits for a moment during the swap, under `docs/`.
const REPLACED_DIR: &str = "household-replaced";
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

    /// The store of one document.
    pub fn doc(&self, kind: DocKind) -> PathBuf {
        self.docs().join(kind.doc_id())
    }

    /// Removes a document's store, for a document this device no longer keeps.
    pub fn remove_doc(&self, kind: DocKind) -> Result<(), StoreError> {
        remove_dir_if_present(&self.doc(kind))
    }

    /// Where an own-device join builds the new household before it replaces this
    /// device's.
    pub fn joining_household(&self) -> PathBuf {
        self.docs().join(JOINING_DIR)
    }

    /// Throws away a household an own-device join was building.
    pub fn remove_joining_household(&self) -> Result<(), StoreError> {
        remove_dir_if_present(&self.joining_household())
    }

    /// Puts the household an own-device join built in place of the old one. Safe to
    /// run again after a crash at any point: each step is a rename or a removal that is
    /// skipped when already done.
    pub fn swap_in_joined_household(&self) -> Result<(), StoreError> {
        let docs = self.docs();
        let current = self.doc(DocKind::Household);
        let joining = self.joining_household();
        let replaced = docs.join(REPLACED_DIR);
        match fs::rename(&current, &replaced) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("set aside the old household", &current)(e)),
        }
        fs::rename(&joining, &current).map_err(io_error("move the new household in", &joining))?;
        sync_dir(&docs).map_err(io_error("sync directory", &docs))?;
        self.remove_replaced_household()
    }

    /// Removes the household a swap set aside, should a crash have left it.
    pub fn remove_replaced_household(&self) -> Result<(), StoreError> {
        remove_dir_if_present(&self.docs().join(REPLACED_DIR))
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
        self.open_sealed(
            &self.root.join(SYNC_DIR),
            &sync_state_file(device),
            identity,
        )
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
        [DOCS_DIR, SYNC_DIR, HOUSEHOLD_SECRET_FILE, DEVICE_FILE]
            .map(|name| (name, self.root.join(name)))
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

fn remove_dir_if_present(dir: &Path) -> Result<(), StoreError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove directory", dir)(e)),
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn sync_states_are_sealed_private_and_per_device() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path());
        let identity = age::x25519::Identity::generate();
        let device = DeviceId::from_public_key(&[7; 32]);
        let other = DeviceId::from_public_key(&[8; 32]);
        assert!(data_dir
            .load_sync_states(&identity, &device)
            .unwrap()
            .is_none());
        data_dir
            .save_sync_states(&identity.to_public(), &device, b"heads of Ada")
            .unwrap();
        let back = data_dir.load_sync_states(&identity, &device).unwrap();
        assert_eq!(
            back.as_deref().map(Vec::as_slice),
            Some(&b"heads of Ada"[..])
        );
        assert!(data_dir
            .load_sync_states(&identity, &other)
            .unwrap()
            .is_none());

        let sync = dir.path().join(SYNC_DIR);
        assert_eq!(mode(&sync), 0o700);
        let file = sync.join(sync_state_file(&device));
        assert_eq!(mode(&file), 0o600);
        assert!(!String::from_utf8_lossy(&fs::read(&file).unwrap()).contains("Ada"));

        let stranger = age::x25519::Identity::generate();
        let refused = data_dir.load_sync_states(&stranger, &device).unwrap_err();
        assert!(matches!(refused, StoreError::Unsealed { .. }));
        assert!(
            !refused
                .for_log()
                .contains(&dir.path().display().to_string()),
            "a log line names the file, never the data directory"
        );
    }

    #[test]
    fn device_info_round_trips_and_a_damaged_one_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path());
        assert!(matches!(
            data_dir.read_device_info(),
            Err(DeviceInfoError::Unreadable { .. })
        ));
        let info = DeviceInfo {
            person: PersonId::from_u128(3),
            device_id: "DEVICE".into(),
        };
        data_dir.write_device_info(&info).unwrap();
        assert_eq!(mode(&dir.path().join(DEVICE_FILE)), 0o600);
        let back = data_dir.read_device_info().unwrap();
        assert_eq!((back.person, back.device_id), (info.person, info.device_id));
        fs::write(dir.path().join(DEVICE_FILE), "{\"person\": \"Ada\"").unwrap();
        let damaged = data_dir.read_device_info().unwrap_err().to_string();
        assert!(damaged.contains("restore it from a backup"));
        assert!(!damaged.contains("Ada"), "never the file's contents");
    }

    #[test]
    fn the_status_cache_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path());
        let identity = age::x25519::Identity::generate();
        data_dir
            .save_status_cache(&identity.to_public(), b"status")
            .unwrap();
        assert_eq!(mode(&dir.path().join(STATUS_CACHE_FILE)), 0o600);
        assert!(data_dir.take_status_cache().unwrap().is_some());
        assert!(data_dir.take_status_cache().unwrap().is_none());
    }
}
