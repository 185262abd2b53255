//! The control API: the versioned, newline-delimited JSON protocol between `hearth` and
//! `hearthd` over the Unix socket.
//!
//! One request per line, one response per line, matched by `id`. A `subscribe` request
//! turns its connection into a stream of [`Event`] lines. This module only defines the
//! shapes; it does no IO, so the CLI, the daemon and the tests share one definition.
//!
//! ```text
//! → {"v":1,"id":7,"method":"moment.add","params":{"kind":"laugh","started_by":"me"}}
//! ← {"id":7,"ok":{ ...the created record... }}
//! ← {"id":7,"error":{"code":"invalid","message":"...","hint":"..."}}
//! ```

use std::collections::BTreeMap;

use hearth_core::model::Millis;
use serde::{Deserialize, Serialize};

mod answers;
pub use answers::*;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest request line the daemon reads, so a runaway client cannot exhaust memory.
/// Imports are the largest requests.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// One request line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version of the client.
    #[serde(default = "default_version")]
    pub v: u32,
    /// Echoed in the response.
    pub id: u64,
    /// What to do.
    #[serde(flatten)]
    pub call: Call,
    /// Asks for [`People`] beside a successful answer, so a client can name the people
    /// a record mentions without a second call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_people: bool,
}

fn default_version() -> u32 {
    PROTOCOL_VERSION
}

/// A person named on the command line: `me`, `partner`, a name, or an id prefix.
pub type PersonRef = String;

/// Every method, grouped by the part of the daemon that answers it, so its routing is
/// a `match` the compiler checks. On the wire a call is flat, `{"method": ..,
/// "params": ..}`; the method name picks the group.
#[derive(Debug, Clone)]
pub enum Call {
    /// Streams events on this connection (`subscribe`); the connection answers it.
    Subscribe,
    /// The daemon's own calls.
    Daemon(DaemonCall),
    /// Sync and pairing.
    Net(NetCall),
    /// The documents' contents.
    Doc(DocCall),
    /// The roster, pausing and leaving.
    Roster(RosterCall),
    /// Offline bundles.
    Bundle(BundleCall),
}

const SUBSCRIBE: &str = "subscribe";

impl Serialize for Call {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Call::Subscribe => {
                use serde::ser::SerializeStruct as _;
                let mut s = serializer.serialize_struct("Call", 1)?;
                s.serialize_field("method", SUBSCRIBE)?;
                s.end()
            }
            Call::Daemon(c) => c.serialize(serializer),
            Call::Net(c) => c.serialize(serializer),
            Call::Doc(c) => c.serialize(serializer),
            Call::Roster(c) => c.serialize(serializer),
            Call::Bundle(c) => c.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Call {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Call, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let method = value
            .get("method")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| D::Error::missing_field("method"))?;
        let group = |methods: &[&str]| methods.contains(&method);
        let call = if method == SUBSCRIBE {
            Call::Subscribe
        } else if group(DaemonCall::METHODS) {
            Call::Daemon(serde_json::from_value(value).map_err(D::Error::custom)?)
        } else if group(NetCall::METHODS) {
            Call::Net(serde_json::from_value(value).map_err(D::Error::custom)?)
        } else if group(DocCall::METHODS) {
            Call::Doc(serde_json::from_value(value).map_err(D::Error::custom)?)
        } else if group(RosterCall::METHODS) {
            Call::Roster(serde_json::from_value(value).map_err(D::Error::custom)?)
        } else if group(BundleCall::METHODS) {
            Call::Bundle(serde_json::from_value(value).map_err(D::Error::custom)?)
        } else {
            return Err(D::Error::custom(format_args!("unknown method `{method}`")));
        };
        Ok(call)
    }
}

/// The daemon's own calls: its identity and its life. `daemon.rs` answers them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", content = "params")]
pub enum DaemonCall {
    /// Creates the identity and documents of a new device.
    #[serde(rename = "init")]
    Init {
        /// The person's display name.
        name: String,
        /// A friendly name for this device.
        #[serde(default)]
        device_name: Option<String>,
        /// Protects the identity file when given.
        #[serde(default)]
        passphrase: Option<String>,
    },
    /// Unlocks a passphrase-protected identity.
    #[serde(rename = "unlock")]
    Unlock {
        /// The passphrase.
        passphrase: String,
    },
    /// Daemon and document status.
    #[serde(rename = "status")]
    Status,
    /// Stops the daemon after flushing.
    #[serde(rename = "shutdown")]
    Shutdown,
    /// Starts the local page on `web_listen` (127.0.0.1 only) if it is not running, and
    /// answers a URL with a fresh one-time token ([`WebOpened`]).
    #[serde(rename = "web.open")]
    WebOpen,
}

