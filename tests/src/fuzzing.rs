//! Fuzz entry points: one function per boundary where bytes from outside reach Hearth.
//!
//! The cargo-fuzz targets in `fuzz/` call these, and so does the corpus replay test
//! (`tests/tests/fuzz_corpus.rs`), so every saved input (the seed corpus and every
//! crash ever found, kept under `fuzz/regressions/`) runs on each `cargo test`.
//!
//! Each entry takes arbitrary bytes. Bad input must be refused with an error, never a
//! panic; an entry panics only when an invariant breaks, which is what a fuzzer reports.
//! Beyond "no panic", each one checks what must hold whatever the input:
//!
//! * [`frame_decoder`]: decoded messages re-encode and decode to themselves, in any
//!   chunking, and the size cap is enforced.
//! * [`sync_session`]: a session driven by a partly honest, partly hostile peer never
//!   touches or sends a document outside the peer's allowed set, never lets the peer
//!   change the private document, and is closed after every fatal error.
//! * [`control_request`]: the request parser answers every line; a parsed request run
//!   against real documents either succeeds or changes nothing.
//! * [`pairing`]: garbage never completes a handshake, and a tampered transcript
//!   never completes it with anything but what the honest side sent.
//! * [`chunk_loader`]: a damaged chunk is quarantined and the rest loads; a damaged
//!   snapshot is refused and left untouched; compaction keeps every change.
//! * [`import_file`]: an import is all or nothing, and importing again adds nothing.
//!
//! This module only does IO in [`chunk_loader`], inside one private temp directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use automerge::sync::{self as am_sync, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ReadDoc, ROOT};
use hearth_api::{Call, DocCall};
use hearth_core::doc::Docs;
use hearth_core::identity::DeviceId;
use hearth_core::model::{Millis, Person};
use hearth_core::pair::{
    Admission, Handshake, InviteRole, InviterInfo, JoinerInfo, JoinerPolicy, PairOutcome,
    PairingCode, TlsBinding, PAIR_MAX_FRAME,
};
use hearth_core::sync::{
    encode_frame, encode_frame_as, DocAccess, DocId, FrameDecoder, FrameError, LinkEnds, Message,
    PeerId, PeerMetadata, Role, Session, SessionConfig, SessionEvent, SyncLimits, WireForm,
};
use hearthd::storage::{DocStore, StoreError};
use rand::SeedableRng;
use serde_json::Value;
use uuid::Uuid;
use zeroize::Zeroizing;

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// Every target, by the name of its cargo-fuzz target and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame_decoder", frame_decoder),
    ("sync_session", sync_session),
    ("control_request", control_request),
    ("pairing", pairing),
    ("chunk_loader", chunk_loader),
    ("import_file", import_file),
];

/// The entry point named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Reads fuzz input as a sequence of small decisions.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes.
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A length-prefixed slice (one length byte).
    fn slice(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.take(n)
    }

    fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

// ----- frame decoder -----------------------------------------------------------------

/// The sync frame decoder: byte 0 picks the chunk size the bytes arrive in, byte 1 the
/// frame cap (0 = the real [`hearth_core::sync::MAX_FRAME`]), the rest is the stream.
pub fn frame_decoder(data: &[u8]) {
    let mut input = Input::new(data);
    let first = input.byte();
    let chunk = 1 + usize::from(first % 64);
    // The top bit picks the connection's layout: classic or lean.
    let form = if first & 0x80 == 0 {
        WireForm::Classic
    } else {
        WireForm::Lean
    };
    let cap = match input.byte() {
        0 => None,
        b => Some(16 + usize::from(b) * 16),
    };
    let stream = input.rest();
    let mut decoder = decoder_for(form, cap);
    'feed: for piece in stream.chunks(chunk) {
        if decoder.push(piece).is_err() {
            break;
        }
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => check_round_trip(&message, form, cap),
                Ok(None) => break,
                Err(FrameError::TooLarge { .. }) if cap.is_some() => break 'feed,
                Err(_) => break 'feed,
            }
        }
        if let Some(cap) = cap {
            // A frame over the cap must be refused from its prefix, not buffered.
            assert!(
                decoder.buffered() <= cap + 4 + chunk,
                "the decoder buffered {} bytes under a {cap}-byte cap",
                decoder.buffered()
            );
        }
    }
}

