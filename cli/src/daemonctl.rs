//! Reaching the daemon: connecting, starting it in the background, stopping it, and
//! unlocking a passphrase-protected identity.
//!
//! This module owns the CLI side of the daemon's lifecycle. It must not open the store or
//! the identity file: every question about the data goes through the control socket.

use std::fs::{self, OpenOptions};
use std::io::{self, IsTerminal, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hearth_api::client::{Client, ClientError};
use hearth_api::config::Config;
use hearth_api::paths::{passphrase_from_file, PassphraseFileError, Paths};
use hearth_api::{Call, DaemonCall, ErrorCode};

use crate::error::CliError;
use crate::out;

/// The daemon's program name.
const HEARTHD: &str = "hearthd";
/// How long `daemon start` and autostart wait for the socket to answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to look for another daemon when the one we started exits at once.
const RACE_GRACE: Duration = Duration::from_secs(2);
/// How long `daemon stop` waits for the socket to go away.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often to try a locked identity's passphrase on a terminal.
const PASSPHRASE_ATTEMPTS: usize = 3;

/// What every command needs to reach the daemon.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Where the data and the socket are.
    pub(crate) paths: Paths,
    /// `--json`.
    pub(crate) json: bool,
    /// `-v` count.
    pub(crate) verbose: u8,
    /// `--passphrase-file`.
    pub(crate) passphrase_file: Option<PathBuf>,
}

impl Ctx {
    /// Prints a diagnostic on stderr when `-v` was given.
    pub(crate) fn debug(&self, text: &str) {
        if self.verbose > 0 {
            out::note(&format!("hearth: {text}"));
        }
    }

    /// The command that starts this data directory's daemon, for hints.
    pub(crate) fn start_command(&self) -> String {
        format!(
            "hearth daemon start --data-dir {}",
            shell_quote(&self.paths.data_dir.display().to_string())
        )
    }

    /// Connects, starting the daemon first when it is not running and the config allows.
    pub(crate) fn connect(&self) -> anyhow::Result<Client> {
        match self.try_connect()? {
            Some(client) => Ok(client),
            None => {
                let config = load_config(&self.paths)?;
                if !config.autostart {
                    return Err(CliError::Unreachable {
                        message: format!(
                            "hearthd is not running for {} (autostart is off in config.toml)",
                            self.paths.data_dir.display()
                        ),
                        hint: format!("start it with `{}`", self.start_command()),
                    }
                    .into());
                }
                self.debug("hearthd is not running; starting it");
                start(self)
            }
        }
    }

