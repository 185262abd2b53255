//! The household secret's epochs on this device: loaded at start, moved on when this
//! device stops trusting another, adopted from trusted peers, kept sealed on disk.
//!
//! Shared by the document owner (which rotates and adopts, see [`crate::sync_hub`]) and
//! pairing and discovery (which read the secrets). The rules themselves are in
//! [`hearth_core::epochs`]. Nothing here logs a secret.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use hearth_core::epochs::{Epoch, Epochs};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::storage::DataDir;

/// Where the epochs are kept, sealed (see [`DataDir::load_household_epochs`]).
pub use crate::storage::HOUSEHOLD_SECRET_FILE;

/// This device's household secret epochs.
pub struct HouseholdKeys {
    /// Where the epochs are kept, sealed to this device's identity. A joined device of
    /// an older version kept its one secret there as 32 bytes; that loads as epoch 0.
    data_dir: DataDir,
    recipient: age::x25519::Recipient,
    epochs: Mutex<Epochs>,
    /// Loaded from a version before epochs (the bare secret, or only the identity
    /// file's), and never moved on since.
    legacy: AtomicBool,
    /// Bumped whenever the epochs change (and by pairing, when the open invite does),
    /// so that discovery announces the right labels.
    changes: watch::Sender<u64>,
    /// The transport's trust set, which checks cover certificates against these
    /// secrets: kept equal to them on every change, on whatever thread makes it.
    transport: OnceLock<Arc<crate::transport::TrustSet>>,
}

impl std::fmt::Debug for HouseholdKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HouseholdKeys").finish_non_exhaustive()
    }
}

impl HouseholdKeys {
    /// Loads the epochs: the sealed file if there is one, else the household secret in
    /// the identity file (a founding device that never rotated) as epoch 0, else none.
    pub fn load(data_dir: DataDir, secrets: &hearth_core::secrets::DeviceSecrets) -> Self {
        let identity = secrets.age_identity();
        let stored = data_dir
            .load_household_epochs(identity)
            .ok()
            .flatten()
            .and_then(|plain| match Epochs::decode(&plain) {
                Ok(epochs) => Some(epochs),
                Err(e) => {
                    tracing::warn!(error = %e, "the household secret file could not be read; using the one from the identity file");
                    None
                }
            });
        let legacy = stored
            .as_ref()
            .is_none_or(|e| e.all().len() == 1 && e.current().is_some_and(|c| c.number == 0));
        let epochs = stored
            .or_else(|| {
                secrets
                    .household_secret()
                    .map(|s| Epochs::starting_at(Epoch::new(0, *s)))
            })
            .unwrap_or_default();
        HouseholdKeys {
            data_dir,
            recipient: identity.to_public(),
            epochs: Mutex::new(epochs),
            legacy: AtomicBool::new(legacy),
            changes: watch::channel(0).0,
            transport: OnceLock::new(),
        }
    }

    /// Keeps `trust`'s household secrets equal to these epochs' secrets from now on.
    pub fn feed_transport(&self, trust: Arc<crate::transport::TrustSet>) {
        trust.set_household_secrets(self.secrets());
        let _ = self.transport.set(trust);
    }

    /// Whether the household secret never moved on from epoch 0 on this device: it
    /// was written by a version before epochs, or nobody was removed since. A device
    /// that finds removed devices or a leaving on its roster at start moves on then,
    /// so that what was removed before an upgrade stops recognising the household too.
    pub fn is_legacy(&self) -> bool {
        self.legacy.load(Ordering::Acquire)
    }

