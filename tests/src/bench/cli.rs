//! The CLI section: what a person feels when they type `hearth`, and what the daemon
//! costs the machine while nobody types.
//!
//! Against a real `hearthd` child (release build) it measures:
//!
//! - `hearth --data-dir D --json status` as a process, from spawn to exit, next to
//!   `hearth --version` (a process that never reaches the daemon) and to the same call
//!   over an open control connection, so the process and the daemon can be told apart;
//! - a durable write through the CLI (`hearth moment laugh`, with and without `--json`),
//!   likewise;
//! - the daemon's resident memory fresh after `init`, and with years of history in its
//!   store after a restart, at start and after answering `status` and `insights`;
//! - the daemon's CPU time and wakeups over an idle window, for both daemons at once.
//!
//! It reads `/proc/<pid>` of the daemon and never reaches into its files while it runs.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hearth_api::{Call, DaemonCall, DocCall, MomentParams};
use hearth_core::model::MomentKind;

use super::fixture::{self, ProcSample};
use super::{ms, BenchError, Report, Samples, Unit};
use crate::harness::TestDaemon;

const SECTION: &str = "cli";

/// Targets from the daemon and CLI issue, for a release build.
const TARGET_STATUS_P50_MS: f64 = 5.0;
const TARGET_IDLE_RSS: f64 = 20.0 * 1024.0 * 1024.0;
const TARGET_IDLE_CPU_MS_PER_MIN: f64 = 50.0;

/// Issue 17: a daemon with ten years of history answers its first call within this
/// of being started, and stays within this much memory, its peak included.
const TARGET_FIRST_ANSWER_MS: f64 = 50.0;
const TARGET_RSS_10Y: f64 = 25.0 * 1024.0 * 1024.0;
/// Restarts timed for the first answer, with the read cache and without.
const FIRST_ANSWER_RUNS: usize = 5;

/// What to measure.
#[derive(Debug, Clone)]
pub struct CliOptions {
    /// Processes spawned per timed command.
    pub spawns: usize,
    /// Durable writes through the CLI.
    pub writes: usize,
    /// Length of the idle window for CPU time.
    pub idle: Duration,
    /// Years of history in the loaded daemon.
    pub history_years: f64,
    /// Generator seed.
    pub seed: u64,
    /// Where the daemons' data directories go; the system temp dir when `None`.
    pub dir: Option<PathBuf>,
}

impl Default for CliOptions {
    fn default() -> Self {
        CliOptions {
            spawns: 200,
            writes: 200,
            idle: Duration::from_secs(60),
            history_years: 10.0,
            seed: 42,
            dir: None,
        }
    }
}

