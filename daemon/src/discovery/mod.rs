//! Finding household devices and inviters on the local network without typing an
//! address, and without telling strangers who is there.
//!
//! This module owns what the daemon announces (see [`token`] for the labels) and what it
//! does with what it hears. It must not decide trust: a sighting is only a hint, an
//! address worth dialling. Whether the device behind it is a partner is settled by the
//! pinned QUIC handshake in [`crate::transport`], never here. A stranger who replays a
//! label gets a refused handshake and nothing else.
//!
//! The pieces:
//! - [`Discovery`] is the backend: announce a set of labels for our QUIC port, browse and
//!   report sightings. [`mdns::MdnsDiscovery`] speaks mDNS, under service types that
//!   rotate with the labels ([`token::household_service`], [`token::pairing_service`]);
//!   [`board::StaticDiscovery`] uses a rendezvous board (a directory, or memory) for
//!   tests and single-machine demos, and sends nothing on any network.
//! - [`Discoverer`] is the driver task: it announces the household label of the current
//!   hour under the household service type of that hour (and a pairing label under the
//!   pairing service type while an invite is open), tells the backend which types to
//!   browse (this and the previous hour's, for the household and for each pairing
//!   lookup), renews all of them when the hour turns
//!   and when this device's network changes,
//!   matches sightings against this and the previous hour, hands household devices'
//!   addresses to the network driver, and answers `pair join` lookups.

pub mod board;
pub mod mdns;
pub mod token;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngCore;
use tokio::sync::{mpsc, oneshot, watch};
use zeroize::Zeroizing;

use token::Salt;

/// What a device announces: each label, with the DNS-SD service type it goes under.
pub type Announcements = std::collections::BTreeMap<String, String>;

/// Sightings remembered at once; older ones are dropped first, so a flood of junk
/// announcements cannot grow memory.
const MAX_SEEN: usize = 256;
/// Our own recent labels, skipped when we hear them back.
const OWN_LABELS: usize = 16;

/// Problems starting or running discovery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The configured mode is not one Hearth knows.
    #[error("discovery = \"{0}\" is not a mode Hearth knows; use mdns, static or off in config.toml or HEARTH_DISCOVERY")]
    UnknownMode(String),
    /// The mDNS responder could not start or refused a request.
    #[error("mDNS failed: {0}; set discovery = \"off\" (or HEARTH_DISCOVERY=off) and add peers with `hearth peers add`, or check the network interfaces in mdns_interfaces")]
    Mdns(String),
    /// The static rendezvous board could not be read or written.
    #[error("the discovery board at {path} failed: {source}; check that the directory exists and is writable, or unset HEARTH_DISCOVERY_DIR")]
    Board {
        /// The board directory.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The backend was asked to browse twice, or after it stopped.
    #[error(
        "discovery is not running; restart the daemon with `hearth daemon stop` and any command"
    )]
    NotRunning,
}

/// How the daemon finds peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only configured and remembered addresses.
    Off,
    /// A rendezvous board on this machine (`HEARTH_DISCOVERY_DIR`); without one, like
    /// `Off`.
    Static,
    /// Multicast DNS on the configured interfaces.
    Mdns,
}

impl Mode {
    /// The mode for a config value (`mdns`, `static`, `off`; `false` and `true` too,
    /// so `discovery = "false"` reads as it should).
    pub fn parse(value: &str) -> Result<Mode, DiscoveryError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "mdns" | "true" | "on" => Ok(Mode::Mdns),
            "static" => Ok(Mode::Static),
            "off" | "false" | "none" => Ok(Mode::Off),
            _ => Err(DiscoveryError::UnknownMode(value.to_string())),
        }
    }
}

/// What a backend heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// An announcement and the addresses known for it so far. The same label may come
    /// again with more addresses: the first event often carries only one family.
    Found {
        /// The announced label.
        label: String,
        /// Where it says it listens.
        addrs: Vec<SocketAddr>,
    },
    /// An announcement was withdrawn or expired.
    Gone {
        /// The label.
        label: String,
    },
    /// This device's own network addresses changed (it joined or left a network).
    NetworkChanged,
}

