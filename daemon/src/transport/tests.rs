//! Transport tests over real QUIC on 127.0.0.1, port 0 only.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use data_encoding::HEXLOWER;

use super::*;

const LOCALHOST: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Generous bound so a refusal that silently turned into a hang fails the test instead.
async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("timed out")
}

struct Device {
    key: DeviceKey,
    trust: Arc<TrustSet>,
    transport: Transport,
    addr: SocketAddr,
}

impl Device {
    fn new() -> Self {
        Self::with_key(DeviceKey::generate().unwrap())
    }

    fn with_key(key: DeviceKey) -> Self {
        let trust = TrustSet::new();
        let transport = Transport::bind(LOCALHOST, &key, trust.clone()).unwrap();
        let addr = transport.local_addr().unwrap();
        Self {
            key,
            trust,
            transport,
            addr,
        }
    }

    fn trusts(&self, other: &Device) {
        self.trust.insert(other.key.public_key());
    }

    /// Accepts one connection attempt and runs its handshake.
    async fn accept_one(&self) -> Result<Accepted, TransportError> {
        let incoming = within(self.transport.accept()).await.unwrap();
        within(incoming.handshake()).await
    }

    async fn dial(&self, to: &Device, alpn: Alpn) -> Result<quinn::Connection, TransportError> {
        within(
            self.transport
                .connect(to.addr, alpn, Some(to.key.public_key())),
        )
        .await
    }
}

/// A key that presents `cert_of`'s certificate but signs with `signer`'s private key.
fn impostor(cert_of: &DeviceKey, signer: &DeviceKey) -> DeviceKey {
    DeviceKey {
        pkcs8: signer.pkcs8.clone(),
        public: cert_of.public,
        certified: Arc::new(CertifiedKey::new(
            cert_of.certified.cert.clone(),
            signer.certified.key.clone(),
        )),
    }
}

/// The dialer's half of a request/response exchange: the request is only answered
/// once the listener has accepted us, so this is where a late refusal shows.
async fn request(connection: &quinn::Connection, body: &[u8]) -> Result<Vec<u8>, TransportError> {
    let lost = |error| connection_error(connection, error);
    let (mut send, mut recv) = within(connection.open_bi()).await.map_err(lost)?;
    match send.write_all(body).await {
        Ok(()) => {}
        Err(quinn::WriteError::ConnectionLost(error)) => return Err(lost(error)),
        Err(other) => panic!("unexpected write error: {other}"),
    }
    // `finish` only fails if the stream is already closed; the read below reports why.
    let _ = send.finish();
    match within(recv.read_to_end(1024)).await {
        Ok(reply) => Ok(reply),
        Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(error))) => {
            Err(lost(error))
        }
        Err(other) => panic!("unexpected read error: {other}"),
    }
}

/// The listener's half: answers one request on the accepted connection.
async fn answer(accepted: &Accepted, reply: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = within(accepted.connection.accept_bi()).await.unwrap();
    let body = within(recv.read_to_end(1024)).await.unwrap();
    send.write_all(reply).await.unwrap();
    send.finish().unwrap();
    // Keep the connection open until the dialer has read the reply.
    let _ = within(accepted.connection.closed()).await;
    body
}

#[tokio::test]
async fn trusted_devices_exchange_a_message_on_a_bi_stream() {
    // 1. Two devices that trust each other.
    let alice = Device::new();
    let bob = Device::new();
    alice.trusts(&bob);
    bob.trusts(&alice);

    // 2. Bob dials Alice for sync and sends a request; Alice answers it.
    let listener = async {
        let accepted = alice.accept_one().await.unwrap();
        assert_eq!(accepted.alpn, Alpn::Sync);
        assert_eq!(accepted.peer, bob.key.public_key());
        assert_eq!(accepted.peer_device_id(), bob.key.device_id());
        assert_eq!(
            peer_public_key(&accepted.connection),
            Some(bob.key.public_key())
        );
        answer(&accepted, b"hello bob").await
    };
    let dialer = async {
        let connection = bob.dial(&alice, Alpn::Sync).await.unwrap();
        assert_eq!(peer_public_key(&connection), Some(alice.key.public_key()));
        assert_eq!(negotiated_alpn(&connection), Some(Alpn::Sync));
        let reply = request(&connection, b"hello alice").await.unwrap();
        close(&connection, CloseReason::Done);
        reply
    };
    let (received, reply) = tokio::join!(listener, dialer);

    // 3. Both messages arrived intact.
    assert_eq!(received, b"hello alice");
    assert_eq!(reply, b"hello bob");
}

