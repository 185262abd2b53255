//! What the daemon-level sections share: real `hearthd` children with years of
//! generated history in their stores, and what `/proc` says about a process.
//!
//! History goes into a daemon by the daemon's own storage code, not through the
//! control API: the daemon is stopped, its documents are opened with its identity
//! exactly as it opens them, the generator writes through the typed [`Docs`] API (one
//! commit per record, two writers, the record's own time), and the result is stored as
//! one compacted snapshot. That is the history a household that used Hearth for years
//! would have, and it takes seconds; `import` would take one change per record at
//! the same instant by one writer, and its duplicate check is quadratic in check-ins.
//!
//! Nothing here may touch a running daemon's files: every function that opens a store
//! says so and is only called between `stop` and the next start.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use automerge::ActorId;
use hearth_api::paths::Paths;
use hearth_core::doc::{Doc, DocKind, Docs};
use hearth_core::model::{Device, Person, PersonId};
use hearth_core::secrets::DeviceSecrets;
use hearthd::storage::{self, DocStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::BenchError;
use crate::generate::{self, Household, Options, Summary, DAY_MS};
use crate::harness::TestDaemon;

/// The hint every daemon-level section gives when a binary is missing.
const BUILD_HINT: &str = "build them first with `cargo build --release -p hearthd -p hearth-cli` \
     (the benchmark runs the release binaries next to itself, in target/release/)";

/// Checks that the release `hearthd` and `hearth` binaries sit next to this benchmark.
pub fn require_binaries() -> Result<(PathBuf, PathBuf), BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::io("find the benchmark binary"))?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let find = |name: &str| {
        let path = dir.join(name);
        if path.exists() {
            Ok(path)
        } else {
            Err(BenchError::Check(format!(
                "{} is missing; {BUILD_HINT}",
                path.display()
            )))
        }
    };
    Ok((find("hearthd")?, find("hearth")?))
}

/// Options for a history that ends yesterday (UTC), so that "today" in the daemon's
/// insights is the day after the last generated one, as for a couple still logging.
pub fn options_ending_yesterday(years: f64, seed: u64) -> Options {
    let mut opts = Options::new(years, seed);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(generate::DEFAULT_START_MS, |d| d.as_millis() as i64);
    let today = now_ms - now_ms.rem_euclid(DAY_MS);
    opts.start_ms = today - i64::from(opts.days().max(1)) * DAY_MS;
    opts
}

/// A daemon started by the benchmark, with the temp dir that holds its data.
pub struct Started {
    /// The daemon. Declared before `dir`, so it is killed before its files go.
    pub daemon: TestDaemon,
    /// Its person.
    pub me: PersonId,
    /// Its data directory, removed on drop.
    pub dir: tempfile::TempDir,
}

/// Starts a daemon in a fresh temp dir under `base` (the system temp dir when `None`)
/// and initialises it as `name`.
pub fn started(name: &str, base: Option<&Path>) -> Result<Started, BenchError> {
    let dir = match base {
        Some(base) => tempfile::tempdir_in(base),
        None => tempfile::tempdir(),
    }
    .map_err(BenchError::io("create a temp dir for hearthd"))?;
    let daemon = TestDaemon::start_in(dir.path()).map_err(BenchError::daemon("start hearthd"))?;
    daemon
        .init(name)
        .map_err(BenchError::daemon("initialise hearthd"))?;
    let me = person_of(&daemon)?;
    Ok(Started { daemon, me, dir })
}

/// Where tmpfs is, for figures without disk IO, if this machine has it.
pub fn tmpfs() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
            (kind == "tmpfs").then(|| PathBuf::from(at))
        })
        .find(|p| p == Path::new("/dev/shm") || p == Path::new("/tmp"))
        .filter(|p| {
            // It must be writable by us.
            tempfile::tempdir_in(p).is_ok()
        })
}

/// The filesystem type of `path`'s mount, for the report.
pub fn fs_kind(path: &Path) -> String {
    let Ok(mounts) = fs::read_to_string("/proc/mounts") else {
        return "unknown".into();
    };
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
            Some((PathBuf::from(at), kind.to_string()))
        })
        .filter(|(at, _)| path.starts_with(at))
        .max_by_key(|(at, _)| at.as_os_str().len())
        .map_or_else(|| "unknown".into(), |(_, kind)| kind)
}

