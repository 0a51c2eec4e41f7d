//! The `yrd-client` library against the real server, on SQLite and PostgreSQL: the token is
//! renewed before it expires and after the exchange refuses it; idempotent calls are retried
//! through a rate limit (honouring the server's `RetryInfo`) and through a server restart; the
//! feed consumer resumes from its stored cursor after a handler failure and after the server
//! went away, losing nothing and handing nothing over twice; the caller's `traceparent` reaches
//! the exchange.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic_types::StatusExt as _;
use yrd_client::feed::{CursorStore as _, FeedConsumer, FeedError, FileCursorStore};
use yrd_client::{Client, RetryPolicy, TraceParent};
use yrd_domain::Profile;
use yrd_domain::clock::{Clock as _, ManualClock, SystemClock};
use yrd_e2e::fixtures;
use yrd_e2e::{JIANGSU, SHANDONG, StoreKind, TestApp, next_monday_morning, on_both_stores};
use yrd_proto::v1::{FeedEvent, GetFeedPositionRequest, GetFeedPositionResponse};

/// Runs `$scenario(kind)` on SQLite and on PostgreSQL, for scenarios that start their own
/// server (a manual clock, a tight rate limit).
macro_rules! on_both_kinds {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(yrd_e2e::StoreKind::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(yrd_e2e::StoreKind::Postgres).await;
                }
            }
        )*
    };
}

on_both_kinds!(
    the_token_is_renewed_before_it_expires_and_after_a_refusal,
    a_rate_limited_call_waits_as_the_server_asks_and_succeeds,
);

on_both_stores!(
    a_call_is_retried_until_the_restarted_server_answers,
    the_feed_consumer_resumes_from_its_cursor,
    the_callers_traceparent_reaches_the_exchange,
);

/// How long a test waits for something that should happen at once.
const PROMPT: Duration = Duration::from_secs(15);

async fn position(client: &Client) -> Result<GetFeedPositionResponse, tonic::Status> {
    client
        .feed()
        .get_feed_position(GetFeedPositionRequest {})
        .await
        .map(tonic::Response::into_inner)
}

async fn the_token_is_renewed_before_it_expires_and_after_a_refusal(kind: StoreKind) {
    let Some((app, clock)) = TestApp::spawn_with_manual_clock(kind, next_monday_morning()).await
    else {
        return;
    };
    // A client reading the server's (manual) clock renews by it.
    let server_time = {
        let clock: Arc<ManualClock> = clock.clone();
        Arc::new(move || SystemTime::from(clock.now())) as yrd_client::ClockFn
    };
    let client = Client::connect(
        app.client_config(JIANGSU, Profile::System)
            .clock(server_time),
    )
    .await
    .expect("connect");
    position(&client).await.expect("the first call");
    let first = client.token().await.expect("token");
    assert_eq!(first.lifetime, Duration::from_secs(600));
    assert_eq!(client.tokens().issued(), 1);

    // Before 80 % of its life the token is reused ...
    clock.advance(time::Duration::seconds(470));
    position(&client).await.expect("a call at 470 s");
    assert_eq!(client.tokens().issued(), 1, "renewed too early");
    // ... after it, renewed before the call, while the old one would still be accepted.
    clock.advance(time::Duration::seconds(20));
    position(&client).await.expect("a call at 490 s");
    assert_eq!(client.tokens().issued(), 2, "not renewed at 80 %");
    let second = client.token().await.expect("token");
    assert_ne!(second.token_id, first.token_id);
    assert_eq!(client.retries(), 0);

    // A client that does not see the time move (its own clock says the token is fresh) has
    // its expired token refused; it renews it and the call goes through.
    let unaware = app.client(JIANGSU, Profile::System).await;
    position(&unaware).await.expect("the first call");
    assert_eq!(unaware.tokens().issued(), 1);
    clock.advance(time::Duration::minutes(11));
    let answered = position(&unaware)
        .await
        .expect("the call after the exchange refused the expired token");
    assert_eq!(answered.acked_cursor, 0);
    assert_eq!(
        unaware.tokens().issued(),
        2,
        "renewed once on UNAUTHENTICATED"
    );
}

