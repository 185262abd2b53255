//! The network driver: accepts and dials QUIC connections and moves sync frames between
//! them and the document owner.
//!
//! It owns no protocol state. For each authenticated `hearth/1` connection it opens (or
//! accepts) one bidirectional stream, decodes frames into messages for the owner, and
//! writes back whatever the owner sends. It also keeps the address book: static peers,
//! and the last address that worked for each device.
//!
//! **One connection per device.** A new connection from a device replaces the old one at
//! once, because a peer that dials again has restarted or lost its link, and waiting
//! for the old one to time out would stall sync for seconds. The one exception is
//! two devices dialling each other at the same moment: then the connection dialled by the
//! smaller device id wins on both sides, so they do not replace each other in a loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_core::identity::DeviceId;
use hearth_core::sync::{FrameDecoder, Role};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};

use crate::actor::{ActorHandle, ActorMsg};
use crate::pairing::Pairing;
use crate::storage::DataDir;
use crate::sync_hub::{ConnId, Outbound, SendQueue};
use crate::transport::{self, Alpn, CloseReason, Transport};

/// A connection this recent that we dialled is kept when the same peer dials us, if our
/// device id is the smaller: both sides then agree on which one survives.
const SIMULTANEOUS_DIAL: Duration = Duration::from_secs(2);
/// How long one dial to an address that discovery found may take before the next
/// address of the same announcement is tried.
const OFFER_DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Announcements whose dial state is kept at once; discovery forgets withdrawn ones.
const MAX_OFFERS: usize = 64;
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The backoff cap for an address whose device was connected within
/// [`RECENTLY_LOST`]: after a network outage both sides must find each other again
/// within seconds of it ending, while a device that has been away for long (a closed
/// laptop) is not dialled more than once a minute.
const BACKOFF_MAX_RECENT: Duration = Duration::from_secs(3);
const RECENTLY_LOST: Duration = Duration::from_secs(10 * 60);
/// How long a writer may wait for the peer to take any of a waiting frame before the
/// link is closed and redialled. QUIC's idle timeout catches a silent peer; this
/// catches one whose QUIC stack answers but whose sync side stopped reading.
pub const WRITE_STALL: Duration = Duration::from_secs(20);

mod book;

/// Addresses this device knows, saved across restarts, sealed (see `book`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddressBook {
    /// Peers added with `hearth peers add` or pairing, dialled without discovery.
    #[serde(default)]
    pub static_peers: BTreeSet<String>,
    /// The last address that worked, per device id.
    #[serde(default)]
    pub last_addr: BTreeMap<String, String>,
}

/// Sync traffic with one device: frame bytes as written to and read from the stream,
/// without QUIC's own overhead.
#[derive(Debug, Clone, Copy, Default)]
pub struct Traffic {
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// Frames written.
    pub frames_sent: u64,
    /// Frames read.
    pub frames_received: u64,
}

struct LiveConn {
    id: ConnId,
    connection: quinn::Connection,
    dialled: bool,
    since: Instant,
}

/// Addresses discovery found under one label, and how dialling them went.
#[derive(Default)]
struct Offer {
    queue: std::collections::VecDeque<SocketAddr>,
    tried: BTreeSet<SocketAddr>,
    running: bool,
    device: Option<String>,
}

struct Backoff {
    wait: Duration,
    next: Instant,
}

/// The network driver's shared state.
pub struct Net {
    transport: Transport,
    actor: ActorHandle,
    me: DeviceId,
    data_dir: DataDir,
    /// This device's age recipient, which the address book is sealed to.
    recipient: age::x25519::Recipient,
    config_peers: Vec<String>,
    book: Mutex<AddressBook>,
    live: Mutex<HashMap<String, LiveConn>>,
    traffic: Mutex<HashMap<String, Traffic>>,
    backoff: Mutex<HashMap<String, Backoff>>,
    next_conn: AtomicU64,
    wake: Notify,
    pairing: Pairing,
    offers: Mutex<HashMap<String, Offer>>,
    /// When each address last lost a live connection, for the fast redial backoff.
    lost: Mutex<HashMap<String, Instant>>,
    /// Devices that refused this one at the handshake when it last dialled them: their
    /// person removed this device, as far as they are concerned.
    refused_by: Mutex<BTreeSet<String>>,
}

