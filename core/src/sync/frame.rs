//! Length-prefixed CBOR framing for QUIC streams.
//!
//! This module owns the byte layout of a frame (a 4-byte big-endian length, then that
//! many bytes of one CBOR message) and the low-level CBOR map reading shared by the
//! sync and pairing vocabularies. It must never panic or allocate in proportion to a
//! length an attacker merely *claims*: an oversized length prefix is rejected as soon
//! as its four bytes arrive, before anything else is buffered.

use std::collections::BTreeSet;

use ciborium::value::Value;

use super::lean::{LinkEnds, WireForm};
use super::message::Message;
use super::ApplicationErrorCode;

/// Largest frame payload accepted on a `hearth/1` stream (16 MiB).
///
/// A whole household document fits many times over; anything larger is a bug or an
/// attack, and the stream is closed rather than buffered.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Size of the length prefix.
const PREFIX_LEN: usize = 4;

/// Our messages are flat maps with at most one nested map, so a low nesting limit
/// costs nothing and keeps a hostile frame from recursing deeply in the decoder.
const RECURSION_LIMIT: usize = 16;

/// Longest message `type` echoed back inside an error, so an error message never
/// carries an arbitrary amount of peer-chosen text.
const MAX_ECHOED_TYPE: usize = 32;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A length prefix (or a message being encoded) exceeds the frame cap.
    #[error(
        "a frame of {len} bytes exceeds the {max}-byte limit; the peer is misbehaving or \
         runs an incompatible version, so the stream was closed"
    )]
    TooLarge {
        /// The claimed or actual payload length.
        len: u64,
        /// The cap in force.
        max: usize,
    },
    /// The payload is not one well-formed CBOR item (truncated, invalid UTF-8 in a
    /// text string, nested too deeply, ...).
    #[error(
        "a frame did not contain well-formed CBOR; the peer runs an incompatible version or \
         the data was corrupted, so the stream was closed"
    )]
    MalformedCbor,
    /// Bytes were left over after the CBOR item inside a frame.
    #[error("a frame had {extra} stray bytes after its message; the stream was closed")]
    TrailingBytes {
        /// How many bytes followed the message.
        extra: usize,
    },
    /// The CBOR item is not a map with a text `type` field.
    #[error("a frame's message is not a map with a `type` field; the stream was closed")]
    NotAMessage,
    /// The message type is not part of this vocabulary.
    #[error(
        "the peer sent an unknown message type {kind:?}; it may run a newer version of \
         Hearth, so update both devices"
    )]
    UnknownType {
        /// The type, cut to a few characters.
        kind: String,
    },
    /// A required field is absent.
    #[error("a `{message}` message lacks its `{field}` field; the stream was closed")]
    MissingField {
        /// The message type.
        message: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A field has the wrong CBOR type, an out-of-range value, or appears twice.
    #[error("a `{message}` message has an invalid `{field}` field; the stream was closed")]
    InvalidField {
        /// The message type.
        message: &'static str,
        /// The offending field.
        field: &'static str,
    },
    /// An earlier error already broke this stream's framing; nothing after it can be
    /// trusted to start on a frame boundary.
    #[error("the stream's framing was already broken by an earlier error; open a new stream")]
    Poisoned,
}

impl FrameError {
    /// The QUIC application error code to close the stream with.
    pub fn code(&self) -> ApplicationErrorCode {
        match self {
            Self::TooLarge { .. } => ApplicationErrorCode::FrameTooLarge,
            Self::UnknownType { .. } => ApplicationErrorCode::UnknownMessageType,
            Self::MalformedCbor
            | Self::TrailingBytes { .. }
            | Self::NotAMessage
            | Self::MissingField { .. }
            | Self::InvalidField { .. }
            | Self::Poisoned => ApplicationErrorCode::MalformedFrame,
        }
    }
}

/// Encodes `message` as one frame in the classic layout: a 4-byte big-endian length,
/// then CBOR.
pub fn encode_frame(message: &Message) -> Result<Vec<u8>, FrameError> {
    encode_frame_as(message, WireForm::Classic)
}

