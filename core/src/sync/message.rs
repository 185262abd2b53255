//! The sync message vocabulary, after automerge-repo's network protocol.
//!
//! This module owns the shape of each message as a CBOR map with a `type` field and
//! camelCase keys (`senderId`, `targetId`, `documentId`, `data`, ...), with `data` as a
//! CBOR byte string. It only translates between bytes and [`Message`]; what a message
//! *means* at a given moment is the session's business.

use std::fmt;

use ciborium::value::Value;

use super::frame::{read_cbor, text, CborMap, FrameError, MapBuilder};
use super::lean::{self, LinkEnds, WireForm};
use super::{DocId, MAX_ID_LEN};

/// The only protocol version of automerge-repo's sync protocol, and ours.
pub const PROTOCOL_VERSION: &str = "1";

const JOIN: &str = "join";
const PEER: &str = "peer";
const REQUEST: &str = "request";
const SYNC: &str = "sync";
const DOC_UNAVAILABLE: &str = "doc-unavailable";
const ERROR: &str = "error";
const PROOFS: &str = "hearth-proofs";
const EPOCH: &str = "hearth-epoch";
const KNOWN_TYPES: &[&str] = &[
    JOIN,
    PEER,
    REQUEST,
    SYNC,
    DOC_UNAVAILABLE,
    ERROR,
    PROOFS,
    EPOCH,
];

/// Most signed heads one `hearth-proofs` message carries: one per device of a household.
pub const MAX_PROOFS: usize = 64;
/// Longest signed head accepted on the wire (see `provenance::PROOF_LEN`).
pub(crate) const MAX_PROOF_BYTES: usize = 256;

/// Longest `error` text we send or keep: enough to explain, too short to smuggle data.
pub(crate) const MAX_ERROR_TEXT: usize = 512;

/// The peer id carried in `senderId`/`targetId`; for Hearth, a device id in canonical
/// form, which the session checks against the TLS identity.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(String);

impl PeerId {
    /// Wraps a peer id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&crate::identity::DeviceId> for PeerId {
    fn from(device: &crate::identity::DeviceId) -> Self {
        Self(device.to_canonical())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({:?})", self.0)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest epoch tag accepted in peer metadata (a fingerprint is 16 hex digits).
pub(crate) const MAX_EPOCH_TAG_LEN: usize = 64;

/// What a peer says about itself in `join` and `peer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerMetadata {
    /// automerge-repo's storage id, if the peer persists documents under one.
    pub storage_id: Option<String>,
    /// Whether the peer keeps nothing after disconnecting.
    pub is_ephemeral: bool,
    /// Hearth's own: a tag of the household secret epoch the peer is on
    /// ([`crate::epochs::Epoch::fingerprint`], never the secret), so an epoch is sent only
    /// to a peer that is not on it already.
    pub household_epoch: Option<String>,
}

impl PeerMetadata {
    fn to_value(&self) -> Value {
        let mut entries = vec![(text("isEphemeral"), Value::Bool(self.is_ephemeral))];
        if let Some(storage_id) = &self.storage_id {
            entries.push((text("storageId"), text(storage_id)));
        }
        if let Some(tag) = &self.household_epoch {
            entries.push((text("hearthEpoch"), text(tag)));
        }
        Value::Map(entries)
    }