/// A decoder for a link between Bob (remote) and Alice (local) in `form`, capped.
fn decoder_for(form: WireForm, cap: Option<usize>) -> FrameDecoder {
    let decoder = match cap {
        Some(cap) => FrameDecoder::with_max_frame(cap),
        None => FrameDecoder::new(),
    };
    let ends = LinkEnds {
        local: PeerId::from(&alice()),
        remote: PeerId::from(&bob()),
    };
    decoder.speaking(form, ends)
}

fn check_round_trip(message: &Message, form: WireForm, cap: Option<usize>) {
    let Ok(frame) = encode_frame_as(message, form) else {
        // Only a message over the real cap cannot be encoded; a decoded one never is.
        panic!("a decoded message could not be re-encoded: {message:?}");
    };
    let mut again = decoder_for(form, cap.map(|cap| cap.max(frame.len())));
    if let Err(e) = again.push(&frame) {
        panic!("a re-encoded message was refused: {e}");
    }
    match again.next_message() {
        Ok(Some(decoded)) => assert!(decoded == *message, "round trip changed {message:?}"),
        other => panic!("a re-encoded message did not decode: {other:?}"),
    }
}

// ----- sync session -------------------------------------------------------------------

fn alice() -> DeviceId {
    DeviceId::from_public_key(&[0xa1; 32])
}

fn bob() -> DeviceId {
    DeviceId::from_public_key(&[0xb0; 32])
}

fn alice_private() -> DocId {
    DocId::private(&Uuid::from_u128(0xa11ce))
}

/// The documents a fuzzed session sees, recording every one it asks for.
struct FuzzDocs {
    docs: BTreeMap<DocId, Automerge>,
    asked: BTreeSet<DocId>,
}

impl DocAccess for FuzzDocs {
    fn doc_mut(&mut self, id: &DocId) -> Option<&mut Automerge> {
        self.asked.insert(id.clone());
        self.docs.get_mut(id)
    }

    fn create_doc(&mut self, id: &DocId) -> Option<&mut Automerge> {
        self.asked.insert(id.clone());
        Some(self.docs.entry(id.clone()).or_default())
    }
}

fn edit(doc: &mut Automerge, key: &str, value: i64) {
    let mut tx = doc.transaction();
    // Writing to the root map of a fresh transaction cannot fail.
    let _ = tx.put(ROOT, key, value);
    tx.commit();
}

fn pick_doc(b: u8) -> DocId {
    match b % 4 {
        0 | 1 => DocId::household(),
        2 => alice_private(),
        _ => DocId::new("x"),
    }
}

