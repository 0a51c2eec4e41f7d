//! Searches over a bulk-loaded corpus on both backends: every search shape finds exactly the
//! loaded results it should (computed from the corpus, not by the store), in page order, and
//! paging through a search while publishes run neither skips nor repeats a result.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};

use time::{Date, Duration, OffsetDateTime};
use yrd_domain::spotcheck::Verdict;
use yrd_domain::uscc::Uscc;
use yrd_store::results::synthetic::{self, AGENCIES, CATEGORIES, Corpus, Synthetic};
use yrd_store::{
    IdempotencyKey, LoadedResult, NewPublication, ResultCursor, ResultFilter, Store,
    stored_precision,
};

yrd_store::on_both_backends!(
    bulk_loaded_results_are_found_by_every_search_shape,
    pages_neither_skip_nor_repeat_while_publishes_run,
);

/// Enough results that an agency has more than a date-range search walks before it turns to
/// the range's index (400), so both steps of that plan are exercised.
const COUNT: u64 = 3_000;

fn corpus() -> Corpus {
    let end = OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("time");
    Corpus::new(COUNT, end, 2)
}

/// The corpus, loaded into `store` in two transactions; answers every result.
async fn load(store: &Store) -> Vec<Synthetic> {
    let corpus = corpus();
    let all: Vec<Synthetic> = (0..COUNT)
        .map(|n| corpus.result(n).expect("a valid synthetic result"))
        .collect();
    for half in all.chunks(1_700) {
        let rows: Vec<LoadedResult> = half
            .iter()
            .map(|s| LoadedResult {
                id: s.id.clone(),
                publisher: s.publisher.clone(),
                result: s.result.clone(),
                body: format!("body of {}", s.id).into_bytes(),
                at: s.at,
            })
            .collect();
        store.load_results(&rows).await.expect("bulk load");
    }
    store.analyze().await.expect("analyze");
    all
}

/// The ids `filter` must find, newest first, by looking at the corpus itself.
fn expected(all: &[Synthetic], filter: &ResultFilter) -> Vec<String> {
    let mut found: Vec<&Synthetic> = all
        .iter()
        .filter(|s| {
            let r = &s.result;
            let date = r.sampling().date;
            filter
                .producer_uscc
                .as_ref()
                .is_none_or(|u| &r.producer().uscc == u)
                && filter.publisher.as_ref().is_none_or(|p| &s.publisher == p)
                && filter.verdict.is_none_or(|v| r.verdict() == v)
                && filter.sampled_from.is_none_or(|f| date >= f)
                && filter.sampled_to.is_none_or(|t| date <= t)
                && filter
                    .product_name_contains
                    .as_deref()
                    .is_none_or(|k| r.product().name.contains(k))
        })
        .collect();
    found.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
    found.into_iter().map(|s| s.id.clone()).collect()
}

/// Every page of `filter`, `size` at a time; `between` runs after each page.
async fn page_through<F, Fut>(
    store: &Store,
    filter: &ResultFilter,
    size: u32,
    mut between: F,
) -> Vec<String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen = Vec::new();
    let mut after: Option<ResultCursor> = None;
    loop {
        let page = store
            .search_results(filter, after.as_ref(), size)
            .await
            .expect("search");
        seen.extend(page.iter().map(|r| r.id.clone()));
        if (page.len() as u32) < size {
            return seen;
        }
        after = page.last().map(|r| r.cursor());
        between().await;
    }
}

/// The search shapes of docs/performance.md "Search at 1,000,000 results", with parameters
/// that the corpus answers with several pages (and, for the ranges, with none).
fn shapes(all: &[Synthetic]) -> Vec<(&'static str, ResultFilter)> {
    let first = &all[0].result;
    let recent: Date = all[all.len() - 1].result.sampling().date;
    // The busiest producer of the corpus.
    let mut by_producer = std::collections::BTreeMap::<String, usize>::new();
    for s in all {
        *by_producer
            .entry(s.result.producer().uscc.as_str().to_owned())
            .or_default() += 1;
    }
    let busiest = by_producer
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(u, _)| u.clone())
        .expect("producers");
    vec![
        (
            "producer USCC",
            ResultFilter {
                producer_uscc: Some(Uscc::parse(&busiest).expect("uscc")),
                ..Default::default()
            },
        ),
        (
            "agency + 10 days at the corpus's start",
            ResultFilter {
                publisher: Some(synthetic::agency(0)),
                sampled_from: Some(first.sampling().date),
                sampled_to: Some(first.sampling().date + Duration::days(9)),
                ..Default::default()
            },
        ),
        (
            "agency + a year at the corpus's start",
            ResultFilter {
                publisher: Some(synthetic::agency(1)),
                sampled_from: Some(first.sampling().date),
                sampled_to: Some(first.sampling().date + Duration::days(364)),
                ..Default::default()
            },
        ),
        (
            "agency + the last year",
            ResultFilter {
                publisher: Some(synthetic::agency(0)),
                sampled_from: Some(recent - Duration::days(365)),
                sampled_to: Some(recent),
                ..Default::default()
            },
        ),
        (
            "agency + non-conforming + 10 days in the middle",
            ResultFilter {
                publisher: Some(synthetic::agency(2)),
                verdict: Some(Verdict::NonConforming),
                sampled_from: Some(all[COUNT as usize / 2].result.sampling().date),
                sampled_to: Some(
                    all[COUNT as usize / 2].result.sampling().date + Duration::days(90),
                ),
                ..Default::default()
            },
        ),
        (
            "agency + a range before the corpus",
            ResultFilter {
                publisher: Some(synthetic::agency(3)),
                sampled_from: Some(first.sampling().date - Duration::days(400)),
                sampled_to: Some(first.sampling().date - Duration::days(100)),
                ..Default::default()
            },
        ),
        (
            "category + non-conforming",
            ResultFilter {
                product_name_contains: Some(CATEGORIES[0].keyword.into()),
                verdict: Some(Verdict::NonConforming),
                ..Default::default()
            },
        ),
        (
            "category",
            ResultFilter {
                product_name_contains: Some(CATEGORIES[2].keyword.into()),
                ..Default::default()
            },
        ),
        (
            "one-character category",
            ResultFilter {
                product_name_contains: Some("鞋".into()),
                ..Default::default()
            },
        ),
    ]
}

