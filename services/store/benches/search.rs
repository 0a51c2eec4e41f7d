//! Search latency over 1,000,000 stored spot-check results, on SQLite or PostgreSQL, against a
//! primary-key lookup measured in the same run; idle, then while publishes run.
//!
//! Run (docs/performance.md "Search at 1,000,000 results"):
//!
//! ```sh
//! cargo bench -p yrd-store --bench search                       # SQLite, temporary file
//! YRD_BENCH_URL=sqlite:///work/tmp/search.db cargo bench -p yrd-store --bench search
//! YRD_BENCH_URL=postgres://postgres@127.0.0.1:5432/yrd_search cargo bench -p yrd-store --bench search
//! ```
//!
//! `YRD_BENCH_URL` names the store (the database must exist on PostgreSQL); when it holds fewer
//! than `YRD_BENCH_RESULTS` (default 1,000,000) results, the synthetic corpus
//! (`yrd_store::results::synthetic`, the default span and end) is bulk-loaded through
//! [`Store::load_results`] first, and the database is kept for the next run. A database filled by
//! `yrd-bench load` with the same count is reused as it is.
//!
//! Every search runs through [`Store::search_results`] with one query in flight, a page of 20
//! (plus one, to know whether another page follows, as the service asks), a different
//! parameter on every repetition. Each shape runs idle, then while a task publishes results
//! through [`Store::publish_result`] (the write path of `PublishResult`, group commit included)
//! as fast as the store takes them; the p50/p99 of each are printed with the publish rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use yrd_domain::spotcheck::Verdict;
use yrd_domain::uscc::Uscc;
use yrd_store::results::synthetic::{self, CATEGORIES, Corpus, PRODUCERS};
use yrd_store::{
    IdempotencyKey, LoadedResult, NewPublication, ResultCursor, ResultFilter, Store, StoreOptions,
};

const REPETITIONS: usize = 200;
const PAGE: u32 = 21;
/// Results per bulk-load transaction.
const LOAD_BATCH: u64 = 5_000;

