//! One live feed stream: a producer task that reads the agency's feed from the store and a
//! bounded outbound stream that tonic sends to the subscriber.
//!
//! Why a task and a bounded channel rather than a stream that queries on demand: the producer
//! must wait on three things at once (a wake-up from the store, the heartbeat tick, shutdown),
//! and it must notice a subscriber that stopped reading. The channel holds at most
//! [`FeedOptions::send_buffer`] messages. When it is full the producer stops reading the store
//! and waits; if it stays full for [`FeedOptions::slow_subscriber_timeout`] the subscriber is
//! dropped: the producer ends (releasing its store reads and wake-up receiver) and the outbound
//! stream, which watches an "ending" token ahead of the channel, discards what is still buffered
//! and ends with `RESOURCE_EXHAUSTED`. So a subscriber that never reads costs the exchange at
//! most `send_buffer` messages plus what HTTP/2 flow control admits, never the whole feed.
//!
//! At server shutdown the same token (a child of the server's stop token) ends every stream at
//! once with `UNAVAILABLE`, so graceful shutdown never waits on an endless stream.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use prost::Message as _;
use tokio::sync::mpsc::{self, error::SendTimeoutError};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use yrd_call::timestamp;
use yrd_domain::AgencyId;
use yrd_domain::clock::Clock;
use yrd_proto::v1::{FeedEvent, Heartbeat, SubscribeResponse, subscribe_response};
use yrd_store::{FeedEventRecord, Store, StoreError};

use crate::options::FeedOptions;

/// Why a subscription ended (every way ends it: the stream is endless otherwise).
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionEnd {
    /// The subscriber cancelled its call or its connection went away.
    #[error("the subscriber closed its stream")]
    ClientGone,
    /// The server is shutting down.
    #[error("the exchange is shutting down")]
    ShuttingDown,
    /// The subscriber left its buffer full for this long.
    #[error("the subscriber read nothing for {0:?} while its buffer was full")]
    TooSlow(Duration),
    /// Reading the feed failed.
    #[error("reading the feed failed: {0}")]
    Store(#[from] StoreError),
    /// A stored event could not be decoded (written by a faulty writer or damaged).
    #[error("the stored event at cursor {cursor} is not an encoded FeedEvent: {source}")]
    CorruptEvent {
        /// Its cursor.
        cursor: u64,
        /// Why it does not decode.
        source: prost::DecodeError,
    },
}

/// Counts the subscribers dropped for reading too slowly, for whoever watches the feed (a test
/// waits on it instead of sleeping past the slow-subscriber timeout). Clones count together.
#[derive(Debug, Clone)]
pub struct SlowDrops(Arc<watch::Sender<u64>>);

impl Default for SlowDrops {
    fn default() -> Self {
        SlowDrops(Arc::new(watch::Sender::new(0)))
    }
}

impl SlowDrops {
    /// Sees the count move each time a subscriber is dropped as too slow.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    fn record(&self) {
        self.0.send_modify(|dropped| *dropped += 1);
    }
}

/// What a stream needs to start: whose feed, from where, and how to behave.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: FeedOptions,
    /// Told when this subscriber is dropped as too slow.
    pub(crate) slow_drops: SlowDrops,
    pub(crate) agency: AgencyId,
    /// The last cursor already delivered (or acknowledged): the stream starts after it.
    pub(crate) after: u64,
}

/// The terminal status of a stream, set by the producer before it cancels the ending token;
/// left empty when the server's shutdown cancelled it.
type Verdict = Arc<Mutex<Option<Status>>>;

/// The outbound side of a stream, handed to tonic.
pub(crate) type Outbound =
    std::pin::Pin<Box<dyn Stream<Item = Result<SubscribeResponse, Status>> + Send + 'static>>;

impl Subscription {
    /// Starts the producer task and answers the stream to return to the subscriber. `stop` is
    /// the server's shutdown token.
    pub(crate) fn start(self, stop: &CancellationToken) -> Outbound {
        let (tx, rx) = mpsc::channel(self.options.send_buffer);
        let ending = stop.child_token();
        let verdict: Verdict = Arc::new(Mutex::new(None));
        let producer = Producer {
            sub: self,
            tx,
            ending: ending.clone(),
            verdict: verdict.clone(),
        };
        tokio::spawn(producer.run());
        Box::pin(outbound(rx, ending, verdict))
    }
}

