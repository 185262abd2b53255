//! The daemon's life: lock the data directory, unlock the identity, open the documents,
//! serve the control socket, and stop cleanly on SIGTERM, SIGINT or `shutdown`.
//!
//! The daemon is in one of four states. `uninitialized` until `init` creates the
//! identity; `locked` while a passphrase-protected identity waits for `unlock`;
//! `loading` while the documents load at start, when the socket already answers
//! `status` from the sealed read cache (`read_cache`) and every other call waits for the
//! load; `ready` once the document owner runs. Only `status`, `shutdown` and the
//! state's own call (`init` or `unlock`) work before `ready`, each other call gets an
//! error that says which command to run.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use hearth_core::identity::DeviceId;
use hearth_core::model::{Person, PersonId};
use hearth_core::pair::InviteRole;

use hearth_core::secrets::{DeviceSecrets, SecretsError};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::actor::{
    now_millis, storage_error, Actor, ActorContext, ActorHandle, ActorMsg, OwnerCall, OwnerStatus,
};
use crate::discovery::{self, Discoverer};
use crate::epochs::HouseholdKeys;
use crate::handlers;
use crate::net::Net;
use crate::pairing::{Pairing, PairingSetup};
use crate::read_cache;
use crate::storage::{DataDir, DeviceInfo, StoreError};
use crate::transport::{DeviceKey, Transport, TrustSet};
use hearth_api::config::{Config, ConfigError};
use hearth_api::paths::{ensure_private_dir, Paths};
use hearth_api::{
    ApiError, Call, DaemonCall, ErrorCode, Event, EventLine, Initialized, Invite, NetCall,
    PeerAdded, Request, Response, Status, Stopping, Subscribed, Syncing, Unlocked,
    MAX_REQUEST_BYTES, PROTOCOL_VERSION,
};

/// How the daemon is started.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where its files live.
    pub paths: Paths,
    /// The passphrase for a protected identity, if known at start.
    pub passphrase: Option<String>,
}

enum State {
    Uninitialized,
    Locked,
    /// The documents are loading; `status` answers from the read cache when there is
    /// a valid one, and waits for the load otherwise.
    Loading {
        device_id: String,
        cached: Option<Box<OwnerStatus>>,
    },
    Ready(Ready),
}

#[derive(Clone)]
struct Ready {
    actor: ActorHandle,
    device_id: String,
    net: Arc<Net>,
    pairing: Pairing,
    discovery: Option<Arc<Discoverer>>,
}

struct Shared {
    paths: Paths,
    /// Every file under `paths.data_dir`.
    data_dir: DataDir,
    config: Config,
    state: Mutex<State>,
    events: broadcast::Sender<Event>,
    shutdown: watch::Sender<bool>,
    /// False while the documents load at start.
    loaded: watch::Sender<bool>,
    /// The local page, started by the first `web.open`.
    web: crate::web::Web,
}

impl Shared {
    fn ready(&self) -> Result<Ready, ApiError> {
        let state = self
            .state
            .lock()
            .map_err(|_| ApiError::internal("state lock poisoned"))?;
        match &*state {
            State::Ready(r) => Ok(r.clone()),
            State::Uninitialized => Err(ApiError::new(
                ErrorCode::NotInitialized,
                "this device has no Hearth identity yet",
                "run `hearth init --name YOUR_NAME` to start",
            )),
            State::Locked => Err(ApiError::new(
                ErrorCode::Locked,
                "Hearth is locked by a passphrase",
                "run any hearth command on a terminal to be asked for it, or set HEARTH_PASSPHRASE_FILE",
            )),
            // Calls wait for the load before they get here (`dispatch`).
            State::Loading { .. } => Err(ApiError::internal("the documents are still loading")),
        }
    }

    /// Waits until the documents have loaded, when they are loading.
    async fn wait_loaded(&self) {
        let mut loaded = self.loaded.subscribe();
        // The sender lives as long as `self`.
        let _ = loaded.wait_for(|done| *done).await;
    }

