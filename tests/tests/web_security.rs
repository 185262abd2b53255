//! The local page's defences (`hearth open`, `hearthd::web`), against a real daemon,
//! over raw HTTP/1.1 on std's `TcpStream`: forged `Host` headers (DNS rebinding),
//! missing and reused tokens, missing and wrong CSRF tokens, cross-origin requests,
//! methods the page may not call, oversized bodies, and a config that names another
//! interface. After every refusal the test checks that nothing changed.
//!
//! Nothing here is sent to any address but 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;

use hearth_api::{DaemonCall, DocCall, LogParams, WebOpened};
use hearth_tests::harness::{workspace_binary, DaemonOptions, TestDaemon, EVENT_TIMEOUT};
use serde_json::{json, Value};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    /// The headers every answer carries, and no CORS.
    fn assert_secured(&self) {
        assert_eq!(
            self.header("content-security-policy"),
            Some(CSP),
            "{self:?}"
        );
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(self.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("x-frame-options"), Some("DENY"));
        assert!(
            !self
                .headers
                .iter()
                .any(|(n, _)| n.to_ascii_lowercase().starts_with("access-control-")),
            "{self:?}"
        );
    }
}

/// A request to 127.0.0.1:`port`, its head written as given (`Host` included or not).
fn raw(port: u16, head: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    parse(&all)
}

fn parse(all: &[u8]) -> Reply {
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(all)));
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: all[split + 4..].to_vec(),
    };
    if reply.header("transfer-encoding") == Some("chunked") {
        reply.body = dechunk(&reply.body);
    }
    reply
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&bytes[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&bytes[eol + 2..eol + 2 + size]);
        bytes = &bytes[eol + 2 + size + 2..];
    }
    out
}

/// A daemon with a person and its page started.
struct Page {
    daemon: TestDaemon,
    port: u16,
}