/// The sync session: Alice's side of a connection to Bob, who may see only the
/// household. The input is a list of operations: raw frames, honest sync messages from
/// Bob's real document, forged ones, local edits and timer ticks.
pub fn sync_session(data: &[u8]) {
    let mut input = Input::new(data);
    let role = if input.byte() & 1 == 0 {
        Role::Responder
    } else {
        Role::Initiator
    };
    let household = DocId::household();
    let allowed = BTreeSet::from([household.clone()]);
    let persisted = match input.byte() % 4 {
        0 => vec![(household.clone(), input.slice().to_vec())],
        1 => vec![(alice_private(), input.slice().to_vec())],
        _ => Vec::new(),
    };
    let limits = SyncLimits::default();
    let mut now = Duration::from_secs(1);
    let mut session = Session::new(
        SessionConfig {
            local: alice(),
            remote: bob(),
            role,
            allowed_docs: allowed.clone(),
            persisted,
            limits,
            epoch: None,
        },
        now,
    );
    let mut ours = FuzzDocs {
        docs: BTreeMap::from([
            (household.clone(), Automerge::new()),
            (alice_private(), Automerge::new()),
        ]),
        asked: BTreeSet::new(),
    };
    edit(ours.docs.entry(alice_private()).or_default(), "mine", 1);
    let mut private_heads = heads(&ours, &alice_private());
    let mut theirs = Automerge::new();
    let mut their_state = am_sync::State::new();
    let (me, peer) = (PeerId::from(&alice()), PeerId::from(&bob()));

    for step in 0..96 {
        if input.is_empty() {
            break;
        }
        let op = input.byte();
        match op % 10 {
            0 => {
                if let Ok(message) = Message::decode(input.slice()) {
                    session.handle_message(now, message, &mut ours);
                }
            }
            1 => {
                let versions = if input.byte() & 7 == 0 {
                    vec![String::from_utf8_lossy(input.slice()).into_owned()]
                } else {
                    vec!["1".to_owned()]
                };
                session.handle_message(
                    now,
                    Message::Join {
                        sender_id: peer.clone(),
                        peer_metadata: PeerMetadata::default(),
                        supported_protocol_versions: versions,
                    },
                    &mut ours,
                )
            }
            2 => session.handle_message(
                now,
                Message::Peer {
                    sender_id: peer.clone(),
                    target_id: me.clone(),
                    peer_metadata: PeerMetadata::default(),
                    selected_protocol_version: "1".to_owned(),
                },
                &mut ours,
            ),
            3 | 4 => {
                // An honest message from Bob's real document, for whichever document.
                if input.byte() & 1 == 0 {
                    edit(&mut theirs, "theirs", i64::from(step));
                }
                let doc = pick_doc(input.byte());
                if let Some(m) = theirs.generate_sync_message(&mut their_state) {
                    let data = m.encode();
                    let message = if op % 10 == 3 {
                        Message::Sync {
                            sender_id: peer.clone(),
                            target_id: me.clone(),
                            document_id: doc,
                            data,
                        }
                    } else {
                        Message::Request {
                            sender_id: peer.clone(),
                            target_id: me.clone(),
                            document_id: doc,
                            data,
                        }
                    };
                    session.handle_message(now, message, &mut ours);
                }
            }
            5 => {
                let doc = pick_doc(input.byte());
                let data = input.slice().to_vec();
                session.handle_message(
                    now,
                    Message::Sync {
                        sender_id: peer.clone(),
                        target_id: me.clone(),
                        document_id: doc,
                        data,
                    },
                    &mut ours,
                )
            }
            6 => session.handle_message(
                now,
                Message::DocUnavailable {
                    sender_id: peer.clone(),
                    target_id: me.clone(),
                    document_id: pick_doc(input.byte()),
                },
                &mut ours,
            ),
            7 => {
                let doc = pick_doc(input.byte());
                if let Some(d) = ours.docs.get_mut(&doc) {
                    edit(d, "local", i64::from(step));
                }
                if doc == alice_private() {
                    private_heads = heads(&ours, &alice_private());
                }
                session.handle_local_change(now, &doc, &mut ours)
            }
            8 => {
                now += Duration::from_millis(u64::from(input.u16()) * 10);
                session.handle_timeout(now, &mut ours)
            }
            _ => session.handle_message(
                now,
                Message::Error {
                    message: String::from_utf8_lossy(input.slice()).into_owned(),
                },
                &mut ours,
            ),
        };
        // Drain what Alice sends, and let Bob's honest side hear the household part.
        while let Some(out) = session.poll_transmit() {
            if let Message::Sync {
                document_id, data, ..
            }
            | Message::Request {
                document_id, data, ..
            } = &out
            {
                assert!(
                    allowed.contains(document_id),
                    "sent sync data for {document_id:?}, which the peer may not see"
                );
                if let Ok(m) = am_sync::Message::decode(data) {
                    let _ = theirs.receive_sync_message(&mut their_state, m);
                }
            }
        }
        let mut failed = false;
        while let Some(event) = session.poll_event() {
            failed |= matches!(event, SessionEvent::Failed { .. });
        }
        assert!(
            ours.asked.is_subset(&allowed),
            "the session asked for {:?}",
            ours.asked
        );
        assert_eq!(
            heads(&ours, &alice_private()),
            private_heads,
            "the peer changed the private document"
        );
        if let Some(at) = session.poll_timeout() {
            assert!(
                at <= now + limits.max_duration.max(limits.handshake_timeout),
                "a timer {at:?} beyond every bound (now {now:?})"
            );
        }
        if failed {
            assert!(session.is_closed(), "a fatal error left the session open");
            break;
        }
    }
}

