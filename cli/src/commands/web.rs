//! `open`: the daemon's local page in the default browser.
//!
//! The daemon serves the page on 127.0.0.1 only and answers a link with a one-time token
//! (`web.open`); this command hands that link to the desktop's opener (`xdg-open` on
//! Linux, `open` on macOS) or prints it.
//!
//! The opener is not given the link itself: a command line is visible to every user of
//! the computer, and whoever redeems a one-time link first gets the session. It is given
//! a small file in the data directory, readable by this user only, that forwards the
//! browser to the link.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use hearth_api::{DaemonCall, WebOpened};

use crate::commands::{decode, Io, Session};
use crate::daemonctl::Ctx;

/// How long the opener may take to say it failed; one still running after that is left
/// to open the page.
const OPENER_WAIT: Duration = Duration::from_secs(5);

pub(super) fn open(ctx: &Ctx, io: &mut Io, args: OpenArgs) -> anyhow::Result<()> {
    let mut session = Session::open(ctx)?;
    let answer = session.call(DaemonCall::WebOpen)?;
    if ctx.json {
        io.out.json(&answer)?;
        return Ok(());
    }
    let opened: WebOpened = decode(answer)?;
    if args.no_browser {
        io.out.line(&opened.url)?;
        return Ok(());
    }
    let forward = match write_forwarding_page(&ctx.paths.data_dir, &opened.url) {
        Ok(file) => file,
        Err(e) => {
            let why = format!("the page's link could not be written for the browser ({e})");
            io.out.line(&could_not_open(&why, &opened.url))?;
            return Ok(());
        }
    };
    if let Err(why) = open_in_browser(&forward) {
        io.out.line(&could_not_open(&why, &opened.url))?;
    }
    Ok(())
}

fn could_not_open(why: &str, url: &str) -> String {
    format!(
        "Hearth's page is ready, but {why}. Open this link in your browser; it works once, \
         within two minutes:\n{url}"
    )
}

/// The file that forwards the browser to the page's one-time link.
const FORWARD_FILE: &str = "open-page.html";

/// Writes [`FORWARD_FILE`] (mode 0600) and returns its `file://` address. The token in
/// it works once: after the browser has used it, the file opens nothing.
fn write_forwarding_page(data_dir: &Path, url: &str) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(FORWARD_FILE);
    // A file left by an earlier run may have other modes; start afresh.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    // No fsync: the browser reads it at once, and a lost one is replaced by the next run.
    file.write_all(forwarding_page(url).as_bytes())?;
    let absolute = std::path::absolute(&path)?;
    Ok(format!("file://{}", absolute.display()))
}

/// A page that sends the browser on to `url` at once (no script needed).
fn forwarding_page(url: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"0; url={url}\">\n\
         <title>Opening Hearth</title></head>\n\
         <body><p>Opening Hearth… If nothing happens, <a href=\"{url}\">open the page</a>.</p></body></html>\n"
    )
}

/// The desktop's opener for this system.
fn opener_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    }
}

/// Where `name` is on `path` (a `PATH` value), if it is there and executable.
fn find_on_path(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Hands the link to the opener; says why not, in words for the sentence above.
fn open_in_browser(url: &str) -> Result<(), String> {
    let name = opener_name();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(opener) = find_on_path(name, &path) else {
        return Err(format!(
            "this system has no `{name}` to open a browser with"
        ));
    };
    let mut child = Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("`{name}` could not be started ({e})"))?;
    let started = Instant::now();
    while started.elapsed() < OPENER_WAIT {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(_)) => return Err(format!("`{name}` could not open a browser")),
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("`{name}` could not be watched ({e})")),
        }
    }
    // Some openers stay until the browser they started exits: it is on its way.
    Ok(())
}

// ----- command line ----------------------------------------------------------------

/// `hearth open`.
#[derive(Debug, Args)]
pub(crate) struct OpenArgs {
    /// Print the page's one-time link instead of opening a browser (with `--json`, the
    /// link is printed as JSON and no browser is opened either).
    #[arg(long)]
    pub(crate) no_browser: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_opener_is_found_only_where_it_is_executable() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("xdg-open");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(find_on_path("xdg-open", &path), None);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on_path("xdg-open", &path), Some(plain));
        assert_eq!(find_on_path("open-nothing", &path), None);
    }

    #[test]
    fn the_opener_gets_a_private_file_that_forwards_to_the_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let url = "http://127.0.0.1:7448/?token=T0k-en_";
        let stale = dir.path().join(FORWARD_FILE);
        std::fs::write(&stale, "old").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        let address = write_forwarding_page(dir.path(), url).unwrap();
        assert!(address.starts_with("file:///"), "{address}");
        assert!(
            !address.contains("token"),
            "the token stays off the command line"
        );
        let file = std::path::PathBuf::from(address.trim_start_matches("file://"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains(&format!("content=\"0; url={url}\"")),
            "{text}"
        );
    }

    #[test]
    fn without_an_opener_the_link_is_given_kindly() {
        let text = could_not_open(
            "this system has no `xdg-open`",
            "http://127.0.0.1:1/?token=T",
        );
        assert!(text.starts_with("Hearth's page is ready"), "{text}");
        assert!(text.ends_with("\nhttp://127.0.0.1:1/?token=T"), "{text}");
    }
}
