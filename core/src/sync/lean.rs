//! The lean layout of the sync vocabulary, spoken on `hearth/2` connections.
//!
//! The messages mean exactly what they mean in [`super::message`]; only their bytes
//! differ. Every classic message names its sender and its target (two device ids,
//! 54 bytes each) and spells out camelCase keys, although the pinned TLS connection
//! already binds both devices. A lean message is a CBOR array instead: a small integer
//! tag, then the fields in a fixed order, and no ids at all. The decoder fills the ids
//! in from the connection's two ends ([`LinkEnds`]), so the session checks the same
//! values it would check on a classic connection, and they can only be the right ones.
//!
//! Which layout a connection speaks is settled by ALPN during the TLS handshake, before
//! any frame, so neither side ever has to guess or retry. A device that only knows
//! `hearth/1` keeps speaking the classic layout.
//!
//! Layouts, by tag (`doc` is `0` for the household document, else its id as text;
//! `meta` is `[isEphemeral, storageId or null, hearthEpoch or null]`):
//!
//! | tag | message | fields |
//! |---|---|---|
//! | 0 | `join` | supported versions (array of text), `meta` |
//! | 1 | `peer` | selected version (text), `meta` |
//! | 2 | `request` | `doc`, data (bytes) |
//! | 3 | `sync` | `doc`, data (bytes) |
//! | 4 | `doc-unavailable` | `doc` |
//! | 5 | `hearth-proofs` | `doc`, proofs (array of bytes) |
//! | 6 | `hearth-epoch` | number, secret (32 bytes) |
//! | 7 | `error` | message (text) |
//!
//! Fields past the last known one are ignored, so a newer peer may append; every bound
//! the classic decoder enforces (id lengths, proof counts and sizes, the epoch secret's
//! length, the error text's length) holds here too.

use ciborium::value::{Integer, Value};

use super::frame::{text, FrameError};
use super::message::{
    Message, PeerId, PeerMetadata, MAX_EPOCH_TAG_LEN, MAX_PROOFS, MAX_PROOF_BYTES,
};
use super::{DocId, MAX_ID_LEN};

/// Which layout a connection's frames use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WireForm {
    /// automerge-repo's maps with ids and named keys (`hearth/1`).
    #[default]
    Classic,
    /// Tagged arrays without ids (`hearth/2`, this module).
    Lean,
}

/// The two devices of one connection, as the TLS handshake proved them: what a lean
/// message leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEnds {
    /// This device: the target of every message received.
    pub local: PeerId,
    /// The other device: the sender of every message received.
    pub remote: PeerId,
}

const JOIN: u8 = 0;
const PEER: u8 = 1;
const REQUEST: u8 = 2;
const SYNC: u8 = 3;
const DOC_UNAVAILABLE: u8 = 4;
const PROOFS: u8 = 5;
const EPOCH: u8 = 6;
const ERROR: u8 = 7;

/// The household document travels as this integer instead of its name.
const HOUSEHOLD: u8 = 0;

fn int(n: u8) -> Value {
    Value::Integer(n.into())
}

fn doc_value(doc: &DocId) -> Value {
    if *doc == DocId::household() {
        int(HOUSEHOLD)
    } else {
        text(doc.as_str())
    }
}

fn meta_value(meta: &PeerMetadata) -> Value {
    let opt = |field: &Option<String>| field.as_deref().map_or(Value::Null, text);
    Value::Array(vec![
        Value::Bool(meta.is_ephemeral),
        opt(&meta.storage_id),
        opt(&meta.household_epoch),
    ])
}

/// `message` in the lean layout. The ids it names are left out: the peer knows them.
pub(crate) fn to_value(message: &Message) -> Value {
    let fields = match message {
        Message::Join {
            peer_metadata,
            supported_protocol_versions,
            ..
        } => vec![
            int(JOIN),
            Value::Array(
                supported_protocol_versions
                    .iter()
                    .map(|v| text(v))
                    .collect(),
            ),
            meta_value(peer_metadata),
        ],
        Message::Peer {
            peer_metadata,
            selected_protocol_version,
            ..
        } => vec![
            int(PEER),
            text(selected_protocol_version),
            meta_value(peer_metadata),
        ],
        Message::Request {
            document_id, data, ..
        } => vec![
            int(REQUEST),
            doc_value(document_id),
            Value::Bytes(data.clone()),
        ],
        Message::Sync {
            document_id, data, ..
        } => vec![
            int(SYNC),
            doc_value(document_id),
            Value::Bytes(data.clone()),
        ],
        Message::DocUnavailable { document_id, .. } => {
            vec![int(DOC_UNAVAILABLE), doc_value(document_id)]
        }
        Message::Proofs {
            document_id,
            proofs,
            ..
        } => vec![
            int(PROOFS),
            doc_value(document_id),
            Value::Array(proofs.iter().map(|p| Value::Bytes(p.clone())).collect()),
        ],
        Message::Epoch { epoch, .. } => vec![
            int(EPOCH),
            Value::Integer(epoch.number.into()),
            Value::Bytes(epoch.secret.to_vec()),
        ],
        Message::Error { message } => vec![int(ERROR), text(message)],
    };
    Value::Array(fields)
}