fn heads(docs: &FuzzDocs, id: &DocId) -> Vec<ChangeHash> {
    docs.docs
        .get(id)
        .map(Automerge::get_heads)
        .unwrap_or_default()
}

// ----- control requests ---------------------------------------------------------------

const FUZZ_NOW: Millis = 1_750_000_000_000;

fn me() -> Uuid {
    Uuid::from_u128(0x0e5e_0000_0000_4000_8000_0000_0000_0001)
}

/// A household with one person and a few records with fixed ids, for requests and
/// imports to run against.
fn template() -> &'static Docs {
    static TEMPLATE: OnceLock<Docs> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let mut docs = Docs::new(me(), ActorId::from(&[0xf0u8; 16][..]));
        let person = Person {
            id: me(),
            name: "Fuzz".into(),
            joined_at: FUZZ_NOW,
        };
        // Adding a valid person to an empty document cannot fail; if it did, the
        // template would just be emptier.
        let _ = docs.add_person(&person, FUZZ_NOW);
        let _ = hearthd::handlers::handle(
            &mut docs,
            DocCall::Import {
                data: template_export(),
            },
            FUZZ_NOW,
        );
        docs
    })
}

/// The records of [`template`], as an export file with fixed ids.
pub fn template_export() -> Value {
    let me = me().to_string();
    serde_json::json!({
        "format": "hearth-export",
        "version": 1,
        "records": {
            "moments": [{
                "id": "00000000-0000-4000-8000-00000000a001", "kind": "laugh",
                "started_by": me, "at": FUZZ_NOW, "date": "2025-06-15",
                "utc_offset_min": 0, "note": "a fixed moment"
            }],
            "checkins": [{
                "id": "00000000-0000-4000-8000-00000000c001", "author": me,
                "at": FUZZ_NOW, "date": "2025-06-15", "utc_offset_min": 0,
                "battery": 40, "visibility": "shared"
            }],
        }
    })
}

fn doc_heads(docs: &Docs) -> (Vec<ChangeHash>, Vec<ChangeHash>) {
    (docs.household.heads(), docs.private.heads())
}

/// The control request parser, then the parsed call against real documents.
pub fn control_request(data: &[u8]) {
    let Ok(request) = hearthd::daemon::parse_request(data) else {
        return;
    };
    // What parsed must serialise back to a request that parses the same way.
    let line = match serde_json::to_vec(&request) {
        Ok(line) => line,
        Err(e) => panic!("a parsed request does not serialise: {e}"),
    };
    match hearthd::daemon::parse_request(&line) {
        Ok(again) => assert_eq!(again.id, request.id),
        Err((_, e)) => panic!("a re-serialised request was refused: {}", e.message),
    }
    // Only the calls `handlers::handle` answers; the rest need a daemon, sockets or keys.
    let Call::Doc(call) = request.call else {
        return;
    };
    let mut docs = template().clone();
    let before = doc_heads(&docs);
    if hearthd::handlers::handle(&mut docs, call, FUZZ_NOW).is_err() {
        assert!(
            doc_heads(&docs) == before,
            "a refused request changed the documents"
        );
    }
}

// ----- import file --------------------------------------------------------------------

/// An import file (JSON) against the template household: all or nothing, and a second
/// import of the same file adds nothing.
pub fn import_file(data: &[u8]) {
    let Ok(file) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut docs = template().clone();
    let before = doc_heads(&docs);
    let first =
        hearthd::handlers::handle(&mut docs, DocCall::Import { data: file.clone() }, FUZZ_NOW);
    match first {
        Err(_) => assert!(
            doc_heads(&docs) == before,
            "a refused import changed the documents"
        ),
        Ok(_) => {
            let after = doc_heads(&docs);
            match hearthd::handlers::handle(&mut docs, DocCall::Import { data: file }, FUZZ_NOW) {
                Ok(outcome) => {
                    assert_eq!(
                        outcome.value["imported"],
                        serde_json::json!(0),
                        "importing the same file twice added records"
                    );
                    assert!(
                        doc_heads(&docs) == after,
                        "a repeated import changed the documents"
                    );
                }
                Err(e) => panic!(
                    "an import that worked once failed the second time: {}",
                    e.message
                ),
            }
        }
    }
}

