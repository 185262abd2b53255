//! `hearth demo`: two partners' devices on this machine, from first start to converged.
//!
//! It runs two real daemons in temporary directories, with QUIC on loopback ports the
//! system picks and discovery off, so nothing leaves this machine. They pair through the
//! real pairing flow, write as both partners (two weeks of back-filled check-ins, the
//! ledger, moments, a handoff), then write while apart, and the demo waits on their event
//! streams until both hold the same documents.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use hearth_api::client::Client;
use hearth_api::paths::Paths;
use hearth_api::{
    AckParams, AnswerParams, At, Call, CheckinParams, DaemonCall, DocCall, DoneParams, DoneSaved,
    HandoffParams, Invite, ItemSaved, LedgerAddParams, LogEntry, MomentParams, NetCall,
    ReflectParams, Status,
};
use hearth_core::model::{
    AckKind, Answer, Basic, BasicLevel, BodySign, BurnoutSign, Domain, Handoff, HandoffState,
    Labour, MomentKind, Stage, TargetKind, Visibility,
};
use serde_json::Value;

use crate::args::DemoArgs;
use crate::commands::Io;
use crate::daemonctl::{self, Ctx};

/// How long the demo waits for the two devices to agree.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

struct Device {
    name: &'static str,
    ctx: Ctx,
    client: Client,
}

impl Device {
    /// Starts this device's daemon listening on `listen`.
    fn start(name: &'static str, dir: &Path, listen: &str) -> anyhow::Result<Device> {
        // The child daemon inherits these: loopback only, no multicast at all.
        std::env::set_var("HEARTH_LISTEN", listen);
        std::env::set_var("HEARTH_DISCOVERY", "off");
        let ctx = Ctx {
            paths: Paths::in_dir(dir),
            json: false,
            verbose: 0,
            passphrase_file: None,
        };
        let client =
            daemonctl::start(&ctx).with_context(|| format!("could not start {name}'s daemon"))?;
        Ok(Device { name, ctx, client })
    }

    fn call(&mut self, call: impl Into<Call>) -> anyhow::Result<Value> {
        self.client
            .call(call)
            .with_context(|| format!("{}'s device refused a demo step", self.name))
    }

    /// One call, its answer read into the protocol type `T`.
    fn call_as<T: serde::de::DeserializeOwned>(
        &mut self,
        call: impl Into<Call>,
    ) -> anyhow::Result<T> {
        Ok(crate::commands::decode(self.call(call)?)?)
    }

    fn stop(self) -> anyhow::Result<()> {
        daemonctl::stop(&self.ctx)?;
        Ok(())
    }

    fn status(&mut self) -> anyhow::Result<Status> {
        self.client
            .call_as(DaemonCall::Status)
            .with_context(|| format!("{}'s device refused a demo step", self.name))
    }

    fn listen(&mut self) -> anyhow::Result<String> {
        self.status()?
            .listen
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{}'s daemon listens on no address", self.name))
    }

    fn household_heads(&mut self) -> anyhow::Result<Vec<String>> {
        self.status()?
            .documents
            .into_iter()
            .find(|d| d.id == "household")
            .map(|d| d.heads)
            .ok_or_else(|| anyhow!("no household document"))
    }
}

fn local_offset_min() -> i32 {
    chrono::Local::now().offset().local_minus_utc() / 60
}

/// A moment `days` ago at `hour` local time.
fn days_ago(days: i64, hour: u32) -> At {
    let now = chrono::Local::now();
    let date = now.date_naive() - chrono::Duration::days(days);
    let at = date
        .and_hms_opt(hour, 0, 0)
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .map(|t| t.timestamp_millis())
        .filter(|ms| *ms <= now.timestamp_millis())
        .unwrap_or_else(|| now.timestamp_millis());
    At {
        at: Some(at),
        utc_offset_min: local_offset_min(),
    }
}

fn now_at() -> At {
    At {
        at: None,
        utc_offset_min: local_offset_min(),
    }
}

