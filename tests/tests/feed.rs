//! `FeedService` end to end, over real mTLS, on SQLite and PostgreSQL: each agency's feed is
//! streamed in cursor order (backlog, then live), only to that agency, resumable after a
//! disconnect and after a server restart with nothing lost or reordered; acknowledgements move
//! the starting point; idle streams carry heartbeats; a subscriber that never reads is dropped.
//!
//! Events are appended straight into the store (as the services that cause them do, in their
//! write's transaction), so these scenarios depend on no other service.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::codec::Streaming;
use yrd_domain::clock::SystemClock;
use yrd_e2e::calm::{CalmAgency, report, resident_bytes};
use yrd_e2e::fixtures;
use yrd_e2e::{Authed, JIANGSU, SHANDONG, StoreKind, TestApp, on_both_stores};
use yrd_proto::v1::feed_service_client::FeedServiceClient;
use yrd_proto::v1::{
    AckRequest, EventType, FeedEvent, GetFeedPositionRequest, GetFeedPositionResponse,
    SubscribeRequest, SubscribeResponse, feed_event, subscribe_response,
};
use yrd_store::NewFeedEvent;

/// How long a test waits for a message that should come at once (longer than the default
/// 10 s heartbeat, so that an event delivered by the heartbeat's re-read still counts).
const PROMPT: Duration = Duration::from_secs(15);

/// The `n`-th event for `to`: a published result, padded with `padding` bytes (to fill
/// flow-control windows in the slow-subscriber scenario).
fn result_event(to: &str, n: u32, padding: usize) -> NewFeedEvent {
    fixtures::result_event(to, &format!("{to}-{n}"), &format!("r{n}"), padding)
}

/// Appends events `range` for `to`, in one transaction.
async fn append(app: &TestApp, to: &str, range: std::ops::RangeInclusive<u32>) {
    let events: Vec<_> = range.map(|n| result_event(to, n, 0)).collect();
    app.store
        .append_feed_events(&events)
        .await
        .expect("append feed events");
}

/// Where `client`'s feed stands.
async fn feed_position(client: &mut FeedServiceClient<Authed>) -> GetFeedPositionResponse {
    client
        .get_feed_position(GetFeedPositionRequest {})
        .await
        .expect("position")
        .into_inner()
}

async fn subscribe(
    client: &mut FeedServiceClient<Authed>,
    from_cursor: Option<u64>,
) -> Streaming<SubscribeResponse> {
    client
        .subscribe(SubscribeRequest { from_cursor })
        .await
        .expect("subscribe")
        .into_inner()
}

/// The next event of the stream, skipping heartbeats.
async fn next_event(stream: &mut Streaming<SubscribeResponse>) -> FeedEvent {
    fixtures::next_event(stream, PROMPT).await
}

/// The next `n` events, as `(cursor, event_id)`.
async fn next_events(stream: &mut Streaming<SubscribeResponse>, n: usize) -> Vec<(u64, String)> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        let e = next_event(stream).await;
        got.push((e.cursor, e.event_id));
    }
    got
}

/// What `next_events` should answer for events `range` of `to`, cursors equal to `n`.
fn expected(to: &str, range: std::ops::RangeInclusive<u32>) -> Vec<(u64, String)> {
    range.map(|n| (u64::from(n), format!("{to}-{n}"))).collect()
}

on_both_stores!(
    backlog_then_live_in_order,
    an_agency_sees_only_its_own_feed,
    resume_after_disconnect_misses_nothing,
    ack_moves_the_starting_point,
    cursors_beyond_the_feed_are_out_of_range,
    resume_across_a_server_restart,
);

async fn backlog_then_live_in_order(app: TestApp) {
    append(&app, SHANDONG, 1..=3).await;
    let mut client = app.as_agency(SHANDONG).await.feed;
    let mut stream = subscribe(&mut client, None).await;
    assert_eq!(next_events(&mut stream, 3).await, expected(SHANDONG, 1..=3));
    append(&app, SHANDONG, 4..=4).await;
    append(&app, SHANDONG, 5..=6).await;
    assert_eq!(next_events(&mut stream, 3).await, expected(SHANDONG, 4..=6));
    // The payload is delivered whole, with its cursor filled in.
    append(&app, SHANDONG, 7..=7).await;
    let seventh = next_event(&mut stream).await;
    assert_eq!(seventh.event_type, EventType::ResultPublished as i32);
    assert_eq!(seventh.resource_name, "results/r7");
    assert!(
        matches!(&seventh.resource, Some(feed_event::Resource::Result(r)) if r.name == "results/r7"),
        "{:?}",
        seventh.resource
    );
}

