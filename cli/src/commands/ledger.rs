//! `hearth ledger ...`: the household's responsibilities, who holds each stage, what was
//! done, acknowledgments, and handoffs with their answers.

use hearth_api::{
    AckParams, AnswerParams, DocCall, DoneParams, HandoffParams, ItemHistory, ItemSaved,
    LedgerAddParams,
};
use hearth_core::model::{
    AckKind, Cadence, Domain, HandoffState, Labour, LedgerItem, Stage, TargetKind,
};
use std::fmt::Write as _;

use super::{decode, write, Io, Session};
use crate::args::{parse_date, parse_key, parse_stage_owner, AtArg};
use crate::daemonctl::Ctx;
use crate::out::Style;
use crate::render;
use crate::render::{short_id, table, when_of, Names};
use chrono::NaiveDate;
use clap::{Args, Subcommand};

pub(super) fn run(ctx: &Ctx, io: &mut Io, cmd: LedgerCommand) -> anyhow::Result<()> {
    match cmd {
        LedgerCommand::Add(a) => {
            let params = LedgerAddParams {
                title: a.title,
                domain: a.domain,
                labour: a.labour.unwrap_or(LedgerAddParams::DEFAULT_LABOUR),
                invisible: a.invisible,
                owners: a.stages.into_iter().collect(),
                owner: a.owner,
                cadence: a.cadence,
                minutes_per_week: a.minutes,
                weight: a.weight.unwrap_or(LedgerAddParams::DEFAULT_WEIGHT),
                good_enough: a.good_enough,
                at: a.at.resolve(),
            };
            write(ctx, io, DocCall::LedgerAdd(params), render::item_added)
        }
        LedgerCommand::List { all } => {
            let mut session = Session::open(ctx)?;
            let call = DocCall::LedgerList { all };
            if ctx.json {
                io.out.json(&session.call(call)?)?;
                return Ok(());
            }
            let (items, names) = session.call_named::<Vec<LedgerItem>>(call)?;
            io.out.write(&ledger_list(&items, &names, io.style))?;
            Ok(())
        }
        LedgerCommand::Show { id } => {
            let mut session = Session::open(ctx)?;
            let call = DocCall::LedgerShow { id };
            if ctx.json {
                io.out.json(&session.call(call)?)?;
                return Ok(());
            }
            let (shown, names) = session.call_named::<ItemHistory>(call)?;
            io.out.write(&ledger_show(&shown, &names, io.style))?;
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
            write(ctx, io, DocCall::LedgerDone(params), render::done_saved)
        }
        LedgerCommand::Ack(a) => {
            let params = AckParams {
                target_kind: a.on.unwrap_or(TargetKind::Item),
                target: a.target,
                kind: a.kind.unwrap_or(AckParams::DEFAULT_KIND),
                to: a.to,
                note: a.note,
                at: a.at.resolve(),
            };
            write(ctx, io, DocCall::LedgerAck(params), render::ack_sent)
        }
        LedgerCommand::Handoff(a) => {
            let params = HandoffParams {
                item: a.item,
                stage: a.stage,
                to: a.to,
                note: a.note,
                at: a.at.resolve(),
            };
            write(
                ctx,
                io,
                DocCall::LedgerHandoff(params),
                render::handoff_saved,
            )
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
            write(ctx, io, DocCall::LedgerEdit(params), render::item_edited)
        }
        LedgerCommand::Pause { id, until } => write(
            ctx,
            io,
            DocCall::LedgerPause { id, until },
            render::item_paused,
        ),
        LedgerCommand::Resume { id } => {
            write(ctx, io, DocCall::LedgerResume { id }, render::item_resumed)
        }
        LedgerCommand::Starter { add } => starter(ctx, io, add),
        LedgerCommand::Agree(a) => {
            let call = DocCall::LedgerAgree {
                id: a.id,
                at: a.at.resolve(),
            };
            write(ctx, io, call, render::item_agreed)
        }
        LedgerCommand::Retire(a) => {
            let call = DocCall::LedgerRetire {
                id: a.id,
                at: a.at.resolve(),
            };
            write(ctx, io, call, render::item_retired)
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
    write(
        ctx,
        io,
        DocCall::LedgerAnswer(params),
        render::handoff_saved,
    )
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
            weight: LedgerAddParams::DEFAULT_WEIGHT,
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
        for item in added {
            let item: ItemSaved = decode(item)?;
            io.out.write(&render::item_added(&item, &names, io.style))?;
        }
    }
    Ok(())
}

// ----- command line ----------------------------------------------------------------

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

// ----- rendering -------------------------------------------------------------------

fn owner_cell(item: &LedgerItem, stage: Stage, names: &Names) -> String {
    match item.owners.get(stage) {
        Some(id) => names.of(&id),
        None => "-".into(),
    }
}

/// `hearth ledger list`.
pub(crate) fn ledger_list(items: &[LedgerItem], names: &Names, style: Style) -> String {
    if items.is_empty() {
        return format!(
            "The ledger is empty. Add what the household carries with {}\n",
            style.cmd("hearth ledger add TITLE --domain household")
        );
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let mut title = item.title.clone();
            if item.invisible {
                title.push_str(" (invisible)");
            }
            vec![
                short_id(&item.id.to_string()).to_string(),
                title,
                item.domain.to_string(),
                item.weight.to_string(),
                owner_cell(item, Stage::Notice, names),
                owner_cell(item, Stage::Plan, names),
                owner_cell(item, Stage::Do, names),
                owner_cell(item, Stage::FollowUp, names),
                item.status.to_string(),
            ]
        })
        .collect();
    table(
        style,
        &[
            "ID",
            "TITLE",
            "DOMAIN",
            "WEIGHT",
            "NOTICE",
            "PLAN",
            "DO",
            "FOLLOW-UP",
            "STATUS",
        ],
        &rows,
    )
}

