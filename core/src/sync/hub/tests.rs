#![allow(clippy::unwrap_used)]

use std::cell::RefCell;

use rand::SeedableRng;
use uuid::Uuid;

use super::*;
use crate::doc::Docs;
use crate::epochs::Epochs;
use crate::model::{Device, Pause, Person};
use crate::sync::{PeerId, PeerMetadata};

/// The documents with unchecked sync, as the simulator has them: what is tested here
/// is who gets what and when, not who wrote it.
struct Plain<'a>(&'a mut Docs);

impl DocAccess for Plain<'_> {
    fn doc_mut(&mut self, id: &DocId) -> Option<&mut automerge::Automerge> {
        self.0.by_id_mut(id.as_str()).map(|d| d.automerge_mut())
    }
}

impl HubDocs for Plain<'_> {
    fn household_heads(&mut self) -> Vec<ChangeHash> {
        self.0.household.heads()
    }
}

/// Epochs in memory, with a seeded RNG.
struct MemoryKeys(RefCell<(Epochs, rand_chacha::ChaCha8Rng)>);

impl MemoryKeys {
    fn new() -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut epochs = Epochs::empty();
        epochs.rotate(&mut rng);
        MemoryKeys(RefCell::new((epochs, rng)))
    }
}

impl EpochKeys for MemoryKeys {
    type Error = std::convert::Infallible;

    fn current(&self) -> Option<Epoch> {
        self.0.borrow().0.current().cloned()
    }

    fn adopt(&self, epoch: Epoch) -> Result<bool, Self::Error> {
        Ok(self.0.borrow_mut().0.adopt(epoch))
    }

    fn rotate(&self) -> Result<Epoch, Self::Error> {
        let (epochs, rng) = &mut *self.0.borrow_mut();
        Ok(epochs.rotate(rng))
    }
}

fn ada() -> PersonId {
    Uuid::from_u128(1)
}

fn bo() -> PersonId {
    Uuid::from_u128(2)
}

fn device_id(n: u8) -> DeviceId {
    DeviceId::from_public_key(&[n; 32])
}

fn device(n: u8, person: PersonId) -> Device {
    Device::unsigned(
        device_id(n).to_string(),
        person,
        format!("device {n}"),
        "00".repeat(32),
    )
}

/// The documents of `me`'s device, with Ada's devices 1 and 2 and Bo's device 3.
fn docs(me: PersonId, actor: u8) -> Docs {
    let mut docs = Docs::new(me, automerge::ActorId::from(vec![actor; 16]));
    for (id, name) in [(ada(), "Ada"), (bo(), "Bo")] {
        let person = Person {
            id,
            name: name.into(),
            joined_at: 0,
        };
        docs.add_person(&person, 0).unwrap();
    }
    for d in [device(1, ada()), device(2, ada()), device(3, bo())] {
        docs.put_device(&d, 0).unwrap();
    }
    docs
}

fn at(ms: u64) -> Now {
    Now {
        mono: Duration::from_millis(ms),
        wall: 1_000_000 + ms as Millis,
    }
}

fn hub(me: u8) -> Hub {
    Hub::new(HubConfig {
        me: device_id(me),
        limits: SyncLimits::default(),
        farewell: Some(FAREWELL),
        session_events: true,
    })
}

fn enforce(hub: &mut Hub, docs: &mut Docs, now: Now) {
    let policy = Policy::from_docs(docs, now.wall);
    let members = roster_members(docs);
    hub.handle_policy(now, &mut Plain(docs), policy, members);
}

/// Everything the hub lets out now.
fn outputs(hub: &mut Hub) -> Vec<HubOutput> {
    std::iter::from_fn(|| hub.poll_output()).collect()
}

/// One device: its documents and its hub.
struct Side {
    docs: Docs,
    hub: Hub,
}

impl Side {
    fn new(me: PersonId, n: u8) -> Side {
        let mut side = Side {
            docs: docs(me, n),
            hub: hub(n),
        };
        enforce(&mut side.hub, &mut side.docs, at(0));
        side
    }