    fn from_entries(entries: Vec<(String, Value)>) -> Option<Self> {
        let mut meta = Self::default();
        for (key, value) in entries {
            match (key.as_str(), value) {
                ("isEphemeral", Value::Bool(flag)) => meta.is_ephemeral = flag,
                ("storageId", Value::Text(id)) if id.len() <= MAX_ID_LEN => {
                    meta.storage_id = Some(id)
                }
                ("storageId", Value::Null) => meta.storage_id = None,
                ("hearthEpoch", Value::Text(tag)) if tag.len() <= MAX_EPOCH_TAG_LEN => {
                    meta.household_epoch = Some(tag)
                }
                ("isEphemeral" | "storageId" | "hearthEpoch", _) => return None,
                // Other keys belong to newer peers; ignoring them keeps us compatible.
                _ => {}
            }
        }
        Some(meta)
    }
}

/// One message of the sync protocol.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Sent first by the connecting side: who it is and which versions it speaks.
    Join {
        /// The connecting peer.
        sender_id: PeerId,
        /// What the connecting peer says about itself.
        peer_metadata: PeerMetadata,
        /// Protocol versions it speaks; we speak [`PROTOCOL_VERSION`].
        supported_protocol_versions: Vec<String>,
    },
    /// The accepting side's answer to `join`.
    Peer {
        /// The accepting peer.
        sender_id: PeerId,
        /// The connecting peer.
        target_id: PeerId,
        /// What the accepting peer says about itself.
        peer_metadata: PeerMetadata,
        /// The version both will speak.
        selected_protocol_version: String,
    },
    /// A sync message for a document the sender does not have yet.
    Request {
        /// The sender.
        sender_id: PeerId,
        /// The recipient.
        target_id: PeerId,
        /// The document.
        document_id: DocId,
        /// An encoded `automerge::sync::Message`.
        data: Vec<u8>,
    },
    /// A sync message for a document the sender has.
    Sync {
        /// The sender.
        sender_id: PeerId,
        /// The recipient.
        target_id: PeerId,
        /// The document.
        document_id: DocId,
        /// An encoded `automerge::sync::Message`.
        data: Vec<u8>,
    },
    /// The sender does not have the document, or will not share it with the recipient.
    /// The two cases look the same on purpose.
    DocUnavailable {
        /// The sender.
        sender_id: PeerId,
        /// The recipient.
        target_id: PeerId,
        /// The document.
        document_id: DocId,
    },
    /// Hearth's own: signed heads of the devices whose changes the next `sync` for
    /// this document carries (see [`crate::provenance`]). Sent before that `sync`.
    Proofs {
        /// The sender.
        sender_id: PeerId,
        /// The recipient.
        target_id: PeerId,
        /// The document.
        document_id: DocId,
        /// Encoded `provenance::HeadProof`s.
        proofs: Vec<Vec<u8>>,
    },
    /// Hearth's own: the sender's current household secret epoch (see
    /// [`crate::epochs`]). Sent once the session is ready and whenever the epoch
    /// changes, only to devices the sender trusts. Its `secret` field is exactly 32
    /// bytes, and its `Debug` output never shows it.
    Epoch {
        /// The sender.
        sender_id: PeerId,
        /// The recipient.
        target_id: PeerId,
        /// The epoch.
        epoch: crate::epochs::Epoch,
    },
    /// The sender gives up on the connection.
    Error {
        /// A short explanation, never containing document contents.
        message: String,
    },
}

impl fmt::Debug for Message {
    /// Shows the type, document and payload size, never the payload: sync data holds
    /// entry contents, which must not reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Join { sender_id, .. } => write!(f, "Join {{ from: {sender_id} }}"),
            Self::Peer {
                sender_id,
                target_id,
                ..
            } => write!(f, "Peer {{ from: {sender_id}, to: {target_id} }}"),
            Self::Request {
                document_id, data, ..
            } => write!(f, "Request {{ doc: {document_id}, {} bytes }}", data.len()),
            Self::Sync {
                document_id, data, ..
            } => write!(f, "Sync {{ doc: {document_id}, {} bytes }}", data.len()),
            Self::DocUnavailable { document_id, .. } => {
                write!(f, "DocUnavailable {{ doc: {document_id} }}")
            }
            Self::Proofs {
                document_id,
                proofs,
                ..
            } => write!(f, "Proofs {{ doc: {document_id}, {} }}", proofs.len()),
            Self::Epoch { epoch, .. } => write!(f, "Epoch {{ number: {} }}", epoch.number),
            Self::Error { message } => write!(f, "Error {{ {message:?} }}"),
        }
    }
}