impl DaemonCall {
    /// Every method name of this group, as on the wire; `Call` routes by it, so a
    /// variant missing here could not be called (the e2e tests call every one).
    pub const METHODS: &'static [&'static str] =
        &["init", "unlock", "status", "shutdown", "web.open"];
}

impl From<DaemonCall> for Call {
    fn from(call: DaemonCall) -> Call {
        Call::Daemon(call)
    }
}

/// Sync and pairing: `daemon.rs` answers them with the network tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", content = "params")]
pub enum NetCall {
    /// Offers every document to every connected peer now, and dials the others.
    #[serde(rename = "sync")]
    SyncNow,
    /// Adds a peer to dial without discovery.
    #[serde(rename = "peers.add")]
    PeersAdd {
        /// `HOST:PORT`.
        addr: String,
    },
    /// Starts a pairing invite and returns its code at once. The invite admits the
    /// partner, or with `own_device` another device of this person; the joiner cannot
    /// change that.
    #[serde(rename = "pair.invite")]
    PairInvite {
        /// How long the invite stays open, in seconds.
        #[serde(default)]
        timeout_secs: Option<u64>,
        /// Invite another device of this person instead of the partner.
        #[serde(default)]
        own_device: bool,
    },
    /// Waits for the open invite to be used.
    #[serde(rename = "pair.wait")]
    PairWait,
    /// Joins a household with an invite code.
    #[serde(rename = "pair.join")]
    PairJoin {
        /// The code from `pair invite`.
        code: String,
        /// The inviter's address.
        #[serde(default)]
        addr: Option<String>,
        /// Join even though this device already holds entries.
        #[serde(default)]
        merge: bool,
    },
}

impl NetCall {
    /// Every method name of this group, as on the wire; `Call` routes by it, so a
    /// variant missing here could not be called (the e2e tests call every one).
    pub const METHODS: &'static [&'static str] =
        &["sync", "peers.add", "pair.invite", "pair.wait", "pair.join"];
}

impl From<NetCall> for Call {
    fn from(call: NetCall) -> Call {
        Call::Net(call)
    }
}

