//! hearth-api: what `hearth` and `hearthd` share, and nothing that needs a network stack.
//!
//! - the control protocol's requests, responses and events (re-exported at the root),
//! - [`client`], the blocking client of the control socket,
//! - [`paths`] and [`config`], where a daemon keeps its files and its `config.toml`.
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod paths;
mod proto;

pub use proto::*;
