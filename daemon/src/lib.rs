//! hearthd: the Hearth daemon as a library, so that its binary and the tests can run
//! it. The control protocol's types, the client and the paths are in `hearth-api`,
//! which the CLI uses without linking this crate's network stack.
#![forbid(unsafe_code)]

pub mod actor;
pub mod clock;
pub mod daemon;
pub mod discovery;
pub mod epochs;
pub mod handlers;
pub mod net;
pub mod pairing;
pub mod read_cache;
pub mod reminder;
pub mod storage;
pub mod sync_hub;
pub mod transport;
pub mod web;
