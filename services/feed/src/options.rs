//! The tunables of feed streams. The defaults serve production; tests shorten the intervals.
//!
//! The send buffer and the slow-subscriber timeout together are what keep a subscriber that
//! stops reading from costing the exchange memory: at most `send_buffer` events wait for it in
//! the exchange (plus what HTTP/2 flow control already let onto the wire), and after
//! `slow_subscriber_timeout` without room in that buffer its stream is dropped.

use std::time::Duration;

/// How feed streams behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedOptions {
    /// An idle stream gets a `Heartbeat` after this long without a message; each tick also
    /// re-reads the store, bounding the delay of an event whose wake-up was lost.
    pub heartbeat_interval: Duration,
    /// Events read from the store per query while a backlog is delivered.
    pub read_batch: u32,
    /// Messages that may wait in the exchange for one subscriber to read them (the bounded
    /// channel between a subscription's producer task and its gRPC stream).
    pub send_buffer: usize,
    /// A subscriber whose buffer stays full this long is dropped: its stream ends with
    /// `RESOURCE_EXHAUSTED` and it must subscribe again from its last cursor.
    pub slow_subscriber_timeout: Duration,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            heartbeat_interval: Duration::from_secs(10),
            read_batch: 256,
            send_buffer: 64,
            slow_subscriber_timeout: Duration::from_secs(30),
        }
    }
}

impl FeedOptions {
    /// The options with every value raised to its smallest workable setting (a zero buffer or
    /// batch cannot carry anything, a zero interval would spin).
    pub fn sanitized(self) -> FeedOptions {
        FeedOptions {
            heartbeat_interval: self.heartbeat_interval.max(Duration::from_millis(10)),
            read_batch: self.read_batch.max(1),
            send_buffer: self.send_buffer.max(1),
            slow_subscriber_timeout: self.slow_subscriber_timeout.max(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_raises_zeros_and_keeps_the_rest() {
        let zero = FeedOptions {
            heartbeat_interval: Duration::ZERO,
            read_batch: 0,
            send_buffer: 0,
            slow_subscriber_timeout: Duration::ZERO,
        }
        .sanitized();
        assert_eq!(zero.read_batch, 1);
        assert_eq!(zero.send_buffer, 1);
        assert!(zero.heartbeat_interval > Duration::ZERO);
        assert!(zero.slow_subscriber_timeout > Duration::ZERO);
        assert_eq!(FeedOptions::default().sanitized(), FeedOptions::default());
    }
}
