//! Pairing over `hearth-pair/1`: the daemon's driver for [`hearth_core::pair::Handshake`].
//!
//! The inviter opens one single-use invite at a time. Its code is good for one attempt:
//! the first pairing connection takes the invite, and whatever happens next (success,
//! a wrong code, a dropped connection) the invite is gone. The joiner connects to the
//! inviter's address (given, or found by discovery from the code's number), runs the same handshake, and on success records the inviter's
//! roster and the household secret, then dials the inviter over `hearth/1` to sync.
//!
//! The inviter decides whom the code admits: the partner (a new person, `pair invite`)
//! or another device of the inviting person (`pair invite --own-device`). The role is
//! bound into the handshake's keys, so the joiner never chooses it; it learns the role
//! from the inviter once the code is confirmed. An own device must be fresh: it takes
//! the inviter's person, which means replacing its own empty documents (see
//! `ActorMsg::BecomePerson`), after which it shares that person's private document.
//!
//! This module moves bytes between a QUIC stream and the handshake; all cryptography
//! and message checks live in `core::pair`.
//!
//! **One owner.** The pairing state (this device's person and the one open invite, with
//! its expiry) belongs to one task, `PairingTask`, which loops over its inbox and the
//! open invite's deadline. Everyone else holds a [`Pairing`], a cheap handle that sends
//! the task a request and awaits the reply. The protocol IO (an incoming connection in
//! [`accept`], a join in [`join`]) runs in the caller's task and asks the pairing task
//! only for what it owns, so a slow peer never holds up another request. Pairing knows
//! nothing of the network driver: the transport and the document owner's handle are
//! given at start, and [`join`] returns the inviter's address for the caller to dial.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hearth_core::identity::DeviceId;
use hearth_core::model::{Device, Person, PersonId};
use hearth_core::pair::{
    Admission, Handshake, InviteRole, InviterInfo, JoinerInfo, JoinerPolicy, PairError,
    PairOutcome, PairingCode, TlsBinding,
};
use hearth_core::roster::{self, RosterExport};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use zeroize::Zeroizing;

use hearth_core::epochs::Epoch;

use crate::actor::{now_millis, ActorHandle, ActorMsg};
use crate::discovery::{self, Discoverer};
use crate::epochs::HouseholdKeys;
use crate::storage::DeviceInfo;
use crate::transport::{self, Accepted, Alpn, CloseReason, PairingWindow, Transport, TrustSet};
use hearth_api::{ApiError, ErrorCode, InviteUsed, ThisDevice};

/// How long `pair join` without an address looks for the inviting device.
const FIND_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one dial to a discovered inviter address may take before the next is tried.
const FIND_DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one pairing attempt may take once connected.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests waiting for the pairing task; a caller beyond this waits its turn.
const INBOX: usize = 64;

/// How `pair join` joins.
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinOptions {
    /// Join even though this device already holds entries (as the partner only).
    pub merge: bool,
}

/// How an invite ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteResult {
    /// A device joined.
    Paired {
        /// Whom the invite admitted.
        role: InviteRole,
        /// The joining person's name (the partner's; for an own device, this person's).
        name: String,
        /// The name the joining device gave itself.
        device_name: String,
        /// Its device id.
        device: String,
    },
    /// Someone tried a code that did not match; the invite is used up.
    WrongCode,
    /// The attempt failed for another reason; the invite is used up.
    Failed(String),
    /// Nobody came in time.
    Expired,
}

/// The open invite. Whoever holds it holds the transport's pairing window open.
struct Invite {
    code: PairingCode,
    role: InviteRole,
    expires_at: Instant,
    _window: PairingWindow,
    result: watch::Sender<Option<InviteResult>>,
}

/// What pairing needs that stays the same while the daemon runs: this device's keys,
/// the transport it dials with and the handles it talks through.
struct PairingContext {
    owner: ActorHandle,
    transport: Transport,
    identity: age::x25519::Identity,
    local_key: [u8; 32],
    /// Signs the admissions this device grants and its own entry when it joins.
    signer: Arc<ring::signature::Ed25519KeyPair>,
    /// The household secret's epochs, shared with the document owner, which moves them
    /// on. Their change signal also carries the open invite's changes, so that
    /// discovery announces the right labels.
    keys: Arc<HouseholdKeys>,
}

/// A request to the pairing task.
enum Request {
    /// Opens a new invite, replacing any open one.
    Open {
        role: InviteRole,
        timeout: Duration,
        reply: oneshot::Sender<Result<PairingCode, ApiError>>,
    },
    /// Takes the open invite for an incoming pairing connection.
    Take {
        reply: oneshot::Sender<Option<Invite>>,
    },
    /// Where the latest invite's result will appear.
    LastResult {
        reply: oneshot::Sender<Option<watch::Receiver<Option<InviteResult>>>>,
    },
    /// This device's person.
    Me { reply: oneshot::Sender<PersonId> },
    /// An own-device join made this device another device of `person`.
    BecamePerson { person: PersonId },
}