/// An address as this device keys it: a dual-stack socket sees an IPv4 peer as
/// `::ffff:a.b.c.d`, which is the same peer as its plain IPv4 form. Any other IPv6
/// address keeps its scope id, without which a link-local one cannot be dialled.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

impl Net {
    /// Starts accepting and dialling.
    pub fn start(
        transport: Transport,
        actor: ActorHandle,
        me: DeviceId,
        data_dir: DataDir,
        identity: &age::x25519::Identity,
        config_peers: Vec<String>,
        pairing: Pairing,
    ) -> Arc<Net> {
        let book = book::load(&data_dir, identity);
        let net = Arc::new(Net {
            transport,
            actor,
            me,
            data_dir,
            recipient: identity.to_public(),
            config_peers,
            book: Mutex::new(book),
            live: Mutex::new(HashMap::new()),
            traffic: Mutex::new(HashMap::new()),
            backoff: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            wake: Notify::new(),
            pairing,
            offers: Mutex::new(HashMap::new()),
            lost: Mutex::new(HashMap::new()),
            refused_by: Mutex::new(BTreeSet::new()),
        });
        tokio::spawn(net.clone().accept_loop());
        tokio::spawn(net.clone().dial_loop());
        net
    }

    /// The transport, for pairing.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Addresses we listen on, for `status` and `pair invite`.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        let Ok(local) = self.transport.local_addr() else {
            return Vec::new();
        };
        if !local.ip().is_unspecified() {
            return vec![local];
        }
        // Bound to every interface: list loopback (IPv4 reaches a dual-stack `[::]` as
        // well); discovery finds the rest.
        vec![SocketAddr::new(
            std::net::Ipv4Addr::LOCALHOST.into(),
            local.port(),
        )]
    }

    /// Devices that refused this one at the handshake the last time it dialled them.
    pub fn refused_by(&self) -> BTreeSet<String> {
        self.refused_by
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Remembers a device that refused this one at a dial's handshake, as its cover
    /// certificate claimed (see the transport docs), for `status`.
    fn note_refusal(&self, error: &transport::TransportError) {
        if let transport::TransportError::RefusedByPeer {
            by: Some(device), ..
        } = error
        {
            tracing::info!(peer = %device, "a device no longer accepts this one");
            if let Ok(mut refused) = self.refused_by.lock() {
                refused.insert(device.to_string());
            }
        }
    }

    /// Sync traffic per device since this daemon started.
    pub fn traffic(&self) -> HashMap<String, Traffic> {
        self.traffic.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn count(&self, device: &DeviceId, update: impl FnOnce(&mut Traffic)) {
        if let Ok(mut traffic) = self.traffic.lock() {
            update(traffic.entry(device.to_string()).or_default());
        }
    }

    /// A copy of the address book.
    pub fn book(&self) -> AddressBook {
        self.book.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Remembers a static peer and dials it now.
    pub fn add_static(&self, addr: SocketAddr) {
        if let Ok(mut book) = self.book.lock() {
            book.static_peers.insert(addr.to_string());
        }
        self.save_book();
        self.dial_now();
    }

    /// Records the address that worked for a device.
    pub fn remember(&self, device: &DeviceId, addr: SocketAddr) {
        let addr = canonical(addr);
        let changed = self.book.lock().is_ok_and(|mut book| {
            book.last_addr.insert(device.to_string(), addr.to_string()) != Some(addr.to_string())
        });
        if changed {
            self.save_book();
        }
    }

    /// Skips every backoff and dials everyone not connected.
    pub fn dial_now(&self) {
        if let Ok(mut b) = self.backoff.lock() {
            b.clear();
        }
        self.wake.notify_one();
    }

    /// Takes addresses that discovery found under one household label, best first, and
    /// dials them one after another until one answers. Resolution is only a hint: the
    /// handshake decides whether the device is trusted.
    ///
    /// Nothing is dialled when a connected device already uses one of the addresses,
    /// or when this label already led to a device that is connected; an address is
    /// tried once per label (the dial loop keeps redialling the one that worked).
    pub fn offer(self: &Arc<Self>, label: &str, addrs: Vec<SocketAddr>) {
        let Ok(local) = self.transport.local_addr() else {
            return;
        };
        let mut addrs: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| crate::discovery::dialable(local, a))
            .collect();
        if addrs.is_empty() || self.connected_at(&addrs) {
            return;
        }
        // The last address that worked for any device goes first.
        let known: BTreeSet<String> = self.book().last_addr.into_values().collect();
        addrs.sort_by_key(|a| !known.contains(&a.to_string()));
        let start = {
            let Ok(live) = self
                .live
                .lock()
                .map(|l| l.keys().cloned().collect::<BTreeSet<_>>())
            else {
                return;
            };
            let Ok(mut offers) = self.offers.lock() else {
                return;
            };
            if !offers.contains_key(label) && offers.len() >= MAX_OFFERS {
                offers.retain(|_, o| o.running);
            }
            let offer = offers.entry(label.to_string()).or_default();
            if offer.device.as_ref().is_some_and(|d| live.contains(d)) {
                return;
            }
            for addr in addrs {
                if offer.tried.insert(addr) {
                    offer.queue.push_back(addr);
                }
            }
            let start = !offer.running && !offer.queue.is_empty();
            offer.running |= start;
            start
        };
        if start {
            tokio::spawn(self.clone().dial_offer(label.to_string()));
        }
    }

    /// Forgets a label discovery saw withdrawn.
    pub fn forget_offer(&self, label: &str) {
        if let Ok(mut offers) = self.offers.lock() {
            offers.remove(label);
        }
    }

    /// Whether a live connection's peer address is among `addrs`.
    fn connected_at(&self, addrs: &[SocketAddr]) -> bool {
        // By address and port alone: the scope id a connection reports may differ in form
        // from the one discovery heard.
        let key = |a: SocketAddr| {
            let a = canonical(a);
            (a.ip(), a.port())
        };
        let wanted: BTreeSet<_> = addrs.iter().copied().map(key).collect();
        self.live.lock().is_ok_and(|live| {
            live.values()
                .any(|c| wanted.contains(&key(c.connection.remote_address())))
        })
    }

    async fn dial_offer(self: Arc<Self>, label: String) {
        loop {
            let next = self.offers.lock().ok().and_then(|mut offers| {
                let offer = offers.get_mut(&label)?;
                let next = offer.queue.pop_front();
                offer.running = next.is_some();
                next
            });
            let Some(addr) = next else {
                return;
            };
            let dialled = tokio::time::timeout(
                OFFER_DIAL_TIMEOUT,
                self.transport.connect(addr, Alpn::Sync, None),
            )
            .await;
            let dialed = match dialled {
                Ok(Ok(dialed)) => dialed,
                Ok(Err(e)) => {
                    self.note_refusal(&e);
                    tracing::debug!(%addr, error = %e, "a discovered address did not lead to a household device");
                    continue;
                }
                Err(_) => {
                    tracing::debug!(%addr, "a discovered address did not answer in time");
                    continue;
                }
            };
            let device = dialed.peer_device_id();
            let connection = dialed.connection;
            if let Ok(mut offers) = self.offers.lock() {
                if let Some(offer) = offers.get_mut(&label) {
                    offer.device = Some(device.to_string());
                    offer.queue.clear();
                    offer.running = false;
                }
            }
            tracing::debug!(peer = %device, %addr, "reached a device that discovery found");
            self.remember(&device, addr);
            self.run_link(connection, device, Role::Initiator).await;
            return;
        }
    }

    fn save_book(&self) {
        if let Err(e) = book::save(&self.data_dir, &self.recipient, &self.book()) {
            tracing::warn!(error = %e, "could not save the address book");
        }
    }

    async fn accept_loop(self: Arc<Self>) {
        while let Some(incoming) = self.transport.accept().await {
            let net = self.clone();
            tokio::spawn(async move {
                match incoming.handshake().await {
                    Ok(accepted) if accepted.alpn == Alpn::Sync => {
                        let device = accepted.peer_device_id();
                        // A peer dials from its one QUIC endpoint, which is also where
                        // it listens. Remembering that address lets this device dial it
                        // right after its own restart; otherwise the peer would sit on
                        // its dead connection until the idle timeout.
                        net.remember(&device, accepted.connection.remote_address());
                        net.clone()
                            .run_link(accepted.connection, device, Role::Responder)
                            .await;
                    }
                    Ok(accepted) => {
                        crate::pairing::accept(net.pairing.clone(), accepted).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "an incoming connection was refused"),
                }
            });
        }
    }

    fn targets(&self) -> Vec<SocketAddr> {
        let book = self.book();
        let connected: BTreeSet<String> = self
            .live
            .lock()
            .map(|l| l.keys().cloned().collect())
            .unwrap_or_default();
        let mut addrs: BTreeSet<String> = book.static_peers.clone();
        addrs.extend(self.config_peers.iter().cloned());
        for (device, addr) in &book.last_addr {
            if !connected.contains(device) {
                addrs.insert(addr.clone());
            }
        }
        // An address whose device is connected needs no dial.
        for (device, addr) in &book.last_addr {
            if connected.contains(device) {
                addrs.remove(addr);
            }
        }
        addrs.iter().filter_map(|a| a.parse().ok()).collect()
    }

    async fn dial_loop(self: Arc<Self>) {
        loop {
            let now = Instant::now();
            let mut next_due: Option<Instant> = None;
            for addr in self.targets() {
                let key = addr.to_string();
                let due = self
                    .backoff
                    .lock()
                    .map(|b| b.get(&key).map_or(now, |s| s.next))
                    .unwrap_or(now);
                if due > now {
                    next_due = Some(next_due.map_or(due, |n: Instant| n.min(due)));
                    continue;
                }
                // Mark as in flight until the attempt reports back, and wake for the
                // next attempt: one that never answers must not leave this loop
                // asleep for the longest backoff.
                let next = self.bump_backoff(&key);
                next_due = Some(next_due.map_or(next, |n: Instant| n.min(next)));
                let net = self.clone();
                tokio::spawn(async move { net.dial(addr).await });
            }
            let sleep =
                next_due.map_or(BACKOFF_MAX, |d| d.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Pushes the next attempt on `key` back, and returns when it is due.
    fn bump_backoff(&self, key: &str) -> Instant {
        let recent = self
            .lost
            .lock()
            .is_ok_and(|lost| lost.get(key).is_some_and(|at| at.elapsed() < RECENTLY_LOST));
        let cap = if recent {
            BACKOFF_MAX_RECENT
        } else {
            BACKOFF_MAX
        };
        if let Ok(mut map) = self.backoff.lock() {
            let entry = map.entry(key.to_string()).or_insert(Backoff {
                wait: BACKOFF_MIN,
                next: Instant::now(),
            });
            let jitter = rand::thread_rng().gen_range(0.5..1.5);
            entry.next = Instant::now() + entry.wait.mul_f64(jitter);
            entry.wait = (entry.wait * 2).min(cap);
            return entry.next;
        }
        Instant::now() + cap
    }

    async fn dial(self: Arc<Self>, addr: SocketAddr) {
        match self.transport.connect(addr, Alpn::Sync, None).await {
            Ok(dialed) => {
                let device = dialed.peer_device_id();
                let connection = dialed.connection;
                // The backoff is reset only once the peer has answered on the link
                // (in run_link): a connection the peer closes at once, because it
                // still holds one it believes is alive, must not be redialled in a
                // tight loop.
                self.remember(&device, addr);
                self.run_link(connection, device, Role::Initiator).await;
            }
            Err(e) => {
                self.note_refusal(&e);
                tracing::debug!(%addr, error = %e, "could not reach a peer; will retry");
            }
        }
    }

    /// Registers a connection under its device, applying the one-connection rule.
    fn register(
        &self,
        device: &DeviceId,
        connection: &quinn::Connection,
        dialled: bool,
    ) -> Option<ConnId> {
        let mut live = self.live.lock().ok()?;
        let key = device.to_string();
        if let Some(existing) = live.get(&key) {
            let simultaneous =
                existing.dialled != dialled && existing.since.elapsed() < SIMULTANEOUS_DIAL;
            // Keep the connection dialled by the smaller device id.
            let keep_existing = simultaneous && {
                let existing_dialler_is_me = existing.dialled;
                let me_smaller = self.me.to_string() < key;
                existing_dialler_is_me == me_smaller
            };
            if keep_existing {
                transport::close(connection, CloseReason::Replaced);
                return None;
            }
            transport::close(&existing.connection, CloseReason::Replaced);
        }
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        live.insert(
            key,
            LiveConn {
                id,
                connection: connection.clone(),
                dialled,
                since: Instant::now(),
            },
        );
        Some(id)
    }

    fn unregister(&self, device: &DeviceId, conn: ConnId) {
        if let Ok(mut live) = self.live.lock() {
            if live.get(&device.to_string()).is_some_and(|c| c.id == conn) {
                live.remove(&device.to_string());
            }
        }
        if let Some(addr) = self.book().last_addr.get(&device.to_string()) {
            if let Ok(mut lost) = self.lost.lock() {
                lost.insert(addr.clone(), Instant::now());
            }
        }
        // A lost connection is worth redialling promptly.
        self.wake.notify_one();
    }

    /// Runs one sync connection until it ends.
    async fn run_link(
        self: Arc<Self>,
        connection: quinn::Connection,
        device: DeviceId,
        role: Role,
    ) {
        let dialled = role == Role::Initiator;
        let Some(conn) = self.register(&device, &connection, dialled) else {
            return;
        };
        let streams = if dialled {
            connection.open_bi().await
        } else {
            connection.accept_bi().await
        };
        let (send, mut recv) = match streams {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer = %device, error = %e, "the sync stream could not be opened");
                self.unregister(&device, conn);
                return;
            }
        };
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let queue = Arc::new(SendQueue::default());
        if self
            .actor
            .send(ActorMsg::PeerConnected {
                conn,
                device,
                role,
                out: out_tx,
                queue: queue.clone(),
            })
            .await
            .is_err()
        {
            return;
        }
        // Reading and writing run apart, so that a write waiting for the peer's flow
        // control credit never stops this side from reading: two peers that both have
        // more to send than a stream window would otherwise wait on each other forever.
        let writer = tokio::spawn(self.clone().write_link(
            connection.clone(),
            send,
            out_rx,
            queue,
            conn,
            device,
        ));
        self.read_link(&connection, &mut recv, conn, device, dialled)
            .await;
        writer.abort();
        let _ = self.actor.send(ActorMsg::PeerClosed { conn }).await;
        self.unregister(&device, conn);
    }

    /// Reads frames until the connection ends, handing each message to the owner.
    async fn read_link(
        &self,
        connection: &quinn::Connection,
        recv: &mut quinn::RecvStream,
        conn: ConnId,
        device: DeviceId,
        dialled: bool,
    ) {
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        // A dialled connection counts as established once the peer's first frame
        // arrives (see the transport docs); only then is its address's backoff reset.
        let mut answered = !dialled;
        loop {
            let n = match recv.read(&mut buf).await {
                Ok(Some(n)) => n,
                Err(quinn::ReadError::ConnectionLost(e)) if !answered => {
                    // A dialled peer that refuses this device's key closes the
                    // connection before its first frame.
                    if matches!(
                        transport::connection_error(connection, e),
                        transport::TransportError::RefusedByPeer { .. }
                    ) {
                        tracing::info!(peer = %device, "a device no longer accepts this one");
                        if let Ok(mut refused) = self.refused_by.lock() {
                            refused.insert(device.to_string());
                        }
                    }
                    return;
                }
                Ok(None) | Err(_) => return,
            };
            if !answered {
                answered = true;
                if let Ok(mut refused) = self.refused_by.lock() {
                    refused.remove(&device.to_string());
                }
                if let Ok(mut b) = self.backoff.lock() {
                    b.remove(&canonical(connection.remote_address()).to_string());
                }
            }
            self.count(&device, |t| t.bytes_received += n as u64);
            let bad = match decoder.push(&buf[..n]) {
                Err(e) => Some(e),
                Ok(()) => loop {
                    match decoder.next_message() {
                        Ok(Some(message)) => {
                            self.count(&device, |t| t.frames_received += 1);
                            let sent = self
                                .actor
                                .send(ActorMsg::PeerMessage { conn, message })
                                .await;
                            if sent.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break None,
                        Err(e) => break Some(e),
                    }
                },
            };
            if let Some(e) = bad {
                tracing::info!(peer = %device, error = %e, "closing a connection that sent a bad frame");
                connection.close(e.code().as_u32().into(), b"bad frame");
                return;
            }
        }
    }

    /// Writes what the owner queues for one connection until the owner or the
    /// connection ends it. A peer that takes none of the waiting bytes for
    /// [`WRITE_STALL`] is given up on: the connection is closed and redialled.
    async fn write_link(
        self: Arc<Self>,
        connection: quinn::Connection,
        mut send: quinn::SendStream,
        mut out_rx: mpsc::UnboundedReceiver<Outbound>,
        queue: Arc<SendQueue>,
        conn: ConnId,
        device: DeviceId,
    ) {
        while let Some(out) = out_rx.recv().await {
            let frame = match out {
                Outbound::Frame(frame) => frame,
                Outbound::Close(code) => {
                    connection.close(code.into(), b"closed");
                    return;
                }
            };
            let mut written = 0;
            while written < frame.len() {
                match tokio::time::timeout(WRITE_STALL, send.write(&frame[written..])).await {
                    Ok(Ok(n)) => written += n,
                    Ok(Err(_)) => return,
                    Err(_) => {
                        tracing::info!(
                            peer = %device,
                            stalled_secs = WRITE_STALL.as_secs(),
                            "closing a link whose peer stopped reading while sync data waited; it will be redialled"
                        );
                        transport::close(&connection, CloseReason::Stalled);
                        return;
                    }
                }
            }
            self.count(&device, |t| {
                t.bytes_sent += frame.len() as u64;
                t.frames_sent += 1;
            });
            if queue.sent(frame.len())
                && self.actor.send(ActorMsg::SendRoom { conn }).await.is_err()
            {
                return;
            }
        }
    }

    /// Closes every connection, for shutdown.
    pub async fn shutdown(&self) {
        self.transport.shutdown().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_keyed_unmapped_and_a_link_local_one_keeps_its_scope() {
        let mapped: SocketAddr = "[::ffff:192.0.2.10]:7447".parse().unwrap();
        assert_eq!(canonical(mapped).to_string(), "192.0.2.10:7447");
        let scoped: SocketAddr = "[fe80::1%3]:7447".parse().unwrap();
        assert_eq!(canonical(scoped), scoped);
        let v4: SocketAddr = "192.0.2.10:7447".parse().unwrap();
        assert_eq!(canonical(v4), v4);
    }
}
