//! Bad input at every boundary of a real daemon gets a clear error and changes nothing:
//! the control socket (invalid UTF-8, truncated and unknown requests, JSON nested a
//! million levels deep, a line over the size cap), the sync protocol (oversized frames,
//! truncated CBOR, unknown message types, invalid UTF-8, messages out of turn or from
//! the wrong device), the pairing protocol, and an import whose ids conflict.
//!
//! After each attack the daemon must still answer, with the same document heads.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{invite, notes, secrets_of, wait_for_invite, write, Ended, RawPeer};
use hearth_api::client::ClientError;
use hearth_api::{DocCall, ErrorCode, Response, MAX_REQUEST_BYTES};
use hearth_core::sync::{
    encode_frame, encode_frame_as, ApplicationErrorCode, Message, PeerId, PeerMetadata, WireForm,
};
use hearth_tests::harness::{pair, wait_converged, TestDaemon};
use hearthd::transport::Alpn;
use serde_json::json;

/// Heads of both documents, to show that nothing changed.
fn heads(d: &TestDaemon) -> Vec<Vec<String>> {
    d.status()
        .unwrap()
        .documents
        .into_iter()
        .map(|doc| doc.heads)
        .collect()
}

/// Writes raw bytes on a fresh control connection and returns the responses.
fn raw(d: &TestDaemon, bytes: &[u8]) -> Vec<Response> {
    let mut stream = UnixStream::connect(&d.paths.socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The daemon may hang up before reading everything (an over-long line); the
    // answer it sent first is what matters.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    BufReader::new(stream)
        .lines()
        .map_while(Result::ok)
        .map(|line| serde_json::from_str(&line).unwrap())
        .collect()
}

fn only_error(responses: &[Response]) -> &hearth_api::ApiError {
    assert_eq!(responses.len(), 1, "{responses:?}");
    let e = responses[0].error.as_ref().unwrap();
    assert!(e.hint.is_some(), "an error without a next step: {e:?}");
    e
}

#[test]
fn the_control_socket_refuses_bad_lines_and_keeps_serving() {
    let d = TestDaemon::start().unwrap();
    d.init("Ada").unwrap();
    write(&d, "kept").unwrap();
    let before = heads(&d);

    // Invalid UTF-8, inside an otherwise plausible request.
    let mut line =
        br#"{"v":1,"id":1,"method":"moment.add","params":{"kind":"laugh","note":""#.to_vec();
    line.extend_from_slice(b"\xff\xfe\xc3\x28");
    line.extend_from_slice(b"\"}}\n");
    let e = only_error(&raw(&d, &line)).clone();
    assert_eq!(e.code, ErrorCode::Invalid);
    assert!(e.message.contains("not valid JSON"), "{}", e.message);

    // Truncated JSON, an unknown method, wrong parameter types, a future version.
    for (bytes, code) in [
        (
            &br#"{"v":1,"id":2,"method":"moment.add","params":{"kind":"la"#[..],
            ErrorCode::Invalid,
        ),
        (
            br#"{"v":1,"id":3,"method":"drop.tables"}"#,
            ErrorCode::Invalid,
        ),
        (
            br#"{"v":1,"id":4,"method":"checkin.add","params":{"battery":"full"}}"#,
            ErrorCode::Invalid,
        ),
        (
            br#"{"v":1,"id":5,"method":"checkin.add","params":{"battery":4000}}"#,
            ErrorCode::Invalid,
        ),
        (br#"{"v":99,"id":6,"method":"status"}"#, ErrorCode::Version),
        (
            br#"{"v":1,"id":18446744073709551616,"method":"status"}"#,
            ErrorCode::Invalid,
        ),
        (b"\0\0\0\0", ErrorCode::Invalid),
        (b"", ErrorCode::Invalid),
    ] {
        let mut line = bytes.to_vec();
        line.push(b'\n');
        let e = only_error(&raw(&d, &line)).clone();
        assert_eq!(e.code, code, "{}: {e:?}", String::from_utf8_lossy(bytes));
    }

    // JSON nested a million levels deep, bare and inside an import request.
    let deep = |open: &str, close: &str| -> Vec<u8> {
        let mut s = open.repeat(1_000_000);
        s.push_str(&close.repeat(1_000_000));
        s.into_bytes()
    };
    let mut arrays = deep("[", "]");
    arrays.push(b'\n');
    let e = only_error(&raw(&d, &arrays)).clone();
    assert_eq!(e.code, ErrorCode::Invalid);
    assert!(e.message.contains("recursion limit"), "{}", e.message);
    let mut import = br#"{"v":1,"id":7,"method":"import","params":{"data":"#.to_vec();
    import.extend(deep(r#"{"a":"#, "}"));
    import.extend_from_slice(b"}}\n");
    assert_eq!(only_error(&raw(&d, &import)).code, ErrorCode::Invalid);

    // A line over the cap: refused with an error, and that connection is closed.
    let mut huge = vec![b' '; MAX_REQUEST_BYTES + 1];
    huge.push(b'\n');
    let e = only_error(&raw(&d, &huge)).clone();
    assert!(e.message.contains("longer than"), "{}", e.message);

    // Several bad lines then a good one on the same connection: each gets its answer.
    let responses = raw(
        &d,
        b"nope\n{\"v\":1,\"id\":8}\n{\"v\":1,\"id\":9,\"method\":\"status\"}\n",
    );
    assert_eq!(responses.len(), 3, "{responses:?}");
    assert!(responses[0].error.is_some() && responses[1].error.is_some());
    assert_eq!(responses[2].id, 9);
    assert!(responses[2].ok.is_some());

    // Many connections dropped half way through a line.
    for _ in 0..200 {
        let mut s = UnixStream::connect(&d.paths.socket).unwrap();
        s.write_all(br#"{"v":1,"id":1,"method":"mom"#).unwrap();
    }

    // Through all of it: still serving, and nothing changed.
    assert_eq!(d.status().unwrap().state, "ready");
    assert_eq!(heads(&d), before);
    assert_eq!(notes(&d), ["kept".to_string()].into());
}

#[test]
fn an_import_with_conflicting_ids_changes_nothing() {
    let d = TestDaemon::start().unwrap();
    d.init("Ada").unwrap();
    write(&d, "original").unwrap();
    let mut export = d.call(DocCall::Export).unwrap();
    let before = heads(&d);
    // One record keeps its id but says something else; another is new. All or nothing:
    // the new one must not be imported either.
    let moments = export["records"]["moments"].as_array_mut().unwrap();
    let mut fresh = moments[0].clone();
    moments[0]["note"] = json!("rewritten");
    fresh["id"] = json!("00000000-0000-4000-8000-00000000beef");
    fresh["note"] = json!("smuggled");
    moments.push(fresh);
    let err = d.call(DocCall::Import { data: export }).unwrap_err();
    match err {
        ClientError::Api(e) => {
            assert_eq!(e.code, ErrorCode::Invalid);
            assert!(e.message.contains("same id"), "{}", e.message);
            assert!(e.hint.unwrap().contains("nothing was imported"));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(heads(&d), before);
    assert_eq!(notes(&d), ["original".to_string()].into());
}

/// Hostile frames from a device that *is* on the roster (its key was taken from its data
/// directory): every malformed frame closes the connection with its own error code, the
/// daemon's documents do not move, and the real device syncs fine afterwards.
#[test]
fn hostile_sync_frames_close_the_connection_with_a_code_and_change_nothing() {
    let a = TestDaemon::start().unwrap();
    let mut b = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    pair(&a, &b).unwrap();
    write(&a, "before").unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    let b_secrets = secrets_of(&b.paths.data_dir);
    let a_key = secrets_of(&a.paths.data_dir).device_public_key();
    let b_device = hearth_core::identity::DeviceId::from_public_key(&b_secrets.device_public_key());
    let a_device = hearth_core::identity::DeviceId::from_public_key(&a_key);
    let listen = b.addr().unwrap();
    b.stop().unwrap();
    let before = heads(&a);
    let addr = a.addr().unwrap();
    let household = *secrets_of(&a.paths.data_dir).household_secret().unwrap();
    let raw = || RawPeer::new(Some(b_secrets.device_pkcs8()), &[a_key]).in_household(household);
    let peer = raw().classic_only();

    let frame = |payload: &[u8]| -> Vec<u8> {
        let mut f = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    };
    // CBOR by hand: {"type": <text>} with the text's bytes as given.
    let type_only = |kind: &[u8]| -> Vec<u8> {
        let mut m = vec![0xa1, 0x64];
        m.extend_from_slice(b"type");
        m.push(0x60 + u8::try_from(kind.len()).unwrap());
        m.extend_from_slice(kind);
        m
    };
    let join = |sender: &hearth_core::identity::DeviceId| {
        encode_frame(&Message::Join {
            sender_id: PeerId::from(sender),
            peer_metadata: PeerMetadata::default(),
            supported_protocol_versions: vec!["1".into()],
        })
        .unwrap()
    };
    let early_sync = encode_frame(&Message::Sync {
        sender_id: PeerId::from(&b_device),
        target_id: PeerId::from(&a_device),
        document_id: hearth_core::sync::DocId::household(),
        data: vec![0x42, 1, 2, 3],
    })
    .unwrap();
    let code = |c: ApplicationErrorCode| Ended::Code(u64::from(c.as_u32()));
    let mut deep = vec![0x81u8; 100_000];
    deep.push(0x00);
    let cases: Vec<(&str, Vec<u8>, Ended)> = vec![
        (
            "oversized frame",
            vec![0xff, 0xff, 0xff, 0xff, 0xa1],
            code(ApplicationErrorCode::FrameTooLarge),
        ),
        (
            "truncated CBOR",
            frame(&[0xa2, 0x64, b't', b'y', b'p']),
            code(ApplicationErrorCode::MalformedFrame),
        ),
        (
            "unknown message type",
            frame(&type_only(b"gossip")),
            code(ApplicationErrorCode::UnknownMessageType),
        ),
        (
            "invalid UTF-8",
            frame(&type_only(b"jo\xffn")),
            code(ApplicationErrorCode::MalformedFrame),
        ),
        (
            "CBOR nested 100000 deep",
            frame(&deep),
            code(ApplicationErrorCode::MalformedFrame),
        ),
        (
            "sync before join",
            early_sync,
            code(ApplicationErrorCode::ProtocolViolation),
        ),
        (
            "join as another device",
            join(&a_device),
            code(ApplicationErrorCode::PeerMismatch),
        ),
        (
            "bad sync data after a good join",
            [join(&b_device), frame(&[0xa1])].concat(),
            code(ApplicationErrorCode::MalformedFrame),
        ),
    ];
    for (what, bytes, expected) in cases {
        let ended = peer.send_and_wait_close(&addr, Alpn::Sync, &bytes);
        assert_eq!(ended, expected, "{what}");
        assert_eq!(heads(&a), before, "{what} changed the documents");
    }
    // The same on a lean (`hearth/2`) link, whose messages name no device at all, so
    // there is no other device to claim to be.
    let lean = |message: &Message| encode_frame_as(message, WireForm::Lean).unwrap();
    let lean_join = lean(&Message::Join {
        sender_id: PeerId::from(&a_device),
        peer_metadata: PeerMetadata::default(),
        supported_protocol_versions: vec!["1".into()],
    });
    let lean_cases: Vec<(&str, Vec<u8>, Ended)> = vec![
        (
            "lean: an unknown tag",
            frame(&[0x81, 0x18, 0x63]),
            code(ApplicationErrorCode::UnknownMessageType),
        ),
        (
            "lean: a classic map",
            frame(&type_only(b"join")),
            code(ApplicationErrorCode::MalformedFrame),
        ),
        (
            "lean: truncated",
            frame(&[0x83, 0x03]),
            code(ApplicationErrorCode::MalformedFrame),
        ),
        (
            "lean: sync before join",
            lean(&Message::Sync {
                sender_id: PeerId::from(&b_device),
                target_id: PeerId::from(&a_device),
                document_id: hearth_core::sync::DocId::household(),
                data: vec![0x42, 1, 2, 3],
            }),
            code(ApplicationErrorCode::ProtocolViolation),
        ),
        (
            "lean: bad sync data after a good join",
            [lean_join, frame(&[0x80])].concat(),
            code(ApplicationErrorCode::MalformedFrame),
        ),
    ];
    let peer = raw();
    for (what, bytes, expected) in lean_cases {
        let ended = peer.send_and_wait_close(&addr, Alpn::Sync, &bytes);
        assert_eq!(ended, expected, "{what}");
        assert_eq!(heads(&a), before, "{what} changed the documents");
    }
    assert_eq!(a.status().unwrap().state, "ready");
    a.wait_for_log("closing a connection that sent a bad frame")
        .unwrap();

    // The real device comes back and syncs as before.
    drop(peer);
    let b = TestDaemon::start_with(&b.paths.data_dir.clone(), &listen).unwrap();
    write(&a, "after").unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    assert_eq!(
        notes(&b),
        ["after".to_string(), "before".to_string()].into()
    );
}

/// Garbage on the pairing protocol burns the invite and leaves the roster alone.
#[test]
fn hostile_pairing_bytes_burn_the_invite_and_add_nobody() {
    let a = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    let people = a.status().unwrap().people.len();
    for bytes in [
        vec![0xff, 0xff, 0xff, 0xff],
        vec![0, 0, 0, 3, 0xa1, 0x64, b't'],
        b"\0\0\0\x0b{\"type\":1}\xff".to_vec(),
    ] {
        let (_, addr) = invite(&a);
        let waiter = wait_for_invite(&a);
        let peer = RawPeer::new(None, &[]);
        let ended = peer.send_and_wait_close(&addr, Alpn::Pair, &bytes);
        assert!(matches!(ended, Ended::Code(_)), "{ended:?}");
        match waiter.join().unwrap() {
            Err(ClientError::Api(e)) => assert_eq!(e.code, ErrorCode::Invalid, "{e:?}"),
            other => panic!("the invite survived garbage: {other:?}"),
        }
        // The invite is gone: the same peer cannot even start again.
        let again = peer.send_and_wait_close(&addr, Alpn::Pair, &bytes);
        assert!(matches!(again, Ended::Other(_)), "{again:?}");
    }
    let status = a.status().unwrap();
    assert_eq!(status.people.len(), people);
    assert!(status.peers.is_empty());
}

/// The CLI refuses a future `--at`, but the daemon is where the rule must hold: a JSON
/// client (or a modified one) sending a future time or an offset no place uses gets a
/// clear refusal, and nothing is written.
#[test]
fn a_json_client_cannot_date_an_entry_in_the_future() {
    let d = TestDaemon::start().unwrap();
    d.init("Ada").unwrap();
    let before = heads(&d);
    let tomorrow = chrono::Utc::now().timestamp_millis() + 86_400_000;
    for (params, says) in [
        (
            json!({"kind": "laugh", "at": tomorrow, "utc_offset_min": 0}),
            "future",
        ),
        (
            json!({"kind": "laugh", "utc_offset_min": 100_000}),
            "offset",
        ),
    ] {
        let line = format!(
            "{}\n",
            json!({"v": 1, "id": 1, "method": "moment.add", "params": params})
        );
        let e = only_error(&raw(&d, line.as_bytes())).clone();
        assert_eq!(e.code, ErrorCode::Invalid, "{e:?}");
        assert!(e.message.contains(says), "{}", e.message);
    }
    assert_eq!(heads(&d), before);
    // A note of blanks is no note.
    let line = format!(
        "{}\n",
        json!({"v": 1, "id": 2, "method": "moment.add", "params": {"kind": "laugh", "note": "  \n "}})
    );
    let answered = raw(&d, line.as_bytes());
    assert!(answered[0].error.is_none(), "{answered:?}");
    let logged = d
        .call(DocCall::Log(hearth_api::LogParams::default()))
        .unwrap();
    assert!(logged[0]["record"].get("note").is_none(), "{logged}");
}
