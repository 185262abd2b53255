//! Static discovery: devices announce on a rendezvous board that lives on this machine,
//! either in memory (unit tests) or in a directory (`HEARTH_DISCOVERY_DIR`, for
//! integration tests and single-machine demos with several daemons).
//!
//! It sends nothing on any network, so a test can exercise the whole discovery path,
//! labels and matching and dialling, without multicast. It must not be used to reach
//! other machines: the addresses it announces are the daemon's own listen address.
//!
//! A directory board holds one file per label, named after it, listing the addresses.
//! Readers poll it every [`POLL`]; files are written whole with a rename, so a reader
//! never sees half an entry.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{token, Announcements, Discovery, DiscoveryError, Seen, Stopping};

/// How often a directory board is read.
pub const POLL: Duration = Duration::from_millis(200);
const SUFFIX: &str = ".addrs";

/// Entries on a board: label to addresses.
pub type Entries = BTreeMap<String, Vec<SocketAddr>>;

/// A board shared by everyone in one process.
#[derive(Default)]
pub struct MemoryBoard {
    entries: Mutex<Entries>,
    changed: Mutex<Option<watch::Sender<u64>>>,
}

impl MemoryBoard {
    fn touch(&self) {
        if let Ok(mut changed) = self.changed.lock() {
            let sender = changed.get_or_insert_with(|| watch::channel(0).0);
            sender.send_modify(|n| *n += 1);
        }
    }

    fn watch(&self) -> watch::Receiver<u64> {
        match self.changed.lock() {
            Ok(mut changed) => changed
                .get_or_insert_with(|| watch::channel(0).0)
                .subscribe(),
            Err(_) => watch::channel(0).1,
        }
    }
}

/// Where announcements are kept.
#[derive(Clone)]
pub enum Board {
    /// In this process.
    Memory(Arc<MemoryBoard>),
    /// In a directory on this machine.
    Dir(PathBuf),
}

impl Board {
    /// A fresh in-memory board; clone it to share it.
    pub fn memory() -> Board {
        Board::Memory(Arc::new(MemoryBoard::default()))
    }

    /// A board in `dir`, created if missing.
    pub fn dir(dir: PathBuf) -> Result<Board, DiscoveryError> {
        std::fs::create_dir_all(&dir).map_err(|source| DiscoveryError::Board {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Board::Dir(dir))
    }

    fn error(&self, source: std::io::Error) -> DiscoveryError {
        let path = match self {
            Board::Memory(_) => "(memory)".to_string(),
            Board::Dir(dir) => dir.display().to_string(),
        };
        DiscoveryError::Board { path, source }
    }

    fn put(&self, label: &str, addrs: &[SocketAddr]) -> Result<(), DiscoveryError> {
        match self {
            Board::Memory(board) => {
                if let Ok(mut entries) = board.entries.lock() {
                    entries.insert(label.to_string(), addrs.to_vec());
                }
                board.touch();
                Ok(())
            }
            Board::Dir(dir) => {
                let text: String = addrs.iter().map(|a| format!("{a}\n")).collect();
                crate::storage::atomic_write(dir, &format!("{label}{SUFFIX}"), text.as_bytes())
                    .map_err(|e| self.error(e))
            }
        }
    }

    fn remove(&self, label: &str) {
        match self {
            Board::Memory(board) => {
                if let Ok(mut entries) = board.entries.lock() {
                    entries.remove(label);
                }
                board.touch();
            }
            Board::Dir(dir) => {
                let _ = std::fs::remove_file(dir.join(format!("{label}{SUFFIX}")));
            }
        }
    }

    /// What is announced on the board now: label to addresses.
    pub fn entries(&self) -> Entries {
        match self {
            Board::Memory(board) => board.entries.lock().map(|e| e.clone()).unwrap_or_default(),
            Board::Dir(dir) => {
                let mut entries = Entries::new();
                let Ok(read) = std::fs::read_dir(dir) else {
                    return entries;
                };
                for entry in read.flatten() {
                    let name = entry.file_name();
                    let Some(label) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                        continue;
                    };
                    // Only well-formed labels: the board is shared, but a file name is
                    // never trusted to be one of ours.
                    if token::parse_label(label).is_none() {
                        continue;
                    }
                    let Ok(text) = std::fs::read_to_string(entry.path()) else {
                        continue;
                    };
                    let addrs = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
                    entries.insert(label.to_string(), addrs);
                }
                entries
            }
        }
    }
}

/// Discovery through a [`Board`].
pub struct StaticDiscovery {
    board: Board,
    ip: IpAddr,
    mine: Mutex<BTreeSet<String>>,
    stop: watch::Sender<bool>,
    browsing: Mutex<bool>,
}

impl StaticDiscovery {
    /// Announces on `board` that this device listens on `ip`.
    pub fn new(board: Board, ip: IpAddr) -> StaticDiscovery {
        StaticDiscovery {
            board,
            ip,
            mine: Mutex::new(BTreeSet::new()),
            stop: watch::channel(false).0,
            browsing: Mutex::new(false),
        }
    }
}

impl Discovery for StaticDiscovery {
    fn announce(&self, labels: &Announcements, port: u16) -> Result<(), DiscoveryError> {
        // The board is on this machine only and has no service types: every label on it
        // is heard, whatever type it would go under on the air.
        let labels: BTreeSet<String> = labels.keys().cloned().collect();
        let labels = &labels;
        let Ok(mut mine) = self.mine.lock() else {
            return Err(DiscoveryError::NotRunning);
        };
        for old in mine.difference(labels) {
            self.board.remove(old);
        }
        let addr = SocketAddr::new(self.ip, port);
        for label in labels {
            self.board.put(label, &[addr])?;
        }
        *mine = labels.clone();
        Ok(())
    }

    fn browse(&self) -> Result<mpsc::UnboundedReceiver<Seen>, DiscoveryError> {
        match self.browsing.lock() {
            Ok(mut browsing) if !*browsing => *browsing = true,
            _ => return Err(DiscoveryError::NotRunning),
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let board = self.board.clone();
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            let mut changes = match &board {
                Board::Memory(memory) => Some(memory.watch()),
                Board::Dir(_) => None,
            };
            let mut before = Entries::new();
            loop {
                let now = board.entries();
                for (label, addrs) in &now {
                    if before.get(label) != Some(addrs) {
                        let seen = Seen::Found {
                            label: label.clone(),
                            addrs: addrs.clone(),
                        };
                        if tx.send(seen).is_err() {
                            return;
                        }
                    }
                }
                for label in before.keys().filter(|l| !now.contains_key(*l)) {
                    if tx
                        .send(Seen::Gone {
                            label: label.clone(),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                before = now;
                tokio::select! {
                    _ = stop.changed() => return,
                    () = async {
                        match changes.as_mut() {
                            Some(changes) => { let _ = changes.changed().await; }
                            None => tokio::time::sleep(POLL).await,
                        }
                    } => {}
                }
            }
        });
        Ok(rx)
    }

    fn requery(&self) {
        // The board is read continuously; there is nothing to ask again.
    }

    fn shutdown(&self) -> Stopping {
        let _ = self.announce(&Announcements::new(), 0);
        let _ = self.stop.send(true);
        Box::pin(async {})
    }
}