/// The stream tonic polls: the buffered messages, unless the stream is ending, in which case the
/// terminal status comes first and the buffer is discarded.
fn outbound(
    rx: mpsc::Receiver<SubscribeResponse>,
    ending: CancellationToken,
    verdict: Verdict,
) -> impl Stream<Item = Result<SubscribeResponse, Status>> + Send + 'static {
    struct State {
        rx: mpsc::Receiver<SubscribeResponse>,
        ending: CancellationToken,
        verdict: Verdict,
        done: bool,
    }
    let state = State {
        rx,
        ending,
        verdict,
        done: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let terminal = |s: &State| {
            let taken = match s.verdict.lock() {
                Ok(mut v) => v.take(),
                Err(poisoned) => poisoned.into_inner().take(),
            };
            taken.unwrap_or_else(shutting_down)
        };
        tokio::select! {
            biased;
            () = s.ending.cancelled() => {
                s.done = true;
                let status = terminal(&s);
                Some((Err(status), s))
            }
            message = s.rx.recv() => match message {
                Some(m) => Some((Ok(m), s)),
                // The producer always cancels `ending` before it lets go of the channel, so
                // this only happens together with it.
                None => {
                    s.done = true;
                    let status = terminal(&s);
                    Some((Err(status), s))
                }
            },
        }
    })
}

fn shutting_down() -> Status {
    Status::unavailable(
        "the exchange is shutting down; subscribe again from the last cursor you processed",
    )
}

/// The status a stream ends with, or `None` when nobody is listening any more.
fn end_status(end: &SubscriptionEnd) -> Option<Status> {
    match end {
        SubscriptionEnd::ClientGone => None,
        SubscriptionEnd::ShuttingDown => Some(shutting_down()),
        SubscriptionEnd::TooSlow(waited) => Some(Status::resource_exhausted(format!(
            "this subscriber read nothing for {} ms while its send buffer was full, so the \
             exchange dropped the stream; subscribe again from the last cursor you processed",
            waited.as_millis()
        ))),
        SubscriptionEnd::Store(e) => {
            tracing::error!(error = %e, "feed read failed");
            Some(Status::unavailable(
                "the exchange's store is unavailable; subscribe again from the last cursor you processed",
            ))
        }
        SubscriptionEnd::CorruptEvent { cursor, source } => {
            tracing::error!(cursor, error = %source, "stored feed event does not decode");
            Some(Status::internal(format!(
                "the event at cursor {cursor} of this feed cannot be read inside the exchange"
            )))
        }
    }
}

/// The producer half: reads the feed and fills the channel.
struct Producer {
    sub: Subscription,
    tx: mpsc::Sender<SubscribeResponse>,
    ending: CancellationToken,
    verdict: Verdict,
}

impl Producer {
    #[tracing::instrument(name = "feed_subscription", skip_all, fields(agency = %self.sub.agency, after = self.sub.after))]
    async fn run(mut self) {
        let end = self.pump().await;
        match &end {
            SubscriptionEnd::ClientGone | SubscriptionEnd::ShuttingDown => {
                tracing::debug!(reason = %end, "feed subscription ended");
            }
            _ => tracing::warn!(reason = %end, "feed subscription ended"),
        }
        if matches!(end, SubscriptionEnd::TooSlow(_)) {
            self.sub.slow_drops.record();
        }
        if let Some(status) = end_status(&end) {
            match self.verdict.lock() {
                Ok(mut v) => *v = Some(status),
                Err(poisoned) => *poisoned.into_inner() = Some(status),
            }
        }
        self.ending.cancel();
    }