    fn set(&self, state: State) {
        if let Ok(mut guard) = self.state.lock() {
            *guard = state;
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state.lock().as_deref() {
            Ok(State::Ready(_)) => "ready",
            Ok(State::Locked) => "locked",
            Ok(State::Loading { .. }) => "loading",
            _ => "uninitialized",
        }
    }
}

/// Sets up logging from `HEARTH_LOG`, then `RUST_LOG`, then the config's `log`.
pub fn init_logging(config_filter: Option<&str>) {
    let filter = std::env::var("HEARTH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .or_else(|| config_filter.map(String::from))
        .unwrap_or_else(|| "info".into());
    // Automerge opens an info-level span per load that formats every change hash of the
    // document into its fields: at ten years, a quarter of the start-up time went there.
    // Its `load_with_options` also logs every error it returns at ERROR, and the store
    // parses each chunk alone with it, where missing dependencies are expected: one
    // false ERROR per chunk at every start. The store reports a chunk that does not
    // parse itself (and quarantines it), so that module stays quiet; Automerge's other
    // warnings still show. Ask for `automerge=…` explicitly to see everything.
    let filter = if filter.contains("automerge") {
        filter
    } else {
        format!("{filter},automerge=warn,automerge::automerge=off")
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Why the daemon could not start or stopped with an error: the library's public
/// boundary, so `hearthd` can choose an exit code without inspecting causes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The data directory could not be created or tightened to mode 0700.
    #[error(
        "could not create the data directory {path}: {source}; check that you may write there"
    )]
    DataDir {
        /// The data directory.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// `config.toml` or an environment override is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store refused: the directory is in use, or a file could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The identity could not be opened, for example with a wrong passphrase.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// Anything else while starting or serving; the message says what and where.
    #[error("{0:#}")]
    Start(#[from] anyhow::Error),
}

/// Runs the daemon in the foreground until it is told to stop.
pub fn run(opts: RunOptions) -> Result<(), RunError> {
    let paths = opts.paths.clone();
    let data_dir = DataDir::new(&paths.data_dir);
    data_dir.create().map_err(|source| RunError::DataDir {
        path: paths.data_dir.display().to_string(),
        source,
    })?;
    let config = Config::load(&paths.config())?;
    init_logging(config.log.as_deref());
    let lock = data_dir.lock()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("hearthd")
        .build()
        .context("could not start the async runtime")?;
    let result = runtime.block_on(serve(opts, config));
    drop(lock);
    result
}

async fn serve(opts: RunOptions, config: Config) -> Result<(), RunError> {
    let paths = opts.paths;
    let (events, _) = broadcast::channel(1024);
    let (shutdown, mut shutdown_rx) = watch::channel(false);
    let (loaded, _) = watch::channel(true);
    let data_dir = DataDir::new(&paths.data_dir);
    let shared = Arc::new(Shared {
        paths: paths.clone(),
        data_dir: data_dir.clone(),
        config,
        state: Mutex::new(State::Uninitialized),
        events,
        shutdown,
        loaded,
        web: crate::web::Web::new(),
    });

    let mut to_load = None;
    let initial = if !data_dir.has_identity() {
        State::Uninitialized
    } else {
        let bytes = data_dir.read_secrets()?;
        if DeviceSecrets::is_protected(&bytes) && opts.passphrase.is_none() {
            State::Locked
        } else {
            let secrets = DeviceSecrets::from_file_bytes(&bytes, opts.passphrase.as_deref())?;
            if let Some(passphrase) = opts.passphrase.as_deref() {
                strengthen(&data_dir, &bytes, &secrets, passphrase);
            }
            let cached = match read_cache::take(&data_dir, secrets.age_identity()) {
                Ok(cached) => cached,
                Err(e) => {
                    tracing::info!(reason = %e, "not using the read cache");
                    None
                }
            };
            let device_id = DeviceId::from_public_key(&secrets.device_public_key()).to_string();
            shared.loaded.send_replace(false);
            to_load = Some(secrets);
            State::Loading {
                device_id,
                cached: cached.map(Box::new),
            }
        }
    };
    shared.set(initial);
    // The socket answers while the documents load (`State::Loading`).
    let listener = bind_socket(&paths.socket)?;
    let mut loading = to_load.is_some();
    let load = async {
        match &to_load {
            Some(secrets) => open_ready(&shared, secrets).await.map(Some),
            None => Ok(None),
        }
    };
    tokio::pin!(load);
    if loading {
        tracing::debug!("the control socket answers status while the documents load");
    } else {
        tracing::info!(
            state = shared.state_name(),
            pid = std::process::id(),
            "hearthd is listening"
        );
    }
    {
        let watching = shared.clone();
        let data_dir = data_dir.clone();
        let day = shared.config.together_day;
        // After the load: its first look would otherwise find the daemon still loading
        // and wait a whole check interval.
        tokio::spawn(async move {
            watching.wait_loaded().await;
            let ready = watching.clone();
            crate::reminder::run(data_dir, day, move || ready.state_name() == "ready").await;
        });
    }

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("could not watch for SIGTERM")?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("could not watch for SIGINT")?;
    loop {
        tokio::select! {
            biased;
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = shutdown_rx.changed() => break,
            loaded = &mut load, if loading => {
                loading = false;
                match loaded {
                    Ok(Some(ready)) => {
                        shared.set(State::Ready(ready));
                        shared.loaded.send_replace(true);
                        tracing::info!(
                            state = shared.state_name(),
                            pid = std::process::id(),
                            "hearthd is listening"
                        );
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = std::fs::remove_file(&paths.socket);
                        return Err(e.into());
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    tokio::spawn(async move { connection(shared, stream).await });
                }
                Err(e) => tracing::warn!(error = %e, "could not accept a control connection"),
            },
        }
    }
    tracing::info!("hearthd is stopping");
    let ready = match shared.state.lock().as_deref() {
        Ok(State::Ready(r)) => Some(r.clone()),
        _ => None,
    };
    if let Some(ready) = ready {
        // Goodbyes first, while the sockets still work.
        if let Some(discovery) = &ready.discovery {
            discovery.shutdown().await;
        }
        ready.actor.shutdown().await;
        ready.net.shutdown().await;
    }
    let _ = std::fs::remove_file(&paths.socket);
    Ok(())
}

fn bind_socket(socket: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        ensure_private_dir(dir)
            .with_context(|| format!("could not create the socket directory {}", dir.display()))?;
    }
    // We hold the data-directory lock, so a socket file left here is from a daemon that
    // died; nobody is listening on it.
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("could not remove the stale socket {}", socket.display()))
        }
    }
    let listener = UnixListener::bind(socket)
        .with_context(|| format!("could not listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn open_ready(shared: &Arc<Shared>, secrets: &DeviceSecrets) -> anyhow::Result<Ready> {
    let info = shared.data_dir.read_device_info()?;
    let identity = secrets.age_identity().clone();
    let me = info.person;
    let (trust, ctx) = actor_context(shared, secrets)?;
    let actor = tokio::task::spawn_blocking(move || Actor::open(&identity, me, ctx)).await??;
    start_ready(shared, actor, secrets, trust, me)
}

fn actor_context(
    shared: &Arc<Shared>,
    secrets: &DeviceSecrets,
) -> anyhow::Result<(Arc<TrustSet>, ActorContext)> {
    let trust = TrustSet::new();
    let signer =
        ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(secrets.device_pkcs8())
            .map_err(|_| {
                anyhow::anyhow!("this device's key cannot sign; its identity file is damaged")
            })?;
    let ctx = ActorContext {
        events: shared.events.clone(),
        trust: trust.clone(),
        device: DeviceId::from_public_key(&secrets.device_public_key()),
        data_dir: shared.data_dir.clone(),
        signer: Arc::new(signer),
        keys: {
            let keys = Arc::new(HouseholdKeys::load(shared.data_dir.clone(), secrets));
            keys.feed_transport(trust.clone());
            keys
        },
    };
    Ok((trust, ctx))
}

fn start_ready(
    shared: &Arc<Shared>,
    actor: Actor,
    secrets: &DeviceSecrets,
    trust: Arc<TrustSet>,
    me: PersonId,
) -> anyhow::Result<Ready> {
    let mode = discovery::Mode::parse(&shared.config.discovery)?;
    let key = DeviceKey::from_pkcs8(secrets.device_pkcs8())?;
    let device = key.device_id();
    let transport = Transport::bind(shared.config.listen, &key, trust.clone())?;
    let keys = actor.household_keys();
    let handle = actor.spawn()?;
    let signer =
        ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(secrets.device_pkcs8())
            .map_err(|_| {
                anyhow::anyhow!("this device's key cannot sign; its identity file is damaged")
            })?;
    let pairing = Pairing::spawn(PairingSetup {
        trust,
        owner: handle.clone(),
        transport: transport.clone(),
        secrets,
        signer: Arc::new(signer),
        me,
        keys,
    });
    let listen = transport.local_addr()?;
    let net = Net::start(
        transport,
        handle.clone(),
        device,
        shared.data_dir.clone(),
        secrets.age_identity(),
        shared.config.peers.clone(),
        pairing.clone(),
    );
    let discovery = start_discovery(mode, &shared.config, listen, &net, &pairing);
    Ok(Ready {
        actor: handle,
        device_id: device.to_string(),
        net,
        pairing,
        discovery,
    })
}

/// The network driver as discovery's [`discovery::PeerSink`]: what discovery hears
/// becomes a dial.
struct NetSink(Arc<Net>);

impl discovery::PeerSink for NetSink {
    fn offer(&self, label: &str, addrs: Vec<std::net::SocketAddr>) {
        self.0.offer(label, addrs);
    }

    fn forget(&self, label: &str) {
        self.0.forget_offer(label);
    }
}

/// Starts discovery, or runs without it (known addresses only) when it cannot start:
/// a daemon that cannot multicast still syncs with the peers it knows.
fn start_discovery(
    mode: discovery::Mode,
    config: &Config,
    listen: std::net::SocketAddr,
    net: &Arc<Net>,
    pairing: &Pairing,
) -> Option<Arc<Discoverer>> {
    let started = discovery::backend(mode, &config.mdns_interfaces, listen).and_then(|backend| {
        backend
            .map(|backend| {
                Discoverer::start(
                    mode,
                    backend,
                    listen.port(),
                    Arc::new(pairing.clone()),
                    Arc::new(NetSink(net.clone())),
                    discovery::system_clock,
                )
            })
            .transpose()
    });
    match started {
        Ok(discoverer) => discoverer,
        Err(e) => {
            tracing::warn!(error = %e, "discovery is off; peers are found only at known addresses");
            None
        }
    }
}

async fn connection(shared: Arc<Shared>, stream: UnixStream) {
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == rustix::process::getuid().as_raw() => {}
        Ok(cred) => {
            tracing::warn!(
                uid = cred.uid(),
                "refused a control connection from another user"
            );
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "refused a control connection whose user could not be checked");
            return;
        }
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line_bounded(&mut reader, &mut line).await {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => {
                let response = Response::err(
                    0,
                    ApiError::new(
                        ErrorCode::Invalid,
                        format!("the request could not be read: {e}"),
                        "send one JSON request per line",
                    ),
                );
                let _ = write_json(&mut write, &response).await;
                return;
            }
        }
        let Request {
            id,
            call,
            with_people,
            ..
        } = match parse_request(&line) {
            Ok(parsed) => parsed,
            Err((id, error)) => {
                if write_json(&mut write, &Response::err(id, error))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        let response = match call {
            Call::Subscribe => {
                let mut events = shared.events.subscribe();
                if write_json(
                    &mut write,
                    &Response::ok(id, serde_json::json!(Subscribed { subscribed: true })),
                )
                .await
                .is_err()
                {
                    return;
                }
                stream_events(id, &mut events, &mut write, &mut reader).await;
                return;
            }
            call => answer_call(&shared, id, call, with_people).await,
        };
        if write_json(&mut write, &response).await.is_err() {
            return;
        }
    }
}

/// Answers one call: the routing that the control socket and the page (`web`) share.
/// `subscribe` streams on a connection of its own, so it is refused here.
async fn answer_call(shared: &Arc<Shared>, id: u64, call: Call, with_people: bool) -> Response {
    let result = match call {
        Call::Subscribe => Err(ApiError::new(
            ErrorCode::Invalid,
            "subscribe turns a connection into an event stream and is answered there",
            "send subscribe as a request of its own on the control socket",
        )),
        Call::Daemon(call) => daemon_call(shared, call).await,
        Call::Net(call) => net_call(shared, call).await,
        Call::Doc(call) => owner_call(shared, OwnerCall::Doc(call)).await,
        Call::Roster(call) => owner_call(shared, OwnerCall::Roster(call)).await,
        Call::Bundle(call) => owner_call(shared, OwnerCall::Bundle(call)).await,
    };
    match result {
        Ok(value) => {
            let mut response = Response::ok(id, value);
            if with_people {
                // After the answer, so a write that renamed someone shows the new name.
                if let Ok(ready) = shared.ready() {
                    response.people = ready.actor.people().await;
                }
            }
            response
        }
        Err(error) => Response::err(id, error),
    }
}

/// The page's way into the daemon: the same routing, events and owner as the socket.
#[derive(Clone)]
struct PageBackend(Arc<Shared>);

impl crate::web::Backend for PageBackend {
    fn call(&self, call: Call) -> futures_util::future::BoxFuture<'static, Response> {
        let shared = self.0.clone();
        Box::pin(async move { answer_call(&shared, 0, call, true).await })
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.0.events.subscribe()
    }

    fn me(&self) -> futures_util::future::BoxFuture<'static, Option<String>> {
        let shared = self.0.clone();
        Box::pin(async move {
            let ready = shared.ready().ok()?;
            ready.actor.people().await.map(|people| people.me)
        })
    }
}

