//! The command line: every subcommand, flag and value parser of `hearth`.
//!
//! This module owns the shape of the command line and the parsing of compound flag
//! values (`--sign dread=3`, `--basics sleep=met`, `--at 2026-11-20T21:30`). It must not
//! talk to the daemon or print anything; the commands do that with what it parses.

use std::path::PathBuf;

use chrono::{DateTime, Local, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hearth_api::At;
use hearth_core::model::{
    AckKind, Answer, Basic, BasicLevel, BodySign, BurnoutSign, Cadence, Domain, Labour, MomentKind,
    Stage, TargetKind, Visibility,
};

/// The heading that keeps the global options apart from each command's own.
const GLOBAL: &str = "Global options";

/// Hearth: notice and undo burnout together, privately, on your own devices.
#[derive(Debug, Parser)]
#[command(
    name = "hearth",
    version,
    about = "Notice and undo burnout together, privately, on your own devices.",
    long_about = "Hearth keeps check-ins, reflections, the household ledger and small moments \
                  of connection on your own devices. Everything goes through the local daemon, \
                  hearthd, which this command starts when it is needed.",
    after_help = "Exit codes: 0 ok, 1 internal, 2 usage, 3 invalid input or unknown id, \
                  4 daemon unreachable, 5 locked or wrong passphrase, 6 storage."
)]
pub(crate) struct Cli {
    /// Keep everything (data and control socket) under DIR.
    #[arg(long, global = true, env = "HEARTH_DATA_DIR", value_name = "DIR", help_heading = GLOBAL)]
    pub(crate) data_dir: Option<PathBuf>,

    /// Print the raw result as JSON (shapes are documented in docs/cli-json.md).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub(crate) json: bool,

    /// Say more about what is happening; repeat for more detail.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub(crate) verbose: u8,

    /// Read the passphrase from FILE instead of asking for it.
    #[arg(
        long,
        global = true,
        env = "HEARTH_PASSPHRASE_FILE",
        value_name = "FILE",
        help_heading = GLOBAL
    )]
    pub(crate) passphrase_file: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create this device's identity and the household's documents.
    Init(InitArgs),
    /// Run, start, stop or look at the background daemon.
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Show the data directory, the daemon, the documents and any partner devices.
    Status,
    /// What waits for you: your partner's asks, handoffs to answer, thank-yous since
    /// you last looked, and whether you checked in today.
    Today,
    /// A weekly walk for the two of you, about 15 minutes, in the order of recovery.
    Together,
    /// Reply to your partner's ask, as `hearth today` lists it.
    Reply(ReplyArgs),
    /// Record how you are doing today.
    Checkin(CheckinArgs),
    /// Answer the three questions that tell depletion apart from a deeper mismatch.
    Reflect(ReflectArgs),
    /// The household ledger: who holds what, and how it gets renegotiated.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Note a small moment of connection.
    Moment(MomentArgs),
    /// The timeline of entries, newest last.
    Log(LogArgs),
    /// Write everything this device can read, as JSON (re-importable) or CSV.
    Export(ExportArgs),
    /// Merge an export file into this device's documents.
    Import(ImportArgs),
    /// Carry changes to your partner's devices without a network, in a file sealed for
    /// them and signed by this device (a USB stick, any cloud folder).
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Signals from the last weeks: trends, balance, connection, and a next step.
    Insights(InsightsArgs),
    /// A report of the insights, as HTML or Markdown.
    Report(ReportArgs),
    /// Print shell completions.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    Man(ManArgs),
    /// Pair a partner's device: invite on one, join on the other.
    #[command(subcommand)]
    Pair(PairCommand),
    /// Devices to reach without discovery.
    #[command(subcommand)]
    Peers(PeersCommand),
    /// Your devices and your partner's: list, rename, remove.
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// Take a break from sharing with your partner; your own devices keep syncing.
    Pause(PauseArgs),
    /// Share with your partner again after a pause.
    Resume,
    /// End sharing with your partner for good. Each of you keeps your own copy.
    Leave(LeaveArgs),
    /// Sync with every paired device that can be reached, now.
    Sync,
    /// Two daemons in temporary directories, paired, writing as both partners.
    Demo(DemoArgs),
}

