//! Search latency over 1,000,000 stored spot-check results on SQLite, against a primary-key
//! lookup measured in the same run.
//!
//! Run: `cargo bench -p yrd-store --bench search` (set `YRD_BENCH_RESULTS` for another count).
//!
//! The database is a temporary SQLite file with the exchange's real schema (the store's
//! migrations); the synthetic results are bulk-loaded with multi-row INSERTs in large
//! transactions, durability pragmas relaxed for the load only. Each search then runs through
//! [`Store::search_results`] (page of 50, plus one to know whether another page follows) with a
//! different parameter on every repetition, and the p50/p99 are printed with their ratio to the
//! baseline's p50.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};
use time::OffsetDateTime;
use yrd_domain::spotcheck::Verdict;
use yrd_domain::uscc::{Uscc, check_character};
use yrd_domain::{AgencyId, RegionCode};
use yrd_store::results::{name_bigrams, region_places};
use yrd_store::{ResultCursor, ResultFilter, Store, StoreOptions};

const PRODUCERS: u64 = 50_000;
const SELLERS: u64 = 100_000;
const CAMPAIGNS: u64 = 200;
const ROWS_PER_INSERT: u64 = 500;
const ROWS_PER_TRANSACTION: u64 = 50_000;
const REPETITIONS: usize = 300;
/// Publication times: one result every 60 s from 2021-01-01 on (1M results ≈ 2 years).
const T0_US: i64 = 1_609_459_200_000_000;
const STEP_US: i64 = 60_000_000;

const PROVINCES: &[&str] = &[
    "310000", "320000", "330000", "340000", "370000", "350000", "440000",
];
const CITIES: &[&str] = &["01", "02", "05", "06"];
const PUBLISHERS: &[&str] = &[
    "310000-SAMR",
    "320000-AMR",
    "330000-AMR",
    "340000-AMR",
    "370000-AMR",
];
const NAMES: &[&str] = &[
    "儿童塑料玩具车",
    "学生书包",
    "电动滑板车",
    "儿童服装",
    "电热水壶",
    "插座转换器",
    "婴儿奶瓶",
    "学生文具盒",
    "毛绒玩具",
    "羽绒服",
    "电吹风",
    "儿童积木",
    "台灯",
    "运动鞋",
    "保温杯",
];

fn uscc(region: &str, serial: u64) -> String {
    let body = format!("91{region}{serial:09}");
    let check = check_character(&body).unwrap_or('0');
    format!("{body}{check}")
}

fn region(i: u64, salt: u64) -> String {
    let p = PROVINCES[((i + salt) % PROVINCES.len() as u64) as usize];
    let c = CITIES[((i / 7 + salt) % CITIES.len() as u64) as usize];
    format!("{}{c}{:02}", &p[..2], (i + salt) % 10 + 1)
}

fn producer(n: u64) -> (String, String) {
    let r = region(n, 0);
    (uscc(&r, n), r)
}

fn seller(n: u64) -> (String, String) {
    let r = region(n, 3);
    (uscc(&r, n), r)
}