/// Runs the demo.
pub(crate) fn run(io: &mut Io, args: DemoArgs) -> anyhow::Result<()> {
    let root = tempfile::Builder::new()
        .prefix("hearth-demo-")
        .tempdir()
        .context("could not create a temporary directory for the demo")?;
    let ada_dir = root.path().join("ada");
    let bo_dir = root.path().join("bo");
    let outcome = script(io, &ada_dir, &bo_dir);
    if args.keep {
        let kept: PathBuf = root.keep();
        io.out.line(&format!(
            "The two data directories are kept in {}; stop the daemons with `hearth daemon stop --data-dir {}/ada` (and bo).",
            kept.display(),
            kept.display()
        ))?;
    } else {
        // Stop anything still running before the directories go away.
        for dir in [&ada_dir, &bo_dir] {
            let ctx = Ctx {
                paths: Paths::in_dir(dir),
                json: false,
                verbose: 0,
                passphrase_file: None,
            };
            let _ = daemonctl::stop(&ctx);
        }
        drop(root);
    }
    outcome
}

fn script(io: &mut Io, ada_dir: &Path, bo_dir: &Path) -> anyhow::Result<()> {
    let style = io.style;
    let step = |io: &mut Io, text: &str| -> anyhow::Result<()> {
        io.out.line(&format!("{} {text}", style.dim("·")))?;
        io.out.flush()?;
        Ok(())
    };

    step(io, "Starting two devices on this machine (loopback only)")?;
    let mut ada = Device::start("Ada", ada_dir, "127.0.0.1:0")?;
    let mut bo = Device::start("Bo", bo_dir, "127.0.0.1:0")?;
    ada.call(DaemonCall::Init {
        name: "Ada".into(),
        device_name: Some("Ada's laptop".into()),
        passphrase: None,
    })?;
    bo.call(DaemonCall::Init {
        name: "Bo".into(),
        device_name: Some("Bo's desktop".into()),
        passphrase: None,
    })?;

    step(io, "Pairing them with a one-time code")?;
    let invite: Invite = ada.call_as(NetCall::PairInvite {
        timeout_secs: Some(60),
        own_device: false,
    })?;
    let code = invite.code;
    let addr = invite.addresses.into_iter().next();
    let waiter = {
        let socket = ada.ctx.paths.socket.clone();
        std::thread::spawn(move || -> anyhow::Result<Value> {
            Ok(Client::connect(&socket)?.call(NetCall::PairWait)?)
        })
    };
    bo.call(NetCall::PairJoin {
        code: code.clone(),
        addr,
        merge: false,
    })?;
    waiter
        .join()
        .map_err(|_| anyhow!("the pairing wait stopped unexpectedly"))??;
    step(io, &format!("Paired with code {code}"))?;

    step(io, "Writing two weeks as both partners")?;
    write_history(&mut ada, &mut bo)?;
    let heads = converge(&mut ada, &mut bo)?;
    step(io, &format!("Both devices agree ({} head)", heads.len()))?;

    step(io, "Bo's device goes offline; both keep writing apart")?;
    let ada_listen = ada.listen()?;
    bo.stop()?;
    ada.call(DocCall::CheckinAdd(CheckinParams {
        battery: 35,
        signs: [(BurnoutSign::Irritation, 2)].into(),
        basics: [(Basic::Rest, BasicLevel::No)].into(),
        note: Some("Short fuse today; I need a quiet evening".into()),
        visibility: Some(Visibility::Shared),
        at: now_at(),
        ..Default::default()
    }))?;
    ada.stop()?;
    let mut bo = Device::start("Bo", bo_dir, "127.0.0.1:0")?;
    bo.call(DocCall::MomentAdd(MomentParams {
        kind: MomentKind::Laugh,
        started_by: None,
        note: Some("Sent Ada the photo of the cat in the laundry basket".into()),
        at: now_at(),
    }))?;
    bo.call(DocCall::CheckinAdd(CheckinParams {
        battery: 60,
        basics: [(Basic::Sleep, BasicLevel::Met)].into(),
        visibility: Some(Visibility::Private),
        note: Some("Slept well for once".into()),
        at: now_at(),
        ..Default::default()
    }))?;
    step(
        io,
        "Ada's device comes back; they find each other and catch up",
    )?;
    let mut ada = Device::start("Ada", ada_dir, &ada_listen)?;
    let started = Instant::now();
    let heads = converge(&mut ada, &mut bo)?;
    let took = started.elapsed();

    summary(io, &mut ada, &mut bo)?;
    let records = record_total(&mut ada)?;
    io.out.line(&format!(
        "demo: converged — Ada's and Bo's devices hold the same household ({records} shared records, heads {}) after catching up in {} ms",
        heads.iter().map(|h| &h[..h.len().min(8)]).collect::<Vec<_>>().join(","),
        took.as_millis()
    ))?;
    ada.stop()?;
    bo.stop()?;
    Ok(())
}

