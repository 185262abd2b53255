//! Real mDNS between real daemons, only inside Linux network namespaces this test
//! creates (see [`Lan`]): nothing is sent on the machine's own interfaces, and every
//! address involved lives inside those namespaces.
//!
//! Needs root and iproute2; without them each test prints one line saying why and
//! passes. Namespaces are deleted when the [`Lan`] guard drops, failing or not.
//!
//! Besides the daemons, a few hosts run this same test binary as a helper
//! ([`netns_helper`], started with `ip netns exec`): a *stranger* who records every mDNS
//! packet and every service it can resolve (asking the network which service types
//! exist, since Hearth's rotate), and dials what it found as an unpaired device would;
//! and a *copycat* who replays a household label at its own address.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hearth_api::client::Client;
use hearth_api::{At, DocCall, MomentParams, NetCall, RosterCall};
use hearth_core::model::MomentKind;
use hearth_tests::harness::{wait_converged, DaemonOptions, Lan, Link, TestDaemon, TestDiscovery};
use hearthd::discovery::token;
use serde_json::{json, Value};

const HELPER_ROLE: &str = "HEARTH_NETNS_HELPER";

fn unavailable() -> bool {
    match Lan::unavailable() {
        Some(why) => {
            eprintln!("skipped: real-mDNS tests need network namespaces: {why}");
            true
        }
        None => false,
    }
}

fn start(ns: &str, dir: &Path, interfaces: &[&str], listen: &str) -> TestDaemon {
    TestDaemon::start_opts(
        dir,
        &DaemonOptions {
            listen: listen.into(),
            discovery: TestDiscovery::Mdns(interfaces.iter().map(|s| s.to_string()).collect()),
            netns: Some(ns.into()),
            log: Some("info,hearthd::net=debug,hearthd::discovery=debug".into()),
            rogue: false,
            web_listen: None,
        },
    )
    .unwrap()
}

fn moment(d: &TestDaemon, note: &str) {
    d.call(DocCall::MomentAdd(MomentParams {
        kind: MomentKind::Laugh,
        started_by: None,
        note: Some(note.into()),
        at: At::default(),
    }))
    .unwrap();
}

fn pair_without_address(inviter: &TestDaemon, joiner: &TestDaemon) {
    let invite = inviter
        .call(NetCall::PairInvite {
            timeout_secs: Some(60),
            own_device: false,
        })
        .unwrap();
    let code = invite["code"].as_str().unwrap().to_string();
    let socket = inviter.paths.socket.clone();
    let waiter =
        std::thread::spawn(move || Client::connect(&socket).unwrap().call(NetCall::PairWait));
    joiner
        .call(NetCall::PairJoin {
            code,
            addr: None,
            merge: false,
        })
        .unwrap();
    waiter.join().unwrap().unwrap();
}

