//! Real daemons in temp dirs, for integration tests, the benchmark and the demo.
//!
//! Each [`TestDaemon`] is a `hearthd` child process with its own data directory, its
//! QUIC endpoint on `127.0.0.1:0` and discovery off, so nothing leaves loopback. Start-up
//! waits for the daemon's own "listening" log line, and convergence waits on subscribe
//! events: nothing here sleeps to hope something happened.
//!
//! [`DaemonOptions`] turns discovery on for the tests that need it: the static board
//! (nothing on any network), or real mDNS, which a test may only run inside network
//! namespaces it created with [`Lan`], never on the machine's own interfaces.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hearth_api::client::{Client, ClientError, Subscription};
use hearth_api::paths::Paths;
use hearth_api::{Call, DaemonCall, DocCall, NetCall, Status};
use serde_json::Value;

/// How long a test waits for an event before it gives up.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Finds a binary built by this workspace next to the running test or benchmark.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    // Test binaries live in target/<profile>/deps; binaries in target/<profile>.
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    if path.exists() {
        Ok(path)
    } else {
        bail!(
            "{} is not built; run `cargo build -p {}` first (cargo test --workspace builds it)",
            path.display(),
            if name == "hearth" {
                "hearth-cli"
            } else {
                "hearthd"
            }
        )
    }
}

/// How a test daemon finds peers.
#[derive(Debug, Clone, Default)]
pub enum TestDiscovery {
    /// Only addresses the test gives it (the default).
    #[default]
    Off,
    /// The static rendezvous board in this directory: nothing goes on any network.
    Board(PathBuf),
    /// Real mDNS on these interfaces (all when empty). Only inside a [`Lan`] namespace.
    Mdns(Vec<String>),
}

/// How to start a test daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// `HEARTH_LISTEN`.
    pub listen: String,
    /// Discovery mode.
    pub discovery: TestDiscovery,
    /// The network namespace to run in (`ip netns exec`), if any.
    pub netns: Option<String>,
    /// `HEARTH_LOG`; `HEARTH_TEST_LOG` or `info` when unset.
    pub log: Option<String>,
    /// Play a rogue paired device: the daemon accepts raw writes (`rogue.put`,
    /// `rogue.delete`), as a modified client would (`HEARTH_TEST_ROGUE=1`).
    pub rogue: bool,
    /// `HEARTH_WEB_LISTEN`, where `hearth open` serves the page: `127.0.0.1:0` by
    /// default, so parallel tests never share a port; `None` leaves it to config.toml.
    pub web_listen: Option<String>,
}

impl Default for DaemonOptions {
    fn default() -> DaemonOptions {
        DaemonOptions {
            listen: "127.0.0.1:0".into(),
            discovery: TestDiscovery::Off,
            netns: None,
            log: None,
            rogue: false,
            web_listen: Some("127.0.0.1:0".into()),
        }
    }
}

