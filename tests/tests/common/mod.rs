//! Helpers shared by the reliability and security tests: seeded randomness, writers that
//! keep the control socket busy and remember what was acknowledged, and a watcher that
//! SIGKILLs a daemon the moment a chosen file event happens in its store.
//!
//! Each test file includes this with `mod common;` and uses part of it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hearth_api::client::{Client, ClientError};
use hearth_api::{At, DocCall, MomentParams, NetCall};
use hearth_core::model::MomentKind;
use hearth_tests::harness::{TestDaemon, EVENT_TIMEOUT};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// Whether the long variants were asked for (`HEARTH_LONG_TESTS=1`).
pub fn long_tests() -> bool {
    std::env::var("HEARTH_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// `ci` iterations normally, `long` with `HEARTH_LONG_TESTS=1`.
pub fn iterations(ci: usize, long: usize) -> usize {
    if long_tests() {
        long
    } else {
        ci
    }
}

/// A seeded RNG for `test`: `HEARTH_SEED` when set, else a fixed seed, printed either way
/// so a failure can be replayed.
pub fn rng(test: &str) -> ChaCha8Rng {
    let seed = std::env::var("HEARTH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4ea7_u64);
    eprintln!("{test}: seed {seed} (set HEARTH_SEED to replay another)");
    ChaCha8Rng::seed_from_u64(seed)
}

/// Random lowercase text, so notes do not compress away and chunks have real size.
pub fn filler(rng: &mut ChaCha8Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
        .collect()
}

/// The `moment.add` call for a note.
pub fn moment_call(note: &str) -> DocCall {
    DocCall::MomentAdd(MomentParams {
        kind: MomentKind::Laugh,
        started_by: None,
        note: Some(note.into()),
        at: At::default(),
    })
}

/// Every moment note the daemon holds, read through `export`.
pub fn notes(d: &TestDaemon) -> BTreeSet<String> {
    notes_of(&d.call(DocCall::Export).unwrap())
}

/// The moment notes in an export.
pub fn notes_of(export: &Value) -> BTreeSet<String> {
    export["records"]["moments"]
        .as_array()
        .map(|moments| {
            moments
                .iter()
                .filter_map(|m| m["note"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// What a set of writers sent and what the daemon acknowledged.
#[derive(Debug, Default, Clone)]
pub struct WriteLog {
    /// Notes whose write was answered `ok`: they must survive anything.
    pub acked: BTreeSet<String>,
    /// Every note sent, answered or not: nothing outside this may appear.
    pub attempted: BTreeSet<String>,
    /// The errors that stopped the writers.
    pub errors: Vec<String>,
}

impl WriteLog {
    /// Checks that `present` holds every acknowledged note and nothing never sent
    /// (among the notes starting with `prefix`).
    pub fn check(&self, present: &BTreeSet<String>, prefix: &str) {
        let lost: Vec<&String> = self.acked.difference(present).collect();
        assert!(
            lost.is_empty(),
            "{} acknowledged writes were lost, e.g. {:?}",
            lost.len(),
            lost.iter().take(3).collect::<Vec<_>>()
        );
        let invented: Vec<&String> = present
            .iter()
            .filter(|n| n.starts_with(prefix) && !self.attempted.contains(*n))
            .collect();
        assert!(invented.is_empty(), "notes nobody wrote: {invented:?}");
    }

    /// Adds another log's notes to this one.
    pub fn absorb(&mut self, other: WriteLog) {
        self.acked.extend(other.acked);
        self.attempted.extend(other.attempted);
        self.errors.extend(other.errors);
    }
}

type Shared = Arc<(Mutex<WriteLog>, Condvar)>;

/// Threads that each write moments over their own control connection until they are
/// stopped, reach `max` writes, or the daemon stops answering.
pub struct Writers {
    shared: Shared,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Writers {
    /// Starts `threads` writers on `socket`. Notes are `<prefix>-<thread>-<n>-<filler>`
    /// with `pad` characters of filler.
    pub fn start(
        socket: &Path,
        prefix: &str,
        threads: usize,
        max: usize,
        pad: usize,
        rng: &mut ChaCha8Rng,
    ) -> Writers {
        let shared: Shared = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|t| {
                let shared = shared.clone();
                let stop = stop.clone();
                let socket = socket.to_owned();
                let prefix = format!("{prefix}-{t}");
                let mut rng = ChaCha8Rng::seed_from_u64(rng.gen());
                std::thread::spawn(move || {
                    let record_error = |e: String| {
                        let (log, wake) = &*shared;
                        log.lock().unwrap().errors.push(e);
                        wake.notify_all();
                    };
                    let mut client = match Client::connect(&socket) {
                        Ok(c) => c,
                        Err(e) => return record_error(e.to_string()),
                    };
                    for n in 0..max {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let note = format!("{prefix}-{n:05}-{}", filler(&mut rng, pad));
                        shared.0.lock().unwrap().attempted.insert(note.clone());
                        match client.call(moment_call(&note)) {
                            Ok(_) => {
                                let (log, wake) = &*shared;
                                log.lock().unwrap().acked.insert(note);
                                wake.notify_all();
                            }
                            Err(e) => return record_error(e.to_string()),
                        }
                    }
                    // Wake a waiter that counts on more acknowledgments than will come.
                    shared.1.notify_all();
                })
            })
            .collect();
        Writers {
            shared,
            stop,
            threads,
        }
    }

    /// Waits until `n` writes were acknowledged (true) or the writers gave up first.
    pub fn wait_acked(&self, n: usize) -> bool {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let (log, wake) = &*self.shared;
        let mut guard = log.lock().unwrap();
        loop {
            if guard.acked.len() >= n {
                return true;
            }
            if self.threads.iter().all(JoinHandle::is_finished) || Instant::now() > deadline {
                return false;
            }
            guard = wake
                .wait_timeout(guard, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }

    /// How many writes were acknowledged so far.
    pub fn acked(&self) -> usize {
        self.shared.0.lock().unwrap().acked.len()
    }

    /// Stops the writers after their current write and returns what they did.
    pub fn finish(self) -> WriteLog {
        self.stop.store(true, Ordering::SeqCst);
        self.join()
    }

    /// Waits for the writers to stop by themselves, as they do once the daemon is
    /// gone (or after `max` writes), and returns what they did.
    pub fn join(self) -> WriteLog {
        for t in self.threads {
            t.join().unwrap();
        }
        let log = self.shared.0.lock().unwrap().clone();
        log
    }
}

/// A file event in a document directory, as the store's atomic writes make them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreEvent {
    /// A chunk's temp file was created: the write has begun, nothing is renamed yet.
    ChunkTempCreated,
    /// A chunk was renamed into place (its directory is not fsynced yet).
    ChunkRenamed,
    /// Compaction began writing a snapshot's temp file.
    SnapshotTempCreated,
    /// Compaction renamed the new snapshot into place; covered files are still there.
    SnapshotRenamed,
    /// Compaction removed a covered file.
    CoveredRemoved,
}

impl StoreEvent {
    fn matches(self, flags: rustix::fs::inotify::ReadFlags, name: &str) -> bool {
        use rustix::fs::inotify::ReadFlags as F;
        let temp = name.starts_with('.') && name.ends_with(".tmp");
        match self {
            StoreEvent::ChunkTempCreated => {
                flags.contains(F::CREATE) && temp && name.starts_with(".chunk-")
            }
            StoreEvent::ChunkRenamed => flags.contains(F::MOVED_TO) && name.starts_with("chunk-"),
            StoreEvent::SnapshotTempCreated => {
                flags.contains(F::CREATE) && temp && name.starts_with(".snapshot-")
            }
            StoreEvent::SnapshotRenamed => {
                flags.contains(F::MOVED_TO) && name.starts_with("snapshot-")
            }
            StoreEvent::CoveredRemoved => {
                flags.contains(F::DELETE)
                    && (name.starts_with("chunk-") || name.starts_with("snapshot-"))
            }
        }
    }
}

/// Name of the file the watcher creates to wake itself when it is dropped.
const WAKE_FILE: &str = "wake-the-watcher";

/// SIGKILLs a process the moment the `nth` (from 1) `event` happens in `dir`, on its own
/// thread, so the kill lands while the daemon is inside that step. inotify, not polling:
/// the kill follows the event by microseconds.
pub struct KillOnEvent {
    dir: PathBuf,
    fired: mpsc::Receiver<()>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KillOnEvent {
    /// Watches `dir` (which must exist) and kills `pid` at the `nth` `event`.
    pub fn arm(dir: &Path, pid: u32, event: StoreEvent, nth: usize) -> KillOnEvent {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC).unwrap();
        inotify::add_watch(
            &fd,
            dir,
            inotify::WatchFlags::CREATE
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::DELETE,
        )
        .unwrap();
        let (tx, fired) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [std::mem::MaybeUninit::uninit(); 4096];
            let mut events = inotify::Reader::new(&fd, &mut buf);
            let mut seen = 0;
            while !stop.load(Ordering::SeqCst) {
                let Ok(e) = events.next() else { return };
                let name = e
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name == WAKE_FILE {
                    continue;
                }
                if event.matches(e.events(), &name) {
                    seen += 1;
                    if seen == nth {
                        kill(pid);
                        let _ = tx.send(());
                        return;
                    }
                }
            }
        });
        KillOnEvent {
            dir: dir.to_owned(),
            fired,
            done,
            thread: Some(thread),
        }
    }

    /// Whether the kill has happened; waits up to `timeout` for it.
    pub fn fired_within(&self, timeout: Duration) -> bool {
        self.fired.recv_timeout(timeout).is_ok()
    }
}

impl Drop for KillOnEvent {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        // The reader blocks in read(2); one more event lets it see `done`. The store
        // ignores files whose names it does not know.
        let wake = self.dir.join(WAKE_FILE);
        let _ = std::fs::write(&wake, b"");
        let _ = std::fs::remove_file(&wake);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// SIGKILLs `pid` (ignoring a process that is already gone).
pub fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// What a document directory holds, by kind of file.
#[derive(Debug, Default)]
pub struct StoreFiles {
    /// Snapshot generations.
    pub snapshots: Vec<u64>,
    /// Chunk sequence numbers.
    pub chunks: Vec<u64>,
    /// Temp files (writes in progress).
    pub temps: Vec<String>,
    /// Files in quarantine/.
    pub quarantined: Vec<String>,
}

/// Lists a document directory the way the store names its files.
pub fn store_files(dir: &Path) -> StoreFiles {
    let number = |name: &str, prefix: &str| -> Option<u64> {
        name.strip_prefix(prefix)?
            .strip_suffix(".hearth")?
            .parse()
            .ok()
    };
    let mut files = StoreFiles::default();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "quarantine" {
            files.quarantined = std::fs::read_dir(entry.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        } else if name.ends_with(".tmp") {
            files.temps.push(name);
        } else if let Some(g) = number(&name, "snapshot-") {
            files.snapshots.push(g);
        } else if let Some(s) = number(&name, "chunk-") {
            files.chunks.push(s);
        }
    }
    files.snapshots.sort_unstable();
    files.chunks.sort_unstable();
    files
}

/// Checks what a freshly opened store must look like: no temp files, nothing in
/// quarantine, at most one snapshot and no chunk that snapshot covers.
pub fn assert_store_clean(dir: &Path) {
    let files = store_files(dir);
    assert!(files.temps.is_empty(), "temp files left: {files:?}");
    assert!(
        files.quarantined.is_empty(),
        "a crash damaged a file: {files:?}"
    );
    assert!(
        files.snapshots.len() <= 1,
        "covered snapshots left: {files:?}"
    );
    if let Some(generation) = files.snapshots.first() {
        assert!(
            files.chunks.iter().all(|c| c >= generation),
            "covered chunks left: {files:?}"
        );
    }
}

/// The household document's directory under a data directory.
pub fn household_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("docs").join("household")
}

/// A daemon's data directory name, for messages.
pub fn label(path: &Path) -> &str {
    path.file_name().and_then(OsStr::to_str).unwrap_or("?")
}

/// Writes one moment and returns the answer.
pub fn write(d: &TestDaemon, note: &str) -> Result<Value, ClientError> {
    d.call(moment_call(note))
}

/// A device driven by the test itself over real QUIC on loopback: it can present any
/// device key (a stolen one, or a fresh one) and send whatever bytes it likes on the
/// sync or pairing protocol.
pub struct RawPeer {
    rt: tokio::runtime::Runtime,
    transport: hearthd::transport::Transport,
    trust: std::sync::Arc<hearthd::transport::TrustSet>,
    key: hearthd::transport::DeviceKey,
    /// The same key, for signing this peer's roster entry when it joins.
    signer: ring::signature::Ed25519KeyPair,
}

/// How a daemon ended a connection, as the raw peer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Closed with this application error code.
    Code(u64),
    /// Ended some other way (described).
    Other(String),
}

impl RawPeer {
    /// A peer with the device key in `pkcs8` (or a fresh one) that trusts `listeners`
    /// when it dials for sync.
    pub fn new(pkcs8: Option<&[u8]>, listeners: &[[u8; 32]]) -> RawPeer {
        use hearthd::transport::{DeviceKey, Transport, TrustSet};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let generated;
        let pkcs8 = match pkcs8 {
            Some(pkcs8) => pkcs8,
            None => {
                generated = ring::signature::Ed25519KeyPair::generate_pkcs8(
                    &ring::rand::SystemRandom::new(),
                )
                .unwrap();
                generated.as_ref()
            }
        };
        let key = DeviceKey::from_pkcs8(pkcs8).unwrap();
        let signer = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).unwrap();
        let trust = TrustSet::new();
        for k in listeners {
            trust.insert(*k);
        }
        let transport = {
            let _guard = rt.enter();
            Transport::bind("127.0.0.1:0".parse().unwrap(), &key, trust.clone()).unwrap()
        };
        RawPeer {
            rt,
            transport,
            trust,
            key,
            signer,
        }
    }

    /// Gives this peer a household secret, as a paired (or once paired) device holds
    /// one: without it, it accepts no sync listener.
    pub fn in_household(self, secret: [u8; 32]) -> RawPeer {
        self.trust
            .set_household_secrets(vec![zeroize::Zeroizing::new(secret)]);
        self
    }

    /// This peer speaks sync only in the classic layout (`hearth/1`), as a device from
    /// before the lean one did.
    pub fn classic_only(mut self) -> RawPeer {
        self.transport = self.transport.classic_only();
        self
    }

    /// This peer's public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.public_key()
    }

    /// Dials `addr` for `alpn`, writes `bytes` on one stream, and waits for the daemon
    /// to end the connection.
    pub fn send_and_wait_close(
        &self,
        addr: &str,
        alpn: hearthd::transport::Alpn,
        bytes: &[u8],
    ) -> Ended {
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        self.rt.block_on(async {
            let connection = match self.transport.connect(addr, alpn, None).await {
                Ok(dialed) => dialed.connection,
                Err(e) => return Ended::Other(format!("refused at connect: {e}")),
            };
            let (mut send, mut recv) = match connection.open_bi().await {
                Ok(s) => s,
                Err(e) => return Ended::Other(format!("no stream: {e}")),
            };
            let _ = send.write_all(bytes).await;
            // Read (and drop) whatever comes back until the daemon closes.
            let mut buf = vec![0u8; 64 * 1024];
            let drain = async { while let Ok(Some(_)) = recv.read(&mut buf).await {} };
            let _ = tokio::time::timeout(EVENT_TIMEOUT, drain).await;
            match tokio::time::timeout(EVENT_TIMEOUT, connection.closed()).await {
                Ok(quinn::ConnectionError::ApplicationClosed(close)) => {
                    Ended::Code(close.error_code.into_inner())
                }
                Ok(other) => Ended::Other(other.to_string()),
                Err(_) => Ended::Other("never closed".into()),
            }
        })
    }

    /// Dials `addr` for `alpn` and returns the key of the certificate the listener
    /// showed (for sync, after its in-channel proof: the proven key), then hangs up.
    pub fn shown_key(
        &self,
        addr: &str,
        alpn: hearthd::transport::Alpn,
    ) -> Result<[u8; 32], String> {
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        self.rt.block_on(async {
            let dialed = self
                .transport
                .connect(addr, alpn, None)
                .await
                .map_err(|e| e.to_string())?;
            hearthd::transport::close(&dialed.connection, hearthd::transport::CloseReason::Done);
            Ok(dialed.peer)
        })
    }

    /// Runs the joining side of `hearth-pair/1` with `code` against `addr`, as an
    /// honest joiner would, and returns the outcome and every byte this side sent.
    pub fn join(
        &self,
        addr: &str,
        code: &str,
        name: &str,
    ) -> (Result<hearth_core::pair::PairOutcome, String>, Vec<u8>) {
        let info = hearth_core::pair::JoinerInfo {
            device_key: self.public_key(),
            person_id: uuid::Uuid::new_v4(),
            person_name: name.into(),
            device_name: format!("{name}'s device"),
        };
        self.join_with(addr, code, info, hearth_core::pair::JoinerPolicy::default())
    }

    /// Runs the joining side of `hearth-pair/1` as a modified client may: saying
    /// whatever `info` holds and binding whatever role `policy` claims.
    pub fn join_with(
        &self,
        addr: &str,
        code: &str,
        info: hearth_core::pair::JoinerInfo,
        policy: hearth_core::pair::JoinerPolicy,
    ) -> (Result<hearth_core::pair::PairOutcome, String>, Vec<u8>) {
        use hearth_core::pair::{Handshake, TlsBinding};
        let person = info.person_id;
        let device_name = info.device_name.clone();
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        let code: hearth_core::pair::PairingCode = code.parse().unwrap();
        let local = self.public_key();
        self.rt.block_on(async {
            let mut sent = Vec::new();
            let (connection, peer) = match self
                .transport
                .connect(addr, hearthd::transport::Alpn::Pair, None)
                .await
            {
                Ok(dialed) => (dialed.connection, dialed.peer),
                Err(e) => return (Err(format!("refused at connect: {e}")), sent),
            };
            let (mut send, mut recv) = match connection.open_bi().await {
                Ok(s) => s,
                Err(e) => return (Err(format!("no stream: {e}")), sent),
            };
            let mut handshake = Handshake::new_joiner(
                &code,
                info,
                policy,
                TlsBinding {
                    local_tls_key: local,
                    peer_tls_key: peer,
                },
                &mut rand::rngs::OsRng,
            );
            let mut buf = vec![0u8; 16 * 1024];
            let outcome = loop {
                while let Some(frame) = handshake.poll_transmit() {
                    sent.extend_from_slice(&frame);
                    if send.write_all(&frame).await.is_err() {
                        break;
                    }
                }
                if let Some(outcome) = handshake.take_outcome() {
                    let _ = send.finish();
                    break Ok(outcome);
                }
                match tokio::time::timeout(EVENT_TIMEOUT, recv.read(&mut buf)).await {
                    Ok(Ok(Some(n))) => {
                        if let Err(e) = handshake.handle_bytes(&buf[..n]) {
                            while let Some(frame) = handshake.poll_transmit() {
                                sent.extend_from_slice(&frame);
                                let _ = send.write_all(&frame).await;
                            }
                            break Err(e.to_string());
                        }
                    }
                    Ok(Ok(None)) => break Err("the inviter ended the stream".into()),
                    Ok(Err(e)) => break Err(format!("the inviter closed: {e}")),
                    Err(_) => break Err("the inviter went quiet".into()),
                }
            };
            // Enrolment, as an honest joiner does it: sign our entry for the role the
            // inviter chose, and take back the entry it admitted.
            let outcome = match outcome {
                Ok(hearth_core::pair::PairOutcome::Inviter(inviter)) => {
                    self.trust
                        .set_household_secrets(vec![inviter.household_secret.clone()]);
                    match self
                        .enrol(&connection, &inviter, person, &device_name)
                        .await
                    {
                        Ok(()) => Ok(hearth_core::pair::PairOutcome::Inviter(inviter)),
                        Err(e) => Err(e),
                    }
                }
                other => other,
            };
            // The inviter closes once it has recorded us (or given up).
            let _ = tokio::time::timeout(EVENT_TIMEOUT, connection.closed()).await;
            (outcome, sent)
        })
    }
}

impl RawPeer {
    async fn enrol(
        &self,
        connection: &quinn::Connection,
        inviter: &hearth_core::pair::InviterInfo,
        person: uuid::Uuid,
        device_name: &str,
    ) -> Result<(), String> {
        use hearth_core::pair::InviteRole;
        let person = match inviter.role {
            InviteRole::OwnDevice => inviter.person_id,
            InviteRole::Partner => person,
        };
        let key = self.public_key();
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        let template = hearth_core::model::Device {
            age_recipient: Some(recipient.clone()),
            ..hearth_core::model::Device::unsigned(
                hearth_core::identity::DeviceId::from_public_key(&key).to_string(),
                person,
                device_name.to_string(),
                data_encoding::HEXLOWER.encode(&key),
            )
        };
        let request = serde_json::json!({
            "age_recipient": recipient,
            "self_sig": hearth_core::roster::self_sign(&self.signer, &template),
        });
        let (mut send, mut recv) = connection
            .open_bi()
            .await
            .map_err(|e| format!("no enrolment stream: {e}"))?;
        send.write_all(request.to_string().as_bytes())
            .await
            .map_err(|e| format!("enrolment not sent: {e}"))?;
        let _ = send.finish();
        let entry = recv
            .read_to_end(16 * 1024)
            .await
            .map_err(|e| format!("no entry back: {e}"))?;
        serde_json::from_slice::<hearth_core::model::Device>(&entry)
            .map(|_| ())
            .map_err(|_| "the inviter sent back no entry".to_string())
    }
}

/// The device secrets in a data directory (created without a passphrase).
pub fn secrets_of(data_dir: &Path) -> hearth_core::secrets::DeviceSecrets {
    let bytes = std::fs::read(data_dir.join("identity.age")).unwrap();
    hearth_core::secrets::DeviceSecrets::from_file_bytes(&bytes, None).unwrap()
}

/// Opens a partner invite on `d` and returns its code and address.
pub fn invite(d: &TestDaemon) -> (String, String) {
    invite_for(d, false)
}

/// Opens an invite on `d` (for another device of its person with `own_device`) and
/// returns its code and address.
pub fn invite_for(d: &TestDaemon, own_device: bool) -> (String, String) {
    let invite = d
        .call(NetCall::PairInvite {
            timeout_secs: Some(60),
            own_device,
        })
        .unwrap();
    (
        invite["code"].as_str().unwrap().to_string(),
        invite["addresses"][0].as_str().unwrap().to_string(),
    )
}

/// Starts `pair.wait` on its own connection; join the handle for the invite's result.
pub fn wait_for_invite(d: &TestDaemon) -> JoinHandle<Result<Value, ClientError>> {
    let socket = d.paths.socket.clone();
    std::thread::spawn(move || Client::connect(&socket)?.call(NetCall::PairWait))
}
