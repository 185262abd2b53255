//! The integration harness for Hearth: generated household data and, later, multi-daemon
//! set-ups in temp dirs.
//!
//! This crate is `publish = false` and only ever used by tests, the benchmark binary and
//! the demo. It may do IO and read clocks (the benchmark measures time), but the data it
//! generates is a pure function of its seed.

pub mod bench;
pub mod epochs;
pub mod fuzzing;
pub mod generate;
pub mod harness;
pub mod webdriver;