// ----- pairing ------------------------------------------------------------------------

const INVITER_KEY: [u8; 32] = [0x11; 32];
const JOINER_KEY: [u8; 32] = [0x22; 32];

fn pair_code() -> PairingCode {
    match "4-amber-orbit-lantern".parse() {
        Ok(code) => code,
        Err(e) => panic!("the fixed pairing code does not parse: {e}"),
    }
}

fn inviter_info() -> InviterInfo {
    InviterInfo {
        role: InviteRole::Partner,
        device_key: INVITER_KEY,
        display_name: "Ana's laptop".to_owned(),
        person_id: Uuid::from_u128(1),
        roster: b"opaque roster".to_vec(),
        household_secret: Zeroizing::new([0x5e; 32]),
        household_epoch: 0,
        device_sig: None,
    }
}

fn joiner_info() -> JoinerInfo {
    JoinerInfo {
        device_key: JOINER_KEY,
        person_id: Uuid::from_u128(2),
        person_name: "Sam".to_owned(),
        device_name: "Sam's phone".to_owned(),
    }
}

fn handshakes(seed: u64) -> (Handshake, Handshake) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let inviter = Handshake::new_inviter(
        &pair_code(),
        inviter_info(),
        Admission::default(),
        TlsBinding {
            local_tls_key: INVITER_KEY,
            peer_tls_key: JOINER_KEY,
        },
        &mut rng,
    );
    let joiner = Handshake::new_joiner(
        &pair_code(),
        joiner_info(),
        JoinerPolicy::default(),
        TlsBinding {
            local_tls_key: JOINER_KEY,
            peer_tls_key: INVITER_KEY,
        },
        &mut rng,
    );
    (inviter, joiner)
}

/// Pairing messages. Byte 0, bit 0: 0 feeds the rest as raw bytes to one side (bit 1
/// picks which, byte 1 the chunk size); 1 runs an honest inviter and joiner whose
/// streams are tampered with at the (offset, xor) pairs that follow.
pub fn pairing(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    if mode & 1 == 0 {
        let (inviter, joiner) = handshakes(u64::from(mode));
        let mut side = if mode & 2 == 0 { inviter } else { joiner };
        let chunk = 1 + usize::from(input.byte());
        for piece in input.rest().chunks(chunk) {
            let result = side.handle_bytes(piece);
            while let Some(frame) = side.poll_transmit() {
                assert!(
                    frame.len() <= PAIR_MAX_FRAME + 4,
                    "an oversized pairing frame"
                );
            }
            if result.is_err() {
                assert!(
                    side.handle_bytes(piece).is_err(),
                    "a failed handshake accepted more bytes"
                );
                break;
            }
        }
        assert!(
            side.outcome().is_none(),
            "bytes made without the code completed a handshake"
        );
        return;
    }
    // Tampering: offsets count bytes in each direction's stream.
    let mut to_inviter = BTreeMap::new();
    let mut to_joiner = BTreeMap::new();
    while !input.is_empty() {
        let offset = usize::from(input.u16());
        let xor = input.byte();
        if offset & 1 == 0 {
            to_inviter.insert(offset >> 1, xor);
        } else {
            to_joiner.insert(offset >> 1, xor);
        }
    }
    let (mut inviter, mut joiner) = handshakes(7);
    let (mut sent_to_inviter, mut sent_to_joiner) = (0usize, 0usize);
    let (mut inviter_failed, mut joiner_failed) = (false, false);
    for _ in 0..16 {
        let a: Vec<u8> = std::iter::from_fn(|| joiner.poll_transmit())
            .flatten()
            .collect();
        let b: Vec<u8> = std::iter::from_fn(|| inviter.poll_transmit())
            .flatten()
            .collect();
        if a.is_empty() && b.is_empty() {
            break;
        }
        let a = tamper(a, &mut sent_to_inviter, &to_inviter);
        let b = tamper(b, &mut sent_to_joiner, &to_joiner);
        if !inviter_failed && !a.is_empty() {
            inviter_failed = inviter.handle_bytes(&a).is_err();
        }
        if !joiner_failed && !b.is_empty() {
            joiner_failed = joiner.handle_bytes(&b).is_err();
        }
    }
    if let Some(outcome) = inviter.take_outcome() {
        assert!(
            outcome == PairOutcome::Joiner(joiner_info()),
            "the inviter accepted a tampered joiner"
        );
    }
    if let Some(outcome) = joiner.take_outcome() {
        assert!(
            outcome == PairOutcome::Inviter(inviter_info()),
            "the joiner accepted a tampered inviter"
        );
    }
}