/// A future a backend returns from [`Discovery::shutdown`].
pub type Stopping = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A way to announce labels and hear other devices' labels.
pub trait Discovery: Send + Sync {
    /// Announces exactly `labels` (label to service type), each for QUIC `port`,
    /// withdrawing any others this backend announced before (with a goodbye where the
    /// medium has one).
    fn announce(&self, labels: &Announcements, port: u16) -> Result<(), DiscoveryError>;
    /// The service types to browse from now on. A backend that is asking the network
    /// stops asking for types no longer listed and starts on new ones; a backend with
    /// no service types (the static board) ignores this.
    fn set_services(&self, _services: &BTreeSet<String>) {}
    /// Starts browsing. Sightings arrive on the returned channel until shutdown. A
    /// backend may stop asking after a while to save battery (answering still works, and
    /// arriving devices ask); [`Discovery::requery`] asks again.
    fn browse(&self) -> Result<mpsc::UnboundedReceiver<Seen>, DiscoveryError>;
    /// Asks again now, for someone who is waiting (a pairing lookup).
    fn requery(&self);
    /// Withdraws every announcement and stops.
    fn shutdown(&self) -> Stopping;
}

/// What the driver needs from the daemon's pairing state, which implements it.
pub trait Keys: Send + Sync {
    /// The household secret of the current epoch, once there is one. Labels are
    /// announced from it only.
    fn household_secret(&self) -> Option<Zeroizing<[u8; 32]>>;
    /// The household secrets whose labels are answered: the current epoch's number
    /// only. Older epochs are ones a removed device may hold (epochs move on only when
    /// trust shrinks), so their labels are ignored; a device that missed a change is
    /// reached by its remembered address instead, and learns the new epoch then.
    fn discoverable_secrets(&self) -> Vec<Zeroizing<[u8; 32]>> {
        self.household_secret().into_iter().collect()
    }
    /// The number part of the open invite's code, while one is open.
    fn open_invite_number(&self) -> Option<u8>;
    /// Changes whenever either of the above may have changed.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// Where the driver sends household devices' addresses.
pub trait PeerSink: Send + Sync {
    /// Addresses announced under one household label, best first, to try until one
    /// answers. Later calls for the same label bring addresses that arrived since.
    fn offer(&self, label: &str, addrs: Vec<SocketAddr>);
    /// The label was withdrawn.
    fn forget(&self, label: &str);
}

/// Unix seconds, for the token hour.
pub type Clock = fn() -> u64;

/// The wall clock, shifted by `HEARTH_CLOCK_OFFSET_SECS` when that is set: tests use it
/// to reach the turn of the hour without waiting for it. Devices whose hours differ by
/// more than one do not recognise each other's labels.
pub fn system_clock() -> u64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let offset = *OFFSET.get_or_init(|| {
        std::env::var("HEARTH_CLOCK_OFFSET_SECS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    });
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_add_signed(offset)
}

enum Command {
    FindInviter {
        number: u8,
        reply: mpsc::UnboundedSender<Vec<SocketAddr>>,
    },
    Stop(oneshot::Sender<()>),
}

/// The running discovery driver.
pub struct Discoverer {
    commands: mpsc::UnboundedSender<Command>,
    mode: Mode,
    stopped: Mutex<bool>,
}

impl Discoverer {
    /// Starts the driver on `backend`, announcing QUIC `port`.
    pub fn start(
        mode: Mode,
        backend: Arc<dyn Discovery>,
        port: u16,
        keys: Arc<dyn Keys>,
        sink: Arc<dyn PeerSink>,
        clock: Clock,
    ) -> Result<Arc<Discoverer>, DiscoveryError> {
        let sightings = backend.browse()?;
        let (commands, inbox) = mpsc::unbounded_channel();
        let driver = Driver {
            backend,
            port,
            changes: keys.changes(),
            keys,
            sink,
            clock,
            hour: 0,
            household_salt: [0; token::SALT_LEN],
            pairing_salt: [0; token::SALT_LEN],
            announced: Announcements::new(),
            services: BTreeSet::new(),
            own: VecDeque::new(),
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
            offered: HashMap::new(),
            lookups: Vec::new(),
            look_around: None,
        };
        tokio::spawn(driver.run(sightings, inbox));
        Ok(Arc::new(Discoverer {
            commands,
            mode,
            stopped: Mutex::new(false),
        }))
    }

    /// The mode this driver runs in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Looks for an inviter whose open code has `number`. The receiver gets the
    /// addresses of each matching announcement as they arrive (only new ones each
    /// time), for as long as the caller keeps it: dropping it ends the lookup.
    pub fn find_inviter(&self, number: u8) -> mpsc::UnboundedReceiver<Vec<SocketAddr>> {
        let (reply, found) = mpsc::unbounded_channel();
        let _ = self.commands.send(Command::FindInviter { number, reply });
        found
    }

    /// Withdraws our announcements (mDNS goodbye packets) and stops the driver.
    pub async fn shutdown(&self) {
        if let Ok(mut stopped) = self.stopped.lock() {
            if *stopped {
                return;
            }
            *stopped = true;
        }
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Stop(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(3), rx).await;
        }
    }
}

struct Lookup {
    number: u8,
    reply: mpsc::UnboundedSender<Vec<SocketAddr>>,
    sent: HashMap<String, BTreeSet<SocketAddr>>,
}

struct Driver {
    backend: Arc<dyn Discovery>,
    port: u16,
    keys: Arc<dyn Keys>,
    changes: watch::Receiver<u64>,
    sink: Arc<dyn PeerSink>,
    clock: Clock,
    hour: u64,
    household_salt: Salt,
    pairing_salt: Salt,
    announced: Announcements,
    services: BTreeSet<String>,
    own: VecDeque<String>,
    seen: HashMap<String, BTreeSet<SocketAddr>>,
    seen_order: VecDeque<String>,
    offered: HashMap<String, BTreeSet<SocketAddr>>,
    lookups: Vec<Lookup>,
    look_around: Option<tokio::time::Instant>,
}

/// When, after the hour turns, to ask the network once more: somewhere between 10 and 50
/// minutes, drawn afresh each hour so that devices do not ask in step.
fn look_around_delay() -> Duration {
    use rand::Rng;
    Duration::from_secs(rand::rngs::OsRng.gen_range(600..3000))
}

impl Driver {
    async fn run(
        mut self,
        sightings: mpsc::UnboundedReceiver<Seen>,
        mut inbox: mpsc::UnboundedReceiver<Command>,
    ) {
        self.new_period((self.clock)());
        // Either input may end before the driver is told to stop; then it is no longer
        // polled, rather than polled in a loop that returns at once.
        let mut sightings = Some(sightings);
        let mut watching = true;
        loop {
            let wait = Duration::from_secs(token::secs_to_next_hour((self.clock)()));
            let changes = &mut self.changes;
            let changed = async {
                if watching {
                    changes.changed().await
                } else {
                    std::future::pending().await
                }
            };
            let seen = async {
                match sightings.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                command = inbox.recv() => match command {
                    Some(Command::Stop(done)) => {
                        self.backend.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(Command::FindInviter { number, reply }) => {
                        self.lookups.push(Lookup { number, reply, sent: HashMap::new() });
                        self.match_all();
                        self.update_services();
                        self.backend.requery();
                    }
                    None => {
                        self.backend.shutdown().await;
                        return;
                    }
                },
                changed = changed => {
                    // An error means pairing state is gone: the daemon is stopping.
                    watching = changed.is_ok();
                    self.reannounce();
                    self.match_all();
                    self.update_services();
                }
                seen = seen => match seen {
                    Some(Seen::Found { label, addrs }) => self.found(label, addrs),
                    Some(Seen::Gone { label }) => self.gone(&label),
                    Some(Seen::NetworkChanged) => {
                        // A device that moves to another network within the hour would
                        // otherwise carry the same label there, and someone on both
                        // networks could tell it was the same device.
                        tracing::debug!("the network changed; announcing a fresh label");
                        self.new_period((self.clock)());
                    }
                    None => {
                        tracing::warn!("discovery stopped browsing; peers will be found only at known addresses");
                        sightings = None;
                    }
                },
                () = tokio::time::sleep(wait) => {
                    // The timer may fire a moment before the wall clock turns the hour;
                    // then the loop waits the second or so that is left.
                    let now = (self.clock)();
                    if token::hour_of(now) != self.hour {
                        self.new_period(now);
                        self.look_around = Some(tokio::time::Instant::now() + look_around_delay());
                    }
                }
                () = async {
                    match self.look_around {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    // Once an hour, so that two idle devices that both missed each
                    // other's arrival (one asleep while the other asked) still meet.
                    // Not at the turn of the hour: peers' goodbyes for their old labels
                    // arrive then, and a running browse would chase each one with a
                    // burst of refresh queries.
                    self.look_around = None;
                    self.backend.requery();
                }
            }
        }
    }

    /// A new hour: fresh salts, new labels, and the previous hour's labels withdrawn.
    fn new_period(&mut self, now: u64) {
        self.hour = token::hour_of(now);
        rand::rngs::OsRng.fill_bytes(&mut self.household_salt);
        rand::rngs::OsRng.fill_bytes(&mut self.pairing_salt);
        self.reannounce();
        // Labels of the hour before still match for one more hour; re-check so that a
        // sighting made just before the turn is not lost.
        self.match_all();
        self.update_services();
    }

    /// The service types to browse: the household's and every pairing lookup's, for
    /// this hour and the one before. The household's come from the secrets whose
    /// labels are answered ([`Keys::discoverable_secrets`]).
    fn services(&self) -> BTreeSet<String> {
        let mut services = BTreeSet::new();
        for secret in &self.keys.discoverable_secrets() {
            services.extend(token::household_services(secret, self.hour));
        }
        for lookup in &self.lookups {
            if !lookup.reply.is_closed() {
                services.extend(token::pairing_services(lookup.number, self.hour));
            }
        }
        services
    }

    fn update_services(&mut self) {
        let services = self.services();
        if services != self.services {
            self.backend.set_services(&services);
            self.services = services;
        }
    }

    fn labels(&self) -> Announcements {
        let mut labels = Announcements::new();
        if let Some(secret) = self.keys.household_secret() {
            labels.insert(
                token::household_label(&secret, self.hour, &self.household_salt),
                token::household_service(&secret, self.hour),
            );
        }
        if let Some(number) = self.keys.open_invite_number() {
            labels.insert(
                token::pairing_label(number, self.hour, &self.pairing_salt),
                token::pairing_service(number, self.hour),
            );
        }
        labels
    }

    fn reannounce(&mut self) {
        let labels = self.labels();
        if labels == self.announced {
            return;
        }
        for label in labels.keys() {
            if !self.own.contains(label) {
                self.own.push_back(label.clone());
                if self.own.len() > OWN_LABELS {
                    self.own.pop_front();
                }
            }
        }
        match self.backend.announce(&labels, self.port) {
            Ok(()) => {
                tracing::debug!(count = labels.len(), "announced this device");
                self.announced = labels;
            }
            Err(e) => tracing::warn!(error = %e, "could not announce this device"),
        }
    }

    fn found(&mut self, label: String, addrs: Vec<SocketAddr>) {
        if self.own.contains(&label) || token::parse_label(&label).is_none() {
            return;
        }
        if !self.seen.contains_key(&label) {
            self.seen_order.push_back(label.clone());
            if self.seen_order.len() > MAX_SEEN {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                    self.offered.remove(&old);
                }
            }
        }
        self.seen.entry(label.clone()).or_default().extend(addrs);
        self.match_label(&label);
    }

    fn gone(&mut self, label: &str) {
        if self.seen.remove(label).is_some() {
            self.seen_order.retain(|l| l != label);
        }
        if self.offered.remove(label).is_some() {
            self.sink.forget(label);
        }
        for lookup in &mut self.lookups {
            lookup.sent.remove(label);
        }
    }

    fn match_all(&mut self) {
        self.lookups.retain(|l| !l.reply.is_closed());
        let labels: Vec<String> = self.seen.keys().cloned().collect();
        for label in labels {
            self.match_label(&label);
        }
    }

    fn match_label(&mut self, label: &str) {
        let Some(addrs) = self.seen.get(label) else {
            return;
        };
        // Labels made under the current epoch only: see `Keys::discoverable_secrets`.
        let secrets = self.keys.discoverable_secrets();
        if secrets
            .iter()
            .any(|secret| token::is_household(label, secret, self.hour))
        {
            let offered = self.offered.entry(label.to_string()).or_default();
            let fresh: Vec<SocketAddr> = addrs.difference(offered).copied().collect();
            if !fresh.is_empty() {
                offered.extend(fresh.iter().copied());
                tracing::debug!(
                    addresses = fresh.len(),
                    "discovery found a household device"
                );
                self.sink.offer(label, order(fresh));
            }
            return;
        }
        for lookup in &mut self.lookups {
            if lookup.reply.is_closed() || !token::is_pairing(label, lookup.number, self.hour) {
                continue;
            }
            let sent = lookup.sent.entry(label.to_string()).or_default();
            let fresh: Vec<SocketAddr> = addrs.difference(sent).copied().collect();
            if !fresh.is_empty() {
                sent.extend(fresh.iter().copied());
                let _ = lookup.reply.send(order(fresh));
            }
        }
    }
}

/// Orders addresses to try: IPv4 first (it works on the most networks and with an
/// IPv4-only socket), then routable IPv6, then IPv6 link-local (with its scope id).
/// The network driver puts the last address that worked before all of these.
pub fn order(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    fn rank(addr: &SocketAddr) -> u8 {
        match addr.ip() {
            IpAddr::V4(_) => 0,
            IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => 2,
            IpAddr::V6(_) => 1,
        }
    }
    addrs.sort_by_key(|a| (rank(a), *a));
    addrs.dedup();
    addrs
}

/// Whether `addr` can be dialled from a socket bound to `local`: an IPv4 socket
/// reaches only IPv4; an IPv6 socket bound to `[::]` reaches both.
pub fn dialable(local: SocketAddr, addr: &SocketAddr) -> bool {
    match (local.ip(), addr.ip()) {
        (IpAddr::V4(l), IpAddr::V4(a)) => l.is_unspecified() || l.is_loopback() == a.is_loopback(),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
        (IpAddr::V6(l), IpAddr::V4(_)) => l.is_unspecified(),
        (IpAddr::V6(l), IpAddr::V6(a)) => l.is_unspecified() || l.is_loopback() == a.is_loopback(),
    }
}

/// The backend for `mode`, or `None` when discovery is off.
///
/// `listen` is the QUIC socket's address: the static board announces it (or loopback
/// when it is bound to every interface).
pub fn backend(
    mode: Mode,
    interfaces: &[String],
    listen: SocketAddr,
) -> Result<Option<Arc<dyn Discovery>>, DiscoveryError> {
    match mode {
        Mode::Off => Ok(None),
        Mode::Static => {
            let Some(dir) = std::env::var_os("HEARTH_DISCOVERY_DIR") else {
                return Ok(None);
            };
            let ip = if listen.ip().is_unspecified() {
                match listen {
                    SocketAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
                    SocketAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                }
            } else {
                listen.ip()
            };
            let board = board::Board::dir(std::path::PathBuf::from(dir))?;
            Ok(Some(Arc::new(board::StaticDiscovery::new(board, ip))))
        }
        Mode::Mdns => Ok(Some(Arc::new(mdns::MdnsDiscovery::new(interfaces)?))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