/// The pairing task's state: this device's person and the one open invite. Only the
/// task touches it; everyone else sends a [`Request`] through a [`Pairing`] handle.
struct PairingTask {
    inbox: mpsc::Receiver<Request>,
    /// Where an open invite holds a pairing window open.
    trust: Arc<TrustSet>,
    /// Whose change signal tells discovery that the open invite changed.
    keys: Arc<HouseholdKeys>,
    me: PersonId,
    invite: Option<Invite>,
    last_result: Option<watch::Receiver<Option<InviteResult>>>,
    /// The open invite's code number, read by discovery without a round trip.
    invite_number: watch::Sender<Option<u8>>,
}

impl PairingTask {
    /// Starts the task on the current runtime: where to send it requests, and where it
    /// publishes the open invite's number.
    fn start(
        trust: Arc<TrustSet>,
        keys: Arc<HouseholdKeys>,
        me: PersonId,
    ) -> (mpsc::Sender<Request>, watch::Receiver<Option<u8>>) {
        let (requests, inbox) = mpsc::channel(INBOX);
        let (invite_number, number_seen) = watch::channel(None);
        let task = PairingTask {
            inbox,
            trust,
            keys,
            me,
            invite: None,
            last_result: None,
            invite_number,
        };
        tokio::spawn(task.run());
        (requests, number_seen)
    }

    async fn run(mut self) {
        loop {
            let expiry = self.invite.as_ref().map(|i| i.expires_at);
            tokio::select! {
                biased;
                request = self.inbox.recv() => match request {
                    Some(request) => self.handle(request),
                    // Every handle is gone: the daemon is stopping. Dropping the open
                    // invite tells a waiting `pair wait` so.
                    None => break,
                },
                () = sleep_until(expiry) => self.finish(InviteResult::Expired),
            }
        }
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::Open {
                role,
                timeout,
                reply,
            } => {
                let _ = reply.send(self.open(role, timeout));
            }
            Request::Take { reply } => {
                let taken = self.invite.take();
                self.changed();
                let _ = reply.send(taken);
            }
            Request::LastResult { reply } => {
                let _ = reply.send(self.last_result.clone());
            }
            Request::Me { reply } => {
                let _ = reply.send(self.me);
            }
            Request::BecamePerson { person } => {
                self.me = person;
                self.changed();
            }
        }
    }

    fn open(&mut self, role: InviteRole, timeout: Duration) -> Result<PairingCode, ApiError> {
        if self.keys.current().is_none() {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                "this device joined a household but has no household secret",
                "invite from the device that started the household",
            ));
        }
        let code = PairingCode::generate(&mut rand::rngs::OsRng);
        let (result, receiver) = watch::channel(None);
        let invite = Invite {
            code: code.clone(),
            role,
            expires_at: Instant::now() + timeout,
            _window: self.trust.open_pairing(),
            result,
        };
        if let Some(old) = self.invite.replace(invite) {
            old.result.send_replace(Some(InviteResult::Failed(
                "a newer invite replaced it".into(),
            )));
        }
        self.last_result = Some(receiver);
        self.changed();
        Ok(code)
    }

    /// Ends the open invite with `result`.
    fn finish(&mut self, result: InviteResult) {
        if let Some(invite) = self.invite.take() {
            invite.result.send_replace(Some(result));
        }
        self.changed();
    }

    /// Tells discovery and the transport that the open invite or the household secrets
    /// may have changed: the number first, so that discovery reads the new one.
    fn changed(&self) {
        self.invite_number
            .send_replace(self.invite.as_ref().map(|i| i.code.number()));
        self.keys.notify();
    }
}

/// Sends the pairing task `request`, built around a reply channel, and waits for the
/// answer.
async fn ask<T>(
    requests: &mpsc::Sender<Request>,
    request: impl FnOnce(oneshot::Sender<T>) -> Request,
) -> Result<T, ApiError> {
    let (reply, answer) = oneshot::channel();
    requests
        .send(request(reply))
        .await
        .map_err(|_| ApiError::stopping())?;
    answer.await.map_err(|_| ApiError::stopping())
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A handle to this daemon's pairing task. Cheap to clone; the task ends when the last
/// handle is dropped.
#[derive(Clone)]
pub struct Pairing {
    requests: mpsc::Sender<Request>,
    ctx: Arc<PairingContext>,
    invite_number: watch::Receiver<Option<u8>>,
}

impl std::fmt::Debug for Pairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pairing").finish_non_exhaustive()
    }
}

/// What the pairing task is started with.
pub struct PairingSetup<'a> {
    /// The transport's trust set, which an open invite opens a pairing window in.
    pub trust: Arc<TrustSet>,
    /// The document owner, which holds the roster.
    pub owner: ActorHandle,
    /// The transport a joining device dials with.
    pub transport: Transport,
    /// This device's secrets.
    pub secrets: &'a hearth_core::secrets::DeviceSecrets,
    /// This device's signing key.
    pub signer: Arc<ring::signature::Ed25519KeyPair>,
    /// This device's person.
    pub me: PersonId,
    /// The household secret's epochs.
    pub keys: Arc<HouseholdKeys>,
}