/// A spread-out pick of `0..modulo` for repetition `i`.
fn pick(i: usize, modulo: u64) -> u64 {
    (i as u64).wrapping_mul(7919).wrapping_add(104_729) % modulo.max(1)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

async fn load(store: &Store, corpus: &Corpus) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut n = 0;
    while n < corpus.count {
        let end = (n + LOAD_BATCH).min(corpus.count);
        let batch = (n..end)
            .map(|i| {
                let s = corpus.result(i)?;
                Ok(LoadedResult {
                    body: s.result.canonical_digest_input()?,
                    id: s.id,
                    publisher: s.publisher,
                    result: s.result,
                    at: s.at,
                })
            })
            .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
        store.load_results(&batch).await?;
        n = end;
    }
    store.analyze().await?;
    println!(
        "loaded {} results in {:.1} s",
        corpus.count,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Times `REPETITIONS` searches, the i-th built by `make(i)`; answers (p50, p99, mean rows).
async fn time_searches(
    store: &Store,
    make: &(dyn Fn(usize) -> (ResultFilter, Option<ResultCursor>) + Send + Sync),
) -> Result<(Duration, Duration, f64), yrd_store::StoreError> {
    let mut times = Vec::with_capacity(REPETITIONS);
    let mut rows = 0usize;
    for i in 0..REPETITIONS {
        let (filter, after) = make(i);
        let started = Instant::now();
        let found = store.search_results(&filter, after.as_ref(), PAGE).await?;
        times.push(started.elapsed());
        rows += found.len();
    }
    times.sort();
    Ok((
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        rows as f64 / REPETITIONS as f64,
    ))
}

/// Publishes results as fast as the store takes them until `stop`; counts them in `done`.
async fn publisher(store: Store, corpus: Corpus, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let mut n = corpus.count;
    while !stop.load(Ordering::Relaxed) {
        // Eight publishes in flight, so that group commit batches them as it does a server's.
        let mut writes = Vec::new();
        for _ in 0..8 {
            let Ok(s) = corpus.result(n % corpus.count.max(1)) else {
                return;
            };
            n += 1;
            let store = store.clone();
            writes.push(tokio::spawn(async move {
                let id = uuid::Uuid::now_v7().simple().to_string();
                let publication = NewPublication {
                    cases: Default::default(),
                    key: IdempotencyKey {
                        agency: s.publisher.clone(),
                        method: "/yrd.exchange.v1.SpotCheckService/PublishResult".into(),
                        request_id: format!("bench-{id}"),
                        request_digest: id.clone(),
                    },
                    id,
                    publisher: s.publisher.clone(),
                    result: &s.result,
                    body: s.result.canonical_digest_input().unwrap_or_default(),
                    at: yrd_store::stored_precision(yrd_domain::clock::Clock::now(
                        &yrd_domain::clock::SystemClock,
                    )),
                    events: Vec::new(),
                    referrals: Vec::new(),
                    leaf: None,
                    response: vec![0],
                };
                store.publish_result(&publication).await.is_ok()
            }));
        }
        for w in writes {
            if let Ok(true) = w.await {
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

type Make = Box<dyn Fn(usize) -> (ResultFilter, Option<ResultCursor>) + Send + Sync>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = std::env::var("YRD_BENCH_RESULTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let url = std::env::var("YRD_BENCH_URL").unwrap_or_else(|_| {
            format!("sqlite://{}", dir.path().join("bench.db").display())
        });
        let store = Store::open(&url, &StoreOptions::default()).await?;
        let corpus = synthetic::default_corpus(count);
        let last = corpus.result(count - 1)?.id;
        if store.get_result(&last, None).await?.is_some() {
            println!("reusing the {count} results at {url}");
        } else {
            // A large SQLite page cache for the load only; the searches run with the defaults.
            let options = StoreOptions {
                sqlite_cache_kib: Some(512 * 1024),
                ..StoreOptions::default()
            };
            let loader = Store::open(&url, &options).await?;
            load(&loader, &corpus).await?;
            loader.close().await;
        }

        let days = move |n: u64| synthetic::default_corpus(count).sampled_on(n);
        // The shapes measured both on the first page and deep into the corpus.
        let last_year = move |i: usize| {
            let to = days(count - 1) + time::Duration::days(60);
            ResultFilter {
                publisher: Some(synthetic::agency(i)),
                sampled_from: Some(to - time::Duration::days(365)),
                sampled_to: Some(to),
                ..Default::default()
            }
        };
        let non_conforming = |i: usize| ResultFilter {
            product_name_contains: Some(CATEGORIES[i % CATEGORIES.len()].keyword.into()),
            verdict: Some(Verdict::NonConforming),
            ..Default::default()
        };
        let filters: Vec<(&'static str, Make)> = vec![
            ("producer USCC", Box::new(move |i| {
                let (u, _) = synthetic::producer(pick(i, PRODUCERS));
                (ResultFilter { producer_uscc: Uscc::parse(&u).ok(), ..Default::default() }, None)
            })),
            ("agency + 10-day sampling range", Box::new(move |i| {
                let from = days(pick(i, count));
                (ResultFilter {
                    publisher: Some(synthetic::agency(i)),
                    sampled_from: Some(from),
                    sampled_to: Some(from + time::Duration::days(9)),
                    ..Default::default()
                }, None)
            })),
            ("agency + last 365 days", Box::new(move |i| (last_year(i), None))),
            ("agency + a year, anywhere", Box::new(move |i| {
                let from = days(pick(i, count * 2 / 3));
                (ResultFilter {
                    publisher: Some(synthetic::agency(i)),
                    sampled_from: Some(from),
                    sampled_to: Some(from + time::Duration::days(364)),
                    ..Default::default()
                }, None)
            })),
            ("category + non-conforming", Box::new(move |i| (non_conforming(i), None))),
            ("category", Box::new(move |i| (ResultFilter {
                product_name_contains: Some(CATEGORIES[i % CATEGORIES.len()].keyword.into()),
                ..Default::default()
            }, None))),
        ];
        // The same shapes one keyset page deep into the corpus: after a cursor in its middle.
        let cursor = move |i: usize| {
            let n = count / 2 + pick(i, count / 4);
            corpus.result(n).ok().map(|s| ResultCursor {
                created_at_us: s.at.unix_timestamp_nanos() as i64 / 1_000,
                id: s.id,
            })
        };
        let deep: Vec<(&'static str, Make)> = vec![
            ("category + non-conf., deep page", Box::new(move |i| (non_conforming(i), cursor(i)))),
            ("agency + last 365 days, deep page", Box::new(move |i| (last_year(i), cursor(i)))),
        ];
        let cases: Vec<(&'static str, Make)> = filters.into_iter().chain(deep).collect();

        for phase in ["idle", "publishing"] {
            let stop = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let writer = (phase == "publishing").then(|| {
                tokio::spawn(publisher(store.clone(), corpus, stop.clone(), done.clone()))
            });
            // Baseline: a primary-key lookup of one result with its latest version.
            let mut times = Vec::with_capacity(REPETITIONS);
            for i in 0..REPETITIONS {
                let id = corpus.result(pick(i, count))?.id;
                let t = Instant::now();
                let found = store.get_result(&id, None).await?;
                times.push(t.elapsed());
                assert!(found.is_some(), "baseline lookup found nothing");
            }
            times.sort();
            let base = percentile(&times, 0.5);
            println!(
                "[{phase}] {:<36} p50 {:>7.3} ms  p99 {:>7.3} ms  (baseline)",
                "primary-key lookup",
                ms(base),
                ms(percentile(&times, 0.99))
            );
            for (name, make) in &cases {
                let (p50, p99, rows) = time_searches(&store, make.as_ref()).await?;
                println!(
                    "[{phase}] {name:<36} p50 {:>7.3} ms  p99 {:>7.3} ms  p50/baseline {:>6.1}x  rows/page {rows:.1}",
                    ms(p50),
                    ms(p99),
                    p50.as_secs_f64() / base.as_secs_f64().max(1e-9),
                );
            }
            stop.store(true, Ordering::Relaxed);
            if let Some(writer) = writer {
                writer.await?;
                let published = done.load(Ordering::Relaxed);
                println!(
                    "[{phase}] {published} results published meanwhile, {:.0} /s",
                    published as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        store.close().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