async fn a_rate_limited_call_waits_as_the_server_asks_and_succeeds(kind: StoreKind) {
    let Some(app) = TestApp::spawn_with(
        kind,
        |settings| {
            // One call a second for the agency, all its connections together.
            settings.limits.agency_rate_per_second = 1;
            settings.limits.agency_burst = 1;
        },
        Arc::new(SystemClock),
    )
    .await
    else {
        return;
    };
    let impatient = Client::connect(
        app.client_config(SHANDONG, Profile::System)
            .retry(RetryPolicy::none()),
    )
    .await
    .expect("connect");
    impatient.token().await.expect("the agency's first call");
    let refused = position(&impatient)
        .await
        .expect_err("the second call within the second");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let asked = refused
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("the refusal says when to come back");
    assert_eq!(impatient.retries(), 0, "no retries with RetryPolicy::none");

    // A backoff of a millisecond or two would give up long before the limit lets a call
    // through; the client waits for the server's delay instead (once for its token, once for
    // the call).
    let patient = Client::connect(app.client_config(SHANDONG, Profile::System).retry(
        RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_server_delay: Duration::from_secs(5),
        },
    ))
    .await
    .expect("connect");
    let started = Instant::now();
    position(&patient)
        .await
        .expect("retried after the server's delay");
    assert!(patient.retries() >= 1, "{}", patient.retries());
    assert!(
        started.elapsed() >= asked.min(Duration::from_millis(500)),
        "{:?} < {asked:?}",
        started.elapsed()
    );
}

async fn a_call_is_retried_until_the_restarted_server_answers(app: TestApp) {
    let client = Client::connect(
        app.client_config(JIANGSU, Profile::System)
            .retry(RetryPolicy {
                max_attempts: 200,
                initial_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(100),
                ..RetryPolicy::default()
            }),
    )
    .await
    .expect("connect");
    position(&client).await.expect("a call before the restart");
    let stopped = app.stop().await;

    let call = tokio::spawn({
        let client = client.clone();
        async move { position(&client).await }
    });
    // The call is failing with UNAVAILABLE and being retried while the server is down ...
    let started = Instant::now();
    while client.retries() < 2 {
        assert!(
            started.elapsed() < PROMPT,
            "no retry while the server is down"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !call.is_finished(),
        "the call gave up while the server was down"
    );
    // ... and succeeds once it is back on its address.
    let _app = stopped.start().await;
    let answered = tokio::time::timeout(PROMPT, call)
        .await
        .expect("the call ends once the server is back")
        .expect("task")
        .expect("the retried call succeeds");
    assert_eq!(answered.acked_cursor, 0);
}

/// Appends events `range` for `to` to the store, as the services that cause them do.
async fn append(app: &TestApp, to: &str, range: std::ops::RangeInclusive<u32>) {
    let events: Vec<_> = range
        .map(|n| fixtures::result_event(to, &format!("{to}-{n}"), &format!("r{n}"), 0))
        .collect();
    app.store
        .append_feed_events(&events)
        .await
        .expect("append feed events");
}

/// A consumer run in a task: each event its handler saw, in order, on `seen`; the handler
/// fails the first time it sees cursor `fail_at`.
fn run_consumer(
    client: &Client,
    store: FileCursorStore,
    fail_at: Option<u64>,
    stop: CancellationToken,
) -> (
    mpsc::UnboundedReceiver<FeedEvent>,
    tokio::task::JoinHandle<Result<(), FeedError<String>>>,
) {
    let (seen, events) = mpsc::unbounded_channel();
    let consumer = FeedConsumer::new(client.clone(), store)
        .ack_every(1)
        .reconnect_backoff(RetryPolicy {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            ..RetryPolicy::default()
        });
    let task = tokio::spawn(async move {
        consumer
            .run(
                move |event: FeedEvent| {
                    let seen = seen.clone();
                    async move {
                        if Some(event.cursor) == fail_at {
                            return Err(format!("cannot handle {}", event.cursor));
                        }
                        seen.send(event).map_err(|e| e.to_string())
                    }
                },
                stop.cancelled_owned(),
            )
            .await
    });
    (events, task)
}

/// The next `n` events the handler saw, as `(cursor, event_id)`.
async fn next(events: &mut mpsc::UnboundedReceiver<FeedEvent>, n: usize) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    for _ in 0..n {
        let event = tokio::time::timeout(PROMPT, events.recv())
            .await
            .expect("an event within the wait")
            .expect("the consumer is running");
        got.push((event.cursor, event.event_id));
    }
    got
}