impl Pairing {
    /// Starts the pairing task of a ready daemon on the current runtime.
    pub fn spawn(setup: PairingSetup<'_>) -> Pairing {
        let (requests, invite_number) =
            PairingTask::start(setup.trust, setup.keys.clone(), setup.me);
        let ctx = Arc::new(PairingContext {
            owner: setup.owner,
            transport: setup.transport,
            identity: setup.secrets.age_identity().clone(),
            local_key: setup.secrets.device_public_key(),
            signer: setup.signer,
            keys: setup.keys,
        });
        Pairing {
            requests,
            ctx,
            invite_number,
        }
    }

    /// Asks the pairing task.
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, ApiError> {
        ask(&self.requests, request).await
    }

    /// Changes whenever the open invite or the household secret may have changed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.ctx.keys.changes()
    }

    /// The number part of the open invite's code, for the pairing announcement.
    pub fn open_invite_number(&self) -> Option<u8> {
        *self.invite_number.borrow()
    }

    /// This device's person.
    async fn me(&self) -> Result<PersonId, ApiError> {
        self.ask(|reply| Request::Me { reply }).await
    }

    /// Opens a new invite for `role`, replacing any open one, and closes it after
    /// `timeout`.
    pub async fn invite(
        &self,
        timeout: Duration,
        role: InviteRole,
    ) -> Result<PairingCode, ApiError> {
        self.ask(|reply| Request::Open {
            role,
            timeout,
            reply,
        })
        .await?
    }

    /// Takes the open invite: it is single-use from the first connection on.
    async fn take_invite(&self) -> Option<Invite> {
        self.ask(|reply| Request::Take { reply })
            .await
            .ok()
            .flatten()
    }

    /// Waits until the latest invite ends.
    pub async fn wait(&self) -> Result<Value, ApiError> {
        let receiver = self.ask(|reply| Request::LastResult { reply }).await?;
        let Some(mut receiver) = receiver else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "there is no open invite",
                "create one with `hearth pair invite`",
            ));
        };
        let result = loop {
            if let Some(result) = receiver.borrow_and_update().clone() {
                break result;
            }
            if receiver.changed().await.is_err() {
                break InviteResult::Failed("the daemon stopped".into());
            }
        };
        match result {
            InviteResult::Paired {
                role,
                name,
                device_name,
                device,
            } => hearth_api::encode_answer(&InviteUsed {
                paired: true,
                role: role.as_str().into(),
                name,
                device_name,
                device_id: device,
            }),
            InviteResult::WrongCode => Err(ApiError::new(
                ErrorCode::Invalid,
                "someone tried to join with a code that did not match, so the invite is used up",
                "if it was your partner, run `hearth pair invite` again and read the new code out carefully",
            )),
            InviteResult::Failed(why) => Err(ApiError::new(
                ErrorCode::Invalid,
                format!("pairing did not finish: {why}; the invite is used up"),
                "run `hearth pair invite` again",
            )),
            InviteResult::Expired => Err(ApiError::new(
                ErrorCode::Invalid,
                "nobody joined before the invite expired",
                "run `hearth pair invite` again when your partner is ready",
            )),
        }
    }

    /// Refuses an invite the household cannot take: none once sharing has ended
    /// (pairing hands the roster and the household secret to the joiner, and after a
    /// leaving nobody new may have them), and no partner once two people are in it.
    pub async fn check_can_invite(&self, role: InviteRole) -> Result<(), ApiError> {
        let roster = self.roster().await?;
        if !roster.left.is_empty() {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                "sharing in this household has ended, so it takes in no new devices",
                "your copy stays here and `hearth export` writes it out; to start afresh, `hearth init` in a new data directory and `hearth import` the export there",
            ));
        }
        if role == InviteRole::Partner && partner_is_here(&roster) {
            return Err(partner_already_here());
        }
        Ok(())
    }

    /// Asks the document owner.
    async fn ask_owner<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> ActorMsg,
    ) -> Result<T, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.ctx.owner.send(request(reply)).await?;
        answer.await.map_err(|_| ApiError::stopping())
    }

    async fn roster(&self) -> Result<RosterExport, ApiError> {
        self.ask_owner(|reply| ActorMsg::Roster { reply }).await
    }

    async fn add_to_roster(&self, roster: RosterExport) -> Result<(), ApiError> {
        self.ask_owner(|reply| ActorMsg::AddToRoster { roster, reply })
            .await?
            .map(|_| ())
    }

    fn save_household_epoch(&self, epoch: Epoch) -> Result<(), ApiError> {
        self.ctx
            .keys
            .replace(epoch)
            .map_err(|e| ApiError::internal(format!("could not save the household secret: {e}")))
    }
}

/// Discovery announces from the household secret and the open invite.
impl discovery::Keys for Pairing {
    fn household_secret(&self) -> Option<Zeroizing<[u8; 32]>> {
        self.ctx.keys.current().map(|e| e.secret)
    }

    fn discoverable_secrets(&self) -> Vec<Zeroizing<[u8; 32]>> {
        self.ctx.keys.discoverable_secrets()
    }

