//! The address book on disk, sealed to this device's age identity like every other
//! file that holds entries, keys or addresses (THREAT-MODEL P7): where a partner's
//! devices were last reached says where that person has been.
//!
//! Older versions kept it in plain JSON as `peers.json`; that file is read once,
//! rewritten sealed, and removed.

use super::AddressBook;
use crate::storage::DataDir;

/// Loads the book, migrating a plain-text one. A book that cannot be read is a lost
/// cache, not lost data: addresses come back through discovery and pairing.
pub(super) fn load(data_dir: &DataDir, identity: &age::x25519::Identity) -> AddressBook {
    match data_dir.load_address_book(identity) {
        Ok(Some(plain)) => {
            let book = serde_json::from_slice(&plain).ok();
            if book.is_none() {
                tracing::warn!("the address book could not be read; starting afresh, and addresses come back as devices are found");
            }
            return book.unwrap_or_default();
        }
        Ok(None) => {}
        Err(crate::storage::StoreError::Unsealed { .. }) => {
            tracing::warn!("the address book could not be read; starting afresh, and addresses come back as devices are found");
            return AddressBook::default();
        }
        Err(e) => {
            tracing::warn!(error = %e.for_log(), "the address book could not be read; starting afresh");
            return AddressBook::default();
        }
    }
    let Ok(Some(plain)) = data_dir.read_legacy_address_book() else {
        return AddressBook::default();
    };
    // serde's message would quote the addresses; say only that it was unreadable.
    let book: AddressBook = serde_json::from_slice(&plain).unwrap_or_else(|e| {
        let why = hearth_core::json_error_kind(&e);
        tracing::warn!(
            reason = why,
            "the old plain-text address book could not be read; starting afresh"
        );
        AddressBook::default()
    });
    match save(data_dir, &identity.to_public(), &book) {
        Ok(()) => match data_dir.remove_legacy_address_book() {
            Ok(()) => {
                tracing::info!("sealed the address book, which an older version kept in plain text")
            }
            Err(e) => {
                tracing::warn!(error = %e.for_log(), "sealed the address book but could not remove the plain-text copy")
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not seal the old plain-text address book; will try again at the next start")
        }
    }
    book
}

/// Seals the book to `recipient` (this device) and writes it atomically.
pub(super) fn save(
    data_dir: &DataDir,
    recipient: &age::x25519::Recipient,
    book: &AddressBook,
) -> Result<(), String> {
    let plain = zeroize::Zeroizing::new(
        serde_json::to_vec(book).map_err(|e| hearth_core::json_error_kind(&e).to_string())?,
    );
    data_dir
        .save_address_book(recipient, &plain)
        .map_err(|e| e.for_log())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::storage::{BOOK_FILE, LEGACY_BOOK_FILE};

    fn book() -> AddressBook {
        let mut book = AddressBook::default();
        book.static_peers.insert("192.0.2.10:7447".into());
        book.last_addr
            .insert("DEVICE".into(), "198.51.100.7:7447".into());
        book
    }

    #[test]
    fn the_book_is_sealed_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let identity = age::x25519::Identity::generate();
        save(&DataDir::new(dir.path()), &identity.to_public(), &book()).unwrap();
        let raw = std::fs::read(dir.path().join(BOOK_FILE)).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("192.0.2.10"));
        let back = load(&DataDir::new(dir.path()), &identity);
        assert_eq!(back.static_peers, book().static_peers);
        assert_eq!(back.last_addr, book().last_addr);
    }

    #[test]
    fn an_old_plain_text_book_is_read_once_and_rewritten_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let identity = age::x25519::Identity::generate();
        let legacy = dir.path().join(LEGACY_BOOK_FILE);
        std::fs::write(&legacy, serde_json::to_vec(&book()).unwrap()).unwrap();
        let migrated = load(&DataDir::new(dir.path()), &identity);
        assert_eq!(migrated.static_peers, book().static_peers);
        assert!(!legacy.exists(), "the plain-text copy is gone");
        let raw = std::fs::read(dir.path().join(BOOK_FILE)).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("198.51.100.7"));
        assert_eq!(
            load(&DataDir::new(dir.path()), &identity).last_addr,
            book().last_addr
        );
    }

    #[test]
    fn an_unreadable_book_is_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let identity = age::x25519::Identity::generate();
        std::fs::write(dir.path().join(BOOK_FILE), b"not sealed").unwrap();
        assert!(load(&DataDir::new(dir.path()), &identity)
            .static_peers
            .is_empty());
        std::fs::remove_file(dir.path().join(BOOK_FILE)).unwrap();
        std::fs::write(dir.path().join(LEGACY_BOOK_FILE), b"{\"static_peers\": 7}").unwrap();
        assert!(load(&DataDir::new(dir.path()), &identity)
            .static_peers
            .is_empty());
    }
}
