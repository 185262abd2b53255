//! The daemon's clocks, read in one place and handed to the sans-IO core as [`Now`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hearth_core::model::Millis;
use hearth_core::sync::Now;

/// Wall-clock time in Unix milliseconds.
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// A monotonic epoch picked once, and the wall clock beside it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock whose monotonic time starts now.
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    /// The moment now, in the core's one time type.
    pub fn now(&self) -> Now {
        Now {
            mono: self.start.elapsed(),
            wall: now_millis(),
        }
    }

    /// The instant a monotonic time of [`Clock::now`] falls on.
    pub fn instant_at(&self, mono: Duration) -> Instant {
        self.start + mono
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
