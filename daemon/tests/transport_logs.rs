//! A peer refused at the handshake is logged by its device id, and never by its key.
//!
//! This test lives in its own binary because it installs a process-wide log subscriber:
//! a thread-local one races with other tests over tracing's per-callsite cache and
//! misses events now and then.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use data_encoding::{BASE32_NOPAD, BASE64, HEXLOWER};
use hearthd::transport::{connection_error, Alpn, DeviceKey, Transport, TrustSet};

const LOCALHOST: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn refused_peer_is_logged_by_device_id_and_never_by_key() {
    // 1. Capture everything, at every level.
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .init();

    // 2. A device unknown to Alice dials her for sync and is refused. It holds the
    //    household secret (as a removed device would), so it gets as far as showing its
    //    certificate; a stranger without it would not even be seen.
    let household = || vec![zeroize::Zeroizing::new([0x11u8; 32])];
    let alice_key = DeviceKey::generate().unwrap();
    let alice_trust = TrustSet::new();
    alice_trust.set_household_secrets(household());
    let alice = Transport::bind(LOCALHOST, &alice_key, alice_trust).unwrap();
    let alice_addr = alice.local_addr().unwrap();
    let stranger_key = DeviceKey::generate().unwrap();
    let stranger_trust = TrustSet::new();
    stranger_trust.set_household_secrets(household());
    stranger_trust.insert(alice_key.public_key());
    let stranger = Transport::bind(LOCALHOST, &stranger_key, stranger_trust).unwrap();

    let listener = async {
        let incoming = alice.accept().await.unwrap();
        incoming.handshake().await
    };
    let dialer = async {
        let dialed = stranger
            .connect(alice_addr, Alpn::Sync, Some(alice_key.public_key()))
            .await?;
        // A sync `connect` returns only once Alice proved her key, which she does only
        // after admitting the dialler; were it to return, wait for the refusal anyway.
        let connection = dialed.connection;
        Err(connection_error(&connection, connection.closed().await))
    };
    let (accepted, dialed) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(listener, dialer)
    })
    .await
    .unwrap();
    assert!(accepted.is_err());
    let dialed: Result<(), _> = dialed;
    assert!(dialed.unwrap_err().is_refusal());

    // 3. The refusal names the stranger by device id; no encoding of any key appears.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains(&stranger_key.device_id().to_string()),
        "refusal not logged by device id:\n{text}"
    );
    for key in [stranger_key.public_key(), alice_key.public_key()] {
        for encoded in [
            HEXLOWER.encode(&key),
            BASE32_NOPAD.encode(&key),
            BASE64.encode(&key),
        ] {
            assert!(
                !text.contains(&encoded),
                "a public key leaked into the logs"
            );
        }
    }
}