impl Message {
    /// The `type` string of this message.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Join { .. } => JOIN,
            Self::Peer { .. } => PEER,
            Self::Request { .. } => REQUEST,
            Self::Sync { .. } => SYNC,
            Self::DocUnavailable { .. } => DOC_UNAVAILABLE,
            Self::Proofs { .. } => PROOFS,
            Self::Epoch { .. } => EPOCH,
            Self::Error { .. } => ERROR,
        }
    }

    /// An `error` message, with its text cut to a bounded length.
    pub fn error(message: &str) -> Self {
        Self::Error {
            message: truncate(message, MAX_ERROR_TEXT),
        }
    }

    /// The message as a CBOR map.
    pub(crate) fn to_value(&self) -> Value {
        let map = MapBuilder::new(self.kind());
        match self {
            Self::Join {
                sender_id,
                peer_metadata,
                supported_protocol_versions,
            } => map
                .field("senderId", text(sender_id.as_str()))
                .field("peerMetadata", peer_metadata.to_value())
                .field(
                    "supportedProtocolVersions",
                    Value::Array(
                        supported_protocol_versions
                            .iter()
                            .map(|v| text(v))
                            .collect(),
                    ),
                ),
            Self::Peer {
                sender_id,
                target_id,
                peer_metadata,
                selected_protocol_version,
            } => map
                .field("senderId", text(sender_id.as_str()))
                .field("targetId", text(target_id.as_str()))
                .field("peerMetadata", peer_metadata.to_value())
                .field("selectedProtocolVersion", text(selected_protocol_version)),
            Self::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
            | Self::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            } => map
                .field("senderId", text(sender_id.as_str()))
                .field("targetId", text(target_id.as_str()))
                .field("documentId", text(document_id.as_str()))
                .field("data", Value::Bytes(data.clone())),
            Self::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            } => map
                .field("senderId", text(sender_id.as_str()))
                .field("targetId", text(target_id.as_str()))
                .field("documentId", text(document_id.as_str())),
            Self::Proofs {
                sender_id,
                target_id,
                document_id,
                proofs,
            } => map
                .field("senderId", text(sender_id.as_str()))
                .field("targetId", text(target_id.as_str()))
                .field("documentId", text(document_id.as_str()))
                .field(
                    "proofs",
                    Value::Array(proofs.iter().map(|p| Value::Bytes(p.clone())).collect()),
                ),
            Self::Epoch {
                sender_id,
                target_id,
                epoch,
            } => map
                .field("senderId", text(sender_id.as_str()))
                .field("targetId", text(target_id.as_str()))
                .field("number", Value::Integer(epoch.number.into()))
                .field("secret", Value::Bytes(epoch.secret.to_vec())),
            Self::Error { message } => map.field("message", text(message)),
        }
        .build()
    }

    /// Decodes one frame payload in the layout of a connection: classic when `lean_ends`
    /// is `None`, else lean ([`super::lean`]), naming those ends as sender and target.
    pub fn decode_as(payload: &[u8], lean_ends: Option<&LinkEnds>) -> Result<Self, FrameError> {
        match lean_ends {
            None => Self::decode(payload),
            Some(ends) => lean::from_value(read_cbor(payload)?, ends),
        }
    }

    /// The message as a CBOR value in `form`'s layout.
    pub(crate) fn to_value_as(&self, form: WireForm) -> Value {
        match form {
            WireForm::Classic => self.to_value(),
            WireForm::Lean => lean::to_value(self),
        }
    }

    /// Decodes one frame payload in the classic layout.
    pub fn decode(payload: &[u8]) -> Result<Self, FrameError> {
        let mut map = CborMap::decode(payload, KNOWN_TYPES)?;
        let message = match map.kind() {
            JOIN => Self::Join {
                sender_id: peer_id(&mut map, "senderId")?,
                peer_metadata: peer_metadata(&mut map)?,
                supported_protocol_versions: map.text_array("supportedProtocolVersions")?,
            },
            PEER => Self::Peer {
                sender_id: peer_id(&mut map, "senderId")?,
                target_id: peer_id(&mut map, "targetId")?,
                peer_metadata: peer_metadata(&mut map)?,
                selected_protocol_version: map.text("selectedProtocolVersion")?,
            },
            REQUEST => Self::Request {
                sender_id: peer_id(&mut map, "senderId")?,
                target_id: peer_id(&mut map, "targetId")?,
                document_id: doc_id(&mut map)?,
                data: map.bytes("data")?,
            },
            SYNC => Self::Sync {
                sender_id: peer_id(&mut map, "senderId")?,
                target_id: peer_id(&mut map, "targetId")?,
                document_id: doc_id(&mut map)?,
                data: map.bytes("data")?,
            },
            DOC_UNAVAILABLE => Self::DocUnavailable {
                sender_id: peer_id(&mut map, "senderId")?,
                target_id: peer_id(&mut map, "targetId")?,
                document_id: doc_id(&mut map)?,
            },
            PROOFS => Self::Proofs {
                sender_id: peer_id(&mut map, "senderId")?,
                target_id: peer_id(&mut map, "targetId")?,
                document_id: doc_id(&mut map)?,
                proofs: map.bytes_array("proofs", MAX_PROOFS, MAX_PROOF_BYTES)?,
            },
            EPOCH => Self::Epoch {
                sender_id: peer_id(&mut map, "senderId")?,
                target_id: peer_id(&mut map, "targetId")?,
                epoch: crate::epochs::Epoch::new(
                    map.u64("number")?,
                    *zeroize::Zeroizing::new(map.byte_array::<32>("secret")?),
                ),
            },
            _ => Self::Error {
                message: truncate(&map.text("message")?, MAX_ERROR_TEXT),
            },
        };
        Ok(message)
    }
}

