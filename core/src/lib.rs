//! Hearth's sans-IO core.
//!
//! This crate owns the domain model, the Automerge documents and their typed API, the
//! store's file format, the sync and pairing state machines, the crypto envelopes and
//! the insights. It opens no sockets, spawns no tasks and reads no clock: time and
//! randomness come in as arguments so that every piece can be driven deterministically.
#![forbid(unsafe_code)]

pub mod authority;
pub mod doc;
pub mod envelope;
pub mod epochs;
pub mod identity;
pub mod insights;
pub mod labels;
pub mod model;
pub mod ops;
pub mod pair;
pub mod provenance;
pub mod roster;
pub mod secrets;
pub mod starter;
pub mod sync;
pub mod today;
pub mod together;

/// A fixed description of a JSON error, for errors that may reach a log. serde's own
/// messages quote the offending value (`invalid type: string "…", expected …`), which
/// may be an entry's content, a name or an address.
pub fn json_error_kind(err: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match err.classify() {
        Category::Io => "it could not be read",
        Category::Syntax => "it is not well-formed JSON",
        Category::Data => "a field has the wrong type or value",
        Category::Eof => "it ends too early",
    }
}

/// The system's random source, for tests that make real keys. Outside tests, core
/// takes randomness from its caller (see `clippy.toml`).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_rng() -> ring::rand::SystemRandom {
    ring::rand::SystemRandom::new()
}
