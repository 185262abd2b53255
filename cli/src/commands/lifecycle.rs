//! `init`, `status` and `daemon run|start|stop|status`: setting up a device and looking
//! after its daemon.

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use anyhow::Context as _;
use hearth_api::client::Client;
use hearth_api::{DaemonCall, DocCall, PeerStatus, Status, Today};
use serde_json::{json, Value};

use super::{decode, Io, Session};
use crate::daemonctl::{self, Ctx};
use crate::error::CliError;
use crate::out::Style;
use crate::prompt;
use crate::render::{bytes, local_offset_min, local_time};
use clap::{Args, Subcommand};

pub(super) fn init(ctx: &Ctx, io: &mut Io, args: InitArgs) -> anyhow::Result<()> {
    let passphrase = if args.passphrase {
        Some(new_passphrase(ctx)?)
    } else {
        None
    };
    let mut session = Session::open(ctx)?;
    let result = session.call(DaemonCall::Init {
        name: args.name.clone(),
        device_name: args.device_name,
        passphrase,
    })?;
    if ctx.json {
        io.out.json(&result)?;
        return Ok(());
    }
    let s = io.style;
    io.out.line(&format!(
        "Welcome, {}. Hearth is set up on this device, in {}.",
        s.bold(args.name.trim()),
        ctx.paths.data_dir.display()
    ))?;
    if !args.passphrase {
        // Plain words about what "no passphrase" means, once, when it is chosen.
        io.out.line(&format!(
            "You chose no passphrase, so your entries here, private ones included, are only as safe as this disk: anyone who can read it (someone with your login, or a lost or stolen laptop) can read them. If that worries you, start over in a new directory with {}.",
            s.cmd("hearth init --passphrase")
        ))?;
    }
    io.out.line(&format!(
        "A first step: {} to note how you are doing, or {} for something the household carries.",
        s.cmd("hearth checkin"),
        s.cmd("hearth ledger add")
    ))?;
    Ok(())
}

/// A new passphrase: from the file, or typed twice on the terminal.
fn new_passphrase(ctx: &Ctx) -> anyhow::Result<String> {
    if let Some(path) = &ctx.passphrase_file {
        return daemonctl::read_passphrase_file(path);
    }
    if !daemonctl::can_prompt_secret() {
        return Err(CliError::Usage {
            message: "--passphrase needs a terminal to ask on, or a passphrase file".into(),
            hint: "add --passphrase-file FILE with the passphrase on its first line".into(),
        }
        .into());
    }
    loop {
        let first = rpassword::prompt_password("New passphrase: ")
            .context("could not read the passphrase from the terminal")?;
        if first.is_empty() {
            crate::out::note("An empty passphrase protects nothing; please type one.");
            continue;
        }
        let second = rpassword::prompt_password("Same passphrase again: ")
            .context("could not read the passphrase from the terminal")?;
        if first == second {
            return Ok(first);
        }
        crate::out::note("The two did not match; let's try again.");
    }
}

pub(super) fn status(ctx: &Ctx, io: &mut Io) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    let status = session.call(DaemonCall::Status)?;
    if ctx.json {
        io.out.json(&status)?;
    } else {
        let status: Status = decode(status)?;
        // On a terminal, what waits for you comes first. A glance here does not count
        // as looking: thank-yous stay new until `hearth today`.
        let ready = status.person.is_some();
        if ready && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            if let Ok(view) = session.call_as::<Today>(DocCall::Today {
                utc_offset_min: chrono::Local::now().offset().local_minus_utc() / 60,
                mark_seen: false,
            }) {
                io.out.write(&super::entries::for_you(&view, io.style))?;
                io.out.line("")?;
            }
        }
        io.out.write(&render_status(&status, io.style))?;
        // The weekly walk, on the day you chose; a gentle mention, never a count.
        let config = daemonctl::load_config(&ctx.paths)?;
        if ready && config.together_day == Some(chrono::Datelike::weekday(&chrono::Local::now())) {
            io.out.line("")?;
            io.out.line(&format!(
                "Today is your day for a walk together, whenever it suits you both: {}",
                io.style.cmd("hearth together")
            ))?;
        }
    }
    Ok(())
}

pub(super) fn daemon(ctx: &Ctx, io: &mut Io, cmd: DaemonCommand) -> anyhow::Result<()> {
    match cmd {
        DaemonCommand::Run => run_foreground(ctx),
        DaemonCommand::Start => start(ctx, io),
        DaemonCommand::Stop => stop(ctx, io),
        DaemonCommand::Status => daemon_status(ctx, io),
    }
}

