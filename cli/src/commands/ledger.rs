//! `hearth ledger ...`: the household's responsibilities, who holds each stage, what was
//! done, acknowledgments, and handoffs with their answers.

use hearth_api::{AckParams, AnswerParams, DocCall, DoneParams, HandoffParams, LedgerAddParams};
use hearth_core::model::{AckKind, HandoffState, TargetKind};

use super::{write, Io, Session};
use crate::args::{IdArgs, LedgerCommand};
use crate::daemonctl::Ctx;
use crate::render;

pub(super) fn run(ctx: &Ctx, io: &mut Io, cmd: LedgerCommand) -> anyhow::Result<()> {
    match cmd {
        LedgerCommand::Add(a) => {
            let params = LedgerAddParams {
                title: a.title,
                domain: a.domain,
                labour: a.labour.unwrap_or(hearth_core::model::Labour::Physical),
                invisible: a.invisible,
                owners: a.stages.into_iter().collect(),
                owner: a.owner,
                cadence: a.cadence,
                minutes_per_week: a.minutes,
                weight: a.weight.unwrap_or(2),
                good_enough: a.good_enough,
                at: a.at.resolve(),
            };
            write(ctx, io, "item", DocCall::LedgerAdd(params))
        }
        LedgerCommand::List { all } => {
            let mut session = Session::open(ctx)?;
            let call = DocCall::LedgerList { all };
            if ctx.json {
                io.out.json(&session.call(call)?)?;
                return Ok(());
            }
            let (items, names) = session.call_named(call)?;
            let items = items.as_array().cloned().unwrap_or_default();
            io.out
                .write(&render::ledger_list(&items, &names, io.style))?;
            Ok(())
        }
        LedgerCommand::Show { id } => {
            let mut session = Session::open(ctx)?;
            let call = DocCall::LedgerShow { id };
            if ctx.json {
                io.out.json(&session.call(call)?)?;
                return Ok(());
            }
            let (shown, names) = session.call_named(call)?;
            io.out
                .write(&render::ledger_show(&shown, &names, io.style))?;
            Ok(())
        }
        LedgerCommand::Done(a) => {
            let params = DoneParams {
                item: a.item,
                label: a.label,
                by: a.by,
                minutes: a.minutes,
                note: a.note,
                at: a.at.resolve(),
            };
            write(ctx, io, "done", DocCall::LedgerDone(params))
        }
        LedgerCommand::Ack(a) => {
            let params = AckParams {
                target_kind: a.on.unwrap_or(TargetKind::Item),
                target: a.target,
                kind: a.kind.unwrap_or(AckKind::Seen),
                to: a.to,
                note: a.note,
                at: a.at.resolve(),
            };
            write(ctx, io, "ack", DocCall::LedgerAck(params))
        }
        LedgerCommand::Handoff(a) => {
            let params = HandoffParams {
                item: a.item,
                stage: a.stage,
                to: a.to,
                note: a.note,
                at: a.at.resolve(),
            };
            write(ctx, io, "handoff", DocCall::LedgerHandoff(params))
        }
        LedgerCommand::Accept(a) => answer(ctx, io, a, HandoffState::Accepted, None),
        LedgerCommand::Decline(a) => answer(ctx, io, a, HandoffState::Declined, None),
        LedgerCommand::Withdraw(a) => answer(ctx, io, a, HandoffState::Withdrawn, None),
        LedgerCommand::Counter(a) => {
            let id = IdArgs { id: a.id, at: a.at };
            answer(ctx, io, id, HandoffState::Countered, Some(a.proposal))
        }
        LedgerCommand::Edit(a) => {
            let params = hearth_api::LedgerEditParams {
                id: a.id,
                title: a.title,
                owners: a.stages.into_iter().collect(),
                cadence: a.cadence,
                weight: a.weight,
                minutes_per_week: a.minutes,
                good_enough: a.good_enough,
                at: a.at.resolve(),
            };
            write(ctx, io, "edited", DocCall::LedgerEdit(params))
        }
        LedgerCommand::Pause { id, until } => {
            write(ctx, io, "paused", DocCall::LedgerPause { id, until })
        }
        LedgerCommand::Resume { id } => write(ctx, io, "resumed", DocCall::LedgerResume { id }),
        LedgerCommand::Starter { add } => starter(ctx, io, add),
        LedgerCommand::Agree(a) => {
            let call = DocCall::LedgerAgree {
                id: a.id,
                at: a.at.resolve(),
            };
            write(ctx, io, "agreed", call)
        }
        LedgerCommand::Retire(a) => {
            let call = DocCall::LedgerRetire {
                id: a.id,
                at: a.at.resolve(),
            };
            write(ctx, io, "retired", call)
        }
    }
}

fn answer(
    ctx: &Ctx,
    io: &mut Io,
    args: IdArgs,
    answer: HandoffState,
    counter: Option<String>,
) -> anyhow::Result<()> {
    let params = AnswerParams {
        handoff: args.id,
        answer,
        counter,
        at: args.at.resolve(),
    };
    write(ctx, io, "handoff", DocCall::LedgerAnswer(params))
}

/// `hearth ledger starter`: offers the starter list; adds only what was chosen.
fn starter(ctx: &Ctx, io: &mut Io, add: Vec<String>) -> anyhow::Result<()> {
    use hearth_core::starter::{by_key, STARTER};
    let chosen: Vec<&hearth_core::starter::StarterItem> = if !add.is_empty() {
        let mut chosen = Vec::new();
        for key in &add {
            let item = by_key(key).ok_or_else(|| crate::error::CliError::Usage {
                message: format!("`{key}` is not on the starter list"),
                hint: "the keys are peace, moods, school, health and dates".into(),
            })?;
            chosen.push(item);
        }
        chosen
    } else if crate::prompt::interactive() {
        let labels: Vec<String> = STARTER.iter().map(|s| s.title.to_string()).collect();
        crate::prompt::pick_many("Which of these does your household carry?", &labels)?
            .into_iter()
            .filter_map(|i| STARTER.get(i))
            .collect()
    } else {
        // Nothing chosen and nobody to ask: show the list and how to add from it.
        if ctx.json {
            let list: Vec<serde_json::Value> = STARTER
                .iter()
                .map(|s| serde_json::json!({"key": s.key, "title": s.title, "domain": s.domain, "labour": s.labour, "cadence": s.cadence}))
                .collect();
            io.out.json(&serde_json::Value::Array(list))?;
        } else {
            for s in &STARTER {
                io.out.line(&format!("  {:<8}{}", s.key, s.title))?;
            }
            io.out
                .line("Add what is true for you with `hearth ledger starter --add peace,dates`.")?;
        }
        return Ok(());
    };
    let mut session = Session::open(ctx)?;
    let mut added = Vec::new();
    for s in chosen {
        added.push(session.call(DocCall::LedgerAdd(LedgerAddParams {
            title: s.title.to_string(),
            domain: s.domain,
            labour: s.labour,
            invisible: true,
            owners: Default::default(),
            owner: None,
            cadence: Some(s.cadence),
            minutes_per_week: None,
            weight: 2,
            good_enough: None,
            at: hearth_api::At::default(),
        }))?);
    }
    if ctx.json {
        io.out.json(&serde_json::Value::Array(added))?;
    } else if added.is_empty() {
        io.out.line("Nothing added.")?;
    } else {
        let names = session.names()?;
        for item in &added {
            io.out
                .write(&render::created("item", item, &names, io.style))?;
        }
    }
    Ok(())
}
