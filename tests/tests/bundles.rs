//! Offline bundles between real daemons: a round trip between two daemons that never
//! connect, each bad bundle refused with its own error and nothing changed, and the size
//! of a year of data.
//!
//! **How "never connect" is made true:** after pairing, both daemons stop, forget every
//! address they learnt (`peers.hearth`), and come back on loopback addresses the other
//! never heard of (127.0.0.2 and 127.0.0.3), with discovery off. Neither can find the
//! other, and the test also watches both event streams for any peer coming up.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use hearth_api::client::{ClientError, Subscription};
use hearth_api::{BundleCall, Event, RosterCall};
use hearth_core::doc::{DocKind, Docs};
use hearth_core::envelope::bundle::{self, Bundle};
use hearth_core::secrets::DeviceSecrets;
use hearth_tests::generate::{Generator, Household, Options, Who, DEFAULT_START_MS};
use hearth_tests::harness::{wait_converged, workspace_binary, TestDaemon};
use ring::signature::Ed25519KeyPair;
use serde_json::Value;

fn moment(d: &TestDaemon, note: &str) {
    d.moment(note).unwrap();
}

fn notes(d: &TestDaemon) -> Vec<String> {
    d.notes().unwrap()
}

fn export(d: &TestDaemon, all: bool) -> (Vec<u8>, Value) {
    let answer = d.call(BundleCall::BundleExport { all }).unwrap();
    let bytes = data_encoding::BASE64
        .decode(answer["bundle"].as_str().unwrap().as_bytes())
        .unwrap();
    assert_eq!(answer["bytes"].as_u64().unwrap() as usize, bytes.len());
    (bytes, answer)
}

fn import(d: &TestDaemon, bytes: &[u8]) -> Result<Value, ClientError> {
    d.call(BundleCall::BundleImport {
        bundle: data_encoding::BASE64.encode(bytes),
    })
}

/// The error message of a refused import.
fn refused(d: &TestDaemon, bytes: &[u8]) -> String {
    match import(d, bytes) {
        Err(ClientError::Api(e)) => {
            assert!(e.hint.is_some(), "{e:?}");
            e.message
        }
        other => panic!("the import was not refused: {other:?}"),
    }
}

fn secrets(data_dir: &Path) -> DeviceSecrets {
    let bytes = hearthd::storage::read_secrets(data_dir).unwrap();
    DeviceSecrets::from_file_bytes(&bytes, None).unwrap()
}

fn device_key(data_dir: &Path) -> Ed25519KeyPair {
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(secrets(data_dir).device_pkcs8()).unwrap()
}

fn fresh_key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

/// Stops `d` and starts it again on `listen`, having forgotten every address it knew.
fn restart_unreachable(d: &mut TestDaemon, listen: &str) -> TestDaemon {
    d.stop().unwrap();
    let book = d.paths.data_dir.join("peers.hearth");
    if book.exists() {
        std::fs::remove_file(book).unwrap();
    }
    TestDaemon::start_with(&d.paths.data_dir, listen).unwrap()
}

/// Fails if any peer came up on this event stream.
fn assert_no_peer_came_up(sub: &mut Subscription) {
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        if let Some(line) = sub.next_event().unwrap() {
            assert!(
                !matches!(line.event, Event::PeerUp { .. }),
                "a peer connected: {:?}",
                line.event
            );
        }
    }
}

