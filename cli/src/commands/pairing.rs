//! `pair`, `peers` and `sync`: bringing a partner's device into the household and
//! keeping the two in touch.

use hearthd::api::Call;
use serde_json::{json, Value};

use crate::args::{PairCommand, PeersCommand};
use crate::commands::{Io, Session};
use crate::daemonctl::Ctx;

pub(super) fn pair(ctx: &Ctx, io: &mut Io, cmd: PairCommand) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    match cmd {
        PairCommand::Invite { timeout } => {
            let invite = session.call(Call::PairInvite {
                timeout_secs: timeout,
            })?;
            if !ctx.json {
                let code = invite["code"].as_str().unwrap_or_default();
                let addrs: Vec<&str> = invite["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                io.out
                    .line(&format!("Your invite code is {}", io.style.bold(code)))?;
                io.out.line(&format!(
                    "On your partner's device, run: {}",
                    io.style.cmd(&format!("hearth pair join {code}"))
                ))?;
                io.out.line(&io.style.dim(&format!(
                    "(For another device of your own, add {}.)",
                    io.style.cmd("--same-person")
                )))?;
                if !addrs.is_empty() {
                    io.out.line(&format!(
                        "If their device cannot find this one, add {}",
                        io.style
                            .cmd(&format!("--addr {}", addrs.join(" or --addr ")))
                    ))?;
                }
                let minutes = invite["expires_in_secs"]
                    .as_u64()
                    .unwrap_or(600)
                    .div_ceil(60);
                io.out.line(&format!(
                    "Waiting up to {minutes} minute{}. The code works once.",
                    if minutes == 1 { "" } else { "s" }
                ))?;
                io.out.flush()?;
            }
            let result = session.call(Call::PairWait)?;
            if ctx.json {
                io.out
                    .json(&json!({ "invite": invite, "result": result }))?;
            } else {
                io.out.line(&format!(
                    "{} joined. Welcome to the household.",
                    result["name"].as_str().unwrap_or("Your partner")
                ))?;
            }
        }
        PairCommand::Join {
            code,
            addr,
            merge,
            same_person,
        } => {
            let call = if same_person {
                Call::PairJoinSamePerson { code, addr }
            } else {
                Call::PairJoin { code, addr, merge }
            };
            let result = session.call(call)?;
            if ctx.json {
                io.out.json(&result)?;
            } else if same_person {
                io.out.line(&format!(
                    "This device is now one of {}'s devices. Your private entries and the household will arrive here shortly.",
                    result["name"].as_str().unwrap_or("your")
                ))?;
            } else {
                io.out.line(&format!(
                    "You joined {}'s household. Your devices will now keep each other up to date.",
                    result["name"].as_str().unwrap_or("your partner")
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
            let result = session.call(Call::PeersAdd { addr })?;
            if ctx.json {
                io.out.json(&result)?;
            } else {
                io.out.line(&format!(
                    "Added {}; this device will keep reaching out to it.",
                    result["added"].as_str().unwrap_or_default()
                ))?;
            }
        }
    }
    Ok(())
}

pub(super) fn sync(ctx: &Ctx, io: &mut Io) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    let result = session.call(Call::SyncNow)?;
    if ctx.json {
        io.out.json(&result)?;
    } else {
        io.out
            .line("Syncing with every paired device that can be reached now.")?;
    }
    Ok(())
}