/// Joins `joiner` as another device of the inviting person, with the code alone.
fn pair_same_person_without_address(inviter: &TestDaemon, joiner: &TestDaemon) {
    let invite = inviter
        .call(NetCall::PairInvite {
            timeout_secs: Some(60),
            own_device: true,
        })
        .unwrap();
    let code = invite["code"].as_str().unwrap().to_string();
    let socket = inviter.paths.socket.clone();
    let waiter =
        std::thread::spawn(move || Client::connect(&socket).unwrap().call(NetCall::PairWait));
    joiner
        .call(NetCall::PairJoin {
            code,
            addr: None,
            merge: false,
        })
        .unwrap();
    waiter.join().unwrap().unwrap();
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// This test binary, run as a helper inside a namespace.
struct Helper {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Helper {
    fn start(ns: &str, role: &str, env: &[(&str, String)]) -> Helper {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", "netns_helper", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(HELPER_ROLE, role)
            .env("HELPER_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let helper = Helper {
            child: Some(child),
            dir,
        };
        wait_until(Duration::from_secs(10), "the helper started", || {
            helper.dir.path().join("started").exists()
        });
        helper
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn signal(&self, name: &str) {
        std::fs::write(self.path(name), b"").unwrap();
    }

    /// Stops the helper and returns what it recorded.
    fn finish(mut self) -> Value {
        self.signal("stop");
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let text = std::fs::read_to_string(self.path("out.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Names, ids and keys a stranger must never see, for one daemon.
fn secrets_of(d: &TestDaemon) -> Vec<Vec<u8>> {
    let status = d.status().unwrap();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for person in &status.people {
        out.push(person.name.clone().into_bytes());
        out.push(person.id.clone().into_bytes());
    }
    if let Some(id) = &status.device_id {
        out.push(id.clone().into_bytes());
        let bare: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
        out.push(bare.clone().into_bytes());
        out.push(bare.to_lowercase().into_bytes());
    }
    let export = d.call(DocCall::Export).unwrap();
    for device in export["devices"].as_array().into_iter().flatten() {
        if let Some(name) = device["name"].as_str() {
            out.push(name.as_bytes().to_vec());
        }
        if let Some(key) = device["public_key"].as_str() {
            out.push(key.as_bytes().to_vec());
            out.push(data_encoding_hex(key));
        }
    }
    out.retain(|s| s.len() >= 4);
    out
}

fn data_encoding_hex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn assert_is_label(what: &str, value: &str) {
    assert!(
        token::parse_label(value).is_some(),
        "{what} `{value}` is not a bare label"
    );
}

#[test]
fn two_daemons_on_loopback_pair_and_sync_by_mdns() {
    if unavailable() {
        return;
    }
    // One namespace with nothing but `lo`: mDNS restricted to loopback, as the demo
    // uses it, with no way to reach any other interface even before the restriction.
    let lan = Lan::create("lo", 1, Link::None).unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(lan.ns(1), dir_a.path(), &["lo"], "127.0.0.1:0");
    let b = start(lan.ns(1), dir_b.path(), &["lo"], "127.0.0.1:0");
    a.init("Ada Lovelace").unwrap();
    b.init("Bowen Tamsin").unwrap();
    pair_without_address(&a, &b);
    moment(&a, "found over loopback");
    moment(&b, "and back");
    wait_converged(&[&a, &b], "household").unwrap();
}

#[test]
fn ipv6_link_local_only_pairs_and_syncs_with_scope_ids() {
    if unavailable() {
        return;
    }
    // A link with nothing but fe80:: addresses: an address is only usable with the
    // scope id of the interface it was heard on.
    let lan = Lan::create("v6", 2, Link::Ipv6LinkLocal).unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(lan.ns(1), dir_a.path(), &[], "[::]:0");
    let b = start(lan.ns(2), dir_b.path(), &[], "[::]:0");
    a.init("Ada Lovelace").unwrap();
    b.init("Bowen Tamsin").unwrap();
    pair_without_address(&a, &b);
    moment(&b, "over link-local");
    wait_converged(&[&a, &b], "household").unwrap();
    // The address that worked was remembered with its scope.
    let remembered: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|d| d.status().unwrap().peers)
        .filter_map(|p| p.last_addr)
        .collect();
    assert!(
        remembered
            .iter()
            .any(|a| a.starts_with("[fe80::") && a.contains('%')),
        "remembered: {remembered:?}"
    );
}

#[test]
fn partners_find_each_other_on_a_lan_and_strangers_learn_nothing() {
    if unavailable() {
        return;
    }
    // Hosts: 1 Ada's device, 2 Bowen's, 3 a stranger listening, 4 a copycat (Eve).
    let lan = Lan::create("lan", 4, Link::Ipv4).unwrap();
    let stranger = Helper::start(
        lan.ns(3),
        "stranger",
        &[("HELPER_IP", lan.addr(3)), ("HELPER_DIAL", lan.addr(1))],
    );
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut a = start(lan.ns(1), dirs[0].path(), &[], "0.0.0.0:0");
    let b = start(lan.ns(2), dirs[1].path(), &[], "0.0.0.0:0");
    a.init("Ada Lovelace").unwrap();
    b.init("Bowen Tamsin").unwrap();

    // 1. Pairing with the code alone, then sync.
    let paired = Instant::now();
    pair_without_address(&a, &b);
    eprintln!("paired by mDNS in {:?}", paired.elapsed());
    moment(&a, "hello over the lan");
    wait_converged(&[&a, &b], "household").unwrap();
    let mut never_seen = secrets_of(&a);
    never_seen.extend(secrets_of(&b));
    // Nothing on the air, nor anything a stranger's dial brings home, says which
    // program is in use.
    never_seen.push(b"hearth".to_vec());

    // 2. Eve, of another household, copies the label Ada's device announced and
    //    replays it at her own address once Ada's device has gone.
    let mut eve = TestDaemon::start_opts(
        dirs[2].path(),
        &DaemonOptions {
            listen: "0.0.0.0:0".into(),
            netns: Some(lan.ns(4).into()),
            log: Some("info,hearthd::net=debug".into()),
            ..DaemonOptions::default()
        },
    )
    .unwrap();
    eve.init("Eve Mallory").unwrap();
    never_seen.extend(secrets_of(&eve));
    let eve_port: SocketAddr = eve.addr().unwrap().parse().unwrap();
    let copycat = Helper::start(
        lan.ns(4),
        "copycat",
        &[
            ("HELPER_IP", lan.addr(4)),
            ("HELPER_COPY_FROM", lan.addr(1)),
            ("HELPER_PORT", eve_port.port().to_string()),
        ],
    );
    wait_until(
        Duration::from_secs(10),
        "the copycat heard Ada's label",
        || copycat.path("heard").exists(),
    );
    a.stop().unwrap();
    copycat.signal("go");
    let eve_addr = format!("{}:{}", lan.addr(4), eve_port.port());
    wait_until(
        Duration::from_secs(10),
        "Bowen's device dialled the copy",
        || {
            b.log_lines()
                .iter()
                .any(|l| l.contains(&eve_addr) && l.contains("did not lead to a household device"))
        },
    );
    // The handshake refused it on both sides: nobody is connected to Eve.
    assert!(eve.status().unwrap().peers.iter().all(|p| !p.connected));
    let eve_id = eve.status().unwrap().device_id.unwrap();
    assert!(b
        .status()
        .unwrap()
        .peers
        .iter()
        .all(|p| p.device_id != eve_id));

    // 3. Ada's device restarts on a new port with its address book gone; Bowen's
    //    remembered address for it is stale. They find each other again by mDNS.
    std::fs::remove_file(dirs[0].path().join("peers.hearth")).ok();
    moment(&b, "while you were away");
    let again = Instant::now();
    a = start(lan.ns(1), dirs[0].path(), &[], "0.0.0.0:0");
    wait_converged(&[&a, &b], "household").unwrap();
    eprintln!(
        "found again and synced {:?} after the restart",
        again.elapsed()
    );
    let copied = copycat.finish();

    // 4. Everyone leaves; the stranger's record is read.
    a.stop().unwrap();
    let mut b = b;
    b.stop().unwrap();
    eve.stop().unwrap();
    let record = stranger.finish();

    let packets = record["packets"].as_array().unwrap();
    let from = |ip: String| {
        packets
            .iter()
            .filter(|p| p["from"].as_str().is_some_and(|f| f.starts_with(&ip)))
            .count()
    };
    eprintln!(
        "the stranger heard {} mDNS packets ({} from Ada's device, {} from Bowen's) and resolved {} announcements; none carried a name, id or key",
        packets.len(),
        from(lan.addr(1)),
        from(lan.addr(2)),
        record["services"].as_array().map_or(0, Vec::len)
    );
    assert!(from(lan.addr(1)) > 0, "the stranger heard Ada's device");
    assert!(from(lan.addr(2)) > 0, "the stranger heard Bowen's device");
    for packet in packets {
        let bytes = data_encoding_hex(packet["hex"].as_str().unwrap());
        for secret in &never_seen {
            assert!(
                !contains(&bytes, secret),
                "a packet from {} carries `{}`",
                packet["from"],
                String::from_utf8_lossy(secret)
            );
        }
    }
    let services = record["services"].as_array().unwrap();
    assert!(
        !services.is_empty(),
        "the stranger resolved the announcements"
    );
    let mut labels = BTreeSet::new();
    let mut types = BTreeSet::new();
    for service in services {
        let fullname = service["fullname"].as_str().unwrap();
        let (label, service_type) = fullname.split_once('.').unwrap();
        assert_is_service_type(service_type);
        types.insert(service_type.to_string());
        assert_is_label("instance name", label);
        let host = service["host"].as_str().unwrap();
        assert_is_label("host name", host.strip_suffix(".local.").unwrap());
        for (key, value) in service["txt"].as_object().unwrap() {
            assert_eq!(key, "t");
            assert_is_label("TXT value", value.as_str().unwrap());
        }
        labels.insert(label.to_string());
    }
    // A control for the byte search above: the labels themselves are found in it.
    let first = labels.iter().next().unwrap().as_bytes();
    assert!(packets
        .iter()
        .any(|p| contains(&data_encoding_hex(p["hex"].as_str().unwrap()), first)));
    assert!(
        never_seen.len() >= 12,
        "{} secrets to look for",
        never_seen.len()
    );
    // Ada's device announced a fresh label after its restart; the copy was of the
    // old one.
    let copied: BTreeSet<String> = copied["copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(!copied.is_empty());
    assert!(labels.len() > copied.len() + 1, "labels seen: {labels:?}");
    // The household and the pairing each announced under their own rotating type.
    assert!(types.len() >= 2, "service types seen: {types:?}");

    // 5. The stranger dialled Ada's device for sync at the address it resolved, as an
    //    unpaired device would, and took home each certificate it was shown: a
    //    one-time key each time, and nothing of Ada's.
    let dials = record["dials"].as_array().unwrap();
    assert!(dials.len() >= 2, "{dials:?}");
    let mut certs = BTreeSet::new();
    for dial in dials {
        let cert = data_encoding_hex(dial["cert"].as_str().unwrap());
        assert!(!cert.is_empty(), "{dial}");
        for secret in &never_seen {
            assert!(
                !contains(&cert, secret),
                "an unpaired dial was shown `{}`",
                String::from_utf8_lossy(secret)
            );
        }
        let outcome = dial["outcome"].as_str().unwrap();
        assert!(outcome.contains("refused"), "{outcome}");
        certs.insert(cert);
    }
    assert_eq!(certs.len(), dials.len(), "every dial met a new certificate");
    eprintln!(
        "the stranger dialled {} times and was shown {} different one-time certificates",
        dials.len(),
        certs.len()
    );
}

/// A DNS-SD service type as Hearth makes them: `_` and twelve letters, no fixed name.
fn assert_is_service_type(service_type: &str) {
    let name = service_type
        .strip_prefix('_')
        .and_then(|t| t.strip_suffix(token::SERVICE_DOMAIN))
        .unwrap_or_else(|| panic!("`{service_type}` is not a rotating service type"));
    assert_eq!(name.len(), token::SERVICE_NAME_LEN, "{service_type}");
    assert!(
        name.bytes().all(|b| b.is_ascii_lowercase()),
        "{service_type}"
    );
    assert!(!contains(service_type.as_bytes(), b"hearth"));
}

/// On hosts 1 to 3 of `lan`: Ada's laptop, Bowen's device and Ada's phone, all paired
/// by mDNS alone. Returns their data directories too (the daemons come after them, so
/// they stop first).
fn three_paired(lan: &Lan) -> (Vec<tempfile::TempDir>, TestDaemon, TestDaemon, TestDaemon) {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = start(lan.ns(1), dirs[0].path(), &[], "0.0.0.0:0");
    let b = start(lan.ns(2), dirs[1].path(), &[], "0.0.0.0:0");
    let phone = start(lan.ns(3), dirs[2].path(), &[], "0.0.0.0:0");
    a.init("Ada Lovelace").unwrap();
    b.init("Bowen Tamsin").unwrap();
    phone.init("Ada Lovelace").unwrap();
    pair_without_address(&a, &b);
    pair_same_person_without_address(&a, &phone);
    (dirs, a, b, phone)
}

#[test]
fn a_removed_device_is_not_answered_by_discovery() {
    if unavailable() {
        return;
    }
    // Hosts: 1 Ada's laptop, 2 Bowen's, 3 Ada's phone (later removed from the roster).
    let lan = Lan::create("removed", 3, Link::Ipv4).unwrap();
    let (dirs, a, b, mut phone) = three_paired(&lan);
    moment(&a, "all three of us");
    wait_converged(&[&a, &b, &phone], "household").unwrap();
    let phone_id = phone.status().unwrap().device_id.unwrap();

    // 1. The phone is removed while it is away.
    phone.stop().unwrap();
    a.call(RosterCall::DevicesRemove {
        id: phone_id.clone(),
    })
    .unwrap();
    moment(&a, "after the phone was removed");
    wait_converged(&[&a, &b], "household").unwrap();

    // 2. It comes back on a new port with no address book. It announces under the
    //    epoch it holds, which the others left when they removed it: they do not
    //    answer it (a removed device could announce there to lure them into dialling
    //    it and showing their certificates), and it does not recognise them.
    std::fs::remove_file(dirs[2].path().join("peers.hearth")).ok();
    let logged_before = [a.log_lines().len(), b.log_lines().len()];
    phone = start(lan.ns(3), dirs[2].path(), &[], "0.0.0.0:0");
    let phone_ip = lan.addr(3);
    phone.wait_for_log("announced this device").unwrap();
    // A round of sync between the other two, after the phone's announcement went out.
    moment(&b, "after the phone came back");
    wait_converged(&[&a, &b], "household").unwrap();
    for (d, before) in [(&a, logged_before[0]), (&b, logged_before[1])] {
        let since: Vec<String> = d.log_lines().into_iter().skip(before).collect();
        assert!(
            !since.iter().any(|l| l.contains(&format!("{phone_ip}:"))),
            "a household device dialled the removed phone: {since:#?}"
        );
    }
    assert!(phone.status().unwrap().peers.iter().all(|p| !p.connected));
    let notes = phone
        .call(DocCall::Log(Default::default()))
        .unwrap()
        .to_string();
    assert!(!notes.contains("after the phone was removed"));
    assert!(notes.contains("all three of us"));
}

/// The household labels a stranger's record resolved from `ip`.
fn labels_from(services: &Value, ip: &str) -> Vec<String> {
    services
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            s["addrs"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a.as_str() == Some(ip))
        })
        // The instance name is the label; whatever service type it went under.
        .filter_map(|s| Some(s["fullname"].as_str()?.split_once('.')?.0.to_string()))
        .collect()
}

/// What a helper resolved so far (empty until it resolved something).
fn resolved(helper: &Helper) -> Value {
    std::fs::read_to_string(helper.path("resolved.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// Whether `label`, heard now, matches any of `secrets`.
fn matches_any(label: &str, secrets: &[hearth_core::epochs::Epoch]) -> bool {
    let hour = token::hour_of(unix_ms() / 1000);
    secrets
        .iter()
        .any(|e| token::is_household(label, &e.secret, hour))
}

#[test]
fn a_removed_device_no_longer_recognises_the_households_announcements() {
    if unavailable() {
        return;
    }
    // Hosts: 1 Ada's laptop, 2 Bowen's, 3 Ada's phone, later removed; from its host, a
    // listener records what the household announces, and the phone's own disk says
    // which secrets it holds.
    let lan = Lan::create("epoch", 3, Link::Ipv4).unwrap();
    let (dirs, a, b, mut phone) = three_paired(&lan);
    wait_converged(&[&a, &b, &phone], "household").unwrap();
    let epoch = |d: &TestDaemon| d.status().unwrap().household_epoch.unwrap();
    wait_until(Duration::from_secs(10), "all three hold one epoch", || {
        epoch(&a) == epoch(&phone) && epoch(&b) == epoch(&phone)
    });
    let phone_id = phone.status().unwrap().device_id.unwrap();
    let (ip_a, ip_b) = (lan.addr(1), lan.addr(2));

    // 1. A control: before the removal, what the phone's host hears matches the
    //    phone's secrets, for both other devices.
    let before = Helper::start(lan.ns(3), "stranger", &[("HELPER_IP", lan.addr(3))]);
    let held = hearth_tests::epochs::held_epochs(dirs[2].path()).unwrap();
    wait_until(
        Duration::from_secs(20),
        "the phone's host recognised both devices' labels",
        || {
            let seen = resolved(&before);
            [&ip_a, &ip_b]
                .iter()
                .all(|ip| labels_from(&seen, ip).iter().any(|l| matches_any(l, &held)))
        },
    );
    before.finish();

    // 2. The phone is removed while it is away. The laptop and Bowen's device move to
    //    a new epoch together.
    phone.stop().unwrap();
    let old = epoch(&a);
    a.call(RosterCall::DevicesRemove {
        id: phone_id.clone(),
    })
    .unwrap();
    wait_until(
        Duration::from_secs(20),
        "the remaining devices agree on a new epoch",
        || {
            let e = epoch(&a);
            e.number > old.number
                && epoch(&b) == e
                && b.call(RosterCall::DevicesList)
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["id"] == phone_id.as_str() && !d["removed_at"].is_null())
        },
    );
    let current = hearth_tests::epochs::held_epochs(dirs[0].path()).unwrap()[0].clone();

    // 3. From the phone's host, with everything the phone holds: the household's
    //    announcements are heard (they match the new epoch), and none matches any
    //    secret on the phone's disk.
    let after = Helper::start(lan.ns(3), "stranger", &[("HELPER_IP", lan.addr(3))]);
    wait_until(
        Duration::from_secs(20),
        "the phone's host heard both devices' new labels",
        || {
            let seen = resolved(&after);
            [&ip_a, &ip_b].iter().all(|ip| {
                labels_from(&seen, ip)
                    .iter()
                    .any(|l| matches_any(l, std::slice::from_ref(&current)))
            })
        },
    );
    let record = after.finish();
    let held = hearth_tests::epochs::held_epochs(dirs[2].path()).unwrap();
    assert!(!held.is_empty());
    assert!(held.iter().all(|e| e.secret != current.secret));
    let mut heard = 0;
    for ip in [&ip_a, &ip_b] {
        for label in labels_from(&record["services"], ip) {
            heard += 1;
            assert!(
                !matches_any(&label, &held),
                "the removed phone recognises a label announced from {ip}"
            );
        }
    }
    eprintln!("the removed phone's host resolved {heard} household labels after the removal; none matched its secrets");
    assert!(heard >= 2);
    let _ = phone;
}

/// How quiet an idle pair is: run with `HEARTH_IDLE_SECS=600 cargo test -p hearth-tests
/// --test mdns_netns idle -- --ignored --nocapture` (and `HEARTH_IDLE_DUMP=FILE` to keep
/// the packets). It prints the mDNS packets per minute of two paired daemons, counted by
/// a passive listener on the same link. Once the one-minute browse window after start
/// has passed, an idle pair sends nothing until the hourly label change and check.
#[test]
#[ignore = "takes minutes; measures the idle packet rate"]
fn idle_packets_per_minute() {
    if unavailable() {
        return;
    }
    let secs: u64 = std::env::var("HEARTH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    // Shift the daemons' discovery clock so that the hour turns two and a half minutes
    // in, and the count shows what the hourly label change costs. (This test runs on
    // its own, so setting the variable for the children is safe.)
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let offset = (3450 - (now % 3600) as i64).rem_euclid(3600);
    std::env::set_var("HEARTH_CLOCK_OFFSET_SECS", offset.to_string());
    let lan = Lan::create("idle", 3, Link::Ipv4).unwrap();
    // A passive listener: it never asks, so it adds nothing to count.
    let listener = Helper::start(
        lan.ns(3),
        "stranger",
        &[("HELPER_IP", lan.addr(3)), ("HELPER_BROWSE", "0".into())],
    );
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut a = start(lan.ns(1), dirs[0].path(), &[], "0.0.0.0:0");
    let mut b = start(lan.ns(2), dirs[1].path(), &[], "0.0.0.0:0");
    a.init("Ada Lovelace").unwrap();
    b.init("Bowen Tamsin").unwrap();
    pair_without_address(&a, &b);
    wait_converged(&[&a, &b], "household").unwrap();
    let begin = unix_ms();
    std::thread::sleep(Duration::from_secs(secs));
    let record = listener.finish();
    a.stop().unwrap();
    b.stop().unwrap();
    if let Ok(path) = std::env::var("HEARTH_IDLE_DUMP") {
        std::fs::write(path, record.to_string()).unwrap();
    }
    let packets = record["packets"].as_array().unwrap();
    let mut per_minute = std::collections::BTreeMap::<u64, [u64; 2]>::new();
    for p in packets {
        let t = p["ms"].as_u64().unwrap();
        if t < begin || t >= begin + secs * 1000 {
            continue;
        }
        let family = usize::from(p["from"].as_str().unwrap().contains(':'));
        per_minute.entry((t - begin) / 60_000).or_default()[family] += 1;
    }
    eprintln!("idle minute: IPv4 packets, IPv6 packets (two paired daemons, all their mDNS)");
    for (minute, [v4, v6]) in &per_minute {
        eprintln!("{minute}: {v4}, {v6}");
    }
}

/// The helper's side: does nothing unless started by a test above.
#[test]
#[ignore = "helper process for the namespace tests"]
fn netns_helper() {
    let Ok(role) = std::env::var(HELPER_ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var("HELPER_DIR").unwrap());
    let ip: Ipv4Addr = std::env::var("HELPER_IP").unwrap().parse().unwrap();
    match role.as_str() {
        "stranger" => stranger(&dir, ip),
        "copycat" => copycat(&dir, ip),
        other => panic!("unknown helper role {other}"),
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn stopped(dir: &Path) -> bool {
    dir.join("stop").exists()
}

/// Records every mDNS packet on the link (raw, with its source) and, unless told not
/// to, browses for Hearth services and records what they resolve to.
fn stranger(dir: &Path, ip: Ipv4Addr) {
    use socket2::{Domain, Protocol, Socket, Type};
    let v4 = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    v4.set_reuse_address(true).unwrap();
    v4.set_reuse_port(true).unwrap();
    v4.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5353)).into())
        .unwrap();
    v4.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 251), &ip)
        .unwrap();
    let ifindex: u32 = std::fs::read_to_string("/sys/class/net/eth0/ifindex")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let v6 = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    v6.set_only_v6(true).unwrap();
    v6.set_reuse_address(true).unwrap();
    v6.set_reuse_port(true).unwrap();
    v6.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 5353)).into())
        .unwrap();
    v6.join_multicast_v6(&"ff02::fb".parse().unwrap(), ifindex)
        .unwrap();
    let sockets: Vec<std::net::UdpSocket> = vec![v4.into(), v6.into()];
    let packets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let packets = packets.clone();
            let dir = dir.to_path_buf();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 9000];
                while !stopped(&dir) {
                    if let Ok((n, from)) = socket.recv_from(&mut buf) {
                        // Our own queries come back to us; they are not what we study.
                        if from.ip() == IpAddr::V4(ip) || is_own_v6(&from) {
                            continue;
                        }
                        let hex: String = buf[..n].iter().map(|b| format!("{b:02x}")).collect();
                        packets.lock().unwrap().push(json!({
                            "ms": unix_ms(),
                            "from": from.ip().to_string(),
                            "hex": hex,
                        }));
                    }
                }
            })
        })
        .collect();
    let browse = std::env::var("HELPER_BROWSE").map_or(true, |v| v != "0");
    let dial_ip: Option<IpAddr> = std::env::var("HELPER_DIAL")
        .ok()
        .and_then(|ip| ip.parse().ok());
    let mut services = Vec::new();
    let mut dials = Vec::new();
    let mut dialled = BTreeSet::new();
    std::fs::write(dir.join("started"), b"").unwrap();
    if browse {
        let mdns = mdns_sd::ServiceDaemon::new().unwrap();
        let mut browses = Vec::new();
        for_each_service(&mdns, dir, &mut browses, |s| {
            let txt: serde_json::Map<String, Value> = s
                .txt_properties
                .iter()
                .map(|p| (p.key().to_string(), Value::from(p.val_str())))
                .collect();
            services.push(json!({
                "fullname": s.fullname,
                "host": s.host,
                "txt": txt,
                "addrs": s.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            }));
            // What it resolved so far, for a test that waits on it.
            let so_far = Value::from(services.clone()).to_string();
            let _ = std::fs::write(dir.join("resolved.tmp"), so_far);
            let _ = std::fs::rename(dir.join("resolved.tmp"), dir.join("resolved.json"));
            // An unpaired device dials what it found, twice.
            for addr in &s.addresses {
                let target = SocketAddr::new(addr.to_ip_addr(), s.port);
                if Some(target.ip()) == dial_ip && dialled.insert(target) {
                    for _ in 0..2 {
                        dials.push(unpaired_dial(target));
                    }
                }
            }
        });
        let _ = mdns.shutdown();
    }
    for reader in readers {
        reader.join().unwrap();
    }
    let packets = packets.lock().unwrap().clone();
    let out = json!({ "packets": packets, "services": services, "dials": dials });
    let mut file = std::fs::File::create(dir.join("out.json")).unwrap();
    file.write_all(out.to_string().as_bytes()).unwrap();
}