/// A session on the page: its cookie and its CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Page {
    fn start() -> Page {
        Page::on(TestDaemon::start().unwrap())
    }

    fn on(daemon: TestDaemon) -> Page {
        daemon.init("Ada").unwrap();
        let opened: WebOpened =
            serde_json::from_value(daemon.call(DaemonCall::WebOpen).unwrap()).unwrap();
        Page {
            port: opened.port,
            daemon,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A fresh one-time token.
    fn token(&self) -> String {
        let opened: WebOpened =
            serde_json::from_value(self.daemon.call(DaemonCall::WebOpen).unwrap()).unwrap();
        assert_eq!(
            opened.port, self.port,
            "a second web.open reuses the server"
        );
        let token = opened
            .url
            .strip_prefix(&format!("http://127.0.0.1:{}/?token=", self.port))
            .unwrap_or_else(|| panic!("{}", opened.url));
        token.to_string()
    }

    /// `GET path` with the right host and these extra header lines.
    fn get(&self, path: &str, extra: &str) -> Reply {
        self.get_as(&self.host(), path, extra)
    }

    fn get_as(&self, host: &str, path: &str, extra: &str) -> Reply {
        let reply = raw(
            self.port,
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"),
            b"",
        );
        reply.assert_secured();
        reply
    }

    /// `POST /api/call` with `body` and these extra header lines.
    fn post_as(&self, host: &str, extra: &str, body: &[u8]) -> Reply {
        let reply = raw(
            self.port,
            &format!(
                "POST /api/call HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ),
            body,
        );
        reply.assert_secured();
        reply
    }

    fn post(&self, extra: &str, body: &[u8]) -> Reply {
        self.post_as(&self.host(), extra, body)
    }

    /// A call as the page makes it, with this session.
    fn call(&self, session: &Session, body: &Value) -> Reply {
        self.post(
            &session.headers(),
            serde_json::to_string(body).unwrap().as_bytes(),
        )
    }

    /// Swaps a fresh token for a session and fetches its CSRF token.
    fn session(&self) -> Session {
        let swap = self.get(&format!("/?token={}", self.token()), "");
        assert_eq!(swap.status, 303, "{}", swap.text());
        let cookie = swap
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let session = self.get("/api/session", &format!("Cookie: {cookie}\r\n"));
        assert_eq!(session.status, 200, "{}", session.text());
        let csrf = session.json()["csrf"].as_str().unwrap().to_string();
        Session { cookie, csrf }
    }

    /// The timeline as the control socket shows it.
    fn log(&self) -> Value {
        self.daemon
            .call(DocCall::Log(LogParams::default()))
            .unwrap()
    }
}

impl Session {
    fn headers(&self) -> String {
        format!(
            "Cookie: {}\r\nX-Hearth-CSRF: {}\r\nContent-Type: application/json\r\n",
            self.cookie, self.csrf
        )
    }
}

fn checkin(note: &str) -> Value {
    json!({"method": "checkin.add", "params": {"battery": 40, "note": note}})
}

#[test]
fn a_link_is_swapped_once_for_a_strict_session_cookie() {
    let page = Page::start();
    let token = page.token();
    let swap = page.get(&format!("/?token={token}"), "");
    assert_eq!(swap.status, 303);
    assert_eq!(swap.header("location"), Some("/"));
    let cookie = swap.header("set-cookie").unwrap().to_string();
    let parts: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(parts[0].starts_with("hearth_session="), "{cookie}");
    // 32 random bytes, base64url: 43 characters.
    assert_eq!(parts[0].len(), "hearth_session=".len() + 43, "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(parts.contains(&flag), "{flag} missing from {cookie}");
    }
    assert!(!cookie.contains(&token), "the cookie is not the token");
    let cookie_line = format!("Cookie: {}\r\n", parts[0]);

    // The token works once.
    let again = page.get(&format!("/?token={token}"), "");
    assert_eq!(again.status, 403);
    assert!(
        again.text().contains("already used or has expired"),
        "{}",
        again.text()
    );
    assert!(again.text().contains("hearth open"));
    assert!(again.header("set-cookie").is_none());
    let made_up = page.get(&format!("/?token={}", "A".repeat(43)), "");
    assert_eq!(made_up.status, 403);

    // The page needs the cookie; the assets, which hold no data, do not.
    let index = page.get("/", &cookie_line);
    assert_eq!(index.status, 200);
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let bare = page.get("/", "");
    assert_eq!(bare.status, 403);
    assert!(bare.text().contains("hearth open"), "{}", bare.text());
    assert_eq!(
        page.get("/", "Cookie: hearth_session=forged\r\n").status,
        403
    );
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let asset = page.get(path, "");
        assert_eq!(asset.status, 200, "{path}");
        assert!(
            asset.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
    }

    // The API needs the cookie too, and knows who "me" is.
    assert_eq!(page.get("/api/session", "").status, 403);
    assert_eq!(page.get("/api/events", "").status, 403);
    let session = page.get("/api/session", &cookie_line).json();
    let me = page.daemon.status().unwrap().person.unwrap().id;
    assert_eq!(session["me"], me.as_str());
    assert_eq!(session["csrf"].as_str().unwrap().len(), 43);
    assert_eq!(page.get("/nothing-here", &cookie_line).status, 404);
}

#[test]
fn every_route_refuses_a_forged_host_and_reads_nothing() {
    let page = Page::start();
    let session = page.session();
    let before = page.log();
    let token = page.token();
    let port = page.port;
    let cookie = format!("Cookie: {}\r\n", session.cookie);
    let forged = [
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_string(),
        format!("[::1]:{port}"),
    ];
    for host in &forged {
        for path in [
            format!("/?token={token}"),
            "/".into(),
            "/app.js".into(),
            "/api/session".into(),
            "/api/events".into(),
            "/nothing-here".into(),
        ] {
            let reply = page.get_as(host, &path, &cookie);
            assert_eq!(reply.status, 421, "{host} {path}");
            assert!(reply.header("set-cookie").is_none());
        }
        let write = page.post_as(
            host,
            &session.headers(),
            checkin("rebound").to_string().as_bytes(),
        );
        assert_eq!(write.status, 421, "{host}");
    }
    // No Host header at all, and a second one that names another site.
    let none = raw(port, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", b"");
    assert!(none.status == 421 || none.status == 400, "{none:?}");
    let two = raw(
        port,
        &format!("GET /api/session HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example:{port}\r\n{cookie}Connection: close\r\n\r\n"),
        b"",
    );
    assert!(two.status == 421 || two.status == 400, "{two:?}");
    // An absolute request target that names another site.
    let absolute = raw(
        port,
        &format!("GET http://evil.example:{port}/api/session HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{cookie}Connection: close\r\n\r\n"),
        b"",
    );
    assert_eq!(absolute.status, 421);

    // Nothing was written, and the token was not even read: it still works, once.
    assert_eq!(page.log(), before);
    assert_eq!(page.get(&format!("/?token={token}"), "").status, 303);
    // `localhost` is this page too.
    let local = page.get_as(&format!("localhost:{port}"), "/api/session", &cookie);
    assert_eq!(local.status, 200);
}

#[test]
fn writes_need_the_session_its_csrf_token_and_the_page_origin() {
    let page = Page::start();
    let session = page.session();
    let other = page.session();
    let before = page.log();
    let body = checkin("refused").to_string();
    let body = body.as_bytes();
    let port = page.port;
    let json = "Content-Type: application/json\r\n";
    let cookie = format!("Cookie: {}\r\n", session.cookie);
    let csrf = format!("X-Hearth-CSRF: {}\r\n", session.csrf);
    let refusals = [
        ("no cookie", format!("{csrf}{json}"), 403),
        ("no CSRF token", format!("{cookie}{json}"), 403),
        (
            "a wrong CSRF token",
            format!("{cookie}X-Hearth-CSRF: {}\r\n{json}", "B".repeat(43)),
            403,
        ),
        (
            "another session's CSRF token",
            format!("{cookie}X-Hearth-CSRF: {}\r\n{json}", other.csrf),
            403,
        ),
        (
            "a forged cookie",
            format!("Cookie: hearth_session=forged\r\n{csrf}{json}"),
            403,
        ),
        (
            "another origin",
            format!("{}Origin: http://evil.example\r\n", session.headers()),
            403,
        ),
        (
            "another port",
            format!(
                "{}Origin: http://127.0.0.1:{}\r\n",
                session.headers(),
                port.wrapping_add(1)
            ),
            403,
        ),
        (
            "an opaque origin",
            format!("{}Origin: null\r\n", session.headers()),
            403,
        ),
        (
            "a cross-site fetch",
            format!("{}Sec-Fetch-Site: cross-site\r\n", session.headers()),
            403,
        ),
        (
            "a same-site fetch",
            format!("{}Sec-Fetch-Site: same-site\r\n", session.headers()),
            403,
        ),
        (
            "a form's content type",
            format!("{cookie}{csrf}Content-Type: application/x-www-form-urlencoded\r\n"),
            415,
        ),
        ("no content type", format!("{cookie}{csrf}"), 415),
    ];
    for (what, headers, status) in &refusals {
        let reply = page.post(headers, body);
        assert_eq!(reply.status, *status, "{what}: {}", reply.text());
        assert!(reply.json()["error"]["message"].is_string(), "{what}");
        assert_eq!(page.log(), before, "{what} changed something");
    }
    // A GET cannot write, and a form cannot reach the API across origins either.
    assert_eq!(page.get("/api/call", &session.headers()).status, 405);
    let events = page.get(
        "/api/session",
        &format!("{cookie}Sec-Fetch-Site: cross-site\r\n"),
    );
    assert_eq!(events.status, 403);

    // The page's own write goes through, and shows in the log.
    let ok = page.post(
        &format!(
            "{}Origin: http://127.0.0.1:{port}\r\nSec-Fetch-Site: same-origin\r\n",
            session.headers()
        ),
        checkin("through the page").to_string().as_bytes(),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let answer = ok.json();
    assert!(answer["ok"].is_object(), "{answer}");
    let me = page.daemon.status().unwrap().person.unwrap().id;
    assert_eq!(answer["people"]["me"], me.as_str(), "people beside ok");
    let log = page.log();
    assert_ne!(log, before);
    assert!(log.to_string().contains("through the page"), "{log}");
    // So do reads, through the same routing as the socket.
    let read = page.call(&session, &json!({"method": "log", "params": {}}));
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["ok"], log);
    let status = page.call(&session, &json!({"method": "status"}));
    assert_eq!(status.json()["ok"]["state"], "ready");
    // A call the daemon refuses comes back as its error.
    let bad = page.call(
        &session,
        &json!({"method": "checkin.add", "params": {"battery": 101}}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.json()["error"]["code"], "invalid");
    let unknown = page.call(&session, &json!({"method": "rm-rf"}));
    assert_eq!(unknown.status, 400);
}

#[test]
fn an_oversized_call_is_refused_unread() {
    let page = Page::start();
    let session = page.session();
    let before = page.log();
    // The length is declared and not sent: the refusal comes without reading it.
    let reply = raw(
        page.port,
        &format!(
            "POST /api/call HTTP/1.1\r\nHost: {}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
            page.host(),
            session.headers(),
            2 * 1024 * 1024
        ),
        b"",
    );
    assert_eq!(reply.status, 413, "{}", reply.text());
    reply.assert_secured();
    // Sent whole, in chunks, without a declared length: counted, and refused.
    let note = "x".repeat(1024 * 1024 + 10);
    let body = checkin(&note).to_string();
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let reply = raw(
        page.port,
        &format!(
            "POST /api/call HTTP/1.1\r\nHost: {}\r\n{}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            page.host(),
            session.headers(),
        ),
        chunked.as_bytes(),
    );
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(page.log(), before);
}

#[test]
fn the_page_cannot_pair_export_import_or_touch_devices() {
    // A rogue-enabled daemon, so that `rogue.put` is refused by the page itself.
    let page = Page::on(TestDaemon::start_rogue().unwrap());
    let session = page.session();
    let before = page.log();
    let devices = page
        .daemon
        .call(hearth_api::RosterCall::DevicesList)
        .unwrap();
    let device = devices[0]["id"].as_str().unwrap().to_string();
    let refused = [
        json!({"method": "pair.invite", "params": {}}),
        json!({"method": "pair.join", "params": {"code": "1-2-3"}}),
        json!({"method": "pair.wait"}),
        json!({"method": "export"}),
        json!({"method": "import", "params": {"data": {}}}),
        json!({"method": "rogue.put", "params": {"collection": "people", "key": "x", "fields": {"name": "Mallory"}}}),
        json!({"method": "rogue.delete", "params": {"collection": "people", "key": "x"}}),
        json!({"method": "devices.list"}),
        json!({"method": "devices.rename", "params": {"id": device, "name": "pwned"}}),
        json!({"method": "devices.remove", "params": {"id": device}}),
        json!({"method": "pause", "params": {}}),
        json!({"method": "leave", "params": {"confirm": true}}),
        json!({"method": "bundle.export", "params": {}}),
        json!({"method": "bundle.import", "params": {"bundle": ""}}),
        json!({"method": "peers.add", "params": {"addr": "127.0.0.1:9"}}),
        json!({"method": "sync"}),
        json!({"method": "init", "params": {"name": "Mallory"}}),
        json!({"method": "unlock", "params": {"passphrase": "x"}}),
        json!({"method": "web.open"}),
        json!({"method": "shutdown"}),
        json!({"method": "subscribe"}),
    ];
    for call in &refused {
        let reply = page.call(&session, call);
        assert_eq!(reply.status, 403, "{call}: {}", reply.text());
        assert!(
            reply.json()["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("terminal"),
            "{call}"
        );
    }
    assert_eq!(page.log(), before);
    assert_eq!(
        page.daemon
            .call(hearth_api::RosterCall::DevicesList)
            .unwrap(),
        devices
    );
    let status = page.daemon.status().unwrap();
    assert_eq!(status.state, "ready", "still running");
    assert_eq!(status.people.len(), 1);
}

#[test]
fn every_answer_carries_the_policy_and_never_cors() {
    let page = Page::start();
    let session = page.session();
    let evil = "Origin: http://evil.example\r\n";
    // `get`/`post` assert the headers on each; these cover every kind of answer.
    let cookie = format!("Cookie: {}\r\n", session.cookie);
    assert_eq!(page.get("/", &format!("{cookie}{evil}")).status, 200);
    assert_eq!(page.get("/app.js", evil).status, 200);
    assert_eq!(page.get("/", evil).status, 403);
    assert_eq!(page.get("/nothing-here", evil).status, 404);
    assert_eq!(page.get_as("evil.example", "/", evil).status, 421);
    assert_eq!(
        page.get(&format!("/?token={}", page.token()), evil).status,
        303
    );
    assert_eq!(
        page.post(&format!("{}{evil}", session.headers()), b"{}")
            .status,
        403
    );
    let preflight = raw(
        page.port,
        &format!("OPTIONS /api/call HTTP/1.1\r\nHost: {}\r\n{evil}Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n", page.host()),
        b"",
    );
    assert_eq!(preflight.status, 405);
    preflight.assert_secured();
    let ok = page.call(&session, &json!({"method": "today", "params": {}}));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.header("content-type"), Some("application/json"));
}

#[test]
fn events_reach_the_page_after_a_write() {
    let page = Page::start();
    let session = page.session();
    let mut stream = TcpStream::connect(("127.0.0.1", page.port)).unwrap();
    stream.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
        page.host(),
        session.cookie
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The head first: from then on the stream is subscribed.
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head");
        seen.extend_from_slice(&buf[..n]);
    }
    let head = parse(&seen);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    head.assert_secured();

    // A write through the control socket, as the partner's sync or the CLI would make.
    page.daemon.moment("a laugh").unwrap();
    let text = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the stream closed before the event");
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        if text.contains("\"doc-changed\"") {
            break text;
        }
    };
    let event = text
        .lines()
        .skip_while(|l| *l != "event: hearth")
        .nth(1)
        .unwrap();
    let data: Value = serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(data["event"], "doc-changed", "{data}");
    assert!(!text.contains("a laugh"), "events carry no content");

    // An open page does not hold the daemon up: it stops, and the stream ends.
    let Page { mut daemon, .. } = page;
    daemon.stop().unwrap();
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// Listening sockets on `port` in /proc/net/tcp and tcp6: `(local address hex, ipv6)`.
fn listeners_on(port: u16) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(table) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((addr, hex_port)) = local.rsplit_once(':') else {
                continue;
            };
            // 0A: LISTEN.
            if *state == "0A" && u16::from_str_radix(hex_port, 16) == Ok(port) {
                found.push((addr.to_string(), v6));
            }
        }
    }
    found
}