/// A `hearthd` child process with its own data directory.
pub struct TestDaemon {
    /// Where its files live.
    pub paths: Paths,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    log: Option<std::thread::JoinHandle<()>>,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TestDaemon {
    /// Starts a daemon in a fresh temp dir.
    pub fn start() -> anyhow::Result<TestDaemon> {
        let dir = tempfile::tempdir()?;
        let mut daemon = TestDaemon::start_in(dir.path())?;
        daemon._dir = Some(dir);
        Ok(daemon)
    }

    /// Starts a rogue daemon in a fresh temp dir: a real device that also takes raw
    /// writes, as a modified client would (see [`DaemonOptions::rogue`]).
    pub fn start_rogue() -> anyhow::Result<TestDaemon> {
        let dir = tempfile::tempdir()?;
        let mut daemon = TestDaemon::start_opts(
            dir.path(),
            &DaemonOptions {
                rogue: true,
                ..DaemonOptions::default()
            },
        )?;
        daemon._dir = Some(dir);
        Ok(daemon)
    }

    /// Starts (or restarts) a daemon on an existing data directory.
    pub fn start_in(data_dir: &Path) -> anyhow::Result<TestDaemon> {
        TestDaemon::start_with(data_dir, "127.0.0.1:0")
    }

    /// Stops the daemon and starts it again on the same directory and QUIC port, as a
    /// device restarting would.
    pub fn restart(&mut self, crash: bool) -> anyhow::Result<()> {
        let listen = self.addr()?;
        if crash {
            self.kill();
        } else {
            self.stop()?;
        }
        let mut fresh = TestDaemon::start_with(&self.paths.data_dir, &listen)?;
        self.child = fresh.child.take();
        self.log = fresh.log.take();
        self.lines = fresh.lines.clone();
        Ok(())
    }

    /// Starts a daemon on `data_dir` listening on `listen`.
    pub fn start_with(data_dir: &Path, listen: &str) -> anyhow::Result<TestDaemon> {
        TestDaemon::start_opts(
            data_dir,
            &DaemonOptions {
                listen: listen.into(),
                ..DaemonOptions::default()
            },
        )
    }

    /// Starts a daemon on `data_dir` as `options` say.
    pub fn start_opts(data_dir: &Path, options: &DaemonOptions) -> anyhow::Result<TestDaemon> {
        let paths = Paths::in_dir(data_dir);
        let hearthd = workspace_binary("hearthd")?;
        let mut command = match &options.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(hearthd);
                c
            }
            None => Command::new(hearthd),
        };
        command
            .arg("--data-dir")
            .arg(&paths.data_dir)
            .env("HEARTH_LISTEN", &options.listen)
            .env(
                "HEARTH_LOG",
                options.log.clone().unwrap_or_else(|| {
                    std::env::var("HEARTH_TEST_LOG").unwrap_or_else(|_| "info".into())
                }),
            )
            .env_remove("HEARTH_DATA_DIR")
            .env_remove("HEARTH_DISCOVERY_DIR")
            .env_remove("HEARTH_MDNS_INTERFACES")
            .env_remove("HEARTH_TEST_ROGUE");
        if options.rogue {
            command.env("HEARTH_TEST_ROGUE", "1");
        }
        match &options.web_listen {
            Some(addr) => command.env("HEARTH_WEB_LISTEN", addr),
            None => command.env_remove("HEARTH_WEB_LISTEN"),
        };
        match &options.discovery {
            TestDiscovery::Off => {
                command.env("HEARTH_DISCOVERY", "off");
            }
            TestDiscovery::Board(dir) => {
                command
                    .env("HEARTH_DISCOVERY", "static")
                    .env("HEARTH_DISCOVERY_DIR", dir);
            }
            TestDiscovery::Mdns(interfaces) => {
                if options.netns.is_none() {
                    bail!(
                        "real mDNS in a test runs only inside a network namespace the test created"
                    );
                }
                command
                    .env("HEARTH_DISCOVERY", "mdns")
                    .env("HEARTH_MDNS_INTERFACES", interfaces.join(","));
            }
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("could not start hearthd")?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let echo = std::env::var_os("HEARTH_TEST_ECHO").is_some();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = lines.clone();
        let log = std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("[hearthd] {line}");
                }
                if let Ok(mut kept) = kept.lock() {
                    kept.push(line.clone());
                }
                if line.contains("hearthd is listening") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(Ok(()));
                    }
                } else if line.starts_with("error:") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(Err(line.clone()));
                    }
                }
            }
        });
        let mut daemon = TestDaemon {
            paths,
            child: Some(child),
            _dir: None,
            log: Some(log),
            lines,
        };
        match ready_rx.recv_timeout(EVENT_TIMEOUT) {
            Ok(Ok(())) => Ok(daemon),
            Ok(Err(line)) => {
                daemon.kill();
                bail!("hearthd refused to start: {line}")
            }
            Err(_) => {
                daemon.kill();
                bail!("hearthd did not start within {EVENT_TIMEOUT:?}")
            }
        }
    }

    /// A new control connection.
    pub fn client(&self) -> anyhow::Result<Client> {
        let mut client = Client::connect(&self.paths.socket)?;
        client.set_timeout(Some(Duration::from_secs(60)))?;
        Ok(client)
    }

    /// One call on a fresh connection.
    pub fn call(&self, call: impl Into<Call>) -> Result<Value, ClientError> {
        let mut client = Client::connect(&self.paths.socket)?;
        client.call(call)
    }

    /// `status`, parsed.
    pub fn status(&self) -> anyhow::Result<Status> {
        Ok(serde_json::from_value(self.call(DaemonCall::Status)?)?)
    }

    /// Initialises the daemon as a person.
    pub fn init(&self, name: &str) -> anyhow::Result<Value> {
        Ok(self.call(DaemonCall::Init {
            name: name.into(),
            device_name: Some(format!("{name}'s laptop")),
            passphrase: None,
        })?)
    }

    /// The events stream.
    pub fn subscribe(&self) -> anyhow::Result<Subscription> {
        let mut sub = Client::connect(&self.paths.socket)?.subscribe()?;
        sub.set_timeout(Some(Duration::from_millis(200)))?;
        Ok(sub)
    }

    /// Heads of one document, by id prefix (`household` or `private`).
    pub fn heads(&self, doc_prefix: &str) -> anyhow::Result<Vec<String>> {
        let status = self.status()?;
        status
            .documents
            .into_iter()
            .find(|d| d.id.starts_with(doc_prefix))
            .map(|d| d.heads)
            .ok_or_else(|| anyhow!("no document {doc_prefix}"))
    }

    /// Records a small moment carrying `note`, and returns the created record.
    pub fn moment(&self, note: &str) -> Result<Value, ClientError> {
        self.call(DocCall::MomentAdd(hearth_api::MomentParams {
            kind: hearth_core::model::MomentKind::Laugh,
            started_by: None,
            note: Some(note.into()),
            at: hearth_api::At::default(),
        }))
    }

    /// Every note this device's timeline shows, sorted.
    pub fn notes(&self) -> anyhow::Result<Vec<String>> {
        let log = self.call(DocCall::Log(hearth_api::LogParams::default()))?;
        let mut notes: Vec<String> = log
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["record"]["note"].as_str().map(String::from))
            .collect();
        notes.sort();
        Ok(notes)
    }

    /// The QUIC address this daemon listens on.
    pub fn addr(&self) -> anyhow::Result<String> {
        self.status()?
            .listen
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("the daemon listens on no address"))
    }

    /// Everything the daemon logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until the daemon logs a line containing `needle`.
    pub fn wait_for_log(&self, needle: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let mut seen = 0;
        loop {
            let lines = self.log_lines();
            if let Some(line) = lines[seen.min(lines.len())..]
                .iter()
                .find(|l| l.contains(needle))
            {
                return Ok(line.clone());
            }
            seen = lines.len();
            if Instant::now() > deadline {
                bail!("hearthd never logged {needle:?}");
            }
            // Log lines arrive on a pipe the reader thread drains; look again shortly.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the daemon with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(log) = self.log.take() {
            let _ = log.join();
        }
    }

    /// Asks the daemon to stop and waits until it has exited.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let _ = self.call(DaemonCall::Shutdown);
        if let Some(mut child) = self.child.take() {
            let status = child.wait()?;
            if !status.success() {
                bail!("hearthd exited with {status}");
            }
        }
        if let Some(log) = self.log.take() {
            let _ = log.join();
        }
        Ok(())
    }

    /// Keeps the temp dir after the daemon is dropped (for restarts), returning it.
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._dir.take()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two fresh daemons, Ada and Bo, paired through the real flow.
pub fn two_paired() -> anyhow::Result<(TestDaemon, TestDaemon)> {
    let a = TestDaemon::start()?;
    let b = TestDaemon::start()?;
    a.init("Ada")?;
    b.init("Bo")?;
    pair(&a, &b)?;
    Ok((a, b))
}