#[tokio::test]
async fn unknown_device_is_refused_at_the_handshake() {
    // 1. Bob trusts Alice, but Alice has never heard of Bob.
    let alice = Device::new();
    let bob = Device::new();
    bob.trusts(&alice);

    // 2. The handshake fails on Alice's side: she never gets a connection, so there is
    //    no stream to read and nothing is sent to Bob.
    let listener = async { alice.accept_one().await };
    // 3. Bob's connection is refused, either before `connect` returns or, because TLS
    //    1.3 lets the client finish first, on his first request.
    let dialer = async {
        match bob.dial(&alice, Alpn::Sync).await {
            Ok(connection) => request(&connection, b"let me in").await.map(|_| ()),
            Err(error) => Err(error),
        }
    };
    let (accepted, dialed) = tokio::join!(listener, dialer);

    assert!(
        matches!(accepted, Err(TransportError::PeerNotTrusted { .. })),
        "{accepted:?}"
    );
    let error = dialed.unwrap_err();
    assert!(
        matches!(error, TransportError::RefusedByPeer { .. }),
        "{error:?}"
    );
    assert!(error.is_refusal());
}

#[tokio::test]
async fn dialer_refuses_a_listener_it_does_not_trust() {
    // Alice would accept Bob, but Bob does not trust Alice: Bob aborts before sending
    // his certificate, and Alice never gets a connection.
    let alice = Device::new();
    let bob = Device::new();
    alice.trusts(&bob);

    let (accepted, dialed) = tokio::join!(alice.accept_one(), bob.dial(&alice, Alpn::Sync));

    assert!(
        matches!(dialed, Err(TransportError::PeerNotTrusted { .. })),
        "{dialed:?}"
    );
    assert!(accepted.is_err());
}

#[tokio::test]
async fn dialer_refuses_a_trusted_device_that_is_not_the_one_dialed() {
    let alice = Device::new();
    let bob = Device::new();
    let carol = Device::new();
    alice.trusts(&bob);
    bob.trusts(&alice);
    bob.trusts(&carol);

    // Bob dials Alice's address but expects Carol there.
    let dialer = within(bob.transport.connect(
        alice.addr,
        Alpn::Sync,
        Some(carol.key.public_key()),
    ));
    let (accepted, dialed) = tokio::join!(alice.accept_one(), dialer);

    assert!(
        matches!(dialed, Err(TransportError::PeerNotTrusted { .. })),
        "{dialed:?}"
    );
    assert!(accepted.is_err());
}

#[tokio::test]
async fn certificate_of_a_trusted_device_without_its_private_key_is_refused() {
    // 1. Alice trusts Bob. Mallory has a copy of Bob's certificate (it is public) but
    //    only her own private key.
    let alice = Device::new();
    let bob = Device::new();
    let mallory_key = DeviceKey::generate().unwrap();
    alice.trusts(&bob);
    let mallory = Device::with_key(impostor(&bob.key, &mallory_key));
    mallory.trusts(&alice);

    // 2. The key in the certificate passes the roster check, but the handshake
    //    signature does not verify against it.
    let dialer = async {
        match mallory.dial(&alice, Alpn::Sync).await {
            Ok(connection) => request(&connection, b"i am bob").await.map(|_| ()),
            Err(error) => Err(error),
        }
    };
    let (accepted, dialed) = tokio::join!(alice.accept_one(), dialer);

    assert!(
        matches!(accepted, Err(TransportError::PeerNotTrusted { .. })),
        "{accepted:?}"
    );
    assert!(dialed.unwrap_err().is_refusal());
}

