//! The local page (`hearth open`): a small HTTP/1.1 server on 127.0.0.1 that serves the
//! embedded page (`daemon/web/`) and lets it make the everyday calls.
//!
//! Nothing listens until the first `web.open`; that call binds `web_listen` (127.0.0.1
//! only, [`Config::web_addr`]) and starts two tasks on the daemon's runtime: the server,
//! and [`AuthTask`], which owns the one-time tokens and the sessions, in memory only.
//! Later calls reuse both and only mint a new token.
//!
//! What every request meets, in this order ([`guard`]):
//! - the `Host` header (and an absolute request target) must be `127.0.0.1:PORT` or
//!   `localhost:PORT`, or nothing is read: a DNS-rebinding page cannot talk to it;
//! - every answer carries a strict `Content-Security-Policy` and friends, and never an
//!   `Access-Control-*` header.
//!
//! Then, per route: `GET /?token=` swaps a one-time token (2 minutes) for a session
//! cookie (`HttpOnly; SameSite=Strict`) and hands the session's CSRF token to the page
//! in the redirect's fragment (`/#csrf=`), which never reaches a server; `/api/*` needs
//! the cookie, a same-origin request and the CSRF token (`X-Hearth-CSRF`, or `?csrf=`
//! for the event stream), so a cookie alone opens nothing; `POST /api/call` also needs
//! JSON of at most 1 MiB, and a method on the page's list ([`page_may`]). The call then
//! goes through the control socket's own routing ([`Backend`]), so the page can do
//! nothing the socket would not check the same way.
//!
//! Logs hold the method and the status, never a path's query, a body, a token, a cookie
//! or a name.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::future::BoxFuture;
use hearth_api::config::{Config, ConfigError};
use hearth_api::{
    ApiError, BundleCall, Call, DaemonCall, DocCall, ErrorCode, Event, NetCall, RosterCall,
    WebOpened,
};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

/// How long a link from `hearth open` works.
pub const TOKEN_TTL: Duration = Duration::from_secs(120);
/// The largest `/api/call` body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "hearth_session";
/// The header that carries the session's CSRF token on writes.
pub const CSRF_HEADER: &str = "x-hearth-csrf";
/// The page's policy: its own scripts, styles and images, nothing else, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// How often `/api/events` sends a comment so idle connections stay open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Open links and sessions are few: a person opens the page now and then. The oldest
/// goes when a new one would pass the bound, so memory stays bounded whoever asks.
const MAX_TOKENS: usize = 16;
const MAX_SESSIONS: usize = 32;

/// What can go wrong starting the page or minting its link.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// `web_listen` is not on 127.0.0.1.
    #[error(transparent)]
    NotLoopback(#[from] ConfigError),
    /// The port could not be bound.
    #[error("could not serve the page on {addr}: {source}; another program may hold that port: set web_listen = \"127.0.0.1:PORT\" with a free port in config.toml")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
    /// The system's random source failed.
    #[error("could not draw random bytes for the page's link; try `hearth open` again")]
    Random,
    /// The page's tasks have stopped, which happens only while the daemon stops.
    #[error("the page's server has stopped; start the daemon again with `hearth daemon start`")]
    Stopped,
}

impl WebError {
    /// The error as the control API reports it.
    pub fn api_error(&self) -> ApiError {
        let (code, hint) = match self {
            WebError::NotLoopback(_) => (ErrorCode::Invalid, "edit config.toml in the data directory, then run `hearth daemon stop` and `hearth open`"),
            WebError::Bind { .. } => (ErrorCode::Invalid, "choose a free port for web_listen in config.toml, then run `hearth daemon stop` and `hearth open`"),
            WebError::Random | WebError::Stopped => (ErrorCode::Internal, "run `hearth daemon stop`, then `hearth open` again"),
        };
        ApiError::new(code, self.to_string(), hint)
    }
}

/// What the page needs of the daemon: its call routing (the control socket's own), its
/// events, and who this device's person is. `daemon.rs` implements it.
pub trait Backend: Clone + Send + Sync + 'static {
    /// Answers a call as the control socket does, with `people` beside a success.
    fn call(&self, call: Call) -> BoxFuture<'static, hearth_api::Response>;
    /// A new receiver of the daemon's events.
    fn events(&self) -> broadcast::Receiver<Event>;
    /// This device's person's id, once the documents are open.
    fn me(&self) -> BoxFuture<'static, Option<String>>;
}