    fn open_invite_number(&self) -> Option<u8> {
        Pairing::open_invite_number(self)
    }

    fn changes(&self) -> watch::Receiver<u64> {
        Pairing::changes(self)
    }
}

/// Whether the household already holds its two people.
fn partner_is_here(roster: &RosterExport) -> bool {
    roster.people.len() >= 2
}

fn partner_already_here() -> ApiError {
    ApiError::new(
        ErrorCode::Invalid,
        "both of you are already in this household, so there is no partner left to invite",
        "to add another device of yours, run `hearth pair invite --own-device`; your partner adds their own devices from one of theirs",
    )
}

/// Finishes the stream and waits (briefly) until the peer has read all of it, so that
/// closing the connection afterwards does not discard the last frames.
async fn flush(send: &mut quinn::SendStream) {
    if send.finish().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
    }
}

/// Runs a handshake over one bidirectional stream until it finishes or fails.
async fn drive(
    handshake: &mut Handshake,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
) -> Result<PairOutcome, PairError> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(frame) = handshake.poll_transmit() {
            if send.write_all(&frame).await.is_err() {
                return Err(PairError::Closed);
            }
        }
        if handshake.is_finished() {
            if let Some(outcome) = handshake.take_outcome() {
                flush(send).await;
                return Ok(outcome);
            }
        }
        match recv.read(&mut buf).await {
            Ok(Some(n)) => {
                let result = handshake.handle_bytes(&buf[..n]);
                if let Err(e) = result {
                    // Flush what the handshake queued (our confirmation), so the peer
                    // learns the code was wrong on its side too.
                    while let Some(frame) = handshake.poll_transmit() {
                        let _ = send.write_all(&frame).await;
                    }
                    flush(send).await;
                    return Err(e);
                }
            }
            Ok(None) | Err(_) => {
                if handshake.is_finished() {
                    if let Some(outcome) = handshake.take_outcome() {
                        return Ok(outcome);
                    }
                }
                return Err(PairError::Closed);
            }
        }
    }
}

/// Handles an incoming pairing connection on the inviting device.
pub async fn accept(pairing: Pairing, accepted: Accepted) {
    let connection = accepted.connection;
    let Some(invite) = pairing.take_invite().await else {
        transport::close(&connection, CloseReason::ProtocolViolation);
        return;
    };
    let peer = accepted.peer;
    let local_tls_key = accepted.local_tls_key.unwrap_or(pairing.ctx.local_key);
    let result = tokio::time::timeout(
        ATTEMPT_TIMEOUT,
        invite_side(
            &pairing,
            &invite.code,
            invite.role,
            &connection,
            local_tls_key,
            peer,
        ),
    )
    .await;
    let result = match result {
        Ok(r) => r,
        Err(_) => Err(InviteResult::Failed(
            "the other device took too long".into(),
        )),
    };
    let outcome = match result {
        Ok(done) => done,
        Err(fail) => {
            tracing::info!(peer = %DeviceId::from_public_key(&peer), "a pairing attempt failed; the invite is used up");
            fail
        }
    };
    invite.result.send_replace(Some(outcome));
    transport::close(&connection, CloseReason::Done);
}