/// Pairs `joiner` into `inviter`'s household as the partner, through the real flow.
pub fn pair(inviter: &TestDaemon, joiner: &TestDaemon) -> anyhow::Result<()> {
    pair_with(inviter, joiner, false).map(|_| ())
}

/// Pairs a fresh `joiner` as another device of `inviter`'s person (`pair invite
/// --own-device`).
pub fn pair_same_person(inviter: &TestDaemon, joiner: &TestDaemon) -> anyhow::Result<()> {
    pair_with(inviter, joiner, true).map(|_| ())
}

/// Pairs `joiner` with an invite for the partner or, with `own_device`, for another
/// device of the inviter's person, and returns what `pair.wait` and `pair.join` said.
pub fn pair_with(
    inviter: &TestDaemon,
    joiner: &TestDaemon,
    own_device: bool,
) -> anyhow::Result<(Value, Value)> {
    let invite = inviter.call(NetCall::PairInvite {
        timeout_secs: Some(60),
        own_device,
    })?;
    let code = invite["code"]
        .as_str()
        .ok_or_else(|| anyhow!("no code"))?
        .to_string();
    let addr = invite["addresses"][0]
        .as_str()
        .ok_or_else(|| anyhow!("no address"))?
        .to_string();
    let waiter = {
        let socket = inviter.paths.socket.clone();
        std::thread::spawn(move || -> Result<Value, ClientError> {
            Client::connect(&socket)?.call(NetCall::PairWait)
        })
    };
    let joined = joiner.call(NetCall::PairJoin {
        code,
        addr: Some(addr),
        merge: false,
    })?;
    let waited = waiter
        .join()
        .map_err(|_| anyhow!("the pair.wait thread panicked"))??;
    Ok((waited, joined))
}

