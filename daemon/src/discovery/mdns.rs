//! The mDNS backend: announces labels as instances of the service types the driver
//! gives it (derived per hour from the household secret or a pairing code, see
//! [`super::token`]) and browses for other instances of the types it is told to, through
//! mdns-sd.
//!
//! It owns the mDNS responder thread and nothing else. It must not put anything but a
//! label and its rotating service type on the air: the instance name, the host name
//! (`<label>.local.`) and the TXT record (`t=<label>`) all carry the label, and the
//! addresses are the interface addresses mdns-sd fills in. No fixed name (and nothing
//! that says "hearth") is ever announced or asked for. It never judges a sighting; the
//! driver and the QUIC handshake do.
//!
//! **Cost.** A registration is announced at once, without probing (labels are random, so
//! a conflict would take another device drawing the same 32 salt bits and matching MAC),
//! and then only answered when asked. Asking is what costs: a browse queries with
//! mdns-sd's back-off (1 s, 2 s, 4 s, ...) and, worse, refreshes every peer's 120-second
//! host records (at 80% of their life) for as long as it runs, about six packets a
//! minute per peer and family. So a browse runs only for [`BROWSE_WINDOW`], shorter
//! than the first refresh, after start, after a network change, when someone waits (a
//! pairing lookup) and once an hour (well after the labels change, so that peers'
//! goodbyes do not meet a running browse, which would chase each with a burst of
//! queries), then stops; an idle device only answers.
//! That is enough, because whichever device arrives (starts, restarts, joins the
//! network) asks, finds the idle ones and dials them, and a QUIC connection serves both
//! ways. Interfaces are checked locally every few seconds; mdns-sd announces on an
//! interface that appears, and the driver then moves to fresh labels.
//!
//! **Interfaces.** With `mdns_interfaces` set, every other interface is disabled before
//! anything is announced or asked. mdns-sd joins the multicast group on each interface
//! when it starts (an IGMP/MLD membership report, which carries no data of ours) and
//! leaves the disabled ones at once; tests therefore run mDNS only inside network
//! namespaces they created.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdns_sd::{DaemonEvent, IfKind, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::sync::mpsc;

use super::{Announcements, Discovery, DiscoveryError, Seen, Stopping};

/// Interface changes closer together than this are handled once.
const SETTLE: Duration = Duration::from_secs(1);
/// Interface events this soon after start are the responder enabling the configured
/// interfaces, not the network changing: the labels are fresh anyway.
const STARTUP: Duration = Duration::from_secs(3);
/// How long a browse asks before it stops and the device only answers.
pub const BROWSE_WINDOW: Duration = Duration::from_secs(60);
/// How long shutdown waits for the goodbyes to leave.
const GOODBYE_WAIT: Duration = Duration::from_secs(1);

fn mdns_error(e: mdns_sd::Error) -> DiscoveryError {
    DiscoveryError::Mdns(e.to_string())
}

struct Inner {
    daemon: ServiceDaemon,
    /// Our registrations: label to full service name.
    registered: Mutex<BTreeMap<String, ServiceInfo>>,
    /// Where sightings go once browsing started.
    sightings: Mutex<Option<mpsc::UnboundedSender<Seen>>>,
    /// Which browse window is the latest; an older window's end does not stop it.
    window: AtomicU64,
    /// Which service types to browse, and which are being browsed right now.
    browsing: Mutex<Browsing>,
}

#[derive(Default)]
struct Browsing {
    /// The types the driver wants browsed.
    wanted: BTreeSet<String>,
    /// The types with a browse running in mdns-sd.
    running: BTreeSet<String>,
    /// Whether a browse window is open (new types start browsing at once).
    open: bool,
}

/// mDNS discovery.
pub struct MdnsDiscovery {
    inner: Arc<Inner>,
}