async fn invite_side(
    pairing: &Pairing,
    code: &PairingCode,
    role: InviteRole,
    connection: &quinn::Connection,
    local_tls_key: [u8; 32],
    peer: [u8; 32],
) -> Result<InviteResult, InviteResult> {
    let failed = |why: &str| InviteResult::Failed(why.to_string());
    let (mut send, mut recv) = connection
        .accept_bi()
        .await
        .map_err(|_| failed("the connection closed"))?;
    let roster = pairing.roster().await.map_err(|e| failed(&e.message))?;
    // The roster may have changed since the invite was made (another device invited
    // the partner meanwhile, or someone left): check again before anything goes out.
    if !roster.left.is_empty() {
        return Err(failed(
            "sharing in this household has ended, so it takes in no new devices",
        ));
    }
    if role == InviteRole::Partner && partner_is_here(&roster) {
        return Err(failed(
            "both of you are already in this household, so a partner invite admits nobody; to add another device of yours, run `hearth pair invite --own-device`",
        ));
    }
    let me_id = pairing.me().await.map_err(|e| failed(&e.message))?;
    let me = roster.people.iter().find(|p| p.id == me_id).cloned();
    let my_device = DeviceId::from_public_key(&pairing.ctx.local_key).to_string();
    let epoch = pairing
        .ctx
        .keys
        .current()
        .ok_or_else(|| failed("no household secret"))?;
    let admission = Admission {
        people: roster.people.iter().map(|p| p.id).collect(),
        device_keys: roster
            .devices
            .iter()
            .filter_map(|d| data_encoding::HEXLOWER.decode(d.public_key.as_bytes()).ok())
            .filter_map(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .collect(),
    };
    let my_name = me.map(|p| p.name).unwrap_or_default();
    let info = InviterInfo {
        role,
        device_key: pairing.ctx.local_key,
        display_name: my_name.clone(),
        person_id: me_id,
        roster: serde_json::to_vec(&roster)
            .map_err(|_| failed("the roster could not be encoded"))?,
        household_secret: epoch.secret.clone(),
        household_epoch: epoch.number,
        // This side showed a one-time certificate: prove the device key over both TLS
        // keys, inside the sealed payload only a code holder opens.
        device_sig: (local_tls_key != pairing.ctx.local_key).then(|| {
            let message = hearth_core::pair::inviter_device_message(&local_tls_key, &peer);
            let mut sig = [0u8; 64];
            sig.copy_from_slice(pairing.ctx.signer.sign(&message).as_ref());
            sig
        }),
    };
    let tls = TlsBinding {
        local_tls_key,
        peer_tls_key: peer,
    };
    let mut handshake = Handshake::new_inviter(code, info, admission, tls, &mut rand::rngs::OsRng);
    let outcome = drive(&mut handshake, &mut send, &mut recv)
        .await
        .map_err(|e| match e {
            PairError::WrongCode => InviteResult::WrongCode,
            // A joiner that cannot take this role (not fresh, or holding entries) stops
            // after the code is confirmed and tells its own user why.
            PairError::Closed if handshake.role().is_some() => failed(
                "the joining device stopped before saying who it is, most likely because it cannot join this way (its screen says why)",
            ),
            other => InviteResult::Failed(other.to_string()),
        })?;
    let PairOutcome::Joiner(joiner) = outcome else {
        return Err(failed("the other device answered as an inviter"));
    };
    // The role is ours, never the joiner's: it chose nothing.
    let (person, person_name, device_name) = match role {
        InviteRole::Partner => (
            joiner.person_id,
            joiner.person_name.clone(),
            format!("{}'s device", joiner.person_name),
        ),
        InviteRole::OwnDevice => (me_id, my_name, joiner.device_name.clone()),
    };
    let device_id = DeviceId::from_public_key(&joiner.device_key).to_string();
    let now = now_millis();
    let mut people = Vec::new();
    if role == InviteRole::Partner {
        people.push(Person {
            id: person,
            name: joiner.person_name.clone(),
            joined_at: now,
        });
    }
    // Enrolment, on a second stream of the same authenticated connection: the joiner
    // signs its own entry (key, person, recipient), and this device admits it with its
    // signature. Both halves are needed before any device trusts the entry.
    let (mut enrol_send, mut enrol_recv) =
        tokio::time::timeout(ENROL_TIMEOUT, connection.accept_bi())
            .await
            .map_err(|_| failed("the joining device did not sign its entry in time"))?
            .map_err(|_| failed("the connection closed"))?;
    let request: Enrolment = read_json(&mut enrol_recv)
        .await
        .map_err(|_| failed("the joining device sent an entry this Hearth cannot read"))?;
    let admit_as = match role {
        InviteRole::Partner => roster::Admit::Partner,
        InviteRole::OwnDevice => roster::Admit::OwnDevice,
    };
    let device = Device {
        id: device_id.clone(),
        person,
        name: device_name,
        public_key: data_encoding::HEXLOWER.encode(&joiner.device_key),
        age_recipient: Some(request.age_recipient),
        added_by: Some(my_device),
        added_at: now,
        revoked_at: None,
        admission: Some(roster::admit(
            &pairing.ctx.signer,
            &joiner.device_key,
            person,
            admit_as,
            now,
        )),
        self_sig: Some(request.self_sig),
        removal: None,
    };
    if !roster::self_signature_holds(&device) {
        return Err(failed(
            "the joining device's signature over its own entry does not hold",
        ));
    }
    // The entry is written (and durable) before the connection closes, and the joiner
    // dials for sync only after that: nothing private can flow before it exists.
    pairing
        .add_to_roster(RosterExport {
            people,
            devices: vec![device.clone()],
            left: Vec::new(),
        })
        .await
        .map_err(|e| failed(&e.message))?;
    // The joiner writes the very same entry on its side, so the two copies agree.
    if write_json(&mut enrol_send, &device).await.is_err() {
        return Err(failed("the connection closed"));
    }
    flush(&mut enrol_send).await;
    tracing::info!(peer = %device_id, role = role.as_str(), "paired a new device");
    Ok(InviteResult::Paired {
        role,
        name: person_name,
        device_name: joiner.device_name,
        device: device_id,
    })
}

/// Where `pair join` looks for the inviting device.
pub enum JoinTarget {
    /// The address the user gave.
    Addr(SocketAddr),
    /// Whatever discovery finds announcing the code's number.
    Discover(Arc<Discoverer>),
}

/// Dials the inviting device for `hearth-pair/1`. With discovery, every address found
/// for the code's number is tried in turn, as they arrive, until one answers.
async fn connect_inviter(
    transport: &Transport,
    code: &PairingCode,
    target: JoinTarget,
) -> Result<(transport::Dialed, SocketAddr), ApiError> {
    let discovery = match target {
        JoinTarget::Addr(addr) => {
            return transport
                .connect(addr, Alpn::Pair, None)
                .await
                .map(|dialed| (dialed, addr))
                .map_err(|e| {
                    ApiError::new(
                        ErrorCode::Invalid,
                        format!("could not reach the inviting device at {addr}: {e}"),
                        "check the address and that `hearth pair invite` is still waiting there",
                    )
                });
        }
        JoinTarget::Discover(discovery) => discovery,
    };
    let mut found = discovery.find_inviter(code.number());
    let deadline = tokio::time::Instant::now() + FIND_TIMEOUT;
    let local = transport.local_addr().ok();
    let mut last_error = None;
    while let Ok(Some(batch)) = tokio::time::timeout_at(deadline, found.recv()).await {
        for addr in batch {
            if local.is_some_and(|l| !discovery::dialable(l, &addr)) {
                continue;
            }
            match tokio::time::timeout(FIND_DIAL_TIMEOUT, transport.connect(addr, Alpn::Pair, None))
                .await
            {
                Ok(Ok(dialed)) => return Ok((dialed, addr)),
                Ok(Err(e)) => last_error = Some(format!("{addr}: {e}")),
                Err(_) => last_error = Some(format!("{addr} did not answer")),
            }
        }
    }
    let message = match last_error {
        Some(why) => format!("found the inviting device but could not reach it ({why})"),
        None => format!(
            "no device on this network is waiting with a code that starts with {} (looked for {} s)",
            code.number(),
            FIND_TIMEOUT.as_secs()
        ),
    };
    Err(ApiError::new(
        ErrorCode::Invalid,
        message,
        "check that `hearth pair invite` is still waiting on a device on the same network, or add --addr HOST:PORT with the address it printed",
    ))
}

/// A finished join: the answer for `pair join`, and the inviting device and the address
/// it answered at, which the caller dials for sync.
#[derive(Debug)]
pub struct Joined {
    /// The answer for the client.
    pub answer: Value,
    /// The inviting device.
    pub inviter: DeviceId,
    /// Where it answered.
    pub addr: SocketAddr,
}

/// Joins a household from the joining device.
pub async fn join(
    pairing: &Pairing,
    code: &str,
    target: JoinTarget,
    options: JoinOptions,
) -> Result<Joined, ApiError> {
    let code: PairingCode = code.parse().map_err(|e: hearth_core::pair::CodeError| {
        ApiError::new(
            ErrorCode::Invalid,
            e.to_string(),
            "type the code exactly as `hearth pair invite` showed it, like 4-amber-orbit-lantern",
        )
    })?;
    let roster = pairing.roster().await?;
    // Which roles this device can take, decided before dialling; the inviter's code
    // says which one it is, and a role this device cannot take is refused before it
    // says anything about itself.
    let fresh = pairing
        .ask_owner(|reply| ActorMsg::IsFresh { reply })
        .await?;
    let holds_entries = pairing
        .ask_owner(|reply| ActorMsg::HoldsEntries { reply })
        .await?;
    let policy = JoinerPolicy {
        accepts_partner: !holds_entries || options.merge,
        accepts_own_device: fresh,
        claim: None,
    };
    if !policy.accepts_partner && !policy.accepts_own_device {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            "this device already holds entries of its own, and joining would mix them into the shared household",
            "join from a fresh device (`hearth init` with a new --data-dir), or add --merge to bring these entries along",
        ));
    }
    let me_id = pairing.me().await?;
    let me = roster
        .people
        .iter()
        .find(|p| p.id == me_id)
        .cloned()
        .ok_or_else(|| ApiError::internal("this device's person is missing from its roster"))?;
    let my_device = DeviceId::from_public_key(&pairing.ctx.local_key).to_string();
    let device_name = roster
        .devices
        .iter()
        .find(|d| d.id == my_device)
        .map(|d| d.name.clone())
        .unwrap_or_else(|| "another device".into());
    let (dialed, addr) = connect_inviter(&pairing.ctx.transport, &code, target).await?;
    let (connection, peer) = (dialed.connection, dialed.peer);
    let (mut send, mut recv) = connection
        .open_bi()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let info = JoinerInfo {
        device_key: pairing.ctx.local_key,
        person_id: me_id,
        person_name: me.name.clone(),
        device_name: device_name.clone(),
    };
    let tls = TlsBinding {
        local_tls_key: pairing.ctx.local_key,
        peer_tls_key: peer,
    };
    let mut handshake = Handshake::new_joiner(&code, info, policy, tls, &mut rand::rngs::OsRng);
    let outcome =
        tokio::time::timeout(ATTEMPT_TIMEOUT, drive(&mut handshake, &mut send, &mut recv))
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::Invalid,
                    "the inviting device stopped answering",
                    "run `hearth pair invite` again and retry",
                )
            })?;
    let outcome = outcome.map_err(|e| {
        if let PairError::RoleNotAccepted { role } = e {
            return role_not_accepted(role);
        }
        let closed = matches!(e, PairError::Closed);
        let err = transport::connection_error(&connection, quinn::ConnectionError::LocallyClosed);
        let message = if closed {
            format!("pairing did not finish ({err})")
        } else {
            e.to_string()
        };
        ApiError::new(
            ErrorCode::Invalid,
            message,
            "run `hearth pair invite` on the other device again, then join with the new code",
        )
    })?;
    let PairOutcome::Inviter(inviter) = outcome else {
        return Err(ApiError::internal("the other device answered as a joiner"));
    };
    let own = enrol(pairing, &connection, &inviter, &my_device, &device_name).await;
    // The inviter closes the connection once our device is on its roster; only then
    // can our sync connection get through.
    let _ = tokio::time::timeout(Duration::from_secs(5), connection.closed()).await;
    transport::close(&connection, CloseReason::Done);
    let own = own?;
    let received: RosterExport = serde_json::from_slice(&inviter.roster).map_err(|_| {
        ApiError::internal("the inviting device sent a roster this Hearth cannot read")
    })?;
    pairing.save_household_epoch(Epoch::new(
        inviter.household_epoch,
        *inviter.household_secret,
    ))?;
    let inviter_device = DeviceId::from_public_key(&inviter.device_key);
    let role = inviter.role;
    if role == InviteRole::OwnDevice {
        let device_info = DeviceInfo {
            person: inviter.person_id,
            device_id: my_device.clone(),
        };
        pairing
            .ask_owner(|reply| ActorMsg::BecomePerson {
                person: inviter.person_id,
                roster: received,
                own: Box::new(own),
                device_info,
                reply,
            })
            .await??;
        // The owner wrote the commit point: from now on this device is that person's.
        pairing
            .requests
            .send(Request::BecamePerson {
                person: inviter.person_id,
            })
            .await
            .map_err(|_| ApiError::stopping())?;
    } else {
        // Our own entry as the inviter admitted it replaces the one `init` wrote.
        let mut received = received;
        received.devices.retain(|d| d.id != own.id);
        received.devices.push(own);
        pairing.add_to_roster(received).await?;
    }
    Ok(Joined {
        answer: hearth_api::encode_answer(&hearth_api::Joined {
            paired: true,
            role: role.as_str().into(),
            name: inviter.display_name,
            device_id: inviter_device.to_string(),
            this_device: ThisDevice {
                id: my_device,
                name: device_name,
            },
        })?,
        inviter: inviter_device,
        addr,
    })
}

