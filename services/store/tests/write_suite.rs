//! The write primitive's group commit on both backends: concurrent writes share
//! transactions, a refused member leaves the rest of its batch committed, and request ids
//! still decide duplicates between members of one batch.

use std::sync::Arc;

use time::{Date, OffsetDateTime};
use tokio::task::JoinSet;
use yrd_domain::spotcheck::{SpotCheckResult, Verdict};
use yrd_store::{
    IdempotencyKey, NewCorrection, NewFeedEvent, NewPublication, ResultWriteError, Store,
    WriteOutcome,
};

mod common;

use common::agency;

yrd_store::on_both_backends!(
    concurrent_writes_share_transactions,
    a_refused_member_leaves_its_batch_committed,
    one_request_id_in_one_batch_is_written_once,
);

const SH: &str = "310000-SAMR";
const SD: &str = "370000-AMR";

/// How many writers run at once.
const WRITERS: usize = 32;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_720_000_000).expect("time")
}

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
    IdempotencyKey {
        agency: agency(SH),
        method: "/yrd.exchange.v1.SpotCheckService/PublishResult".into(),
        request_id: request_id.into(),
        request_digest: digest.into(),
    }
}

fn event(id: &str) -> NewFeedEvent {
    NewFeedEvent {
        recipient: agency(SD),
        event_id: format!("{id}-event"),
        event_type: "EVENT_TYPE_RESULT_PUBLISHED".into(),
        resource_name: format!("results/{id}"),
        resource_version: 1,
        event_time: t0(),
        actor_agency: SH.into(),
        trace_id: "0".repeat(32),
        needs_disposal: true,
        payload: vec![1, 2, 3],
    }
}

/// Publishes result `id` under request `request_id` with body digest `digest`.
async fn publish(
    store: Store,
    r: Arc<SpotCheckResult>,
    id: String,
    request_id: String,
    digest: String,
) -> Result<WriteOutcome, ResultWriteError> {
    store
        .publish_result(&NewPublication {
            key: key(&request_id, &digest),
            id: id.clone(),
            publisher: agency(SH),
            result: &r,
            body: format!("body of {id}").into_bytes(),
            at: t0(),
            events: vec![event(&id)],
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
        let (store, r) = (store.clone(), r.clone());
        writers.spawn(publish(
            store,
            r,
            format!("r{n}"),
            format!("q{n}"),
            format!("d{n}"),
        ));
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
    for n in 0..WRITERS {
        assert!(
            store
                .get_result(&format!("r{n}"), None)
                .await
                .expect("read")
                .is_some()
        );
    }
    let feed = store
        .feed_events_after(&agency(SD), 0, 100)
        .await
        .expect("feed");
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
            writers.spawn(publish(
                store,
                r,
                format!("r{n}"),
                format!("q{n}"),
                format!("d{n}"),
            ));
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
    for n in (0..WRITERS).filter(|n| *n != WRITERS / 2) {
        assert!(
            store
                .get_result(&format!("r{n}"), None)
                .await
                .expect("read")
                .is_some()
        );
    }
    // The refused member's event and claim went with it.
    let feed = store
        .feed_events_after(&agency(SD), 0, 100)
        .await
        .expect("feed");
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
    let feed = store
        .feed_events_after(&agency(SD), 0, 100)
        .await
        .expect("feed");
    assert_eq!(feed.len(), 1);
}