/// `hearth pair ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PairCommand {
    /// Print a one-time code and wait for your partner's device (or, with
    /// --own-device, another device of yours) to join with it.
    Invite {
        /// How long to wait, in seconds (default: `pair_timeout_secs`, 10 minutes).
        #[arg(long)]
        timeout: Option<u64>,
        /// Invite another device of yours instead of your partner's: it will share your
        /// private entries. The code admits only that, whoever types it.
        #[arg(long)]
        own_device: bool,
    },
    /// Join a household with the code `pair invite` printed.
    Join {
        /// The code, like 4-amber-orbit-lantern.
        code: String,
        /// The inviting device's address, HOST:PORT, as `pair invite` printed it.
        #[arg(long)]
        addr: Option<String>,
        /// Join even though this device already holds entries of its own (partner
        /// invites only).
        #[arg(long)]
        merge: bool,
        /// No longer chosen here: the inviting device decides with `pair invite
        /// --own-device`. Kept only to explain that.
        #[arg(long, hide = true)]
        same_person: bool,
    },
}

/// `hearth devices ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DevicesCommand {
    /// Every device in the household: whose it is, who added it, whether it was removed.
    List,
    /// Give one of your devices a new name.
    Rename {
        /// Device id or a unique prefix of it (`hearth devices list` shows them).
        id: String,
        /// The new name, such as "phone".
        name: String,
    },
    /// Remove a device, such as a lost phone: every device refuses it from now on. It
    /// keeps what it had already synced.
    Remove {
        /// Device id or a unique prefix of it.
        id: String,
    },
}

/// `hearth pause`.
#[derive(Debug, Args)]
pub(crate) struct PauseArgs {
    /// End the pause by itself after this long: 30m, 12h, 2d or 1w. Without it, the
    /// pause lasts until `hearth resume`.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) duration: Option<u64>,
}

/// `hearth leave`.
#[derive(Debug, Args)]
pub(crate) struct LeaveArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub(crate) yes: bool,
}

/// Parses a duration such as `90m`, `12h`, `2d` or `1w` (or `1d12h`) into seconds.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{text}` is not a duration; write a number with a unit, such as 30m, 12h, 2d or 1w"
        )
    };
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
        any = true;
    }
    if !number.is_empty() || !any {
        return Err(bad());
    }
    if total == 0 {
        return Err("a pause needs to last a while; try 30m, 12h or 2d".into());
    }
    Ok(total)
}

/// `hearth peers ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PeersCommand {
    /// Remember a device's address, HOST:PORT, and keep reaching out to it.
    Add {
        /// HOST:PORT.
        addr: String,
    },
}

/// `hearth demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the two temporary data directories afterwards, and print where they are.
    #[arg(long)]
    pub(crate) keep: bool,
}

/// `hearth init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Your name, as your partner will see it.
    #[arg(long)]
    pub(crate) name: String,
    /// A friendly name for this device, such as "laptop".
    #[arg(long, value_name = "NAME")]
    pub(crate) device_name: Option<String>,
    /// Protect the identity with a passphrase (asked twice, or read from --passphrase-file).
    #[arg(long)]
    pub(crate) passphrase: bool,
}

/// `hearth daemon ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DaemonCommand {
    /// Run the daemon in the foreground until Ctrl-C or SIGTERM.
    Run,
    /// Start the daemon in the background and wait until it answers.
    Start,
    /// Ask the daemon to flush and stop, and wait until it has.
    Stop,
    /// Whether the daemon is running, and in which state.
    Status,
}

/// `--at DATE|DATETIME`, shared by every write command.
#[derive(Debug, Clone, Args)]
pub(crate) struct AtArg {
    /// When it happened, to fill in a missed day: 2026-11-20 or 2026-11-20T21:30 (local time).
    #[arg(long, value_name = "DATE|DATETIME", value_parser = parse_at_flag)]
    pub(crate) at: Option<AtValue>,
}