async fn an_agency_sees_only_its_own_feed(app: TestApp) {
    append(&app, SHANDONG, 1..=2).await;
    append(&app, JIANGSU, 1..=1).await;
    let mut jiangsu = app.as_agency(JIANGSU).await.feed;
    let mut js_stream = subscribe(&mut jiangsu, None).await;
    assert_eq!(
        next_events(&mut js_stream, 1).await,
        expected(JIANGSU, 1..=1)
    );
    // Shandong's live events never reach Jiangsu; Jiangsu's next one does, as its cursor 2.
    append(&app, SHANDONG, 3..=5).await;
    app.store
        .append_feed_events(&[result_event(JIANGSU, 2, 0)])
        .await
        .expect("append");
    assert_eq!(
        next_events(&mut js_stream, 1).await,
        expected(JIANGSU, 2..=2)
    );
    // Jiangsu's position says nothing of Shandong's five events.
    let position = feed_position(&mut jiangsu).await;
    assert_eq!((position.acked_cursor, position.latest_cursor), (0, 2));
    // Acknowledging Shandong's cursor 5 is beyond Jiangsu's own feed.
    let refused = jiangsu
        .ack(AckRequest { cursor: 5 })
        .await
        .expect_err("Jiangsu's feed ends at 2");
    assert_eq!(refused.code(), Code::OutOfRange);
    let mut shandong = app.as_agency(SHANDONG).await.feed;
    let mut sd_stream = subscribe(&mut shandong, None).await;
    assert_eq!(
        next_events(&mut sd_stream, 5).await,
        expected(SHANDONG, 1..=5)
    );
}

async fn resume_after_disconnect_misses_nothing(app: TestApp) {
    append(&app, SHANDONG, 1..=5).await;
    let mut client = app.as_agency(SHANDONG).await.feed;
    let mut stream = subscribe(&mut client, None).await;
    let first = next_events(&mut stream, 3).await;
    assert_eq!(first, expected(SHANDONG, 1..=3));
    let last_processed = first.last().map(|(c, _)| *c).expect("three events");
    // Disconnect mid-stream (events 4 and 5 may already be on the wire), then more arrive.
    drop(stream);
    drop(client);
    append(&app, SHANDONG, 6..=8).await;
    let mut client = app.as_agency(SHANDONG).await.feed;
    let mut stream = subscribe(&mut client, Some(last_processed)).await;
    assert_eq!(next_events(&mut stream, 5).await, expected(SHANDONG, 4..=8));
}

async fn ack_moves_the_starting_point(app: TestApp) {
    append(&app, SHANDONG, 1..=4).await;
    let mut client = app.as_agency(SHANDONG).await.feed;
    let position = feed_position(&mut client).await;
    assert_eq!(
        (
            position.acked_cursor,
            position.latest_cursor,
            position.backlog
        ),
        (0, 4, 4)
    );
    assert!(position.oldest_unacked_event_time.is_some());

    let acked = client
        .ack(AckRequest { cursor: 3 })
        .await
        .expect("ack")
        .into_inner();
    assert_eq!(acked.acked_cursor, 3);
    let receipt = acked.receipt.expect("an ack carries a receipt");
    assert_eq!(receipt.leaf_hash.len(), 32);
    assert!(!receipt.signature.is_empty());
    // The position only moves forward: an older ack changes nothing.
    let older = client
        .ack(AckRequest { cursor: 1 })
        .await
        .expect("older ack")
        .into_inner();
    assert_eq!(older.acked_cursor, 3);

    let mut stream = subscribe(&mut client, None).await;
    assert_eq!(next_events(&mut stream, 1).await, expected(SHANDONG, 4..=4));
    let position = feed_position(&mut client).await;
    assert_eq!(
        (
            position.acked_cursor,
            position.latest_cursor,
            position.backlog
        ),
        (3, 4, 1)
    );
    // An explicit cursor overrides the acknowledged position (re-reading is allowed).
    let mut again = subscribe(&mut client, Some(1)).await;
    assert_eq!(next_events(&mut again, 3).await, expected(SHANDONG, 2..=4));
}