    /// Delivers the backlog, then live events and heartbeats, until something ends the stream.
    async fn pump(&mut self) -> SubscriptionEnd {
        // Subscribe to wake-ups *before* the first read: a commit after this point changes the
        // watch, so no event can slip between the read and the wait.
        let mut wake: watch::Receiver<u64> = self.sub.store.watch_feed(&self.sub.agency);
        wake.borrow_and_update();
        let mut wake_alive = true;
        let heartbeat = self.sub.options.heartbeat_interval;
        let mut last_message = Instant::now();
        loop {
            match self.deliver_backlog().await {
                Ok(true) => last_message = Instant::now(),
                Ok(false) => {}
                Err(end) => return end,
            }
            tokio::select! {
                biased;
                () = self.ending.cancelled() => return SubscriptionEnd::ShuttingDown,
                () = self.tx.closed() => return SubscriptionEnd::ClientGone,
                changed = wake.changed(), if wake_alive => {
                    // The store keeps every sender for its lifetime; should one ever go, the
                    // heartbeat's re-read still delivers everything.
                    wake_alive = changed.is_ok();
                }
                () = tokio::time::sleep_until(last_message + heartbeat) => {
                    // Re-read first: a lost wake-up costs at most this one interval.
                    match self.deliver_backlog().await {
                        Ok(true) => last_message = Instant::now(),
                        Ok(false) => {
                            let beat = SubscribeResponse {
                                kind: Some(subscribe_response::Kind::Heartbeat(Heartbeat {
                                    server_time: Some(timestamp(self.sub.clock.now())),
                                    latest_cursor: self.sub.after,
                                })),
                            };
                            if let Err(end) = self.send(beat).await {
                                return end;
                            }
                            last_message = Instant::now();
                        }
                        Err(end) => return end,
                    }
                }
            }
        }
    }

    /// Sends every event after the current position, reading in batches; answers whether it
    /// sent any.
    async fn deliver_backlog(&mut self) -> Result<bool, SubscriptionEnd> {
        let batch = self.sub.options.read_batch;
        let mut sent = false;
        loop {
            let records = self
                .sub
                .store
                .feed_events_after(&self.sub.agency, self.sub.after, batch)
                .await?;
            let full = records.len() >= usize::try_from(batch).unwrap_or(usize::MAX);
            for record in records {
                let cursor = record.cursor;
                let event = decode(record)?;
                self.send(SubscribeResponse {
                    kind: Some(subscribe_response::Kind::Event(event)),
                })
                .await?;
                self.sub.after = cursor;
                sent = true;
            }
            if !full {
                return Ok(sent);
            }
        }
    }

    /// Puts one message in the subscriber's buffer, waiting at most the slow-subscriber timeout
    /// for room.
    async fn send(&self, message: SubscribeResponse) -> Result<(), SubscriptionEnd> {
        let patience = self.sub.options.slow_subscriber_timeout;
        tokio::select! {
            biased;
            () = self.ending.cancelled() => Err(SubscriptionEnd::ShuttingDown),
            sent = self.tx.send_timeout(message, patience) => match sent {
                Ok(()) => Ok(()),
                Err(SendTimeoutError::Closed(_)) => Err(SubscriptionEnd::ClientGone),
                Err(SendTimeoutError::Timeout(_)) => Err(SubscriptionEnd::TooSlow(patience)),
            },
        }
    }
}