fn peer_id(map: &mut CborMap, field: &'static str) -> Result<PeerId, FrameError> {
    let id = map.text(field)?;
    if id.len() > MAX_ID_LEN {
        return Err(FrameError::InvalidField {
            message: map.kind(),
            field,
        });
    }
    Ok(PeerId(id))
}

fn doc_id(map: &mut CborMap) -> Result<DocId, FrameError> {
    let id = map.text("documentId")?;
    if id.len() > MAX_ID_LEN {
        return Err(FrameError::InvalidField {
            message: map.kind(),
            field: "documentId",
        });
    }
    Ok(DocId::new(id))
}

fn peer_metadata(map: &mut CborMap) -> Result<PeerMetadata, FrameError> {
    match map.opt_map("peerMetadata")? {
        None => Ok(PeerMetadata::default()),
        Some(entries) => PeerMetadata::from_entries(entries).ok_or(FrameError::InvalidField {
            message: map.kind(),
            field: "peerMetadata",
        }),
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn join_without_metadata_is_accepted() {
        let value = MapBuilder::new("join")
            .field("senderId", text("A"))
            .field("supportedProtocolVersions", Value::Array(vec![text("1")]))
            .build();
        let mut payload = Vec::new();
        ciborium::ser::into_writer(&value, &mut payload).unwrap();
        assert_eq!(
            Message::decode(&payload).unwrap(),
            Message::Join {
                sender_id: PeerId::new("A"),
                peer_metadata: PeerMetadata::default(),
                supported_protocol_versions: vec!["1".to_owned()],
            }
        );
    }

    #[test]
    fn overlong_ids_and_errors_are_bounded() {
        let long = "x".repeat(MAX_ID_LEN + 1);
        let message = Message::DocUnavailable {
            sender_id: PeerId::new("A"),
            target_id: PeerId::new("B"),
            document_id: DocId::new(long),
        };
        let frame = super::super::encode_frame(&message).unwrap();
        assert!(matches!(
            Message::decode(&frame[4..]),
            Err(FrameError::InvalidField {
                field: "documentId",
                ..
            })
        ));
        let Message::Error { message } = Message::error(&"é".repeat(1000)) else {
            panic!("not an error")
        };
        assert!(message.len() <= MAX_ERROR_TEXT);
    }

    #[test]
    fn an_epoch_round_trips_and_its_secret_is_exactly_32_bytes() {
        let message = Message::Epoch {
            sender_id: PeerId::new("A"),
            target_id: PeerId::new("B"),
            epoch: crate::epochs::Epoch::new(7, [0x5a; 32]),
        };
        let frame = super::super::encode_frame(&message).unwrap();
        assert_eq!(Message::decode(&frame[4..]).unwrap(), message);
        assert!(!format!("{message:?}").contains("90"));
        for len in [0usize, 31, 33, 4096] {
            let value = MapBuilder::new(EPOCH)
                .field("senderId", text("A"))
                .field("targetId", text("B"))
                .field("number", Value::Integer(7.into()))
                .field("secret", Value::Bytes(vec![1; len]))
                .build();
            let mut payload = Vec::new();
            ciborium::ser::into_writer(&value, &mut payload).unwrap();
            assert!(matches!(
                Message::decode(&payload),
                Err(FrameError::InvalidField {
                    field: "secret",
                    ..
                })
            ));
        }
        let negative = MapBuilder::new(EPOCH)
            .field("senderId", text("A"))
            .field("targetId", text("B"))
            .field("number", Value::Integer((-1).into()))
            .field("secret", Value::Bytes(vec![1; 32]))
            .build();
        let mut payload = Vec::new();
        ciborium::ser::into_writer(&negative, &mut payload).unwrap();
        assert!(Message::decode(&payload).is_err());
    }

    #[test]
    fn debug_never_shows_payload_bytes() {
        let message = Message::Sync {
            sender_id: PeerId::new("A"),
            target_id: PeerId::new("B"),
            document_id: DocId::household(),
            data: b"secret note".to_vec(),
        };
        let shown = format!("{message:?}");
        assert!(!shown.contains("secret"));
        assert!(shown.contains("11 bytes"));
    }
}
