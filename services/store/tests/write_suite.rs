//! The write primitive's group commit on both backends: concurrent writes share
//! transactions, a refused member leaves the rest of its batch committed, and request ids
//! still decide duplicates between members of one batch. On PostgreSQL, several batches commit
//! at once: every feed stays dense and in commit order, no batch deadlocks on the feed heads,
//! and retries of one request in concurrent batches are written once.

use std::sync::Arc;

use time::Date;
use tokio::task::JoinSet;
use yrd_domain::spotcheck::{SpotCheckResult, Verdict};
use yrd_store::testing::TestDatabase;
use yrd_store::{
    IdempotencyKey, NewCorrection, NewFeedEvent, NewPublication, ResultWriteError, Store,
    StoreError, StoreOptions, WriteOutcome,
};

mod common;

use common::{JS, SD, SH, ZJ, agency, feed, t0};

yrd_store::on_both_backends!(
    concurrent_writes_share_transactions,
    a_refused_member_leaves_its_batch_committed,
    one_request_id_in_one_batch_is_written_once,
    a_lone_refused_write_leaves_nothing,
);

/// How many writers run at once.
const WRITERS: usize = 32;

fn result() -> Arc<SpotCheckResult> {
    Arc::new(common::result(
        "儿童塑料玩具车",
        "370102",
        "320106",
        Verdict::NonConforming,
        Date::from_calendar_date(2024, time::Month::June, 30).expect("date"),
    ))
}

fn key(request_id: &str, digest: &str) -> IdempotencyKey {
    common::key(
        "/yrd.exchange.v1.SpotCheckService/PublishResult",
        request_id,
        digest,
    )
}

fn event(id: &str) -> NewFeedEvent {
    event_to(SD, id)
}

fn event_to(to: &str, id: &str) -> NewFeedEvent {
    common::published_event(to, format!("{id}-event-{to}"), id, t0())
}

/// Asserts that results `r{n}` are stored for each of `ns`.
async fn assert_published(store: &Store, ns: impl Iterator<Item = usize>) {
    for n in ns {
        let id = format!("r{n}");
        let stored = store.get_result(&id, None).await.expect("read");
        assert!(stored.is_some(), "result {id} is missing");
    }
}

/// Publishes result `r{n}` under request `q{n}` with body digest `d{n}`.
fn publish_nth(
    store: &Store,
    r: &Arc<SpotCheckResult>,
    n: usize,
) -> impl Future<Output = Result<WriteOutcome, ResultWriteError>> + use<> {
    publish(
        store.clone(),
        r.clone(),
        format!("r{n}"),
        format!("q{n}"),
        format!("d{n}"),
    )
}

/// Publishes result `id` under request `request_id` with body digest `digest`.
async fn publish(
    store: Store,
    r: Arc<SpotCheckResult>,
    id: String,
    request_id: String,
    digest: String,
) -> Result<WriteOutcome, ResultWriteError> {
    let events = vec![event(&id)];
    publish_with(store, r, id, request_id, digest, events).await
}

/// Publishes result `id` raising `events`.
async fn publish_with(
    store: Store,
    r: Arc<SpotCheckResult>,
    id: String,
    request_id: String,
    digest: String,
    events: Vec<NewFeedEvent>,
) -> Result<WriteOutcome, ResultWriteError> {
    store
        .publish_result(&NewPublication {
            cases: Default::default(),
            key: key(&request_id, &digest),
            id: id.clone(),
            publisher: agency(SH),
            result: &r,
            body: format!("body of {id}").into_bytes(),
            at: t0(),
            events,
            referrals: vec![],
            leaf: None,
            response: format!("answer {id}").into_bytes(),
        })
        .await
}