fn tamper(mut bytes: Vec<u8>, sent: &mut usize, flips: &BTreeMap<usize, u8>) -> Vec<u8> {
    for (i, b) in bytes.iter_mut().enumerate() {
        if let Some(x) = flips.get(&(*sent + i)) {
            *b ^= x;
        }
    }
    *sent += bytes.len();
    bytes
}

// ----- chunk loader -------------------------------------------------------------------

struct Keys {
    identity: age::x25519::Identity,
    base: Automerge,
    sealed_base: Vec<u8>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let identity = age::x25519::Identity::generate();
        let mut base = Automerge::new();
        edit(&mut base, "base", 1);
        let sealed_base = match hearth_core::envelope::seal(&identity.to_public(), &base.save()) {
            Ok(s) => s,
            Err(e) => panic!("could not seal the base snapshot: {e}"),
        };
        Keys {
            identity,
            base,
            sealed_base,
        }
    })
}

fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        // tmpfs when there is one: the loader fsyncs, and fuzzing does it a lot.
        let shm = Path::new("/dev/shm");
        let made = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        };
        match made {
            Ok(dir) => dir,
            Err(e) => panic!("no temp dir for the chunk loader: {e}"),
        }
    })
    .path()
}

fn write(path: &Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        panic!("could not write {}: {e}", path.display());
    }
}

/// The store's loader. Byte 0 picks what the rest becomes: 0 a chunk's plaintext
/// (sealed properly), 1 a chunk file's raw bytes, 2 a snapshot's plaintext, 3 a
/// snapshot file's raw bytes. Chunks sit next to a good snapshot.
pub fn chunk_loader(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte() % 4;
    let payload = input.rest();
    let keys = keys();
    let dir: PathBuf = scratch_dir().join("doc");
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("could not create {}: {e}", dir.display());
    }
    let sealed = || match hearth_core::envelope::seal(&keys.identity.to_public(), payload) {
        Ok(s) => s,
        Err(e) => panic!("could not seal: {e}"),
    };
    let snapshot = dir.join(format!("snapshot-{:020}.hearth", 0));
    let chunk = dir.join(format!("chunk-{:020}.hearth", 0));
    match mode {
        0 | 1 => {
            write(&snapshot, &keys.sealed_base);
            write(
                &chunk,
                &if mode == 0 {
                    sealed()
                } else {
                    payload.to_vec()
                },
            );
            let (mut store, loaded) = match DocStore::open(&dir, &keys.identity) {
                Ok(opened) => opened,
                Err(e) => panic!("a bad chunk stopped the store from opening: {e}"),
            };
            for head in keys.base.get_heads() {
                assert!(
                    loaded.doc.get_change_by_hash(&head).is_some(),
                    "a bad chunk lost the snapshot's changes"
                );
            }
            if loaded.quarantined.is_empty() {
                assert!(chunk.exists(), "a loaded chunk disappeared");
            } else {
                assert!(!chunk.exists(), "a quarantined chunk is still in place");
                assert!(
                    dir.join("quarantine")
                        .join(chunk_file_name(&chunk))
                        .exists(),
                    "a quarantined chunk is not in quarantine/"
                );
            }
            compact_and_reopen(&mut store, &loaded.doc, &dir, &keys.identity);
        }
        _ => {
            let bytes = if mode == 2 {
                sealed()
            } else {
                payload.to_vec()
            };
            write(&snapshot, &bytes);
            match DocStore::open(&dir, &keys.identity) {
                Ok((mut store, loaded)) => {
                    compact_and_reopen(&mut store, &loaded.doc, &dir, &keys.identity)
                }
                Err(StoreError::SnapshotUnreadable { .. } | StoreError::WrongIdentity { .. }) => {
                    // Refused, and left exactly as it was.
                    match std::fs::read(&snapshot) {
                        Ok(now) => assert!(now == bytes, "a refused snapshot was changed"),
                        Err(e) => panic!("a refused snapshot was removed: {e}"),
                    }
                    assert!(
                        !dir.join("quarantine").exists(),
                        "a snapshot was quarantined"
                    );
                }
                Err(e) => panic!("an unexpected error opening a snapshot: {e}"),
            }
        }
    }
}

