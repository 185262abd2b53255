//! Reading the data back: `log`, `export`, `import`, `insights` and `report`.

use std::io::Read as _;
use std::path::Path;

use hearth_api::{DocCall, Imported, LogEntry, LogParams};
use hearth_core::insights::{render_html, render_markdown, render_terminal, Insights};
use serde_json::{json, Value};

use super::{decode, Io, Session};
use crate::args::{parse_date, parse_record_kind};
use crate::daemonctl::Ctx;
use crate::error::CliError;
use crate::export;
use crate::out::Style;
use crate::render::{local_time, short_id, table, Names};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

pub(super) fn log(ctx: &Ctx, io: &mut Io, args: LogArgs) -> anyhow::Result<()> {
    if let (Some(from), Some(to)) = (args.from, args.to) {
        if from > to {
            return Err(CliError::Invalid {
                message: format!("--from {from} is after --to {to}"),
                hint: "swap the two dates".into(),
            }
            .into());
        }
    }
    let params = LogParams {
        person: args.person,
        kinds: args.kinds,
        from: args.from,
        to: args.to,
        limit: args.limit,
    };
    let mut session = Session::open(ctx)?;
    let call = DocCall::Log(params);
    if ctx.json {
        io.out.json(&session.call(call)?)?;
        return Ok(());
    }
    let (entries, names) = session.call_named::<Vec<LogEntry>>(call)?;
    io.out.write(&render_log(&entries, &names, io.style))?;
    Ok(())
}

pub(super) fn export(ctx: &Ctx, io: &mut Io, args: ExportArgs) -> anyhow::Result<()> {
    // Check the destination before asking the daemon for everything.
    if args.format == ExportFormat::Csv && args.out.is_none() {
        return Err(CliError::Usage {
            message: "CSV export writes one file per record kind, so it needs a directory".into(),
            hint: "add --out DIR, for example --out hearth-csv".into(),
        }
        .into());
    }
    let mut session = Session::open(ctx)?;
    let doc = session.call(DocCall::Export)?;
    match (args.format, args.out) {
        (ExportFormat::Json, None) => io.out.json(&doc)?,
        (ExportFormat::Json, Some(path)) => {
            let mut bytes = serde_json::to_vec_pretty(&doc)?;
            bytes.push(b'\n');
            export::write_private(&path, &bytes)?;
            let files = vec![path.display().to_string()];
            report_files(ctx, io, "json", &files)?;
        }
        (ExportFormat::Csv, Some(dir)) => {
            let files: Vec<String> = export::write_csv_dir(&dir, &doc)?
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            report_files(ctx, io, "csv", &files)?;
        }
        (ExportFormat::Csv, None) => {}
    }
    Ok(())
}

fn report_files(ctx: &Ctx, io: &mut Io, format: &str, files: &[String]) -> anyhow::Result<()> {
    if ctx.json {
        io.out.json(&json!({"format": format, "files": files}))?;
    } else {
        for f in files {
            io.out.line(&format!("wrote {f}"))?;
        }
    }
    Ok(())
}

pub(super) fn import(ctx: &Ctx, io: &mut Io, args: ImportArgs) -> anyhow::Result<()> {
    let (text, source) = read_import(&args.file)?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| CliError::Invalid {
        message: format!("{source} is not valid JSON: {e}"),
        hint: "import reads the JSON written by `hearth export`".into(),
    })?;
    export::check_export(&doc, &source)?;
    let mut session = Session::open(ctx)?;
    let result = session.call(DocCall::Import { data: doc })?;
    if ctx.json {
        io.out.json(&result)?;
    } else {
        io.out.write(&imported(&decode(result)?))?;
    }
    Ok(())
}

fn read_import(path: &Path) -> anyhow::Result<(String, String)> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Invalid {
                message: format!("could not read the export from standard input: {e}"),
                hint: "pipe in the JSON written by `hearth export`".into(),
            })?;
        return Ok((text, "standard input".into()));
    }
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CliError::Invalid {
        message: format!("could not read {source}: {e}"),
        hint: "check the path; import reads the JSON written by `hearth export`".into(),
    })?;
    Ok((text, source))
}

/// Asks the daemon for insights, and reads them into the report type.
fn fetch_insights(
    ctx: &Ctx,
    weeks: Option<u32>,
    include_private: bool,
) -> anyhow::Result<(Value, Insights)> {
    if weeks == Some(0) {
        return Err(CliError::Usage {
            message: "--weeks 0 leaves nothing to look at".into(),
            hint: "use --weeks 4 or more; leave it out for the usual span".into(),
        }
        .into());
    }
    let mut session = Session::open(ctx)?;
    let raw = session.call(DocCall::Insights {
        weeks,
        include_private,
        utc_offset_min: chrono::Local::now().offset().local_minus_utc() / 60,
    })?;
    let report: Insights = decode(raw.clone())?;
    Ok((raw, report))
}