/// `hearth reply`.
#[derive(Debug, Args)]
pub(crate) struct ReplyArgs {
    /// The ask's id (a few characters are enough), as `hearth today` shows it.
    pub(crate) ask: String,
    /// Your answer, such as "I'll take bedtime".
    pub(crate) text: String,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth checkin`.
#[derive(Debug, Args)]
pub(crate) struct CheckinArgs {
    /// Energy left, 0 to 100. Without it, on a terminal, hearth asks.
    #[arg(long, value_name = "0-100", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub(crate) battery: Option<u8>,
    /// A burnout sign and how strongly, from 0 (not at all) to 4 (very much): dread (of
    /// time together), numb (in conversation), irritation (at small things), warmth
    /// (warmth or curiosity is hard to reach: 4 means very hard), relief (wishing for
    /// relief elsewhere: 4 means very much; it stays yours unless you --share-safety).
    #[arg(long = "sign", value_name = "SIGN=0-4", value_parser = parse_sign)]
    pub(crate) signs: Vec<(BurnoutSign, u8)>,
    /// Body signs present, comma separated (fatigue,sleep,...).
    #[arg(long, value_name = "SIGNS", value_delimiter = ',', value_parser = parse_key::<BodySign>)]
    pub(crate) body: Vec<BodySign>,
    /// Basics and how well they were met: sleep=met,food=partly,safety=no,rest=met.
    #[arg(long, value_name = "BASIC=LEVEL", value_delimiter = ',', value_parser = parse_basic)]
    pub(crate) basics: Vec<(Basic, BasicLevel)>,
    /// A note for yourself (or both of you, when shared).
    #[arg(long)]
    pub(crate) note: Option<String>,
    /// Something you would like from your partner.
    #[arg(long)]
    pub(crate) ask: Option<String>,
    /// Who may read it: shared (default), private (only your own devices), or
    /// reveal-together (sealed until your partner checks in for the same day).
    #[arg(long, value_parser = parse_visibility)]
    pub(crate) visibility: Option<Visibility>,
    /// Share your answers on feeling safe and on wishing for relief with your partner,
    /// for this check-in only. Without it they stay on your own devices.
    #[arg(long)]
    pub(crate) share_safety: bool,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth reflect`.
#[derive(Debug, Args)]
pub(crate) struct ReflectArgs {
    /// If you had more energy, would you want to work on this together? yes, no or unsure.
    #[arg(long, value_parser = parse_key::<Answer>)]
    pub(crate) energy: Option<Answer>,
    /// Do you feel emotionally safe with your partner? yes, no or unsure.
    #[arg(long, value_parser = parse_key::<Answer>)]
    pub(crate) safe: Option<Answer>,
    /// Are the two of you aligned on what you want? yes, no or unsure.
    #[arg(long, value_parser = parse_key::<Answer>)]
    pub(crate) aligned: Option<Answer>,
    /// A note.
    #[arg(long)]
    pub(crate) note: Option<String>,
    /// Who may read it: private (default) or shared.
    #[arg(long, value_parser = parse_visibility)]
    pub(crate) visibility: Option<Visibility>,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth ledger ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Add a responsibility the household carries.
    Add(LedgerAddArgs),
    /// List the responsibilities and who holds each stage.
    List {
        /// Include retired items.
        #[arg(long)]
        all: bool,
    },
    /// One item with what was done, handoffs and acknowledgments.
    Show {
        /// Item id or a unique prefix of it.
        id: String,
    },
    /// Record that something was done: a listed item, or unlisted work with --label.
    Done(LedgerDoneArgs),
    /// Say "I see this" about an item, a done entry, a check-in or a moment.
    Ack(LedgerAckArgs),
    /// Propose moving one stage of an item to your partner.
    Handoff(LedgerHandoffArgs),
    /// Accept a handoff: the stage moves.
    Accept(IdArgs),
    /// Decline a handoff.
    Decline(IdArgs),
    /// Answer a handoff with a counter-proposal.
    Counter(CounterArgs),
    /// Withdraw a handoff you proposed.
    Withdraw(IdArgs),
    /// Change an item: title, who holds which stage, cadence, weight, minutes or the
    /// "good enough" standard. A stage put on your partner is offered to them.
    Edit(LedgerEditArgs),
    /// Do less for now: pause an item, so it carries no load until it is resumed.
    Pause {
        /// Id or a unique prefix of it.
        id: String,
        /// The day it is meant to come back, such as 2026-12-31.
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        until: Option<NaiveDate>,
    },
    /// Bring a paused or retired item back.
    Resume {
        /// Id or a unique prefix of it.
        id: String,
    },
    /// A short list of invisible work to start from; add only what is true for you.
    Starter {
        /// Add these, by key, without asking (comma separated): peace, moods, school,
        /// health, dates.
        #[arg(long, value_delimiter = ',')]
        add: Vec<String>,
    },
    /// Agree with an item as it stands, its "good enough" standard included; it shows
    /// as agreed once you both have.
    Agree(IdArgs),
    /// Retire an item the household no longer carries.
    Retire(IdArgs),
}

/// `hearth ledger add`.
#[derive(Debug, Args)]
pub(crate) struct LedgerAddArgs {
    /// What it is, in a few words.
    pub(crate) title: String,
    /// household, logistics, finances, parenting, social, emotional, relationship or other.
    #[arg(long, value_parser = parse_key::<Domain>)]
    pub(crate) domain: Domain,
    /// physical (default), cognitive or emotional.
    #[arg(long, value_parser = parse_key::<Labour>)]
    pub(crate) labour: Option<Labour>,
    /// The work is easy to miss.
    #[arg(long)]
    pub(crate) invisible: bool,
    /// Who holds every stage not named with --stage: me (default), partner, a name or an id.
    #[arg(long, value_name = "PERSON")]
    pub(crate) owner: Option<String>,
    /// Who holds one stage: notice=me, plan=partner, do=..., follow-up=... (repeatable).
    #[arg(long = "stage", value_name = "STAGE=PERSON", value_delimiter = ',', value_parser = parse_stage_owner)]
    pub(crate) stages: Vec<(Stage, String)>,
    /// daily, weekly, monthly or occasional.
    #[arg(long, value_parser = parse_key::<Cadence>)]
    pub(crate) cadence: Option<Cadence>,
    /// Rough minutes per week.
    #[arg(long, value_name = "MINUTES")]
    pub(crate) minutes: Option<u32>,
    /// How heavy it feels, 1 to 3 (default 2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub(crate) weight: Option<u8>,
    /// The "good enough" standard you both agreed.
    #[arg(long, value_name = "TEXT")]
    pub(crate) good_enough: Option<String>,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth ledger done`.
#[derive(Debug, Args)]
pub(crate) struct LedgerDoneArgs {
    /// Item id or prefix; leave out and use --label for unlisted work.
    #[arg(required_unless_present = "label")]
    pub(crate) item: Option<String>,
    /// A short label for unlisted (often invisible) work.
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Who did it: me (default), partner, a name or an id.
    #[arg(long, value_name = "PERSON")]
    pub(crate) by: Option<String>,
    /// Roughly how many minutes it took.
    #[arg(long)]
    pub(crate) minutes: Option<u32>,
    /// A note.
    #[arg(long)]
    pub(crate) note: Option<String>,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth ledger ack`.
#[derive(Debug, Args)]
pub(crate) struct LedgerAckArgs {
    /// Id or prefix of what you acknowledge.
    pub(crate) target: String,
    /// What the id points at: item (default), done, checkin or moment.
    #[arg(long = "on", value_name = "KIND", value_parser = parse_key::<TargetKind>)]
    pub(crate) on: Option<TargetKind>,
    /// thanks, seen (default) or repair.
    #[arg(long, value_parser = parse_key::<AckKind>)]
    pub(crate) kind: Option<AckKind>,
    /// To whom: your partner by default.
    #[arg(long, value_name = "PERSON")]
    pub(crate) to: Option<String>,
    /// A note.
    #[arg(long)]
    pub(crate) note: Option<String>,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth ledger handoff`.
#[derive(Debug, Args)]
pub(crate) struct LedgerHandoffArgs {
    /// Item id or prefix.
    pub(crate) item: String,
    /// The stage to move: notice, plan, do or follow-up.
    #[arg(long, value_parser = parse_key::<Stage>)]
    pub(crate) stage: Stage,
    /// Who would take it: your partner by default.
    #[arg(long, value_name = "PERSON")]
    pub(crate) to: Option<String>,
    /// A note.
    #[arg(long)]
    pub(crate) note: Option<String>,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// Commands that name one record: accept, decline, withdraw, retire.
#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// Id or a unique prefix of it.
    pub(crate) id: String,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth ledger edit`.
#[derive(Debug, Args)]
pub(crate) struct LedgerEditArgs {
    /// Id or a unique prefix of it.
    pub(crate) id: String,
    /// A new title.
    #[arg(long)]
    pub(crate) title: Option<String>,
    /// Who holds one stage: notice=me, plan=partner, ... (repeatable); a stage put on
    /// your partner is offered to them as a handoff.
    #[arg(long = "stage", value_name = "STAGE=PERSON", value_delimiter = ',', value_parser = parse_stage_owner)]
    pub(crate) stages: Vec<(Stage, String)>,
    /// daily, weekly, monthly or occasional.
    #[arg(long, value_parser = parse_key::<Cadence>)]
    pub(crate) cadence: Option<Cadence>,
    /// How heavy it feels, 1 to 3.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub(crate) weight: Option<u8>,
    /// Rough minutes per week.
    #[arg(long)]
    pub(crate) minutes: Option<u32>,
    /// The "good enough" standard; both of you agree it again with `ledger agree`.
    #[arg(long)]
    pub(crate) good_enough: Option<String>,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth ledger counter`.
#[derive(Debug, Args)]
pub(crate) struct CounterArgs {
    /// Handoff id or prefix.
    pub(crate) id: String,
    /// The counter-proposal, in a few words.
    pub(crate) proposal: String,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

/// `hearth moment`.
#[derive(Debug, Args)]
pub(crate) struct MomentArgs {
    /// glance, laugh, touch, quiet, talk or other. Without it, on a terminal, hearth asks.
    #[arg(value_parser = parse_key::<MomentKind>)]
    pub(crate) kind: Option<MomentKind>,
    /// Who started it: me (default), partner, a name or an id.
    #[arg(long, value_name = "PERSON")]
    pub(crate) by: Option<String>,
    /// A note.
    #[arg(long)]
    pub(crate) note: Option<String>,
    #[command(flatten)]
    pub(crate) at: AtArg,
}

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

/// `hearth bundle ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum BundleCommand {
    /// Write what your partner's devices lack, as far as this device knows, into a file
    /// only their devices can open.
    Export {
        /// Where to write the bundle.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Everything in the shared household, not only what they lack.
        #[arg(long)]
        all: bool,
    },
    /// Check a bundle from your partner's device (signature, sender, recipient) and merge
    /// it. Nothing changes if any check fails; importing one twice is harmless.
    Import {
        /// A file written by `hearth bundle export`, or - for standard input.
        file: PathBuf,
    },
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

/// `hearth completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// bash, zsh or fish.
    #[arg(value_enum)]
    pub(crate) shell: Shell,
}

/// Shells we write completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// `hearth man`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write hearth.1 and one page per subcommand into DIR instead of printing.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

/// A parsed `--at`: the instant and the UTC offset in force there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AtValue {
    /// Unix milliseconds.
    pub(crate) at: i64,
    /// Local UTC offset at that instant, in minutes.
    pub(crate) utc_offset_min: i32,
}

impl AtArg {
    /// The `At` to send: the parsed `--at`, or now with the local offset.
    pub(crate) fn resolve(&self) -> At {
        let value = self.at.unwrap_or_else(|| at_of(Local::now()));
        At {
            at: Some(value.at),
            utc_offset_min: value.utc_offset_min,
        }
    }
}

fn at_of<Tz: TimeZone>(t: DateTime<Tz>) -> AtValue {
    use chrono::Offset;
    AtValue {
        at: t.timestamp_millis(),
        utc_offset_min: t.offset().fix().local_minus_utc() / 60,
    }
}

/// How far in the future `--at` may point; a few minutes absorb clock skew.
const FUTURE_SLACK_MS: i64 = 5 * 60 * 1000;

fn parse_at_flag(s: &str) -> Result<AtValue, String> {
    parse_at(s, &Local, Local::now().timestamp_millis())
}

/// Parses `--at` in the zone `tz`, relative to `now_ms`.
///
/// A bare date means midday of that day, so the entry lands on that date whatever the
/// zone; today's date means now, because midday may still be ahead. An explicit offset
/// (`2026-11-20T21:30+01:00`) wins over the local zone. Times in the future are refused:
/// `--at` is for filling in the past.
pub(crate) fn parse_at<Tz: TimeZone>(s: &str, tz: &Tz, now_ms: i64) -> Result<AtValue, String> {
    let s = s.trim();
    let value = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        at_of(t)
    } else if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M%:z") {
        at_of(t)
    } else if let Some(naive) = parse_naive_datetime(s) {
        local_instant(tz, naive, s)?
    } else if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let today = DateTime::from_timestamp_millis(now_ms)
            .map(|t| t.with_timezone(tz).date_naive())
            .ok_or_else(|| "the clock is out of range".to_string())?;
        if date == today {
            let now = DateTime::from_timestamp_millis(now_ms)
                .ok_or_else(|| "the clock is out of range".to_string())?;
            at_of(now.with_timezone(tz))
        } else {
            local_instant(
                tz,
                date.and_time(NaiveTime::MIN + chrono::Duration::hours(12)),
                s,
            )?
        }
    } else {
        return Err(format!(
            "`{s}` is not a date or time; use 2026-11-20 or 2026-11-20T21:30 (local time)"
        ));
    };
    if value.at > now_ms + FUTURE_SLACK_MS {
        return Err(format!(
            "`{s}` is in the future; --at is for filling in a day that already happened"
        ));
    }
    Ok(value)
}