/// Runs the CLI section.
pub fn run(opts: &CliOptions, report: &mut Report) -> Result<(), BenchError> {
    let (_, hearth) = fixture::require_binaries()?;
    let base = opts.dir.as_deref();
    let first = fixture::started("Alex", base)?;
    let fresh = &first.daemon;
    let data = "fresh";
    report.note(format!(
        "cli daemons keep their data on {} ({}); durable writes pay its fsync",
        first.dir.path().display(),
        fixture::fs_kind(first.dir.path())
    ));
    // Let start-up work (the first compaction, timers) finish before reading memory.
    std::thread::sleep(Duration::from_millis(500));
    let idle = ProcSample::read(fixture::pid_of(fresh)?)?;
    report.add_target(
        SECTION,
        data,
        "daemon RSS idle",
        idle.rss as f64,
        Unit::Bytes,
        TARGET_IDLE_RSS,
    );
    report.add(
        SECTION,
        data,
        "daemon threads",
        idle.threads.len() as f64,
        Unit::Count,
    );

    let dir = fresh.paths.data_dir.clone();
    let floor = time_command(opts.spawns, || Command::new("true"))?;
    percentiles(
        report,
        data,
        "`true` spawn→exit (this machine's floor)",
        &floor,
        None,
    );
    let version = time_command(opts.spawns, || {
        let mut cmd = Command::new(&hearth);
        cmd.arg("--version");
        cmd
    })?;
    percentiles(
        report,
        data,
        "`hearth --version` spawn→exit",
        &version,
        None,
    );
    let status = time_command(opts.spawns, || {
        let mut cmd = fixture::hearth(&hearth, &dir);
        cmd.args(["--json", "status"]);
        cmd
    })?;
    percentiles(
        report,
        data,
        "`hearth --json status` spawn→exit",
        &status,
        Some(TARGET_STATUS_P50_MS),
    );
    let in_process = time_calls(fresh, opts.spawns, || DaemonCall::Status.into())?;
    percentiles(
        report,
        data,
        "status over an open socket",
        &in_process,
        None,
    );

    let writes = time_command(opts.writes, || {
        let mut cmd = fixture::hearth(&hearth, &dir);
        cmd.args(["--json", "moment", "laugh"]);
        cmd
    })?;
    percentiles(
        report,
        data,
        "`hearth --json moment laugh` spawn→exit",
        &writes,
        None,
    );
    let socket_writes = time_calls(fresh, opts.writes, || {
        DocCall::MomentAdd(MomentParams {
            kind: MomentKind::Laugh,
            started_by: None,
            note: None,
            at: Default::default(),
        })
        .into()
    })?;
    percentiles(
        report,
        data,
        "moment.add over an open socket",
        &socket_writes,
        None,
    );
    let after = ProcSample::read(fixture::pid_of(fresh)?)?;
    report.add(
        SECTION,
        data,
        &format!("daemon RSS after {} writes", opts.writes * 2),
        after.rss as f64,
        Unit::Bytes,
    );

    // The same daemon with years of history: fill its store while it is stopped.
    let years = opts.history_years;
    let data = format!("{years}y");
    let fixture::Started {
        daemon: mut loaded,
        me,
        dir: kept,
    } = fixture::started("Alex", base)?;
    let loaded_dir = loaded.paths.data_dir.clone();
    loaded
        .stop()
        .map_err(BenchError::daemon("stop hearthd before filling its store"))?;
    let filled = fixture::fill_alone(
        &loaded_dir,
        me,
        &fixture::options_ending_yesterday(years, opts.seed),
    )?;
    report.add(
        SECTION,
        &data,
        "records in the store",
        filled.summary.total() as f64,
        Unit::Count,
    );
    report.add(
        SECTION,
        &data,
        "store on disk",
        filled.disk_bytes as f64,
        Unit::Bytes,
    );
    drop(filled);
    let started = Instant::now();
    let loaded =
        TestDaemon::start_in(&loaded_dir).map_err(BenchError::daemon("restart hearthd"))?;
    report.add(
        SECTION,
        &data,
        "daemon start to listening",
        ms(started),
        Unit::Ms,
    );
    let pid = fixture::pid_of(&loaded)?;
    std::thread::sleep(Duration::from_millis(500));
    let at_start = ProcSample::read(pid)?;
    report.add(
        SECTION,
        &data,
        "daemon RSS idle after start",
        at_start.rss as f64,
        Unit::Bytes,
    );
    report.add(
        SECTION,
        &data,
        "daemon RSS peak during start",
        at_start.rss_peak as f64,
        Unit::Bytes,
    );
    let status_loaded = time_command(opts.spawns, || {
        let mut cmd = fixture::hearth(&hearth, &loaded_dir);
        cmd.args(["--json", "status"]);
        cmd
    })?;
    percentiles(
        report,
        &data,
        "`hearth --json status` spawn→exit",
        &status_loaded,
        Some(TARGET_STATUS_P50_MS),
    );
    // Without --json the CLI names the people in its summary: the path whose second
    // round trip (a full `status`) `with_people` removed.
    for args in [&["--json", "moment", "laugh"][..], &["moment", "laugh"][..]] {
        let writes_loaded = time_command(opts.writes.min(50), || {
            let mut cmd = fixture::hearth(&hearth, &loaded_dir);
            cmd.args(args);
            cmd
        })?;
        percentiles(
            report,
            &data,
            &format!("`hearth {}` spawn→exit", args.join(" ")),
            &writes_loaded,
            None,
        );
    }
    loaded
        .call(DocCall::Insights {
            weeks: None,
            include_private: true,
            utc_offset_min: 60,
        })
        .map_err(BenchError::from)?;
    let after_calls = ProcSample::read(pid)?;
    report.add(
        SECTION,
        &data,
        "daemon RSS after status, writes and insights",
        after_calls.rss as f64,
        Unit::Bytes,
    );
    report.add(
        SECTION,
        &data,
        "daemon RSS peak so far",
        after_calls.rss_peak as f64,
        Unit::Bytes,
    );

    // Start → first answer: stopped cleanly, so the next start finds the sealed read
    // cache, and once more with the cache removed, which is a start after a crash.
    let mut loaded = loaded;
    let mut cached = Samples::default();
    let mut uncached = Samples::default();
    for run in 0..FIRST_ANSWER_RUNS * 2 {
        let with_cache = run % 2 == 0;
        let (took, daemon) = first_answer(loaded, &loaded_dir, with_cache)?;
        loaded = daemon;
        if with_cache {
            cached.push_ms(took);
        } else {
            uncached.push_ms(took);
        }
    }
    report.add_target(
        SECTION,
        &data,
        "daemon start → first status answer (median)",
        cached.median(),
        Unit::Ms,
        TARGET_FIRST_ANSWER_MS,
    );
    report.add(
        SECTION,
        &data,
        "daemon start → first status answer (slowest)",
        cached.percentile(100.0),
        Unit::Ms,
    );
    report.add(
        SECTION,
        &data,
        "  … without a read cache (median)",
        uncached.median(),
        Unit::Ms,
    );
    std::thread::sleep(Duration::from_millis(500));
    let restarted = ProcSample::read(fixture::pid_of(&loaded)?)?;
    report.add_target(
        SECTION,
        &data,
        "daemon RSS idle after a restart",
        restarted.rss as f64,
        Unit::Bytes,
        TARGET_RSS_10Y,
    );
    report.add_target(
        SECTION,
        &data,
        "daemon RSS peak during a restart",
        restarted.rss_peak as f64,
        Unit::Bytes,
        TARGET_RSS_10Y,
    );

    idle_cpu(
        SECTION,
        &[("fresh".to_string(), fresh), (data.clone(), &loaded)],
        opts.idle,
        report,
    )?;
    drop(loaded);
    drop(kept);
    drop(first);

    report.note(
        "cli spawn→exit = Command::output() of the release `hearth` binary (fork, exec, dynamic \
         loading, clap, connect to the control socket, one call, JSON out, exit) against a running \
         daemon; `hearth --version` is the same process without the daemon",
    );
    report.note(format!(
        "cli idle CPU = utime+stime from /proc/<pid>/stat ({} ticks a second) over a {:.0} s \
         window, scaled to a minute; 'schedstat' is the live threads' own nanosecond count, and \
         wakeups are their context switches, also per minute. {}y history is generated through \
         the typed Docs API into the stopped daemon's own store (DocStore::compact with its \
         identity), then the daemon is started on it",
        fixture::TICKS_PER_SECOND,
        opts.idle.as_secs_f64(),
        years
    ));
    Ok(())
}