async fn cursors_beyond_the_feed_are_out_of_range(app: TestApp) {
    append(&app, SHANDONG, 1..=2).await;
    let mut client = app.as_agency(SHANDONG).await.feed;
    let ack = client
        .ack(AckRequest { cursor: 3 })
        .await
        .expect_err("cursor 3 does not exist yet");
    assert_eq!(ack.code(), Code::OutOfRange);
    assert!(ack.message().starts_with("cursor:"), "{}", ack.message());
    let sub = client
        .subscribe(SubscribeRequest {
            from_cursor: Some(9),
        })
        .await
        .expect_err("cursor 9 does not exist yet");
    assert_eq!(sub.code(), Code::OutOfRange);
    assert!(
        sub.message().starts_with("from_cursor:"),
        "{}",
        sub.message()
    );
    // Nothing moved.
    let position = feed_position(&mut client).await;
    assert_eq!((position.acked_cursor, position.latest_cursor), (0, 2));
}

async fn resume_across_a_server_restart(app: TestApp) {
    append(&app, SHANDONG, 1..=4).await;
    let mut client = app.as_agency(SHANDONG).await.feed;
    client.ack(AckRequest { cursor: 1 }).await.expect("ack");
    let mut stream = subscribe(&mut client, None).await;
    assert_eq!(next_events(&mut stream, 2).await, expected(SHANDONG, 2..=3));

    // Restart while the stream is open: it ends cleanly with UNAVAILABLE (resubscribe), and
    // the shutdown does not hang on it.
    let reader = tokio::spawn(async move {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status.code()),
            }
        }
    });
    let app = tokio::time::timeout(Duration::from_secs(30), app.restart())
        .await
        .expect("the server restarts without waiting on the open stream");
    let ended = tokio::time::timeout(PROMPT, reader)
        .await
        .expect("the old stream ended")
        .expect("reader task");
    assert!(
        matches!(ended, Some(Code::Unavailable)),
        "the stream ends with UNAVAILABLE at shutdown, got {ended:?}"
    );

    append(&app, SHANDONG, 5..=6).await;
    let mut client = app.as_agency(SHANDONG).await.feed;
    // From the last event processed before the restart: nothing lost, nothing reordered.
    let mut resumed = subscribe(&mut client, Some(3)).await;
    assert_eq!(
        next_events(&mut resumed, 3).await,
        expected(SHANDONG, 4..=6)
    );
    // The acknowledged position survived the restart too.
    let mut from_ack = subscribe(&mut client, None).await;
    assert_eq!(
        next_events(&mut from_ack, 5).await,
        expected(SHANDONG, 2..=6)
    );
}

// ----------------------------------------------------------------------------------------------
// Scenarios that need the feed's timings shortened.
// ----------------------------------------------------------------------------------------------

/// Runs each scenario on both stores with short feed timings: heartbeats every 200 ms, a
/// send buffer of 4, reads of 64 events, and a subscriber dropped after 300 ms without room in
/// its buffer.
macro_rules! on_both_stores_fast_feed {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = super::fast_feed(yrd_e2e::StoreKind::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$scenario(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = super::fast_feed(yrd_e2e::StoreKind::Postgres).await {
                        super::$scenario(app).await;
                    }
                }
            }
        )*
    };
}

const FAST_HEARTBEAT: Duration = Duration::from_millis(200);

async fn fast_feed(kind: StoreKind) -> Option<TestApp> {
    TestApp::spawn_with(
        kind,
        |settings| {
            settings.feed.heartbeat_interval_ms = 200;
            settings.feed.send_buffer = 4;
            settings.feed.read_batch = 64;
            settings.feed.slow_subscriber_timeout_ms = 300;
        },
        Arc::new(SystemClock),
    )
    .await
}

on_both_stores_fast_feed!(
    heartbeats_when_idle,
    a_subscriber_that_never_reads_is_dropped
);

