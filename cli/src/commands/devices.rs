//! `devices`, `pause`, `resume` and `leave`: who is in the household, and how much is
//! shared with the partner.
//!
//! This module turns those commands into control calls and words the answers. The rules
//! (who may rename or remove what, what a pause holds back) live in the daemon; the only
//! thing decided here is asking before `leave`, because only a terminal can ask.

use hearth_api::{DeviceSummary, Left, Paused, Resumed, RosterCall};

use crate::commands::{decode, Io, Session};
use crate::daemonctl::Ctx;
use crate::error::CliError;
use crate::out::Style;
use crate::prompt;
use crate::render::{local_offset_min, local_time};
use clap::{Args, Subcommand};

/// The first groups of a device id, enough to tell a household's devices apart.
fn short_device(id: &str) -> String {
    id.split('-').take(3).collect::<Vec<_>>().join("-")
}

fn when(ms: Option<i64>) -> String {
    ms.map(|t| local_time(t, local_offset_min()))
        .unwrap_or_default()
}

pub(super) fn devices(ctx: &Ctx, io: &mut Io, cmd: DevicesCommand) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    match cmd {
        DevicesCommand::List => {
            let list = session.call(RosterCall::DevicesList)?;
            if ctx.json {
                io.out.json(&list)?;
            } else {
                let rows: Vec<DeviceSummary> = decode(list)?;
                io.out.write(&device_table(&rows, io.style))?;
            }
        }
        DevicesCommand::Rename { id, name } => {
            let device = session.call(RosterCall::DevicesRename { id, name })?;
            if ctx.json {
                io.out.json(&device)?;
            } else {
                let device: DeviceSummary = decode(device)?;
                io.out.line(&format!(
                    "Renamed {} to {}.",
                    io.style.dim(&short_device(&device.id)),
                    io.style.bold(&device.name)
                ))?;
            }
        }
        DevicesCommand::Remove { id } => {
            let device = session.call(RosterCall::DevicesRemove { id })?;
            if ctx.json {
                io.out.json(&device)?;
            } else {
                let device: DeviceSummary = decode(device)?;
                io.out.line(&format!(
                    "Removed {} ({}'s). Every device refuses it once it hears of this; it keeps what it had already synced.",
                    io.style.bold(&device.name),
                    device.person
                ))?;
            }
        }
    }
    Ok(())
}

/// The roster as a table: yours first, this device marked.
fn device_table(rows: &[DeviceSummary], style: Style) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            let marker = if d.this_device { "*" } else { "" };
            let added_by = match (&d.added_by_name, &d.added_by) {
                (Some(name), _) => name.clone(),
                (None, Some(id)) => short_device(id),
                (None, None) => "started the household".into(),
            };
            let state = if let Some(at) = d.removed_at {
                format!("removed {}", when(Some(at)))
            } else if d.this_device {
                "this device".into()
            } else if d.trusted {
                "in use".into()
            } else {
                "sharing ended".into()
            };
            vec![
                marker.to_string(),
                short_device(&d.id),
                d.name.clone(),
                d.person.clone(),
                added_by,
                state,
            ]
        })
        .collect();
    crate::render::table(
        style,
        &["", "ID", "NAME", "WHOSE", "ADDED BY", "STATE"],
        &cells,
    )
}

/// The partner's names as the answer gives them; "your partner" when it gives none.
fn names(with: Option<&[String]>) -> String {
    match with {
        Some(names) if !names.is_empty() => names.join(" and "),
        _ => "your partner".into(),
    }
}

pub(super) fn pause(ctx: &Ctx, io: &mut Io, args: PauseArgs) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    let result = session.call(RosterCall::Pause {
        for_secs: args.duration,
    })?;
    if ctx.json {
        io.out.json(&result)?;
        return Ok(());
    }
    let paused: Paused = decode(result)?;
    let until = match paused.until {
        Some(at) => format!("until {}", when(Some(at))),
        None => format!("until you run {}", io.style.cmd("hearth resume")),
    };
    io.out.line(&format!(
        "Sharing with {} is paused {until}.",
        names(Some(&paused.with))
    ))?;
    io.out.line(
        "Your own devices keep syncing, and what you write waits here until the pause ends.",
    )?;
    Ok(())
}

pub(super) fn resume(ctx: &Ctx, io: &mut Io) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    let result = session.call(RosterCall::Resume)?;
    if ctx.json {
        io.out.json(&result)?;
        return Ok(());
    }
    let resumed: Resumed = decode(result)?;
    if resumed.resumed {
        io.out.line(&format!(
            "Sharing with {} again. What you wrote during the pause goes to them now.",
            names(resumed.with.as_deref())
        ))?;
    } else {
        io.out.line("Sharing was not paused; nothing changed.")?;
    }
    Ok(())
}

pub(super) fn leave(ctx: &Ctx, io: &mut Io, args: LeaveArgs) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    if !args.yes {
        if !prompt::interactive() {
            return Err(CliError::Usage {
                message: "leaving ends sharing for good, and there is no terminal to ask on".into(),
                hint: "run `hearth leave` on a terminal, or add --yes".into(),
            }
            .into());
        }
        crate::out::note(
            "Leaving ends sharing with your partner for good. Each of you keeps your own copy of \
             everything shared so far, and your private entries stay yours. It cannot be undone; \
             `hearth pause` is there for a break instead.",
        );
        let answer = prompt::read_line("Type `leave` to end sharing: ")?;
        if answer.as_deref().map(str::trim) != Some("leave") {
            return Err(CliError::Cancelled.into());
        }
    }
    let result = session.call(RosterCall::Leave { confirm: true })?;
    if ctx.json {
        io.out.json(&result)?;
        return Ok(());
    }
    let left: Left = decode(result)?;
    if left.already {
        io.out.line(&format!(
            "You already ended sharing on {}.",
            when(Some(left.at))
        ))?;
    } else {
        io.out.line(&format!(
            "Sharing with {} has ended. Everything you had stays on your devices; {} still writes it out.",
            names(left.with.as_deref()),
            io.style.cmd("hearth export")
        ))?;
    }
    Ok(())
}

// ----- command line ----------------------------------------------------------------

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_device_table_marks_this_device_and_says_who_added_each() {
        let rows: Vec<DeviceSummary> = serde_json::from_value(json!([
            {"id": "AAAA-BBBB-CCCC-DDDD", "name": "laptop", "person": "Robin", "person_id": "r", "this_device": true, "trusted": true, "added_at": 1},
            {"id": "EEEE-FFFF-GGGG-HHHH", "name": "phone", "person": "Robin", "person_id": "r", "added_by": "AAAA-BBBB-CCCC-DDDD", "added_by_name": "laptop", "this_device": false, "trusted": true, "added_at": 2},
            {"id": "IIII-JJJJ-KKKK-LLLL", "name": "old tablet", "person": "Sam", "person_id": "s", "added_by": "AAAA-BBBB-CCCC-DDDD", "removed_at": 0, "this_device": false, "trusted": false, "added_at": 3},
        ]))
        .unwrap();
        let table = device_table(&rows, Style::plain());
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("*  AAAA-BBBB-CCCC  laptop"), "{table}");
        assert!(lines[1].contains("started the household"), "{table}");
        assert!(
            lines[2].contains("laptop") && lines[2].ends_with("in use"),
            "{table}"
        );
        assert!(
            lines[3].contains("Sam") && lines[3].contains("removed"),
            "{table}"
        );
    }
}
