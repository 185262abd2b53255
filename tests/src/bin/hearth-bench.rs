//! `hearth-bench`: Hearth's benchmark.
//!
//! ```text
//! cargo run --release -p hearth-tests --bin hearth-bench -- [SECTION ...] [OPTIONS]
//!
//! SECTION           storage | cli | sync | insights | roster | layout | all
//!                   (default: all = storage, cli, sync, insights, roster)
//! --years L         storage: history lengths in years, comma separated (default: 1,10)
//! --runs N          storage: cold loads per length; insights: timed runs (default: 7)
//! --writes N        storage: durable writes on the longest history;
//!                   cli: `hearth moment` processes                 (default: 200)
//! --spawns N        cli: `hearth status` processes timed           (default: 200)
//! --history Y       cli, insights: years of history in the daemon  (default: 10)
//! --idle SECS       cli, sync: idle window for daemon CPU time     (default: 60)
//! --trials N        sync: propagation trials                       (default: 500)
//! --catchup Y       sync: years of entries each side makes apart   (default: 1)
//! --catchup-runs N  sync: catch-up runs from the same stores       (default: 3)
//! --reconnects N    sync: restarts of B with nothing new           (default: 5)
//! --seed N          generator seed                                 (default: 42)
//! --dir PATH        where temp stores and daemon data dirs go (default: the system
//!                   temp dir); a real disk for fsync figures
//! --json            print the report as JSON instead of a table
//! ```
//!
//! The cli, sync and insights sections run the release `hearthd` and `hearth` next to
//! this binary: `cargo build --release -p hearthd -p hearth-cli` first.
//!
//! This binary only parses arguments and prints; each section lives in
//! `hearth_tests::bench`. A new section adds a variant to `Section` and a line to `run`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hearth_tests::bench::{self, Report};

/// The parts of the benchmark that can be run on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Generation, on-disk size, cold load and durable writes.
    Storage,
    /// The CLI round trip, daemon memory and idle CPU.
    Cli,
    /// Propagation, catch-up and reconnect between two paired daemons.
    Sync,
    /// Insights and report over years of data.
    Insights,
    /// An experiment with other document layouts; not part of `all` because it measures
    /// formats Hearth does not use.
    Layout,
    /// Verifying the signed roster: 10 devices and 20 removals.
    Roster,
}

impl Section {
    const ALL: [Section; 5] = [
        Section::Storage,
        Section::Cli,
        Section::Sync,
        Section::Insights,
        Section::Roster,
    ];

    fn parse(name: &str) -> Result<Vec<Section>> {
        match name {
            "all" => Ok(Section::ALL.to_vec()),
            "storage" => Ok(vec![Section::Storage]),
            "cli" => Ok(vec![Section::Cli]),
            "sync" => Ok(vec![Section::Sync]),
            "insights" => Ok(vec![Section::Insights]),
            "layout" => Ok(vec![Section::Layout]),
            "roster" => Ok(vec![Section::Roster]),
            other => bail!(
                "unknown section `{other}`; use one of: storage, cli, sync, insights, roster, layout, all"
            ),
        }
    }
}

#[derive(Debug)]
struct Args {
    sections: Vec<Section>,
    storage: bench::storage::StorageOptions,
    cli: bench::cli::CliOptions,
    sync: bench::sync::SyncOptions,
    insights: bench::insights::InsightsOptions,
    json: bool,
}

