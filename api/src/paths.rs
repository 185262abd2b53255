//! Where a daemon keeps its files.
//!
//! With an explicit data directory (`--data-dir` or `HEARTH_DATA_DIR`) everything lives
//! under it, the control socket included, so two daemons with different directories never
//! collide. Without one, data goes to the XDG data directory and the socket to
//! `$XDG_RUNTIME_DIR/hearth/`.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Environment variable naming the data directory.
pub const DATA_DIR_ENV: &str = "HEARTH_DATA_DIR";

/// The resolved locations of one daemon's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
}

impl Paths {
    /// Resolves the paths from an explicit directory, the environment, or XDG defaults.
    pub fn resolve(explicit: Option<&Path>) -> Paths {
        if let Some(dir) = explicit {
            return Paths::in_dir(dir);
        }
        if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
            return Paths::in_dir(Path::new(&dir));
        }
        let data_dir = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."))
            .join("hearth");
        let socket = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            Some(run) => PathBuf::from(run).join("hearth").join("hearthd.sock"),
            None => data_dir.join("hearthd.sock"),
        };
        Paths { data_dir, socket }
    }

    /// Everything under one directory.
    pub fn in_dir(dir: &Path) -> Paths {
        let data_dir = absolute(dir);
        Paths {
            socket: data_dir.join("hearthd.sock"),
            data_dir,
        }
    }

    /// The identity file.
    pub fn identity(&self) -> PathBuf {
        self.data_dir.join("identity.age")
    }

    /// The optional config file.
    pub fn config(&self) -> PathBuf {
        self.data_dir.join("config.toml")
    }

    /// The daemon's log when it runs in the background.
    pub fn log(&self) -> PathBuf {
        self.data_dir.join("hearthd.log")
    }

    /// Where documents are stored.
    pub fn docs(&self) -> PathBuf {
        self.data_dir.join("docs")
    }
}

fn absolute(dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
    }
}

/// Creates a directory (and parents) with mode 0700, and tightens it if it already exists.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A passphrase file that gives no passphrase.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassphraseFileError {
    /// The file could not be read.
    #[error("could not read the passphrase file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The IO error.
        source: io::Error,
    },
    /// Its first line is empty.
    #[error("the passphrase file {path} is empty; write the passphrase on its first line")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Reads a passphrase file: its first line, without the line ending. `hearth` and
/// `hearthd` read it by this one rule.
pub fn passphrase_from_file(path: &Path) -> Result<String, PassphraseFileError> {
    let text = fs::read_to_string(path).map_err(|source| PassphraseFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let passphrase = text.lines().next().unwrap_or_default().to_string();
    if passphrase.is_empty() {
        return Err(PassphraseFileError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(passphrase)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dir_holds_the_socket_too() {
        let p = Paths::resolve(Some(Path::new("/tmp/x")));
        assert_eq!(p.socket, PathBuf::from("/tmp/x/hearthd.sock"));
        assert_eq!(p.identity(), PathBuf::from("/tmp/x/identity.age"));
    }

    #[test]
    fn private_dirs_are_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
