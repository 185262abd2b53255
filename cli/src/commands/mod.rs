//! The subcommands: each turns parsed arguments into control API calls and renders the
//! answer. No business logic lives here; the daemon validates, resolves ids and
//! computes, and `render` words the result.

pub(crate) mod bundle;
pub(crate) mod data;
pub(crate) mod devices;
pub(crate) mod entries;
pub(crate) mod ledger;
pub(crate) mod lifecycle;
pub(crate) mod meta;
pub(crate) mod pairing;
pub(crate) mod web;

use hearth_api::client::{Client, ClientError};
use hearth_api::{Call, DaemonCall, Status};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::args::{Cli, Command};
use crate::daemonctl::{self, Ctx};
use crate::out::{Out, Style};
use crate::render::Names;

/// Runs one parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx {
        paths: hearth_api::paths::Paths::resolve(cli.data_dir.as_deref()),
        json: cli.json,
        verbose: cli.verbose,
        passphrase_file: cli.passphrase_file,
    };
    let mut io = Io {
        out: Out::new(),
        style: Style::stdout(),
    };
    let result = dispatch(&ctx, &mut io, cli.command);
    // Flush even after an error, so partial output is not lost; the first error wins.
    let flushed = io.out.flush();
    result?;
    flushed?;
    Ok(())
}

fn dispatch(ctx: &Ctx, io: &mut Io, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init(args) => lifecycle::init(ctx, io, args),
        Command::Daemon(cmd) => lifecycle::daemon(ctx, io, cmd),
        Command::Status => lifecycle::status(ctx, io),
        Command::Today => entries::today(ctx, io),
        Command::Together => entries::together(ctx, io),
        Command::Reply(args) => entries::reply(ctx, io, args),
        Command::Checkin(args) => entries::checkin(ctx, io, args),
        Command::Reflect(args) => entries::reflect(ctx, io, args),
        Command::Moment(args) => entries::moment(ctx, io, args),
        Command::Ledger(cmd) => ledger::run(ctx, io, cmd),
        Command::Log(args) => data::log(ctx, io, args),
        Command::Export(args) => data::export(ctx, io, args),
        Command::Import(args) => data::import(ctx, io, args),
        Command::Bundle(cmd) => bundle::run(ctx, io, cmd),
        Command::Insights(args) => data::insights(ctx, io, args),
        Command::Report(args) => data::report(ctx, io, args),
        Command::Completions(args) => meta::completions(io, args),
        Command::Man(args) => meta::man(io, args),
        Command::Pair(cmd) => pairing::pair(ctx, io, cmd),
        Command::Peers(cmd) => pairing::peers(ctx, io, cmd),
        Command::Sync => pairing::sync(ctx, io),
        Command::Devices(cmd) => devices::devices(ctx, io, cmd),
        Command::Pause(args) => devices::pause(ctx, io, args),
        Command::Resume => devices::resume(ctx, io),
        Command::Leave(args) => devices::leave(ctx, io, args),
        Command::Demo(args) => crate::demo::run(io, args),
        Command::Open(args) => web::open(ctx, io, args),
    }
}

/// Where a command's output goes.
pub(crate) struct Io {
    pub(crate) out: Out,
    pub(crate) style: Style,
}

/// One connection to the daemon for the length of a command.
pub(crate) struct Session<'a> {
    ctx: &'a Ctx,
    client: Client,
}

impl<'a> Session<'a> {
    /// Connects, starting the daemon if needed and allowed.
    pub(crate) fn open(ctx: &'a Ctx) -> anyhow::Result<Session<'a>> {
        Ok(Session {
            ctx,
            client: ctx.connect()?,
        })
    }

    /// One call; unlocks and retries when the daemon is locked.
    pub(crate) fn call(&mut self, call: impl Into<Call>) -> anyhow::Result<Value> {
        daemonctl::call_unlocking(self.ctx, &mut self.client, call.into(), |c, call| {
            c.call(call)
        })
    }

    /// One call, its answer read into the protocol type `T`.
    pub(crate) fn call_as<T: DeserializeOwned>(
        &mut self,
        call: impl Into<Call>,
    ) -> anyhow::Result<T> {
        Ok(decode(self.call(call)?)?)
    }

    /// One call whose answer names people, read into the protocol type `T`, with their
    /// names from the same answer.
    pub(crate) fn call_named<T: DeserializeOwned>(
        &mut self,
        call: impl Into<Call>,
    ) -> anyhow::Result<(T, Names)> {
        let (value, people) =
            daemonctl::call_unlocking(self.ctx, &mut self.client, call.into(), |c, call| {
                c.call_with_people(call)
            })?;
        Ok((decode(value)?, Names::from_people(&people)))
    }

    /// People's names, for showing them instead of ids.
    pub(crate) fn names(&mut self) -> anyhow::Result<Names> {
        let status: Status = self.client.call_as(DaemonCall::Status)?;
        Ok(Names::from_status(&status))
    }
}

/// Reads a daemon answer into its protocol type. An answer that does not fit means the
/// two programs are of different versions, and the user is told that, not shown a panic.
pub(crate) fn decode<T: DeserializeOwned>(answer: Value) -> Result<T, ClientError> {
    serde_json::from_value(answer).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// How a command words a typed answer for the terminal.
pub(crate) type Render<T> = fn(&T, &Names, Style) -> String;

/// Sends a write and shows the created record: as the daemon sent it with `--json`, else
/// a summary. One round trip: the answer carries the names the summary needs.
pub(crate) fn write<T: DeserializeOwned>(
    ctx: &Ctx,
    io: &mut Io,
    call: impl Into<Call>,
    render: Render<T>,
) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    if ctx.json {
        let record = session.call(call)?;
        io.out.json(&record)?;
        return Ok(());
    }
    let (record, names) = session.call_named::<T>(call)?;
    io.out.write(&render(&record, &names, io.style))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_that_does_not_fit_its_type_is_a_version_error_not_a_panic() {
        let answer = serde_json::json!({ "id": 3, "title": ["not", "a", "title"] });
        let err = decode::<hearth_api::ItemSaved>(answer).unwrap_err();
        assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
        let report = crate::error::report(&anyhow::Error::new(err));
        assert!(
            report.message.contains("same version"),
            "{}",
            report.message
        );
    }
}