fn parse_naive_datetime(s: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
}

fn local_instant<Tz: TimeZone>(tz: &Tz, naive: NaiveDateTime, s: &str) -> Result<AtValue, String> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(at_of(t)),
        // When clocks go back the hour happens twice; the first one is the usual reading.
        LocalResult::Ambiguous(first, _) => Ok(at_of(first)),
        LocalResult::None => Err(format!(
            "`{s}` does not exist in your time zone (the clocks moved forward then); pick a time an hour later"
        )),
    }
}

/// Parses a stable key into its enum, with the model's message listing the allowed keys.
pub(crate) fn parse_key<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| e.to_string())
}

fn parse_visibility(s: &str) -> Result<Visibility, String> {
    parse_key::<Visibility>(s)
}

/// Parses `SIGN=RATING`, as in `--sign dread=3`.
pub(crate) fn parse_sign(s: &str) -> Result<(BurnoutSign, u8), String> {
    let (key, value) = s.split_once('=').ok_or_else(|| {
        format!("`{s}` needs a rating: write it as SIGN=0-4, for example dread=3")
    })?;
    let sign = parse_key::<BurnoutSign>(key)?;
    let rating: u8 = value
        .trim()
        .parse()
        .ok()
        .filter(|r| *r <= 4)
        .ok_or_else(|| {
            format!("the rating of {sign} must be a whole number from 0 to 4, not `{value}`")
        })?;
    Ok((sign, rating))
}