fn write_history(ada: &mut Device, bo: &mut Device) -> anyhow::Result<()> {
    let meals: ItemSaved = ada.call_as(DocCall::LedgerAdd(LedgerAddParams {
        title: "Plan the week's meals".into(),
        domain: Domain::Household,
        labour: Labour::Cognitive,
        invisible: true,
        owners: [(Stage::Do, "partner".to_string())].into(),
        owner: None,
        cadence: Some(hearth_core::model::Cadence::Weekly),
        minutes_per_week: Some(60),
        weight: 2,
        good_enough: Some("Five dinners sketched; leftovers count".into()),
        at: days_ago(14, 10),
    }))?;
    let bins: ItemSaved = bo.call_as(DocCall::LedgerAdd(LedgerAddParams {
        title: "Bins and recycling".into(),
        domain: Domain::Household,
        labour: Labour::Physical,
        invisible: false,
        owners: Default::default(),
        owner: None,
        cadence: Some(hearth_core::model::Cadence::Weekly),
        minutes_per_week: Some(20),
        weight: 1,
        good_enough: Some("Out by Tuesday night".into()),
        at: days_ago(14, 11),
    }))?;
    ada.call(DocCall::LedgerAdd(LedgerAddParams {
        title: "Remember birthdays and gifts".into(),
        domain: Domain::Social,
        labour: Labour::Emotional,
        invisible: true,
        owners: Default::default(),
        owner: None,
        cadence: Some(hearth_core::model::Cadence::Monthly),
        minutes_per_week: Some(30),
        weight: 2,
        good_enough: Some("A card on time; no grand gestures needed".into()),
        at: days_ago(13, 9),
    }))?;
    for day in (1..=14).rev() {
        let ada_battery = 70 - (14 - day as u8) * 3;
        ada.call(DocCall::CheckinAdd(CheckinParams {
            battery: ada_battery,
            signs: [
                (BurnoutSign::Irritation, if day < 6 { 3 } else { 1 }),
                (BurnoutSign::Warmth, if day < 6 { 2 } else { 1 }),
            ]
            .into(),
            body: if day < 6 {
                [BodySign::Fatigue, BodySign::Sleep].into()
            } else {
                Default::default()
            },
            basics: [
                (
                    Basic::Sleep,
                    if day < 6 {
                        BasicLevel::Partly
                    } else {
                        BasicLevel::Met
                    },
                ),
                (Basic::Food, BasicLevel::Met),
            ]
            .into(),
            visibility: Some(if day % 5 == 0 {
                Visibility::Private
            } else {
                Visibility::Shared
            }),
            at: days_ago(day, 21),
            ..Default::default()
        }))?;
        bo.call(DocCall::CheckinAdd(CheckinParams {
            battery: 55 + (day as u8 % 4) * 5,
            signs: [(BurnoutSign::Numb, 1)].into(),
            basics: [(
                Basic::Rest,
                if day % 3 == 0 {
                    BasicLevel::No
                } else {
                    BasicLevel::Met
                },
            )]
            .into(),
            visibility: Some(Visibility::Shared),
            at: days_ago(day, 22),
            ..Default::default()
        }))?;
        if day % 3 == 0 {
            bo.call(DocCall::LedgerDone(DoneParams {
                item: Some(bins.item.id.to_string()),
                minutes: Some(15),
                at: days_ago(day, 19),
                ..Default::default()
            }))?;
        }
        if day % 2 == 0 {
            let starter = if day % 4 == 0 { &mut *ada } else { &mut *bo };
            starter.call(DocCall::MomentAdd(MomentParams {
                kind: if day % 4 == 0 {
                    MomentKind::Talk
                } else {
                    MomentKind::Quiet
                },
                started_by: None,
                note: None,
                at: days_ago(day, 20),
            }))?;
        }
    }
    let done: DoneSaved = ada.call_as(DocCall::LedgerDone(DoneParams {
        item: Some(meals.item.id.to_string()),
        minutes: Some(45),
        note: Some("Sunday planning".into()),
        at: days_ago(7, 17),
        ..Default::default()
    }))?;
    bo.call(DocCall::LedgerAck(AckParams {
        target_kind: TargetKind::Done,
        target: done.done.id.to_string(),
        kind: AckKind::Thanks,
        to: Some("partner".into()),
        note: Some("I never see how much this takes. Thank you.".into()),
        at: days_ago(6, 8),
    }))
    .or_else(|_| -> anyhow::Result<Value> {
        // The ack needs Bo's device to have Ada's done entry; sync first and retry.
        converge(ada, bo)?;
        bo.call(DocCall::LedgerAck(AckParams {
            target_kind: TargetKind::Done,
            target: done.done.id.to_string(),
            kind: AckKind::Thanks,
            to: Some("partner".into()),
            note: Some("I never see how much this takes. Thank you.".into()),
            at: days_ago(6, 8),
        }))
    })?;
    let handoff: Handoff = ada.call_as(DocCall::LedgerHandoff(HandoffParams {
        item: meals.item.id.to_string(),
        stage: Stage::Plan,
        to: Some("partner".into()),
        note: Some("Could you take the planning for a month?".into()),
        at: days_ago(3, 20),
    }))?;
    converge(ada, bo)?;
    bo.call(DocCall::LedgerAnswer(AnswerParams {
        handoff: handoff.id.to_string(),
        answer: HandoffState::Accepted,
        counter: None,
        at: days_ago(2, 9),
    }))?;
    ada.call(DocCall::ReflectAdd(ReflectParams {
        energy: Answer::Yes,
        safe: Answer::Yes,
        aligned: Answer::Unsure,
        note: None,
        visibility: Some(Visibility::Private),
        at: days_ago(1, 21),
    }))?;
    Ok(())
}