const USAGE: &str =
    "usage: hearth-bench [storage|cli|sync|insights|layout|all] [--years 1,10] [--runs 7] \
     [--writes 200] [--spawns 200] [--history 10] [--idle 60] [--trials 500] [--catchup 1] \
     [--reconnects 5] [--catchup-runs 3] [--seed 42] [--dir PATH] [--json]";

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>> {
    let mut args = Args {
        sections: Vec::new(),
        storage: bench::storage::StorageOptions::default(),
        cli: bench::cli::CliOptions::default(),
        sync: bench::sync::SyncOptions::default(),
        insights: bench::insights::InsightsOptions::default(),
        json: false,
    };
    while let Some(arg) = argv.next() {
        let mut value = |flag: &str| {
            argv.next()
                .with_context(|| format!("{flag} needs a value; {USAGE}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--json" => args.json = true,
            "--years" => {
                let list = value("--years")?;
                args.storage.years = list
                    .split(',')
                    .map(|y| years(y, "--years"))
                    .collect::<Result<_>>()?;
            }
            "--runs" => {
                let runs = count(&value("--runs")?, "--runs")?;
                args.storage.runs = runs;
                args.insights.runs = runs;
            }
            "--writes" => {
                let writes = count(&value("--writes")?, "--writes")?;
                args.storage.writes = writes;
                args.cli.writes = writes;
            }
            "--spawns" => args.cli.spawns = count(&value("--spawns")?, "--spawns")?,
            "--history" => {
                let years = years(&value("--history")?, "--history")?;
                args.cli.history_years = years;
                args.insights.years = years;
            }
            "--idle" => {
                let secs: f64 = value("--idle")?
                    .parse()
                    .context("--idle takes a number of seconds, e.g. --idle 5")?;
                if !(secs.is_finite() && secs > 0.0) {
                    bail!("--idle takes a positive number of seconds, not {secs}");
                }
                args.cli.idle = Duration::from_secs_f64(secs);
                args.sync.idle = Duration::from_secs_f64(secs);
            }
            "--trials" => args.sync.trials = count(&value("--trials")?, "--trials")?,
            "--catchup" => args.sync.catchup_years = years(&value("--catchup")?, "--catchup")?,
            "--catchup-runs" => {
                args.sync.catchup_runs = count(&value("--catchup-runs")?, "--catchup-runs")?
            }
            "--reconnects" => {
                args.sync.reconnects = count(&value("--reconnects")?, "--reconnects")?
            }
            "--seed" => {
                let seed: u64 = value("--seed")?
                    .parse()
                    .context("--seed takes a whole number")?;
                args.storage.seed = seed;
                args.cli.seed = seed;
                args.sync.seed = seed;
                args.insights.seed = seed;
            }
            "--dir" => {
                let dir = PathBuf::from(value("--dir")?);
                args.storage.dir = Some(dir.clone());
                args.cli.dir = Some(dir.clone());
                args.sync.dir = Some(dir.clone());
                args.insights.dir = Some(dir);
            }
            flag if flag.starts_with('-') => bail!("unknown option `{flag}`; {USAGE}"),
            section => {
                for s in Section::parse(section)? {
                    if !args.sections.contains(&s) {
                        args.sections.push(s);
                    }
                }
            }
        }
    }
    if args.sections.is_empty() {
        args.sections = Section::ALL.to_vec();
    }
    Ok(Some(args))
}

fn years(text: &str, flag: &str) -> Result<f64> {
    let years: f64 = text.trim().parse().with_context(|| {
        format!("`{text}` is not a number of years; write e.g. {flag} 10 (fractions allowed)")
    })?;
    if !(years.is_finite() && years > 0.0) {
        bail!("{flag} takes positive numbers of years, not {text}");
    }
    Ok(years)
}

fn count(text: &str, flag: &str) -> Result<usize> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("{flag} takes a whole number above zero, not `{text}`"),
    }
}

/// The machine's load average, for the notes: figures from a busy machine read slow.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn run(args: &Args) -> Result<Report> {
    let mut report = Report::default();
    let load_before = load_average();
    for section in &args.sections {
        match section {
            Section::Storage => bench::storage::run(&args.storage, &mut report)
                .context("the storage benchmark failed")?,
            Section::Cli => {
                bench::cli::run(&args.cli, &mut report).context("the cli benchmark failed")?
            }
            Section::Sync => {
                bench::sync::run(&args.sync, &mut report).context("the sync benchmark failed")?
            }
            Section::Insights => bench::insights::run(&args.insights, &mut report)
                .context("the insights benchmark failed")?,
            Section::Roster => bench::roster::run(10, 20, 200, &mut report)
                .context("the roster benchmark failed")?,
            Section::Layout => {
                // The longest history shows the effect best.
                let years = args.storage.years.iter().copied().fold(1.0, f64::max);
                let opts = bench::layout::LayoutOptions {
                    years,
                    seed: args.storage.seed,
                    runs: args.storage.runs,
                };
                bench::layout::run(&opts, &mut report).context("the layout experiment failed")?
            }
        }
    }
    report.note(format!(
        "1-minute load average {load_before} before the run and {} after, on {} CPUs; \
         timings from a machine with other work on it read slow",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    Ok(report)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hearth-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "hearth-bench: this is a debug build, so the figures mean little; run it with \
             `cargo run --release -p hearth-tests --bin hearth-bench`"
        );
    }
    match run(&args) {
        Ok(report) => {
            if args.json {
                println!("{:#}", report.to_json());
            } else {
                print!("{}", report.table());
                print!("{}", report.goals_table(bench::ISSUE_17_GOALS));
            }
            // Missing a target is a finding, not a failure of the run.
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hearth-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
