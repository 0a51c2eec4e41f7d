//! The injected clock. Every rule that depends on "now" takes it from a [`Clock`], so that
//! deadline tests move time instead of sleeping.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the wall clock is read (`.clippy.toml` bans it everywhere else).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that tests set and advance by hand. It starts at the instant it was made with and
/// only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    /// Nanoseconds since the Unix epoch; atomic so readers never block a writer.
    nanos: AtomicI64,
    /// Serialises `advance` so two advances never lose one another.
    advance_lock: Mutex<()>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock {
            nanos: AtomicI64::new(to_nanos(start)),
            advance_lock: Mutex::new(()),
        }
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: OffsetDateTime) {
        self.nanos.store(to_nanos(at), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: time::Duration) {
        let _guard = self.advance_lock.lock();
        let now = self.nanos.load(Ordering::SeqCst);
        let by = i64::try_from(by.whole_nanoseconds()).unwrap_or(i64::MAX);
        self.nanos.store(now.saturating_add(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let nanos = self.nanos.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

fn to_nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(time::Duration::days(3));
        assert_eq!(clock.now(), start + time::Duration::days(3));
    }
}