/// Runs `hearthd` in the foreground. Without a terminal to ask on, or with a passphrase
/// file, this process becomes `hearthd`. Otherwise `hearthd` runs as a child, and a locked
/// identity is unlocked by asking here, over the daemon's own socket, once it listens.
fn run_foreground(ctx: &Ctx) -> anyhow::Result<()> {
    let mut cmd = daemonctl::hearthd_command(ctx)?;
    let ask = ctx.passphrase_file.is_none() && prompt::interactive();
    if !ask {
        // Only returns when the exec failed.
        let err = cmd.exec();
        return Err(CliError::Unreachable {
            message: format!("could not start hearthd: {err}"),
            hint: "check that the hearthd program beside hearth, or on PATH, is executable".into(),
        }
        .into());
    }
    let mut daemon = cmd.spawn().context("could not start hearthd")?;
    loop {
        if let Some(status) = daemon.try_wait().context("could not watch hearthd")? {
            return exited(status);
        }
        match Client::connect(&ctx.paths.socket) {
            Ok(mut client) => {
                if let Err(e) = unlock_if_locked(ctx, &mut client) {
                    // Without the passphrase the daemon is of no use; stop it cleanly.
                    let _ = client.call(DaemonCall::Shutdown);
                    let _ = daemon.wait();
                    return Err(e);
                }
                break;
            }
            Err(e) if daemonctl::is_not_running(&e) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(e.into()),
        }
    }
    exited(daemon.wait().context("could not watch hearthd")?)
}

/// Passes on the exit code of a `hearthd` that ran in the foreground; it already said why.
fn exited(status: std::process::ExitStatus) -> anyhow::Result<()> {
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => std::process::exit(code),
        None => Err(anyhow::anyhow!(
            "hearthd was stopped by a signal ({status})"
        )),
    }
}

fn unlock_if_locked(ctx: &Ctx, client: &mut Client) -> anyhow::Result<()> {
    let status: Status = client.call_as(DaemonCall::Status)?;
    if status.state == "locked" {
        daemonctl::unlock(ctx, client)?;
        crate::out::note("Unlocked.");
    }
    Ok(())
}

fn start(ctx: &Ctx, io: &mut Io) -> anyhow::Result<()> {
    let (mut client, started) = match ctx.try_connect()? {
        Some(client) => (client, false),
        None => (daemonctl::start(ctx)?, true),
    };
    let status: Status = client.call_as(DaemonCall::Status)?;
    // A protected identity is best unlocked now, while someone is at the keyboard.
    if started
        && status.state == "locked"
        && (ctx.passphrase_file.is_some() || daemonctl::can_prompt_secret())
    {
        daemonctl::unlock(ctx, &mut client)?;
    }
    // Started means ready to use: while the documents load (the daemon answers from its
    // last figures meanwhile), wait for them, briefly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut status: Status = client.call_as(DaemonCall::Status)?;
    while status.state == "loading" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
        status = client.call_as(DaemonCall::Status)?;
    }
    let summary = daemon_summary(ctx, &status, started);
    if ctx.json {
        io.out.json(&summary)?;
        return Ok(());
    }
    let verb = if started {
        "started"
    } else {
        "is already running"
    };
    io.out.line(&format!(
        "hearthd {verb} (pid {}), {}.",
        status.pid, status.state
    ))?;
    io.out
        .line(&io.style.dim(&format!("log: {}", ctx.paths.log().display())))?;
    Ok(())
}

fn daemon_summary(ctx: &Ctx, status: &Status, started: bool) -> Value {
    json!({
        "running": true,
        "started": started,
        "pid": status.pid,
        "state": status.state,
        "data_dir": ctx.paths.data_dir.display().to_string(),
        "socket": ctx.paths.socket.display().to_string(),
        "log": ctx.paths.log().display().to_string(),
    })
}

fn stop(ctx: &Ctx, io: &mut Io) -> anyhow::Result<()> {
    let stopped = daemonctl::stop(ctx)?;
    if ctx.json {
        io.out.json(&json!({"stopped": stopped}))?;
    } else if stopped {
        io.out
            .line("hearthd stopped; everything it had was saved.")?;
    } else {
        io.out.line("hearthd was not running.")?;
    }
    Ok(())
}