/// `hearth ledger show`.
pub(crate) fn ledger_show(shown: &ItemHistory, names: &Names, style: Style) -> String {
    let item = &shown.item;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {}",
        style.bold(&item.title),
        style.dim(&item.id.to_string())
    );
    let field = |out: &mut String, name: &str, value: String| {
        if !value.is_empty() {
            let _ = writeln!(out, "  {}{value}", style.dim(&format!("{name:<14}")));
        }
    };
    let mut kind = format!("{}, {}", item.domain, item.labour);
    if item.invisible {
        kind.push_str(", invisible");
    }
    field(&mut out, "kind", kind);
    field(&mut out, "weight", item.weight.to_string());
    field(&mut out, "status", item.status.to_string());
    let mut rhythm = Vec::new();
    if let Some(c) = item.cadence {
        rhythm.push(c.to_string());
    }
    if let Some(m) = item.minutes_per_week {
        rhythm.push(format!("about {m} min a week"));
    }
    field(&mut out, "rhythm", rhythm.join(", "));
    for stage in Stage::ALL {
        field(&mut out, stage.key(), owner_cell(item, *stage, names));
    }
    field(&mut out, "good enough", item.good_enough.clone());
    // Agreed once everyone in the household has agreed (`hearth ledger agree`).
    let agreed: Vec<String> = item.agreed_by.iter().map(|p| p.to_string()).collect();
    let everyone = !names.by_id.is_empty() && names.by_id.keys().all(|p| agreed.contains(p));
    let agreement = if everyone && names.by_id.len() > 1 {
        "agreed by both of you".to_string()
    } else {
        let by: Vec<String> = agreed.iter().map(|p| names.name(p)).collect();
        format!(
            "agreed by {} so far (`hearth ledger agree` to add yours)",
            if by.is_empty() {
                "nobody".to_string()
            } else {
                by.join(" and ")
            }
        )
    };
    field(&mut out, "agreed", agreement);

    let _ = writeln!(out, "\n{}", style.bold("Done"));
    if shown.done.is_empty() {
        let _ = writeln!(out, "  nothing recorded yet");
    }
    for d in &shown.done {
        let minutes = d.minutes.map(|m| format!(" ({m} min)")).unwrap_or_default();
        let note = d
            .note
            .as_deref()
            .map(|n| format!(" — {n}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  {}{minutes}{note}  {}",
            when_of(&d.when),
            names.of(&d.by),
            style.dim(short_id(&d.id.to_string()))
        );
    }
    if !shown.handoffs.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Handoffs"));
        for h in &shown.handoffs {
            let counter = h
                .counter
                .as_deref()
                .map(|c| format!(" — counter: {c}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  {} from {} to {}: {}{counter}  {}",
                when_of(&h.when),
                h.stage,
                names.of(&h.from),
                names.of(&h.to),
                h.state,
                style.dim(short_id(&h.id.to_string()))
            );
        }
    }
    if !shown.acks.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Acknowledgments"));
        for a in &shown.acks {
            let note = a
                .note
                .as_deref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  {} to {}: {}{note}",
                when_of(&a.when),
                names.of(&a.from),
                names.of(&a.to),
                a.kind
            );
        }
    }
    out
}