    /// Ends the batch as the daemon does: durable, then out.
    fn release(&mut self) -> Vec<HubOutput> {
        self.hub.handle_durable();
        outputs(&mut self.hub)
    }
}

/// Two devices on connection 1, `a` dialling; runs until nothing moves. Returns the
/// closes each side asked for, and how many frames went each way.
struct Wire {
    closed: [Option<CloseWhy>; 2],
    frames: [usize; 2],
}

fn connect(a: &mut Side, b: &mut Side, a_id: u8, b_id: u8, now: Now) {
    a.hub.handle_connected(
        now,
        &mut Plain(&mut a.docs),
        1,
        device_id(b_id),
        Role::Initiator,
        WireForm::Classic,
        Vec::new(),
        None,
    );
    b.hub.handle_connected(
        now,
        &mut Plain(&mut b.docs),
        1,
        device_id(a_id),
        Role::Responder,
        WireForm::Classic,
        Vec::new(),
        None,
    );
}

fn pump(a: &mut Side, b: &mut Side, now: Now) -> Wire {
    pump_reporting(a, b, now, true)
}

/// As [`pump`]; `report_a` false never tells `a`'s hub its frames were written.
fn pump_reporting(a: &mut Side, b: &mut Side, now: Now, report_a: bool) -> Wire {
    let mut wire = Wire {
        closed: [None, None],
        frames: [0, 0],
    };
    for _ in 0..200 {
        let mut moved = false;
        for from in 0..2 {
            let (src, dst) = if from == 0 {
                (&mut *a, &mut *b)
            } else {
                (&mut *b, &mut *a)
            };
            for out in src.release() {
                match out {
                    HubOutput::Send { conn, frame } => {
                        moved = true;
                        wire.frames[from] += 1;
                        if from == 1 || report_a {
                            src.hub.handle_sent(
                                now,
                                &mut Plain(&mut src.docs),
                                conn,
                                1,
                                frame.len(),
                            );
                        }
                        if wire.closed.iter().all(Option::is_none) {
                            let message = Message::decode(&frame[4..]).unwrap();
                            dst.hub
                                .handle_message(now, &mut Plain(&mut dst.docs), 1, message);
                            for doc in dst.hub.take_remote_changes() {
                                dst.hub
                                    .handle_local_change(now, &mut Plain(&mut dst.docs), &doc);
                            }
                        }
                    }
                    HubOutput::Close { why, .. } => {
                        wire.closed[from].get_or_insert(why);
                    }
                    HubOutput::SaveSyncState { .. } | HubOutput::Event(_) => {}
                }
            }
        }
        if !moved {
            break;
        }
    }
    wire
}

#[test]
fn nothing_leaves_before_the_batch_is_durable_and_a_rollback_sends_nothing() {
    let mut a = Side::new(ada(), 1);
    let mut b = Side::new(bo(), 3);
    connect(&mut a, &mut b, 1, 3, at(0));
    pump(&mut a, &mut b, at(0));
    let pause = Pause {
        since: 10,
        until: None,
    };
    a.docs.set_pause(ada(), Some(&pause), 10).unwrap();
    a.hub
        .handle_local_change(at(10), &mut Plain(&mut a.docs), &DocId::household());
    assert!(outputs(&mut a.hub).is_empty(), "sent before durable");
    a.hub.handle_rollback();
    let out = outputs(&mut a.hub);
    assert_eq!(
        out,
        vec![HubOutput::Close {
            conn: 1,
            why: CloseWhy::Sync(ApplicationErrorCode::RemoteError)
        }]
    );
    a.hub.handle_durable();
    assert!(
        outputs(&mut a.hub).is_empty(),
        "the rolled-back batch came back"
    );
}