/// Entries, the ledger, reads, export and import: the document owner answers them
/// (`handlers::handle`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", content = "params")]
pub enum DocCall {
    /// Records a check-in.
    #[serde(rename = "checkin.add")]
    CheckinAdd(CheckinParams),
    /// Records a reflection.
    #[serde(rename = "reflect.add")]
    ReflectAdd(ReflectParams),
    /// Adds a ledger item.
    #[serde(rename = "ledger.add")]
    LedgerAdd(LedgerAddParams),
    /// Lists ledger items.
    #[serde(rename = "ledger.list")]
    LedgerList {
        /// Include retired items.
        #[serde(default)]
        all: bool,
    },
    /// One ledger item with its recent history.
    #[serde(rename = "ledger.show")]
    LedgerShow {
        /// Id or prefix.
        id: String,
    },
    /// Records that something was done.
    #[serde(rename = "ledger.done")]
    LedgerDone(DoneParams),
    /// Acknowledges an item, done entry, check-in or moment.
    #[serde(rename = "ledger.ack")]
    LedgerAck(AckParams),
    /// Proposes moving one stage of an item to the partner.
    #[serde(rename = "ledger.handoff")]
    LedgerHandoff(HandoffParams),
    /// Answers a handoff.
    #[serde(rename = "ledger.answer")]
    LedgerAnswer(AnswerParams),
    /// Edits an item; stages put on the partner are offered to them as handoffs.
    #[serde(rename = "ledger.edit")]
    LedgerEdit(LedgerEditParams),
    /// Pauses an item ("do less for now"), optionally until a date.
    #[serde(rename = "ledger.pause")]
    LedgerPause {
        /// Id or prefix.
        id: String,
        /// The day it is meant to come back.
        #[serde(default)]
        until: Option<chrono::NaiveDate>,
    },
    /// Brings a paused or retired item back.
    #[serde(rename = "ledger.resume")]
    LedgerResume {
        /// Id or prefix.
        id: String,
    },
    /// Agrees with an item as it stands, its "good enough" standard included.
    #[serde(rename = "ledger.agree")]
    LedgerAgree {
        /// Id or prefix.
        id: String,
        /// When.
        #[serde(default, flatten)]
        at: At,
    },
    /// Retires an item.
    #[serde(rename = "ledger.retire")]
    LedgerRetire {
        /// Id or prefix.
        id: String,
        /// When.
        #[serde(default, flatten)]
        at: At,
    },
    /// Records a moment of connection.
    #[serde(rename = "moment.add")]
    MomentAdd(MomentParams),
    /// The timeline.
    #[serde(rename = "log")]
    Log(LogParams),
    /// Everything this device can read, as re-importable JSON.
    #[serde(rename = "export")]
    Export,
    /// Test only, and only with `HEARTH_TEST_ROGUE=1`: writes raw fields into a
    /// household record, skipping every check, as a modified client could. It grants
    /// nothing over other devices: they must refuse whatever it writes that breaks
    /// their rules. Used by the tests that play a rogue paired device.
    #[serde(rename = "rogue.put")]
    RoguePut {
        /// The collection (`devices`, `people`, `checkins`, ...).
        collection: String,
        /// The record's key.
        key: String,
        /// The fields to write; strings, numbers and booleans, written as they are.
        fields: serde_json::Map<String, serde_json::Value>,
    },
    /// Test only, and only with `HEARTH_TEST_ROGUE=1`: deletes a household record.
    #[serde(rename = "rogue.delete")]
    RogueDelete {
        /// The collection.
        collection: String,
        /// The record's key.
        key: String,
    },
    /// Merges an export file.
    #[serde(rename = "import")]
    Import {
        /// The export document.
        data: serde_json::Value,
    },
    /// What waits for this person: the partner's open asks, handoffs to answer,
    /// thank-yous and replies since they last looked, and whether they checked in today.
    #[serde(rename = "today")]
    Today {
        /// The caller's UTC offset, which decides what "today" is.
        #[serde(default)]
        utc_offset_min: i32,
        /// Records that the person has now looked, so the next view starts from here.
        #[serde(default)]
        mark_seen: bool,
    },
    /// The weekly walk for the two of you (`hearth together`).
    #[serde(rename = "together")]
    Together {
        /// The caller's UTC offset, which decides what "today" is.
        #[serde(default)]
        utc_offset_min: i32,
    },
    /// Replies to the partner's ask on one of their check-ins.
    #[serde(rename = "reply")]
    Reply {
        /// The check-in's id or prefix, as `today` lists it.
        ask: String,
        /// The reply.
        text: String,
        /// When.
        #[serde(default, flatten)]
        at: At,
    },
    /// Insights, computed now.
    #[serde(rename = "insights")]
    Insights {
        /// How many weeks of history to show.
        #[serde(default)]
        weeks: Option<u32>,
        /// Include the caller's own private entries.
        #[serde(default)]
        include_private: bool,
        /// The caller's UTC offset, which decides what "today" is.
        #[serde(default)]
        utc_offset_min: i32,
    },
}

impl DocCall {
    /// Every method name of this group, as on the wire; `Call` routes by it, so a
    /// variant missing here could not be called (the e2e tests call every one).
    pub const METHODS: &'static [&'static str] = &[
        "checkin.add",
        "reflect.add",
        "ledger.add",
        "ledger.list",
        "ledger.show",
        "ledger.done",
        "ledger.ack",
        "ledger.handoff",
        "ledger.answer",
        "ledger.edit",
        "ledger.pause",
        "ledger.resume",
        "ledger.agree",
        "ledger.retire",
        "moment.add",
        "log",
        "export",
        "rogue.put",
        "rogue.delete",
        "import",
        "today",
        "together",
        "reply",
        "insights",
    ];
}

impl From<DocCall> for Call {
    fn from(call: DocCall) -> Call {
        Call::Doc(call)
    }
}

