//! hearthd: the Hearth daemon as a library, so that tests and the CLI's demo can run it
//! in-process or as a child.
#![forbid(unsafe_code)]

pub mod storage;
pub mod transport;
