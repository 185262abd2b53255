//! Transport tests over real QUIC on 127.0.0.1, port 0 only.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use data_encoding::HEXLOWER;

use super::*;

const LOCALHOST: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
/// The household secret the test devices share unless a test says otherwise.
const HOUSEHOLD: [u8; 32] = [0x11; 32];
/// Another household's secret.
const ELSEWHERE: [u8; 32] = [0x22; 32];

/// Generous bound so a refusal that silently turned into a hang fails the test instead.
async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("timed out")
}

/// Accepts one connection attempt on `transport` and runs its handshake.
async fn accept_one(transport: &Transport) -> Result<Accepted, TransportError> {
    let incoming = within(transport.accept()).await.unwrap();
    within(incoming.handshake()).await
}

/// `dialer` dials `listener` for sync while `listener` accepts: both outcomes.
async fn sync_attempt(
    listener: &Transport,
    dialer: &Transport,
) -> (
    Result<Accepted, TransportError>,
    Result<Dialed, TransportError>,
) {
    let addr = listener.local_addr().unwrap();
    tokio::join!(
        accept_one(listener),
        within(dialer.connect(addr, Alpn::Sync, None))
    )
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
        Self::bound_at(key, LOCALHOST)
    }

    fn bound_at(key: DeviceKey, bind: SocketAddr) -> Self {
        let trust = TrustSet::new();
        trust.set_household_secrets(vec![Zeroizing::new(HOUSEHOLD)]);
        let transport = Transport::bind(bind, &key, trust.clone()).unwrap();
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
        accept_one(&self.transport).await
    }

    fn in_household(self, secret: [u8; 32]) -> Self {
        self.trust
            .set_household_secrets(vec![Zeroizing::new(secret)]);
        self
    }

    async fn dial(&self, to: &Device, alpn: Alpn) -> Result<quinn::Connection, TransportError> {
        self.dial_proven(to, alpn)
            .await
            .map(|dialed| dialed.connection)
    }

    async fn dial_proven(&self, to: &Device, alpn: Alpn) -> Result<Dialed, TransportError> {
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
        let dialed = bob.dial_proven(&alice, Alpn::Sync).await.unwrap();
        // Alice's device key was proved inside the channel; her certificate carried a
        // one-time cover key.
        assert_eq!(dialed.peer, alice.key.public_key());
        assert_eq!(dialed.peer_device_id(), alice.key.device_id());
        let shown = peer_public_key(&dialed.connection).unwrap();
        assert_ne!(shown, alice.key.public_key());
        let connection = dialed.connection;
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
async fn the_default_listen_address_serves_ipv4_peers_and_dials_them_too() {
    // Alice listens as the default config does, on `[::]`; Bob only speaks IPv4.
    let alice = Device::bound_at(
        DeviceKey::generate().unwrap(),
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
    );
    let bob = Device::new();
    alice.trusts(&bob);
    bob.trusts(&alice);
    let alice_v4 = SocketAddr::from(([127, 0, 0, 1], alice.addr.port()));
    for dialer_is_bob in [true, false] {
        let (from, to) = if dialer_is_bob {
            (&bob, &alice)
        } else {
            (&alice, &bob)
        };
        let target = if dialer_is_bob { alice_v4 } else { bob.addr };
        let listener = async { answer(&to.accept_one().await.unwrap(), b"hi").await };
        let dialer = async {
            let dialed = within(from.transport.connect(
                target,
                Alpn::Sync,
                Some(to.key.public_key()),
            ))
            .await
            .unwrap();
            let reply = request(&dialed.connection, b"hello").await.unwrap();
            close(&dialed.connection, CloseReason::Done);
            reply
        };
        let (received, reply) = tokio::join!(listener, dialer);
        assert_eq!(
            (received.as_slice(), reply.as_slice()),
            (&b"hello"[..], &b"hi"[..])
        );
    }
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
    let dialer = async { bob.dial(&alice, Alpn::Sync).await.map(|_| ()) };
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

/// Waits for `accepted` to be closed by its peer and returns the close code.
async fn closed_code(accepted: Result<Accepted, TransportError>) -> Option<CloseReason> {
    let accepted = accepted.ok()?;
    match within(accepted.connection.closed()).await {
        quinn::ConnectionError::ApplicationClosed(close) => {
            CloseReason::from_code(close.error_code)
        }
        _ => None,
    }
}

#[tokio::test]
async fn dialer_refuses_a_listener_it_does_not_trust() {
    // Alice would accept Bob, but Bob does not trust Alice's device key. Her cover names
    // her key (under the household secret), so Bob aborts before sending his
    // certificate, and Alice never gets a connection.
    let alice = Device::new();
    let bob = Device::new();
    alice.trusts(&bob);

    let (accepted, dialed) = tokio::join!(alice.accept_one(), bob.dial(&alice, Alpn::Sync));

    assert!(
        matches!(dialed, Err(TransportError::PeerNotTrusted { .. })),
        "{dialed:?}"
    );
    assert!(
        matches!(accepted, Err(TransportError::RefusedByPeer { .. })),
        "{accepted:?}"
    );
}

#[tokio::test]
async fn a_cover_from_another_household_is_refused_before_the_dialer_shows_its_certificate() {
    // Bob trusts Alice's key, but Alice listens with another household's secret: Bob
    // refuses her cover certificate and aborts, so Alice never sees his certificate (her
    // policy is never asked about any key).
    let alice_key = DeviceKey::generate().unwrap();
    let alice_trust = Arc::new(CountingTrust::default());
    alice_trust
        .inner
        .set_household_secrets(vec![Zeroizing::new(ELSEWHERE)]);
    let alice_transport = Transport::bind(LOCALHOST, &alice_key, alice_trust.clone()).unwrap();
    let bob = Device::new();
    bob.trust.insert(alice_key.public_key());
    alice_trust.inner.insert(bob.key.public_key());

    let (accepted, dialed) = sync_attempt(&alice_transport, &bob.transport).await;
    assert!(
        matches!(dialed, Err(TransportError::PeerNotTrusted { .. })),
        "{dialed:?}"
    );
    assert!(
        matches!(accepted, Err(TransportError::RefusedByPeer { .. })),
        "{accepted:?}"
    );
    assert_eq!(
        alice_trust
            .sync_checks
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the listener was shown no client certificate"
    );

    // A dialler with no household secret at all refuses every cover the same way.
    let lonely = Device::new();
    lonely.trust.set_household_secrets(Vec::new());
    lonely.trust.insert(alice_key.public_key());
    let (accepted, dialed) = sync_attempt(&alice_transport, &lonely.transport).await;
    assert!(dialed.unwrap_err().is_refusal());
    assert!(accepted.is_err());
    assert_eq!(
        alice_trust
            .sync_checks
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

/// A [`TrustSet`] that counts how often it was asked about a sync key.
#[derive(Debug, Default)]
struct CountingTrust {
    inner: TrustSet,
    sync_checks: std::sync::atomic::AtomicUsize,
}

impl TrustPolicy for CountingTrust {
    fn allows_sync(&self, peer: &PublicKey) -> bool {
        self.sync_checks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.allows_sync(peer)
    }
    fn pairing_open(&self) -> bool {
        self.inner.pairing_open()
    }
    fn household_secrets(&self) -> Vec<Zeroizing<[u8; 32]>> {
        self.inner.household_secrets()
    }
    fn known_keys(&self) -> Vec<PublicKey> {
        self.inner.known_keys()
    }
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
    let dialer = async { mallory.dial(&alice, Alpn::Sync).await.map(|_| ()) };
    let (accepted, dialed) = tokio::join!(alice.accept_one(), dialer);

    assert!(
        matches!(accepted, Err(TransportError::PeerNotTrusted { .. })),
        "{accepted:?}"
    );
    assert!(dialed.unwrap_err().is_refusal());
}

#[tokio::test]
async fn listener_with_a_stolen_certificate_is_refused_by_the_dialer() {
    // Mallory listens with Alice's certificate and her own key (and the household
    // secret); Bob dials expecting Alice. Mallory cannot prove Alice's key inside the
    // channel, only her own, and Bob refuses it before any application data.
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
    assert!(closed_code(accepted).await.is_some());
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
    let dialer = async { bob.dial(&alice, Alpn::Sync).await.map(|_| ()) };
    let (accepted, dialed) = tokio::join!(alice.accept_one(), dialer);
    assert!(
        matches!(accepted, Err(TransportError::PeerNotTrusted { .. })),
        "{accepted:?}"
    );
    // Bob learns which device refused him: Alice's cover named her to the household.
    match dialed {
        Err(TransportError::RefusedByPeer { by, .. }) => {
            assert_eq!(by, Some(alice.key.device_id()));
        }
        other => panic!("{other:?}"),
    }
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
        let shown = accepted.local_tls_key.unwrap();
        (shown, answer(&accepted, b"spake2 b").await)
    };
    let dialer = async {
        let dialed = pair(&bob, &alice).await.unwrap();
        let connection = dialed.connection;
        assert_eq!(peer_public_key(&connection), Some(dialed.peer));
        let reply = request(&connection, b"spake2 a").await.unwrap();
        close(&connection, CloseReason::Done);
        (dialed.peer, reply)
    };
    let ((shown, received), (seen, reply)) = tokio::join!(listener, dialer);
    assert_eq!(received, b"spake2 a");
    assert_eq!(reply, b"spake2 b");
    // Alice showed a one-time key, not her device key; the pairing handshake binds the
    // key each side actually saw.
    assert_eq!(shown, seen);
    assert_ne!(seen, alice.key.public_key());

    // 4. The open invite does not let Bob's unknown key sync.
    bob.trusts(&alice);
    let dialer = async { bob.dial(&alice, Alpn::Sync).await.map(|_| ()) };
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

/// A dialler's verifier that accepts any certificate (checking only the handshake
/// signature) and keeps a copy of each: what a stranger who dials takes home.
#[derive(Debug, Default)]
struct Recorder {
    seen: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl rustls::client::danger::ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.seen.lock().unwrap().push(end_entity.to_vec());
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::PeerIncompatible::Tls13RequiredForQuic.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        vec![rustls::SignatureScheme::ED25519]
    }
}

#[tokio::test]
async fn a_stranger_who_dials_gets_a_fresh_cover_and_never_the_device_key() {
    // 1. Alice listens. A stranger dials her for sync three times, accepting whatever
    //    certificate she shows and presenting its own device certificate.
    let alice = Device::new();
    let stranger = Device::new().in_household(ELSEWHERE);
    let recorder = Arc::new(Recorder::default());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_client_cert_resolver(Arc::new(verify::DialerCertResolver {
            certified: Arc::clone(&stranger.key.certified),
        }));
    tls.alpn_protocols = vec![ALPN_SYNC.to_vec()];
    tls.enable_sni = false;
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    for _ in 0..3 {
        let dial = async {
            let connection = stranger
                .transport
                .endpoint()
                .connect_with(config.clone(), alice.addr, SERVER_NAME)
                .unwrap()
                .await
                .unwrap();
            // Anything Alice would say inside the channel comes on a stream; the
            // refusal arrives instead.
            let error = within(connection.accept_bi()).await.unwrap_err();
            connection_error(&connection, error)
        };
        let (accepted, ended) = tokio::join!(alice.accept_one(), dial);
        assert!(
            matches!(accepted, Err(TransportError::PeerNotTrusted { .. })),
            "{accepted:?}"
        );
        assert!(
            matches!(ended, TransportError::RefusedByPeer { .. }),
            "{ended:?}"
        );
    }

    // 2. What the stranger took home: three different certificates, none holding
    //    Alice's key, her device id or the program's name.
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let keys: std::collections::BTreeSet<PublicKey> = seen
        .iter()
        .map(|der| verify::ed25519_public_key(&CertificateDer::from(der.clone())).unwrap())
        .collect();
    assert_eq!(keys.len(), 3, "each dial meets a new key");
    let id = alice.key.device_id().to_string();
    let bare: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    for der in &seen {
        assert_ne!(der.as_slice(), alice.key.certificate_der());
        for needle in [
            &alice.key.public_key()[..],
            HEXLOWER.encode(&alice.key.public_key()).as_bytes(),
            id.as_bytes(),
            bare.as_bytes(),
            b"hearth",
        ] {
            assert!(!test_contains(der, needle), "a cover holds {needle:?}");
        }
    }
    assert!(!keys.contains(&alice.key.public_key()));
}

#[tokio::test]
async fn a_proof_binds_the_key_to_its_own_connection() {
    // Two connections between the same devices (pairing ALPN, which carries no proof of
    // its own), to check the proof format in isolation.
    let alice = Device::new();
    let bob = Device::new();
    let _window = alice.trust.open_pairing();
    let mut links = Vec::new();
    for _ in 0..2 {
        let (accepted, dialed) = tokio::join!(
            alice.accept_one(),
            within(bob.transport.connect(alice.addr, Alpn::Pair, None))
        );
        links.push((accepted.unwrap().connection, dialed.unwrap().connection));
    }
    let signer = Ed25519KeyPair::from_pkcs8_maybe_unchecked(alice.key.pkcs8()).unwrap();
    let (listener, dialer) = &links[0];
    let proof = cover::proof(listener, &signer).unwrap();
    assert_eq!(
        cover::proven_key(dialer, &proof),
        Some(alice.key.public_key())
    );
    // Replayed on another connection: refused.
    assert_eq!(cover::proven_key(&links[1].1, &proof), None);
    // Claiming another key with Alice's signature: refused.
    let mut claimed = proof;
    claimed[1..33].copy_from_slice(&bob.key.public_key());
    assert_eq!(cover::proven_key(dialer, &claimed), None);
    // Signed by someone else: refused.
    let mallory =
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(DeviceKey::generate().unwrap().pkcs8()).unwrap();
    let mut forged = cover::proof(listener, &mallory).unwrap();
    forged[1..33].copy_from_slice(&alice.key.public_key());
    assert_eq!(cover::proven_key(dialer, &forged), None);
    assert_eq!(cover::proven_key(dialer, &proof[..40]), None);
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
        for id in alpn.protocol_ids() {
            assert_eq!(Alpn::from_bytes(id), Some(alpn));
        }
    }
    assert_eq!(Alpn::from_bytes(ALPN_SYNC_LEAN), Some(Alpn::Sync));
    assert_eq!(Alpn::from_bytes(b"h3"), None);
}

#[tokio::test]
#[ignore = "known bug: a dialler accepts covers under every kept epoch, including the ones a removed device or an ex-partner still holds, and shows its device certificate to them; the fix is a protocol change (see the review report)"]
async fn a_removed_device_holding_an_old_epoch_never_sees_a_dialers_certificate() {
    // Bob and his phone trust each other. A device that was removed (or the partner's,
    // after a leaving) kept the household secret of the epoch before the change, and
    // Bob keeps it too (it is one of his older epochs, so devices that missed the
    // change are still found). The removed device announces under that epoch's labels
    // and listens with covers that name Bob's phone, a key it knows from the roster.
    const OLD: [u8; 32] = HOUSEHOLD;
    const NEW: [u8; 32] = [0x33; 32];
    let phone = DeviceKey::generate().unwrap();
    let removed_key = DeviceKey::generate().unwrap();
    let removed_trust = Arc::new(CountingTrust::default());
    removed_trust
        .inner
        .set_household_secrets(vec![Zeroizing::new(OLD)]);
    let removed = Transport::bind(
        LOCALHOST,
        &impostor(&phone, &removed_key),
        removed_trust.clone(),
    )
    .unwrap();
    let bob = Device::new();
    bob.trust
        .set_household_secrets(vec![Zeroizing::new(NEW), Zeroizing::new(OLD)]);
    bob.trust.insert(phone.public_key());
    bob.trust.set_known([removed_key.public_key()]);

    // Bob's discovery recognises the old labels and dials the address behind them.
    let (_accepted, dialed) = sync_attempt(&removed, &bob.transport).await;
    assert!(dialed.is_err(), "{dialed:?}");
    // The removed device must never be shown Bob's certificate: it would recognise his
    // device on any network, for as long as Bob keeps the old epoch.
    assert_eq!(
        removed_trust
            .sync_checks
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the removed device was shown the dialler's device certificate"
    );
}

#[tokio::test]
async fn two_new_devices_agree_on_the_lean_layout_and_an_older_one_gets_the_classic() {
    // Alice and Bob both know `hearth/2`; Carol is a device from before it.
    let alice = Device::new();
    let bob = Device::new();
    let mut carol = Device::new();
    carol.transport = carol.transport.classic_only();
    for (a, b) in [(&alice, &bob), (&alice, &carol), (&bob, &carol)] {
        a.trusts(b);
        b.trusts(a);
    }
    let form = |connection: &quinn::Connection| negotiated_sync_form(connection);
    for (listener, dialer, expected) in [
        (&alice, &bob, WireForm::Lean),
        (&alice, &carol, WireForm::Classic),
        (&carol, &bob, WireForm::Classic),
    ] {
        let (accepted, dialed) = sync_attempt(&listener.transport, &dialer.transport).await;
        let (accepted, dialed) = (accepted.unwrap(), dialed.unwrap());
        // Both ends read the same layout off the handshake, and both see sync.
        assert_eq!(accepted.alpn, Alpn::Sync);
        assert_eq!(negotiated_alpn(&dialed.connection), Some(Alpn::Sync));
        assert_eq!(form(&accepted.connection), expected);
        assert_eq!(form(&dialed.connection), expected);
        close(&dialed.connection, CloseReason::Done);
    }
}