/// The roster, pausing and leaving: the document owner answers them with this device's
/// key (`handlers::roster_call`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", content = "params")]
pub enum RosterCall {
    /// Every device on the roster, this one marked.
    #[serde(rename = "devices.list")]
    DevicesList,
    /// Renames one of this person's devices.
    #[serde(rename = "devices.rename")]
    DevicesRename {
        /// Device id or a prefix of it.
        id: String,
        /// The new name.
        name: String,
    },
    /// Removes a device from the roster: every device refuses it from then on.
    #[serde(rename = "devices.remove")]
    DevicesRemove {
        /// Device id or a prefix of it.
        id: String,
    },
    /// Pauses sharing with the partner's devices; this person's own devices keep syncing.
    #[serde(rename = "pause")]
    Pause {
        /// Ends the pause by itself after this many seconds; until `resume` when absent.
        #[serde(default)]
        for_secs: Option<u64>,
    },
    /// Ends this person's pause.
    #[serde(rename = "resume")]
    Resume,
    /// Ends sharing with the partner for good. Each side keeps its own copy.
    #[serde(rename = "leave")]
    Leave {
        /// Must be `true`: the caller has confirmed.
        #[serde(default)]
        confirm: bool,
    },
}

impl RosterCall {
    /// Every method name of this group, as on the wire; `Call` routes by it, so a
    /// variant missing here could not be called (the e2e tests call every one).
    pub const METHODS: &'static [&'static str] = &[
        "devices.list",
        "devices.rename",
        "devices.remove",
        "pause",
        "resume",
        "leave",
    ];
}

impl From<RosterCall> for Call {
    fn from(call: RosterCall) -> Call {
        Call::Roster(call)
    }
}

/// Offline bundles: the document owner answers them around its commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", content = "params")]
pub enum BundleCall {
    /// Seals the household changes the partner's devices lack (or all of them) into an
    /// offline bundle for them, signed by this device.
    #[serde(rename = "bundle.export")]
    BundleExport {
        /// Everything, not only what the partner's devices lack as far as known.
        #[serde(default)]
        all: bool,
    },
    /// Verifies, opens and merges an offline bundle from the partner's device.
    #[serde(rename = "bundle.import")]
    BundleImport {
        /// The bundle file's bytes, base64.
        bundle: String,
    },
}

impl BundleCall {
    /// Every method name of this group, as on the wire; `Call` routes by it, so a
    /// variant missing here could not be called (the e2e tests call every one).
    pub const METHODS: &'static [&'static str] = &["bundle.export", "bundle.import"];
}

impl From<BundleCall> for Call {
    fn from(call: BundleCall) -> Call {
        Call::Bundle(call)
    }
}

// The write requests' params, and `At`, when a write happened, are core's request types,
// serde-derived in the wire format, so the daemon hands what it decodes straight to the
// op. `tests/params_wire.rs` pins that format.
pub use hearth_core::ops::records::{
    EntryTime as At, HandoffAnswer as AnswerParams, LedgerEdit as LedgerEditParams,
    NewAck as AckParams, NewCheckin as CheckinParams, NewDone as DoneParams,
    NewHandoff as HandoffParams, NewLedgerItem as LedgerAddParams, NewMoment as MomentParams,
    NewReflection as ReflectParams,
};

/// Parameters of `log` (core's query).
pub use hearth_core::ops::log::LogQuery as LogParams;

/// One response line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<serde_json::Value>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Who is who, when the request asked for it with `with_people` (beside `ok`, so
    /// the result itself is the same either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people: Option<People>,
}

/// Everyone in the household and which of them is this device's person.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct People {
    /// This device's person's id.
    pub me: String,
    /// Everyone, as in `status`.
    pub people: Vec<PersonSummary>,
}

/// An answer as the JSON a response carries. Serializing the protocol's own types
/// fails only on a bug (a map with non-string keys, say), so the caller is told so.
pub fn encode_answer<T: Serialize>(answer: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(answer)
        .map_err(|e| ApiError::internal(format!("could not encode the answer: {e}")))
}

impl Response {
    /// A success.
    pub fn ok(id: u64, value: serde_json::Value) -> Response {
        Response {
            id,
            ok: Some(value),
            error: None,
            people: None,
        }
    }