/// Parses `BASIC=LEVEL`, as in `--basics sleep=met`.
pub(crate) fn parse_basic(s: &str) -> Result<(Basic, BasicLevel), String> {
    let (key, value) = s.split_once('=').ok_or_else(|| {
        format!("`{s}` needs a level: write it as BASIC=met|partly|no, for example sleep=partly")
    })?;
    Ok((parse_key::<Basic>(key)?, parse_key::<BasicLevel>(value)?))
}

/// Parses `STAGE=PERSON`, as in `--stage notice=partner`.
pub(crate) fn parse_stage_owner(s: &str) -> Result<(Stage, String), String> {
    let (key, value) = s.split_once('=').ok_or_else(|| {
        format!("`{s}` needs an owner: write it as STAGE=PERSON, for example notice=partner")
    })?;
    let person = value.trim();
    if person.is_empty() {
        return Err(format!(
            "`{s}` names no person after `=`; use me, partner or a name"
        ));
    }
    Ok((parse_key::<Stage>(key)?, person.to_string()))
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date; use YYYY-MM-DD, for example 2026-11-20"))
}

fn parse_record_kind(s: &str) -> Result<String, String> {
    let key = s.trim().to_ascii_lowercase();
    // Accept the singular too, since `--kind checkin` is what people type.
    let plural = match key.as_str() {
        "checkin" | "check-in" => "checkins",
        "reflection" | "reflect" => "reflections",
        "item" | "items" => "ledger",
        "ack" => "acks",
        "handoff" => "handoffs",
        "moment" => "moments",
        other => other,
    };
    if hearth_api::RECORD_KINDS.contains(&plural) {
        Ok(plural.to_string())
    } else {
        Err(format!(
            "`{s}` is not a kind of entry; use one of: {}",
            hearth_api::RECORD_KINDS.join(", ")
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("2d"), Ok(2 * 86_400));
        assert_eq!(parse_duration("90m"), Ok(5_400));
        assert_eq!(parse_duration("1d12h"), Ok(36 * 3600));
        assert_eq!(parse_duration("1W"), Ok(7 * 86_400));
        for bad in ["", "2", "d", "2x", "0h", "-1d", "99999999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pause_leave_devices_and_pair_roles_parse() {
        let cli = parse(&["pause", "--for", "2d"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Pause(PauseArgs {
                duration: Some(172_800)
            })
        ));
        assert!(matches!(
            parse(&["leave", "--yes"]).unwrap().command,
            Command::Leave(LeaveArgs { yes: true })
        ));
        assert!(matches!(
            parse(&["devices", "remove", "ABCD"]).unwrap().command,
            Command::Devices(DevicesCommand::Remove { .. })
        ));
        assert!(matches!(
            parse(&["pair", "invite", "--own-device"]).unwrap().command,
            Command::Pair(PairCommand::Invite {
                own_device: true,
                ..
            })
        ));
        assert!(matches!(
            parse(&["pair", "invite"]).unwrap().command,
            Command::Pair(PairCommand::Invite {
                own_device: false,
                ..
            })
        ));
        assert!(parse(&["pair", "join", "4-a-b-c", "--own-device"]).is_err());
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hearth").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn sign_flags_parse_and_repeat() {
        let cli = parse(&[
            "checkin",
            "--battery",
            "40",
            "--sign",
            "dread=3",
            "--sign",
            "Warmth=0",
        ])
        .unwrap();
        let Command::Checkin(c) = cli.command else {
            panic!("not a checkin")
        };
        assert_eq!(c.battery, Some(40));
        assert_eq!(
            c.signs,
            vec![(BurnoutSign::Dread, 3), (BurnoutSign::Warmth, 0)]
        );
    }

    #[test]
    fn sign_rating_out_of_range_or_unknown_is_refused_with_the_reason() {
        let err = parse_sign("dread=5").unwrap_err();
        assert!(err.contains("0 to 4"), "{err}");
        let err = parse_sign("grumpy=2").unwrap_err();
        assert!(err.contains("dread, numb"), "{err}");
        let err = parse_sign("dread").unwrap_err();
        assert!(err.contains("SIGN=0-4"), "{err}");
        assert!(parse(&["checkin", "--battery", "40", "--sign", "dread=-1"]).is_err());
    }

    #[test]
    fn battery_over_100_is_a_usage_error() {
        let err = parse(&["checkin", "--battery", "101"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn basics_and_body_split_on_commas() {
        let cli = parse(&[
            "checkin",
            "--battery",
            "10",
            "--basics",
            "sleep=met,food=partly",
            "--basics",
            "rest=no",
            "--body",
            "fatigue,hair-loss",
        ])
        .unwrap();
        let Command::Checkin(c) = cli.command else {
            panic!("not a checkin")
        };
        assert_eq!(
            c.basics,
            vec![
                (Basic::Sleep, BasicLevel::Met),
                (Basic::Food, BasicLevel::Partly),
                (Basic::Rest, BasicLevel::No)
            ]
        );
        assert_eq!(c.body, vec![BodySign::Fatigue, BodySign::HairLoss]);
        assert!(parse_basic("sleep=lots")
            .unwrap_err()
            .contains("met, partly, no"));
        assert!(parse_basic("nap=met")
            .unwrap_err()
            .contains("sleep, food, safety, rest"));
    }

    #[test]
    fn at_accepts_dates_and_local_datetimes() {
        let tz = FixedOffset::east_opt(3600).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-25T10:00:00+01:00")
            .unwrap()
            .timestamp_millis();
        let v = parse_at("2026-11-20T21:30", &tz, now).unwrap();
        assert_eq!(
            v.at,
            DateTime::parse_from_rfc3339("2026-11-20T20:30:00Z")
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(v.utc_offset_min, 60);

        // A bare past date is midday there.
        let v = parse_at("2026-11-20", &tz, now).unwrap();
        assert_eq!(
            v.at,
            DateTime::parse_from_rfc3339("2026-11-20T11:00:00Z")
                .unwrap()
                .timestamp_millis()
        );

        // Today is now, since midday may not have come yet.
        let v = parse_at("2026-11-25", &tz, now).unwrap();
        assert_eq!(v.at, now);

        // An explicit offset wins.
        let v = parse_at("2026-11-20T21:30:00-05:00", &tz, now).unwrap();
        assert_eq!(v.utc_offset_min, -300);
    }

    #[test]
    fn at_refuses_garbage_and_the_future() {
        let tz = FixedOffset::east_opt(0).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .timestamp_millis();
        assert!(parse_at("yesterday", &tz, now)
            .unwrap_err()
            .contains("2026-11-20T21:30"));
        assert!(parse_at("2026-13-01", &tz, now).is_err());
        assert!(parse_at("2027-01-01", &tz, now)
            .unwrap_err()
            .contains("future"));
        assert!(parse(&["moment", "laugh", "--at", "nope"]).is_err());
    }

    #[test]
    fn stage_owners_and_record_kinds() {
        assert_eq!(
            parse_stage_owner("follow-up=partner").unwrap(),
            (Stage::FollowUp, "partner".to_string())
        );
        assert!(parse_stage_owner("do=").is_err());
        assert_eq!(parse_record_kind("checkin").unwrap(), "checkins");
        assert!(parse_record_kind("diary").unwrap_err().contains("moments"));
    }

    #[test]
    fn every_visibility_parses() {
        assert!(parse(&[
            "checkin",
            "--battery",
            "3",
            "--visibility",
            "reveal-together"
        ])
        .is_ok());
        assert!(parse(&["reflect", "--visibility", "private"]).is_ok());
        assert!(parse(&["reflect", "--visibility", "sealed"]).is_err());
    }

    #[test]
    fn bundle_export_needs_a_destination() {
        assert!(parse(&["bundle", "export"]).is_err());
        assert!(parse(&["bundle", "export", "--out", "b.hearth", "--all"]).is_ok());
        assert!(parse(&["bundle", "import", "b.hearth"]).is_ok());
    }

    #[test]
    fn report_needs_a_format() {
        assert!(parse(&["report"]).is_err());
        assert!(parse(&["report", "--markdown"]).is_ok());
        assert!(parse(&["report", "--markdown", "--html", "x.html"]).is_err());
    }

    #[test]
    fn done_needs_an_item_or_a_label() {
        assert!(parse(&["ledger", "done"]).is_err());
        assert!(parse(&["ledger", "done", "--label", "called the school"]).is_ok());
        assert!(parse(&["ledger", "done", "ab12"]).is_ok());
    }
}