/// `web.open`: once the documents are open, starts the page if needed and mints a link.
async fn web_open(shared: &Arc<Shared>) -> Result<serde_json::Value, ApiError> {
    shared.ready()?;
    let opened = shared
        .web
        .open(&shared.config, PageBackend(shared.clone()))
        .await
        .map_err(|e| e.api_error())?;
    answer(opened)
}

async fn stream_events(
    id: u64,
    events: &mut broadcast::Receiver<Event>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
) {
    let mut scratch = Vec::new();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    if write_json(write, &EventLine { id, event }).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "a subscriber fell behind; some events were dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // The client closing its side ends the subscription.
            read = reader.read_until(b'\n', &mut scratch) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
                scratch.clear();
            }
        }
    }
}

/// Reads one line of at most [`MAX_REQUEST_BYTES`]. `Ok(false)` at end of stream.
async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(!line.is_empty());
        }
        let (used, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..used]);
        reader.consume(used);
        if line.len() > MAX_REQUEST_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a request is longer than {MAX_REQUEST_BYTES} bytes"),
            ));
        }
        if done {
            return Ok(true);
        }
    }
}

/// Parses a request line, or says why not with the id when it could be found.
pub fn parse_request(line: &[u8]) -> Result<Request, (u64, ApiError)> {
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        (
            0,
            ApiError::new(
                ErrorCode::Invalid,
                format!("the request is not valid JSON: {e}"),
                "send one JSON request per line",
            ),
        )
    })?;
    let id = value
        .get("id")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let version = value
        .get("v")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(u64::from(PROTOCOL_VERSION));
    if version != u64::from(PROTOCOL_VERSION) {
        return Err((
            id,
            ApiError::new(
                ErrorCode::Version,
                format!(
                    "this hearthd speaks protocol {PROTOCOL_VERSION}, the request used {version}"
                ),
                "use the hearth and hearthd from the same release",
            ),
        ));
    }
    let request: Request = serde_json::from_value(value).map_err(|e| {
        (
            id,
            ApiError::new(
                ErrorCode::Invalid,
                format!("the request could not be understood: {e}"),
                "check the method name and its parameters",
            ),
        )
    })?;
    Ok(request)
}

