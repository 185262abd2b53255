//! Several devices per person, removing devices, pausing and leaving, between real
//! daemons over QUIC on loopback.
//!
//! "Does not sync" is never shown by sleeping: each such assertion follows a positive
//! event that the same batch would have carried to the other device too (one's own
//! device receiving the write), or a refusal the other device logged.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use hearth_api::client::ClientError;
use hearth_api::{CheckinParams, DeviceSummary, DocCall, NetCall, RosterCall};
use hearth_core::model::Visibility;
use hearth_tests::harness::{pair, pair_same_person, wait_converged, TestDaemon, EVENT_TIMEOUT};
use serde_json::Value;

fn moment(d: &TestDaemon, note: &str) {
    d.moment(note).unwrap();
}

fn private_checkin(d: &TestDaemon, note: &str) {
    d.call(DocCall::CheckinAdd(CheckinParams {
        battery: 40,
        note: Some(note.into()),
        visibility: Some(Visibility::Private),
        ..Default::default()
    }))
    .unwrap();
}

fn notes(d: &TestDaemon) -> Vec<String> {
    d.notes().unwrap()
}

fn has(d: &TestDaemon, note: &str) -> bool {
    notes(d).iter().any(|n| n == note)
}

fn person_id(d: &TestDaemon) -> String {
    d.status().unwrap().person.unwrap().id
}

fn device_id(d: &TestDaemon) -> String {
    d.status().unwrap().device_id.unwrap()
}

fn devices(d: &TestDaemon) -> Vec<DeviceSummary> {
    serde_json::from_value(d.call(RosterCall::DevicesList).unwrap()).unwrap()
}

/// Waits until `cond` holds, looking again whenever one of `daemons` reports an event
/// (and at least every few hundred milliseconds, for state that changes without one).
fn wait_until(daemons: &[&TestDaemon], what: &str, cond: impl Fn() -> bool) {
    let mut subs: Vec<_> = daemons.iter().map(|d| d.subscribe().unwrap()).collect();
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {EVENT_TIMEOUT:?}"
        );
        for sub in &mut subs {
            let _ = sub.next_event().unwrap();
        }
    }
}

const REFUSED: &str = "refused an incoming connection: the device is not allowed to connect";
/// What a device logs when the device it dialled does not show it belongs to the
/// household, under any household secret this device holds.
const NOT_OUR_HOUSEHOLD: &str = "refused to talk to a listener: it did not show it belongs";
/// What a device logs when the device it dialled is one it no longer trusts.
const REFUSED_OUT: &str = "refused to talk to a device";