async fn heartbeats_when_idle(app: TestApp) {
    append(&app, SHANDONG, 1..=2).await;
    let mut client = app.as_agency(SHANDONG).await.feed;
    let mut stream = subscribe(&mut client, None).await;
    assert_eq!(next_events(&mut stream, 2).await, expected(SHANDONG, 1..=2));
    let started = Instant::now();
    let mut beats = 0;
    while beats < 3 {
        let message = tokio::time::timeout(PROMPT, stream.message())
            .await
            .expect("a heartbeat within the deadline")
            .expect("healthy")
            .expect("open");
        match message.kind {
            Some(subscribe_response::Kind::Heartbeat(beat)) => {
                assert_eq!(
                    beat.latest_cursor, 2,
                    "the heartbeat carries the feed's end"
                );
                assert!(beat.server_time.is_some());
                beats += 1;
            }
            other => panic!("an idle feed sends only heartbeats, got {other:?}"),
        }
    }
    // Three beats at the configured interval, not a flood.
    assert!(
        started.elapsed() >= FAST_HEARTBEAT * 2,
        "three heartbeats took only {:?}",
        started.elapsed()
    );
    // Events still flow between heartbeats.
    append(&app, SHANDONG, 3..=3).await;
    assert_eq!(next_events(&mut stream, 1).await, expected(SHANDONG, 3..=3));
}