impl MdnsDiscovery {
    /// Starts the responder, restricted to `interfaces` when the list is not empty.
    /// Must be called inside a tokio runtime.
    pub fn new(interfaces: &[String]) -> Result<MdnsDiscovery, DiscoveryError> {
        let daemon = ServiceDaemon::new().map_err(mdns_error)?;
        if !interfaces.is_empty() {
            daemon.disable_interface(IfKind::All).map_err(mdns_error)?;
            let wanted: Vec<IfKind> = interfaces.iter().map(|n| IfKind::Name(n.clone())).collect();
            daemon.enable_interface(wanted).map_err(mdns_error)?;
        }
        let monitor = daemon.monitor().map_err(mdns_error)?;
        let inner = Arc::new(Inner {
            daemon,
            registered: Mutex::new(BTreeMap::new()),
            sightings: Mutex::new(None),
            window: AtomicU64::new(0),
            browsing: Mutex::new(Browsing::default()),
        });
        tokio::spawn(watch_interfaces(Arc::downgrade(&inner), monitor));
        tracing::debug!(
            interfaces = if interfaces.is_empty() {
                "all".to_string()
            } else {
                interfaces.join(",")
            },
            "mDNS discovery started"
        );
        Ok(MdnsDiscovery { inner })
    }
}

impl Inner {
    fn register(&self, info: ServiceInfo) -> Result<(), DiscoveryError> {
        self.daemon.register(info).map_err(mdns_error)
    }

