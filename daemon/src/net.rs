//! The network driver: accepts and dials QUIC connections and moves sync frames between
//! them and the document owner.
//!
//! It owns no protocol state. For each authenticated `hearth/1` connection it opens (or
//! accepts) one bidirectional stream, decodes frames into messages for the owner, and
//! writes back whatever the owner sends. It also keeps the address book: static peers,
//! and the last address that worked for each device.
//!
//! **One owner.** The connection table, the address book, the dial schedule, what
//! discovery offered and who refused this device belong to one task ([`NetState`],
//! driven by `run`); [`Net`] is its handle, and every link, dial and discovery task
//! talks to it by message. Only the traffic counters are shared, as atomics, so a frame
//! costs no message.
//!
//! **One connection per device.** A new connection from a device replaces the old one at
//! once, because a peer that dials again has restarted or lost its link, and waiting
//! for the old one to time out would stall sync for seconds. The one exception is
//! two devices dialling each other at the same moment: then the connection dialled by the
//! smaller device id wins on both sides, so they do not replace each other in a loop
//! (`hearth_core::sync::dial::keep_existing`).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hearth_core::identity::DeviceId;
use hearth_core::sync::dial::{keep_existing, Dialer, LiveLink, BACKOFF_MAX};
use hearth_core::sync::{FrameDecoder, LinkEnds, PeerId, Role};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::actor::{ActorHandle, ActorMsg};
use crate::clock::Clock;
use crate::pairing::Pairing;
use crate::storage::DataDir;
use crate::sync_hub::{ConnId, Outbound};
use crate::transport::{self, Alpn, CloseReason, Transport};

/// How long one dial to an address that discovery found may take before the next
/// address of the same announcement is tried.
const OFFER_DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Announcements whose dial state is kept at once; discovery forgets withdrawn ones.
const MAX_OFFERS: usize = 64;
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

/// A device's traffic counters, shared with its links' tasks.
#[derive(Debug, Default)]
struct TrafficCounters {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    frames_sent: AtomicU64,
    frames_received: AtomicU64,
}

