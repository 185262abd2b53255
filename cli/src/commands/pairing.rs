//! `pair`, `peers` and `sync`: bringing a partner's device into the household and
//! keeping the two in touch.

use hearth_api::{Invite, InviteUsed, Joined, NetCall, PeerAdded};
use hearth_core::pair::InviteRole;
use serde_json::json;

use crate::commands::{decode, Io, Session};
use crate::daemonctl::Ctx;
use clap::Subcommand;

pub(super) fn pair(ctx: &Ctx, io: &mut Io, cmd: PairCommand) -> anyhow::Result<()> {
    if matches!(
        cmd,
        PairCommand::Join {
            same_person: true,
            ..
        }
    ) {
        // Said before the daemon is asked anything: this flag can no longer work.
        return Err(crate::error::CliError::Usage {
            message: "`--same-person` is gone: the inviting device now decides whether a code is for its partner or for another device of its own".into(),
            hint: "on your other device run `hearth pair invite --own-device`, then run `hearth pair join CODE` here without the flag".into(),
        }
        .into());
    }
    let mut session = Session::open(ctx)?;
    match cmd {
        PairCommand::Invite {
            timeout,
            own_device,
        } => {
            let invite = session.call(NetCall::PairInvite {
                timeout_secs: timeout,
                own_device,
            })?;
            if !ctx.json {
                let typed: Invite = decode(invite.clone())?;
                let code = typed.code.as_str();
                let addrs = &typed.addresses;
                io.out
                    .line(&format!("Your invite code is {}", io.style.bold(code)))?;
                let whose = if own_device {
                    "On your other device (a fresh one), run"
                } else {
                    "On your partner's device, run"
                };
                io.out.line(&format!(
                    "{whose}: {}",
                    io.style.cmd(&format!("hearth pair join {code}"))
                ))?;
                if own_device {
                    io.out.line(&io.style.dim(
                        "This code adds a device of yours: it will see your private entries. Keep it to yourself.",
                    ))?;
                }
                if !addrs.is_empty() {
                    io.out.line(&format!(
                        "If that device cannot find this one, add {}",
                        io.style
                            .cmd(&format!("--addr {}", addrs.join(" or --addr ")))
                    ))?;
                }
                let minutes = typed.expires_in_secs.div_ceil(60);
                io.out.line(&format!(
                    "Waiting up to {minutes} minute{}. The code works once.",
                    if minutes == 1 { "" } else { "s" }
                ))?;
                io.out.flush()?;
            }
            let result = session.call(NetCall::PairWait)?;
            if ctx.json {
                io.out
                    .json(&json!({ "invite": invite, "result": result }))?;
                return Ok(());
            }
            let used: InviteUsed = decode(result)?;
            if used.role == InviteRole::OwnDevice.as_str() {
                io.out.line(&format!(
                    "Your device {} ({}) joined. It now shares your private entries; if you do not recognise it, remove it with {}.",
                    io.style.bold(&used.device_name),
                    used.device_id,
                    io.style.cmd("hearth devices remove ID")
                ))?;
            } else {
                io.out.line(&format!(
                    "{} joined from {} ({}). Welcome to the household.",
                    used.name, used.device_name, used.device_id
                ))?;
            }
        }
        PairCommand::Join {
            code,
            addr,
            merge,
            same_person: _,
        } => {
            let result = session.call(NetCall::PairJoin { code, addr, merge })?;
            if ctx.json {
                io.out.json(&result)?;
                return Ok(());
            }
            let joined: Joined = decode(result)?;
            let this = &joined.this_device;
            if joined.role == InviteRole::OwnDevice.as_str() {
                io.out.line(&format!(
                    "This device, {} ({}), is now one of {}'s devices. Your private entries and the household will arrive here shortly.",
                    io.style.bold(&this.name),
                    this.id,
                    joined.name
                ))?;
            } else {
                io.out.line(&format!(
                    "You joined {}'s household from this device, {} ({}). Your devices will now keep each other up to date.",
                    joined.name, this.name, this.id
                ))?;
            }
        }
    }
    Ok(())
}

pub(super) fn peers(ctx: &Ctx, io: &mut Io, cmd: PeersCommand) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    match cmd {
        PeersCommand::Add { addr } => {
            let result = session.call(NetCall::PeersAdd { addr })?;
            if ctx.json {
                io.out.json(&result)?;
            } else {
                let added: PeerAdded = decode(result)?;
                io.out.line(&format!(
                    "Added {}; this device will keep reaching out to it.",
                    added.added
                ))?;
            }
        }
    }
    Ok(())
}

pub(super) fn sync(ctx: &Ctx, io: &mut Io) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    let result = session.call(NetCall::SyncNow)?;
    if ctx.json {
        io.out.json(&result)?;
    } else {
        io.out
            .line("Syncing with every paired device that can be reached now.")?;
    }
    Ok(())
}

// ----- command line ----------------------------------------------------------------

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

/// `hearth peers ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PeersCommand {
    /// Remember a device's address, HOST:PORT, and keep reaching out to it.
    Add {
        /// HOST:PORT.
        addr: String,
    },
}