/// Waits until every daemon has the same heads for `doc_prefix`, waking on events.
pub fn wait_converged(daemons: &[&TestDaemon], doc_prefix: &str) -> anyhow::Result<Vec<String>> {
    wait_converged_within(daemons, doc_prefix, EVENT_TIMEOUT)
}

/// [`wait_converged`] with a bound of the caller's: for liveness checks that must tell
/// "synced on its own" from "synced after the longest backoff".
pub fn wait_converged_within(
    daemons: &[&TestDaemon],
    doc_prefix: &str,
    within: Duration,
) -> anyhow::Result<Vec<String>> {
    let mut subs = daemons
        .iter()
        .map(|d| d.subscribe())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let deadline = Instant::now() + within;
    loop {
        let heads = daemons
            .iter()
            .map(|d| d.heads(doc_prefix))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if heads.windows(2).all(|w| w[0] == w[1]) {
            return Ok(heads.into_iter().next().unwrap_or_default());
        }
        if Instant::now() > deadline {
            bail!("the daemons did not converge on {doc_prefix} within {within:?}: {heads:?}");
        }
        // Sleep on the event streams: any sync or change event is a reason to look again.
        for sub in &mut subs {
            let _ = sub.next_event()?;
        }
    }
}

/// Waits for an event matching `want` on a subscription.
pub fn wait_for_event(
    sub: &mut Subscription,
    want: impl Fn(&hearth_api::Event) -> bool,
) -> anyhow::Result<hearth_api::Event> {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(line) = sub.next_event()? {
            if want(&line.event) {
                return Ok(line.event);
            }
        }
    }
    bail!("the expected event did not arrive within {EVENT_TIMEOUT:?}")
}

/// How the hosts of a [`Lan`] are linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// No link: each host has only `lo`.
    None,
    /// One shared link with IPv4 addresses `198.18.77.N/24` (and the kernel's IPv6
    /// link-local addresses).
    Ipv4,
    /// One shared link with nothing but IPv6 link-local addresses `fe80::N`.
    Ipv6LinkLocal,
}