/// Times `runs` processes from spawn to exit, after three untimed warm-up runs.
/// Stops `daemon` cleanly and starts it again on `dir`, and times from just before the
/// spawn to the first `status` answered over the control socket (`loading` answered
/// from the read cache, or `ready`). Without `with_cache` the read cache is removed
/// first, as after a crash.
fn first_answer(
    mut daemon: TestDaemon,
    dir: &std::path::Path,
    with_cache: bool,
) -> Result<(f64, TestDaemon), BenchError> {
    daemon
        .stop()
        .map_err(BenchError::daemon("stop hearthd before a restart"))?;
    drop(daemon);
    if !with_cache {
        match std::fs::remove_file(dir.join(hearthd::read_cache::CACHE_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BenchError::io("remove the read cache")(e)),
        }
    }
    let socket = hearth_api::paths::Paths::in_dir(dir).socket;
    let started = Instant::now();
    let poll = std::thread::spawn(move || -> Option<f64> {
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(mut client) = hearth_api::client::Client::connect(&socket) {
                if client.call(DaemonCall::Status).is_ok() {
                    return Some(ms(started));
                }
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        None
    });
    let daemon = TestDaemon::start_in(dir).map_err(BenchError::daemon("restart hearthd"))?;
    let took = poll
        .join()
        .ok()
        .flatten()
        .ok_or_else(|| BenchError::Check("hearthd never answered status".into()))?;
    Ok((took, daemon))
}

fn time_command(runs: usize, make: impl Fn() -> Command) -> Result<Samples, BenchError> {
    let mut samples = Samples::default();
    for i in 0..runs.max(1) + 3 {
        let mut cmd = make();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let output = cmd.output().map_err(BenchError::io("run hearth"))?;
        let took = started.elapsed();
        if !output.status.success() {
            return Err(BenchError::Check(format!(
                "hearth exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        if i >= 3 {
            samples.push(took);
        }
    }
    Ok(samples)
}

/// Times `runs` calls on one open control connection.
fn time_calls(
    daemon: &TestDaemon,
    runs: usize,
    make: impl Fn() -> Call,
) -> Result<Samples, BenchError> {
    let mut client = daemon
        .client()
        .map_err(BenchError::daemon("connect to hearthd"))?;
    let mut samples = Samples::default();
    for i in 0..runs.max(1) + 3 {
        let started = Instant::now();
        client.call(make())?;
        if i >= 3 {
            samples.push(started.elapsed());
        }
    }
    Ok(samples)
}

fn percentiles(report: &mut Report, data: &str, name: &str, s: &Samples, p50_max: Option<f64>) {
    match p50_max {
        Some(max) => report.add_target(
            SECTION,
            data,
            &format!("{name} p50"),
            s.median(),
            Unit::Ms,
            max,
        ),
        None => report.add(SECTION, data, &format!("{name} p50"), s.median(), Unit::Ms),
    }
    report.add(
        SECTION,
        data,
        &format!("{name} p95"),
        s.percentile(95.0),
        Unit::Ms,
    );
}

/// CPU time and wakeups of each daemon over the same idle window.
pub(crate) fn idle_cpu(
    section: &'static str,
    daemons: &[(String, &TestDaemon)],
    window: Duration,
    report: &mut Report,
) -> Result<(), BenchError> {
    // Anything the last calls set off (a compaction, a sync push) settles first.
    std::thread::sleep(Duration::from_secs(2));
    let before = daemons
        .iter()
        .map(|(_, d)| ProcSample::read(fixture::pid_of(d)?))
        .collect::<Result<Vec<_>, _>>()?;
    std::thread::sleep(window);
    let per_minute = 60.0 / window.as_secs_f64().max(0.001);
    for ((data, daemon), before) in daemons.iter().zip(&before) {
        let after = ProcSample::read(fixture::pid_of(daemon)?)?;
        report.add_target(
            section,
            data,
            "daemon idle CPU per minute",
            after.cpu_ms_since(before) * per_minute,
            Unit::Ms,
            TARGET_IDLE_CPU_MS_PER_MIN,
        );
        report.add(
            section,
            data,
            "  by schedstat",
            after.sched_ms_since(before) * per_minute,
            Unit::Ms,
        );
        report.add(
            section,
            data,
            "  wakeups per minute",
            after.switches_since(before) as f64 * per_minute,
            Unit::Count,
        );
    }
    Ok(())
}
