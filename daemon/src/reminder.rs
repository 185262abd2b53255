//! The weekly walk's gentle reminder: on the day set as `together_day`, one desktop
//! notification, where this machine has a notifier.
//!
//! The decision is a pure function ([`due`]) of the local time, the configured day and
//! the date of the last reminder; the driver ([`run`]) only reads the clock, runs the
//! notifier and remembers the date in a small file. The reminder never counts anything
//! (no streaks, no "you missed"), carries no name or entry, and is sent at most once a
//! day, not before [`FROM_HOUR`] local time so nobody is pinged in the night.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::storage::DataDir;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike, Weekday};

/// The local hour from which the reminder may be shown.
pub const FROM_HOUR: u32 = 9;
/// Environment variable naming the notifier program, called with a title and a body;
/// `off` turns reminders off. Without it, `notify-send` is used where it is installed.
pub const NOTIFIER_ENV: &str = "HEARTH_NOTIFIER";

const TITLE: &str = "Hearth";
const BODY: &str =
    "Today is your day for a walk together, whenever it suits you both: hearth together";
/// How often the driver looks at the clock. The reminder is not an alarm: within a
/// quarter of an hour is soon enough, and a daemon that wakes four times an hour costs
/// nothing measurable.
const CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// Whether a reminder is due at local time `now`, for `day`, when the last one was sent
/// on `last`.
pub fn due(now: NaiveDateTime, day: Option<Weekday>, last: Option<NaiveDate>) -> bool {
    day == Some(now.weekday()) && now.hour() >= FROM_HOUR && last != Some(now.date())
}

/// The notifier to run: `HEARTH_NOTIFIER` when set (unless `off`), else `notify-send`
/// when it is on `PATH`; `None` when there is none.
fn notifier() -> Option<PathBuf> {
    match std::env::var_os(NOTIFIER_ENV) {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("notify-send"))
                .find(|p| p.is_file())
        }),
    }
}

fn read_last(data_dir: &DataDir) -> Option<NaiveDate> {
    let bytes = data_dir.read_reminded().ok()??;
    String::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// Runs until the daemon stops. `ready` says whether this device has a person yet: an
/// uninitialised or locked daemon reminds nobody.
pub async fn run(data_dir: DataDir, day: Option<Weekday>, ready: impl Fn() -> bool) {
    let Some(program) = day.and_then(|_| notifier()) else {
        return;
    };
    loop {
        let now = chrono::Local::now().naive_local();
        if ready() && due(now, day, read_last(&data_dir)) {
            notify(&program).await;
            // Remembered even when the notifier failed: one attempt a day, never a nag.
            if let Err(e) = data_dir.write_reminded(&now.date().to_string()) {
                tracing::warn!(error = %e.for_log(), "could not note that today's reminder was shown");
            }
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

async fn notify(program: &Path) {
    let ran = tokio::process::Command::new(program)
        .args([TITLE, BODY])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    match ran {
        Ok(status) if status.success() => tracing::info!("showed the weekly walk's reminder"),
        Ok(status) => tracing::warn!(%status, "the desktop notifier did not show the reminder"),
        Err(e) => tracing::warn!(error = %e, "could not run the desktop notifier"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(date: &str, hour: u32) -> NaiveDateTime {
        date.parse::<NaiveDate>()
            .unwrap()
            .and_hms_opt(hour, 5, 0)
            .unwrap()
    }

    #[test]
    fn due_once_on_the_day_from_the_morning() {
        // 2026-12-06 is a Sunday.
        let sunday = Some(Weekday::Sun);
        assert!(due(at("2026-12-06", 10), sunday, None));
        assert!(!due(at("2026-12-06", 8), sunday, None), "not in the night");
        assert!(!due(
            at("2026-12-06", 18),
            sunday,
            Some("2026-12-06".parse().unwrap())
        ));
        assert!(due(
            at("2026-12-06", 18),
            sunday,
            Some("2026-11-29".parse().unwrap())
        ));
        assert!(!due(at("2026-12-07", 10), sunday, None), "a Monday");
        assert!(!due(at("2026-12-06", 10), None, None), "off when unset");
    }

    #[test]
    fn the_last_date_round_trips_and_junk_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path());
        assert_eq!(read_last(&data_dir), None);
        let day: NaiveDate = "2026-12-06".parse().unwrap();
        data_dir.write_reminded(&day.to_string()).unwrap();
        assert_eq!(read_last(&data_dir), Some(day));
        std::fs::write(dir.path().join(crate::storage::REMINDED_FILE), "not a date").unwrap();
        assert_eq!(read_last(&data_dir), None);
    }
}