async fn bulk_loaded_results_are_found_by_every_search_shape(store: Store) {
    let all = load(&store).await;
    // A loaded result reads as a published one, with the body it was given.
    let one = &all[1234];
    let got = store
        .get_result(&one.id, None)
        .await
        .expect("get")
        .expect("the loaded result");
    assert_eq!(
        (got.publisher.as_str(), got.latest_version, got.created_at),
        (one.publisher.as_str(), 1, one.at)
    );
    assert_eq!(got.body, format!("body of {}", one.id).into_bytes());
    for (name, filter) in shapes(&all) {
        let want = expected(&all, &filter);
        let got = page_through(&store, &filter, 20, || async {}).await;
        assert_eq!(got.len(), want.len(), "{name}: how many results");
        assert_eq!(got, want, "{name}: which results, in which order");
        if name != "agency + a range before the corpus" {
            assert!(!want.is_empty(), "{name}: the corpus answers it");
        }
    }
    // Every agency published some of the corpus.
    for i in 0..AGENCIES.len() {
        assert!(all.iter().any(|s| s.publisher == synthetic::agency(i)));
    }
}

async fn pages_neither_skip_nor_repeat_while_publishes_run(store: Store) {
    let all = load(&store).await;
    let corpus = corpus();
    // Publication times of the copies, in milliseconds after the corpus's end: rising across
    // the shapes, as the exchange's clock does.
    let tick = Arc::new(AtomicU64::new(1_000));
    for (name, filter) in shapes(&all) {
        // What the search finds with no publish running: the corpus's answer, and the copies
        // published while an earlier shape was paged through (all of them newer).
        let want = page_through(&store, &filter, 1000, || async {}).await;
        let corpus_answer = expected(&all, &filter);
        assert_eq!(
            want[want.len() - corpus_answer.len()..],
            corpus_answer[..],
            "{name}: the corpus's results, after the newer copies"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(AtomicU64::new(0));
        // Set after the first page: results published before it may rightly be on it.
        let go = Arc::new(tokio::sync::Notify::new());
        // Publishes copies of corpus results (so they match the same searches) at later
        // times, as the exchange publishes: each at the time of its write.
        let writer = {
            let (store, stop, published, go, tick) = (
                store.clone(),
                stop.clone(),
                published.clone(),
                go.clone(),
                tick.clone(),
            );
            tokio::spawn(async move {
                go.notified().await;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let s = corpus.result(n % COUNT).expect("a valid synthetic result");
                    let id = uuid::Uuid::now_v7().simple().to_string();
                    let ms = tick.fetch_add(1, Ordering::SeqCst);
                    let at = stored_precision(corpus.end + Duration::milliseconds(ms as i64));
                    store
                        .publish_result(&NewPublication {
                            cases: Default::default(),
                            key: IdempotencyKey {
                                agency: s.publisher.clone(),
                                method: "/yrd.exchange.v1.SpotCheckService/PublishResult".into(),
                                request_id: id.clone(),
                                request_digest: id.clone(),
                            },
                            id,
                            publisher: s.publisher.clone(),
                            result: &s.result,
                            body: vec![1],
                            at,
                            events: Vec::new(),
                            referrals: Vec::new(),
                            leaf: None,
                            response: vec![1],
                        })
                        .await
                        .expect("publish");
                    n += 1;
                    published.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // After every page, wait until at least one more publish has committed, so that each
        // page is read with new results in the store that the previous one did not see.
        let got = page_through(&store, &filter, 9, || {
            let published = published.clone();
            go.notify_one();
            async move {
                let before = published.load(Ordering::SeqCst);
                let deadline = Instant::now() + StdDuration::from_secs(20);
                while published.load(Ordering::SeqCst) == before {
                    assert!(
                        Instant::now() < deadline,
                        "no publish committed within 20 s"
                    );
                    tokio::task::yield_now().await;
                }
            }
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        go.notify_one();
        writer.await.expect("the publishing task");
        let mut unique = got.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), got.len(), "{name}: a result was repeated");
        assert_eq!(got, want, "{name}: a result was skipped or out of order");
        if want.len() > 9 {
            assert!(
                published.load(Ordering::SeqCst) > 0,
                "{name}: publishes ran between pages"
            );
        }
    }
}