fn daemon_status(ctx: &Ctx, io: &mut Io) -> anyhow::Result<()> {
    let Some(mut client) = ctx.try_connect()? else {
        if ctx.json {
            io.out.json(&json!({
                "running": false,
                "data_dir": ctx.paths.data_dir.display().to_string(),
                "socket": ctx.paths.socket.display().to_string(),
                "log": ctx.paths.log().display().to_string(),
            }))?;
        }
        return Err(CliError::Unreachable {
            message: format!(
                "hearthd is not running for {}",
                ctx.paths.data_dir.display()
            ),
            hint: format!("start it with `{}`", ctx.start_command()),
        }
        .into());
    };
    let status: Status = client.call_as(DaemonCall::Status)?;
    let mut summary = daemon_summary(ctx, &status, false);
    if let Some(map) = summary.as_object_mut() {
        map.remove("started");
    }
    if ctx.json {
        io.out.json(&summary)?;
        return Ok(());
    }
    io.out.line(&format!(
        "hearthd is running (pid {}), {}.",
        status.pid, status.state
    ))?;
    let s = io.style;
    io.out
        .line(&s.dim(&format!("socket: {}", ctx.paths.socket.display())))?;
    io.out
        .line(&s.dim(&format!("log:    {}", ctx.paths.log().display())))?;
    Ok(())
}

// ----- command line ----------------------------------------------------------------

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

// ----- rendering -------------------------------------------------------------------

/// `hearth status`.
pub(crate) fn render_status(s: &Status, style: Style) -> String {
    let mut out = String::new();
    let label = |l: &str| style.dim(&format!("{l:<15}"));
    let _ = writeln!(out, "{}{}", label("Data directory"), s.data_dir);
    let state = s.state.as_str();
    let state_words = match state {
        "ready" => style.good("ready"),
        "locked" => style.warn("locked until the passphrase is given"),
        "uninitialized" => style.warn("not set up yet"),
        // The read cache answers while the documents load: say that what follows is
        // from the last stop, and that it will be current in a moment.
        "loading" => style
            .warn("opening your entries; what follows is how things stood when it last stopped"),
        other => other.to_string(),
    };
    let _ = writeln!(
        out,
        "{}running (pid {}), {state_words}",
        label("Daemon"),
        s.pid
    );
    if state == "uninitialized" {
        let _ = writeln!(
            out,
            "\nTo begin, choose the name your partner will see: {}",
            style.cmd("hearth init --name NAME")
        );
        return out;
    }
    if let Some(person) = &s.person {
        let device = match s.device_id.as_deref() {
            None | Some("") => String::new(),
            Some(device) => format!("  {}", style.dim(&format!("device {device}"))),
        };
        let _ = writeln!(out, "{}{}{device}", label("You"), person.name);
    }
    // The private document's id carries the person's id; the word is enough here.
    let doc_name = |id: &str| -> String {
        if id.starts_with("private") {
            "private".into()
        } else {
            id.to_string()
        }
    };
    let id_width = s
        .documents
        .iter()
        .map(|d| doc_name(&d.id).chars().count())
        .max()
        .unwrap_or(0);
    let mut first = true;
    for doc in &s.documents {
        let mut counts: Vec<String> = doc
            .records
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        if counts.is_empty() {
            counts.push("empty".into());
        }
        let _ = writeln!(
            out,
            "{}{:<id_width$}  {:>9}  {}",
            label(if first { "Documents" } else { "" }),
            doc_name(&doc.id),
            bytes(doc.disk_bytes),
            style.dim(&counts.join(", "))
        );
        first = false;
        if !doc.quarantined.is_empty() {
            let _ = writeln!(
                out,
                "{}{}",
                label(""),
                style.warn(&format!(
                    "{} file(s) could not be read and were set aside in quarantine/; a partner's device can bring their changes back",
                    doc.quarantined.len()
                ))
            );
        }
    }
    let sharing_notes = sharing(s, style);
    let ended = s.people.iter().any(|p| p.left_at.is_some());
    if s.peers.is_empty() && !ended {
        let _ = writeln!(
            out,
            "{}no partner yet; everything stays on this device until you pair",
            label("Partner")
        );
    } else {
        let mut first = true;
        for p in &s.peers {
            let connected = if p.refuses_this_device {
                style.dim("no longer accepts this device")
            } else if p.on_hold {
                style.dim("connected, sharing on hold")
            } else if p.connected {
                style.good("connected")
            } else {
                let last = p
                    .last_sync
                    .map(|t| format!("last synced {}", local_time(t, local_offset_min())))
                    .unwrap_or_else(|| "not synced yet".into());
                style.dim(&last)
            };
            let _ = writeln!(
                out,
                "{}{} ({})  {connected}",
                label(if first { "Devices" } else { "" }),
                p.name,
                p.person,
            );
            first = false;
        }
    }
    out.push_str(&sharing_notes);
    out.push_str(&refused(s, style));
    out.push_str(&unproven_changes(&s.peers, style));
    out
}

