//! Time comes from a [`Clock`]: the system clock in production, or a simulated one that an
//! admin moves forward so demos and tests live through days in seconds.
//!
//! This is the only module that reads the wall clock (`crates/yuanlu/tests/wall_clock.rs`
//! fails on any other use). Every product time — acceptance, channel success times, expected
//! arrival, overdue, webhooks, statements, audit — comes from the one `Arc<dyn Clock>` that
//! `yuanlu serve` builds and hands to the engine and to the in-process channel simulators.
//! The one deliberate exception is transport freshness: signature timestamps on channel
//! requests and callbacks use [`SystemClock`] on both sides (see `channels::signing`).

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Moves a simulated clock forward; `None` for the real clock.
    fn advance(&self, by: Duration) -> Option<DateTime<Utc>>;

    fn is_simulated(&self) -> bool;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn advance(&self, _by: Duration) -> Option<DateTime<Utc>> {
        None
    }

    fn is_simulated(&self) -> bool {
        false
    }
}

/// A clock that stands still until advanced. It only moves forward.
#[derive(Debug)]
pub struct SimulatedClock {
    now: Mutex<DateTime<Utc>>,
}

impl SimulatedClock {
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        match self.now.lock() {
            Ok(now) => *now,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn advance(&self, by: Duration) -> Option<DateTime<Utc>> {
        let mut now = match self.now.lock() {
            Ok(now) => now,
            Err(poisoned) => poisoned.into_inner(),
        };
        *now += by.max(Duration::zero());
        Some(*now)
    }

    fn is_simulated(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_clock_stands_still_and_moves_forward_only() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let clock = SimulatedClock::starting_at(start);
        assert_eq!(clock.now(), start);
        assert_eq!(
            clock.advance(Duration::days(2)),
            Some(start + Duration::days(2))
        );
        assert_eq!(
            clock.advance(Duration::seconds(-5)),
            Some(start + Duration::days(2))
        );
    }

    #[test]
    fn system_clock_cannot_be_advanced() {
        assert_eq!(SystemClock.advance(Duration::days(1)), None);
    }
}