/// Reads one lean message, naming `ends` as its sender and target.
pub(crate) fn from_value(value: Value, ends: &LinkEnds) -> Result<Message, FrameError> {
    let Value::Array(items) = value else {
        return Err(FrameError::NotAMessage);
    };
    let mut fields = Fields::new(items)?;
    let (sender_id, target_id) = (ends.remote.clone(), ends.local.clone());
    let message = match fields.kind {
        JOIN => Message::Join {
            sender_id,
            supported_protocol_versions: fields.text_array("supportedProtocolVersions")?,
            peer_metadata: fields.meta()?,
        },
        PEER => Message::Peer {
            sender_id,
            target_id,
            selected_protocol_version: fields.text("selectedProtocolVersion")?,
            peer_metadata: fields.meta()?,
        },
        REQUEST => Message::Request {
            sender_id,
            target_id,
            document_id: fields.doc()?,
            data: fields.bytes("data")?,
        },
        SYNC => Message::Sync {
            sender_id,
            target_id,
            document_id: fields.doc()?,
            data: fields.bytes("data")?,
        },
        DOC_UNAVAILABLE => Message::DocUnavailable {
            sender_id,
            target_id,
            document_id: fields.doc()?,
        },
        PROOFS => Message::Proofs {
            sender_id,
            target_id,
            document_id: fields.doc()?,
            proofs: fields.proofs()?,
        },
        EPOCH => {
            let number = fields.u64("number")?;
            let secret = zeroize::Zeroizing::new(fields.bytes("secret")?);
            let secret: [u8; 32] = secret
                .as_slice()
                .try_into()
                .map_err(|_| fields.invalid("secret"))?;
            Message::Epoch {
                sender_id,
                target_id,
                epoch: crate::epochs::Epoch::new(number, secret),
            }
        }
        _ => Message::error(&fields.text("message")?),
    };
    Ok(message)
}

/// The fields of one lean message, taken in order.
struct Fields {
    kind: u8,
    name: &'static str,
    rest: std::vec::IntoIter<Value>,
}

impl Fields {
    fn new(items: Vec<Value>) -> Result<Self, FrameError> {
        let mut rest = items.into_iter();
        let tag = match rest.next() {
            Some(Value::Integer(tag)) => tag,
            _ => return Err(FrameError::NotAMessage),
        };
        let kind = u8::try_from(tag).unwrap_or(u8::MAX);
        let name = match kind {
            JOIN => "join",
            PEER => "peer",
            REQUEST => "request",
            SYNC => "sync",
            DOC_UNAVAILABLE => "doc-unavailable",
            PROOFS => "hearth-proofs",
            EPOCH => "hearth-epoch",
            ERROR => "error",
            _ => {
                return Err(FrameError::UnknownType {
                    kind: format!("#{}", i128::from(tag)),
                })
            }
        };
        Ok(Self { kind, name, rest })
    }

    fn invalid(&self, field: &'static str) -> FrameError {
        FrameError::InvalidField {
            message: self.name,
            field,
        }
    }

    fn next(&mut self, field: &'static str) -> Result<Value, FrameError> {
        self.rest.next().ok_or(FrameError::MissingField {
            message: self.name,
            field,
        })
    }

    fn text(&mut self, field: &'static str) -> Result<String, FrameError> {
        match self.next(field)? {
            Value::Text(text) => Ok(text),
            _ => Err(self.invalid(field)),
        }
    }

    fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, FrameError> {
        match self.next(field)? {
            Value::Bytes(bytes) => Ok(bytes),
            _ => Err(self.invalid(field)),
        }
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, FrameError> {
        match self.next(field)? {
            Value::Integer(n) => u64::try_from(n).map_err(|_| self.invalid(field)),
            _ => Err(self.invalid(field)),
        }
    }

    fn text_array(&mut self, field: &'static str) -> Result<Vec<String>, FrameError> {
        let Value::Array(items) = self.next(field)? else {
            return Err(self.invalid(field));
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::Text(text) => Ok(text),
                _ => Err(self.invalid(field)),
            })
            .collect()
    }