#[test]
fn a_pause_says_farewell_with_the_pause_and_nothing_written_after_it() {
    let mut a = Side::new(ada(), 1);
    let mut b = Side::new(bo(), 3);
    connect(&mut a, &mut b, 1, 3, at(0));
    pump(&mut a, &mut b, at(0));
    assert!(a.hub.progress()[&device_id(3)].connected);
    // Ada pauses: the batch that writes it starts the farewell and carries the pause.
    let pause = Pause {
        since: at(10).wall,
        until: None,
    };
    a.docs.set_pause(ada(), Some(&pause), at(10).wall).unwrap();
    enforce(&mut a.hub, &mut a.docs, at(10));
    a.hub
        .handle_local_change(at(10), &mut Plain(&mut a.docs), &DocId::household());
    let wire = pump(&mut a, &mut b, at(10));
    assert_eq!(wire.closed[0], Some(CloseWhy::Replaced));
    assert!(
        b.docs.pause_of(ada()).is_some(),
        "the pause did not reach Bo"
    );

    // Again, but Ada writes something after the farewell began and before it ends:
    // the session closes rather than carry it.
    let mut a = Side::new(ada(), 1);
    let mut b = Side::new(bo(), 3);
    connect(&mut a, &mut b, 1, 3, at(0));
    pump(&mut a, &mut b, at(0));
    a.docs.set_pause(ada(), Some(&pause), at(10).wall).unwrap();
    enforce(&mut a.hub, &mut a.docs, at(10));
    a.hub.handle_durable();
    let _ = outputs(&mut a.hub);
    a.docs.set_left(ada(), at(11).wall, at(11).wall).unwrap();
    a.hub
        .handle_local_change(at(11), &mut Plain(&mut a.docs), &DocId::household());
    let wire = pump(&mut a, &mut b, at(11));
    assert_eq!(wire.closed[0], Some(CloseWhy::Replaced));
    assert!(
        b.docs.left_at(ada()).is_none(),
        "a write after the farewell crossed"
    );
}

#[test]
fn a_farewell_ends_at_its_deadline_and_a_removed_device_is_cut_off_at_once() {
    let mut a = Side::new(ada(), 1);
    let mut b = Side::new(bo(), 3);
    connect(&mut a, &mut b, 1, 3, at(0));
    pump(&mut a, &mut b, at(0));
    a.docs.set_left(bo(), at(5).wall, at(5).wall).unwrap();
    enforce(&mut a.hub, &mut a.docs, at(5));
    a.hub.handle_durable();
    assert!(outputs(&mut a.hub).is_empty());
    // Bo's device never answers; the farewell runs out.
    let deadline = a.hub.poll_timeout().unwrap();
    assert!(deadline <= at(5).mono + FAREWELL);
    let _ = a.hub.handle_timeout(at(5 + 3000), &mut Plain(&mut a.docs));
    assert_eq!(
        a.release(),
        vec![HubOutput::Close {
            conn: 1,
            why: CloseWhy::Revoked
        }]
    );

    // A removal: no farewell, nothing more goes out.
    let mut a = Side::new(ada(), 1);
    let mut b = Side::new(bo(), 3);
    connect(&mut a, &mut b, 1, 3, at(0));
    pump(&mut a, &mut b, at(0));
    let mut removed = device(3, bo());
    removed.revoked_at = Some(at(5).wall);
    a.docs.put_device(&removed, at(5).wall).unwrap();
    enforce(&mut a.hub, &mut a.docs, at(5));
    a.hub
        .handle_local_change(at(5), &mut Plain(&mut a.docs), &DocId::household());
    assert_eq!(
        a.release(),
        vec![HubOutput::Close {
            conn: 1,
            why: CloseWhy::Revoked
        }]
    );
}