#[test]
fn the_page_listens_on_127_0_0_1_only() {
    let page = Page::start();
    // 127.0.0.1 as /proc writes it (little-endian hex), and nothing else on that port.
    assert_eq!(
        listeners_on(page.port),
        vec![("0100007F".to_string(), false)]
    );
    let line = page.daemon.wait_for_log("the page is listening").unwrap();
    assert!(
        line.contains(&format!("addr=127.0.0.1:{}", page.port)),
        "{line}"
    );
}

#[test]
fn a_config_naming_another_interface_is_refused_and_nothing_listens() {
    for addr in ["0.0.0.0", "[::]", "[::1]"] {
        let dir = tempfile::tempdir().unwrap();
        // A port that is free now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.path().join("config.toml"),
            format!("web_listen = \"{addr}:{port}\"\n"),
        )
        .unwrap();
        let daemon = TestDaemon::start_opts(
            dir.path(),
            &DaemonOptions {
                web_listen: None,
                ..DaemonOptions::default()
            },
        )
        .unwrap();
        daemon.init("Ada").unwrap();
        let err = daemon.call(DaemonCall::WebOpen).unwrap_err().to_string();
        assert!(err.contains("only ever served on 127.0.0.1"), "{err}");
        assert!(err.contains("web_listen = \"127.0.0.1:PORT\""), "{err}");
        assert_eq!(listeners_on(port), vec![], "{addr}");
        // Still refused the second time: nothing was half started.
        assert!(daemon.call(DaemonCall::WebOpen).is_err());
        assert_eq!(listeners_on(port), vec![], "{addr}");
    }
}