/// The person a daemon's device belongs to.
pub fn person_of(daemon: &TestDaemon) -> Result<PersonId, BenchError> {
    let status = daemon
        .status()
        .map_err(BenchError::daemon("ask hearthd for its status"))?;
    let id = status
        .person
        .ok_or_else(|| BenchError::Check("an initialised hearthd reports no person".into()))?
        .id;
    id.parse().map_err(|_| {
        BenchError::Check(format!(
            "hearthd reports a person id `{id}` that is not a UUID"
        ))
    })
}

/// A stopped daemon's documents, opened with its own identity.
pub struct OpenStore {
    /// Both documents, with a fresh actor as the daemon itself uses per start.
    pub docs: Docs,
    household: DocStore,
    private: DocStore,
    /// The daemon's device key, which signs what this store's documents wrote.
    signer: ring::signature::Ed25519KeyPair,
}

impl OpenStore {
    /// Opens the documents of the stopped daemon whose data directory is `data_dir`.
    /// Never call it while that daemon runs.
    pub fn open(data_dir: &Path, me: PersonId) -> Result<OpenStore, BenchError> {
        let secrets = storage::read_secrets(data_dir)?;
        let secrets = DeviceSecrets::from_file_bytes(&secrets, None).map_err(|e| {
            BenchError::Check(format!("the daemon's identity could not be read: {e}"))
        })?;
        let identity = secrets.age_identity();
        let docs_dir = Paths::in_dir(data_dir).docs();
        let signer =
            ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(secrets.device_pkcs8())
                .map_err(|_| {
                    BenchError::Check("the daemon's device key could not be read".into())
                })?;
        let actor = hearthd::actor::run_actor(&signer);
        let open = |kind: DocKind| -> Result<(Doc, DocStore), BenchError> {
            let (store, loaded) = DocStore::open(&docs_dir.join(kind.doc_id()), identity)?;
            if !loaded.quarantined.is_empty() {
                return Err(BenchError::Check(format!(
                    "the daemon's {} store quarantined files it could not read",
                    kind.doc_id()
                )));
            }
            let mut doc = Doc::from_automerge(kind, loaded.doc, actor.clone());
            for bytes in &loaded.proofs {
                if let Ok(proof) = hearth_core::provenance::HeadProof::decode(bytes) {
                    doc.restore_proof(proof);
                }
            }
            Ok((doc, store))
        };
        let (household, household_store) = open(DocKind::Household)?;
        let (private, private_store) = open(DocKind::Private(me))?;
        Ok(OpenStore {
            docs: Docs::from_parts(household, private, me),
            household: household_store,
            private: private_store,
            signer,
        })
    }

    /// Stores both documents as one compacted snapshot each, as the daemon's own
    /// compaction does, with this device's signed heads over what it wrote.
    pub fn save(&mut self, docs: &Docs) -> Result<(), BenchError> {
        let mut docs = docs.clone();
        for doc in [&mut docs.household, &mut docs.private] {
            doc.sign_latest(&self.signer);
            let proofs: Vec<Vec<u8>> = doc
                .proofs()
                .settled()
                .map(hearth_core::provenance::HeadProof::encode)
                .collect();
            let store = if doc.kind() == DocKind::Household {
                &mut self.household
            } else {
                &mut self.private
            };
            store.compact(doc.automerge(), &proofs)?;
        }
        Ok(())
    }

    /// An actor id of this device for a document set that only exists in a benchmark.
    pub fn actor(&self) -> ActorId {
        hearthd::actor::run_actor(&self.signer)
    }

    /// Signs `doc`'s latest change by this device and hands back the signed head, for
    /// a copy of the document kept by another device.
    pub fn sign_for(&self, doc: &mut Doc) -> Option<hearth_core::provenance::HeadProof> {
        doc.sign_latest(&self.signer);
        let key = hearthd::actor::signer_key(&self.signer);
        doc.proofs().of(&key).cloned()
    }

    /// Bytes on disk of both documents.
    pub fn disk_bytes(&self) -> u64 {
        self.household.disk_bytes() + self.private.disk_bytes()
    }
}

/// A document set for `me` that starts from `household` (a copy of another device's
/// household document) with an empty private document: a device of that person that
/// only exists in the benchmark.
pub fn scratch_docs(household: &Doc, me: PersonId, actor: ActorId) -> Docs {
    Docs::from_parts(
        Doc::from_automerge(
            DocKind::Household,
            household.automerge().clone(),
            actor.clone(),
        ),
        Doc::new(DocKind::Private(me), actor),
        me,
    )
}

