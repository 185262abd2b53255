//! The command line: every subcommand, flag and value parser of `hearth`.
//!
//! This module owns the shape of the command line and the parsing of compound flag
//! values (`--sign dread=3`, `--basics sleep=met`, `--at 2026-11-20T21:30`). It must not
//! talk to the daemon or print anything; the commands do that with what it parses.

use std::path::PathBuf;

use chrono::{DateTime, Local, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use clap::{Args, Parser, Subcommand};
use hearth_api::At;
use hearth_core::model::{Basic, BasicLevel, BurnoutSign, Stage, Visibility};

use crate::commands::bundle::BundleCommand;
use crate::commands::data::{ExportArgs, ImportArgs, InsightsArgs, LogArgs, ReportArgs};
use crate::commands::devices::{DevicesCommand, LeaveArgs, PauseArgs};
use crate::commands::entries::{CheckinArgs, MomentArgs, ReflectArgs, ReplyArgs};
use crate::commands::ledger::LedgerCommand;
use crate::commands::lifecycle::{DaemonCommand, InitArgs};
use crate::commands::meta::{CompletionsArgs, ManArgs};
use crate::commands::pairing::{PairCommand, PeersCommand};
use crate::commands::web::OpenArgs;

/// The heading that keeps the global options apart from each command's own.
pub(crate) const GLOBAL: &str = "Global options";

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
    /// Open Hearth's page in your browser, served by the daemon to this computer only.
    Open(OpenArgs),
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

/// `hearth demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the two temporary data directories afterwards, and print where they are.
    #[arg(long)]
    pub(crate) keep: bool,
}

/// `--at DATE|DATETIME`, shared by every write command.
#[derive(Debug, Clone, Args)]
pub(crate) struct AtArg {
    /// When it happened, to fill in a missed day: 2026-11-20 or 2026-11-20T21:30 (local time).
    #[arg(long, value_name = "DATE|DATETIME", value_parser = parse_at_flag)]
    pub(crate) at: Option<AtValue>,
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

pub(crate) fn at_of<Tz: TimeZone>(t: DateTime<Tz>) -> AtValue {
    use chrono::Offset;
    AtValue {
        at: t.timestamp_millis(),
        utc_offset_min: t.offset().fix().local_minus_utc() / 60,
    }
}

pub(crate) fn parse_at_flag(s: &str) -> Result<AtValue, String> {
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
    // The daemon applies the same rule (`ops::entry_when`); checking here too names the
    // flag the user typed.
    if value.at > now_ms + hearth_core::ops::FUTURE_SLACK_MS {
        return Err(format!(
            "`{s}` is in the future; --at is for filling in a day that already happened"
        ));
    }
    Ok(value)
}

pub(crate) fn parse_naive_datetime(s: &str) -> Option<NaiveDateTime> {
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

pub(crate) fn parse_visibility(s: &str) -> Result<Visibility, String> {
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

pub(crate) fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date; use YYYY-MM-DD, for example 2026-11-20"))
}

pub(crate) fn parse_record_kind(s: &str) -> Result<String, String> {
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
    use crate::commands::devices::parse_duration;
    use chrono::FixedOffset;
    use hearth_core::model::BodySign;

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