#[tokio::test]
async fn listener_with_a_stolen_certificate_is_refused_by_the_dialer() {
    // Mallory listens with Alice's certificate and her own key; Bob dials expecting
    // Alice and must notice at the signature, since the key and the certificate match.
    let alice = Device::new();
    let bob = Device::new();
    let mallory = Device::with_key(impostor(&alice.key, &DeviceKey::generate().unwrap()));
    bob.trusts(&alice);
    mallory.trusts(&bob);

    let dialer = within(bob.transport.connect(
        mallory.addr,
        Alpn::Sync,
        Some(alice.key.public_key()),
    ));
    let (accepted, dialed) = tokio::join!(mallory.accept_one(), dialer);

    assert!(
        matches!(dialed, Err(TransportError::PeerNotTrusted { .. })),
        "{dialed:?}"
    );
    assert!(accepted.is_err());
}

#[tokio::test]
async fn revoked_device_is_refused_on_its_next_connection() {
    // 1. Alice and Bob trust each other and sync once.
    let alice = Device::new();
    let bob = Device::new();
    alice.trusts(&bob);
    bob.trusts(&alice);
    let listener = async { answer(&alice.accept_one().await.unwrap(), b"ok").await };
    let dialer = async {
        let connection = bob.dial(&alice, Alpn::Sync).await.unwrap();
        let reply = request(&connection, b"sync").await.unwrap();
        close(&connection, CloseReason::Done);
        reply
    };
    let (_, reply) = tokio::join!(listener, dialer);
    assert_eq!(reply, b"ok");

    // 2. Alice's roster revokes Bob.
    assert!(alice.trust.remove(&bob.key.public_key()));

    // 3. Bob's next connection is refused at the handshake.
    let dialer = async {
        match bob.dial(&alice, Alpn::Sync).await {
            Ok(connection) => request(&connection, b"sync again").await.map(|_| ()),
            Err(error) => Err(error),
        }
    };
    let (accepted, dialed) = tokio::join!(alice.accept_one(), dialer);
    assert!(
        matches!(accepted, Err(TransportError::PeerNotTrusted { .. })),
        "{accepted:?}"
    );
    assert!(
        matches!(dialed, Err(TransportError::RefusedByPeer { .. })),
        "{dialed:?}"
    );
}