/// The page, started on the first [`Web::open`].
#[derive(Default)]
pub struct Web {
    started: tokio::sync::Mutex<Option<Started>>,
}

struct Started {
    port: u16,
    auth: Auth,
}

impl Web {
    /// Not started.
    pub fn new() -> Web {
        Web::default()
    }

    /// Starts the page if it is not running, and mints a one-time link to it.
    pub async fn open<B: Backend>(
        &self,
        config: &Config,
        backend: B,
    ) -> Result<WebOpened, WebError> {
        let mut started = self.started.lock().await;
        let page = match &mut *started {
            Some(page) => page,
            empty => empty.insert(start(config.web_addr()?, backend).await?),
        };
        let token = page.auth.new_token().await?;
        Ok(WebOpened {
            port: page.port,
            url: format!("http://127.0.0.1:{}/?token={token}", page.port),
        })
    }
}

async fn start<B: Backend>(addr: SocketAddr, backend: B) -> Result<Started, WebError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| WebError::Bind { addr, source })?;
    let auth = AuthTask::start();
    let state = Page {
        backend,
        auth: auth.clone(),
        port: bound.port(),
    };
    let app = router(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the page's server stopped");
        }
    });
    tracing::info!(addr = %bound, "the page is listening");
    Ok(Started {
        port: bound.port(),
        auth,
    })
}

// ----- tokens and sessions -----------------------------------------------------------

/// A handle on [`AuthTask`].
#[derive(Clone)]
struct Auth(mpsc::Sender<AuthMsg>);

enum AuthMsg {
    NewToken(oneshot::Sender<Result<String, WebError>>),
    /// Consumes a token; answers a new session's cookie value and CSRF token.
    Redeem {
        token: String,
        reply: oneshot::Sender<Option<(String, String)>>,
    },
    /// Answers the session's CSRF token.
    Session {
        session: String,
        reply: oneshot::Sender<Option<String>>,
    },
}

impl Auth {
    async fn ask<T>(&self, msg: impl FnOnce(oneshot::Sender<T>) -> AuthMsg) -> Result<T, WebError> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(msg(reply))
            .await
            .map_err(|_| WebError::Stopped)?;
        answer.await.map_err(|_| WebError::Stopped)
    }

    async fn new_token(&self) -> Result<String, WebError> {
        self.ask(AuthMsg::NewToken).await?
    }

    async fn redeem(&self, token: String) -> Option<(String, String)> {
        self.ask(|reply| AuthMsg::Redeem { token, reply })
            .await
            .ok()
            .flatten()
    }

    async fn csrf(&self, session: String) -> Option<String> {
        self.ask(|reply| AuthMsg::Session { session, reply })
            .await
            .ok()
            .flatten()
    }
}

/// Owns the open links and the sessions; they live in memory only and die with the
/// daemon.
struct AuthTask {
    inbox: mpsc::Receiver<AuthMsg>,
    random: SystemRandom,
    /// Token → when it stops working.
    tokens: HashMap<String, Instant>,
    /// Session → (its CSRF token, when it began).
    sessions: HashMap<String, (String, Instant)>,
}

impl AuthTask {
    fn start() -> Auth {
        let (tx, inbox) = mpsc::channel(64);
        let task = AuthTask {
            inbox,
            random: SystemRandom::new(),
            tokens: HashMap::new(),
            sessions: HashMap::new(),
        };
        tokio::spawn(task.run());
        Auth(tx)
    }

    async fn run(mut self) {
        while let Some(msg) = self.inbox.recv().await {
            let now = Instant::now();
            self.tokens.retain(|_, expires| *expires > now);
            match msg {
                AuthMsg::NewToken(reply) => {
                    let token = self.secret();
                    if let Ok(token) = &token {
                        bound(&mut self.tokens, MAX_TOKENS, |expires| *expires);
                        self.tokens.insert(token.clone(), now + TOKEN_TTL);
                    }
                    let _ = reply.send(token);
                }
                AuthMsg::Redeem { token, reply } => {
                    let session = match self.tokens.remove(&token) {
                        Some(_) => self.new_session(now),
                        None => None,
                    };
                    let _ = reply.send(session);
                }
                AuthMsg::Session { session, reply } => {
                    let csrf = self.sessions.get(&session).map(|(csrf, _)| csrf.clone());
                    let _ = reply.send(csrf);
                }
            }
        }
    }

