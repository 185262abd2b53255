//! The data-directory lock: one hearthd per data directory.

use super::*;

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
