//! `yrd-bench load`: fills a store with the synthetic corpus of published results
//! (`yrd_store::results::synthetic`) through the store's bulk path, [`Store::load_results`]:
//! the rows and search helpers a publish writes, each body the content a publish stores
//! (`yrd_spotcheck::convert::content_of`), so `yrd serve` reads, gets and searches them as
//! published results. How it is used: docs/performance.md "Search at 1,000,000 results".

use std::time::Instant;

use anyhow::{Context as _, bail};
use prost::Message as _;
use yrd_store::results::synthetic::{Corpus, DEFAULT_END_UNIX};
use yrd_store::{LoadedResult, Store, StoreOptions};

use crate::cli::LoadArgs;

/// Results per transaction.
const BATCH: u64 = 5_000;
/// SQLite's page cache during the load: the indexes of a million results are scattered
/// writes that thrash the default 2 MiB.
const LOAD_CACHE_KIB: u32 = 512 * 1024;

/// Builds results `from..to` of `corpus` (CPU work, run beside the previous batch's insert).
fn batch(corpus: Corpus, from: u64, to: u64) -> anyhow::Result<Vec<LoadedResult>> {
    (from..to)
        .map(|n| {
            let s = corpus
                .result(n)
                .map_err(|e| anyhow::anyhow!("synthetic result {n} is invalid: {e:?}"))?;
            Ok(LoadedResult {
                body: yrd_spotcheck::convert::content_of(&s.result).encode_to_vec(),
                id: s.id,
                publisher: s.publisher,
                result: s.result,
                at: s.at,
            })
        })
        .collect()
}

/// Loads `args.results` results into `args.database_url`.
pub async fn load(args: &LoadArgs) -> anyhow::Result<()> {
    if args.results == 0 {
        bail!("--results must be at least 1");
    }
    let end = time::OffsetDateTime::from_unix_timestamp(DEFAULT_END_UNIX)
        .context("the corpus end is a valid time")?;
    let corpus = Corpus::new(args.results, end, args.years);
    let options = StoreOptions {
        sqlite_cache_kib: Some(LOAD_CACHE_KIB),
        ..StoreOptions::default()
    };
    let store = Store::open(&args.database_url, &options)
        .await
        .with_context(|| format!("opening the store at {}", args.database_url))?;
    let first = batch(corpus, 0, 1)?;
    let last = batch(corpus, args.results - 1, args.results)?;
    let has = |r: &[LoadedResult]| r.first().map(|r| r.id.clone()).unwrap_or_default();
    let (has_first, has_last) = (
        store.get_result(&has(&first), None).await?.is_some(),
        store.get_result(&has(&last), None).await?.is_some(),
    );
    match (has_first, has_last) {
        (true, true) => {
            println!(
                "{} already holds this corpus of {} results; nothing to do",
                args.database_url, args.results
            );
            store.close().await;
            return Ok(());
        }
        (true, false) | (false, true) => bail!(
            "{} holds part of this corpus (an interrupted load, or another --results or \
             --years); load into an empty database",
            args.database_url
        ),
        (false, false) => {}
    }

    let started = Instant::now();
    let mut next = tokio::task::spawn_blocking(move || batch(corpus, 0, BATCH.min(corpus.count)));
    let mut from = 0;
    while from < corpus.count {
        let rows = next.await.context("building a batch")??;
        let to = (from + BATCH).min(corpus.count);
        let after = (to + BATCH).min(corpus.count);
        next = tokio::task::spawn_blocking(move || batch(corpus, to, after));
        store
            .load_results(&rows)
            .await
            .with_context(|| format!("loading results {from}..{to}"))?;
        from = to;
        if from % 100_000 == 0 || from == corpus.count {
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{from} results in {seconds:.0} s ({:.0} /s)",
                from as f64 / seconds.max(1e-9)
            );
        }
    }
    store.analyze().await.context("ANALYZE after the load")?;
    println!(
        "loaded {} results into {} in {:.1} s (statistics refreshed)",
        corpus.count,
        args.database_url,
        started.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}
