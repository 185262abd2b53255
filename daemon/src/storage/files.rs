//! File primitives every store file goes through: private directories, atomic
//! writes (temp file, fsync, rename, directory fsync), removal and quarantine.

use super::*;

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

pub(super) fn temp_name(name: &str) -> String {
    format!(".{name}{TEMP_SUFFIX}")
}

pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
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

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(super) fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove", path)(e)),
    }
}

/// Moves `dir/name` into `dir/quarantine/`, never replacing an earlier file there.
pub(super) fn quarantine(dir: &Path, name: &str) -> Result<(), StoreError> {
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