fn expected(to: &str, range: std::ops::RangeInclusive<u32>) -> Vec<(u64, String)> {
    range.map(|n| (u64::from(n), format!("{to}-{n}"))).collect()
}

async fn the_feed_consumer_resumes_from_its_cursor(app: TestApp) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cursor_file = dir.path().join("shandong.cursor");
    let client = Client::connect(
        app.client_config(SHANDONG, Profile::System)
            .retry(RetryPolicy {
                initial_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                ..RetryPolicy::default()
            }),
    )
    .await
    .expect("connect");
    append(&app, SHANDONG, 1..=4).await;

    // The handler fails on event 4: the consumer stops, with cursor 3 stored.
    let (mut events, task) = run_consumer(
        &client,
        FileCursorStore::new(&cursor_file),
        Some(4),
        CancellationToken::new(),
    );
    assert_eq!(next(&mut events, 3).await, expected(SHANDONG, 1..=3));
    let failed = tokio::time::timeout(PROMPT, task)
        .await
        .expect("the consumer stops")
        .expect("task");
    assert!(
        matches!(failed, Err(FeedError::Handler { cursor: 4, .. })),
        "{failed:?}"
    );
    let store = FileCursorStore::new(&cursor_file);
    assert_eq!(
        store.load().await.expect("load"),
        Some(3),
        "event 4 was not stored"
    );
    assert_eq!(
        position(&client).await.expect("position").acked_cursor,
        3,
        "nor acknowledged"
    );

    // A new run (as after a restart of the partner's process) starts with event 4 again.
    let stop = CancellationToken::new();
    let (mut events, task) = run_consumer(&client, store, None, stop.clone());
    assert_eq!(next(&mut events, 1).await, expected(SHANDONG, 4..=4));

    // The server goes away and comes back on its address; events appended meanwhile and
    // after arrive once each, in order, after the consumer reconnected by itself.
    let stopped = app.stop().await;
    let app = stopped.start().await;
    append(&app, SHANDONG, 5..=6).await;
    append(&app, SHANDONG, 7..=7).await;
    assert_eq!(next(&mut events, 3).await, expected(SHANDONG, 5..=7));

    stop.cancel();
    tokio::time::timeout(PROMPT, task)
        .await
        .expect("the consumer stops when told")
        .expect("task")
        .expect("a clean stop");
    assert!(events.recv().await.is_none(), "no event handed over twice");
    assert_eq!(
        FileCursorStore::new(&cursor_file)
            .load()
            .await
            .expect("load"),
        Some(7)
    );
    assert_eq!(position(&client).await.expect("position").acked_cursor, 7);
}

async fn the_callers_traceparent_reaches_the_exchange(app: TestApp) {
    let client = app.client(JIANGSU, Profile::System).await;
    let trace = TraceParent::random();
    let mut request = tonic::Request::new(GetFeedPositionRequest {});
    trace.apply(&mut request);
    let response = client
        .feed()
        .get_feed_position(request)
        .await
        .expect("position");
    let echoed = response
        .metadata()
        .get("x-trace-id")
        .and_then(|v| v.to_str().ok())
        .expect("the exchange names the trace");
    assert_eq!(echoed, trace.trace_id_hex());

    // Without one, each call starts a trace of its own.
    let trace_of = |response: &tonic::Response<GetFeedPositionResponse>| {
        response
            .metadata()
            .get("x-trace-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let first = client
        .feed()
        .get_feed_position(GetFeedPositionRequest {})
        .await
        .expect("position");
    let second = client
        .feed()
        .get_feed_position(GetFeedPositionRequest {})
        .await
        .expect("position");
    assert_ne!(trace_of(&first), trace_of(&second));
    assert_ne!(trace_of(&first).as_deref(), Some(echoed));
}