/// Runs the real `hearth` CLI against a running test daemon; returns stdout.
fn hearth(d: &TestDaemon, args: &[&str]) -> String {
    let out = std::process::Command::new(workspace_binary("hearth").unwrap())
        .arg("--data-dir")
        .arg(&d.paths.data_dir)
        .args(args)
        .env_remove("HEARTH_DATA_DIR")
        .env("HEARTH_DISCOVERY", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hearth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn two_paired() -> (TestDaemon, TestDaemon) {
    hearth_tests::harness::two_paired().unwrap()
}

#[test]
fn two_daemons_that_never_connect_converge_through_bundles() {
    // 1. Paired once, then never again on any network.
    let (mut a, mut b) = two_paired();
    moment(&a, "a-1");
    moment(&b, "b-1");
    wait_converged(&[&a, &b], "household").unwrap();
    let (_a_dir, _b_dir) = (a.take_dir(), b.take_dir());

    // 2. Apart: Ada writes while Bo's device is off, then Bo writes while Ada's is off.
    b.stop().unwrap();
    let mut a = restart_unreachable(&mut a, "127.0.0.2:0");
    moment(&a, "a-2");
    moment(&a, "a-3");
    a.stop().unwrap();
    let b = restart_unreachable(&mut b, "127.0.0.3:0");
    moment(&b, "b-2");
    let a = TestDaemon::start_with(&a.paths.data_dir, "127.0.0.2:0").unwrap();
    let mut a_events = a.subscribe().unwrap();
    let mut b_events = b.subscribe().unwrap();
    assert_ne!(a.heads("household").unwrap(), b.heads("household").unwrap());

    // 3. Ada's bundle to Bo: only what Bo's device lacks, as far as Ada's knows.
    let (a_bundle, info) = export(&a, false);
    let (a_all, all_info) = export(&a, true);
    assert_eq!(info["complete"], false, "{info}");
    assert_eq!(all_info["complete"], true);
    assert!(
        a_bundle.len() < a_all.len(),
        "{} vs {}",
        a_bundle.len(),
        a_all.len()
    );
    assert_eq!(info["sealed_for"][0]["person"], "Bo");
    assert_eq!(info["not_readable_by"], Value::Array(vec![]));
    // Carried as a file, through the CLI at both ends.
    let file = tempfile::tempdir().unwrap();
    let path = file.path().join("for-bo.hearth-bundle");
    let said = hearth(&a, &["bundle", "export", "--out", path.to_str().unwrap()]);
    assert!(said.contains("sealed for Bo"), "{said}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read(&path).unwrap().starts_with(bundle::MAGIC));
    let merged: Value = serde_json::from_str(&hearth(
        &b,
        &["--json", "bundle", "import", path.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(merged["new_changes"], 2, "{merged}");
    assert_eq!(merged["signer"]["person"], "Ada");
    assert_eq!(merged["up_to_date"], true);
    let again = hearth(&b, &["bundle", "import", path.to_str().unwrap()]);
    assert!(again.contains("Nothing new"), "{again}");

    // 4. Bo's bundle back: his change, and Ada's that he now holds.
    let (b_bundle, _) = export(&b, false);
    let merged = import(&a, &b_bundle).unwrap();
    assert!(merged["new_changes"].as_u64().unwrap() >= 1, "{merged}");
    assert_eq!(a.heads("household").unwrap(), b.heads("household").unwrap());
    assert_eq!(notes(&a), vec!["a-1", "a-2", "a-3", "b-1", "b-2"]);
    assert_eq!(notes(&a), notes(&b));

    // 5. Twice is harmless, and so is a complete bundle on top.
    let heads = a.heads("household").unwrap();
    assert_eq!(import(&b, &a_bundle).unwrap()["new_changes"], 0);
    assert_eq!(import(&a, &b_bundle).unwrap()["new_changes"], 0);
    assert_eq!(import(&b, &a_all).unwrap()["new_changes"], 0);
    assert_eq!(a.heads("household").unwrap(), heads);
    assert_eq!(b.heads("household").unwrap(), heads);

    // 6. And they never met.
    assert_no_peer_came_up(&mut a_events);
    assert_no_peer_came_up(&mut b_events);
    for d in [&a, &b] {
        assert!(d.status().unwrap().peers.iter().all(|p| !p.connected));
    }
    // The private documents stayed home.
    let b_person = b.status().unwrap().person.unwrap().id;
    assert!(a
        .status()
        .unwrap()
        .documents
        .iter()
        .all(|d| !d.id.contains(&b_person)));
}

#[test]
fn every_bad_bundle_is_refused_with_its_own_error_and_changes_nothing() {
    let (mut a, b) = two_paired();
    wait_converged(&[&a, &b], "household").unwrap();
    let _a_dir = a.take_dir();
    // Bo writes while Ada's device is away, so his bundle holds something new to her.
    a.stop().unwrap();
    moment(&b, "only-in-the-bundle");
    let (good, _) = export(&b, false);
    let a = restart_unreachable(&mut a, "127.0.0.2:0");
    let before = a.heads("household").unwrap();
    let unchanged = |a: &TestDaemon| {
        assert_eq!(a.heads("household").unwrap(), before);
        assert!(!notes(a).contains(&"only-in-the-bundle".to_string()));
    };

    // Tampered: one byte changed in the sealed part, or in the signature.
    for at in [good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let message = refused(&a, &bad);
        assert!(message.contains("signature does not match"), "{message}");
        unchanged(&a);
    }
    // Cut short, or not a bundle at all.
    assert!(refused(&a, &good[..good.len() - 100]).contains("damaged or cut short"));
    assert!(refused(&a, b"{\"format\":\"hearth-export\"}").contains("not a Hearth bundle"));

    // Signed by Bo's real device key, but sealed for some other device.
    let contents = Bundle {
        created_at: 0,
        docs: vec![],
    };
    let stranger = age::x25519::Identity::generate();
    let for_someone_else = bundle::seal(
        &contents,
        &[stranger.to_public()],
        &device_key(&b.paths.data_dir),
    )
    .unwrap();
    let message = refused(&a, &for_someone_else);
    assert!(message.contains("sealed for other devices"), "{message}");

    // Sealed for Ada's device, but signed by a device that is not on the roster.
    let ada = secrets(&a.paths.data_dir).age_recipient();
    let from_a_stranger = bundle::seal(&contents, &[ada], &fresh_key()).unwrap();
    let message = refused(&a, &from_a_stranger);
    assert!(
        message.contains("not on this household's roster"),
        "{message}"
    );

    // A bundle Ada's own device made.
    let (own, _) = export(&a, false);
    assert!(refused(&a, &own).contains("made on this very device"));
    unchanged(&a);

    // The good one goes in, once.
    let merged = import(&a, &good).unwrap();
    // Bo's note, plus whatever Bo's daemon wrote on its own (a roster touch at start-up).
    assert!(merged["new_changes"].as_u64() >= Some(1), "{merged}");
    assert!(notes(&a).contains(&"only-in-the-bundle".to_string()));
    let after = a.heads("household").unwrap();
    assert_eq!(import(&a, &good).unwrap()["new_changes"], 0);
    assert_eq!(a.heads("household").unwrap(), after);
}

#[test]
fn a_bundle_from_a_removed_device_is_refused() {
    let (mut a, b) = two_paired();
    wait_converged(&[&a, &b], "household").unwrap();
    let _a_dir = a.take_dir();
    a.stop().unwrap();
    moment(&b, "from-a-device-later-removed");
    let (good, _) = export(&b, false);
    let a = restart_unreachable(&mut a, "127.0.0.2:0");
    let bo_device = b.status().unwrap().device_id.unwrap();
    a.call(RosterCall::DevicesRemove {
        id: bo_device.clone(),
    })
    .unwrap();
    let before = a.heads("household").unwrap();
    let message = refused(&a, &good);
    assert!(
        message.contains("was removed from this household"),
        "{message}"
    );
    assert_eq!(a.heads("household").unwrap(), before);
}

/// Sizes of bundles for a year of generated data, printed with `--nocapture`.
#[test]
fn bundle_sizes_for_a_year_of_data() {
    let opts = Options::new(1.0, 7);
    let mut household = Household::new(7, DEFAULT_START_MS).unwrap();
    let people = [household.person(Who::A), household.person(Who::B)];
    let mut generator = Generator::new(people, &opts).unwrap();
    let days = opts.days();
    let mut marks: Vec<(u32, Docs)> = Vec::new();
    while let Some((day, ops)) = generator.next_day() {
        for op in &ops {
            household.apply(op).unwrap();
        }
        household.sync().unwrap();
        if day + 8 == days || day + 2 == days {
            marks.push((day, household.b.clone()));
        }
    }
    let key = fresh_key();
    let bo = age::x25519::Identity::generate();
    let seal = |since: &[automerge::ChangeHash]| {
        let (doc, _) = bundle::changes_after(&household.a.household, since);
        let contents = Bundle {
            created_at: 0,
            docs: vec![doc],
        };
        bundle::seal(&contents, &[bo.to_public()], &key).unwrap()
    };
    let started = Instant::now();
    let year = seal(&[]);
    let year_took = started.elapsed();
    eprintln!(
        "a year of data ({days} days, household document {} bytes saved):",
        household.a.household.automerge().save().len()
    );
    eprintln!(
        "  complete bundle: {} bytes (made in {year_took:?})",
        year.len()
    );
    for (day, docs) in &marks {
        let bytes = seal(&docs.household.heads());
        eprintln!(
            "  after the last {} day(s): {} bytes",
            days - day - 1,
            bytes.len()
        );
        // It opens and brings that device up to date.
        let mut copy = docs.household.clone();
        let opened = bundle::verify(&bytes).unwrap().open(&bo).unwrap();
        bundle::merge(&mut copy, &opened.docs[0]).unwrap();
        assert_eq!(copy.heads(), household.a.household.heads());
        // Changes after some heads travel one by one, each compressed on its own, so a
        // week costs about a seventh of a whole compressed year; still far less.
        assert!(bytes.len() < year.len() / 4);
    }
    // A fresh device gets everything from the complete bundle.
    let mut fresh = Docs::new(uuid::Uuid::from_u128(9), automerge::ActorId::random());
    let opened = bundle::verify(&year).unwrap().open(&bo).unwrap();
    bundle::merge(&mut fresh.household, &opened.docs[0]).unwrap();
    assert_eq!(fresh.household.heads(), household.a.household.heads());
    assert_eq!(fresh.household.kind(), DocKind::Household);
}