async fn write_json<T: Serialize>(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    value: &T,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

/// A typed answer as the JSON the connection writes.
fn answer<T: Serialize>(value: T) -> Result<serde_json::Value, ApiError> {
    hearth_api::encode_answer(&value)
}

/// Everything but `status` and `shutdown` waits until the documents have loaded: the
/// read cache answers `status` alone (see `read_cache`).
async fn owner_call(shared: &Arc<Shared>, call: OwnerCall) -> Result<serde_json::Value, ApiError> {
    shared.wait_loaded().await;
    shared.ready()?.actor.call(call).await
}

async fn daemon_call(
    shared: &Arc<Shared>,
    call: DaemonCall,
) -> Result<serde_json::Value, ApiError> {
    if !matches!(call, DaemonCall::Status | DaemonCall::Shutdown) {
        shared.wait_loaded().await;
    }
    match call {
        DaemonCall::Status => status(shared).await,
        DaemonCall::Shutdown => {
            let _ = shared.shutdown.send(true);
            answer(Stopping { stopping: true })
        }
        DaemonCall::Init {
            name,
            device_name,
            passphrase,
        } => init(shared, name, device_name, passphrase).await,
        DaemonCall::Unlock { passphrase } => unlock(shared, passphrase).await,
        DaemonCall::WebOpen => web_open(shared).await,
    }
}

async fn net_call(shared: &Arc<Shared>, call: NetCall) -> Result<serde_json::Value, ApiError> {
    shared.wait_loaded().await;
    match call {
        NetCall::SyncNow => {
            let ready = shared.ready()?;
            ready.net.dial_now();
            ready.actor.send(ActorMsg::SyncNow).await?;
            answer(Syncing { syncing: true })
        }
        NetCall::PairInvite {
            timeout_secs,
            own_device,
        } => {
            let ready = shared.ready()?;
            let role = if own_device {
                InviteRole::OwnDevice
            } else {
                InviteRole::Partner
            };
            ready.pairing.check_can_invite(role).await?;
            let timeout = std::time::Duration::from_secs(
                timeout_secs.unwrap_or(shared.config.pair_timeout_secs),
            );
            let code = ready.pairing.invite(timeout, role).await?;
            answer(Invite {
                addresses: ready
                    .net
                    .listen_addrs()
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
                code: code.to_string(),
                expires_in_secs: timeout.as_secs(),
                role: role.as_str().into(),
            })
        }
        NetCall::PairWait => shared.ready()?.pairing.wait().await,
        NetCall::PairJoin { code, addr, merge } => pair_join(shared, code, addr, merge).await,
        NetCall::PeersAdd { addr } => {
            let ready = shared.ready()?;
            let parsed: std::net::SocketAddr = addr.parse().map_err(|_| {
                ApiError::new(
                    ErrorCode::Invalid,
                    format!("`{addr}` is not an address"),
                    "use HOST:PORT with an IP address, such as 192.0.2.10:7447",
                )
            })?;
            ready.net.add_static(parsed);
            answer(PeerAdded {
                added: parsed.to_string(),
            })
        }
    }
}

/// `pair.join`.
async fn pair_join(
    shared: &Arc<Shared>,
    code: String,
    addr: Option<String>,
    merge: bool,
) -> Result<serde_json::Value, ApiError> {
    let ready = shared.ready()?;
    let target = match (addr, &ready.discovery) {
            (Some(addr), _) => {
                let addr: std::net::SocketAddr = addr.parse().map_err(|_| {
                    ApiError::new(
                        ErrorCode::Invalid,
                        format!("`{addr}` is not an address"),
                        "use the HOST:PORT that `hearth pair invite` printed",
                    )
                })?;
                crate::pairing::JoinTarget::Addr(addr)
            }
            (None, Some(discovery)) => crate::pairing::JoinTarget::Discover(discovery.clone()),
            (None, None) => {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    "discovery is off on this device, so it cannot find the inviting device by itself",
                    "add --addr HOST:PORT with the address `hearth pair invite` printed, or set discovery = \"mdns\" in config.toml",
                ))
            }
        };
    let join = crate::pairing::JoinOptions { merge };
    let joined = crate::pairing::join(&ready.pairing, &code, target, join).await?;
    ready.net.remember(&joined.inviter, joined.addr);
    ready.net.dial_now();
    Ok(joined.answer)
}

