//! A full disk: a daemon whose data directory sits on a small tmpfs that the test mounts
//! (so it needs root; elsewhere it skips with a message). When space runs out, writes
//! must fail with a clear storage error, nothing acknowledged may be lost, reads must go
//! on working, and writes must work again once space is freed, also across restarts.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{notes, write};
use hearth_api::client::ClientError;
use hearth_api::{CheckinParams, DocCall, ErrorCode};
use hearth_tests::harness::TestDaemon;

/// A tmpfs mounted for one test, unmounted when dropped (lazily if something still
/// holds it open).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it), or says why not.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("not running as root, so no tmpfs can be mounted".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("hearth-full-disk")
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("could not run mount: {e}"))?;
        if !status.success() {
            return Err(format!("mount -t tmpfs failed ({status})"));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Fills the file system holding `dir` with one file, until it refuses more.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("ballast");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0x5au8; 64 * 1024];
    loop {
        match file.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk failed oddly: {e}"),
        }
    }
    // Single pages may still be free after a partial block.
    let mut byte = [0u8; 1];
    while file.write_all(&byte).is_ok() {
        byte[0] ^= 1;
    }
    path
}

fn storage_error(result: Result<serde_json::Value, ClientError>) -> hearth_api::ApiError {
    match result {
        Err(ClientError::Api(e)) => e,
        other => panic!("expected a storage error, got {other:?}"),
    }
}

#[test]
fn a_full_disk_refuses_writes_clearly_keeps_reads_and_recovers() {
    let disk = match Tmpfs::mount("8m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let data = disk.path().join("data");
    let mut d = TestDaemon::start_with(&data, "127.0.0.1:0").unwrap();
    d.init("Ada").unwrap();

    // 1. Some writes while there is room: these must survive everything below.
    let mut acked = std::collections::BTreeSet::new();
    for i in 0..20 {
        let note = format!("before-{i:02}");
        write(&d, &note).unwrap();
        acked.insert(note);
    }

    // 2. The disk fills up. Every kind of write fails with a storage error that says
    //    so and what to do, and changes nothing.
    let ballast = fill(disk.path());
    for i in 0..5 {
        let e = storage_error(write(&d, &format!("while-full-{i}")));
        assert_eq!(e.code, ErrorCode::Storage, "{e:?}");
        assert!(e.message.contains("the disk is full"), "{}", e.message);
        assert!(e.hint.is_some(), "{e:?}");
    }
    let e = storage_error(d.call(DocCall::CheckinAdd(CheckinParams {
        battery: 30,
        note: Some("while-full-checkin".into()),
        ..Default::default()
    })));
    assert_eq!(e.code, ErrorCode::Storage);

    // 3. Reads go on, and show exactly what was acknowledged: a failed write is not
    //    even in memory.
    assert_eq!(d.status().unwrap().state, "ready");
    assert_eq!(notes(&d), acked);
    let export = d.call(DocCall::Export).unwrap();
    assert!(export["records"]["checkins"].as_array().unwrap().is_empty());

    // 4. Space comes back: writes work again at once, with no restart.
    std::fs::remove_file(&ballast).unwrap();
    for i in 0..5 {
        let note = format!("after-{i}");
        write(&d, &note).unwrap();
        acked.insert(note);
    }
    assert_eq!(notes(&d), acked);

    // 5. A crash and restart brings back every acknowledged write and none of the
    //    refused ones.
    d.kill();
    let mut d = TestDaemon::start_with(&data, "127.0.0.1:0").unwrap();
    assert_eq!(notes(&d), acked);

    // 6. A daemon that restarts on a disk that is already full still starts and
    //    serves reads.
    let ballast = fill(disk.path());
    d.kill();
    let d = TestDaemon::start_with(&data, "127.0.0.1:0").unwrap();
    assert_eq!(d.status().unwrap().state, "ready");
    assert_eq!(notes(&d), acked);
    let e = storage_error(write(&d, "still-full"));
    assert_eq!(e.code, ErrorCode::Storage);
    std::fs::remove_file(&ballast).unwrap();
    write(&d, "finally").unwrap();
    acked.insert("finally".into());
    assert_eq!(notes(&d), acked);
    drop(d);
}