fn date_of(created_us: i64) -> String {
    // Sampled about a month before publication.
    let t = OffsetDateTime::from_unix_timestamp((created_us - 30 * 86_400_000_000) / 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

async fn load(url: &str, count: u64) -> Result<(), sqlx::Error> {
    let mut conn = AnyConnectOptions::from_str(url)?
        .disable_statement_logging()
        .connect()
        .await?;
    conn.execute("PRAGMA synchronous = OFF").await?;
    let mut i = 0;
    while i < count {
        let mut tx = conn.begin().await?;
        let end = (i + ROWS_PER_TRANSACTION).min(count);
        while i < end {
            let stop = (i + ROWS_PER_INSERT).min(end);
            let (mut results, mut versions, mut places, mut grams) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for n in i..stop {
                let id = format!("{n:032x}");
                let created = T0_US + n as i64 * STEP_US;
                let (p_uscc, p_region) = producer(n % PRODUCERS);
                let (s_uscc, s_region) = seller((n * 31) % SELLERS);
                let name = format!("{}{}", NAMES[(n % NAMES.len() as u64) as usize], n % 97);
                // One in ten non-conforming, uncorrelated with the other columns.
                let verdict = if n.wrapping_mul(2_654_435_761) >> 7 & 0xff < 26 {
                    "non_conforming"
                } else {
                    "conforming"
                };
                let prov = |r: &str| format!("{}0000", &r[..2]);
                results.push(format!(
                    "('{id}', '{pub}', 'published', 1, '{p_uscc}', '{s_uscc}', '{name}', '{name}', \
                     '{platform}', '{p_region}', '{pp}', '{s_region}', '{sp}', '{verdict}', \
                     'C{campaign:04}', 'provincial', '{date}', {created}, {created})",
                    pub = PUBLISHERS[(n % 5) as usize],
                    platform = ["淘宝", "京东", "拼多多"][(n % 3) as usize],
                    pp = prov(&p_region),
                    sp = prov(&s_region),
                    campaign = n % CAMPAIGNS,
                    date = date_of(created),
                ));
                versions.push(format!("('{id}', 1, x'00', NULL, {created})"));
                let mut ps: Vec<String> = Vec::new();
                for r in [&p_region, &s_region] {
                    if let Ok(code) = RegionCode::parse(r) {
                        ps.extend(region_places(&code));
                    }
                }
                ps.sort();
                ps.dedup();
                places.extend(
                    ps.into_iter()
                        .map(|p| format!("('{p}', '{verdict}', {created}, '{id}')")),
                );
                grams.extend(
                    name_bigrams(&name)
                        .into_iter()
                        .map(|g| format!("('{g}', {created}, '{id}')")),
                );
            }
            conn_exec(&mut tx, "results (id, publisher, state, latest_version, producer_uscc, seller_uscc, product_name, product_name_fold, platform, producer_region, producer_province, seller_region, seller_province, verdict, campaign_code, campaign_kind, sampling_date, created_at, updated_at)", &results).await?;
            conn_exec(
                &mut tx,
                "result_versions (result_id, version, body, reason, created_at)",
                &versions,
            )
            .await?;
            conn_exec(
                &mut tx,
                "result_places (place, verdict, created_at, result_id)",
                &places,
            )
            .await?;
            conn_exec(
                &mut tx,
                "result_name_grams (gram, created_at, result_id)",
                &grams,
            )
            .await?;
            i = stop;
        }
        tx.commit().await?;
    }
    conn.execute("ANALYZE").await?;
    conn.close().await
}

async fn conn_exec(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    rows: &[String],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!("INSERT INTO {table} VALUES {}", rows.join(", "));
    tx.execute(sql.as_str()).await?;
    Ok(())
}

/// A spread-out pick of `0..modulo` for repetition `i`.
fn pick(i: usize, modulo: u64) -> u64 {
    (i as u64 * 7919) % modulo
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Times `REPETITIONS` searches, the i-th built by `make(i)`; answers (p50, p99, mean rows).
async fn time_searches(
    store: &Store,
    make: impl Fn(usize) -> (ResultFilter, Option<ResultCursor>),
) -> (Duration, Duration, f64) {
    let mut times = Vec::with_capacity(REPETITIONS);
    let mut rows = 0usize;
    for i in 0..REPETITIONS {
        let (filter, after) = make(i);
        let started = Instant::now();
        let found = store.search_results(&filter, after.as_ref(), 51).await;
        times.push(started.elapsed());
        rows += found.map(|f| f.len()).unwrap_or(0);
    }
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        rows as f64 / REPETITIONS as f64,
    )
}

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
        // YRD_BENCH_DB keeps the loaded database at that path and reuses it on the next run.
        let dir = tempfile::tempdir()?;
        let path = std::env::var("YRD_BENCH_DB")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| dir.path().join("bench.db"));
        let reuse = path.exists();
        let url = format!("sqlite://{}", path.display());
        let store = Store::open(&url, &StoreOptions::default()).await?;
        if reuse {
            println!("reusing {} (YRD_BENCH_DB)", path.display());
        } else {
            let started = Instant::now();
            load(&url, count).await?;
            println!("loaded {count} results in {:.1} s", started.elapsed().as_secs_f64());
        }

        // Baseline: a primary-key lookup of one result with its latest version.
        let mut times = Vec::with_capacity(REPETITIONS);
        for i in 0..REPETITIONS {
            let id = format!("{:032x}", pick(i, count));
            let started = Instant::now();
            let found = store.get_result(&id, None).await?;
            times.push(started.elapsed());
            assert!(found.is_some(), "baseline lookup found nothing");
        }
        times.sort();
        let base = percentile(&times, 0.5);
        println!(
            "{:<32} p50 {:>7.3} ms  p99 {:>7.3} ms  (baseline)",
            "primary-key lookup",
            ms(base),
            ms(percentile(&times, 0.99))
        );

        let deep_cursor = move |i: usize| ResultCursor {
            created_at_us: T0_US + (count / 2 + pick(i, count / 4)) as i64 * STEP_US,
            id: format!("{:032x}", count / 2 + pick(i, count / 4)),
        };
        let province = |i: usize| RegionCode::parse(PROVINCES[i % PROVINCES.len()]).ok();
        type Case = (&'static str, Box<dyn Fn(usize) -> (ResultFilter, Option<ResultCursor>)>);
        let cases: Vec<Case> = vec![
            ("first page, no filter", Box::new(|_| (ResultFilter::default(), None))),
            ("deep page (keyset), no filter", Box::new(move |i| (ResultFilter::default(), Some(deep_cursor(i))))),
            ("producer USCC", Box::new(move |i| {
                let (u, _) = producer(pick(i, PRODUCERS));
                (ResultFilter { producer_uscc: Uscc::parse(&u).ok(), ..Default::default() }, None)
            })),
            ("seller USCC", Box::new(move |i| {
                let (u, _) = seller(pick(i, SELLERS));
                (ResultFilter { seller_uscc: Uscc::parse(&u).ok(), ..Default::default() }, None)
            })),
            ("province + verdict", Box::new(move |i| (ResultFilter {
                region: province(i),
                verdict: Some(Verdict::NonConforming),
                ..Default::default()
            }, None))),
            ("province + verdict, deep page", Box::new(move |i| (ResultFilter {
                region: province(i),
                verdict: Some(Verdict::NonConforming),
                ..Default::default()
            }, Some(deep_cursor(i))))),
            ("campaign code", Box::new(move |i| (ResultFilter {
                campaign_code: Some(format!("C{:04}", pick(i, CAMPAIGNS))),
                ..Default::default()
            }, None))),
            ("sampling-date range (1 month)", Box::new(move |i| {
                let start = T0_US + (pick(i, count) as i64) * STEP_US;
                (ResultFilter {
                    sampled_from: yrd_domain::spotcheck::parse_date(&date_of(start)).ok(),
                    sampled_to: yrd_domain::spotcheck::parse_date(&date_of(start + 30 * 86_400_000_000)).ok(),
                    ..Default::default()
                }, None)
            })),
            ("product name contains", Box::new(move |i| (ResultFilter {
                product_name_contains: Some(format!("{}{}", &NAMES[i % NAMES.len()][..6], "")),
                ..Default::default()
            }, None))),
            ("publisher + verdict", Box::new(move |i| (ResultFilter {
                publisher: AgencyId::parse(PUBLISHERS[i % 5]).ok(),
                verdict: Some(Verdict::NonConforming),
                ..Default::default()
            }, None))),
        ];
        for (name, make) in cases {
            let (p50, p99, rows) = time_searches(&store, make).await;
            println!(
                "{name:<32} p50 {:>7.3} ms  p99 {:>7.3} ms  p50/baseline {:>6.1}x  rows/page {rows:.1}",
                ms(p50),
                ms(p99),
                p50.as_secs_f64() / base.as_secs_f64().max(1e-9),
            );
        }
        store.close().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