    fn new_session(&mut self, now: Instant) -> Option<(String, String)> {
        let session = self.secret().ok()?;
        let csrf = self.secret().ok()?;
        bound(&mut self.sessions, MAX_SESSIONS, |(_, began)| *began);
        self.sessions.insert(session.clone(), (csrf.clone(), now));
        Some((session, csrf))
    }

    /// 32 random bytes, base64url without padding.
    fn secret(&self) -> Result<String, WebError> {
        let mut bytes = [0u8; 32];
        self.random.fill(&mut bytes).map_err(|_| WebError::Random)?;
        Ok(data_encoding::BASE64URL_NOPAD.encode(&bytes))
    }
}

/// Drops the oldest entries until one more fits under `max`.
fn bound<V>(map: &mut HashMap<String, V>, max: usize, age: impl Fn(&V) -> Instant) {
    while map.len() >= max {
        let oldest = map
            .iter()
            .min_by_key(|(_, v)| age(v))
            .map(|(k, _)| k.clone());
        match oldest {
            Some(key) => map.remove(&key),
            None => return,
        };
    }
}

// ----- HTTP --------------------------------------------------------------------------

#[derive(Clone)]
struct Page<B> {
    backend: B,
    auth: Auth,
    port: u16,
}

fn router<B: Backend>(state: Page<B>) -> Router {
    Router::new()
        .route("/", get(index::<B>))
        .route(
            "/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .route("/favicon.svg", get(|| asset(FAVICON, "image/svg+xml")))
        .route("/api/session", get(api_session::<B>))
        .route("/api/call", post(api_call::<B>))
        .route("/api/events", get(api_events::<B>))
        .fallback(|| async { plain(StatusCode::NOT_FOUND, "Not found.") })
        .layer(middleware::from_fn_with_state(state.clone(), guard::<B>))
        .with_state(state)
}

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");
const FAVICON: &str = include_str!("../web/favicon.svg");

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Every request passes here first: the `Host` check, then the headers every answer
/// carries. The log line holds the method and the status only.
async fn guard<B: Backend>(State(page): State<Page<B>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let mut response = if host_allowed(request.headers(), request.uri(), page.port) {
        next.run(request).await
    } else {
        plain(
            StatusCode::MISDIRECTED_REQUEST,
            "This page answers only at http://127.0.0.1 on its own port.",
        )
    };
    secure_headers(response.headers_mut());
    tracing::debug!(%method, status = response.status().as_u16(), "page request");
    response
}

/// The host the request names must be this server's, by address or as `localhost`: a
/// page from elsewhere whose name was made to point at 127.0.0.1 (DNS rebinding) names
/// its own host, and is refused before anything is read.
fn host_allowed(headers: &HeaderMap, uri: &Uri, port: u16) -> bool {
    let ours = |host: &str| {
        host.strip_suffix(&format!(":{port}"))
            .is_some_and(|name| name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost"))
    };
    let mut hosts = headers.get_all(header::HOST).iter();
    let host_ok = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().is_ok_and(ours),
        _ => false,
    };
    let target_ok = uri.authority().is_none_or(|a| ours(a.as_str()));
    host_ok && target_ok
}

fn secure_headers(headers: &mut HeaderMap) {
    let set: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // No CORS, ever: nothing here sets one, and nothing may slip through.
    let cors: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors {
        headers.remove(name);
    }
}

/// The session cookie's value, if the request carries one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then(|| value.to_string())
        })
}

/// The session's CSRF token, when the request carries a live session cookie.
async fn session_of<B>(page: &Page<B>, headers: &HeaderMap) -> Option<String> {
    page.auth.csrf(session_cookie(headers)?).await
}

