//! The control socket's safety: file modes, and refusal of other users.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use hearth_tests::harness::{workspace_binary, TestDaemon};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn socket_key_and_data_files_are_private() {
    let d = TestDaemon::start().unwrap();
    d.init("Ada").unwrap();
    assert_eq!(mode(&d.paths.data_dir), 0o700);
    assert_eq!(mode(&d.paths.socket), 0o600);
    assert_eq!(mode(&d.paths.identity()), 0o600);
    for entry in walk(&d.paths.docs()) {
        let expected = if entry.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&entry), expected, "{}", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Even when the file modes are loosened by mistake, the daemon checks the peer's uid.
#[test]
fn another_user_is_refused_on_the_control_socket() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a client as another user");
        return;
    }
    let d = TestDaemon::start().unwrap();
    d.init("Ada").unwrap();
    // Open the way on purpose, so only the credential check stands between.
    std::fs::set_permissions(&d.paths.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d.paths.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let output = Command::new(workspace_binary("hearth").unwrap())
        .arg("--data-dir")
        .arg(&d.paths.data_dir)
        .arg("--json")
        .arg("status")
        .env("HOME", "/tmp")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        output.stdout.is_empty(),
        "the other user saw: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let line = d
        .wait_for_log("refused a control connection from another user")
        .unwrap();
    assert!(line.contains("uid=65534"), "{line}");
    // The owner still gets in.
    assert_eq!(d.status().unwrap().state, "ready");
}