fn chunk_file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Compacts what loaded and opens again: nothing may be lost or quarantined.
fn compact_and_reopen(
    store: &mut DocStore,
    doc: &Automerge,
    dir: &Path,
    identity: &age::x25519::Identity,
) {
    if let Err(e) = store.compact(doc, &[]) {
        panic!("compaction failed: {e}");
    }
    match DocStore::open(dir, identity) {
        Ok((_, again)) => {
            assert!(
                again.quarantined.is_empty(),
                "a compacted store quarantined {:?}",
                again.quarantined
            );
            assert_eq!(
                again.doc.get_heads(),
                doc.get_heads(),
                "compaction changed the heads"
            );
        }
        Err(e) => panic!("a compacted store does not open: {e}"),
    }
}

// ----- seeds --------------------------------------------------------------------------

/// Hand-made starting inputs for each target: well-formed cases the fuzzer mutates from.
/// `cargo test -p hearth-tests --test fuzz_corpus -- --ignored` writes them into
/// `fuzz/corpus/`.
pub fn seed_corpus() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    // Frames.
    let join = Message::Join {
        sender_id: PeerId::from(&bob()),
        peer_metadata: PeerMetadata::default(),
        supported_protocol_versions: vec!["1".into()],
    };
    let mut doc = Automerge::new();
    edit(&mut doc, "k", 1);
    let sync_data = doc
        .generate_sync_message(&mut am_sync::State::new())
        .map(|m| m.encode())
        .unwrap_or_default();
    let sync = Message::Sync {
        sender_id: PeerId::from(&bob()),
        target_id: PeerId::from(&alice()),
        document_id: DocId::household(),
        data: sync_data.clone(),
    };
    let mut frames = vec![7u8, 0];
    for m in [&join, &sync] {
        if let Ok(f) = encode_frame(m) {
            frames.extend(f);
        }
    }
    seeds.push(("frame_decoder", "join-then-sync", frames));
    if let Ok(f) = encode_frame(&Message::error("bye")) {
        seeds.push((
            "frame_decoder",
            "error-small-cap",
            [vec![1u8, 2], f].concat(),
        ));
    }
    // Sessions: a handshake, honest syncs, local edits, ticks.
    seeds.push((
        "sync_session",
        "responder-honest",
        vec![
            0, 3, 1, 0, 3, 1, 0, 3, 0, 0, 7, 0, 4, 0, 1, 8, 0, 10, 3, 1, 0,
        ],
    ));
    seeds.push((
        "sync_session",
        "initiator-honest",
        vec![1, 3, 2, 3, 1, 0, 7, 0, 3, 0, 0, 8, 255, 255],
    ));
    seeds.push((
        "sync_session",
        "private-probe",
        vec![0, 3, 1, 0, 3, 1, 2, 5, 2, 4, 1, 2, 3, 4, 6, 2],
    ));
    let mut raw = vec![0u8, 3, 1, 0, 0];
    if let Ok(f) = encode_frame(&sync) {
        let payload = &f[4..];
        raw.push(u8::try_from(payload.len()).unwrap_or(255));
        raw.extend_from_slice(payload);
    }
    seeds.push(("sync_session", "raw-sync-frame", raw));
    // Control requests.
    for (name, line) in [
        (
            "moment",
            r#"{"v":1,"id":1,"method":"moment.add","params":{"kind":"laugh","note":"hi"}}"#,
        ),
        (
            "checkin",
            r#"{"v":1,"id":2,"method":"checkin.add","params":{"battery":40,"signs":{"dread":2},"basics":{"sleep":"partly"},"note":"n"}}"#,
        ),
        (
            "ledger",
            r#"{"v":1,"id":3,"method":"ledger.add","params":{"title":"Dishes","domain":"household","labour":"physical","weight":2}}"#,
        ),
        (
            "log",
            r#"{"v":1,"id":4,"method":"log","params":{"kinds":["moments"],"limit":5}}"#,
        ),
        (
            "insights",
            r#"{"v":1,"id":5,"method":"insights","params":{"weeks":4}}"#,
        ),
        (
            "ack",
            r#"{"v":1,"id":6,"method":"ledger.ack","params":{"target":"00000000","kind":"thanks"}}"#,
        ),
        ("status", r#"{"v":1,"id":7,"method":"status"}"#),
        ("version", r#"{"v":2,"id":8,"method":"status"}"#),
    ] {
        seeds.push(("control_request", name, line.as_bytes().to_vec()));
    }
    // Pairing: raw frames to each side, and the honest exchange untouched.
    let (mut inviter, mut joiner) = handshakes(0);
    let spake_from_joiner: Vec<u8> = std::iter::from_fn(|| joiner.poll_transmit())
        .flatten()
        .collect();
    let spake_from_inviter: Vec<u8> = std::iter::from_fn(|| inviter.poll_transmit())
        .flatten()
        .collect();
    seeds.push((
        "pairing",
        "raw-to-inviter",
        [vec![0u8, 255], spake_from_joiner].concat(),
    ));
    seeds.push((
        "pairing",
        "raw-to-joiner",
        [vec![2u8, 255], spake_from_inviter].concat(),
    ));
    seeds.push(("pairing", "honest", vec![1]));
    seeds.push(("pairing", "one-flip", vec![1, 0, 80, 1]));
    // Chunks and snapshots.
    let mut chunk_doc = keys().base.fork();
    let before = chunk_doc.get_heads();
    edit(&mut chunk_doc, "chunk", 2);
    seeds.push((
        "chunk_loader",
        "good-chunk",
        [vec![0u8], chunk_doc.save_after(&before)].concat(),
    ));
    seeds.push((
        "chunk_loader",
        "good-snapshot",
        [vec![2u8], chunk_doc.save()].concat(),
    ));
    seeds.push(("chunk_loader", "raw-chunk", vec![1, b'a', b'g', b'e']));
    // Imports: the template itself, a conflicting record, a new one.
    let export = template_export();
    seeds.push(("import_file", "same", export.to_string().into_bytes()));
    let mut conflict = export.clone();
    conflict["records"]["moments"][0]["note"] = Value::from("edited since");
    seeds.push((
        "import_file",
        "conflicting-id",
        conflict.to_string().into_bytes(),
    ));
    let mut fresh = export;
    fresh["records"]["moments"][0]["id"] = Value::from("00000000-0000-4000-8000-00000000a002");
    seeds.push(("import_file", "new-record", fresh.to_string().into_bytes()));
    seeds
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_runs_through_its_target() {
        for (name, label, bytes) in seed_corpus() {
            let run = target(name).unwrap();
            eprintln!("{name}/{label}");
            run(&bytes);
        }
    }

    #[test]
    fn the_template_holds_its_fixed_records() {
        let docs = template();
        assert_eq!(docs.moments().len(), 1);
        assert_eq!(docs.checkins().len(), 1);
    }

    #[test]
    fn empty_input_is_fine_everywhere() {
        for (_, run) in TARGETS {
            run(&[]);
        }
    }
}