    /// Changes whenever the epochs (or, through [`Self::notify`], the open invite) may
    /// have changed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Tells discovery to look again.
    pub fn notify(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The current epoch, once this device has one.
    pub fn current(&self) -> Option<Epoch> {
        self.epochs.lock().ok().and_then(|e| e.current().cloned())
    }

    /// The kept secrets, the current one first.
    pub fn secrets(&self) -> Vec<Zeroizing<[u8; 32]>> {
        self.epochs.lock().map(|e| e.secrets()).unwrap_or_default()
    }

    /// The secrets whose discovery labels this device answers: the current epoch's
    /// number only (two devices that rotated at once keep two secrets under it). An
    /// older number is an epoch a removed device or a person who left may hold, since
    /// epochs only move on when trust shrinks: answering its labels would let such a
    /// device lure this one into dialling it.
    pub fn discoverable_secrets(&self) -> Vec<Zeroizing<[u8; 32]>> {
        self.epochs
            .lock()
            .map(|e| {
                let Some(current) = e.current().map(|c| c.number) else {
                    return Vec::new();
                };
                e.all()
                    .iter()
                    .filter(|epoch| epoch.number == current)
                    .map(|epoch| epoch.secret.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Moves to a fresh epoch, durably, and returns it. On a write failure nothing
    /// changes.
    pub fn rotate(&self) -> std::io::Result<Epoch> {
        self.change(|epochs| Some(epochs.rotate(&mut rand::rngs::OsRng)))?
            .ok_or_else(|| std::io::Error::other("no epoch"))
    }

    /// Adopts `epoch` if it supersedes the current one, durably. Returns whether it did.
    pub fn adopt(&self, epoch: Epoch) -> std::io::Result<bool> {
        Ok(self
            .change(|epochs| epochs.adopt(epoch.clone()).then_some(()))?
            .is_some())
    }

    /// Replaces every epoch with the one pairing handed over: this device now belongs to
    /// the inviter's household, and whatever it held before is no longer its own.
    pub fn replace(&self, epoch: Epoch) -> std::io::Result<()> {
        self.change(|epochs| {
            *epochs = Epochs::starting_at(epoch.clone());
            Some(())
        })
        .map(|_| ())
    }

    /// Applies `f` to a copy of the epochs; if it made a change, writes it and only
    /// then makes it current in memory.
    fn change<T>(&self, f: impl FnOnce(&mut Epochs) -> Option<T>) -> std::io::Result<Option<T>> {
        let mut guard = self
            .epochs
            .lock()
            .map_err(|_| std::io::Error::other("the epochs lock is poisoned"))?;
        let mut next = guard.clone();
        let Some(out) = f(&mut next) else {
            return Ok(None);
        };
        self.data_dir
            .save_household_epochs(&self.recipient, &next.encode())
            .map_err(|e| std::io::Error::other(e.for_log()))?;
        *guard = next;
        if let Some(trust) = self.transport.get() {
            trust.set_household_secrets(guard.secrets());
        }
        drop(guard);
        self.legacy.store(false, Ordering::Release);
        self.notify();
        Ok(Some(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_durable_and_an_old_file_loads_as_epoch_zero() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = hearth_core::secrets::DeviceSecrets::generate_unpaired(
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        // An older joined device's file: the bare secret, sealed.
        let sealed = hearth_core::envelope::seal(&secrets.age_recipient(), &[3u8; 32]).unwrap();
        let data_dir = DataDir::new(dir.path());
        std::fs::write(dir.path().join(HOUSEHOLD_SECRET_FILE), sealed).unwrap();
        let keys = HouseholdKeys::load(data_dir.clone(), &secrets);
        assert_eq!(keys.current().unwrap().number, 0);
        assert!(keys.is_legacy());
        let seen = keys.changes();
        let next = keys.rotate().unwrap();
        assert_eq!(next.number, 1);
        assert!(seen.has_changed().unwrap());
        assert!(!keys.is_legacy());
        let again = HouseholdKeys::load(data_dir, &secrets);
        assert!(!again.is_legacy());
        assert_eq!(again.current().unwrap(), next);
        assert_eq!(again.secrets().len(), 2);
        assert_eq!(*again.secrets()[1], [3u8; 32]);
        // What is on disk is sealed: neither secret appears in it.
        let on_disk = std::fs::read(dir.path().join(HOUSEHOLD_SECRET_FILE)).unwrap();
        assert!(!on_disk.windows(32).any(|w| w == &next.secret[..]));
        // A lower epoch changes nothing.
        assert!(!again.adopt(Epoch::new(0, [9; 32])).unwrap());
        assert!(again.adopt(Epoch::new(5, [9; 32])).unwrap());
        assert_eq!(again.current().unwrap().number, 5);
    }
}