/// Asks which service types are on the link (RFC 6763 §9), browses each one it hears
/// of, and calls `resolved` for every service resolved, until told to stop.
fn for_each_service(
    mdns: &mdns_sd::ServiceDaemon,
    dir: &Path,
    browses: &mut Vec<(String, mdns_sd::Receiver<mdns_sd::ServiceEvent>)>,
    mut resolved: impl FnMut(&mdns_sd::ResolvedService),
) {
    let meta = mdns.browse("_services._dns-sd._udp.local.").unwrap();
    while !stopped(dir) && !dir.join("go").exists() {
        let mut idle = true;
        while let Ok(event) = meta.try_recv() {
            if let mdns_sd::ServiceEvent::ServiceFound(_, service_type) = event {
                if browses.iter().all(|(t, _)| *t != service_type) {
                    let events = mdns.browse(&service_type).unwrap();
                    browses.push((service_type, events));
                }
                idle = false;
            }
        }
        for (_, events) in browses.iter() {
            while let Ok(event) = events.try_recv() {
                if let mdns_sd::ServiceEvent::ServiceResolved(s) = event {
                    resolved(&s);
                    idle = false;
                }
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A certificate verifier that accepts anything and keeps it: what a stranger who
/// dials takes home.
#[derive(Debug, Default)]
struct Keep(std::sync::Mutex<Vec<Vec<u8>>>);

impl quinn::rustls::client::danger::ServerCertVerifier for Keep {
    fn verify_server_cert(
        &self,
        end_entity: &quinn::rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[quinn::rustls::pki_types::CertificateDer<'_>],
        _server_name: &quinn::rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: quinn::rustls::pki_types::UnixTime,
    ) -> Result<quinn::rustls::client::danger::ServerCertVerified, quinn::rustls::Error> {
        self.0.lock().unwrap().push(end_entity.to_vec());
        Ok(quinn::rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &quinn::rustls::pki_types::CertificateDer<'_>,
        _dss: &quinn::rustls::DigitallySignedStruct,
    ) -> Result<quinn::rustls::client::danger::HandshakeSignatureValid, quinn::rustls::Error> {
        Err(quinn::rustls::Error::General("TLS 1.2".into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &quinn::rustls::pki_types::CertificateDer<'_>,
        _dss: &quinn::rustls::DigitallySignedStruct,
    ) -> Result<quinn::rustls::client::danger::HandshakeSignatureValid, quinn::rustls::Error> {
        Ok(quinn::rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<quinn::rustls::SignatureScheme> {
        vec![quinn::rustls::SignatureScheme::ED25519]
    }
}

/// Dials `target` for sync as an unpaired device: it takes any certificate, shows a
/// fresh one of its own, and waits for whatever comes inside the channel. Returns the
/// certificate it was shown and how the attempt ended.
fn unpaired_dial(target: SocketAddr) -> Value {
    use quinn::rustls;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let key = fresh_identity();
        let keep = std::sync::Arc::new(Keep::default());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(keep.clone())
            .with_client_auth_cert(vec![key.0], key.1)
            .unwrap();
        tls.alpn_protocols = vec![hearthd::transport::ALPN_SYNC.to_vec()];
        tls.enable_sni = false;
        let config = quinn::ClientConfig::new(std::sync::Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
        ));
        let endpoint =
            quinn::Endpoint::client(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).unwrap();
        let outcome = match endpoint.connect_with(config, target, "x.invalid") {
            Err(e) => format!("no dial: {e}"),
            Ok(connecting) => match tokio::time::timeout(Duration::from_secs(10), connecting).await
            {
                Err(_) => "no answer".to_string(),
                Ok(Err(e)) => format!("refused at the handshake: {e}"),
                Ok(Ok(connection)) => {
                    match tokio::time::timeout(Duration::from_secs(10), connection.accept_bi())
                        .await
                    {
                        Ok(Err(e)) => format!("refused after the handshake: {e}"),
                        Ok(Ok(_)) => "the listener said something".to_string(),
                        Err(_) => "silence".to_string(),
                    }
                }
            },
        };
        endpoint.close(0u32.into(), b"");
        let cert = keep.0.lock().unwrap().first().cloned().unwrap_or_default();
        let hex: String = cert.iter().map(|b| format!("{b:02x}")).collect();
        json!({ "cert": hex, "outcome": outcome })
    })
}

/// A fresh Ed25519 device certificate and key, made the way a Hearth device makes its own.
fn fresh_identity() -> (
    quinn::rustls::pki_types::CertificateDer<'static>,
    quinn::rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = hearthd::transport::DeviceKey::generate().unwrap();
    (
        quinn::rustls::pki_types::CertificateDer::from(key.certificate_der().to_vec()),
        quinn::rustls::pki_types::PrivateKeyDer::Pkcs8(key.pkcs8().to_vec().into()),
    )
}

fn is_own_v6(from: &SocketAddr) -> bool {
    let IpAddr::V6(v6) = from.ip() else {
        return false;
    };
    // Our link-local address derives from our interface's MAC; compare with the
    // addresses the kernel lists for eth0.
    std::fs::read_to_string("/proc/net/if_inet6")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with("eth0"))
        .filter_map(|l| l.split_whitespace().next())
        .any(|hex| {
            let ours: String = v6.segments().iter().map(|s| format!("{s:04x}")).collect();
            hex == ours
        })
}

/// Browses, remembers the labels announced from `HELPER_COPY_FROM`, and on `go`
/// announces those labels itself, at its own address and `HELPER_PORT`.
fn copycat(dir: &Path, ip: Ipv4Addr) {
    let from: IpAddr = std::env::var("HELPER_COPY_FROM").unwrap().parse().unwrap();
    let port: u16 = std::env::var("HELPER_PORT").unwrap().parse().unwrap();
    let mdns = mdns_sd::ServiceDaemon::new().unwrap();
    std::fs::write(dir.join("started"), b"").unwrap();
    // Label to the service type it was heard under: a replay copies both.
    let mut heard = std::collections::BTreeMap::new();
    let mut browses = Vec::new();
    for_each_service(&mdns, dir, &mut browses, |s| {
        if s.addresses.iter().any(|a| a.to_ip_addr() == from) {
            let (label, service_type) = s.fullname.split_once('.').unwrap();
            heard.insert(label.to_string(), service_type.to_string());
            std::fs::write(dir.join("heard"), b"").unwrap();
        }
    });
    for (service_type, _) in &browses {
        let _ = mdns.stop_browse(service_type);
    }
    for (label, service_type) in &heard {
        let txt = [("t", label.as_str())];
        let mut info = mdns_sd::ServiceInfo::new(
            service_type,
            label,
            &format!("{label}.local."),
            IpAddr::V4(ip),
            port,
            &txt[..],
        )
        .unwrap();
        info.set_requires_probe(false);
        mdns.register(info).unwrap();
    }
    while !stopped(dir) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = mdns.shutdown();
    let out = json!({ "copied": heard.into_keys().collect::<Vec<_>>() });
    std::fs::write(dir.join("out.json"), out.to_string()).unwrap();
}