/// Changes a peer sent that were held or refused because their author could not be
/// shown to be allowed to write them. Counts and plain reasons, never content.
fn unproven_changes(peers: &[PeerStatus], style: Style) -> String {
    let mut out = String::new();
    for p in peers {
        let (held, refused) = (p.held_changes, p.refused_changes);
        if held > 0 {
            let _ = writeln!(
                out,
                "{}",
                style.dim(&format!(
                    "Waiting: {held} change(s) from {} ({}) wait until the device that wrote them is confirmed.",
                    p.name,
                    p.person,
                ))
            );
        }
        if refused > 0 {
            let reasons = &p.refused_because;
            let _ = writeln!(
                out,
                "{}",
                style.warn(&format!(
                    "Not accepted: {refused} change(s) from {} ({}) touched entries that were not theirs to change ({}). Nothing here changed because of them.",
                    p.name,
                    p.person,
                    if reasons.is_empty() { "no reason given".to_string() } else { reasons.join("; ") },
                ))
            );
        }
    }
    out
}

/// Roster entries and removals this device did not accept, said plainly: someone's
/// changes asked for something their signatures do not back, and nothing changed.
fn refused(s: &Status, style: Style) -> String {
    let mut out = String::new();
    if s.refused.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{}",
        style.warn(&format!(
            "Not accepted: {} change(s) to the list of devices that this device could not verify. Nothing about who can sync changed.",
            s.refused.len()
        ))
    );
    for r in &s.refused {
        let what = if r.what == "removal" {
            "a removal of device"
        } else {
            "device"
        };
        let from = r
            .sent_by
            .as_deref()
            .map(|by| format!(", from {}", short_device_ids(by)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {what} {}: {}{from}",
            short_device_ids(&r.device_id),
            r.reason,
        );
    }
    out
}

/// The first groups of each device id in `id` (one id, or several joined by commas).
fn short_device_ids(id: &str) -> String {
    if id.contains('-') && id.len() > 14 {
        id.split(',')
            .map(|one| one.trim().split('-').take(3).collect::<Vec<_>>().join("-"))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        id.to_string()
    }
}

/// The pause and leaving lines of `status`, worded gently: a pause is a breather that
/// either partner may take, and nobody is to blame for it.
pub(crate) fn sharing(s: &Status, style: Style) -> String {
    let mut out = String::new();
    let me = s.person.as_ref().map(|p| p.id.as_str()).unwrap_or_default();
    let others: Vec<&str> = s
        .people
        .iter()
        .filter(|p| p.id != me)
        .map(|p| p.name.as_str())
        .collect();
    let partner = if others.is_empty() {
        "your partner".to_string()
    } else {
        others.join(" and ")
    };
    let at = |t: i64| local_time(t, local_offset_min());
    for p in &s.people {
        let mine = p.id == me;
        let name = &p.name;
        if let Some(left_at) = p.left_at {
            let when = at(left_at);
            let line = if mine {
                format!("You ended sharing with {partner} on {when}. Your copy of everything and your private entries stay on your devices; `hearth export` still writes them out.")
            } else {
                format!("{name} ended sharing on {when}. Everything you had stays here with you; `hearth export` still writes it out.")
            };
            let _ = writeln!(out, "{}{line}", style.dim(&format!("{:<15}", "Sharing")));
            continue;
        }
        if let Some(pause) = &p.paused {
            let until = match pause.until {
                Some(t) => format!("until {}", at(t)),
                None if mine => "until you resume".to_string(),
                None => "for now".to_string(),
            };
            let line = if mine {
                format!("paused with {partner} {until}. Your own devices keep syncing; what you write reaches {partner} after the pause ({}).", style.cmd("hearth resume"))
            } else {
                format!("{name} is taking a pause from sharing {until}. What you write stays safe here and reaches {name} when the pause ends.")
            };
            let _ = writeln!(out, "{}{line}", style.dim(&format!("{:<15}", "Sharing")));
        }
    }
    out
}
