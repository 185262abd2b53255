//! The `hearthd` binary: runs the daemon in the foreground, for service managers.
//! `hearth daemon run` does the same from the CLI.

use std::path::PathBuf;

use clap::Parser;
use hearthd::daemon::{run, RunOptions};
use hearthd::paths::Paths;

/// Hearth's daemon: keeps the household's documents and syncs them with paired devices.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where the data lives (default: the XDG data directory).
    #[arg(long, env = "HEARTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A file holding the identity's passphrase.
    #[arg(long, env = "HEARTH_PASSPHRASE_FILE")]
    passphrase_file: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let passphrase = match args.passphrase_file.as_deref().map(std::fs::read_to_string) {
        None => None,
        Some(Ok(text)) => Some(text.trim_end_matches(['\n', '\r']).to_string()),
        Some(Err(e)) => {
            eprintln!("error: could not read the passphrase file: {e}");
            return std::process::ExitCode::from(5);
        }
    };
    let opts = RunOptions {
        paths: Paths::resolve(args.data_dir.as_deref()),
        passphrase,
    };
    match run(opts) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
