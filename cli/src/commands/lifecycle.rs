//! `init`, `status` and `daemon run|start|stop|status`: setting up a device and looking
//! after its daemon.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use anyhow::Context as _;
use hearth_api::client::Client;
use hearth_api::{DaemonCall, DocCall, Status};
use serde_json::{json, Value};

use super::{Io, Session};
use crate::daemonctl::{self, Ctx};
use crate::error::CliError;
use crate::prompt;
use crate::render;
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
        // On a terminal, what waits for you comes first. A glance here does not count
        // as looking: thank-yous stay new until `hearth today`.
        let ready = status["person"].is_object();
        if ready && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            if let Ok(view) = session.call(DocCall::Today {
                utc_offset_min: chrono::Local::now().offset().local_minus_utc() / 60,
                mark_seen: false,
            }) {
                io.out.write(&render::for_you(&view, io.style))?;
                io.out.line("")?;
            }
        }
        io.out.write(&render::status(&status, io.style))?;
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
    let status: Status = client.call_as(DaemonCall::Status)?;
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