async fn status(shared: &Arc<Shared>) -> Result<serde_json::Value, ApiError> {
    let mut status = Status {
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
        data_dir: shared.paths.data_dir.display().to_string(),
        socket: shared.paths.socket.display().to_string(),
        state: shared.state_name().into(),
        ..Status::default()
    };
    let cached = match shared.state.lock().as_deref() {
        Ok(State::Loading { device_id, cached }) => Some((device_id.clone(), cached.clone())),
        _ => None,
    };
    match cached {
        Some((device_id, Some(owner))) => {
            // As the store was at the last clean stop, which it still is on disk.
            let mut owner = *owner;
            owner.settle(now_millis());
            status.device_id = Some(device_id);
            status.person = owner
                .people
                .iter()
                .find(|p| p.id == owner.me.to_string())
                .cloned();
            status.documents = owner.documents;
            status.people = owner.people;
            status.peers = owner.peers;
            status.refused = owner.refused;
            status.household_epoch = owner.household_epoch;
            return answer(status);
        }
        Some((_, None)) => {
            shared.wait_loaded().await;
            status.state = shared.state_name().into();
        }
        None => {}
    }
    if let Ok(ready) = shared.ready() {
        status.device_id = Some(ready.device_id.clone());
        let owner = ready.actor.status().await;
        // The owner's person, not the one at start: an own-device join changes it.
        let owner_me = owner.me;
        status.documents = owner.documents;
        status.people = owner.people;
        status.refused = owner.refused;
        status.household_epoch = owner.household_epoch;
        let crate::net::NetSnapshot {
            book,
            traffic,
            refused_by,
        } = ready.net.snapshot().await;
        status.peers = owner
            .peers
            .into_iter()
            .map(|mut p| {
                p.last_addr = book.last_addr.get(&p.device_id).cloned();
                p.refuses_this_device = refused_by.contains(&p.device_id);
                if let Some(t) = traffic.get(&p.device_id) {
                    p.bytes_sent = t.bytes_sent;
                    p.bytes_received = t.bytes_received;
                    p.frames_sent = t.frames_sent;
                    p.frames_received = t.frames_received;
                }
                p
            })
            .collect();
        status.listen = ready
            .net
            .listen_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect();
        status.person = status
            .people
            .iter()
            .find(|p| p.id == owner_me.to_string())
            .cloned();
    }
    serde_json::to_value(status).map_err(|e| ApiError::internal(e.to_string()))
}

