//! Commands about the command itself: shell completions, the manual page, and the demo.

use clap::CommandFactory;

use super::Io;
use crate::args::Cli;
use crate::error::CliError;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

pub(super) fn completions(io: &mut Io, args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    match args.shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "hearth", &mut buf)
        }
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "hearth", &mut buf)
        }
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "hearth", &mut buf)
        }
    }
    io.out.bytes(&buf)?;
    Ok(())
}

pub(super) fn man(io: &mut Io, args: ManArgs) -> anyhow::Result<()> {
    let cmd = Cli::command();
    match args.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| CliError::disk("create the directory", &dir, &e))?;
            clap_mangen::generate_to(cmd, &dir)
                .map_err(|e| CliError::disk("write manual pages into", &dir, &e))?;
            io.out
                .line(&format!("wrote manual pages into {}", dir.display()))?;
        }
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            io.out.bytes(&buf)?;
        }
    }
    Ok(())
}

// ----- command line ----------------------------------------------------------------

/// `hearth completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// bash, zsh or fish.
    #[arg(value_enum)]
    pub(crate) shell: Shell,
}

/// Shells we write completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// `hearth man`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write hearth.1 and one page per subcommand into DIR instead of printing.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}
