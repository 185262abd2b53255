//! Hearth's sans-IO core.
//!
//! This crate owns the domain model, the Automerge documents and their typed API, the
//! store's file format, the sync and pairing state machines, the crypto envelopes and
//! the insights. It opens no sockets, spawns no tasks and reads no clock: time and
//! randomness come in as arguments so that every piece can be driven deterministically.
#![forbid(unsafe_code)]

pub mod doc;
pub mod envelope;
pub mod identity;
pub mod insights;
pub mod model;
pub mod pair;
pub mod secrets;
pub mod starter;
pub mod sync;
pub mod today;
pub mod together;
