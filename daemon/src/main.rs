//! The `hearthd` binary: runs the daemon in the foreground, for service managers and
//! for `hearth daemon run`, which execs it.
//!
//! Its exit codes follow `hearth`'s table (docs/exit-codes.md), so `hearth daemon run`
//! exits as it always did.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hearth_api::paths::{passphrase_from_file, Paths};
use hearth_core::secrets::SecretsError;
use hearthd::daemon::{run, RunError, RunOptions};
use hearthd::storage::StoreError;

/// Exit code for invalid input: a bad config, a data directory in the wrong state.
const EXIT_INVALID: u8 = 3;
/// Exit code for a locked identity or a wrong passphrase.
const EXIT_LOCKED: u8 = 5;
/// Exit code for the disk, or a data directory another daemon uses.
const EXIT_STORAGE: u8 = 6;

/// Hearth's daemon: keeps the household's documents and syncs them with paired devices.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where the data lives (default: the XDG data directory).
    #[arg(long, env = "HEARTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A file holding the identity's passphrase on its first line.
    #[arg(long, env = "HEARTH_PASSPHRASE_FILE")]
    passphrase_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let passphrase = match args.passphrase_file.as_deref().map(passphrase_from_file) {
        None => None,
        Some(Ok(passphrase)) => Some(passphrase),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            eprintln!(
                "hint: check the path given with --passphrase-file or HEARTH_PASSPHRASE_FILE"
            );
            return ExitCode::from(EXIT_LOCKED);
        }
    };
    let opts = RunOptions {
        paths: Paths::resolve(args.data_dir.as_deref()),
        passphrase,
    };
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &RunError) -> u8 {
    match e {
        RunError::Config(_) => EXIT_INVALID,
        RunError::Store(
            StoreError::NotInitialized { .. } | StoreError::AlreadyInitialized { .. },
        ) => EXIT_INVALID,
        RunError::Store(_) | RunError::DataDir { .. } => EXIT_STORAGE,
        RunError::Secrets(
            SecretsError::WrongPassphrase
            | SecretsError::PassphraseRequired
            | SecretsError::EmptyPassphrase,
        ) => EXIT_LOCKED,
        _ => 1,
    }
}