    fn doc(&mut self) -> Result<DocId, FrameError> {
        const FIELD: &str = "documentId";
        match self.next(FIELD)? {
            Value::Integer(n) if n == Integer::from(HOUSEHOLD) => Ok(DocId::household()),
            Value::Text(id) if id.len() <= MAX_ID_LEN => Ok(DocId::new(id)),
            _ => Err(self.invalid(FIELD)),
        }
    }

    fn proofs(&mut self) -> Result<Vec<Vec<u8>>, FrameError> {
        const FIELD: &str = "proofs";
        match self.next(FIELD)? {
            Value::Array(items) if items.len() <= MAX_PROOFS => items
                .into_iter()
                .map(|item| match item {
                    Value::Bytes(bytes) if bytes.len() <= MAX_PROOF_BYTES => Ok(bytes),
                    _ => Err(self.invalid(FIELD)),
                })
                .collect(),
            _ => Err(self.invalid(FIELD)),
        }
    }

    fn meta(&mut self) -> Result<PeerMetadata, FrameError> {
        const FIELD: &str = "peerMetadata";
        let Value::Array(items) = self.next(FIELD)? else {
            return Err(self.invalid(FIELD));
        };
        let mut items = items.into_iter();
        let is_ephemeral = match items.next() {
            Some(Value::Bool(flag)) => flag,
            _ => return Err(self.invalid(FIELD)),
        };
        let mut bounded = |max: usize| match items.next() {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Text(text)) if text.len() <= max => Ok(Some(text)),
            Some(_) => Err(FrameError::InvalidField {
                message: self.name,
                field: FIELD,
            }),
        };
        Ok(PeerMetadata {
            is_ephemeral,
            storage_id: bounded(MAX_ID_LEN)?,
            household_epoch: bounded(MAX_EPOCH_TAG_LEN)?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sync::frame::{encode_frame_as, FrameDecoder};
    use crate::sync::message::MAX_ERROR_TEXT;

    fn ends() -> LinkEnds {
        LinkEnds {
            local: PeerId::new("LOCAL"),
            remote: PeerId::new("REMOTE"),
        }
    }

    fn lean_payload(message: &Message) -> Vec<u8> {
        encode_frame_as(message, WireForm::Lean).unwrap()[4..].to_vec()
    }

    fn decode(payload: &[u8]) -> Result<Message, FrameError> {
        Message::decode_as(payload, Some(&ends()))
    }

    #[test]
    fn a_lean_sync_names_no_device_and_takes_the_connections_ends() {
        let sent = Message::Sync {
            sender_id: PeerId::new("A".repeat(52)),
            target_id: PeerId::new("B".repeat(52)),
            document_id: DocId::household(),
            data: vec![7; 300],
        };
        let payload = lean_payload(&sent);
        // Array, tag, the household as 0, a 300-byte string's 3-byte head: 6 bytes.
        assert_eq!(payload.len(), 300 + 6);
        assert!(!payload.windows(4).any(|w| w == b"AAAA" || w == b"BBBB"));
        let Message::Sync {
            sender_id,
            target_id,
            document_id,
            data,
        } = decode(&payload).unwrap()
        else {
            panic!("not a sync")
        };
        assert_eq!((sender_id, target_id), (ends().remote, ends().local));
        assert_eq!(document_id, DocId::household());
        assert_eq!(data, vec![7; 300]);
    }

    #[test]
    fn a_lean_join_and_peer_are_a_few_dozen_bytes() {
        let meta = PeerMetadata {
            storage_id: None,
            is_ephemeral: false,
            household_epoch: Some("0123456789abcdef".to_owned()),
        };
        let join = Message::Join {
            sender_id: PeerId::new("A".repeat(52)),
            peer_metadata: meta.clone(),
            supported_protocol_versions: vec!["1".to_owned()],
        };
        let peer = Message::Peer {
            sender_id: PeerId::new("B".repeat(52)),
            target_id: PeerId::new("A".repeat(52)),
            peer_metadata: meta,
            selected_protocol_version: "1".to_owned(),
        };
        assert!(
            lean_payload(&join).len() <= 26,
            "{}",
            lean_payload(&join).len()
        );
        assert!(
            lean_payload(&peer).len() <= 26,
            "{}",
            lean_payload(&peer).len()
        );
    }

    #[test]
    fn bounds_and_shapes_are_checked_like_the_classic_layout() {
        let cbor = |value: Value| {
            let mut out = Vec::new();
            ciborium::ser::into_writer(&value, &mut out).unwrap();
            out
        };
        let too_long = text(&"x".repeat(MAX_ID_LEN + 1));
        let cases = [
            // An overlong document id.
            Value::Array(vec![int(SYNC), too_long, Value::Bytes(vec![])]),
            // The household's integer is 0, nothing else.
            Value::Array(vec![int(SYNC), int(9), Value::Bytes(vec![])]),
            // A 31-byte secret.
            Value::Array(vec![int(EPOCH), int(1), Value::Bytes(vec![0; 31])]),
            // Too many proofs.
            Value::Array(vec![
                int(PROOFS),
                int(HOUSEHOLD),
                Value::Array(vec![Value::Bytes(vec![1]); MAX_PROOFS + 1]),
            ]),
            // A field missing.
            Value::Array(vec![int(SYNC), int(HOUSEHOLD)]),
            // Metadata that is not an array.
            Value::Array(vec![int(JOIN), Value::Array(vec![]), Value::Bool(true)]),
        ];
        for case in cases {
            assert!(decode(&cbor(case.clone())).is_err(), "{case:?}");
        }
        assert!(matches!(
            decode(&cbor(Value::Array(vec![int(99)]))),
            Err(FrameError::UnknownType { .. })
        ));
        assert_eq!(
            decode(&cbor(Value::Array(vec![]))),
            Err(FrameError::NotAMessage)
        );
        // A classic map on a lean connection is not a message, and the other way round.
        let classic = encode_frame_as(&Message::error("x"), WireForm::Classic).unwrap();
        assert_eq!(decode(&classic[4..]), Err(FrameError::NotAMessage));
        let lean = lean_payload(&Message::error("x"));
        assert_eq!(
            Message::decode_as(&lean, None),
            Err(FrameError::NotAMessage)
        );
        // A newer peer's extra trailing fields are ignored.
        let extended = cbor(Value::Array(vec![
            int(SYNC),
            int(HOUSEHOLD),
            Value::Bytes(vec![1]),
            text("later"),
        ]));
        assert!(decode(&extended).is_ok());
        // A long error text is cut, as on a classic connection.
        let long = cbor(Value::Array(vec![int(ERROR), text(&"é".repeat(1000))]));
        let Message::Error { message } = decode(&long).unwrap() else {
            panic!("not an error")
        };
        assert!(message.len() <= MAX_ERROR_TEXT);
    }

    /// `message` as it reads on a lean link: sent by the remote end to the local one.
    fn between_ends(message: Message) -> Message {
        let (sender_id, target_id) = (ends().remote, ends().local);
        match message {
            Message::Join {
                peer_metadata,
                supported_protocol_versions,
                ..
            } => Message::Join {
                sender_id,
                peer_metadata,
                supported_protocol_versions,
            },
            Message::Peer {
                peer_metadata,
                selected_protocol_version,
                ..
            } => Message::Peer {
                sender_id,
                target_id,
                peer_metadata,
                selected_protocol_version,
            },
            Message::Request {
                document_id, data, ..
            } => Message::Request {
                sender_id,
                target_id,
                document_id,
                data,
            },
            Message::Sync {
                document_id, data, ..
            } => Message::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            },
            Message::DocUnavailable { document_id, .. } => Message::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            },
            Message::Proofs {
                document_id,
                proofs,
                ..
            } => Message::Proofs {
                sender_id,
                target_id,
                document_id,
                proofs,
            },
            Message::Epoch { epoch, .. } => Message::Epoch {
                sender_id,
                target_id,
                epoch,
            },
            error @ Message::Error { .. } => error,
        }
    }