    /// A failure.
    pub fn err(id: u64, error: ApiError) -> Response {
        Response {
            id,
            ok: None,
            error: Some(error),
            people: None,
        }
    }
}

/// Machine-readable error codes. The CLI maps them to exit codes (README lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request was malformed or a value was out of range.
    Invalid,
    /// No record matched.
    NotFound,
    /// A prefix matched several records.
    Ambiguous,
    /// The device has no identity yet.
    NotInitialized,
    /// The device already has an identity.
    AlreadyInitialized,
    /// The identity is locked by a passphrase.
    Locked,
    /// The passphrase was wrong.
    WrongPassphrase,
    /// Writing to disk failed; nothing was acknowledged.
    Storage,
    /// The client speaks another protocol version.
    Version,
    /// Anything else.
    Internal,
}

/// A structured error: what happened and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
    /// What to do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ApiError {
    /// An error with a hint.
    pub fn new(code: ErrorCode, message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// Something in the daemon went wrong that the caller cannot fix.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            ErrorCode::Internal,
            message,
            "restart the daemon with `hearth daemon stop` and try again",
        )
    }

    /// The daemon is shutting down and will not answer this call.
    pub fn stopping() -> ApiError {
        ApiError::new(
            ErrorCode::Internal,
            "hearthd is stopping",
            "start it again with `hearth daemon start`",
        )
    }
}

/// Events streamed to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Event {
    /// A document changed, locally or by sync.
    DocChanged {
        /// The document id.
        doc: String,
        /// Which record kinds changed (collection keys), when known.
        kinds: Vec<String>,
        /// Whether the change came from a peer.
        remote: bool,
    },
    /// A peer connected.
    PeerUp {
        /// Its device id.
        device: String,
    },
    /// A peer disconnected.
    PeerDown {
        /// Its device id.
        device: String,
    },
    /// A document finished syncing with a peer.
    SyncCompleted {
        /// Its device id.
        device: String,
        /// The document id.
        doc: String,
    },
}

/// One line on a subscription stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventLine {
    /// The subscribe request's id.
    pub id: u64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// The shape of `status`. A field left out reads as empty, so a client still shows what
/// it can of a daemon a version apart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// Protocol version.
    pub protocol: u32,
    /// Daemon process id.
    pub pid: u32,
    /// The data directory.
    pub data_dir: String,
    /// The control socket.
    pub socket: String,
    /// `ready`, `locked` or `uninitialized`.
    pub state: String,
    /// This device's id, once initialized.
    #[serde(default)]
    pub device_id: Option<String>,
    /// This device's person, once initialized.
    #[serde(default)]
    pub person: Option<PersonSummary>,
    /// Everyone in the household.
    #[serde(default)]
    pub people: Vec<PersonSummary>,
    /// The documents and their size.
    #[serde(default)]
    pub documents: Vec<DocStatus>,
    /// QUIC addresses this daemon listens on.
    #[serde(default)]
    pub listen: Vec<String>,
    /// Known peers.
    #[serde(default)]
    pub peers: Vec<PeerStatus>,
    /// Roster entries and removals this device refused, because their signatures do
    /// not hold up. Nothing about them is trusted; they are shown so a person can see
    /// that someone tried.
    #[serde(default)]
    pub refused: Vec<RefusedStatus>,
    /// The household secret's current epoch on this device, never the secret itself.
    #[serde(default)]
    pub household_epoch: Option<HouseholdEpochStatus>,
}

/// The household secret's current epoch, in `status`: its number and a short
/// fingerprint, so two devices can be seen to hold the same one. Neither tells anything
/// about the secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdEpochStatus {
    /// Counts up at every change.
    pub number: u64,
    /// 16 hex digits of a domain-separated SHA-256 of the secret.
    pub fingerprint: String,
}

/// A roster entry or removal this device refused, in `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RefusedStatus {
    /// The device id the entry names.
    pub device_id: String,
    /// `device` (an entry) or `removal`.
    pub what: String,
    /// Why, in plain words.
    pub reason: String,
    /// The device (or devices) whose changes brought it, or `this device` for a local
    /// write or import; unknown for what was already there when this daemon started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_by: Option<String>,
}

/// A person in `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PersonSummary {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// This person's pause of sharing, while it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<hearth_core::model::Pause>,
    /// When this person ended sharing (`hearth leave`), if they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_at: Option<Millis>,
}