/// An `Origin` or `Sec-Fetch-Site` that is present must say the request comes from
/// this page itself.
fn same_origin(headers: &HeaderMap, port: u16) -> bool {
    let origin_ok = headers.get_all(header::ORIGIN).iter().all(|o| {
        o.to_str().is_ok_and(|o| {
            o == format!("http://127.0.0.1:{port}") || o == format!("http://localhost:{port}")
        })
    });
    let site_ok = headers
        .get_all("sec-fetch-site")
        .iter()
        .all(|s| s.as_bytes() == b"same-origin");
    origin_ok && site_ok
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A JSON answer (axum's `json` feature is not needed for this one use).
fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Could not encode the answer.",
        ),
    }
}

fn api_refusal(status: StatusCode, message: &str, hint: &str) -> Response {
    let error = ApiError::new(ErrorCode::Invalid, message, hint);
    json(status, &serde_json::json!({ "error": error }))
}

fn no_session() -> Response {
    api_refusal(
        StatusCode::FORBIDDEN,
        "this page has no session",
        "run `hearth open` again",
    )
}

const LINK_USED: &str = "This link was already used or has expired. Run `hearth open` again.";
const NO_SESSION_PAGE: &str = "To see Hearth here, run `hearth open` on this computer.";

/// `GET /`: swaps `?token=` for a session, or serves the page to a session.
async fn index<B: Backend>(State(page): State<Page<B>>, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(token) = query_param(&uri, "token").map(String::from) {
        return match page.auth.redeem(token).await {
            Some((session, csrf)) => {
                let cookie =
                    format!("{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/");
                // The CSRF token rides in the fragment, which the browser keeps to the
                // page and never sends: the cookie alone (which any server on
                // 127.0.0.1 this browser visits receives) opens nothing.
                (
                    StatusCode::SEE_OTHER,
                    [
                        (header::LOCATION, format!("/#csrf={csrf}")),
                        (header::SET_COOKIE, cookie),
                    ],
                )
                    .into_response()
            }
            None => plain(StatusCode::FORBIDDEN, LINK_USED),
        };
    }
    match session_of(&page, &headers).await {
        Some(_) => asset(INDEX_HTML, "text/html; charset=utf-8").await,
        None => plain(StatusCode::FORBIDDEN, NO_SESSION_PAGE),
    }
}

/// What every `/api/*` route checks first: the request comes from the page itself, with
/// a live session's cookie and that session's CSRF token (`sent`).
async fn authorize<B>(
    page: &Page<B>,
    headers: &HeaderMap,
    sent: Option<&[u8]>,
) -> Result<(), Response> {
    if !same_origin(headers, page.port) {
        return Err(cross_origin());
    }
    let Some(csrf) = session_of(page, headers).await else {
        return Err(no_session());
    };
    if !sent.is_some_and(|sent| constant_time_eq(sent, csrf.as_bytes())) {
        return Err(no_csrf());
    }
    Ok(())
}

/// The value of `name` in the request's query (`token`, `csrf`: base64url, never escaped).
fn query_param<'u>(uri: &'u Uri, name: &str) -> Option<&'u str> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

/// The CSRF token in its header.
fn csrf_header(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(CSRF_HEADER).map(HeaderValue::as_bytes)
}

fn no_csrf() -> Response {
    api_refusal(
        StatusCode::FORBIDDEN,
        "this request lacks the page's CSRF token",
        "reload the page; if it persists run `hearth open` again",
    )
}

/// `GET /api/session`: who "me" is. It needs the CSRF token as every API call does, so
/// the cookie alone tells nothing.
async fn api_session<B: Backend>(State(page): State<Page<B>>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorize(&page, &headers, csrf_header(&headers)).await {
        return refusal;
    }
    match page.backend.me().await {
        Some(me) => json(StatusCode::OK, &serde_json::json!({ "me": me })),
        None => api_refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "Hearth is not ready on this device",
            "run `hearth status` on a terminal to see why",
        ),
    }
}

fn cross_origin() -> Response {
    api_refusal(
        StatusCode::FORBIDDEN,
        "this request does not come from the page itself",
        "open the page with `hearth open`",
    )
}