    proptest::proptest! {
        #[test]
        fn any_message_round_trips_in_the_lean_layout(
            message in crate::sync::frame::tests::arb_message()
        ) {
            let expected = between_ends(message.clone());
            proptest::prop_assert_eq!(decode(&lean_payload(&message)).unwrap(), expected);
        }

        #[test]
        fn mutated_lean_frames_never_panic(
            message in crate::sync::frame::tests::arb_message(),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(),
                                                proptest::prelude::any::<u8>()), 1..6)
        ) {
            let mut payload = lean_payload(&message);
            for (index, byte) in flips {
                let len = payload.len();
                payload[index % len] ^= byte;
            }
            let _ = decode(&payload);
        }
    }

    #[test]
    fn a_decoder_for_a_lean_link_reads_frames_in_pieces() {
        let messages = [
            Message::error("bye"),
            Message::DocUnavailable {
                sender_id: ends().remote,
                target_id: ends().local,
                document_id: DocId::new("private-x"),
            },
        ];
        let mut stream = Vec::new();
        for message in &messages {
            stream.extend(encode_frame_as(message, WireForm::Lean).unwrap());
        }
        let mut decoder = FrameDecoder::for_link(WireForm::Lean, ends());
        let mut got = Vec::new();
        for piece in stream.chunks(3) {
            decoder.push(piece).unwrap();
            while let Some(message) = decoder.next_message().unwrap() {
                got.push(message);
            }
        }
        assert_eq!(got, messages);
    }
}