    /// Connects without starting anything; `None` when no daemon is listening.
    pub(crate) fn try_connect(&self) -> anyhow::Result<Option<Client>> {
        match Client::connect(&self.paths.socket) {
            Ok(client) => Ok(Some(client)),
            Err(e) if is_not_running(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Reads `config.toml`; a bad one is the user's to fix, so it is invalid input.
pub(crate) fn load_config(paths: &Paths) -> Result<Config, CliError> {
    Config::load(&paths.config()).map_err(|e| CliError::Invalid {
        message: e.to_string(),
        hint: "fix or remove config.toml in the data directory".into(),
    })
}

/// Makes one call on an open connection with `send` (one of `Client`'s call methods),
/// unlocking first if the daemon asks for it.
pub(crate) fn call_unlocking<T>(
    ctx: &Ctx,
    client: &mut Client,
    call: Call,
    send: fn(&mut Client, Call) -> Result<T, ClientError>,
) -> anyhow::Result<T> {
    match send(client, call.clone()) {
        Err(ClientError::Api(e)) if e.code == ErrorCode::Locked => {
            unlock(ctx, client)?;
            Ok(send(client, call)?)
        }
        other => Ok(other?),
    }
}

/// Sends `unlock` with the passphrase from the file, or asked for on the terminal.
pub(crate) fn unlock(ctx: &Ctx, client: &mut Client) -> anyhow::Result<()> {
    if let Some(path) = &ctx.passphrase_file {
        let passphrase = read_passphrase_file(path)?;
        client.call(DaemonCall::Unlock { passphrase })?;
        return Ok(());
    }
    if !can_prompt_secret() {
        return Err(CliError::Locked {
            message: "this device's identity is locked with a passphrase".into(),
            hint: "give it with --passphrase-file FILE (or HEARTH_PASSPHRASE_FILE), or run the command on a terminal to be asked".into(),
        }
        .into());
    }
    for attempt in 1..=PASSPHRASE_ATTEMPTS {
        let passphrase = rpassword::prompt_password("Passphrase for this device: ")
            .context("could not read the passphrase from the terminal")?;
        match client.call(DaemonCall::Unlock { passphrase }) {
            Ok(_) => return Ok(()),
            Err(ClientError::Api(e))
                if e.code == ErrorCode::WrongPassphrase && attempt < PASSPHRASE_ATTEMPTS =>
            {
                out::note("That passphrase did not open it; please try again.");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CliError::Locked {
        message: "the passphrase did not open this device's identity".into(),
        hint: "check the passphrase and try again".into(),
    }
    .into())
}

/// Whether a passphrase can be asked for: rpassword reads the controlling terminal.
pub(crate) fn can_prompt_secret() -> bool {
    io::stdin().is_terminal() || io::stderr().is_terminal()
}

/// Reads a passphrase file: its first line, without the line ending.
pub(crate) fn read_passphrase_file(path: &Path) -> anyhow::Result<String> {
    passphrase_from_file(path).map_err(|e| {
        let hint = match e {
            PassphraseFileError::Empty { .. } => "write the passphrase on its first line",
            _ => "check the path given with --passphrase-file or HEARTH_PASSPHRASE_FILE",
        };
        CliError::Locked {
            message: e.to_string(),
            hint: hint.into(),
        }
        .into()
    })
}

/// True when connecting failed because nothing listens on the socket.
pub(crate) fn is_not_running(err: &ClientError) -> bool {
    match err {
        ClientError::Connect { source, .. } => matches!(
            source.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
        ),
        _ => false,
    }
}

/// The `hearthd` program: next to this `hearth` first, so a build or an install that
/// put both in one directory uses its own daemon, then on `PATH`.
pub(crate) fn hearthd_binary() -> Result<PathBuf, CliError> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(HEARTHD)));
    if let Some(path) = beside.as_ref().filter(|p| p.is_file()) {
        return Ok(path.clone());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|dirs| std::env::split_paths(&dirs).collect::<Vec<_>>())
        .map(|dir| dir.join(HEARTHD))
        .find(|p| p.is_file());
    on_path.ok_or_else(|| CliError::Unreachable {
        message: match &beside {
            Some(path) => format!(
                "could not find the hearthd program: it is not at {} nor on PATH",
                path.display()
            ),
            None => "could not find the hearthd program on PATH".into(),
        },
        hint: "install it beside hearth (`cargo install --path daemon`), or build both with `cargo build --release` and run target/release/hearth".into(),
    })
}

/// The `hearthd` command for this context: data directory, passphrase file, log level.
pub(crate) fn hearthd_command(ctx: &Ctx) -> Result<Command, CliError> {
    let mut cmd = Command::new(hearthd_binary()?);
    cmd.arg("--data-dir").arg(&ctx.paths.data_dir);
    if let Some(file) = &ctx.passphrase_file {
        cmd.arg("--passphrase-file").arg(file);
    }
    if ctx.verbose > 0 && std::env::var_os("HEARTH_LOG").is_none() {
        cmd.env(
            "HEARTH_LOG",
            if ctx.verbose > 1 { "trace" } else { "debug" },
        );
    }
    Ok(cmd)
}

/// Starts `hearthd` in the background and waits until its socket answers.
pub(crate) fn start(ctx: &Ctx) -> anyhow::Result<Client> {
    let paths = &ctx.paths;
    hearth_api::paths::ensure_private_dir(&paths.data_dir)
        .map_err(|e| CliError::disk("create the data directory", &paths.data_dir, &e))?;
    let log_path = paths.log();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| CliError::disk("open the daemon log", &log_path, &e))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log_err = log
        .try_clone()
        .map_err(|e| CliError::disk("open the daemon log", &log_path, &e))?;
    let mut cmd = hearthd_command(ctx)?;
    // Its own process group, so a Ctrl-C meant for this command does not reach the
    // daemon, and no terminal: the daemon outlives the command that started it.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .process_group(0);
    let mut child = cmd.spawn().context("could not start the daemon process")?;
    ctx.debug(&format!("started hearthd (pid {})", child.id()));
    wait_for_socket(ctx, &mut child, &log_path, log_start)
}

fn wait_for_socket(
    ctx: &Ctx,
    child: &mut Child,
    log_path: &Path,
    log_start: u64,
) -> anyhow::Result<Client> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match Client::connect(&ctx.paths.socket) {
            Ok(client) => return Ok(client),
            Err(e) if is_not_running(&e) => {}
            Err(e) => return Err(e.into()),
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Two commands may autostart at once; the daemon that loses the race for
            // the data-directory lock exits, and the winner is about to answer.
            if let Some(client) = connect_within(&ctx.paths.socket, RACE_GRACE) {
                return Ok(client);
            }
            let tail = log_tail(log_path, log_start);
            let detail = if tail.is_empty() {
                String::new()
            } else {
                format!(":\n{tail}")
            };
            return Err(CliError::Unreachable {
                message: format!("hearthd stopped as soon as it started ({status}){detail}"),
                hint: format!("the full log is in {}", log_path.display()),
            }
            .into());
        }
        if Instant::now() >= deadline {
            return Err(CliError::Unreachable {
                message: format!(
                    "hearthd did not answer within {} seconds; it may still be starting",
                    START_TIMEOUT.as_secs()
                ),
                hint: format!(
                    "look at {} for what it is doing, then try again",
                    log_path.display()
                ),
            }
            .into());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Tries to connect until `within` has passed.
fn connect_within(socket: &Path, within: Duration) -> Option<Client> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(client) = Client::connect(socket) {
            return Some(client);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last few lines the daemon logged since `from`, to explain a failed start.
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        if file.seek(SeekFrom::Start(from)).is_ok() {
            let _ = file.take(64 * 1024).read_to_string(&mut text);
        }
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let keep = lines.len().saturating_sub(8);
    lines[keep..].join("\n")
}

/// Asks the daemon to stop and waits until its socket no longer answers.
/// Returns false when no daemon was running.
pub(crate) fn stop(ctx: &Ctx) -> anyhow::Result<bool> {
    let Some(mut client) = ctx.try_connect()? else {
        return Ok(false);
    };
    match client.call(DaemonCall::Shutdown) {
        Ok(_) => {}
        // The daemon may close the connection before answering; that is a stop too.
        Err(ClientError::Io(_)) => {}
        Err(e) => return Err(e.into()),
    }
    drop(client);
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match Client::connect(&ctx.paths.socket) {
            Err(e) if is_not_running(&e) => return Ok(true),
            _ if Instant::now() >= deadline => {
                return Err(CliError::Unreachable {
                    message: format!(
                        "hearthd was asked to stop but still answers after {} seconds",
                        STOP_TIMEOUT.as_secs()
                    ),
                    hint: format!(
                        "look at {}; if it is stuck, stop its process with `kill`",
                        ctx.paths.log().display()
                    ),
                }
                .into())
            }
            _ => {}
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Quotes a path for a shell command in a hint, only when it needs it.
pub(crate) fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hints_quote_paths_only_when_needed() {
        assert_eq!(shell_quote("/tmp/hearth-a"), "/tmp/hearth-a");
        assert_eq!(shell_quote("/tmp/my data"), "'/tmp/my data'");
        assert_eq!(shell_quote("/tmp/it's"), r"'/tmp/it'\''s'");
    }

    #[test]
    fn passphrase_file_takes_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        fs::write(&path, "correct horse\r\nignored\n").unwrap();
        assert_eq!(read_passphrase_file(&path).unwrap(), "correct horse");
        fs::write(&path, "\n").unwrap();
        assert!(read_passphrase_file(&path).is_err());
        assert!(read_passphrase_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn missing_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let err = Client::connect(&dir.path().join("nope.sock"))
            .err()
            .unwrap();
        assert!(is_not_running(&err));
    }

    #[test]
    fn log_tail_keeps_the_last_lines_since_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "old\n").unwrap();
        let from = 4;
        let mut text = String::from("old\n");
        for i in 0..20 {
            text.push_str(&format!("line {i}\n"));
        }
        fs::write(&path, text).unwrap();
        let tail = log_tail(&path, from);
        assert!(tail.starts_with("line 12"), "{tail}");
        assert!(tail.ends_with("line 19"), "{tail}");
        assert!(!tail.contains("old"));
    }
}
