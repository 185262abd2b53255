//! `hearth ledger ...`: the household's responsibilities, who holds each stage, what was
//! done, acknowledgments, and handoffs with their answers.

use hearth_core::model::{AckKind, HandoffState, TargetKind};
use hearthd::api::{AckParams, AnswerParams, Call, DoneParams, HandoffParams, LedgerAddParams};

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
            write(ctx, io, "item", Call::LedgerAdd(params))
        }
        LedgerCommand::List { all } => {
            let mut session = Session::open(ctx)?;
            let items = session.call(Call::LedgerList { all })?;
            if ctx.json {
                io.out.json(&items)?;
                return Ok(());
            }
            let names = session.names()?;
            let items = items.as_array().cloned().unwrap_or_default();
            io.out
                .write(&render::ledger_list(&items, &names, io.style))?;
            Ok(())
        }
        LedgerCommand::Show { id } => {
            let mut session = Session::open(ctx)?;
            let shown = session.call(Call::LedgerShow { id })?;
            if ctx.json {
                io.out.json(&shown)?;
                return Ok(());
            }
            let names = session.names()?;
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
            write(ctx, io, "done", Call::LedgerDone(params))
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
            write(ctx, io, "ack", Call::LedgerAck(params))
        }
        LedgerCommand::Handoff(a) => {
            let params = HandoffParams {
                item: a.item,
                stage: a.stage,
                to: a.to,
                note: a.note,
                at: a.at.resolve(),
            };
            write(ctx, io, "handoff", Call::LedgerHandoff(params))
        }
        LedgerCommand::Accept(a) => answer(ctx, io, a, HandoffState::Accepted, None),
        LedgerCommand::Decline(a) => answer(ctx, io, a, HandoffState::Declined, None),
        LedgerCommand::Withdraw(a) => answer(ctx, io, a, HandoffState::Withdrawn, None),
        LedgerCommand::Counter(a) => {
            let id = IdArgs { id: a.id, at: a.at };
            answer(ctx, io, id, HandoffState::Countered, Some(a.proposal))
        }
        LedgerCommand::Agree(a) => {
            let call = Call::LedgerAgree {
                id: a.id,
                at: a.at.resolve(),
            };
            write(ctx, io, "agreed", call)
        }
        LedgerCommand::Retire(a) => {
            let call = Call::LedgerRetire {
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
    write(ctx, io, "handoff", Call::LedgerAnswer(params))
}