/// Makes a two-person household from two document sets whose household documents
/// share a roster holding both people, so the generator can write as either.
pub fn household_of(a: Docs, b: Docs) -> Result<Household, BenchError> {
    let people = a.people();
    let find = |id: PersonId| -> Result<Person, BenchError> {
        people
            .iter()
            .find(|p| p.id == id)
            .cloned()
            .ok_or_else(|| BenchError::Check(format!("person {id} is not on the roster")))
    };
    let people = [find(a.me)?, find(b.me)?];
    let devices = a.devices();
    let device_of = |person: PersonId| -> Device {
        devices
            .iter()
            .find(|d| d.person == person)
            .cloned()
            .unwrap_or_else(|| placeholder_device(person))
    };
    let devices = [device_of(a.me), device_of(b.me)];
    Ok(Household {
        a,
        b,
        people,
        devices,
    })
}

/// The generator never reads devices; a partner who is not paired yet has none.
fn placeholder_device(person: PersonId) -> Device {
    Device::unsigned(String::new(), person, "not paired".into(), String::new())
}

/// What [`fill_alone`] wrote.
pub struct Filled {
    /// The household as the generator left it; `a` is the daemon's view.
    pub household: Household,
    /// What was generated.
    pub summary: Summary,
    /// How long generating took.
    pub generate: Duration,
    /// Bytes of both documents on disk afterwards.
    pub disk_bytes: u64,
}

/// Fills the store of a stopped, unpaired daemon (person `me`) with `opts` of history
/// written by its person and a partner who is added to its roster for the purpose.
pub fn fill_alone(data_dir: &Path, me: PersonId, opts: &Options) -> Result<Filled, BenchError> {
    let mut store = OpenStore::open(data_dir, me)?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5041_5254_4e45_5221);
    let partner = Person {
        id: uuid::Builder::from_random_bytes(rng.gen()).into_uuid(),
        name: "Sam".into(),
        joined_at: opts.start_ms,
    };
    store
        .docs
        .add_person(&partner, opts.start_ms)
        .map_err(|e| BenchError::Doc(Box::new(e)))?;
    let partner_docs = scratch_docs(&store.docs.household, partner.id, ActorId::random());
    let mine = store.docs.clone();
    let mut household = household_of(mine, partner_docs)?;
    let started = std::time::Instant::now();
    let summary = generate::generate(&mut household, opts)?;
    let generate = started.elapsed();
    store.save(&household.a)?;
    Ok(Filled {
        disk_bytes: store.disk_bytes(),
        household,
        summary,
        generate,
    })
}

/// Copies the stopped daemon directory `from` to `to` (created), with permissions;
/// sockets and other special files are left out.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), BenchError> {
    fs::create_dir_all(to).map_err(BenchError::io("create a backup dir"))?;
    let mode = fs::metadata(from)
        .map_err(BenchError::io("read a daemon dir"))?
        .permissions();
    fs::set_permissions(to, mode).map_err(BenchError::io("set a backup dir's mode"))?;
    for entry in fs::read_dir(from).map_err(BenchError::io("list a daemon dir"))? {
        let entry = entry.map_err(BenchError::io("list a daemon dir"))?;
        let kind = entry
            .file_type()
            .map_err(BenchError::io("inspect a daemon file"))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            // fs::copy keeps the mode, so the identity stays 0600.
            fs::copy(entry.path(), &target).map_err(BenchError::io("copy a daemon file"))?;
        }
    }
    Ok(())
}

/// Replaces the stopped daemon directory `to` with the copy in `from`.
pub fn restore_tree(from: &Path, to: &Path) -> Result<(), BenchError> {
    for entry in fs::read_dir(to).map_err(BenchError::io("list a daemon dir"))? {
        let path = entry.map_err(BenchError::io("list a daemon dir"))?.path();
        if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .map_err(BenchError::io("clear a daemon dir"))?;
    }
    copy_tree(from, to)
}

/// A snapshot of what the kernel says about one process and its threads.
#[derive(Debug, Clone, Default)]
pub struct ProcSample {
    /// Resident set size, bytes.
    pub rss: u64,
    /// Peak resident set size so far, bytes.
    pub rss_peak: u64,
    /// User plus system CPU time from `/proc/<pid>/stat`, in clock ticks; includes
    /// threads that have exited.
    pub cpu_ticks: u64,
    /// Per live thread id: CPU nanoseconds from its `schedstat`, and its voluntary plus
    /// involuntary context switches (a thread that wakes and sleeps again counts one).
    pub threads: BTreeMap<u64, (u64, u64)>,
}