#[test]
fn logs_hold_no_token_cookie_body_or_name() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = TestDaemon::start_opts(
        dir.path(),
        &DaemonOptions {
            log: Some("trace".into()),
            ..DaemonOptions::default()
        },
    )
    .unwrap();
    daemon.init("Zebulon").unwrap();
    let opened: WebOpened =
        serde_json::from_value(daemon.call(DaemonCall::WebOpen).unwrap()).unwrap();
    let page = Page {
        port: opened.port,
        daemon,
    };
    let session = page.session();
    let ok = page.call(&session, &checkin("quokka-marmalade"));
    assert_eq!(ok.status, 200);
    let refused = page.post(
        &format!(
            "Cookie: {}\r\nContent-Type: application/json\r\n",
            session.cookie
        ),
        checkin("wombat-treacle").to_string().as_bytes(),
    );
    assert_eq!(refused.status, 403);
    let token = page.token();
    let cookie_value = session.cookie.split_once('=').unwrap().1.to_string();
    // Stop the daemon so every line it wrote has been read.
    let mut daemon = page.daemon;
    daemon.stop().unwrap();
    let log = daemon.log_lines().join("\n");
    assert!(log.contains("the page is listening"), "the log was read");
    for secret in [
        "quokka-marmalade",
        "wombat-treacle",
        "Zebulon",
        &token,
        &cookie_value,
        &session.csrf,
        &opened.url,
    ] {
        assert!(!log.contains(secret), "the log holds {secret}");
    }
}