/// Waits until both devices hold the same household document, waking on events.
fn converge(ada: &mut Device, bo: &mut Device) -> anyhow::Result<Vec<String>> {
    let mut subs = [&ada.ctx, &bo.ctx]
        .iter()
        .map(|ctx| -> anyhow::Result<_> {
            let mut sub = Client::connect(&ctx.paths.socket)?.subscribe()?;
            sub.set_timeout(Some(Duration::from_millis(250)))?;
            Ok(sub)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let (a, b) = (ada.household_heads()?, bo.household_heads()?);
        if a == b {
            return Ok(a);
        }
        if Instant::now() > deadline {
            bail!(
                "the two devices did not agree within {} seconds; their logs are in the data directories (run with --keep)",
                CONVERGE_TIMEOUT.as_secs()
            );
        }
        for sub in &mut subs {
            sub.next_event()?;
        }
    }
}

fn record_total(device: &mut Device) -> anyhow::Result<u64> {
    let status: Status = device.call_as(DaemonCall::Status)?;
    Ok(status
        .documents
        .iter()
        .filter(|d| d.id == "household")
        .flat_map(|d| d.records.values())
        .map(|n| *n as u64)
        .sum())
}

fn summary(io: &mut Io, ada: &mut Device, bo: &mut Device) -> anyhow::Result<()> {
    io.out.line("")?;
    for device in [&mut *ada, &mut *bo] {
        let entries: Vec<LogEntry> = device.call_as(DocCall::Log(Default::default()))?;
        let count = |kind: &str| entries.iter().filter(|e| e.kind == kind).count();
        io.out.line(&format!(
            "{}'s device sees {} check-ins, {} moments, {} done entries and {} thank-yous (its own private entries included)",
            device.name,
            count("checkins"),
            count("moments"),
            count("done"),
            count("acks")
        ))?;
    }
    let insights = ada.call(DocCall::Insights {
        weeks: Some(4),
        include_private: false,
        utc_offset_min: local_offset_min(),
    })?;
    if let Ok(report) = serde_json::from_value::<hearth_core::insights::Insights>(insights) {
        io.out.line("")?;
        io.out
            .line("What Ada's device notices (shared entries only):")?;
        io.out.write(&hearth_core::insights::render_terminal(
            &report,
            io.style.enabled(),
        ))?;
    }
    io.out.line("")?;
    Ok(())
}
