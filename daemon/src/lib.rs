//! hearthd: the Hearth daemon as a library, so that the CLI, the tests and the demo can
//! run it in-process or as a child, and share the control API's types.
#![forbid(unsafe_code)]

pub mod actor;
pub mod api;
pub mod client;
pub mod config;
pub mod daemon;
pub mod discovery;
pub mod epochs;
pub mod handlers;
pub mod net;
pub mod pairing;
pub mod paths;
pub mod read_cache;
pub mod reminder;
pub mod storage;
pub mod sync_hub;
pub mod transport;