async fn a_subscriber_that_never_reads_is_dropped(app: TestApp) {
    // 2,048 events of ~16 KiB: 32 MiB, far beyond what HTTP/2 flow control (the client's
    // 2 MiB stream window, the server's send buffer), a read of 64 events and the feed's
    // buffer of 4 can hold. Appended in transactions of 1 MiB, so that appending them leaves
    // little freed memory behind for the subscription to reuse unseen.
    const EVENTS: u32 = 2048;
    const PADDING: usize = 16 * 1024;
    for first in (1..=EVENTS).step_by(64) {
        let chunk: Vec<_> = (first..first + 64)
            .map(|n| result_event(SHANDONG, n, PADDING))
            .collect();
        app.store.append_feed_events(&chunk).await.expect("append");
    }
    // Another agency's ordinary calls, timed before the subscriber and while it stalls.
    let mut calm = CalmAgency::new(&app, JIANGSU).await;
    let before = calm.paced("before", 20, Duration::from_millis(50)).await;
    let mut dropped = app.slow_drops.watch();
    let mut client = app.as_agency(SHANDONG).await.feed;
    let resident_before = resident_bytes();
    let during = calm.spawn_paced("during", 20, Duration::from_millis(50));
    let mut stream = subscribe(&mut client, None).await;
    assert_eq!(next_event(&mut stream).await.cursor, 1);
    // Stop reading until the server has dropped this subscriber (its buffer stayed full for the
    // slow-subscriber timeout, 300 ms), sampling this process's memory (the server's and the
    // test's) meanwhile; the deadline only fails a hung test.
    let mut resident_peak = resident_before;
    let deadline = Instant::now() + Duration::from_secs(20);
    while *dropped.borrow_and_update() < 1 {
        assert!(
            Instant::now() < deadline,
            "the server drops the subscriber that does not read"
        );
        resident_peak = resident_peak.max(resident_bytes());
        let _ = tokio::time::timeout(Duration::from_millis(10), dropped.changed()).await;
    }
    let during = during.await.expect("the calm agency's calls");
    let feed_bytes = u64::from(EVENTS) * PADDING as u64;
    let growth = resident_peak.saturating_sub(resident_before);
    println!(
        "slow subscriber: resident memory {:.1} MiB before, {:.1} MiB at its peak while the \
         subscriber stalled (+{:.1} MiB) for a feed of {:.0} MiB",
        mib(resident_before),
        mib(resident_peak),
        mib(growth),
        mib(feed_bytes)
    );
    assert!(
        growth < feed_bytes / 2,
        "the server's memory grew by {:.1} MiB for a subscriber that does not read",
        mib(growth)
    );
    report("a subscriber that never reads", &before, &during);
    let mut received = 1u32;
    let mut last_cursor = 1;
    let end = loop {
        match tokio::time::timeout(PROMPT, stream.message())
            .await
            .expect("the stream moves once read")
        {
            Ok(Some(SubscribeResponse {
                kind: Some(subscribe_response::Kind::Event(e)),
            })) => {
                assert_eq!(e.cursor, last_cursor + 1, "in order, without gaps");
                last_cursor = e.cursor;
                received += 1;
            }
            Ok(Some(_)) => {}
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    println!("slow subscriber: {received} of {EVENTS} events reached it before it was dropped");
    let end = end.expect("the dropped stream ends with a status");
    assert_eq!(end.code(), Code::ResourceExhausted, "{end:?}");
    assert!(
        received < EVENTS,
        "the server gave up instead of buffering the whole feed ({received} of {EVENTS} arrived)"
    );
    // The dropped subscriber resumes from its cursor and gets the rest, in order.
    let mut resumed = subscribe(&mut client, Some(last_cursor)).await;
    for expected_cursor in last_cursor + 1..=u64::from(EVENTS) {
        assert_eq!(next_event(&mut resumed).await.cursor, expected_cursor);
    }
}

/// `bytes` in MiB, for the printed figures.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ----------------------------------------------------------------------------------------------
// Replicas (PostgreSQL only: SQLite is one process).
// ----------------------------------------------------------------------------------------------

/// A subscriber on one replica is woken by a commit made through another replica's store,
/// through `LISTEN/NOTIFY` alone: the heartbeat (and its re-read) is 10 s away, the event must
/// arrive well before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_ups_cross_replicas_on_postgres() {
    let Some(primary) = TestApp::spawn(StoreKind::Postgres).await else {
        return;
    };
    let replica = primary.spawn_replica().await;
    let mut client = replica.as_agency(SHANDONG).await.feed;
    let mut stream = subscribe(&mut client, None).await;
    // The replica's listener starts in the background: until it is LISTENing, a wake-up can
    // be missed and the event comes with the heartbeat's re-read. So the first event may take
    // up to one heartbeat; the ones after it must not.
    append(&primary, SHANDONG, 1..=1).await;
    assert_eq!(next_events(&mut stream, 1).await, expected(SHANDONG, 1..=1));
    for n in 2..=5 {
        let sent = Instant::now();
        append(&primary, SHANDONG, n..=n).await;
        let got = tokio::time::timeout(Duration::from_secs(3), next_event(&mut stream))
            .await
            .expect("woken by the other replica's NOTIFY, not by the 10 s heartbeat");
        assert_eq!(got.cursor, u64::from(n));
        println!("cross-replica delivery of cursor {n}: {:?}", sent.elapsed());
    }
}

// ----------------------------------------------------------------------------------------------
// Publish-to-delivery latency (issue 5: p99 within 50 ms on SQLite, without polling).
// ----------------------------------------------------------------------------------------------

/// Appends 300 events one commit at a time, each after the previous one arrived, with a
/// connected subscriber on the default 10 s heartbeat (so a delivery can only come from the
/// wake-up, never from the heartbeat's re-read), and prints p50/p99 of append → receive.
/// Run with `cargo test -p yrd-e2e --test feed publish_to_delivery_latency -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_delivery_latency_on_sqlite() {
    const SAMPLES: u32 = 300;
    let app = TestApp::spawn(StoreKind::Sqlite)
        .await
        .expect("SQLite is always available");
    let mut client = app.as_agency(SHANDONG).await.feed;
    let mut stream = subscribe(&mut client, None).await;
    let mut latencies = Vec::with_capacity(SAMPLES as usize);
    for n in 1..=SAMPLES {
        let event = result_event(SHANDONG, n, 0);
        let sent = Instant::now();
        app.store
            .append_feed_events(&[event])
            .await
            .expect("append");
        let got = next_event(&mut stream).await;
        latencies.push(sent.elapsed());
        assert_eq!(got.cursor, u64::from(n));
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    let (p50, p99, max) = (at(0.50), at(0.99), at(1.0));
    println!(
        "feed publish-to-delivery on SQLite over mTLS, {SAMPLES} events: \
         p50 {p50:?}, p99 {p99:?}, max {max:?}"
    );
    // Generous: CI machines are shared. The target (50 ms) is reported, not asserted.
    assert!(p99 < Duration::from_millis(250), "p99 {p99:?}");
}
