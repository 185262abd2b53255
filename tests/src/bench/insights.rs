//! The insights section: how long the insights and the report take over years of data.
//!
//! It fills a stopped daemon's store with a generated history that ends yesterday (see
//! [`super::fixture`]), starts the daemon on it, and then times the same documents two
//! ways:
//!
//! - in-process, step by step, exactly as the daemon does it: read the records the
//!   report can show (`InsightInputs::from_docs_since`), `insights::compute`, and the
//!   renderers (`render_html`, `render_markdown`, `render_terminal`); reading every
//!   record (`from_docs`) is timed too, to show what the date filter saves;
//! - through the daemon: `insights` over an open control connection, and the CLI as a
//!   process (`hearth --json insights`, `hearth report --html FILE`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Days;
use hearth_api::DocCall;
use hearth_core::insights::{self, InsightInputs, Params};

use super::fixture;
use super::{BenchError, Report, Samples, Unit};
use crate::harness::TestDaemon;

const SECTION: &str = "insights";

/// The target from the insights issue, for a release build.
const TARGET_INSIGHTS_MS: f64 = 100.0;

/// What to measure.
#[derive(Debug, Clone)]
pub struct InsightsOptions {
    /// Years of history.
    pub years: f64,
    /// Timed runs of each step; the median and the slowest are reported.
    pub runs: usize,
    /// Generator seed.
    pub seed: u64,
    /// Where the daemon's data directory goes; the system temp dir when `None`.
    pub dir: Option<std::path::PathBuf>,
}

impl Default for InsightsOptions {
    fn default() -> Self {
        InsightsOptions {
            years: 10.0,
            runs: 7,
            seed: 42,
            dir: None,
        }
    }
}