fn secrets_error(e: SecretsError) -> ApiError {
    let code = match e {
        SecretsError::WrongPassphrase => ErrorCode::WrongPassphrase,
        SecretsError::PassphraseRequired => ErrorCode::Locked,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, e.to_string(), "check the passphrase and try again")
}

async fn init(
    shared: &Arc<Shared>,
    name: String,
    device_name: Option<String>,
    passphrase: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    if !matches!(shared.state.lock().as_deref(), Ok(State::Uninitialized))
        || shared.data_dir.has_identity()
    {
        return Err(ApiError::new(
            ErrorCode::AlreadyInitialized,
            format!(
                "{} already holds a Hearth identity",
                shared.paths.data_dir.display()
            ),
            "nothing was changed; use another --data-dir to start afresh",
        ));
    }
    hearth_core::model::check_title("name", &name).map_err(|e| {
        ApiError::new(
            ErrorCode::Invalid,
            e.to_string(),
            "choose the name your partner knows you by",
        )
    })?;
    // A default that still reads right on the partner's screen, where "this device"
    // would name the wrong one.
    let device_name = device_name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| {
            let named = format!("{}'s device", name.trim());
            if named.chars().count() > hearth_core::model::MAX_TITLE_CHARS {
                "first device".to_string()
            } else {
                named
            }
        });
    hearth_core::model::check_title("device name", &device_name).map_err(|e| {
        ApiError::new(
            ErrorCode::Invalid,
            e.to_string(),
            "choose a short device name",
        )
    })?;

    let secrets =
        DeviceSecrets::generate(&ring::rand::SystemRandom::new()).map_err(secrets_error)?;
    let device_id = DeviceId::from_public_key(&secrets.device_public_key()).to_string();
    let me = Uuid::new_v4();
    let data_dir = shared.data_dir.clone();
    let (trust, ctx) =
        actor_context(shared, &secrets).map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let file_bytes = secrets
        .to_file_bytes(passphrase.as_deref())
        .map_err(secrets_error)?;
    let identity = secrets.age_identity().clone();
    let recipient = secrets.age_recipient().to_string();
    let device_id_for_roster = device_id.clone();
    let signer = ctx.signer.clone();
    let actor = tokio::task::spawn_blocking(move || -> Result<Actor, ApiError> {
        let now = now_millis();
        let mut actor = Actor::open(&identity, me, ctx).map_err(|e| storage_error(&e))?;
        let docs = actor.docs_mut();
        docs.add_person(
            &Person {
                id: me,
                name,
                joined_at: now,
            },
            now,
        )
        .map_err(handlers::api_error)?;
        // The founding device signs its own admission and entry: the root every later
        // signature chains back to.
        let device =
            hearth_core::roster::founder_entry(&signer, me, &device_name, Some(recipient), now);
        docs.put_device(&device, now).map_err(handlers::api_error)?;
        docs.refresh_roster();
        actor.flush().map_err(|e| storage_error(&e))?;
        data_dir
            .write_device_info(&DeviceInfo {
                person: me,
                device_id: device_id_for_roster,
            })
            .map_err(|e| storage_error(&e))?;
        // The identity goes last: its presence is what marks the directory initialised.
        data_dir
            .write_secrets(&file_bytes)
            .map_err(|e| storage_error(&e))?;
        Ok(actor)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let ready = start_ready(shared, actor, &secrets, trust, me).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("the identity was created, but the daemon could not start: {e:#}"),
            "run `hearth daemon stop`, then try any command again",
        )
    })?;
    shared.set(State::Ready(ready));
    tracing::info!("initialised a new household");
    answer(Initialized {
        device_id,
        person_id: me.to_string(),
        protected: passphrase.is_some(),
    })
}