async fn concurrent_writes_share_transactions(store: Store) {
    let r = result();
    let before = store.batch_stats();
    let mut writers = JoinSet::new();
    for n in 0..WRITERS {
        writers.spawn(publish_nth(&store, &r, n));
    }
    while let Some(done) = writers.join_next().await {
        let outcome = done.expect("writer").expect("publish");
        assert!(matches!(outcome, WriteOutcome::Written(ref a) if a.len() == 1));
    }
    let after = store.batch_stats();
    assert_eq!(after.writes - before.writes, WRITERS as u64);
    let flushes = after.flushes - before.flushes;
    assert!(
        flushes < WRITERS as u64,
        "{WRITERS} concurrent writes took {flushes} transactions"
    );
    // Every write is there, each feed event with its own cursor.
    assert_published(&store, 0..WRITERS).await;
    let feed = feed(&store, SD).await;
    let cursors: Vec<u64> = feed.iter().map(|e| e.cursor).collect();
    assert_eq!(cursors, (1..=WRITERS as u64).collect::<Vec<_>>());
}

async fn a_refused_member_leaves_its_batch_committed(store: Store) {
    let r = result();
    let mut writers = JoinSet::new();
    for n in 0..WRITERS {
        let (store, r) = (store.clone(), r.clone());
        if n == WRITERS / 2 {
            // A correction of a result that does not exist, among the publishes.
            writers.spawn(async move {
                store
                    .correct_result(&NewCorrection {
                        cases: Default::default(),
                        key: key("bad", "bad"),
                        id: "missing".into(),
                        publisher: agency(SH),
                        base_version: 1,
                        result: &r,
                        body: b"v2".to_vec(),
                        reason: "typo".into(),
                        at: t0(),
                        events: vec![event("missing")],
                        referrals: vec![],
                        leaf: None,
                        response: b"corrected".to_vec(),
                    })
                    .await
            });
        } else {
            writers.spawn(publish_nth(&store, &r, n));
        }
    }
    let mut refused = 0;
    while let Some(done) = writers.join_next().await {
        match done.expect("writer") {
            Ok(WriteOutcome::Written(_)) => {}
            Err(ResultWriteError::NotFound(id)) => {
                assert_eq!(id, "missing");
                refused += 1;
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(refused, 1);
    assert_published(&store, (0..WRITERS).filter(|n| *n != WRITERS / 2)).await;
    // The refused member's event and claim went with it.
    let feed = feed(&store, SD).await;
    assert_eq!(feed.len(), WRITERS - 1);
    assert!(
        feed.iter()
            .all(|e| e.event.resource_name != "results/missing")
    );
    assert_eq!(
        store
            .answered_request(&key("bad", "bad"))
            .await
            .expect("lookup"),
        None
    );
}

async fn one_request_id_in_one_batch_is_written_once(store: Store) {
    let r = result();
    let mut writers = JoinSet::new();
    // Eight retries of one request (same id, same body), and one call reusing the id with
    // another body, all at once.
    for n in 0..8 {
        let (store, r) = (store.clone(), r.clone());
        writers.spawn(publish(
            store,
            r,
            format!("dup{n}"),
            "same".into(),
            "d".into(),
        ));
    }
    let (s, rr) = (store.clone(), r.clone());
    writers.spawn(publish(
        s,
        rr,
        "other".into(),
        "same".into(),
        "another".into(),
    ));
    let (mut written, mut replayed, mut reused) = (0, 0, 0);
    while let Some(done) = writers.join_next().await {
        match done.expect("writer") {
            Ok(WriteOutcome::Written(_)) => written += 1,
            Ok(WriteOutcome::Replayed(answer)) => {
                assert!(answer.starts_with(b"answer dup"));
                replayed += 1;
            }
            Err(ResultWriteError::RequestIdReused { request_id }) => {
                assert_eq!(request_id, "same");
                reused += 1;
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    // Exactly one of the nine claimed the id first: either one of the retries (then the other
    // seven replay and the other body is refused) or the other body (then every retry is
    // refused).
    assert_eq!(written, 1);
    assert!(
        (replayed == 7 && reused == 1) || (replayed == 0 && reused == 8),
        "replayed {replayed}, reused {reused}"
    );
    let feed = feed(&store, SD).await;
    assert_eq!(feed.len(), 1);
}

async fn a_lone_refused_write_leaves_nothing(store: Store) {
    // Alone in its batch, a write runs without a savepoint: its refusal rolls back the whole
    // transaction, claim and event included.
    let outcome = store
        .correct_result(&NewCorrection {
            cases: Default::default(),
            key: key("lone", "lone"),
            id: "missing".into(),
            publisher: agency(SH),
            base_version: 1,
            result: &result(),
            body: b"v2".to_vec(),
            reason: "typo".into(),
            at: t0(),
            events: vec![event("missing")],
            referrals: vec![],
            leaf: None,
            response: b"corrected".to_vec(),
        })
        .await;
    assert!(matches!(outcome, Err(ResultWriteError::NotFound(ref id)) if id == "missing"));
    assert_eq!(
        store
            .answered_request(&key("lone", "lone"))
            .await
            .expect("lookup"),
        None
    );
    let published = publish(
        store.clone(),
        result(),
        "r1".into(),
        "q1".into(),
        "d1".into(),
    )
    .await
    .expect("publish");
    // The refused write took no cursor: the next event is the feed's first.
    assert_eq!(published, WriteOutcome::Written(vec![(agency(SD), 1)]));
}

/// A store on a fresh PostgreSQL database with `max_flushes` flushes at once, or `None` when
/// the PostgreSQL half is skipped.
async fn postgres(max_flushes: usize) -> Option<(TestDatabase, Store)> {
    let db = TestDatabase::postgres().await?;
    let store = Store::open(&db.url, &flushes(max_flushes))
        .await
        .expect("open");
    Some((db, store))
}

/// The default options but for running up to `max_flushes` flushes at once.
fn flushes(max_flushes: usize) -> StoreOptions {
    StoreOptions {
        max_flushes,
        ..StoreOptions::default()
    }
}

/// Writers on PostgreSQL publishing to the same three recipients, each write naming them in
/// another order, several batches at once.
const PARALLEL_WRITERS: usize = 48;
const PUBLISHES_PER_WRITER: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_batches_keep_every_feed_dense_and_in_commit_order() {
    let Some((_db, store)) = postgres(4).await else {
        return;
    };
    let r = result();
    let recipients = [SD, JS, ZJ];
    let mut writers = JoinSet::new();
    for w in 0..PARALLEL_WRITERS {
        let (store, r) = (store.clone(), r.clone());
        writers.spawn(async move {
            let mut outcomes = Vec::new();
            for n in 0..PUBLISHES_PER_WRITER {
                let id = format!("w{w}-{n}");
                // Rotated and, every other write, reversed: without one order of the heads,
                // two batches would take them in opposite orders.
                let mut order: Vec<&str> = (0..3).map(|i| recipients[(w + n + i) % 3]).collect();
                if (w + n) % 2 == 1 {
                    order.reverse();
                }
                let events = order.iter().map(|to| event_to(to, &id)).collect();
                let outcome = publish_with(
                    store.clone(),
                    r.clone(),
                    id.clone(),
                    format!("q-{id}"),
                    format!("d-{id}"),
                    events,
                )
                .await;
                outcomes.push(outcome);
            }
            outcomes
        });
    }
    // While they write, a subscriber reads Shandong's feed from the start: whatever it sees is
    // always 1, 2, …, k, never a cursor before the one below it has committed.
    let total = (PARALLEL_WRITERS * PUBLISHES_PER_WRITER) as u64;
    let mut reads = 0;
    loop {
        let seen = feed(&store, SD).await;
        let cursors: Vec<u64> = seen.iter().map(|e| e.cursor).collect();
        assert_eq!(
            cursors,
            (1..=cursors.len() as u64).collect::<Vec<_>>(),
            "a reader saw a gap"
        );
        reads += 1;
        if cursors.len() as u64 == total {
            break;
        }
    }
    assert!(
        reads > 1,
        "the reader saw the feed only once it was complete"
    );
    let mut written = 0;
    while let Some(done) = writers.join_next().await {
        for outcome in done.expect("writer") {
            match outcome {
                Ok(WriteOutcome::Written(assigned)) => {
                    assert_eq!(assigned.len(), 3);
                    written += 1;
                }
                other => panic!("unexpected outcome {other:?}"),
            }
        }
    }
    assert_eq!(written, total);
    for to in recipients {
        let feed = feed(&store, to).await;
        let cursors: Vec<u64> = feed.iter().map(|e| e.cursor).collect();
        assert_eq!(cursors, (1..=total).collect::<Vec<_>>(), "feed of {to}");
        let mut ids: Vec<&str> = feed.iter().map(|e| e.event.event_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len() as u64, total, "feed of {to} repeats an event");
    }
    let stats = store.batch_stats();
    assert!(
        stats.most_concurrent > 1,
        "the batches never overlapped: {stats:?}"
    );
    // No write lost a deadlock (nor had its batch fail) and had to be applied again.
    assert_eq!(stats.retried, 0, "{stats:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_in_concurrent_batches_are_answered_once() {
    let Some((_db, store)) = postgres(4).await else {
        return;
    };
    let r = result();
    const REQUESTS: usize = 16;
    const RETRIES: usize = 6;
    let mut writers = JoinSet::new();
    for attempt in 0..RETRIES {
        for q in 0..REQUESTS {
            let (store, r) = (store.clone(), r.clone());
            // Each attempt sends the requests in another order, so concurrent batches claim
            // the same ids in different orders.
            let q = if attempt % 2 == 0 {
                q
            } else {
                REQUESTS - 1 - q
            };
            writers.spawn(async move {
                let outcome =
                    publish(store, r, format!("r{q}"), format!("q{q}"), format!("d{q}")).await;
                (q, outcome)
            });
        }
    }
    let mut written = [0usize; REQUESTS];
    let mut replayed = [0usize; REQUESTS];
    while let Some(done) = writers.join_next().await {
        match done.expect("writer") {
            (q, Ok(WriteOutcome::Written(assigned))) => {
                assert_eq!(assigned.len(), 1);
                written[q] += 1;
            }
            (q, Ok(WriteOutcome::Replayed(answer))) => {
                assert_eq!(answer, format!("answer r{q}").into_bytes());
                replayed[q] += 1;
            }
            (q, Err(e)) => panic!("request {q}: {e:?}"),
        }
    }
    assert_eq!(written, [1; REQUESTS]);
    assert_eq!(replayed, [RETRIES - 1; REQUESTS]);
    let feed = feed(&store, SD).await;
    let cursors: Vec<u64> = feed.iter().map(|e| e.cursor).collect();
    assert_eq!(cursors, (1..=REQUESTS as u64).collect::<Vec<_>>());
    let stats = store.batch_stats();
    assert!(stats.most_concurrent > 1, "{stats:?}");
    // Every batch claims in one order: no two batches deadlocked on each other's claims.
    assert_eq!(stats.retried, 0, "{stats:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runs_one_flush_at_a_time() {
    let db = TestDatabase::sqlite();
    let store = Store::open(&db.url, &flushes(4)).await.expect("open");
    let r = result();
    let mut writers = JoinSet::new();
    for n in 0..WRITERS {
        writers.spawn(publish_nth(&store, &r, n));
    }
    while let Some(done) = writers.join_next().await {
        assert!(matches!(
            done.expect("writer"),
            Ok(WriteOutcome::Written(_))
        ));
    }
    assert_eq!(store.batch_stats().most_concurrent, 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_limits_out_of_range_are_refused() {
    let db = TestDatabase::sqlite();
    match Store::open(&db.url, &flushes(0)).await {
        Err(StoreError::InvalidOptions(why)) => assert!(why.contains("max_flushes is 0"), "{why}"),
        other => panic!("max_flushes 0 opened: {other:?}"),
    }
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let all = StoreOptions {
        max_connections: 4,
        ..flushes(4)
    };
    match Store::open(&db.url, &all).await {
        Err(StoreError::InvalidOptions(why)) => {
            assert!(why.contains("below max_connections (4)"), "{why}")
        }
        other => panic!("max_flushes = max_connections opened: {other:?}"),
    }
}