/// A small network built out of Linux network namespaces, for tests of real mDNS.
///
/// Every host is a namespace of its own with `lo` up and an `eth0` whose other end sits
/// on a bridge inside a hub namespace, so the hosts share one link and nothing touches
/// the machine's own interfaces or addresses. IPv4 addresses come from `198.18.0.0/15`
/// (set aside for benchmarking) and live inside the namespaces only. Dropping the `Lan`
/// deletes every namespace it made, which also deletes the links and the bridge.
pub struct Lan {
    hub: String,
    hosts: Vec<String>,
    link: Link,
}

impl Lan {
    /// Why tests of real mDNS cannot run here, if they cannot: they need root and
    /// iproute2.
    pub fn unavailable() -> Option<String> {
        if !rustix::process::geteuid().is_root() {
            return Some("not running as root, so no network namespaces".into());
        }
        let ip = Command::new("ip")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !ip.is_ok_and(|s| s.success()) {
            return Some("`ip` (iproute2) is not installed".into());
        }
        // Root in a container may still be refused namespaces.
        static PROBES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = format!("hearth-probe-{}-{n}", std::process::id());
        if netns_add(&probe).is_err() {
            return Some("`ip netns add` is refused here".into());
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &probe])
            .stderr(Stdio::null())
            .status();
        None
    }

    /// Creates `hosts` namespaces named `hearth-<tag>-<pid>-<n>`, joined as `link` says.
    pub fn create(tag: &str, hosts: usize, link: Link) -> anyhow::Result<Lan> {
        let base = format!("hearth-{tag}-{}", std::process::id());
        let mut lan = Lan {
            hub: format!("{base}-hub"),
            hosts: Vec::new(),
            link,
        };
        let linked = link != Link::None;
        if linked {
            netns_add(&lan.hub)?;
            ip(
                &lan.hub,
                &[
                    "link",
                    "add",
                    "br0",
                    "type",
                    "bridge",
                    "mcast_snooping",
                    "0",
                ],
            )?;
            ip(&lan.hub, &["link", "set", "br0", "up"])?;
        }
        for n in 1..=hosts {
            let ns = format!("{base}-{n}");
            netns_add(&ns)?;
            lan.hosts.push(ns.clone());
            ip(&ns, &["link", "set", "lo", "up"])?;
            if linked {
                let port = format!("v{n}");
                ip(
                    &lan.hub,
                    &[
                        "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                    ],
                )?;
                ip(&lan.hub, &["link", "set", &port, "master", "br0", "up"])?;
                if link == Link::Ipv6LinkLocal {
                    // A fixed link-local address, usable at once (no duplicate
                    // detection), and no address generated by the kernel beside it.
                    ip(&ns, &["link", "set", "eth0", "addrgenmode", "none"])?;
                    ip(
                        &ns,
                        &[
                            "addr",
                            "add",
                            &format!("fe80::{n}/64"),
                            "dev",
                            "eth0",
                            "nodad",
                        ],
                    )?;
                } else {
                    ip(
                        &ns,
                        &["addr", "add", &format!("198.18.77.{n}/24"), "dev", "eth0"],
                    )?;
                }
                ip(&ns, &["link", "set", "eth0", "up"])?;
            }
        }
        Ok(lan)
    }

    /// The namespace of host `n` (from 1).
    pub fn ns(&self, n: usize) -> &str {
        self.hosts.get(n.wrapping_sub(1)).map_or("", String::as_str)
    }

    /// The address of host `n` (from 1) on the shared link.
    pub fn addr(&self, n: usize) -> String {
        match self.link {
            Link::Ipv6LinkLocal => format!("fe80::{n}"),
            _ => format!("198.18.77.{n}"),
        }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain(std::iter::once(&self.hub)) {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn netns_add(ns: &str) -> anyhow::Result<()> {
    // A namespace left by a run that was killed before its guard dropped.
    let _ = Command::new("ip")
        .args(["netns", "del", ns])
        .stderr(Stdio::null())
        .status();
    let status = Command::new("ip")
        .args(["netns", "add", ns])
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("`ip netns add {ns}` failed ({status})");
    }
    Ok(())
}

fn ip(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("ip").arg("-n").arg(ns).args(args).status()?;
    if !status.success() {
        bail!("`ip -n {ns} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