/// Encodes `message` as one frame in the layout `form` of its connection.
pub fn encode_frame_as(message: &Message, form: WireForm) -> Result<Vec<u8>, FrameError> {
    frame_value(&message.to_value_as(form), MAX_FRAME)
}

/// Encodes an arbitrary CBOR value as one frame under `max` bytes of payload.
pub(crate) fn frame_value(value: &Value, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; PREFIX_LEN];
    // Writing a `Value` into a `Vec` cannot fail for IO reasons; any error would be a
    // bug in ciborium, reported as malformed rather than as a panic.
    ciborium::ser::into_writer(value, &mut out).map_err(|_| FrameError::MalformedCbor)?;
    let len = out.len() - PREFIX_LEN;
    let too_large = FrameError::TooLarge {
        len: len as u64,
        max,
    };
    if len > max {
        return Err(too_large);
    }
    let prefix = u32::try_from(len).map_err(|_| too_large)?.to_be_bytes();
    out[..PREFIX_LEN].copy_from_slice(&prefix);
    Ok(out)
}

/// Reassembles frames from stream bytes that arrive in arbitrary chunks.
///
/// Push bytes as they are read from the stream, then pull complete messages until
/// `Ok(None)`. After any error the decoder is poisoned: the stream must be closed with
/// [`FrameError::code`], because nothing after a bad frame can be trusted to start on a
/// frame boundary.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max: usize,
    poisoned: bool,
    /// The connection's ends when it speaks the lean layout; `None` for classic.
    lean_ends: Option<LinkEnds>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the [`MAX_FRAME`] cap.
    pub fn new() -> Self {
        Self::with_max_frame(MAX_FRAME)
    }

    /// A decoder with a custom cap on the payload length.
    pub fn with_max_frame(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            poisoned: false,
            lean_ends: None,
        }
    }

    /// A decoder with the [`MAX_FRAME`] cap for a sync connection that speaks `form`,
    /// between `ends` (which lean messages leave out).
    pub fn for_link(form: WireForm, ends: LinkEnds) -> Self {
        Self::new().speaking(form, ends)
    }

    /// This decoder, reading messages in `form`'s layout between `ends`.
    pub fn speaking(self, form: WireForm, ends: LinkEnds) -> Self {
        Self {
            lean_ends: (form == WireForm::Lean).then_some(ends),
            ..self
        }
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes read from the stream.
    ///
    /// Fails at once if the pending frame's length prefix exceeds the cap, so the
    /// caller can close the stream before reading the oversized body.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        if self.poisoned {
            return Err(FrameError::Poisoned);
        }
        // Top up only the prefix first, so an oversized prefix is caught before any
        // of the body that follows it in this chunk is copied.
        let need_prefix = PREFIX_LEN.saturating_sub(self.buf.len()).min(bytes.len());
        self.buf.extend_from_slice(&bytes[..need_prefix]);
        self.check_prefix()?;
        self.buf.extend_from_slice(&bytes[need_prefix..]);
        Ok(())
    }

    /// Returns the payload of the next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.poisoned {
            return Err(FrameError::Poisoned);
        }
        let Some(len) = self.check_prefix()? else {
            return Ok(None);
        };
        let end = PREFIX_LEN + len;
        if self.buf.len() < end {
            return Ok(None);
        }
        let payload = self.buf[PREFIX_LEN..end].to_vec();
        self.buf.drain(..end);
        Ok(Some(payload))
    }

    /// Returns the next complete sync message, if one is buffered.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        match self.next_frame()? {
            None => Ok(None),
            Some(payload) => match Message::decode_as(&payload, self.lean_ends.as_ref()) {
                Ok(message) => Ok(Some(message)),
                Err(err) => {
                    self.poisoned = true;
                    Err(err)
                }
            },
        }
    }

    /// Reads the pending length prefix, if complete, and rejects it if over the cap.
    fn check_prefix(&mut self) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = self.buf.get(..PREFIX_LEN) else {
            return Ok(None);
        };
        let mut raw = [0u8; PREFIX_LEN];
        raw.copy_from_slice(prefix);
        let len = u32::from_be_bytes(raw);
        match usize::try_from(len) {
            Ok(len) if len <= self.max => Ok(Some(len)),
            _ => {
                self.poisoned = true;
                self.buf = Vec::new();
                Err(FrameError::TooLarge {
                    len: u64::from(len),
                    max: self.max,
                })
            }
        }
    }
}

