//! `hearth import` brings in only the importing person's own records. A file holding an
//! entry written as the partner (a check-in whose `author` is them, a moment they
//! "started", an acknowledgment "from" them, a handoff they "offered") is refused
//! whole, through the stock CLI, with an error that names the record by kind and id and
//! never by its contents. Neither side changes. An honest import still works.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use hearth_api::{At, CheckinParams, DocCall, LogParams, NetCall};
use hearth_tests::harness::{wait_converged, workspace_binary, TestDaemon};
use serde_json::{json, Value};

/// The words of the forged entry: they must never show up in an error.
const FORGED_NOTE: &str = "I want out";
const HONEST_NOTE: &str = "bo-honest-import-5e1d";

fn two_paired() -> (TestDaemon, TestDaemon) {
    let (a, b) = hearth_tests::harness::two_paired().unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    (a, b)
}

/// Runs the stock `hearth` CLI against `d`'s daemon.
fn hearth(d: &TestDaemon, args: &[&str]) -> Output {
    std::process::Command::new(workspace_binary("hearth").unwrap())
        .arg("--data-dir")
        .arg(&d.paths.data_dir)
        .args(args)
        .env_remove("HEARTH_DATA_DIR")
        .env("HEARTH_DISCOVERY", "off")
        .output()
        .unwrap()
}

fn person_id(d: &TestDaemon) -> String {
    d.status().unwrap().person.unwrap().id
}

fn log(d: &TestDaemon) -> Value {
    d.call(DocCall::Log(LogParams::default())).unwrap()
}

fn export_file(dir: &Path, name: &str, records: Value) -> String {
    let path = dir.join(name);
    let file = json!({ "format": "hearth-export", "version": 1, "records": records });
    std::fs::write(&path, file.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

fn when(at: i64) -> Value {
    json!({ "at": at, "date": "2026-03-10", "utc_offset_min": 0 })
}

fn with_when(mut record: Value, at: i64) -> Value {
    for (k, v) in when(at).as_object().unwrap() {
        record[k] = v.clone();
    }
    record
}

const AT: i64 = 1_773_172_800_000;

#[test]
fn an_import_of_entries_written_as_the_partner_is_refused_whole_and_changes_nothing() {
    let (a, b) = two_paired();
    // Ada writes a check-in and a ledger item; both reach Bo.
    a.call(DocCall::CheckinAdd(CheckinParams {
        battery: 60,
        note: Some("ada-real-note".into()),
        at: At {
            at: Some(AT),
            utc_offset_min: 0,
        },
        ..Default::default()
    }))
    .unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    let ada = person_id(&a);
    let bo = person_id(&b);
    let (ada_log, ada_heads) = (log(&a), a.heads("household").unwrap());
    let (bo_log, bo_heads) = (log(&b), b.heads("household").unwrap());

    // 1. Bo imports a check-in "by" Ada: battery 1, and words she never wrote.
    let dir = tempfile::tempdir().unwrap();
    let forged_id = "00000000-0000-4000-8000-0000000f0001";
    let file = export_file(
        dir.path(),
        "forged.json",
        json!({
            "checkins": [with_when(json!({
                "id": forged_id, "author": ada, "battery": 1,
                "note": FORGED_NOTE, "visibility": "shared"
            }), AT + 1)],
        }),
    );
    let out = hearth(&b, &["import", &file]);
    assert!(!out.status.success(), "the forged import was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("checkins {forged_id}")),
        "the error names the record: {stderr}"
    );
    assert!(stderr.contains("written by someone else"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert!(!stderr.contains(FORGED_NOTE), "no contents: {stderr}");

    // 2. The same with other author fields, mixed with an honest record of Bo's own:
    // refused whole, each foreign record named.
    let honest = with_when(
        json!({
            "id": "00000000-0000-4000-8000-0000000f0010", "kind": "laugh",
            "started_by": bo, "note": HONEST_NOTE
        }),
        AT + 2,
    );
    let file = export_file(
        dir.path(),
        "mixed.json",
        json!({
            "moments": [
                honest.clone(),
                with_when(json!({
                    "id": "00000000-0000-4000-8000-0000000f0002", "kind": "touch",
                    "started_by": ada, "note": FORGED_NOTE
                }), AT + 3),
            ],
            "acks": [with_when(json!({
                "id": "00000000-0000-4000-8000-0000000f0003", "from": ada, "to": bo,
                "target": { "kind": "moment", "id": "00000000-0000-4000-8000-0000000f0010" },
                "kind": "thanks", "note": FORGED_NOTE
            }), AT + 4)],
            "done": [with_when(json!({
                "id": "00000000-0000-4000-8000-0000000f0004", "by": ada,
                "label": FORGED_NOTE
            }), AT + 5)],
        }),
    );
    let out = hearth(&b, &["--json", "import", &file]);
    assert!(!out.status.success(), "the mixed import was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for id in ["f0002", "f0003", "f0004"] {
        assert!(stderr.contains(id), "{id} is not named: {stderr}");
    }
    assert!(
        !stderr.contains("f0010"),
        "the honest one is not blamed: {stderr}"
    );
    assert!(!stderr.contains(FORGED_NOTE), "no contents: {stderr}");

    // 3. Nothing changed on either side.
    assert_eq!(b.heads("household").unwrap(), bo_heads);
    assert_eq!(log(&b), bo_log);
    b.call(NetCall::SyncNow).unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    assert_eq!(a.heads("household").unwrap(), ada_heads);
    assert_eq!(log(&a), ada_log);
    assert!(!log(&a).to_string().contains(FORGED_NOTE));

    // 4. An honest import, Bo's own moment alone, goes in and reaches Ada.
    let file = export_file(dir.path(), "honest.json", json!({ "moments": [honest] }));
    let out = hearth(&b, &["--json", "import", &file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(imported["imported"], 1);
    wait_converged(&[&a, &b], "household").unwrap();
    assert!(log(&a).to_string().contains(HONEST_NOTE));
}

#[test]
fn an_export_of_the_whole_household_imports_again_as_nothing_new() {
    // The partner's records are in this device's export; brought back unchanged they
    // are already here, so nothing is written and nothing is refused.
    let (a, b) = two_paired();
    a.call(DocCall::CheckinAdd(CheckinParams {
        battery: 50,
        note: Some("ada-round-trip".into()),
        ..Default::default()
    }))
    .unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.json");
    let out = hearth(&b, &["export", "--out", path.to_str().unwrap()]);
    assert!(out.status.success());
    let before = b.heads("household").unwrap();
    let out = hearth(&b, &["--json", "import", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(imported["imported"], 0);
    assert_eq!(b.heads("household").unwrap(), before);
}