/// Seals an identity file that an older version wrote with less scrypt work again at
/// today's work factor, once the passphrase has opened it. A failure leaves the old
/// file, which still opens, in place.
fn strengthen(data_dir: &DataDir, bytes: &[u8], secrets: &DeviceSecrets, passphrase: &str) {
    if !DeviceSecrets::needs_stronger_protection(bytes) {
        return;
    }
    let written = secrets
        .to_file_bytes(Some(passphrase))
        .map_err(|e| e.to_string())
        .and_then(|b| data_dir.replace_secrets(&b).map_err(|e| e.for_log()));
    match written {
        Ok(()) => {
            tracing::info!("sealed the identity file again at today's passphrase work factor")
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not seal the identity file at today's work factor; the old file stays")
        }
    }
}

async fn unlock(shared: &Arc<Shared>, passphrase: String) -> Result<serde_json::Value, ApiError> {
    if !matches!(shared.state.lock().as_deref(), Ok(State::Locked)) {
        return answer(Unlocked {
            already: true,
            unlocked: true,
        });
    }
    let data_dir = shared.data_dir.clone();
    let secrets = tokio::task::spawn_blocking(move || -> Result<DeviceSecrets, ApiError> {
        let bytes = data_dir.read_secrets().map_err(|e| storage_error(&e))?;
        let secrets =
            DeviceSecrets::from_file_bytes(&bytes, Some(&passphrase)).map_err(secrets_error)?;
        strengthen(&data_dir, &bytes, &secrets, &passphrase);
        Ok(secrets)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let ready = open_ready(shared, &secrets)
        .await
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    shared.set(State::Ready(ready));
    answer(Unlocked {
        already: false,
        unlocked: true,
    })
}
