//! A small WebDriver client for the browser tests: Debian's headless Chromium driven by
//! `chromedriver` over its HTTP API, spoken with a few lines of HTTP/1.1 on a
//! `TcpStream` (one request per connection), so no HTTP client crate is needed.
//!
//! The machine's network is closed and the page must reach nothing but loopback, so
//! Chromium starts with every background service off and its own fresh profile. Each
//! [`Browser`] is one Chromium with its own profile: cookies ignore the port, so two
//! daemons' pages on `127.0.0.1` need two browsers, as two partners have two devices.
//! Waiting is a bounded loop of WebDriver queries ([`Browser::wait_for`]), never a
//! sleep that hopes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

/// Where Debian puts the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The browser binaries to try, the real one first (`/usr/bin/chromium` is a wrapper
/// script that reads `/etc/chromium.d`).
const CHROMIUM: [&str; 2] = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"];
/// How long a wait on the page may take before the test fails.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// The key WebDriver wants for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Keys for [`Browser::keys`], as the WebDriver spec numbers them.
pub mod key {
    /// Home.
    pub const HOME: &str = "\u{E011}";
    /// Arrow right.
    pub const RIGHT: &str = "\u{E014}";
    /// Enter.
    pub const ENTER: &str = "\u{E007}";
}

/// Why the browser tests cannot run here, or `None` when they can.
pub fn unavailable() -> Option<String> {
    if !Path::new(CHROMEDRIVER).exists() {
        return Some(format!(
            "{CHROMEDRIVER} is missing (install Debian's chromium and chromium-driver)"
        ));
    }
    if chromium().is_none() {
        return Some("chromium is missing (install Debian's chromium package)".into());
    }
    None
}

fn chromium() -> Option<&'static str> {
    CHROMIUM.into_iter().find(|p| Path::new(p).exists())
}

/// A running `chromedriver` on a loopback port.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver and waits for it to say it is listening.
    pub fn start() -> anyhow::Result<Driver> {
        // A free port: chromedriver takes a number, not a bound socket.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start {CHROMEDRIVER}"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("started successfully") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        let mut driver = Driver { child, port };
        if rx.recv_timeout(PAGE_TIMEOUT).is_err() {
            driver.stop();
            bail!("chromedriver did not start within {PAGE_TIMEOUT:?}");
        }
        Ok(driver)
    }

    /// A new Chromium with a fresh profile in `profile`, its window `width`×`height`.
    pub fn browser(&self, profile: &Path, width: u32, height: u32) -> anyhow::Result<Browser> {
        let binary = chromium().ok_or_else(|| anyhow!("chromium is missing"))?;
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": args},
        }}});
        let value = http(self.port, "POST", "/session", Some(&caps))?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session id in {value}"))?
            .to_string();
        let browser = Browser {
            port: self.port,
            session: id,
        };
        browser.set_size(width, height)?;
        Ok(browser)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One WebDriver session: one Chromium window. Closing it ends the browser.
pub struct Browser {
    port: u16,
    session: String,
}

/// A reference to an element on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(String);

impl Element {
    /// Whether the element is shown (WebDriver's "is displayed").
    pub fn displayed(&self, browser: &Browser) -> anyhow::Result<bool> {
        let v = browser.cmd("GET", &format!("/element/{}/displayed", self.0), None)?;
        Ok(v.as_bool().unwrap_or(false))
    }
}