#[test]
fn a_full_queue_holds_sync_messages_until_the_driver_reports_them_written() {
    let mut a = Side::new(ada(), 1);
    let mut b = Side::new(bo(), 3);
    connect(&mut a, &mut b, 1, 3, at(0));
    pump(&mut a, &mut b, at(0));
    // The driver delivers what Ada's device sends but never reports it written: past
    // the soft bound the hub stops generating sync messages.
    let mut sent = 0;
    for i in 0..(QUEUE_SOFT_FRAMES as u64 * 3) {
        let now = at(20 + i * 10);
        // Some change Ada's device writes (its hub keeps the policy it was handed).
        let pause = Pause {
            since: now.wall,
            until: None,
        };
        a.docs.set_pause(ada(), Some(&pause), now.wall).unwrap();
        a.hub
            .handle_local_change(now, &mut Plain(&mut a.docs), &DocId::household());
        sent += pump_reporting(&mut a, &mut b, now, false).frames[0];
    }
    assert!(
        (QUEUE_SOFT_FRAMES..=QUEUE_SOFT_FRAMES + 1).contains(&sent),
        "{sent} frames queued"
    );
    assert_ne!(a.docs.household.heads(), b.docs.household.heads());
    // Reported written: whatever waited goes out, and the two agree again.
    a.hub
        .handle_sent(at(1000), &mut Plain(&mut a.docs), 1, sent, usize::MAX);
    pump(&mut a, &mut b, at(1000));
    assert_eq!(a.docs.household.heads(), b.docs.household.heads());
}

/// Ada's device with her phone and Bo's device connected and past the handshake, each
/// on its own connection (the partner's on connection 1 when `partner_first`).
fn epoch_rig(partner_first: bool) -> (Docs, MemoryKeys, Hub) {
    let mut docs = docs(ada(), 1);
    let keys = MemoryKeys::new();
    let mut hub = hub(1);
    enforce(&mut hub, &mut docs, at(0));
    let order = if partner_first { [3, 2] } else { [2, 3] };
    for (conn, peer) in [(1, order[0]), (2, order[1])] {
        hub.handle_connected(
            at(0),
            &mut Plain(&mut docs),
            conn,
            device_id(peer),
            Role::Responder,
            WireForm::Classic,
            Vec::new(),
            keys.current(),
        );
        let join = Message::Join {
            sender_id: PeerId::from(&device_id(peer)),
            peer_metadata: PeerMetadata::default(),
            supported_protocol_versions: vec!["1".into()],
        };
        hub.handle_message(at(0), &mut Plain(&mut docs), conn, join);
    }
    assert!(hub.settle_epochs(at(0), &keys, false));
    hub.handle_durable();
    let _ = outputs(&mut hub);
    (docs, keys, hub)
}

fn epoch_from(peer: u8, number: u64) -> Message {
    Message::Epoch {
        sender_id: PeerId::from(&device_id(peer)),
        target_id: PeerId::from(&device_id(1)),
        epoch: Epoch::new(number, [number as u8; 32]),
    }
}

/// Epochs sent per connection, by number.
fn epochs_sent(out: Vec<HubOutput>) -> BTreeMap<ConnId, Vec<u64>> {
    let mut sent: BTreeMap<ConnId, Vec<u64>> = BTreeMap::new();
    for o in out {
        if let HubOutput::Send { conn, frame } = o {
            if let Ok(Message::Epoch { epoch, .. }) = Message::decode(&frame[4..]) {
                sent.entry(conn).or_default().push(epoch.number);
            }
        }
    }
    sent
}

#[test]
fn epochs_come_from_and_go_to_trusted_devices_only() {
    let (mut docs, keys, mut hub) = epoch_rig(false);
    let start = keys.current().unwrap().number;
    // 1. The phone (connection 1) sends a newer epoch: adopted, passed to the partner,
    //    not back.
    hub.handle_message(at(1), &mut Plain(&mut docs), 1, epoch_from(2, start + 4));
    hub.settle_epochs(at(1), &keys, false);
    hub.handle_durable();
    assert_eq!(keys.current().unwrap().number, start + 4);
    assert_eq!(
        epochs_sent(outputs(&mut hub)),
        BTreeMap::from([(2, vec![start + 4])])
    );
    // 2. Bo leaves. In the same batch his device sends a newer epoch: it is ignored,
    //    this device moves on by itself, and only the phone hears of it.
    hub.handle_message(at(2), &mut Plain(&mut docs), 2, epoch_from(3, start + 9));
    docs.set_left(bo(), at(2).wall, at(2).wall).unwrap();
    enforce(&mut hub, &mut docs, at(2));
    hub.settle_epochs(at(2), &keys, true);
    hub.handle_durable();
    let current = keys.current().unwrap();
    assert_eq!(current.number, start + 5);
    assert_ne!(*current.secret, [(start + 9) as u8; 32]);
    assert_eq!(
        epochs_sent(outputs(&mut hub)),
        BTreeMap::from([(1, vec![start + 5])])
    );
}

