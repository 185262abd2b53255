//! `hearth bundle export|import`: offline bundles for the partner's devices.
//!
//! The daemon makes, checks and merges bundles; this module only moves the file between
//! the disk and the control call (as base64) and words the answer. It never opens the
//! store, and it never looks inside a bundle.

use std::io::Read as _;
use std::path::Path;

use hearth_api::{BundleCall, BundleDevice, BundleExported, BundleImported};
use serde_json::Value;

use super::{decode, Io, Session};
use crate::daemonctl::Ctx;
use crate::error::CliError;
use crate::export;
use crate::out::Style;
use clap::Subcommand;
use std::path::PathBuf;

/// The largest bundle read, so a wrong file (a disk image, say) fails quickly. The
/// daemon takes requests up to 64 MiB, and base64 adds a third.
const MAX_BUNDLE_BYTES: u64 = 46 * 1024 * 1024;

pub(super) fn run(ctx: &Ctx, io: &mut Io, cmd: BundleCommand) -> anyhow::Result<()> {
    match cmd {
        BundleCommand::Export { out, all } => export_bundle(ctx, io, &out, all),
        BundleCommand::Import { file } => import_bundle(ctx, io, &file),
    }
}

fn export_bundle(ctx: &Ctx, io: &mut Io, out: &Path, all: bool) -> anyhow::Result<()> {
    if out.is_dir() {
        return Err(CliError::Usage {
            message: format!("{} is a directory", out.display()),
            hint: "give a file name, for example --out hearth-bundle.bin".into(),
        }
        .into());
    }
    let mut session = Session::open(ctx)?;
    let raw = session.call(BundleCall::BundleExport { all })?;
    let answer: BundleExported = decode(raw.clone())?;
    let bytes = data_encoding::BASE64
        .decode(answer.bundle.as_bytes())
        .map_err(|_| {
            anyhow::anyhow!(
                "hearthd sent a bundle that is not base64; this is a bug, please report it"
            )
        })?;
    export::write_private(out, &bytes)?;
    if ctx.json {
        // The answer as the daemon sent it, the file's name in place of its bytes.
        let mut shown = raw;
        if let Value::Object(map) = &mut shown {
            map.remove("bundle");
            map.insert("file".into(), Value::String(out.display().to_string()));
        }
        io.out.json(&shown)?;
    } else {
        io.out.write(&exported(&answer, out, io.style))?;
    }
    Ok(())
}

fn device_names(list: &[BundleDevice]) -> Vec<String> {
    list.iter()
        .map(|d| {
            let (name, person) = (&d.name, &d.person);
            if !person.is_empty() && !name.contains(person.as_str()) {
                format!("{person}'s {name}")
            } else {
                name.clone()
            }
        })
        .collect()
}

fn exported(answer: &BundleExported, out: &Path, style: Style) -> String {
    let bytes = answer.bytes;
    let what = if answer.complete {
        "everything you share"
    } else {
        "the changes they lack, as far as this device knows"
    };
    let mut text = format!(
        "Wrote {} ({bytes} bytes): {what}, sealed for {} and signed by this device.\n",
        out.display(),
        device_names(&answer.sealed_for).join(", ")
    );
    let unreadable = device_names(&answer.not_readable_by);
    if !unreadable.is_empty() {
        text.push_str(&format!(
            "{} {} cannot open it: this device does not know its key yet. Let them sync once.\n",
            style.warn("Note:"),
            unreadable.join(", ")
        ));
    }
    text.push_str("Carry it any way you like; only their devices can read it. They run `hearth bundle import FILE`.\n");
    text
}

fn import_bundle(ctx: &Ctx, io: &mut Io, file: &Path) -> anyhow::Result<()> {
    let (bytes, source) = read_bundle(file)?;
    let mut session = Session::open(ctx)?;
    let answer = session.call(BundleCall::BundleImport {
        bundle: data_encoding::BASE64.encode(&bytes),
    })?;
    if ctx.json {
        io.out.json(&answer)?;
        return Ok(());
    }
    let answer: BundleImported = decode(answer)?;
    let from = device_names(std::slice::from_ref(&answer.signer)).join("");
    let text = match answer.new_changes {
        0 => format!("Nothing new in {source}: everything in it from {from} is already here.\n"),
        n => format!("Merged {n} new change(s) from {from}.\n"),
    };
    io.out.write(&text)?;
    Ok(())
}

fn read_bundle(path: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_BUNDLE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::Invalid {
                message: format!("could not read the bundle from standard input: {e}"),
                hint: "pipe in the file written by `hearth bundle export`".into(),
            })?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_BUNDLE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| CliError::Invalid {
                message: format!("could not read {}: {e}", path.display()),
                hint: "check the path to the file `hearth bundle export` wrote".into(),
            })?;
    }
    let source = if path == Path::new("-") {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(CliError::Invalid {
            message: format!(
                "{source} is larger than any bundle ({} MiB at most)",
                MAX_BUNDLE_BYTES / (1024 * 1024)
            ),
            hint: "check that this is the file `hearth bundle export` wrote".into(),
        }
        .into());
    }
    Ok((bytes, source))
}

// ----- command line ----------------------------------------------------------------

/// `hearth bundle ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum BundleCommand {
    /// Write what your partner's devices lack, as far as this device knows, into a file
    /// only their devices can open.
    Export {
        /// Where to write the bundle.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Everything in the shared household, not only what they lack.
        #[arg(long)]
        all: bool,
    },
    /// Check a bundle from your partner's device (signature, sender, recipient) and merge
    /// it. Nothing changes if any check fails; importing one twice is harmless.
    Import {
        /// A file written by `hearth bundle export`, or - for standard input.
        file: PathBuf,
    },
}