/// Reads `payload` as exactly one CBOR item, nested no deeper than our messages need.
pub(crate) fn read_cbor(payload: &[u8]) -> Result<Value, FrameError> {
    let mut rest = payload;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, RECURSION_LIMIT)
        .map_err(|_| FrameError::MalformedCbor)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes { extra: rest.len() });
    }
    Ok(value)
}

/// A decoded CBOR map with text keys and a text `type`, read field by field.
///
/// Unknown keys are ignored so that a peer on a newer version may add fields; a key
/// given twice is rejected, because two readers could otherwise disagree on its value.
#[derive(Debug)]
pub(crate) struct CborMap {
    kind: &'static str,
    fields: Vec<(String, Value)>,
}

impl CborMap {
    /// Decodes `payload` as exactly one CBOR map and returns it with its `type`, which
    /// must be one of `known` (the returned kind is the matching `'static` string).
    pub(crate) fn decode(payload: &[u8], known: &[&'static str]) -> Result<Self, FrameError> {
        let Value::Map(entries) = read_cbor(payload)? else {
            return Err(FrameError::NotAMessage);
        };
        let mut seen = BTreeSet::new();
        let mut fields = Vec::with_capacity(entries.len());
        let mut kind = None;
        for (key, value) in entries {
            let Value::Text(key) = key else { continue };
            if !seen.insert(key.clone()) {
                return Err(FrameError::NotAMessage);
            }
            if key == "type" {
                kind = Some(value);
            } else {
                fields.push((key, value));
            }
        }
        let Some(Value::Text(kind)) = kind else {
            return Err(FrameError::NotAMessage);
        };
        let Some(kind) = known.iter().copied().find(|k| *k == kind) else {
            return Err(FrameError::UnknownType {
                kind: kind.chars().take(MAX_ECHOED_TYPE).collect(),
            });
        };
        Ok(Self { kind, fields })
    }

    /// The message type, one of the `known` list given to [`Self::decode`].
    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }

    fn take(&mut self, field: &'static str) -> Option<Value> {
        let index = self.fields.iter().position(|(k, _)| k == field)?;
        Some(self.fields.swap_remove(index).1)
    }

    fn missing(&self, field: &'static str) -> FrameError {
        FrameError::MissingField {
            message: self.kind,
            field,
        }
    }

    fn invalid(&self, field: &'static str) -> FrameError {
        FrameError::InvalidField {
            message: self.kind,
            field,
        }
    }

    /// A required text field.
    pub(crate) fn text(&mut self, field: &'static str) -> Result<String, FrameError> {
        match self.take(field) {
            Some(Value::Text(text)) => Ok(text),
            Some(_) => Err(self.invalid(field)),
            None => Err(self.missing(field)),
        }
    }

    /// A required byte-string field.
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, FrameError> {
        match self.take(field) {
            Some(Value::Bytes(bytes)) => Ok(bytes),
            Some(_) => Err(self.invalid(field)),
            None => Err(self.missing(field)),
        }
    }