pub(super) fn insights(ctx: &Ctx, io: &mut Io, args: InsightsArgs) -> anyhow::Result<()> {
    let (raw, report) = fetch_insights(ctx, args.weeks, args.include_private)?;
    if ctx.json {
        io.out.json(&raw)?;
    } else {
        io.out
            .write(&render_terminal(&report, io.style.enabled()))?;
    }
    Ok(())
}

pub(super) fn report(ctx: &Ctx, io: &mut Io, args: ReportArgs) -> anyhow::Result<()> {
    let (raw, report) = fetch_insights(ctx, args.weeks, args.include_private)?;
    match args.html {
        Some(path) => {
            export::write_private(&path, render_html(&report).as_bytes())?;
            let files = vec![path.display().to_string()];
            if ctx.json {
                io.out.json(&json!({"format": "html", "files": files}))?;
            } else {
                io.out.line(&format!("wrote {}", path.display()))?;
            }
        }
        None if ctx.json => io.out.json(&raw)?,
        None => io.out.write(&render_markdown(&report))?,
    }
    Ok(())
}

// ----- command line ----------------------------------------------------------------

/// `hearth log`.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// Only this person's entries: me, partner, a name or an id.
    #[arg(long, value_name = "PERSON")]
    pub(crate) person: Option<String>,
    /// Only these kinds, comma separated: checkins, reflections, ledger, done, acks, handoffs, moments.
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',', value_parser = parse_record_kind)]
    pub(crate) kinds: Vec<String>,
    /// From this local date, inclusive (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) from: Option<NaiveDate>,
    /// Up to this local date, inclusive (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) to: Option<NaiveDate>,
    /// Show at most N entries, the newest.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// One JSON document that `hearth import` reads back.
    Json,
    /// One CSV file per record kind, for spreadsheets.
    Csv,
}

/// `hearth export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// json (default, re-importable) or csv (one file per record kind).
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    pub(crate) format: ExportFormat,
    /// Where to write: a file for json (stdout when absent), a directory for csv.
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,
}

/// `hearth import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// A file written by `hearth export`, or - for standard input.
    pub(crate) file: PathBuf,
}

/// `hearth insights`.
#[derive(Debug, Args)]
pub(crate) struct InsightsArgs {
    /// How many weeks of history to look at.
    #[arg(long, value_name = "N")]
    pub(crate) weeks: Option<u32>,
    /// Include your own private entries.
    #[arg(long)]
    pub(crate) include_private: bool,
}

/// `hearth report`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("report_format").required(true).args(["html", "markdown"])))]
pub(crate) struct ReportArgs {
    /// Write an HTML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// Print a Markdown report.
    #[arg(long)]
    pub(crate) markdown: bool,
    /// How many weeks of history to look at.
    #[arg(long, value_name = "N")]
    pub(crate) weeks: Option<u32>,
    /// Include your own private entries.
    #[arg(long)]
    pub(crate) include_private: bool,
}

// ----- rendering -------------------------------------------------------------------

/// A record kind of the log (`checkins`, ...) as one word for a table cell.
fn kind_label(kind: &str) -> &str {
    match kind {
        "checkins" => "check-in",
        "reflections" => "reflection",
        "ledger" => "item",
        "done" => "done",
        "acks" => "ack",
        "handoffs" => "handoff",
        "moments" => "moment",
        other => other,
    }
}

/// `hearth log`: one row per entry, with the local time it happened.
pub(crate) fn render_log(entries: &[LogEntry], names: &Names, style: Style) -> String {
    if entries.is_empty() {
        return "Nothing in this range yet.\n".into();
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            // The daemon sends the name and the id; the id lets us say "you".
            let person = match &e.person_id {
                Some(id) => names.of(id),
                None => e.person.clone(),
            };
            vec![
                local_time(e.at, i64::from(e.utc_offset_min)),
                kind_label(&e.kind).to_string(),
                person,
                e.summary.replace(['\n', '\r'], " "),
                short_id(&e.id.to_string()).to_string(),
            ]
        })
        .collect();
    table(style, &["WHEN", "KIND", "WHO", "WHAT", "ID"], &rows)
}

/// `hearth import`: how many records were new.
pub(crate) fn imported(answer: &Imported) -> String {
    match answer.imported {
        0 => "Nothing new: every record in the file is already here.\n".into(),
        n => format!("Imported {n} new record(s); records already here were left as they were.\n"),
    }
}