/// Waits until `d` and `device` are refused to each other at the handshake: `d` logs a
/// refusal of `device`, incoming or outgoing; or one of them, dialling, turns down the
/// other's one-time certificate because they no longer share a household secret (the
/// epoch moved on when trust shrank). Which comes first depends on who dials whom
/// before or after the new epoch; either way nothing passes. `intruder` is the refused
/// device's daemon, when the test runs it.
fn wait_refused(d: &TestDaemon, device: &str, intruder: Option<&TestDaemon>) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let refused = || {
        d.log_lines().iter().any(|l| {
            ((l.contains(REFUSED) || l.contains(REFUSED_OUT)) && l.contains(device))
                || l.contains(NOT_OUR_HOUSEHOLD)
        }) || intruder.is_some_and(|i| i.log_lines().iter().any(|l| l.contains(NOT_OUR_HOUSEHOLD)))
    };
    while !refused() {
        assert!(
            Instant::now() < deadline,
            "{device} was never refused at the handshake"
        );
        // Log lines arrive through a pipe that a reader thread drains.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Ada on `a`, Bo on `b`, and Ada's second device `a2`, joined with `--same-person`;
/// `a2` also knows Bo's address, so it syncs with both.
fn household() -> (TestDaemon, TestDaemon, TestDaemon) {
    let a = TestDaemon::start().unwrap();
    let b = TestDaemon::start().unwrap();
    let a2 = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    a2.init("Ada again").unwrap();
    pair(&a, &b).unwrap();
    pair_same_person(&a, &a2).unwrap();
    a2.call(NetCall::PeersAdd {
        addr: b.addr().unwrap(),
    })
    .unwrap();
    wait_converged(&[&a, &b, &a2], "household").unwrap();
    (a, b, a2)
}

#[test]
fn a_second_device_of_the_same_person_shares_the_private_document_and_the_partner_trusts_it() {
    let a = TestDaemon::start().unwrap();
    let b = TestDaemon::start().unwrap();
    let a2 = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    a2.init("Ada's phone").unwrap();
    pair(&a, &b).unwrap();
    let ada = person_id(&a);
    private_checkin(&a, "ada alone, before the phone");

    // 1. A device that already holds entries cannot become someone else's device.
    let busy = TestDaemon::start().unwrap();
    busy.init("Someone").unwrap();
    moment(&busy, "mine");
    let invite = a
        .call(NetCall::PairInvite {
            timeout_secs: Some(60),
            own_device: true,
        })
        .unwrap();
    let err = busy
        .call(NetCall::PairJoin {
            code: invite["code"].as_str().unwrap().into(),
            addr: invite["addresses"][0].as_str().map(String::from),
            merge: true,
        })
        .unwrap_err();
    match err {
        ClientError::Api(e) => assert!(e.hint.unwrap_or_default().contains("fresh device")),
        other => panic!("unexpected {other}"),
    }

    // 2. The fresh phone joins as Ada: it takes her person and her private document.
    pair_same_person(&a, &a2).unwrap();
    assert_eq!(person_id(&a2), ada);
    assert_eq!(a2.status().unwrap().people.len(), 2, "no third person");
    wait_converged(&[&a, &a2], "private").unwrap();
    assert!(has(&a2, "ada alone, before the phone"));
    private_checkin(&a2, "ada on the phone");
    wait_converged(&[&a, &a2], "private").unwrap();
    assert!(has(&a, "ada on the phone"));

    // 3. The roster says who added the phone, on every device.
    wait_converged(&[&a, &b, &a2], "household").unwrap();
    let phone = device_id(&a2);
    let listed = devices(&b);
    let entry = listed.iter().find(|d| d.id == phone).unwrap();
    assert_eq!(entry.person_id, ada);
    assert_eq!(entry.added_by.as_deref(), Some(device_id(&a).as_str()));
    assert!(entry.trusted && !entry.this_device);
    assert!(devices(&a2).iter().any(|d| d.id == phone && d.this_device));

    // 4. Bo's device trusts the phone through the roster alone: with Ada's laptop gone,
    //    the phone reaches Bo directly and they sync.
    let mut a = a;
    a.stop().unwrap();
    a2.call(NetCall::PeersAdd {
        addr: b.addr().unwrap(),
    })
    .unwrap();
    moment(&a2, "from the phone");
    wait_converged(&[&a2, &b], "household").unwrap();
    assert!(has(&b, "from the phone"));
    // Ada's private entries never reach Bo.
    assert!(!has(&b, "ada on the phone"));
    assert!(!has(&b, "ada alone, before the phone"));

    // 5. The phone stays Ada's across a restart.
    let mut a2 = a2;
    a2.restart(false).unwrap();
    assert_eq!(person_id(&a2), ada);
    assert!(has(&a2, "ada on the phone"));
}

#[test]
fn a_removed_device_is_refused_everywhere_and_gets_nothing_more() {
    let (a, b, a2) = household();
    let phone = device_id(&a2);

    // 1. Ada removes her phone from the laptop; Bo's device hears of it by sync.
    let removed: DeviceSummary = serde_json::from_value(
        a.call(RosterCall::DevicesRemove {
            id: phone[..6].into(),
        })
        .unwrap(),
    )
    .unwrap();
    assert_eq!(removed.id, phone);
    assert!(removed.removed_at.is_some());
    wait_until(&[&b], "Bo's device learning of the removal", || {
        devices(&b)
            .iter()
            .any(|d| d.id == phone && d.removed_at.is_some())
    });

    // 2. The phone keeps trying both devices, and both refuse it at the handshake.
    a2.call(NetCall::SyncNow).unwrap();
    wait_refused(&a, &phone, Some(&a2));
    wait_refused(&b, &phone, Some(&a2));

    // 3. A change after the removal reaches Bo and never the phone.
    moment(&a, "after the removal");
    wait_converged(&[&a, &b], "household").unwrap();
    assert!(has(&b, "after the removal"));
    assert!(!has(&a2, "after the removal"));
    assert!(a2.status().unwrap().peers.iter().all(|p| !p.connected));

    // 4. The phone cannot remove itself from the list by asking, and a second removal
    //    says what happened.
    let again = a
        .call(RosterCall::DevicesRemove { id: phone.clone() })
        .unwrap_err();
    assert!(again.to_string().contains("already removed"), "{again}");
    let own = a
        .call(RosterCall::DevicesRemove { id: device_id(&a) })
        .unwrap_err();
    assert!(
        own.to_string().contains("the device you are using"),
        "{own}"
    );
}

#[test]
fn a_device_removed_while_offline_is_refused_when_it_returns() {
    let (a, b, mut a2) = household();
    let phone = device_id(&a2);
    let dir = a2.take_dir().unwrap();
    a2.stop().unwrap();

    // 1. Removed while it is away; Bo's device learns of it.
    a.call(RosterCall::DevicesRemove { id: phone.clone() })
        .unwrap();
    moment(&a, "while the phone was away");
    wait_converged(&[&a, &b], "household").unwrap();

    // 2. It comes back and dials both devices it knows. They moved the household
    //    secret on when it was removed, so it cannot even recognise them: it turns
    //    down their one-time certificates before it shows its own, and they never see
    //    it.
    let back = TestDaemon::start_in(dir.path()).unwrap();
    back.wait_for_log(NOT_OUR_HOUSEHOLD).unwrap();
    assert_eq!(epoch(&a).fingerprint, epoch(&b).fingerprint);
    assert!(epoch(&back).number < epoch(&a).number);
    moment(&b, "after the phone came back");
    wait_converged(&[&a, &b], "household").unwrap();
    assert!(!has(&back, "while the phone was away"));
    assert!(!has(&back, "after the phone came back"));
    // What it had synced before the removal, it still has.
    assert_eq!(devices(&back).len(), 3);
}

#[test]
fn a_pause_holds_the_partner_back_while_own_devices_sync_and_shows_on_both_sides() {
    let (a, b, a2) = household();
    let ada = person_id(&a);
    let laptop = device_id(&a);

    // 1. Ada pauses. The pause reaches Bo's device before it takes effect.
    let paused = a.call(RosterCall::Pause { for_secs: None }).unwrap();
    assert_eq!(paused["paused"], Value::Bool(true));
    let shows_pause = |d: &TestDaemon| {
        d.status()
            .unwrap()
            .people
            .iter()
            .any(|p| p.id == ada && p.paused.is_some())
    };
    wait_until(&[&b], "Bo's device hearing of the pause", || {
        shows_pause(&b)
    });
    assert!(shows_pause(&a) && shows_pause(&a2));
    // Bo's device is connected again, into a session that shares nothing. Its session
    // with Ada's phone must be past its farewell too: until then the phone still takes
    // what Bo's device sends, as the pause is on its way to Bo (a race the test lost
    // about once in six runs on a busy machine when it waited for the laptop alone).
    let phone = device_id(&a2);
    wait_until(&[&b], "Bo's sessions with Ada's devices on hold", || {
        let peers = b.status().unwrap().peers;
        let held = |id: &str| {
            peers
                .iter()
                .any(|p| p.device_id == id && p.connected && p.on_hold)
        };
        let not_sharing = |id: &str| {
            peers
                .iter()
                .filter(|p| p.device_id == id)
                .all(|p| !p.connected || p.on_hold)
        };
        held(&laptop) && not_sharing(&phone)
    });

    // 2. Everyone writes. Ada's own devices sync; the same write goes nowhere else.
    moment(&b, "bo during the pause");
    moment(&a, "ada during the pause");
    moment(&a2, "phone during the pause");
    private_checkin(&a2, "ada's own, during the pause");
    wait_converged(&[&a, &a2], "household").unwrap();
    wait_converged(&[&a, &a2], "private").unwrap();
    assert!(has(&a, "phone during the pause") && has(&a2, "ada during the pause"));
    assert!(!has(&b, "ada during the pause"));
    assert!(!has(&b, "phone during the pause"));
    assert!(!has(&a, "bo during the pause") && !has(&a2, "bo during the pause"));

    // 3. Resume: what was written during the pause travels both ways.
    let resumed = a.call(RosterCall::Resume).unwrap();
    assert_eq!(resumed["resumed"], Value::Bool(true));
    wait_converged(&[&a, &b, &a2], "household").unwrap();
    for d in [&a, &b, &a2] {
        for note in [
            "bo during the pause",
            "ada during the pause",
            "phone during the pause",
        ] {
            assert!(has(d, note), "{note} missing");
        }
        assert!(!shows_pause(d));
    }
    assert!(!has(&b, "ada's own, during the pause"));
}

#[test]
fn a_pause_for_a_while_ends_by_itself() {
    let a = TestDaemon::start().unwrap();
    let b = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    pair(&a, &b).unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    let paused = a.call(RosterCall::Pause { for_secs: Some(2) }).unwrap();
    assert!(paused["until"].is_i64());
    let ada = person_id(&a);
    wait_until(&[&b], "Bo's device hearing of the pause", || {
        b.status()
            .unwrap()
            .people
            .iter()
            .any(|p| p.id == ada && p.paused.is_some())
    });
    moment(&b, "written during a short pause");
    // Nobody resumes: the pause runs out, and the entry arrives.
    wait_until(&[&a, &b], "the pause running out", || {
        has(&a, "written during a short pause")
    });
    wait_converged(&[&a, &b], "household").unwrap();
}

#[test]
fn leaving_ends_sharing_for_good_and_both_sides_keep_their_copy() {
    let (a, b, a2) = household();
    moment(&a, "shared by ada");
    moment(&b, "shared by bo");
    private_checkin(&a, "ada's private");
    private_checkin(&b, "bo's private");
    wait_converged(&[&a, &b, &a2], "household").unwrap();

    // 1. Leaving needs a confirmation.
    let unconfirmed = a.call(RosterCall::Leave { confirm: false }).unwrap_err();
    assert!(
        unconfirmed.to_string().contains("confirmation"),
        "{unconfirmed}"
    );

    // 2. Ada leaves; Bo's device hears of it, then both sides refuse each other.
    let left = a.call(RosterCall::Leave { confirm: true }).unwrap();
    assert_eq!(left["left"], Value::Bool(true));
    let ada = person_id(&a);
    wait_until(&[&b], "Bo's device hearing that Ada left", || {
        b.status()
            .unwrap()
            .people
            .iter()
            .any(|p| p.id == ada && p.left_at.is_some())
    });
    // Bo's device dials Ada's again and refuses her at the handshake.
    let laptop = device_id(&a);
    b.call(NetCall::SyncNow).unwrap();
    wait_refused(&b, &laptop, Some(&a));

    // 3. Ada's devices keep syncing with each other; nothing crosses to Bo any more.
    moment(&a, "ada after leaving");
    moment(&b, "bo after ada left");
    wait_converged(&[&a, &a2], "household").unwrap();
    assert!(has(&a2, "ada after leaving"));
    assert!(!has(&b, "ada after leaving"));
    assert!(!has(&a, "bo after ada left"));
    assert!(a.call(RosterCall::Pause { for_secs: None }).is_err());
    // Nobody new is let in on either side: an invite would hand over the roster.
    for d in [&a, &b] {
        let invite = d
            .call(NetCall::PairInvite {
                timeout_secs: Some(60),
                own_device: false,
            })
            .unwrap_err();
        assert!(invite.to_string().contains("has ended"), "{invite}");
    }

    // 4. Export still works on both sides, each with their own copy.
    let records = |d: &TestDaemon| -> Vec<String> {
        let export = d.call(DocCall::Export).unwrap();
        let mut notes = Vec::new();
        for kind in ["moments", "checkins"] {
            for r in export["records"][kind].as_array().unwrap() {
                if let Some(n) = r["note"].as_str() {
                    notes.push(n.to_string());
                }
            }
        }
        notes
    };
    let ada_export = records(&a);
    let bo_export = records(&b);
    for note in [
        "shared by ada",
        "shared by bo",
        "ada's private",
        "ada after leaving",
    ] {
        assert!(
            ada_export.iter().any(|n| n == note),
            "{note} not in Ada's export"
        );
    }
    for note in [
        "shared by ada",
        "shared by bo",
        "bo's private",
        "bo after ada left",
    ] {
        assert!(
            bo_export.iter().any(|n| n == note),
            "{note} not in Bo's export"
        );
    }
    assert!(!bo_export
        .iter()
        .any(|n| n == "ada's private" || n == "ada after leaving"));
}

/// Waits until the three devices hold one epoch (pairing handed it over), and returns it.
fn one_epoch(a: &TestDaemon, b: &TestDaemon, a2: &TestDaemon) -> hearth_api::HouseholdEpochStatus {
    wait_until(&[a, b, a2], "the three devices holding one epoch", || {
        let e = epoch(a);
        epoch(b) == e && epoch(a2) == e
    });
    epoch(a)
}

/// The household secret epoch `d` says it is on: number and fingerprint, never the secret.
fn epoch(d: &TestDaemon) -> hearth_api::HouseholdEpochStatus {
    d.status().unwrap().household_epoch.unwrap()
}

/// Every household secret `d` holds on disk, as someone with its disk would read them.
fn held(d: &TestDaemon) -> Vec<hearth_core::epochs::Epoch> {
    let dir = std::path::PathBuf::from(d.status().unwrap().data_dir);
    hearth_tests::epochs::held_epochs(&dir).unwrap()
}

/// Whether a label announced under `epoch` this hour matches any secret in `secrets`.
fn recognised_by(
    epoch: &hearth_core::epochs::Epoch,
    secrets: &[hearth_core::epochs::Epoch],
) -> bool {
    use hearthd::discovery::token;
    let hour = token::hour_of(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    let label = token::household_label(&epoch.secret, hour, &token::Salt::default());
    secrets
        .iter()
        .any(|s| token::is_household(&label, &s.secret, hour))
}

#[test]
fn a_removal_moves_the_household_secret_to_an_epoch_the_removed_device_never_learns() {
    let (a, b, a2) = household();
    // 1. All three start on one epoch: pairing handed it over.
    let before = one_epoch(&a, &b, &a2);
    assert_eq!(before.number, 0);

    // 2. Ada removes her phone. Her laptop and Bo's device, once Bo's has heard of the
    //    removal, end on one newer epoch.
    let phone = device_id(&a2);
    a.call(RosterCall::DevicesRemove { id: phone.clone() })
        .unwrap();
    wait_until(
        &[&a, &b],
        "the remaining devices agreeing on a new epoch",
        || {
            let e = epoch(&a);
            e.number > before.number
                && epoch(&b) == e
                && devices(&b)
                    .iter()
                    .any(|d| d.id == phone && d.removed_at.is_some())
        },
    );
    let after = epoch(&a);

    // 3. The phone is refused as before, and holds neither the new secret nor anything
    //    that recognises what the others now announce.
    a2.call(NetCall::SyncNow).unwrap();
    wait_refused(&a, &phone, Some(&a2));
    wait_refused(&b, &phone, Some(&a2));
    let current = held(&a)[0].clone();
    assert_eq!(current.number, after.number);
    assert_eq!(current.fingerprint(), after.fingerprint);
    assert_eq!(held(&b)[0], current);
    let on_phone = held(&a2);
    assert!(!on_phone.is_empty());
    assert!(
        on_phone.iter().all(|e| e.secret != current.secret),
        "the removed phone holds the new household secret"
    );
    assert!(
        !recognised_by(&current, &on_phone),
        "the removed phone recognises the household's new labels"
    );
    // The phone stayed behind: it holds the old epoch (beside one of its own, if a
    // farewell told it of its removal and it moved on alone). The others still keep the
    // old epoch, for the covers of a device that missed the change, but no longer
    // answer its labels.
    let is_before = |e: &hearth_core::epochs::Epoch| {
        e.number == before.number && e.fingerprint() == before.fingerprint
    };
    assert!(on_phone.iter().any(is_before));
    assert!(held(&a).iter().any(is_before));
    // No log holds the new secret, in any usual spelling.
    let spellings = [
        data_encoding::HEXLOWER.encode(&current.secret[..]),
        data_encoding::BASE64.encode(&current.secret[..])[..40].to_string(),
        data_encoding::BASE64URL_NOPAD.encode(&current.secret[..])[..40].to_string(),
    ];
    for d in [&a, &b, &a2] {
        for line in d.log_lines() {
            assert!(
                spellings.iter().all(|s| !line.contains(s.as_str())),
                "a log line holds the household secret"
            );
        }
    }

    // 4. The new epoch survives a restart.
    let mut a = a;
    a.restart(false).unwrap();
    assert_eq!(epoch(&a), after);
}

#[test]
fn after_a_leaving_neither_side_recognises_the_other() {
    let (a, b, a2) = household();
    let before = one_epoch(&a, &b, &a2);
    let ada = person_id(&a);

    a.call(RosterCall::Leave { confirm: true }).unwrap();
    // Ada's two devices move on together; Bo's moves on alone once it hears of it.
    wait_until(&[&a, &a2, &b], "both sides on new epochs", || {
        let e = epoch(&a);
        e.number > before.number
            && epoch(&a2) == e
            && epoch(&b).number > before.number
            && [&a2, &b].iter().all(|d| {
                d.status()
                    .unwrap()
                    .people
                    .iter()
                    .any(|p| p.id == ada && p.left_at.is_some())
            })
    });
    let ada_side = [held(&a), held(&a2)];
    let bo_side = held(&b);
    assert!(
        ada_side.iter().all(|h| !recognised_by(&bo_side[0], h)),
        "Ada's devices recognise Bo's new labels"
    );
    assert!(
        !recognised_by(&ada_side[0][0], &bo_side),
        "Bo's device recognises Ada's new labels"
    );
}

#[test]
fn removing_the_partners_device_moves_this_persons_devices_to_an_epoch_it_never_learns() {
    let (a, b, a2) = household();
    let before = one_epoch(&a, &b, &a2);

    // Ada removes Bo's device: only her devices stop trusting it, and they move on.
    let bos = device_id(&b);
    a.call(RosterCall::DevicesRemove { id: bos.clone() })
        .unwrap();
    wait_until(&[&a, &a2], "Ada's devices agreeing on a new epoch", || {
        let e = epoch(&a);
        e.number > before.number
            && epoch(&a2) == e
            && devices(&a2).iter().any(|d| d.id == bos && !d.trusted)
    });
    let current = held(&a)[0].clone();
    assert_eq!(held(&a2)[0], current);
    let on_bos = held(&b);
    assert!(on_bos.iter().all(|e| e.secret != current.secret));
    assert!(
        !recognised_by(&current, &on_bos),
        "Bo's removed device recognises Ada's devices' new labels"
    );
    // Bo's device itself still trusts Ada's: that is his to decide.
    assert!(devices(&b).iter().all(|d| d.trusted || d.this_device));
}

#[test]
fn a_household_secret_from_before_epochs_moves_on_at_start_when_a_device_was_removed() {
    let (mut a, mut b, a2) = household();
    let phone = device_id(&a2);
    a.call(RosterCall::DevicesRemove { id: phone }).unwrap();
    wait_until(&[&a], "the laptop moving on", || epoch(&a).number > 0);
    // Bo's device is away, so the laptop has nobody to learn a newer epoch from.
    b.stop().unwrap();
    // As a version before epochs left it: no epochs file, only the founding secret in
    // the identity file, which the removed phone holds too.
    let dir = a.take_dir().unwrap();
    a.stop().unwrap();
    std::fs::remove_file(dir.path().join(hearthd::epochs::HOUSEHOLD_SECRET_FILE)).unwrap();
    let a = TestDaemon::start_in(dir.path()).unwrap();
    let now = epoch(&a);
    assert_eq!(now.number, 1, "it moved on at start");
    let current = held(&a)[0].clone();
    assert!(!recognised_by(&current, &held(&a2)));
}
