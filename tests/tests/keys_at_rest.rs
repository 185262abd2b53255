//! Keys and addresses at rest (THREAT-MODEL P7), with real daemons and the real CLI.
//!
//! * `hearth init` without a passphrase says plainly what that means.
//! * The address book is sealed; a plain `peers.json` from an older version is read once,
//!   rewritten sealed and removed.
//! * `pair join --same-person` no longer chooses anything, and says so.
//!
//! The scrypt work factor itself is checked in `core/src/secrets.rs`.
#![allow(clippy::unwrap_used)]

use hearth_tests::harness::{workspace_binary, TestDaemon};

/// Runs the real `hearth` CLI against `d`'s data directory.
fn hearth(d: &TestDaemon, args: &[&str]) -> std::process::Output {
    std::process::Command::new(workspace_binary("hearth").unwrap())
        .arg("--data-dir")
        .arg(&d.paths.data_dir)
        .args(args)
        .env_remove("HEARTH_DATA_DIR")
        .env("HEARTH_DISCOVERY", "off")
        .output()
        .unwrap()
}

#[test]
fn init_without_a_passphrase_says_what_that_means() {
    let d = TestDaemon::start().unwrap();
    let out = hearth(&d, &["init", "--name", "Ada"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains("no passphrase"), "{said}");
    assert!(said.contains("anyone who can read it"), "{said}");
    assert!(said.contains("hearth init --passphrase"), "{said}");
}

#[test]
fn an_old_plain_address_book_is_sealed_at_the_next_start() {
    let mut d = TestDaemon::start().unwrap();
    d.init("Ada").unwrap();
    d.stop().unwrap();
    let dir = d.paths.data_dir.clone();
    let address = "192.0.2.77:7447";
    std::fs::write(
        dir.join("peers.json"),
        format!(r#"{{"static_peers": ["{address}"], "last_addr": {{}}}}"#),
    )
    .unwrap();

    let d = TestDaemon::start_in(&dir).unwrap();
    d.wait_for_log("sealed the address book").unwrap();
    assert!(!dir.join("peers.json").exists(), "the plain copy is gone");
    let sealed = std::fs::read(dir.join("peers.hearth")).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("192.0.2.77"));
    // Sealed to the daemon's own identity, with the address inside.
    let secrets = {
        let bytes = std::fs::read(dir.join("identity.age")).unwrap();
        hearth_core::secrets::DeviceSecrets::from_file_bytes(&bytes, None).unwrap()
    };
    let plain = hearth_core::envelope::open(secrets.age_identity(), &sealed).unwrap();
    assert!(String::from_utf8(plain).unwrap().contains(address));
}

#[test]
fn join_with_same_person_explains_that_the_inviter_decides() {
    let d = TestDaemon::start().unwrap();
    d.init("Ada").unwrap();
    let out = hearth(
        &d,
        &["pair", "join", "4-amber-orbit-lantern", "--same-person"],
    );
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("the inviting device now decides"), "{said}");
    assert!(said.contains("hearth pair invite --own-device"), "{said}");
}