    /// Starts (or restarts) the browse of every wanted service type for one
    /// [`BROWSE_WINDOW`]. A new browse of a type replaces the old one inside mdns-sd,
    /// whose forwarder then ends.
    fn browse(self: &Arc<Self>) -> Result<(), DiscoveryError> {
        let Some(tx) = self.sightings.lock().ok().and_then(|s| s.clone()) else {
            return Err(DiscoveryError::NotRunning);
        };
        let Ok(mut browsing) = self.browsing.lock() else {
            return Err(DiscoveryError::NotRunning);
        };
        browsing.open = true;
        let wanted: Vec<String> = browsing.wanted.iter().cloned().collect();
        for service in wanted {
            self.browse_one(&mut browsing, &service, &tx)?;
        }
        drop(browsing);
        let window = self.window.fetch_add(1, Ordering::Relaxed) + 1;
        let inner = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(BROWSE_WINDOW).await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            if inner.window.load(Ordering::Relaxed) == window {
                tracing::debug!("stopped asking the network; answering only");
                if let Ok(mut browsing) = inner.browsing.lock() {
                    browsing.open = false;
                    for service in std::mem::take(&mut browsing.running) {
                        let _ = inner.daemon.stop_browse(&service);
                    }
                }
            }
        });
        Ok(())
    }

    /// Starts browsing one service type and forwards what it finds.
    fn browse_one(
        &self,
        browsing: &mut Browsing,
        service: &str,
        tx: &mpsc::UnboundedSender<Seen>,
    ) -> Result<(), DiscoveryError> {
        let events = self.daemon.browse(service).map_err(mdns_error)?;
        browsing.running.insert(service.to_string());
        let tx = tx.clone();
        let service = service.to_string();
        tokio::spawn(async move {
            while let Ok(event) = events.recv_async().await {
                let seen = match event {
                    ServiceEvent::ServiceResolved(found) => {
                        let Some(label) = instance_label(&found.fullname, &service) else {
                            continue;
                        };
                        let addrs = found
                            .addresses
                            .iter()
                            .map(|ip| socket_addr(ip, found.port))
                            .collect();
                        Seen::Found { label, addrs }
                    }
                    ServiceEvent::ServiceRemoved(_, fullname) => {
                        let Some(label) = instance_label(&fullname, &service) else {
                            continue;
                        };
                        Seen::Gone { label }
                    }
                    _ => continue,
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        Ok(())
    }

    /// Replaces the wanted service types: browses of types no longer wanted stop, and
    /// while a window is open new types are browsed at once.
    fn set_services(&self, services: &BTreeSet<String>) -> Result<(), DiscoveryError> {
        let Ok(mut browsing) = self.browsing.lock() else {
            return Err(DiscoveryError::NotRunning);
        };
        let old: Vec<String> = browsing.running.difference(services).cloned().collect();
        for service in old {
            browsing.running.remove(&service);
            let _ = self.daemon.stop_browse(&service);
        }
        browsing.wanted = services.clone();
        if browsing.open {
            let Some(tx) = self.sightings.lock().ok().and_then(|s| s.clone()) else {
                return Err(DiscoveryError::NotRunning);
            };
            let new: Vec<String> = services.difference(&browsing.running).cloned().collect();
            for service in new {
                self.browse_one(&mut browsing, &service, &tx)?;
            }
        }
        Ok(())
    }
}

/// Tells the driver when interface addresses change, once things settle, and asks the
/// new network who is there. mdns-sd itself announces our services on a new interface;
/// the driver then replaces our labels with fresh ones, so a device is not recognisable
/// across networks.
async fn watch_interfaces(inner: std::sync::Weak<Inner>, monitor: mdns_sd::Receiver<DaemonEvent>) {
    let started = tokio::time::Instant::now();
    loop {
        match monitor.recv_async().await {
            Ok(DaemonEvent::IpAdd(_) | DaemonEvent::IpDel(_)) => {}
            Ok(DaemonEvent::Error(e)) => {
                tracing::debug!(error = %e, "mDNS responder reported an error");
                continue;
            }
            Ok(_) => continue,
            Err(_) => return,
        }
        // Let a burst of changes (an interface coming up brings several addresses)
        // settle into one event.
        loop {
            match tokio::time::timeout(SETTLE, monitor.recv_async()).await {
                Ok(Ok(_)) => continue,
                Ok(Err(_)) => return,
                Err(_) => break,
            }
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if started.elapsed() < STARTUP {
            continue;
        }
        let sightings = inner.sightings.lock().ok().and_then(|s| s.clone());
        if let Some(sightings) = sightings {
            tracing::debug!("network interfaces changed; asking who is here");
            let _ = sightings.send(Seen::NetworkChanged);
            let _ = inner.browse();
        }
    }
}

/// The label in a full instance name of `service`, if it is one of ours in form.
fn instance_label(fullname: &str, service: &str) -> Option<String> {
    let label = fullname.strip_suffix(service)?.strip_suffix('.')?;
    super::token::parse_label(label).map(|_| label.to_string())
}

/// A socket address for a resolved IP, keeping the scope of an IPv6 link-local one:
/// `fe80::` means nothing without the interface it was heard on.
fn socket_addr(ip: &ScopedIp, port: u16) -> SocketAddr {
    match ip {
        ScopedIp::V6(v6) => v6_socket_addr(*v6.addr(), v6.scope_id().index, port),
        other => SocketAddr::new(other.to_ip_addr(), port),
    }
}

/// An IPv6 socket address with `scope` (the index of the interface the record was heard
/// on) if the address is link-local, and without it otherwise.
fn v6_socket_addr(addr: Ipv6Addr, scope: u32, port: u16) -> SocketAddr {
    let link_local = addr.segments()[0] & 0xffc0 == 0xfe80;
    let scope = if link_local { scope } else { 0 };
    SocketAddr::V6(SocketAddrV6::new(addr, port, 0, scope))
}

fn service_info(label: &str, service: &str, port: u16) -> Result<ServiceInfo, DiscoveryError> {
    let host = format!("{label}.local.");
    let txt = [("t", label)];
    let mut info = ServiceInfo::new(service, label, &host, (), port, &txt[..])
        .map_err(mdns_error)?
        .enable_addr_auto();
    info.set_requires_probe(false);
    Ok(info)
}

impl Discovery for MdnsDiscovery {
    fn announce(&self, labels: &Announcements, port: u16) -> Result<(), DiscoveryError> {
        let Ok(mut registered) = self.inner.registered.lock() else {
            return Err(DiscoveryError::NotRunning);
        };
        let stale: Vec<String> = registered
            .iter()
            .filter(|(label, info)| {
                labels
                    .get(*label)
                    .is_none_or(|service| info.get_type() != service)
                    || info.get_port() != port
            })
            .map(|(label, _)| label.clone())
            .collect();
        for label in stale {
            if let Some(info) = registered.remove(&label) {
                // Unregistering sends the goodbye (TTL 0) for the old label.
                if let Err(e) = self.inner.daemon.unregister(info.get_fullname()) {
                    tracing::debug!(error = %e, "could not withdraw an old announcement");
                }
            }
        }
        for (label, service) in labels {
            if registered.contains_key(label) {
                continue;
            }
            let info = service_info(label, service, port)?;
            self.inner.register(info.clone())?;
            registered.insert(label.clone(), info);
        }
        Ok(())
    }

    fn browse(&self) -> Result<mpsc::UnboundedReceiver<Seen>, DiscoveryError> {
        let (tx, rx) = mpsc::unbounded_channel();
        match self.inner.sightings.lock() {
            Ok(mut slot) if slot.is_none() => *slot = Some(tx),
            _ => return Err(DiscoveryError::NotRunning),
        }
        self.inner.browse()?;
        Ok(rx)
    }

    fn set_services(&self, services: &BTreeSet<String>) {
        if let Err(e) = self.inner.set_services(services) {
            tracing::debug!(error = %e, "could not change what to browse for");
        }
    }

    fn requery(&self) {
        if let Err(e) = self.inner.browse() {
            tracing::debug!(error = %e, "could not ask the network again");
        }
    }

    fn shutdown(&self) -> Stopping {
        let inner = self.inner.clone();
        Box::pin(async move {
            let infos: Vec<ServiceInfo> = inner
                .registered
                .lock()
                .map(|mut r| std::mem::take(&mut *r).into_values().collect())
                .unwrap_or_default();
            let mut pending = Vec::new();
            for info in infos {
                if let Ok(done) = inner.daemon.unregister(info.get_fullname()) {
                    pending.push(done);
                }
            }
            for done in pending {
                let _ = tokio::time::timeout(GOODBYE_WAIT, done.recv_async()).await;
            }
            if let Ok(mut sightings) = inner.sightings.lock() {
                sightings.take();
            }
            if let Ok(stopped) = inner.daemon.shutdown() {
                let _ = tokio::time::timeout(GOODBYE_WAIT, stopped.recv_async()).await;
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_map_to_labels_and_nothing_else() {
        let label = super::super::token::household_label(&[1; 32], 5, &[9, 9, 9, 9]);
        let service = super::super::token::household_service(&[1; 32], 5);
        assert_eq!(
            instance_label(&format!("{label}.{service}"), &service),
            Some(label.clone())
        );
        assert_eq!(
            instance_label(&format!("{label} (2).{service}"), &service),
            None
        );
        assert_eq!(
            instance_label(&format!("Ada's laptop.{service}"), &service),
            None
        );
        assert_eq!(
            instance_label(&format!("{label}._other._udp.local."), &service),
            None
        );
    }

    #[test]
    fn link_local_keeps_its_scope_and_others_drop_it() {
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let with_scope = v6_socket_addr(ll, 3, 7447);
        assert_eq!(with_scope.to_string(), "[fe80::1%3]:7447");
        // The scoped form survives the address book's text round trip.
        assert_eq!(
            with_scope.to_string().parse::<SocketAddr>().unwrap(),
            with_scope
        );
        assert_eq!(
            v6_socket_addr(global, 3, 7447).to_string(),
            "[2001:db8::1]:7447"
        );
        let v4 = ScopedIp::from(std::net::IpAddr::from([192, 0, 2, 7]));
        assert_eq!(socket_addr(&v4, 7447).to_string(), "192.0.2.7:7447");
    }

    #[test]
    fn the_announcement_carries_only_the_label() {
        let label = super::super::token::household_label(&[3; 32], 7, &[1, 2, 3, 4]);
        let service = super::super::token::household_service(&[3; 32], 7);
        let info = service_info(&label, &service, 7447).unwrap();
        assert_eq!(info.get_fullname(), format!("{label}.{service}"));
        assert!(!info.get_fullname().contains("hearth"));
        assert_eq!(info.get_hostname(), format!("{label}.local."));
        let props: Vec<(String, String)> = info
            .get_properties()
            .iter()
            .map(|p| (p.key().to_string(), p.val_str().to_string()))
            .collect();
        assert_eq!(props, vec![("t".to_string(), label)]);
    }
}