/// `POST /api/call`: one control call from the page's list.
async fn api_call<B: Backend>(
    State(page): State<Page<B>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refusal) = authorize(&page, &headers, csrf_header(&headers)).await {
        return refusal;
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return api_refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a call must be sent as application/json",
            "send {\"method\": ..., \"params\": ...} with Content-Type: application/json",
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refused before a byte of it is read, when the length is given; counted otherwise.
    let too_large = declared.is_some_and(|n| n > MAX_BODY_BYTES as u64);
    let read = if too_large {
        None
    } else {
        axum::body::to_bytes(body, MAX_BODY_BYTES).await.ok()
    };
    let Some(bytes) = read else {
        return api_refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the call is larger than 1 MiB, or was cut off",
            "send a smaller call",
        );
    };
    let call: Call = match serde_json::from_slice(&bytes) {
        Ok(call) => call,
        Err(e) => {
            return api_refusal(
                StatusCode::BAD_REQUEST,
                &format!("the call could not be understood: {e}"),
                "check the method name and its parameters",
            )
        }
    };
    if !page_may(&call) {
        return api_refusal(
            StatusCode::FORBIDDEN,
            "the page cannot do this",
            "pairing, devices, export, import and the daemon itself stay in the hearth command on a terminal",
        );
    }
    let answer = page.backend.call(call).await;
    match (answer.ok, answer.error) {
        (_, Some(error)) => {
            let status = status_of(error.code);
            json(status, &serde_json::json!({ "error": error }))
        }
        (ok, None) => {
            let mut body = serde_json::json!({ "ok": ok.unwrap_or(serde_json::Value::Null) });
            if let (Some(people), Some(map)) = (answer.people, body.as_object_mut()) {
                if let Ok(people) = serde_json::to_value(people) {
                    map.insert("people".into(), people);
                }
            }
            json(StatusCode::OK, &body)
        }
    }
}

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Invalid | ErrorCode::Version => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Ambiguous
        | ErrorCode::NotInitialized
        | ErrorCode::AlreadyInitialized
        | ErrorCode::Locked
        | ErrorCode::WrongPassphrase => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The calls the page may make: the everyday reads and writes, and `status`. Never
/// pairing, the identity, the daemon's life, devices and pausing, bundles, export or
/// import, or the test-only raw writes: those stay in the CLI. Every variant is named,
/// so a new method is refused until it is placed here.
pub fn page_may(call: &Call) -> bool {
    match call {
        Call::Daemon(DaemonCall::Status) => true,
        Call::Daemon(
            DaemonCall::Init { .. }
            | DaemonCall::Unlock { .. }
            | DaemonCall::Shutdown
            | DaemonCall::WebOpen,
        ) => false,
        Call::Doc(
            DocCall::CheckinAdd(_)
            | DocCall::ReflectAdd(_)
            | DocCall::LedgerAdd(_)
            | DocCall::LedgerList { .. }
            | DocCall::LedgerShow { .. }
            | DocCall::LedgerDone(_)
            | DocCall::LedgerAck(_)
            | DocCall::LedgerHandoff(_)
            | DocCall::LedgerAnswer(_)
            | DocCall::LedgerEdit(_)
            | DocCall::LedgerPause { .. }
            | DocCall::LedgerResume { .. }
            | DocCall::LedgerAgree { .. }
            | DocCall::LedgerRetire { .. }
            | DocCall::MomentAdd(_)
            | DocCall::Log(_)
            | DocCall::Today { .. }
            | DocCall::Together { .. }
            | DocCall::Reply { .. }
            | DocCall::Insights { .. },
        ) => true,
        Call::Doc(
            DocCall::Export
            | DocCall::Import { .. }
            | DocCall::RoguePut { .. }
            | DocCall::RogueDelete { .. },
        ) => false,
        Call::Net(
            NetCall::SyncNow
            | NetCall::PeersAdd { .. }
            | NetCall::PairInvite { .. }
            | NetCall::PairWait
            | NetCall::PairJoin { .. },
        ) => false,
        Call::Roster(
            RosterCall::DevicesList
            | RosterCall::DevicesRename { .. }
            | RosterCall::DevicesRemove { .. }
            | RosterCall::Pause { .. }
            | RosterCall::Resume
            | RosterCall::Leave { .. },
        ) => false,
        Call::Bundle(BundleCall::BundleExport { .. } | BundleCall::BundleImport { .. }) => false,
        Call::Subscribe => false,
    }
}