#[test]
fn hearth_open_prints_the_link_or_says_kindly_where_it_is() {
    let daemon = TestDaemon::start().unwrap();
    daemon.init("Ada").unwrap();
    let hearth = workspace_binary("hearth").unwrap();
    let run = |args: &[&str], path: &str| {
        let out = std::process::Command::new(&hearth)
            .arg("--data-dir")
            .arg(&daemon.paths.data_dir)
            .args(args)
            .env("PATH", path)
            .env_remove("HEARTH_DATA_DIR")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let empty = tempfile::tempdir().unwrap();
    let no_opener = empty.path().to_str().unwrap();
    let printed = run(&["open", "--no-browser"], no_opener);
    let url = printed.trim();
    assert!(url.starts_with("http://127.0.0.1:"), "{printed}");
    assert!(url.contains("/?token="), "{printed}");
    let answer: WebOpened = serde_json::from_str(&run(&["--json", "open"], no_opener)).unwrap();
    assert_eq!(
        answer.url,
        format!(
            "http://127.0.0.1:{}/?token={}",
            answer.port,
            answer.url.rsplit('=').next().unwrap()
        )
    );
    assert_ne!(answer.url, url, "each link is fresh");
    // No opener on PATH: the link, with a sentence saying what to do with it.
    let kind = run(&["open"], no_opener);
    assert!(kind.starts_with("Hearth's page is ready"), "{kind}");
    assert!(kind.contains("http://127.0.0.1:"), "{kind}");
    // An opener that fails is treated the same way.
    std::fs::write(empty.path().join("xdg-open"), "#!/bin/sh\nexit 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        empty.path().join("xdg-open"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{no_opener}:/usr/bin:/bin");
    let failed = run(&["open"], &path);
    assert!(failed.contains("could not open a browser"), "{failed}");
    // One that works prints nothing; it got the link.
    let seen = empty.path().join("seen");
    std::fs::write(
        empty.path().join("xdg-open"),
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", seen.display()),
    )
    .unwrap();
    assert_eq!(run(&["open"], &path), "");
    let link = std::fs::read_to_string(&seen).unwrap();
    assert!(
        link.starts_with("http://127.0.0.1:") && link.contains("?token="),
        "{link}"
    );
}