#[tokio::test]
async fn pairing_accepts_an_unknown_key_only_while_an_invite_is_open() {
    // 1. Alice and Bob know nothing of each other.
    let alice = Device::new();
    let bob = Device::new();
    let pair = |bob: &Device, alice: &Device| {
        let transport = bob.transport.clone();
        let addr = alice.addr;
        async move { within(transport.connect(addr, Alpn::Pair, None)).await }
    };

    // 2. No invite open: refused before Alice even shows her certificate.
    let (accepted, dialed) = tokio::join!(alice.accept_one(), pair(&bob, &alice));
    assert!(accepted.is_err());
    assert!(
        matches!(dialed, Err(TransportError::PairingRefused { .. })),
        "{dialed:?}"
    );

    // 3. Alice opens an invite: Bob's unknown key is admitted for pairing, and each side
    //    learns the other's key for the pairing state machine to bind.
    let window = alice.trust.open_pairing();
    let listener = async {
        let accepted = alice.accept_one().await.unwrap();
        assert_eq!(accepted.alpn, Alpn::Pair);
        assert_eq!(accepted.peer, bob.key.public_key());
        answer(&accepted, b"spake2 b").await
    };
    let dialer = async {
        let connection = pair(&bob, &alice).await.unwrap();
        assert_eq!(peer_public_key(&connection), Some(alice.key.public_key()));
        let reply = request(&connection, b"spake2 a").await.unwrap();
        close(&connection, CloseReason::Done);
        reply
    };
    let (received, reply) = tokio::join!(listener, dialer);
    assert_eq!(received, b"spake2 a");
    assert_eq!(reply, b"spake2 b");

    // 4. The open invite does not let Bob's unknown key sync.
    bob.trusts(&alice);
    let dialer = async {
        match bob.dial(&alice, Alpn::Sync).await {
            Ok(connection) => request(&connection, b"sync").await.map(|_| ()),
            Err(error) => Err(error),
        }
    };
    let (accepted, dialed) = tokio::join!(alice.accept_one(), dialer);
    assert!(
        matches!(accepted, Err(TransportError::PeerNotTrusted { .. })),
        "{accepted:?}"
    );
    assert!(
        matches!(dialed, Err(TransportError::RefusedByPeer { .. })),
        "{dialed:?}"
    );

    // 5. The invite closes: pairing is refused again.
    drop(window);
    let (accepted, dialed) = tokio::join!(alice.accept_one(), pair(&bob, &alice));
    assert!(accepted.is_err());
    assert!(
        matches!(dialed, Err(TransportError::PairingRefused { .. })),
        "{dialed:?}"
    );
}

#[tokio::test]
async fn busy_port_gives_an_actionable_error() {
    let taken = std::net::UdpSocket::bind(LOCALHOST).unwrap();
    let addr = taken.local_addr().unwrap();
    let error =
        Transport::bind(addr, &DeviceKey::generate().unwrap(), TrustSet::new()).unwrap_err();
    assert!(
        matches!(error, TransportError::PortInUse { addr: a } if a == addr),
        "{error:?}"
    );
    assert!(error.to_string().contains("HEARTH_LISTEN"));
}

#[test]
fn device_key_survives_a_round_trip_through_pkcs8() {
    let key = DeviceKey::generate().unwrap();
    let again = DeviceKey::from_pkcs8(key.pkcs8()).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    assert_eq!(again.device_id(), key.device_id());
    assert_eq!(
        verify::ed25519_public_key(&CertificateDer::from(again.certificate_der().to_vec()))
            .unwrap(),
        key.public_key()
    );
}

#[test]
fn damaged_device_key_is_reported_as_such() {
    assert!(matches!(
        DeviceKey::from_pkcs8(b"not a key"),
        Err(TransportError::InvalidDeviceKey)
    ));
    let mut damaged = DeviceKey::generate().unwrap().pkcs8().to_vec();
    damaged.truncate(damaged.len() / 2);
    assert!(matches!(
        DeviceKey::from_pkcs8(&damaged),
        Err(TransportError::InvalidDeviceKey)
    ));
}

#[test]
fn debug_output_shows_no_key_material() {
    let key = DeviceKey::generate().unwrap();
    let shown = format!("{key:?}");
    assert!(!shown.contains(&HEXLOWER.encode(key.pkcs8())));
    assert!(!shown.contains(&format!("{:?}", key.public_key())));
    let trust = TrustSet::new();
    trust.insert(key.public_key());
    assert!(!format!("{trust:?}").contains(&format!("{:?}", key.public_key()[0..4].to_vec())));
}

#[test]
fn close_codes_round_trip() {
    for reason in CloseReason::ALL {
        assert_eq!(CloseReason::from_code(reason.code()), Some(reason));
    }
    assert_eq!(CloseReason::from_code(VarInt::from_u32(999)), None);
}

#[test]
fn alpn_ids_round_trip() {
    for alpn in Alpn::LISTENER_ORDER {
        assert_eq!(Alpn::from_bytes(alpn.as_bytes()), Some(alpn));
        assert_eq!(alpn.name().as_bytes(), alpn.as_bytes());
    }
    assert_eq!(Alpn::from_bytes(b"h3"), None);
}