impl Browser {
    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let path = format!("/session/{}{path}", self.session);
        http(self.port, method, &path, body)
    }

    /// Resizes the window (the viewport follows).
    pub fn set_size(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.cmd(
            "POST",
            "/window/rect",
            Some(&json!({"width": width, "height": height})),
        )?;
        Ok(())
    }

    /// Loads `url` and waits for the document to load.
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/url", Some(&json!({ "url": url })))?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn js(&self, script: &str, args: &[Value]) -> anyhow::Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": args})),
        )
    }

    /// Emulates CSS media features, such as `prefers-color-scheme: dark`, through
    /// Chromium's DevTools command (chromedriver's `goog/cdp/execute`).
    pub fn emulate_media(&self, features: &[(&str, &str)]) -> anyhow::Result<()> {
        let features: Vec<Value> = features
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(&json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": features}})),
        )?;
        Ok(())
    }

    /// The first element matching a CSS selector, if any.
    pub fn find(&self, css: &str) -> anyhow::Result<Option<Element>> {
        match self.cmd(
            "POST",
            "/element",
            Some(&json!({"using": "css selector", "value": css})),
        ) {
            Ok(v) => Ok(v[ELEMENT].as_str().map(|s| Element(s.to_string()))),
            Err(e) if e.to_string().contains("no such element") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The element matching `css`, waiting for it to appear.
    pub fn get(&self, css: &str) -> anyhow::Result<Element> {
        self.wait_for(&format!("`{css}` to appear"), || self.find(css))
    }

    /// Clicks an element, as a person would (it must be visible and not covered). It is
    /// first scrolled to the middle of the window, as a person would, where no sticky
    /// header covers it.
    pub fn click(&self, el: &Element) -> anyhow::Result<()> {
        self.js(
            "arguments[0].scrollIntoView({block: 'center'})",
            &[json!({ ELEMENT: el.0 })],
        )?;
        self.cmd(
            "POST",
            &format!("/element/{}/click", el.0),
            Some(&json!({})),
        )?;
        Ok(())
    }

    /// Types into an element.
    pub fn keys(&self, el: &Element, text: &str) -> anyhow::Result<()> {
        self.cmd(
            "POST",
            &format!("/element/{}/value", el.0),
            Some(&json!({ "text": text })),
        )?;
        Ok(())
    }

    /// An element's rendered text.
    pub fn text(&self, el: &Element) -> anyhow::Result<String> {
        let v = self.cmd("GET", &format!("/element/{}/text", el.0), None)?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The rendered text of the first element matching `css`, or empty.
    pub fn text_of(&self, css: &str) -> anyhow::Result<String> {
        match self.find(css)? {
            Some(el) => self.text(&el),
            None => Ok(String::new()),
        }
    }

    /// Clicks the element matching `css` once it is there.
    pub fn click_on(&self, css: &str) -> anyhow::Result<()> {
        let el = self.get(css)?;
        self.click(&el)
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) -> anyhow::Result<PathBuf> {
        let v = self.cmd("GET", "/screenshot", None)?;
        let b64 = v.as_str().ok_or_else(|| anyhow!("no screenshot data"))?;
        let png = data_encoding::BASE64
            .decode(b64.as_bytes())
            .context("the screenshot is not base64")?;
        std::fs::write(path, png)?;
        Ok(path.to_path_buf())
    }

    /// Polls `probe` with WebDriver queries until it returns `Some`, for at most
    /// [`PAGE_TIMEOUT`]. `what` names the wait in the error.
    pub fn wait_for<T>(
        &self,
        what: &str,
        mut probe: impl FnMut() -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            if let Some(found) = probe()? {
                return Ok(found);
            }
            if Instant::now() > deadline {
                let note = self.text_of("#toast").unwrap_or_default();
                let status = self.text_of("#status-line").unwrap_or_default();
                let url = self.js("return location.href", &[]).unwrap_or_default();
                bail!(
                    "waited {PAGE_TIMEOUT:?} for {what} on {url}; the page says {status:?}, its last note {note:?}"
                );
            }
        }
    }

    /// Waits until the text of `css` contains `needle`, and returns that text.
    pub fn wait_for_text(&self, css: &str, needle: &str) -> anyhow::Result<String> {
        self.wait_for(&format!("{needle:?} in `{css}`"), || {
            let text = self.text_of(css)?;
            Ok(text.contains(needle).then_some(text))
        })
    }

    /// Ends the session, which closes this Chromium.
    pub fn close(&self) -> anyhow::Result<()> {
        http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        )?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// One WebDriver command: an HTTP/1.1 request on a fresh loopback connection. Answers
/// the response's `value`, or its WebDriver error as an error.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("could not reach chromedriver on port {port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.set_nodelay(true)?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if method != "GET" {
        request.push_str(&format!(
            "Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP answer: {status_line:?}"))?;
    let mut length: Option<usize> = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok();
            }
        }
    }
    let mut raw = Vec::new();
    match length {
        Some(n) => {
            raw.resize(n, 0);
            reader.read_exact(&mut raw)?;
        }
        None => {
            reader.read_to_end(&mut raw)?;
        }
    }
    let parsed: Value = serde_json::from_slice(&raw).with_context(|| {
        format!(
            "chromedriver answered {method} {path} with {status} and no JSON: {}",
            String::from_utf8_lossy(&raw)
        )
    })?;
    let value = parsed.get("value").cloned().unwrap_or(Value::Null);
    if status >= 400 {
        bail!(
            "{method} {path}: {}: {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
        );
    }
    Ok(value)
}