/// How long the enrolment after the handshake may take.
const ENROL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest enrolment message: an entry is a few hundred bytes.
const ENROL_MAX: usize = 16 * 1024;

/// What a joining device sends after the handshake: its recipient and its signature
/// over its own entry.
#[derive(Serialize, Deserialize)]
struct Enrolment {
    age_recipient: String,
    self_sig: String,
}

async fn write_json<T: Serialize>(send: &mut quinn::SendStream, value: &T) -> Result<(), ()> {
    let bytes = serde_json::to_vec(value).map_err(|_| ())?;
    send.write_all(&bytes).await.map_err(|_| ())
}

async fn read_json<T: serde::de::DeserializeOwned>(recv: &mut quinn::RecvStream) -> Result<T, ()> {
    let bytes = recv.read_to_end(ENROL_MAX).await.map_err(|_| ())?;
    serde_json::from_slice(&bytes).map_err(|_| ())
}

/// The joining side of enrolment: signs this device's entry for the role the inviter
/// chose, and checks the entry the inviter sends back before it is written here.
async fn enrol(
    pairing: &Pairing,
    connection: &quinn::Connection,
    inviter: &hearth_core::pair::InviterInfo,
    my_device: &str,
    device_name: &str,
) -> Result<Device, ApiError> {
    let not_enrolled = |why: &str| {
        ApiError::new(
            ErrorCode::Invalid,
            format!("pairing did not finish: {why}"),
            "run `hearth pair invite` on the other device again, then join with the new code",
        )
    };
    let person = match inviter.role {
        InviteRole::OwnDevice => inviter.person_id,
        InviteRole::Partner => pairing.me().await?,
    };
    let recipient = pairing.ctx.identity.to_public().to_string();
    let template = Device {
        age_recipient: Some(recipient.clone()),
        ..Device::unsigned(
            my_device.to_string(),
            person,
            device_name.to_string(),
            data_encoding::HEXLOWER.encode(&pairing.ctx.local_key),
        )
    };
    let request = Enrolment {
        age_recipient: recipient,
        self_sig: roster::self_sign(&pairing.ctx.signer, &template),
    };
    let exchange = async {
        let (mut send, mut recv) = connection.open_bi().await.map_err(|_| ())?;
        write_json(&mut send, &request).await?;
        send.finish().map_err(|_| ())?;
        read_json::<Device>(&mut recv).await
    };
    let entry = tokio::time::timeout(ENROL_TIMEOUT, exchange)
        .await
        .map_err(|_| not_enrolled("the inviting device stopped answering"))?
        .map_err(|_| not_enrolled("the inviting device did not admit this one"))?;
    let expected_role = match inviter.role {
        InviteRole::Partner => roster::Admit::Partner,
        InviteRole::OwnDevice => roster::Admit::OwnDevice,
    };
    let sound = entry.id == my_device
        && entry.public_key == template.public_key
        && entry.person == person
        && entry.age_recipient == template.age_recipient
        && roster::self_signature_holds(&entry)
        && roster::admission_by(&entry, &inviter.device_key)
            .is_some_and(|a| a.role == expected_role);
    if !sound {
        return Err(not_enrolled(
            "the inviting device sent back an entry that is not this device's",
        ));
    }
    Ok(entry)
}

