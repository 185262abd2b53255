//! The benchmark's sections and the report they fill.
//!
//! Each section ([`storage`]; [`cli`], the CLI round trip and the idle daemon; [`sync`],
//! propagation and catch-up between daemons; [`insights`]) is a function that measures
//! one area and pushes [`Figure`]s into a [`Report`]; [`fixture`] holds what the
//! daemon-level sections share. The `hearth-bench` binary only parses arguments, runs the sections
//! asked for and prints the report as a table or as JSON. A figure carries its target,
//! when the project has one, so the table says at a glance what is met.
//!
//! This module measures wall-clock time, so it reads the clock; it must never be used by
//! `core`, and nothing in it is part of Hearth's runtime.

pub mod cli;
pub mod fixture;
pub mod insights;
pub mod layout;
pub mod roster;
pub mod storage;
pub mod sync;

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

/// Problems while running a benchmark section.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Generating the data failed.
    #[error("could not generate the benchmark data: {0}")]
    Generate(#[from] crate::generate::GenerateError),
    /// The store refused an operation.
    #[error("the store failed: {0}")]
    Store(#[from] hearthd::storage::StoreError),
    /// Sealing a chunk failed.
    #[error("sealing failed: {0}")]
    Envelope(#[from] hearth_core::envelope::EnvelopeError),
    /// The typed document API refused a write.
    #[error("the document refused a write: {0}")]
    Doc(#[from] Box<hearth_core::doc::DocError>),
    /// Automerge could not load what it saved.
    #[error("automerge could not load a saved document: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// A scratch file or directory could not be used.
    #[error("could not {action}: {source}; pass --dir with a writable directory on the disk you want to measure")]
    Io {
        /// What the benchmark was doing.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A test daemon could not be started, stopped or asked something.
    #[error("could not {action}: {detail}; run with HEARTH_TEST_ECHO=1 to see the daemon's log")]
    Daemon {
        /// What the benchmark was doing.
        action: &'static str,
        /// The harness's error, with its causes.
        detail: String,
    },
    /// The daemon refused or failed a control call.
    #[error("a control call to hearthd failed: {0}")]
    Client(#[from] hearth_api::client::ClientError),
    /// The insights refused their parameters.
    #[error("the insights could not be computed: {0}")]
    Insights(#[from] hearth_core::insights::InsightsError),
    /// A measurement came out in a way that means the setup is wrong.
    #[error("{0}")]
    Check(String),
}

impl BenchError {
    pub(crate) fn io(action: &'static str) -> impl FnOnce(std::io::Error) -> BenchError {
        move |source| BenchError::Io { action, source }
    }

    pub(crate) fn daemon(action: &'static str) -> impl FnOnce(anyhow::Error) -> BenchError {
        move |e| BenchError::Daemon {
            action,
            detail: format!("{e:#}"),
        }
    }
}

/// The unit of a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
    /// A dimensionless ratio.
    Ratio,
    /// A count.
    Count,
}

impl Unit {
    fn key(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::Seconds => "s",
            Unit::Bytes => "bytes",
            Unit::Ratio => "ratio",
            Unit::Count => "count",
        }
    }

    fn show(self, value: f64) -> String {
        match self {
            Unit::Ms if value < 1.0 => format!("{:.3} ms", value),
            Unit::Ms => format!("{:.1} ms", value),
            Unit::Seconds => format!("{:.1} s", value),
            Unit::Bytes => bytes(value),
            Unit::Ratio => format!("{:.2}×", value),
            Unit::Count => format!("{}", value.round() as i64),
        }
    }
}

fn bytes(value: f64) -> String {
    if value >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", value / (1024.0 * 1024.0))
    } else if value >= 1024.0 {
        format!("{:.1} KiB", value / 1024.0)
    } else {
        format!("{} B", value as u64)
    }
}

/// One measured number.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The section that measured it ("storage").
    pub section: &'static str,
    /// What it is, short and stable, for example `cold load p50`.
    pub name: String,
    /// The data set, for example `10y`.
    pub data: String,
    /// The value in `unit`.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
    /// The largest value that meets the project's target, if there is one.
    pub target_max: Option<f64>,
}

/// Milliseconds since `started`.
pub(crate) fn ms(started: std::time::Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// Everything measured in one run, plus notes for the reader.
#[derive(Debug, Default)]
pub struct Report {
    /// The figures, in the order they were measured.
    pub figures: Vec<Figure>,
    /// Plain-language notes: what a figure includes, why a target is missed.
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a figure without a target.
    pub fn add(&mut self, section: &'static str, data: &str, name: &str, value: f64, unit: Unit) {
        self.figures.push(Figure {
            section,
            name: name.into(),
            data: data.into(),
            value,
            unit,
            target_max: None,
        });
    }

    /// Adds a figure that has a target: at most `max`.
    pub fn add_target(
        &mut self,
        section: &'static str,
        data: &str,
        name: &str,
        value: f64,
        unit: Unit,
        max: f64,
    ) {
        self.figures.push(Figure {
            section,
            name: name.into(),
            data: data.into(),
            value,
            unit,
            target_max: Some(max),
        });
    }

    /// Adds a note.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Figures whose target is missed.
    pub fn missed(&self) -> Vec<&Figure> {
        self.figures
            .iter()
            .filter(|f| f.target_max.is_some_and(|max| f.value > max))
            .collect()
    }

    /// The report as JSON: `{figures: [...], notes: [...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let figures: Vec<_> = self
            .figures
            .iter()
            .map(|f| {
                json!({
                    "section": f.section,
                    "data": f.data,
                    "name": f.name,
                    "value": f.value,
                    "unit": f.unit.key(),
                    "target_max": f.target_max,
                    "met": f.target_max.map(|max| f.value <= max),
                })
            })
            .collect();
        json!({ "figures": figures, "notes": self.notes })
    }

    /// The report as an aligned text table followed by the notes.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .figures
            .iter()
            .map(|f| {
                let (target, verdict) = match f.target_max {
                    Some(max) => (
                        format!("≤ {}", f.unit.show(max)),
                        if f.value <= max { "ok" } else { "MISSED" }.to_string(),
                    ),
                    None => (String::new(), String::new()),
                };
                [
                    format!("{} {}", f.section, f.data),
                    f.name.clone(),
                    f.unit.show(f.value),
                    target,
                    verdict,
                ]
            })
            .collect();
        let header = ["section", "figure", "value", "target", ""];
        let mut widths = header.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: [&str; 5]| {
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w - cell.chars().count();
                // Values read best right-aligned, labels left-aligned.
                if i == 2 {
                    let _ = write!(out, "{}{}  ", " ".repeat(pad), cell);
                } else {
                    let _ = write!(out, "{}{}  ", cell, " ".repeat(pad));
                }
            }
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('\n');
        };
        line(&mut out, header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&mut out, [&rule[0], &rule[1], &rule[2], &rule[3], &rule[4]]);
        let mut last_group = String::new();
        for row in &rows {
            if row[0] != last_group && !last_group.is_empty() {
                out.push('\n');
            }
            last_group = row[0].clone();
            line(&mut out, [&row[0], &row[1], &row[2], &row[3], &row[4]]);
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

/// One goal of issue 17 ("Catch-up at the speed of one apply, and a small daemon at
/// ten years"), and the figure that measures it.
#[derive(Debug, Clone, Copy)]
pub struct Goal {
    /// The goal as the issue words it.
    pub what: &'static str,
    /// The section of the figure.
    pub section: &'static str,
    /// Text the figure's data label contains ("" for any).
    pub data: &'static str,
    /// The figure's name.
    pub name: &'static str,
    /// At most this.
    pub max: f64,
    /// The unit of `max`.
    pub unit: Unit,
}

/// Every goal of issue 17, each beside the figure that shows it.
pub const ISSUE_17_GOALS: &[Goal] = &[
    Goal {
        what: "write → partner sees it, p50, ext4",
        section: "sync",
        data: "ext4",
        name: "propagation p50",
        max: 2.5,
        unit: Unit::Ms,
    },
    Goal {
        what: "write → partner sees it, p95, ext4",
        section: "sync",
        data: "ext4",
        name: "propagation p95",
        max: 4.0,
        unit: Unit::Ms,
    },
    Goal {
        what: "write → partner sees it, p95, disk busy",
        section: "sync",
        data: "busy",
        name: "propagation p95",
        max: 10.0,
        unit: Unit::Ms,
    },
    Goal {
        what: "catch-up, a year apart",
        section: "sync",
        data: "apart",
        name: "catch-up: B start to converged (median)",
        max: 150.0,
        unit: Unit::Ms,
    },
    Goal {
        what: "reconnect with nothing new: round trips",
        section: "sync",
        data: "reconnect",
        // Not measured between daemons: frames no longer stand for round trips (the
        // dialling side's first sync rides with `join`); the session test counts them.
        name: "round trips",
        max: 1.0,
        unit: Unit::Count,
    },
    Goal {
        what: "reconnect with nothing new: bytes / automerge's",
        section: "sync",
        data: "reconnect",
        name: "wire bytes / automerge sync bytes",
        max: 1.2,
        unit: Unit::Ratio,
    },
    Goal {
        what: "daemon start → first answer, 10 years",
        section: "cli",
        data: "10y",
        name: "daemon start → first status answer (median)",
        max: 50.0,
        unit: Unit::Ms,
    },
    Goal {
        what: "daemon RSS at 10 years, idle",
        section: "cli",
        data: "10y",
        name: "daemon RSS after status, writes and insights",
        max: 25.0 * 1024.0 * 1024.0,
        unit: Unit::Bytes,
    },
    Goal {
        what: "daemon RSS at 10 years, peak included",
        section: "cli",
        data: "10y",
        name: "daemon RSS peak so far",
        max: 25.0 * 1024.0 * 1024.0,
        unit: Unit::Bytes,
    },
    Goal {
        what: "open with 200 un-compacted chunks (10 years)",
        section: "storage",
        data: "10y",
        name: "open with 200 chunks (median)",
        max: 60.0,
        unit: Unit::Ms,
    },
];

impl Report {
    /// The figure that measures `goal`, if this run measured it.
    pub fn figure_for(&self, goal: &Goal) -> Option<&Figure> {
        self.figures.iter().rev().find(|f| {
            f.section == goal.section && f.name == goal.name && f.data.contains(goal.data)
        })
    }

    /// Issue 17's goals, each beside its figure from this run: `ok`, `MISSED`, or
    /// `not measured` when no section of this run measures it.
    pub fn goals_table(&self, goals: &[Goal]) -> String {
        let mut out = String::from("\nIssue 17 goals:\n");
        let width = goals
            .iter()
            .map(|g| g.what.chars().count())
            .max()
            .unwrap_or(0);
        for goal in goals {
            let pad = " ".repeat(width - goal.what.chars().count());
            let line = match self.figure_for(goal) {
                Some(f) => format!(
                    "{}{pad}  {:>10}  goal ≤ {:<10}  {}",
                    goal.what,
                    f.unit.show(f.value),
                    f.unit.show(goal.max),
                    if f.value <= goal.max { "ok" } else { "MISSED" }
                ),
                None => format!(
                    "{}{pad}  {:>10}  goal ≤ {}",
                    goal.what,
                    "not measured",
                    goal.unit.show(goal.max)
                ),
            };
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A set of timings of the same operation.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Records one duration.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }

    /// Records one value in milliseconds.
    pub fn push_ms(&mut self, ms: f64) {
        self.0.push(ms);
    }

    /// The `p`-th percentile (0–100) in milliseconds, by nearest rank; 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// The median in milliseconds.
    pub fn median(&self) -> f64 {
        self.percentile(50.0)
    }

    /// The mean in milliseconds.
    pub fn mean(&self) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.iter().sum::<f64>() / self.0.len() as f64
        }
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s = Samples::default();
        for v in 1..=100 {
            s.push_ms(f64::from(v));
        }
        assert_eq!(s.median(), 50.0);
        assert_eq!(s.percentile(95.0), 95.0);
        assert_eq!(s.percentile(100.0), 100.0);
        assert_eq!(Samples::default().median(), 0.0);
    }

    #[test]
    fn table_marks_missed_targets_and_json_says_met() {
        let mut r = Report::default();
        r.add_target("storage", "10y", "cold load p50", 250.0, Unit::Ms, 200.0);
        r.add("storage", "10y", "save()", 2048.0, Unit::Bytes);
        r.note("cold load includes both documents");
        let table = r.table();
        assert!(table.contains("MISSED"), "{table}");
        assert!(table.contains("2.0 KiB"), "{table}");
        assert_eq!(r.missed().len(), 1);
        let json = r.to_json();
        assert_eq!(json["figures"][0]["met"], false);
        assert_eq!(json["figures"][1]["met"], serde_json::Value::Null);
    }

    #[test]
    fn goals_stand_beside_their_figures() {
        let mut r = Report::default();
        r.add(
            "storage",
            "10y",
            "open with 200 chunks (median)",
            42.0,
            Unit::Ms,
        );
        r.add("sync", "loopback, ext4", "propagation p50", 3.0, Unit::Ms);
        let table = r.goals_table(ISSUE_17_GOALS);
        assert!(
            table.contains("open with 200 un-compacted chunks"),
            "{table}"
        );
        let open = table
            .lines()
            .find(|l| l.contains("200 un-compacted"))
            .unwrap();
        assert!(open.ends_with("ok"), "{open}");
        let p50 = table.lines().find(|l| l.contains("p50, ext4")).unwrap();
        assert!(p50.ends_with("MISSED"), "{p50}");
        let busy = table.lines().find(|l| l.contains("disk busy")).unwrap();
        assert!(busy.contains("not measured"), "{busy}");
    }
}