    /// A required byte-string field of exactly `N` bytes.
    pub(crate) fn byte_array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], FrameError> {
        let bytes = self.bytes(field)?;
        bytes.try_into().map_err(|_| self.invalid(field))
    }

    /// A required unsigned integer field.
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, FrameError> {
        match self.take(field) {
            Some(Value::Integer(int)) => u64::try_from(int).map_err(|_| self.invalid(field)),
            Some(_) => Err(self.invalid(field)),
            None => Err(self.missing(field)),
        }
    }

    /// An optional unsigned integer field.
    pub(crate) fn opt_u64(&mut self, field: &'static str) -> Result<Option<u64>, FrameError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Integer(int)) => u64::try_from(int)
                .map(Some)
                .map_err(|_| self.invalid(field)),
            Some(_) => Err(self.invalid(field)),
        }
    }

    /// A required array-of-text field.
    pub(crate) fn text_array(&mut self, field: &'static str) -> Result<Vec<String>, FrameError> {
        match self.take(field) {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::Text(text) => Ok(text),
                    _ => Err(self.invalid(field)),
                })
                .collect(),
            Some(_) => Err(self.invalid(field)),
            None => Err(self.missing(field)),
        }
    }

    /// A required array of byte strings, each at most `max_item` bytes, at most
    /// `max_items` of them.
    pub(crate) fn bytes_array(
        &mut self,
        field: &'static str,
        max_items: usize,
        max_item: usize,
    ) -> Result<Vec<Vec<u8>>, FrameError> {
        match self.take(field) {
            Some(Value::Array(items)) if items.len() <= max_items => items
                .into_iter()
                .map(|item| match item {
                    Value::Bytes(bytes) if bytes.len() <= max_item => Ok(bytes),
                    _ => Err(self.invalid(field)),
                })
                .collect(),
            Some(_) => Err(self.invalid(field)),
            None => Err(self.missing(field)),
        }
    }

    /// An optional nested map, returned as its raw text-keyed entries.
    pub(crate) fn opt_map(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Vec<(String, Value)>>, FrameError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Map(entries)) => Ok(Some(
                entries
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        Value::Text(k) => Some((k, v)),
                        _ => None,
                    })
                    .collect(),
            )),
            Some(_) => Err(self.invalid(field)),
        }
    }
}

/// Builds a CBOR map with a `type` field first, in the order fields are added.
pub(crate) struct MapBuilder(Vec<(Value, Value)>);

impl MapBuilder {
    pub(crate) fn new(kind: &str) -> Self {
        Self(vec![(text("type"), text(kind))])
    }

    pub(crate) fn field(mut self, key: &str, value: Value) -> Self {
        self.0.push((text(key), value));
        self
    }

    pub(crate) fn build(self) -> Value {
        Value::Map(self.0)
    }
}