#[test]
fn a_peer_that_floods_epochs_does_not_crowd_out_another_peers() {
    let (mut docs, keys, mut hub) = epoch_rig(true);
    let start = keys.current().unwrap().number;
    // In one batch, the partner's modified client sends a hundred stale epochs, then
    // the phone sends the newer one it moved to (after a removal, say).
    for _ in 0..100 {
        hub.handle_message(at(1), &mut Plain(&mut docs), 1, epoch_from(3, start));
    }
    hub.handle_message(at(1), &mut Plain(&mut docs), 2, epoch_from(2, start + 4));
    hub.settle_epochs(at(1), &keys, false);
    assert_eq!(keys.current().unwrap().number, start + 4);
}

#[test]
fn a_pause_ending_by_itself_arms_a_timer_and_asks_for_the_new_policy() {
    let mut a = Side::new(ada(), 1);
    let pause = Pause {
        since: at(0).wall,
        until: Some(at(500).wall),
    };
    a.docs.set_pause(ada(), Some(&pause), at(0).wall).unwrap();
    enforce(&mut a.hub, &mut a.docs, at(0));
    assert_eq!(a.hub.poll_timeout(), Some(at(500).mono));
    assert!(
        !a.hub
            .handle_timeout(at(499), &mut Plain(&mut a.docs))
            .pause_ended
    );
    assert!(
        a.hub
            .handle_timeout(at(500), &mut Plain(&mut a.docs))
            .pause_ended
    );
    enforce(&mut a.hub, &mut a.docs, at(500));
    assert!(!a.hub.policy().hold_others);
    assert_eq!(a.hub.poll_timeout(), None);
}

/// The partner's modified client asks again and again for Ada's private document and
/// never reads an answer. Refusals are never held back, so its queue grows until the hub
/// cuts it off, at the hard bound and no later.
#[test]
fn a_partner_that_keeps_asking_and_never_reads_is_cut_off_at_the_hard_bound() {
    let mut a = Side::new(ada(), 1);
    let mut b = Side::new(bo(), 3);
    connect(&mut a, &mut b, 1, 3, at(0));
    pump(&mut a, &mut b, at(0));
    use automerge::sync::SyncDoc;
    let empty = automerge::Automerge::new();
    let data = empty
        .generate_sync_message(&mut automerge::sync::State::new())
        .map(|m| m.encode())
        .unwrap_or_default();
    let (mut sent, mut closed) = (0, None);
    for _ in 0..(QUEUE_HARD_FRAMES + 50) {
        let ask = Message::Request {
            sender_id: PeerId::from(&device_id(3)),
            target_id: PeerId::from(&device_id(1)),
            document_id: DocId::private(&ada()),
            data: data.clone(),
        };
        a.hub.handle_message(at(1), &mut Plain(&mut a.docs), 1, ask);
        for out in a.release() {
            match out {
                HubOutput::Send { frame, .. } => {
                    sent += 1;
                    // Only refusals: nothing of the private document goes out.
                    let answer = Message::decode(&frame[4..]).unwrap();
                    assert!(
                        matches!(answer, Message::DocUnavailable { .. }),
                        "{answer:?}"
                    );
                }
                HubOutput::Close { why, .. } => closed = closed.or(Some(why)),
                _ => {}
            }
        }
    }
    assert_eq!(
        closed,
        Some(CloseWhy::Sync(ApplicationErrorCode::ProtocolViolation))
    );
    assert!(sent <= QUEUE_HARD_FRAMES, "{sent} frames queued");
}
