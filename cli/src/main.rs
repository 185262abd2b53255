//! `hearth`: the command line of Hearth, a thin client of the hearthd control API.
//!
//! It parses the command line, reaches the daemon (starting it when needed), makes one
//! or two calls and renders the answer. It never opens the store and holds no business
//! logic: validation, id resolution and insights all live in the daemon and `core`.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod daemonctl;
mod demo;
mod error;
mod export;
mod out;
mod prompt;
mod render;

use clap::Parser;

use crate::error::{is_broken_pipe, report, EXIT_OK};
use crate::out::Style;

fn main() {
    let cli = args::Cli::parse();
    let code = match commands::run(cli) {
        Ok(()) => EXIT_OK,
        // `hearth log | head`: the reader has all it wanted; that is a success.
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) => {
            let r = report(&e);
            let style = Style::stderr();
            out::note(&format!("{} {}", style.warn("error:"), r.message));
            if let Some(hint) = r.hint {
                out::note(&format!("{} {hint}", style.dim("hint:")));
            }
            r.code
        }
    };
    std::process::exit(code);
}