/// A CBOR text value.
pub(crate) fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::sync::message::{PeerId, PeerMetadata};
    use crate::sync::DocId;
    use proptest::prelude::*;

    fn sample() -> Message {
        Message::Sync {
            sender_id: PeerId::new("A"),
            target_id: PeerId::new("B"),
            document_id: DocId::household(),
            data: vec![0x42, 1, 2, 3],
        }
    }

    fn raw_frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn cbor(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(value, &mut out).unwrap();
        out
    }

    #[test]
    fn frames_round_trip_in_arbitrary_chunks() {
        let frame = encode_frame(&sample()).unwrap();
        let mut stream = frame.clone();
        stream.extend_from_slice(&frame);
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        for byte in &stream {
            decoder.push(std::slice::from_ref(byte)).unwrap();
            while let Some(message) = decoder.next_message().unwrap() {
                got.push(message);
            }
        }
        assert_eq!(got, vec![sample(), sample()]);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn data_is_a_cbor_byte_string() {
        let frame = encode_frame(&sample()).unwrap();
        let value: Value = ciborium::de::from_reader(&frame[4..]).unwrap();
        let Value::Map(entries) = value else {
            panic!("not a map")
        };
        let data = entries
            .iter()
            .find(|(k, _)| *k == text("data"))
            .map(|(_, v)| v.clone());
        assert_eq!(data, Some(Value::Bytes(vec![0x42, 1, 2, 3])));
        assert!(entries.contains(&(text("type"), text("sync"))));
        assert!(entries.contains(&(text("senderId"), text("A"))));
        assert!(entries.contains(&(text("documentId"), text("household"))));
    }

    #[test]
    fn oversized_prefix_fails_before_the_body_arrives() {
        let mut decoder = FrameDecoder::with_max_frame(100);
        decoder.push(&[0, 0]).unwrap();
        let err = decoder.push(&101u32.to_be_bytes()[2..]).unwrap_err();
        assert_eq!(err, FrameError::TooLarge { len: 101, max: 100 });
        assert_eq!(err.code(), ApplicationErrorCode::FrameTooLarge);
        assert_eq!(decoder.buffered(), 0);
        assert_eq!(decoder.push(&[1]), Err(FrameError::Poisoned));
    }

    #[test]
    fn default_cap_rejects_a_huge_prefix_at_once() {
        let mut decoder = FrameDecoder::new();
        let err = decoder
            .push(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn truncated_cbor_is_malformed() {
        let frame = encode_frame(&sample()).unwrap();
        let payload = &frame[4..frame.len() - 2];
        let mut decoder = FrameDecoder::new();
        decoder.push(&raw_frame(payload)).unwrap();
        let err = decoder.next_message().unwrap_err();
        assert_eq!(err, FrameError::MalformedCbor);
        assert_eq!(err.code(), ApplicationErrorCode::MalformedFrame);
        assert_eq!(decoder.next_message(), Err(FrameError::Poisoned));
    }

    #[test]
    fn unknown_type_is_reported_with_its_own_code() {
        let payload = cbor(&MapBuilder::new("ephemeral-ish").build());
        let err = Message::decode(&payload).unwrap_err();
        assert_eq!(
            err,
            FrameError::UnknownType {
                kind: "ephemeral-ish".to_owned()
            }
        );
        assert_eq!(err.code(), ApplicationErrorCode::UnknownMessageType);
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        // A map {"type": <text of 2 bytes: ff fe>}: a text string must be UTF-8.
        let payload = [0xa1, 0x64, b't', b'y', b'p', b'e', 0x62, 0xff, 0xfe];
        assert_eq!(Message::decode(&payload), Err(FrameError::MalformedCbor));
    }

    #[test]
    fn trailing_bytes_and_non_maps_are_rejected() {
        let mut payload = encode_frame(&sample()).unwrap()[4..].to_vec();
        payload.push(0);
        assert_eq!(
            Message::decode(&payload),
            Err(FrameError::TrailingBytes { extra: 1 })
        );
        assert_eq!(
            Message::decode(&cbor(&Value::Array(vec![]))),
            Err(FrameError::NotAMessage)
        );
    }

    #[test]
    fn duplicate_or_mistyped_fields_are_rejected() {
        let dup = Value::Map(vec![
            (text("type"), text("error")),
            (text("message"), text("a")),
            (text("message"), text("b")),
        ]);
        assert_eq!(Message::decode(&cbor(&dup)), Err(FrameError::NotAMessage));
        let mistyped = MapBuilder::new("sync")
            .field("senderId", text("A"))
            .field("targetId", text("B"))
            .field("documentId", text("household"))
            .field("data", text("not bytes"))
            .build();
        assert_eq!(
            Message::decode(&cbor(&mistyped)),
            Err(FrameError::InvalidField {
                message: "sync",
                field: "data"
            })
        );
    }

    #[test]
    fn deep_nesting_is_rejected_without_overflowing() {
        let mut payload = vec![0x81; 100_000];
        payload.push(0x00);
        assert_eq!(Message::decode(&payload), Err(FrameError::MalformedCbor));
    }

    #[test]
    fn oversized_message_cannot_be_encoded() {
        let message = Message::Sync {
            sender_id: PeerId::new("A"),
            target_id: PeerId::new("B"),
            document_id: DocId::household(),
            data: vec![0; 200],
        };
        let err = frame_value(&message.to_value(), 100).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 100, .. }));
    }

    fn arb_peer() -> impl Strategy<Value = PeerId> {
        "[A-Z2-7]{0,52}".prop_map(PeerId::new)
    }

    fn arb_doc() -> impl Strategy<Value = DocId> {
        ".{0,40}".prop_map(DocId::new)
    }

    pub(crate) fn arb_message() -> impl Strategy<Value = Message> {
        let meta = (
            proptest::option::of(".{0,20}"),
            any::<bool>(),
            proptest::option::of("[0-9a-f]{16}"),
        )
            .prop_map(|(storage_id, is_ephemeral, household_epoch)| PeerMetadata {
                storage_id,
                is_ephemeral,
                household_epoch,
            });
        let data = proptest::collection::vec(any::<u8>(), 0..300);
        prop_oneof![
            (
                arb_peer(),
                meta.clone(),
                proptest::collection::vec(".{0,4}", 0..3)
            )
                .prop_map(|(sender_id, peer_metadata, supported_protocol_versions)| {
                    Message::Join {
                        sender_id,
                        peer_metadata,
                        supported_protocol_versions,
                    }
                }),
            (arb_peer(), arb_peer(), meta, ".{0,4}").prop_map(
                |(sender_id, target_id, peer_metadata, selected_protocol_version)| {
                    Message::Peer {
                        sender_id,
                        target_id,
                        peer_metadata,
                        selected_protocol_version,
                    }
                }
            ),
            (arb_peer(), arb_peer(), arb_doc(), data.clone()).prop_map(
                |(sender_id, target_id, document_id, data)| Message::Request {
                    sender_id,
                    target_id,
                    document_id,
                    data,
                }
            ),
            (arb_peer(), arb_peer(), arb_doc(), data).prop_map(
                |(sender_id, target_id, document_id, data)| Message::Sync {
                    sender_id,
                    target_id,
                    document_id,
                    data,
                }
            ),
            (arb_peer(), arb_peer(), arb_doc()).prop_map(|(sender_id, target_id, document_id)| {
                Message::DocUnavailable {
                    sender_id,
                    target_id,
                    document_id,
                }
            }),
            (
                arb_peer(),
                arb_peer(),
                arb_doc(),
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..160), 0..4)
            )
                .prop_map(|(sender_id, target_id, document_id, proofs)| {
                    Message::Proofs {
                        sender_id,
                        target_id,
                        document_id,
                        proofs,
                    }
                }),
            (arb_peer(), arb_peer(), any::<u64>(), any::<[u8; 32]>()).prop_map(
                |(sender_id, target_id, number, secret)| Message::Epoch {
                    sender_id,
                    target_id,
                    epoch: crate::epochs::Epoch::new(number, secret),
                }
            ),
            ".{0,60}".prop_map(|message| Message::Error { message }),
        ]
    }

    proptest! {
        #[test]
        fn any_message_round_trips(messages in proptest::collection::vec(arb_message(), 1..4),
                                   chunk in 1usize..64) {
            let mut stream = Vec::new();
            for message in &messages {
                stream.extend(encode_frame(message).unwrap());
            }
            let mut decoder = FrameDecoder::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.push(piece).unwrap();
                while let Some(message) = decoder.next_message().unwrap() {
                    got.push(message);
                }
            }
            prop_assert_eq!(got, messages);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                                       chunk in 1usize..40) {
            let mut decoder = FrameDecoder::with_max_frame(512);
            for piece in bytes.chunks(chunk) {
                if decoder.push(piece).is_err() {
                    break;
                }
                while let Ok(Some(_)) = decoder.next_message() {}
            }
            let _ = Message::decode(&bytes);
        }

        #[test]
        fn arbitrary_payloads_in_valid_frames_never_panic(
            payload in proptest::collection::vec(any::<u8>(), 0..600)
        ) {
            let mut decoder = FrameDecoder::new();
            decoder.push(&raw_frame(&payload)).unwrap();
            let _ = decoder.next_message();
        }

        #[test]
        fn mutated_frames_never_panic(message in arb_message(),
                                      flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            let mut payload = encode_frame(&message).unwrap()[4..].to_vec();
            for (index, byte) in flips {
                let len = payload.len();
                payload[index % len] ^= byte;
            }
            let _ = Message::decode(&payload);
        }
    }
}