/// `GET /api/events?csrf=`: the daemon's events as server-sent events. `EventSource`
/// cannot send a header, so the CSRF token comes in the query (which no log records).
async fn api_events<B: Backend>(
    State(page): State<Page<B>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let sent = query_param(&uri, "csrf");
    if let Err(refusal) = authorize(&page, &headers, sent.map(str::as_bytes)).await {
        return refusal;
    }
    let events = page.backend.events();
    let stream = futures_util::stream::unfold(events, |mut events| async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let Ok(data) = serde_json::to_string(&event) else {
                        continue;
                    };
                    let sse = SseEvent::default().event("hearth").data(data);
                    return Some((Ok::<_, Infallible>(sse), events));
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the page fell behind; some events were dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_our_own_host_is_served() {
        let uri: Uri = "/".parse().unwrap();
        for ok in ["127.0.0.1:7448", "localhost:7448", "LOCALHOST:7448"] {
            assert!(host_allowed(&headers(&[("host", ok)]), &uri, 7448), "{ok}");
        }
        for bad in [
            "evil.example:7448",
            "127.0.0.1.nip.io:7448",
            "127.0.0.1:7449",
            "127.0.0.1",
            "[::1]:7448",
            "localhost.:7448",
        ] {
            assert!(
                !host_allowed(&headers(&[("host", bad)]), &uri, 7448),
                "{bad}"
            );
        }
        assert!(!host_allowed(&HeaderMap::new(), &uri, 7448));
        let two = headers(&[("host", "127.0.0.1:7448"), ("host", "evil.example:7448")]);
        assert!(!host_allowed(&two, &uri, 7448));
        let absolute: Uri = "http://evil.example:7448/".parse().unwrap();
        assert!(!host_allowed(
            &headers(&[("host", "127.0.0.1:7448")]),
            &absolute,
            7448
        ));
    }

    #[test]
    fn origin_and_fetch_site_must_be_the_page() {
        assert!(same_origin(&HeaderMap::new(), 7448));
        assert!(same_origin(
            &headers(&[
                ("origin", "http://127.0.0.1:7448"),
                ("sec-fetch-site", "same-origin")
            ]),
            7448
        ));
        assert!(!same_origin(
            &headers(&[("origin", "http://evil.example")]),
            7448
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), 7448));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            7448
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            7448
        ));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=b; hearth_session=XYZ; c=d")]);
        assert_eq!(session_cookie(&h).as_deref(), Some("XYZ"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "hearth_sessionx=1")])),
            None
        );
    }

    #[test]
    fn the_page_may_make_everyday_calls_only() {
        let may = |line: &str| page_may(&serde_json::from_str::<Call>(line).unwrap());
        assert!(may(r#"{"method":"status"}"#));
        assert!(may(r#"{"method":"log","params":{}}"#));
        assert!(may(r#"{"method":"today","params":{}}"#));
        for refused in [
            r#"{"method":"shutdown"}"#,
            r#"{"method":"web.open"}"#,
            r#"{"method":"pair.invite","params":{}}"#,
            r#"{"method":"export"}"#,
            r#"{"method":"devices.remove","params":{"id":"AB"}}"#,
            r#"{"method":"bundle.export","params":{}}"#,
            r#"{"method":"subscribe"}"#,
        ] {
            assert!(!may(refused), "{refused}");
        }
    }

    #[test]
    fn tokens_and_sessions_stay_bounded() {
        let mut map = HashMap::new();
        let t0 = Instant::now();
        for i in 0..40u64 {
            bound(&mut map, 16, |t| *t);
            map.insert(i.to_string(), t0 + Duration::from_secs(i));
        }
        assert_eq!(map.len(), 16);
        assert!(map.contains_key("39") && !map.contains_key("0"));
    }

    #[test]
    fn every_answer_gets_the_headers_and_no_cors() {
        let mut h = headers(&[("access-control-allow-origin", "*")]);
        secure_headers(&mut h);
        assert_eq!(h.get("content-security-policy").unwrap(), CSP);
        assert!(h.get("access-control-allow-origin").is_none());
        assert_eq!(h.get("cache-control").unwrap(), "no-store");
    }
}
