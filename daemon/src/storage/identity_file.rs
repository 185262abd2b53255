//! The identity file (`identity.age`): written once, replaced only whole.

use super::*;

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