/// The kernel's clock tick for `/proc/<pid>/stat` times. `USER_HZ` is fixed at 100 in
/// the Linux ABI on every architecture this runs on.
pub const TICKS_PER_SECOND: u64 = 100;

impl ProcSample {
    /// Reads `/proc/<pid>`.
    pub fn read(pid: u32) -> Result<ProcSample, BenchError> {
        let base = PathBuf::from(format!("/proc/{pid}"));
        let status = fs::read_to_string(base.join("status"))
            .map_err(BenchError::io("read /proc/<pid>/status of hearthd"))?;
        let kb = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        let stat = fs::read_to_string(base.join("stat"))
            .map_err(BenchError::io("read /proc/<pid>/stat of hearthd"))?;
        // The command name is in parentheses and may hold spaces; fields count from
        // after the last `)`. utime and stime are fields 14 and 15 of the whole line.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let cpu_ticks = field(14).unwrap_or(0) + field(15).unwrap_or(0);
        let mut sample = ProcSample {
            rss: kb("VmRSS:"),
            rss_peak: kb("VmHWM:"),
            cpu_ticks,
            threads: BTreeMap::new(),
        };
        let tasks = fs::read_dir(base.join("task"))
            .map_err(BenchError::io("list the threads of hearthd"))?;
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            let dir = task.path();
            // A thread may exit between the listing and the reads; it is simply missed.
            let (Ok(sched), Ok(status)) = (
                fs::read_to_string(dir.join("schedstat")),
                fs::read_to_string(dir.join("status")),
            ) else {
                continue;
            };
            let ns = sched
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            let switches = status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
            sample.threads.insert(tid, (ns, switches));
        }
        Ok(sample)
    }

    /// Per-thread growth since `earlier`, summed: threads born since count whole,
    /// threads that died since are lost (their time is still in `cpu_ticks`).
    fn thread_delta(&self, earlier: &ProcSample) -> (u64, u64) {
        self.threads
            .iter()
            .map(|(tid, (ns, switches))| {
                let (ns0, sw0) = earlier.threads.get(tid).copied().unwrap_or((0, 0));
                (ns.saturating_sub(ns0), switches.saturating_sub(sw0))
            })
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    }

    /// Context switches of the threads between `earlier` and `self`.
    pub fn switches_since(&self, earlier: &ProcSample) -> u64 {
        self.thread_delta(earlier).1
    }

    /// CPU milliseconds between `earlier` and `self`, by the tick counters.
    pub fn cpu_ms_since(&self, earlier: &ProcSample) -> f64 {
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 * 1000.0 / TICKS_PER_SECOND as f64
    }

    /// CPU milliseconds between `earlier` and `self`, by the threads' schedstat.
    pub fn sched_ms_since(&self, earlier: &ProcSample) -> f64 {
        self.thread_delta(earlier).0 as f64 / 1e6
    }
}

/// The pid of a running test daemon.
pub fn pid_of(daemon: &TestDaemon) -> Result<u32, BenchError> {
    daemon
        .pid()
        .ok_or_else(|| BenchError::Check("the test daemon is not running".into()))
}

/// A `hearth` command against `data_dir`, with nothing from the caller's environment
/// that could point it elsewhere.
pub fn hearth(bin: &Path, data_dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env_remove("HEARTH_DATA_DIR")
        .env_remove("HEARTH_PASSPHRASE_FILE")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    cmd
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn proc_sample_sees_this_process_work_and_sleep() {
        let pid = std::process::id();
        let before = ProcSample::read(pid).unwrap();
        // Spin until the kernel has counted 50 ms of CPU, however busy the machine is.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut x = 0u64;
        loop {
            let slice = std::time::Instant::now();
            while slice.elapsed() < Duration::from_millis(10) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            let now = ProcSample::read(pid).unwrap();
            if now.sched_ms_since(&before) >= 50.0 && now.cpu_ms_since(&before) >= 50.0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{before:?} {now:?}");
        }
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let after = ProcSample::read(pid).unwrap();
        assert!(after.rss > 0 && after.rss_peak >= after.rss);
        assert!(after.switches_since(&before) >= 10, "{before:?} {after:?}");
        assert!(after.threads.contains_key(&u64::from(pid)));
    }
}
