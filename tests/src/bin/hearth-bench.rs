//! `hearth-bench`: Hearth's benchmark.
//!
//! ```text
//! cargo run --release -p hearth-tests --bin hearth-bench -- [SECTION ...] [OPTIONS]
//!
//! SECTION      storage | layout | all                (default: all = storage)
//! --years L    history lengths in years, comma separated   (default: 1,10)
//! --runs N     cold loads per history length               (default: 7)
//! --writes N   durable writes timed on the longest history (default: 200)
//! --seed N     generator seed                              (default: 42)
//! --dir PATH   where to put the temp stores; must be a real disk for fsync figures
//! --json       print the report as JSON instead of a table
//! ```
//!
//! This binary only parses arguments and prints; each section lives in
//! `hearth_tests::bench`. New sections (CLI round trip, propagation, insights) add a
//! variant to `Section` and a line to `run`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use hearth_tests::bench::{self, Report};

/// The parts of the benchmark that can be run on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Generation, on-disk size, cold load and durable writes.
    Storage,
    /// An experiment with other document layouts; not part of `all` because it measures
    /// formats Hearth does not use.
    Layout,
}

impl Section {
    const ALL: [Section; 1] = [Section::Storage];

    fn parse(name: &str) -> Result<Vec<Section>> {
        match name {
            "all" => Ok(Section::ALL.to_vec()),
            "storage" => Ok(vec![Section::Storage]),
            "layout" => Ok(vec![Section::Layout]),
            other => bail!("unknown section `{other}`; use one of: storage, layout, all"),
        }
    }
}

#[derive(Debug)]
struct Args {
    sections: Vec<Section>,
    storage: bench::storage::StorageOptions,
    json: bool,
}

const USAGE: &str =
    "usage: hearth-bench [storage|layout|all] [--years 1,10] [--runs 7] [--writes 200] \
                     [--seed 42] [--dir PATH] [--json]";

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>> {
    let mut args = Args {
        sections: Vec::new(),
        storage: bench::storage::StorageOptions::default(),
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
                    .map(|y| {
                        let years: f64 = y.trim().parse().with_context(|| {
                            format!("`{y}` is not a number of years; write e.g. --years 1,10")
                        })?;
                        if !(years.is_finite() && years > 0.0) {
                            bail!("--years takes positive numbers, not {y}");
                        }
                        Ok(years)
                    })
                    .collect::<Result<_>>()?;
            }
            "--runs" => args.storage.runs = count(&value("--runs")?, "--runs")?,
            "--writes" => args.storage.writes = count(&value("--writes")?, "--writes")?,
            "--seed" => {
                args.storage.seed = value("--seed")?
                    .parse()
                    .context("--seed takes a whole number")?
            }
            "--dir" => args.storage.dir = Some(PathBuf::from(value("--dir")?)),
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

fn count(text: &str, flag: &str) -> Result<usize> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("{flag} takes a whole number above zero, not `{text}`"),
    }
}

fn run(args: &Args) -> Result<Report> {
    let mut report = Report::default();
    for section in &args.sections {
        match section {
            Section::Storage => bench::storage::run(&args.storage, &mut report)
                .context("the storage benchmark failed")?,
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