impl TrafficCounters {
    fn sent(&self, bytes: usize) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self, bytes: usize) {
        self.bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn frame_read(&self) {
        self.frames_received.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Traffic {
        Traffic {
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            frames_received: self.frames_received.load(Ordering::Relaxed),
        }
    }
}

/// What `status` shows of the network.
#[derive(Debug, Clone, Default)]
pub struct NetSnapshot {
    /// The address book.
    pub book: AddressBook,
    /// Sync traffic per device since this daemon started.
    pub traffic: HashMap<String, Traffic>,
    /// Devices that refused this one at the handshake the last time it dialled them.
    pub refused_by: BTreeSet<String>,
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
    queue: VecDeque<SocketAddr>,
    tried: BTreeSet<SocketAddr>,
    running: bool,
    device: Option<String>,
}

/// What the network's owner is asked to do.
enum NetMsg {
    /// A connection was authenticated: give it an id under the one-connection rule.
    Register {
        device: DeviceId,
        connection: quinn::Connection,
        dialled: bool,
        reply: oneshot::Sender<Option<(ConnId, Arc<TrafficCounters>)>>,
    },
    /// A connection ended.
    Unregister { device: DeviceId, conn: ConnId },
    /// A dialled peer spoke on the link at `addr`: its backoff starts over, and it no
    /// longer refuses this device.
    Answered { addr: SocketAddr, device: DeviceId },
    /// A device refused this one at a dial's handshake.
    RefusedBy { device: String },
    /// The address that worked for a device.
    Remember { device: DeviceId, addr: SocketAddr },
    /// A static peer to keep dialling.
    AddStatic { addr: SocketAddr },
    /// Skip every backoff.
    DialNow,
    /// Discovery found these dialable addresses under a label.
    Offer {
        label: String,
        addrs: Vec<SocketAddr>,
    },
    /// Discovery saw a label withdrawn.
    ForgetOffer { label: String },
    /// The next address of an offer to try, if any.
    NextOfferAddr {
        label: String,
        reply: oneshot::Sender<Option<SocketAddr>>,
    },
    /// An offer's address led to this device.
    OfferReached { label: String, device: DeviceId },
    /// What `status` shows.
    Snapshot { reply: oneshot::Sender<NetSnapshot> },
}

/// The network driver's handle; its state is owned by one task (see the module docs).
pub struct Net {
    transport: Transport,
    actor: ActorHandle,
    pairing: Pairing,
    inbox: mpsc::UnboundedSender<NetMsg>,
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

/// Everything the network's owner keeps.
struct NetState {
    net: Weak<Net>,
    me: DeviceId,
    data_dir: DataDir,
    /// This device's age recipient, which the address book is sealed to.
    recipient: age::x25519::Recipient,
    config_peers: Vec<String>,
    clock: Clock,
    book: AddressBook,
    live: HashMap<String, LiveConn>,
    traffic: HashMap<String, Arc<TrafficCounters>>,
    dialer: Dialer,
    next_conn: ConnId,
    offers: HashMap<String, Offer>,
    /// Devices that refused this one at the handshake when it last dialled them: their
    /// person removed this device, as far as they are concerned.
    refused_by: BTreeSet<String>,
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
        let (inbox, messages) = mpsc::unbounded_channel();
        let net = Arc::new(Net {
            transport,
            actor,
            pairing,
            inbox,
        });
        let state = NetState {
            net: Arc::downgrade(&net),
            me,
            data_dir,
            recipient: identity.to_public(),
            config_peers,
            clock: Clock::new(),
            book,
            live: HashMap::new(),
            traffic: HashMap::new(),
            dialer: Dialer::new(),
            next_conn: 1,
            offers: HashMap::new(),
            refused_by: BTreeSet::new(),
        };
        tokio::spawn(state.run(messages));
        tokio::spawn(net.clone().accept_loop());
        net
    }

    fn tell(&self, message: NetMsg) {
        // Only fails once the owner stopped, at shutdown.
        let _ = self.inbox.send(message);
    }

    async fn ask<T>(&self, message: impl FnOnce(oneshot::Sender<T>) -> NetMsg) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tell(message(reply));
        answer.await.ok()
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

    /// The address book, traffic and refusals, for `status`.
    pub async fn snapshot(&self) -> NetSnapshot {
        self.ask(|reply| NetMsg::Snapshot { reply })
            .await
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
            self.tell(NetMsg::RefusedBy {
                device: device.to_string(),
            });
        }
    }

    /// Remembers a static peer and dials it now.
    pub fn add_static(&self, addr: SocketAddr) {
        self.tell(NetMsg::AddStatic { addr });
    }

    /// Records the address that worked for a device.
    pub fn remember(&self, device: &DeviceId, addr: SocketAddr) {
        self.tell(NetMsg::Remember {
            device: *device,
            addr,
        });
    }

    /// Skips every backoff and dials everyone not connected.
    pub fn dial_now(&self) {
        self.tell(NetMsg::DialNow);
    }

    /// Takes addresses that discovery found under one household label, best first, and
    /// dials them one after another until one answers. Resolution is only a hint: the
    /// handshake decides whether the device is trusted.
    ///
    /// Nothing is dialled when a connected device already uses one of the addresses,
    /// or when this label already led to a device that is connected; an address is
    /// tried once per label (the dial loop keeps redialling the one that worked).
    pub fn offer(&self, label: &str, addrs: Vec<SocketAddr>) {
        let Ok(local) = self.transport.local_addr() else {
            return;
        };
        let addrs: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| crate::discovery::dialable(local, a))
            .collect();
        if !addrs.is_empty() {
            self.tell(NetMsg::Offer {
                label: label.to_string(),
                addrs,
            });
        }
    }

    /// Forgets a label discovery saw withdrawn.
    pub fn forget_offer(&self, label: &str) {
        self.tell(NetMsg::ForgetOffer {
            label: label.to_string(),
        });
    }

    async fn dial_offer(self: Arc<Self>, label: String) {
        loop {
            let next = self
                .ask(|reply| NetMsg::NextOfferAddr {
                    label: label.clone(),
                    reply,
                })
                .await
                .flatten();
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
            self.tell(NetMsg::OfferReached {
                label: label.clone(),
                device,
            });
            tracing::debug!(peer = %device, %addr, "reached a device that discovery found");
            self.remember(&device, addr);
            self.run_link(connection, device, Role::Initiator).await;
            return;
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

    /// Runs one sync connection until it ends.
    async fn run_link(
        self: Arc<Self>,
        connection: quinn::Connection,
        device: DeviceId,
        role: Role,
    ) {
        let dialled = role == Role::Initiator;
        let registered = self
            .ask(|reply| NetMsg::Register {
                device,
                connection: connection.clone(),
                dialled,
                reply,
            })
            .await
            .flatten();
        let Some((conn, traffic)) = registered else {
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
                self.tell(NetMsg::Unregister { device, conn });
                return;
            }
        };
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let form = transport::negotiated_sync_form(&connection);
        if self
            .actor
            .send(ActorMsg::PeerConnected {
                conn,
                device,
                role,
                form,
                out: out_tx,
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
            conn,
            device,
            traffic.clone(),
        ));
        self.read_link(&connection, &mut recv, conn, device, dialled, &traffic)
            .await;
        writer.abort();
        let _ = self.actor.send(ActorMsg::PeerClosed { conn }).await;
        self.tell(NetMsg::Unregister { device, conn });
    }

    /// Reads frames until the connection ends, handing each message to the owner.
    async fn read_link(
        &self,
        connection: &quinn::Connection,
        recv: &mut quinn::RecvStream,
        conn: ConnId,
        device: DeviceId,
        dialled: bool,
        traffic: &TrafficCounters,
    ) {
        // Lean frames name neither device: the handshake proved both.
        let ends = LinkEnds {
            local: PeerId::from(&self.transport.device_id()),
            remote: PeerId::from(&device),
        };
        let mut decoder = FrameDecoder::for_link(transport::negotiated_sync_form(connection), ends);
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
                        self.tell(NetMsg::RefusedBy {
                            device: device.to_string(),
                        });
                    }
                    return;
                }
                Ok(None) | Err(_) => return,
            };
            if !answered {
                answered = true;
                self.tell(NetMsg::Answered {
                    addr: connection.remote_address(),
                    device,
                });
            }
            traffic.read(n);
            let bad = match decoder.push(&buf[..n]) {
                Err(e) => Some(e),
                Ok(()) => loop {
                    match decoder.next_message() {
                        Ok(Some(message)) => {
                            traffic.frame_read();
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
        conn: ConnId,
        device: DeviceId,
        traffic: Arc<TrafficCounters>,
    ) {
        // Written since the last report to the owner, which counts them off the
        // connection's queue (its sync hub holds sync messages back while it is full).
        let (mut frames, mut bytes) = (0usize, 0usize);
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
            traffic.sent(frame.len());
            frames += 1;
            bytes += frame.len();
            // One report per burst: nothing else waits, so the owner has said all it
            // had to say for now.
            if out_rx.is_empty() {
                let report = ActorMsg::Sent {
                    conn,
                    frames: std::mem::take(&mut frames),
                    bytes: std::mem::take(&mut bytes),
                };
                if self.actor.send(report).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Closes every connection, for shutdown.
    pub async fn shutdown(&self) {
        self.transport.shutdown().await;
    }
}

impl NetState {
    /// Takes messages until every handle is gone, dialling what falls due in between.
    async fn run(mut self, mut messages: mpsc::UnboundedReceiver<NetMsg>) {
        loop {
            let next_due = self.dial_due();
            let sleep =
                next_due.map_or(BACKOFF_MAX, |due| due.saturating_sub(self.clock.now().mono));
            tokio::select! {
                biased;
                message = messages.recv() => match message {
                    Some(message) => self.handle(message),
                    None => return,
                },
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    fn handle(&mut self, message: NetMsg) {
        match message {
            NetMsg::Register {
                device,
                connection,
                dialled,
                reply,
            } => {
                let registered = self.register(&device, &connection, dialled);
                let _ = reply.send(registered);
            }
            NetMsg::Unregister { device, conn } => self.unregister(&device, conn),
            NetMsg::Answered { addr, device } => {
                self.refused_by.remove(&device.to_string());
                self.dialer.answered(&canonical(addr).to_string());
            }
            NetMsg::RefusedBy { device } => {
                self.refused_by.insert(device);
            }
            NetMsg::Remember { device, addr } => {
                let addr = canonical(addr).to_string();
                if self.book.last_addr.insert(device.to_string(), addr.clone()) != Some(addr) {
                    self.save_book();
                }
            }
            NetMsg::AddStatic { addr } => {
                self.book.static_peers.insert(addr.to_string());
                self.save_book();
                self.dialer.dial_now();
            }
            NetMsg::DialNow => self.dialer.dial_now(),
            NetMsg::Offer { label, addrs } => self.offer(label, addrs),
            NetMsg::ForgetOffer { label } => {
                self.offers.remove(&label);
            }
            NetMsg::NextOfferAddr { label, reply } => {
                let next = self.offers.get_mut(&label).and_then(|offer| {
                    let next = offer.queue.pop_front();
                    offer.running = next.is_some();
                    next
                });
                let _ = reply.send(next);
            }
            NetMsg::OfferReached { label, device } => {
                if let Some(offer) = self.offers.get_mut(&label) {
                    offer.device = Some(device.to_string());
                    offer.queue.clear();
                    offer.running = false;
                }
            }
            NetMsg::Snapshot { reply } => {
                let _ = reply.send(NetSnapshot {
                    book: self.book.clone(),
                    traffic: self
                        .traffic
                        .iter()
                        .map(|(device, t)| (device.clone(), t.snapshot()))
                        .collect(),
                    refused_by: self.refused_by.clone(),
                });
            }
        }
    }

    /// Dials the addresses that are due, and returns when the next one falls due.
    fn dial_due(&mut self) -> Option<Duration> {
        let targets: Vec<(String, SocketAddr)> = self
            .targets()
            .into_iter()
            .map(|addr| (addr.to_string(), addr))
            .collect();
        let now = self.clock.now().mono;
        let plan = self.dialer.plan(
            now,
            targets.iter().map(|(key, _)| key.clone()),
            &mut rand::thread_rng(),
        );
        let net = self.net.upgrade()?;
        for (_, addr) in targets.iter().filter(|(key, _)| plan.dial.contains(key)) {
            tokio::spawn(net.clone().dial(*addr));
        }
        plan.next_due
    }

    fn targets(&self) -> Vec<SocketAddr> {
        let mut addrs: BTreeSet<String> = self.book.static_peers.clone();
        addrs.extend(self.config_peers.iter().cloned());
        for (device, addr) in &self.book.last_addr {
            if !self.live.contains_key(device) {
                addrs.insert(addr.clone());
            }
        }
        // An address whose device is connected needs no dial.
        for (device, addr) in &self.book.last_addr {
            if self.live.contains_key(device) {
                addrs.remove(addr);
            }
        }
        addrs.iter().filter_map(|a| a.parse().ok()).collect()
    }

    fn offer(&mut self, label: String, mut addrs: Vec<SocketAddr>) {
        if self.connected_at(&addrs) {
            return;
        }
        // The last address that worked for any device goes first.
        let known: BTreeSet<&String> = self.book.last_addr.values().collect();
        addrs.sort_by_key(|a| !known.contains(&a.to_string()));
        if !self.offers.contains_key(&label) && self.offers.len() >= MAX_OFFERS {
            self.offers.retain(|_, o| o.running);
        }
        let offer = self.offers.entry(label.clone()).or_default();
        if offer
            .device
            .as_ref()
            .is_some_and(|d| self.live.contains_key(d))
        {
            return;
        }
        for addr in addrs {
            if offer.tried.insert(addr) {
                offer.queue.push_back(addr);
            }
        }
        let start = !offer.running && !offer.queue.is_empty();
        offer.running |= start;
        if let Some(net) = self.net.upgrade().filter(|_| start) {
            tokio::spawn(net.dial_offer(label));
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
        self.live
            .values()
            .any(|c| wanted.contains(&key(c.connection.remote_address())))
    }

    fn save_book(&self) {
        if let Err(e) = book::save(&self.data_dir, &self.recipient, &self.book) {
            tracing::warn!(error = %e, "could not save the address book");
        }
    }

    /// Registers a connection under its device, applying the one-connection rule.
    fn register(
        &mut self,
        device: &DeviceId,
        connection: &quinn::Connection,
        dialled: bool,
    ) -> Option<(ConnId, Arc<TrafficCounters>)> {
        let key = device.to_string();
        if let Some(existing) = self.live.get(&key) {
            let existing_link = LiveLink {
                dialled: existing.dialled,
                age: existing.since.elapsed(),
            };
            if keep_existing(&self.me, device, existing_link, dialled) {
                transport::close(connection, CloseReason::Replaced);
                return None;
            }
            transport::close(&existing.connection, CloseReason::Replaced);
        }
        let id = self.next_conn;
        self.next_conn += 1;
        self.live.insert(
            key.clone(),
            LiveConn {
                id,
                connection: connection.clone(),
                dialled,
                since: Instant::now(),
            },
        );
        Some((id, self.traffic.entry(key).or_default().clone()))
    }

    fn unregister(&mut self, device: &DeviceId, conn: ConnId) {
        let key = device.to_string();
        if self.live.get(&key).is_some_and(|c| c.id == conn) {
            self.live.remove(&key);
        }
        // A lost connection is worth redialling promptly (the loop replans after
        // every message).
        if let Some(addr) = self.book.last_addr.get(&key) {
            self.dialer.lost(addr, self.clock.now().mono);
        }
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