/// The joiner's own words for a code it cannot take, with what to do instead.
fn role_not_accepted(role: InviteRole) -> ApiError {
    match role {
        InviteRole::OwnDevice => ApiError::new(
            ErrorCode::Invalid,
            "this code adds another device of the person who invited, and this device already holds entries or has been paired, so it cannot become theirs; nothing about it was sent and the invite is used up",
            "to add one of your own devices, join from a fresh device (`hearth init` with a new --data-dir); if you are their partner, ask them for a partner invite (`hearth pair invite`, without --own-device)",
        ),
        InviteRole::Partner => ApiError::new(
            ErrorCode::Invalid,
            "this code invites a partner, and this device already holds entries of its own that joining would mix into the shared household; nothing about it was sent and the invite is used up",
            "ask for a new invite, then join from a fresh device (`hearth init` with a new --data-dir), or add --merge to bring these entries along",
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::storage::DataDir;

    fn keys(dir: &tempfile::TempDir, with_secret: bool) -> Arc<HouseholdKeys> {
        let random = ring::rand::SystemRandom::new();
        let secrets = if with_secret {
            hearth_core::secrets::DeviceSecrets::generate(&random)
        } else {
            hearth_core::secrets::DeviceSecrets::generate_unpaired(&random)
        }
        .unwrap();
        Arc::new(HouseholdKeys::load(DataDir::new(dir.path()), &secrets))
    }

    async fn open(
        requests: &mpsc::Sender<Request>,
        timeout: Duration,
    ) -> Result<PairingCode, ApiError> {
        ask(requests, |reply| Request::Open {
            role: InviteRole::Partner,
            timeout,
            reply,
        })
        .await
        .unwrap()
    }

    async fn last_result(
        requests: &mpsc::Sender<Request>,
    ) -> watch::Receiver<Option<InviteResult>> {
        ask(requests, |reply| Request::LastResult { reply })
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn one_invite_is_open_at_a_time_until_it_expires_or_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let trust = TrustSet::new();
        let (requests, number) =
            PairingTask::start(trust.clone(), keys(&dir, true), PersonId::nil());
        let minute = Duration::from_secs(60);

        // A newer invite replaces the open one, which ends as replaced.
        let first = open(&requests, minute).await.unwrap();
        assert_eq!(*number.borrow(), Some(first.number()));
        let mut replaced = last_result(&requests).await;
        let second = open(&requests, minute).await.unwrap();
        assert_eq!(*number.borrow(), Some(second.number()));
        replaced.changed().await.unwrap();
        assert_eq!(
            *replaced.borrow(),
            Some(InviteResult::Failed("a newer invite replaced it".into()))
        );

        // Nobody comes: it expires on time, and the pairing label goes.
        let mut expiring = last_result(&requests).await;
        tokio::time::sleep(minute - Duration::from_secs(1)).await;
        assert_eq!(*expiring.borrow(), None, "still open just before its time");
        expiring.changed().await.unwrap();
        assert_eq!(*expiring.borrow(), Some(InviteResult::Expired));
        assert_eq!(*number.borrow(), None);

        // The first connection takes it; a second finds none.
        open(&requests, minute).await.unwrap();
        let taken = ask(&requests, |reply| Request::Take { reply })
            .await
            .unwrap();
        assert!(taken.is_some());
        assert_eq!(*number.borrow(), None);
        let again = ask(&requests, |reply| Request::Take { reply })
            .await
            .unwrap();
        assert!(again.is_none(), "an invite is single-use");
        // A taken invite does not expire under whoever holds it.
        tokio::time::sleep(2 * minute).await;
        assert_eq!(*last_result(&requests).await.borrow(), None);
        drop(taken);
    }

    #[tokio::test]
    async fn a_device_without_a_household_secret_invites_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let (requests, number) =
            PairingTask::start(TrustSet::new(), keys(&dir, false), PersonId::nil());
        let refused = open(&requests, Duration::from_secs(60)).await.unwrap_err();
        assert!(refused.message.contains("no household secret"));
        assert_eq!(*number.borrow(), None);
    }

    #[tokio::test]
    async fn an_own_device_join_changes_whose_device_this_is() {
        let dir = tempfile::tempdir().unwrap();
        let (requests, _) = PairingTask::start(TrustSet::new(), keys(&dir, true), PersonId::nil());
        let person = PersonId::from_u128(7);
        requests
            .send(Request::BecamePerson { person })
            .await
            .unwrap();
        let me = ask(&requests, |reply| Request::Me { reply }).await.unwrap();
        assert_eq!(me, person);
    }
}