/// Runs the insights section.
pub fn run(opts: &InsightsOptions, report: &mut Report) -> Result<(), BenchError> {
    let (_, hearth) = fixture::require_binaries()?;
    let data = format!("{}y", opts.years);
    let fixture::Started {
        mut daemon,
        me,
        dir: kept,
    } = fixture::started("Alex", opts.dir.as_deref())?;
    let dir = daemon.paths.data_dir.clone();
    daemon
        .stop()
        .map_err(BenchError::daemon("stop hearthd before filling its store"))?;
    let gen_opts = fixture::options_ending_yesterday(opts.years, opts.seed);
    let filled = fixture::fill_alone(&dir, me, &gen_opts)?;
    let last = filled
        .summary
        .last_date
        .ok_or_else(|| BenchError::Check("the generator produced no days".into()))?;
    let today = last + Days::new(1);
    report.add(
        SECTION,
        &data,
        "records",
        filled.summary.total() as f64,
        Unit::Count,
    );

    // In-process, on the documents the daemon holds.
    let docs = &filled.household.a;
    let params = Params::default();
    let since = today - Days::new(u64::from(params.history_days()));
    let runs = opts.runs.max(1);
    let mut read_since = Samples::default();
    let mut read_all = Samples::default();
    let mut compute = Samples::default();
    let mut compute_all = Samples::default();
    let mut total = Samples::default();
    let mut html = Samples::default();
    let mut markdown = Samples::default();
    let mut terminal = Samples::default();
    let (mut html_bytes, mut signals, mut inputs_len) = (0usize, 0usize, 0usize);
    for _ in 0..runs {
        let started = Instant::now();
        let inputs = InsightInputs::from_docs_since(docs, true, since);
        let t_read = started.elapsed();
        let t = Instant::now();
        let out = insights::compute(&inputs, today, &params)?;
        let t_compute = t.elapsed();
        total.push(started.elapsed());
        read_since.push(t_read);
        compute.push(t_compute);

        let t = Instant::now();
        let page = insights::render_html(&out);
        html.push(t.elapsed());
        let t = Instant::now();
        let text = insights::render_markdown(&out);
        markdown.push(t.elapsed());
        let t = Instant::now();
        let screen = insights::render_terminal(&out, false);
        terminal.push(t.elapsed());
        if text.is_empty() || screen.is_empty() {
            return Err(BenchError::Check("a renderer produced nothing".into()));
        }
        html_bytes = page.len();
        signals = out.signals.len();
        inputs_len = inputs.checkins.len()
            + inputs.reflections.len()
            + inputs.items.len()
            + inputs.done.len()
            + inputs.acks.len()
            + inputs.handoffs.len()
            + inputs.moments.len();

        let t = Instant::now();
        let everything = InsightInputs::from_docs(docs, true);
        read_all.push(t.elapsed());
        let t = Instant::now();
        let same = insights::compute(&everything, today, &params)?;
        compute_all.push(t.elapsed());
        if same.signals.len() != out.signals.len() {
            return Err(BenchError::Check(
                "insights over every record found other signals than over the shown span".into(),
            ));
        }
    }
    let show = |report: &mut Report, name: &str, s: &Samples, target: Option<f64>| {
        match target {
            Some(max) => report.add_target(
                SECTION,
                &data,
                &format!("{name} (median)"),
                s.median(),
                Unit::Ms,
                max,
            ),
            None => report.add(
                SECTION,
                &data,
                &format!("{name} (median)"),
                s.median(),
                Unit::Ms,
            ),
        }
        report.add(
            SECTION,
            &data,
            &format!("{name} (slowest)"),
            s.percentile(100.0),
            Unit::Ms,
        );
    };
    show(
        report,
        "in-process read + compute",
        &total,
        Some(TARGET_INSIGHTS_MS),
    );
    show(report, "  read records since the span", &read_since, None);
    show(report, "  compute", &compute, None);
    show(report, "render_html", &html, None);
    show(report, "render_markdown", &markdown, None);
    show(report, "render_terminal", &terminal, None);
    show(report, "read every record instead", &read_all, None);
    show(report, "compute over every record", &compute_all, None);
    report.add(
        SECTION,
        &data,
        "records in the span",
        inputs_len as f64,
        Unit::Count,
    );
    report.add(SECTION, &data, "signals found", signals as f64, Unit::Count);
    report.add(
        SECTION,
        &data,
        "HTML report size",
        html_bytes as f64,
        Unit::Bytes,
    );
    drop(filled);

    // Through the daemon and the CLI.
    let daemon = TestDaemon::start_in(&dir).map_err(BenchError::daemon("restart hearthd"))?;
    let mut client = daemon
        .client()
        .map_err(BenchError::daemon("connect to hearthd"))?;
    let call = || DocCall::Insights {
        weeks: None,
        include_private: true,
        utc_offset_min: gen_opts.utc_offset_min,
    };
    let mut over_socket = Samples::default();
    for i in 0..runs + 1 {
        let started = Instant::now();
        let answer = client.call(call())?;
        if i > 0 {
            over_socket.push(started.elapsed());
        } else if answer.get("signals").is_none() {
            return Err(BenchError::Check(
                "the daemon's insights answer has no signals".into(),
            ));
        }
    }
    show(
        report,
        "daemon `insights` call",
        &over_socket,
        Some(TARGET_INSIGHTS_MS),
    );
    let html_path = dir.join("bench-report.html");
    let processes: [(&str, Vec<std::ffi::OsString>); 2] = [
        (
            "`hearth --json insights` spawn→exit",
            vec!["--json".into(), "insights".into()],
        ),
        (
            "`hearth report --html F --include-private` spawn→exit",
            vec![
                "report".into(),
                "--html".into(),
                html_path.clone().into_os_string(),
                "--include-private".into(),
            ],
        ),
    ];
    for (name, args) in processes {
        let mut samples = Samples::default();
        for i in 0..runs + 1 {
            let started = Instant::now();
            let output = fixture::hearth(&hearth, &dir)
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .map_err(BenchError::io("run hearth"))?;
            let took = started.elapsed();
            if !output.status.success() {
                return Err(BenchError::Check(format!(
                    "hearth exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            if i > 0 {
                samples.push(took);
            }
        }
        show(report, name, &samples, None);
    }
    drop(daemon);
    drop(kept);
    // A daemon drop is a SIGKILL; give the kernel a moment to reap before the next
    // section measures anything.
    std::thread::sleep(Duration::from_millis(100));

    report.note(
        "insights in-process = InsightInputs::from_docs_since(today − history_days, with own \
         private entries) + insights::compute with default Params, on the documents the daemon \
         holds; 'daemon `insights` call' adds the request, the document owner's queue and JSON \
         both ways over an open control connection",
    );
    Ok(())
}
