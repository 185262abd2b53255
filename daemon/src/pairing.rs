//! Pairing over `hearth-pair/1`: the daemon's driver for [`hearth_core::pair`].

use std::sync::Arc;

use crate::net::Net;
use crate::transport::{self, Accepted, CloseReason};

/// Handles an incoming pairing connection.
pub async fn accept(net: Arc<Net>, accepted: Accepted) {
    let _ = net;
    transport::close(&accepted.connection, CloseReason::ProtocolViolation);
}