/// A device in `devices.list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSummary {
    /// Device id, in groups.
    pub id: String,
    /// Device name.
    pub name: String,
    /// Whose device it is: the person's id.
    pub person_id: String,
    /// Whose device it is: the person's name.
    pub person: String,
    /// The device that added it (its id), absent for a household's first device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<String>,
    /// The name of the device that added it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by_name: Option<String>,
    /// When it was added, Unix ms.
    pub added_at: Millis,
    /// When it was removed, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<Millis>,
    /// Whether this is the device answering.
    pub this_device: bool,
    /// Whether this device syncs with it now: on the roster, not removed, and nobody
    /// ended sharing between the two.
    pub trusted: bool,
}

/// A document in `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DocStatus {
    /// Document id.
    pub id: String,
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// Records per collection.
    pub records: BTreeMap<String, usize>,
    /// Files moved aside because they could not be read.
    #[serde(default)]
    pub quarantined: Vec<String>,
    /// The document's heads, hex: equal heads mean equal documents.
    #[serde(default)]
    pub heads: Vec<String>,
    /// Received changes held until the device that wrote them is proven.
    #[serde(default)]
    pub held_changes: usize,
}

/// A peer in `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerStatus {
    /// Device id.
    pub device_id: String,
    /// Whose device.
    pub person: String,
    /// Device name.
    pub name: String,
    /// Connected now.
    pub connected: bool,
    /// It refused this device at the handshake the last time this one dialled it: its
    /// person removed this device on their side.
    #[serde(default)]
    pub refuses_this_device: bool,
    /// Last completed sync, Unix ms.
    #[serde(default)]
    pub last_sync: Option<Millis>,
    /// Last address that worked.
    #[serde(default)]
    pub last_addr: Option<String>,
    /// Sync frame bytes sent to it since the daemon started.
    #[serde(default)]
    pub bytes_sent: u64,
    /// Sync frame bytes received from it since the daemon started.
    #[serde(default)]
    pub bytes_received: u64,
    /// Sync frames sent to it since the daemon started.
    #[serde(default)]
    pub frames_sent: u64,
    /// Sync frames received from it since the daemon started.
    #[serde(default)]
    pub frames_received: u64,
    /// Connected, but sharing with it is on hold: a pause on this side, or the other
    /// side answered that it is not sharing now.
    #[serde(default)]
    pub on_hold: bool,
    /// Changes it sent that wait until the device that wrote them is proven.
    #[serde(default)]
    pub held_changes: usize,
    /// Changes it sent that were refused for touching what was not their author's,
    /// since the daemon started.
    #[serde(default)]
    pub refused_changes: usize,
    /// Why they were refused, in plain words, without content.
    #[serde(default)]
    pub refused_because: Vec<String>,
}

// Typed answers. Fields are in alphabetical order, the order the daemon has always
// written them in (serde_json's maps are sorted), so the bytes on the wire are unchanged.

/// The answer to `init`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Initialized {
    /// This device's id.
    pub device_id: String,
    /// The new person's id.
    pub person_id: String,
    /// Whether the identity is protected by a passphrase.
    pub protected: bool,
}

/// The answer to `unlock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlocked {
    /// The identity was already open; nothing was done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already: bool,
    /// Always true.
    pub unlocked: bool,
}

/// The answer to `pair.invite`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// Addresses the joiner can give with `--addr` when discovery cannot find this device.
    pub addresses: Vec<String>,
    /// The code to read out.
    pub code: String,
    /// How long the invite stays open.
    pub expires_in_secs: u64,
    /// Whom the code admits: `partner` or `own-device`.
    pub role: String,
}

/// The answer to `shutdown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopping {
    /// Always true.
    pub stopping: bool,
}

/// The answer to `web.open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebOpened {
    /// The page's port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:PORT/?token=TOKEN`: the token works once, for two minutes, and
    /// is swapped for a session cookie.
    pub url: String,
}

/// The answer to `sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Syncing {
    /// Always true.
    pub syncing: bool,
}

/// The answer to `peers.add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAdded {
    /// The address as the daemon will dial it.
    pub added: String,
}

/// The answer to `subscribe`, before the events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    /// Always true.
    pub subscribed: bool,
}