/// The stored payload as the partner receives it, with its cursor filled in.
fn decode(record: FeedEventRecord) -> Result<FeedEvent, SubscriptionEnd> {
    let mut event = FeedEvent::decode(record.event.payload.as_slice()).map_err(|source| {
        SubscriptionEnd::CorruptEvent {
            cursor: record.cursor,
            source,
        }
    })?;
    event.cursor = record.cursor;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;
    use time::OffsetDateTime;
    use yrd_domain::clock::SystemClock;
    use yrd_proto::v1::EventType;
    use yrd_store::testing::TestDatabase;
    use yrd_store::{NewFeedEvent, StoreOptions};

    fn agency() -> AgencyId {
        AgencyId::parse("370000-AMR").expect("valid id")
    }

    fn event(n: u32, padding: usize) -> NewFeedEvent {
        let payload = FeedEvent {
            event_id: format!("e{n}"),
            event_type: EventType::ResultPublished as i32,
            resource_name: format!("results/r{n}"),
            resource_version: 1,
            trace_id: "x".repeat(padding),
            ..FeedEvent::default()
        };
        NewFeedEvent {
            recipient: agency(),
            event_id: format!("e{n}"),
            event_type: "EVENT_TYPE_RESULT_PUBLISHED".into(),
            resource_name: format!("results/r{n}"),
            resource_version: 1,
            event_time: OffsetDateTime::UNIX_EPOCH,
            actor_agency: "agencies/310000-SAMR".into(),
            trace_id: String::new(),
            needs_disposal: false,
            payload: payload.encode_to_vec(),
        }
    }

    async fn store(db: &TestDatabase) -> Store {
        Store::open(&db.url, &StoreOptions::default())
            .await
            .expect("open store")
    }

    fn subscription(store: &Store, options: FeedOptions) -> Subscription {
        Subscription {
            store: store.clone(),
            clock: Arc::new(SystemClock),
            options,
            slow_drops: SlowDrops::default(),
            agency: agency(),
            after: 0,
        }
    }

    fn cursor_of(item: Option<Result<SubscribeResponse, Status>>) -> u64 {
        match item.and_then(|r| r.ok()).and_then(|r| r.kind) {
            Some(subscribe_response::Kind::Event(e)) => e.cursor,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn backlog_in_small_batches_then_live() {
        let db = TestDatabase::sqlite();
        let store = store(&db).await;
        let batch: Vec<_> = (1..=7).map(|n| event(n, 0)).collect();
        store.append_feed_events(&batch).await.expect("append");
        let options = FeedOptions {
            read_batch: 3,
            send_buffer: 2,
            ..FeedOptions::default()
        };
        let stop = CancellationToken::new();
        let mut stream = subscription(&store, options).start(&stop);
        for expected in 1..=7 {
            assert_eq!(cursor_of(stream.next().await), expected);
        }
        store
            .append_feed_events(&[event(8, 0)])
            .await
            .expect("append");
        let live = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("the live event arrives without waiting for a heartbeat");
        assert_eq!(cursor_of(live), 8);
        stop.cancel();
        let end = stream.next().await;
        assert!(
            matches!(&end, Some(Err(s)) if s.code() == tonic::Code::Unavailable),
            "{end:?}"
        );
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn idle_stream_beats_with_its_position() {
        let db = TestDatabase::sqlite();
        let store = store(&db).await;
        store
            .append_feed_events(&[event(1, 0)])
            .await
            .expect("append");
        let options = FeedOptions {
            heartbeat_interval: Duration::from_millis(50),
            ..FeedOptions::default()
        };
        let stop = CancellationToken::new();
        let mut stream = subscription(&store, options).start(&stop);
        assert_eq!(cursor_of(stream.next().await), 1);
        match stream
            .next()
            .await
            .and_then(|r| r.ok())
            .and_then(|r| r.kind)
        {
            Some(subscribe_response::Kind::Heartbeat(h)) => {
                assert_eq!(h.latest_cursor, 1);
                assert!(h.server_time.is_some());
            }
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_subscriber_that_never_reads_is_dropped() {
        let db = TestDatabase::sqlite();
        let store = store(&db).await;
        let batch: Vec<_> = (1..=20).map(|n| event(n, 0)).collect();
        store.append_feed_events(&batch).await.expect("append");
        let options = FeedOptions {
            send_buffer: 4,
            slow_subscriber_timeout: Duration::from_millis(100),
            ..FeedOptions::default()
        };
        let stop = CancellationToken::new();
        let sub = subscription(&store, options);
        let mut dropped = sub.slow_drops.watch();
        let mut stream = sub.start(&stop);
        // Read nothing until the producer has given up, then read: the buffered events are
        // discarded and the stream ends with RESOURCE_EXHAUSTED at once.
        tokio::time::timeout(Duration::from_secs(10), dropped.wait_for(|n| *n == 1))
            .await
            .expect("dropped after the slow-subscriber timeout")
            .expect("the count is kept");
        let first = stream.next().await;
        assert!(
            matches!(&first, Some(Err(s)) if s.code() == tonic::Code::ResourceExhausted),
            "{first:?}"
        );
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_corrupt_event_ends_the_stream_instead_of_being_skipped() {
        let db = TestDatabase::sqlite();
        let store = store(&db).await;
        let mut bad = event(1, 0);
        bad.payload = vec![0xff, 0xff, 0xff];
        store.append_feed_events(&[bad]).await.expect("append");
        let stop = CancellationToken::new();
        let mut stream = subscription(&store, FeedOptions::default()).start(&stop);
        let first = stream.next().await;
        assert!(
            matches!(&first, Some(Err(s)) if s.code() == tonic::Code::Internal),
            "{first:?}"
        );
    }
}
