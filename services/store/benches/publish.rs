//! Publishes per second with 16 and 64 concurrent writers, one transaction per write
//! (`max_batch = 1`, the store before group commit) against group commit (`max_batch = 64`),
//! in the same run, on SQLite and (when `YRD_TEST_POSTGRES_URL` is set) PostgreSQL. On
//! PostgreSQL the transactions per write run 7 at once (`max_flushes = 7`, as many as the
//! default pool of 8 leaves to writes), and group commit runs with one flush at a time and
//! with the default of [`yrd_store::MAX_FLUSHES`] at once.
//!
//! Run: `cargo bench -p yrd-store --bench publish` (`YRD_BENCH_SECONDS` sets each cell's
//! length, 3 s by default).
//!
//! Each publish is what the spot-check service commits for a non-conforming result: the result
//! rows (version, places, name bigrams), a feed event to each of two agencies and the call's
//! exchange-log leaf, all through [`Store::publish_result`], durable (`synchronous=FULL` on
//! SQLite). Every cell uses a fresh database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use yrd_domain::audit::LeafData;
use yrd_domain::spotcheck::{SpotCheckResult, Verdict};
use yrd_store::testing::TestDatabase;
use yrd_store::{NewFeedEvent, NewPublication, Store, StoreOptions};

#[path = "../tests/common/mod.rs"]
mod common;

const WRITERS: [usize; 2] = [16, 64];

/// The `(max_batch, max_flushes)` cells of a backend.
fn settings(backend: &str) -> &'static [(usize, usize)] {
    match backend {
        // SQLite runs one flush at a time whatever the setting.
        "sqlite" => &[(1, 1), (64, 1)],
        _ => &[(1, 7), (64, 1), (64, yrd_store::MAX_FLUSHES)],
    }
}

fn event(to: &str, id: &str, at: OffsetDateTime) -> NewFeedEvent {
    NewFeedEvent {
        payload: vec![7; 600],
        ..common::published_event(to, format!("{id}-{to}"), id, at)
    }
}

fn leaf(id: &str, at: OffsetDateTime) -> LeafData {
    LeafData {
        v: 1,
        time_us: (at.unix_timestamp_nanos() / 1000) as i64,
        trace_id: "1".repeat(32),
        span_id: "2".repeat(16),
        agency: "310000-SAMR".into(),
        cert_fingerprint: "3".repeat(64),
        profile: "partner".into(),
        officer: "officer-1".into(),
        token_id: "token-1".into(),
        method: "/yrd.exchange.v1.SpotCheckService/PublishResult".into(),
        resources: vec![format!("results/{id}")],
        code: 0,
        message: String::new(),
        request_sha256: "4".repeat(64),
        duration_us: 1000,
    }
}

async fn publish(store: &Store, r: &SpotCheckResult, id: String) {
    let at = yrd_domain::clock::Clock::now(&yrd_domain::clock::SystemClock);
    let outcome = store
        .publish_result(&NewPublication {
            cases: Default::default(),
            key: common::key(
                "/yrd.exchange.v1.SpotCheckService/PublishResult",
                &id,
                &format!("digest-{id}"),
            ),
            id: id.clone(),
            publisher: common::agency(common::SH),
            result: r,
            body: vec![5; 1200],
            at,
            events: vec![event("370000-AMR", &id, at), event("320000-AMR", &id, at)],
            referrals: vec![],
            leaf: Some(leaf(&id, at)),
            response: vec![6; 300],
        })
        .await;
    if let Err(e) = outcome {
        panic!("publish {id}: {e}");
    }
}

/// Publishes per second with `writers` concurrent writers for `length`.
async fn cell(
    db: &TestDatabase,
    writers: usize,
    (max_batch, max_flushes): (usize, usize),
    length: Duration,
) -> (f64, f64) {
    let options = StoreOptions {
        max_batch,
        max_flushes,
        ..StoreOptions::default()
    };
    let store = Store::open(&db.url, &options).await.expect("open");
    let r = Arc::new(common::result(
        "儿童塑料玩具车",
        "370102",
        "320106",
        Verdict::NonConforming,
        time::macros::date!(2024 - 06 - 30),
    ));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + length;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let (store, r, done) = (store.clone(), r.clone(), done.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                publish(&store, &r, format!("w{w}-{n}")).await;
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.expect("writer");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = store.batch_stats();
    store.close().await;
    let per_second = done.load(Ordering::Relaxed) as f64 / elapsed;
    let per_flush = stats.writes as f64 / stats.flushes.max(1) as f64;
    (per_second, per_flush)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = std::env::var("YRD_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let length = Duration::from_secs_f64(seconds);
    println!("backend   writers  max_batch  max_flushes  publishes/s  writes/transaction");
    for backend in ["sqlite", "postgres"] {
        for writers in WRITERS {
            for &(max_batch, max_flushes) in settings(backend) {
                let db = match backend {
                    "sqlite" => TestDatabase::sqlite(),
                    _ => match TestDatabase::postgres().await {
                        Some(db) => db,
                        None => continue,
                    },
                };
                let (rate, per_flush) = cell(&db, writers, (max_batch, max_flushes), length).await;
                println!(
                    "{backend:<9} {writers:>7}  {max_batch:>9}  {max_flushes:>11}  {rate:>11.0}  \
                     {per_flush:>18.1}"
                );
            }
        }
    }
}