// Kinds accepted by `--kind` in `log`, and the record kinds in events; the ledger's
// default listing.
pub use hearth_core::ops::log::{listed_by_default, RECORD_KINDS};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hearth_core::model::MomentKind;

    #[test]
    fn requests_use_method_and_params() {
        let line = r#"{"v":1,"id":3,"method":"moment.add","params":{"kind":"laugh","note":"x","at":5,"utc_offset_min":60}}"#;
        let req: Request = serde_json::from_str(line).unwrap();
        assert_eq!(req.id, 3);
        match req.call {
            Call::Doc(DocCall::MomentAdd(p)) => {
                assert_eq!(p.kind, MomentKind::Laugh);
                assert_eq!(p.at.at, Some(5));
                assert_eq!(p.at.utc_offset_min, 60);
            }
            other => panic!("unexpected {other:?}"),
        }
        let status: Request = serde_json::from_str(r#"{"id":1,"method":"status"}"#).unwrap();
        let web: Request = serde_json::from_str(r#"{"id":1,"method":"web.open"}"#).unwrap();
        assert!(matches!(web.call, Call::Daemon(DaemonCall::WebOpen)));
        assert_eq!(
            serde_json::to_string(&Request {
                v: 1,
                id: 6,
                call: DaemonCall::WebOpen.into(),
                with_people: false,
            })
            .unwrap(),
            r#"{"v":1,"id":6,"method":"web.open"}"#
        );
        assert!(matches!(status.call, Call::Daemon(DaemonCall::Status)));
        let subscribe: Request = serde_json::from_str(r#"{"id":2,"method":"subscribe"}"#).unwrap();
        assert!(matches!(subscribe.call, Call::Subscribe));
        let line = serde_json::to_string(&Request {
            v: 1,
            id: 4,
            call: Call::Subscribe,
            with_people: false,
        })
        .unwrap();
        assert_eq!(line, r#"{"v":1,"id":4,"method":"subscribe"}"#);
    }

    #[test]
    fn every_group_keeps_the_flat_wire_format() {
        let line = serde_json::to_string(&Request {
            v: 1,
            id: 5,
            call: RosterCall::Pause { for_secs: Some(9) }.into(),
            with_people: false,
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"v":1,"id":5,"method":"pause","params":{"for_secs":9}}"#
        );
        let back: Request = serde_json::from_str(&line).unwrap();
        assert!(matches!(
            back.call,
            Call::Roster(RosterCall::Pause { for_secs: Some(9) })
        ));
        // No method is in two groups, so the name alone routes a call.
        let mut all: Vec<&str> = [
            DaemonCall::METHODS,
            NetCall::METHODS,
            DocCall::METHODS,
            RosterCall::METHODS,
            BundleCall::METHODS,
        ]
        .concat();
        all.push(SUBSCRIBE);
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count);
    }

    #[test]
    fn unknown_methods_and_bad_values_fail_to_parse() {
        assert!(serde_json::from_str::<Request>(r#"{"id":1,"method":"rm-rf"}"#).is_err());
        assert!(serde_json::from_str::<Request>(
            r#"{"id":1,"method":"moment.add","params":{"kind":"hug"}}"#
        )
        .is_err());
    }

    #[test]
    fn typed_answers_keep_the_sorted_key_order() {
        let invite = Invite {
            addresses: vec!["127.0.0.1:1".into()],
            code: "1-2-3".into(),
            expires_in_secs: 600,
            role: "partner".into(),
        };
        let typed = serde_json::to_string(&invite).unwrap();
        let generic = serde_json::to_string(&serde_json::to_value(&invite).unwrap()).unwrap();
        assert_eq!(typed, generic);
        let unlocked = Unlocked {
            already: false,
            unlocked: true,
        };
        assert_eq!(
            serde_json::to_string(&unlocked).unwrap(),
            r#"{"unlocked":true}"#
        );
    }

    #[test]
    fn events_are_tagged() {
        let line = serde_json::to_string(&EventLine {
            id: 9,
            event: Event::PeerUp {
                device: "ABCD".into(),
            },
        })
        .unwrap();
        assert_eq!(line, r#"{"id":9,"event":"peer-up","device":"ABCD"}"#);
    }
}
