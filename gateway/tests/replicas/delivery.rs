//! Cross-replica feed delivery: a result published through replica #0 wakes live subscribers
//! on the other replicas through PostgreSQL `LISTEN/NOTIFY` (`services/store/src/feed/mod.rs`),
//! not at their next heartbeat re-read (10 s by default), so a loose bound on the p99 tells
//! the two apart even on a loaded machine.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use yrd_bench::connect::failure;
use yrd_bench::workloads::feed::{Times, read, subscribe};
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;

use crate::cluster::{Cluster, publication};

/// Publications measured.
pub(crate) const PUBLISHES: u64 = 200;

/// The target (issue 20), reported beside the measured p99.
const TARGET_P99: Duration = Duration::from_millis(100);

/// The bound asserted: far above the target, far below a heartbeat re-read.
const BOUND_P99: Duration = Duration::from_secs(1);

/// How long after the last publication its events may still arrive.
const GRACE: Duration = Duration::from_secs(10);

/// The publisher (index into `AGENCIES`); its results are addressed to the next agency.
const PUBLISHER: usize = 0;
const RECIPIENT: usize = 1;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Scenario 5: the recipient subscribes on every replica but #0; #0's publisher publishes
/// [`PUBLISHES`] results one after the other; each must reach every subscriber. The latency of
/// a delivery is from the publish's acknowledgement to the event's arrival (0 when it arrived
/// first), as the bench's `feed` workload measures it.
pub(crate) async fn published_on_one_replica_reaches_subscribers_on_the_others(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let mut subscribers = Vec::new();
    for i in 1..cluster.replicas.len() {
        let arrivals = Times::default();
        let stream = subscribe(cluster.session(i, RECIPIENT).await?)
            .await
            .with_context(|| format!("subscribing on replica #{i}"))?;
        let reader = tokio::spawn(read(stream, arrivals.clone(), stop.clone()));
        subscribers.push((i, arrivals, reader));
    }
    let mut spot = SpotCheckServiceClient::new(cluster.session(0, PUBLISHER).await?);
    let mut acked = Vec::with_capacity(usize::try_from(PUBLISHES).unwrap_or(0));
    for seq in 0..PUBLISHES {
        let tag = format!("replicas-delivery-{seq}");
        let answer = spot
            .publish_result(publication(PUBLISHER, 100 + seq, &tag))
            .await
            .map_err(|s| anyhow::anyhow!("publishing {tag} on replica #0: {}", failure(&s)))?
            .into_inner();
        let at = Instant::now();
        let name = answer.result.context("a publish answered no result")?.name;
        acked.push((name, at));
    }
    let deadline = Instant::now() + GRACE;
    let delivered = |arrivals: &Times| {
        let arrivals = lock(arrivals);
        acked
            .iter()
            .filter(|(n, _)| arrivals.contains_key(n))
            .count()
    };
    while subscribers
        .iter()
        .any(|(_, a, _)| delivered(a) < acked.len())
    {
        if Instant::now() > deadline {
            let short: Vec<String> = subscribers
                .iter()
                .map(|(i, a, _)| format!("replica #{i}: {} of {}", delivered(a), acked.len()))
                .collect();
            bail!("not every publication reached every subscriber within {GRACE:?}: {short:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let mut latencies = Vec::new();
    for (i, arrivals, reader) in subscribers {
        if let Ok(Err(e)) = reader.await {
            bail!("the subscriber on replica #{i} failed: {e}");
        }
        let arrivals = lock(&arrivals);
        for (name, at) in &acked {
            if let Some(arrived) = arrivals.get(name) {
                latencies.push(arrived.saturating_duration_since(*at));
            }
        }
    }
    latencies.sort();
    let quantile = |q: f64| {
        let at = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len());
        latencies[at - 1]
    };
    let (p50, p99, max) = (quantile(0.50), quantile(0.99), quantile(1.0));
    eprintln!(
        "cross-replica delivery: {} deliveries ({PUBLISHES} publishes on replica #0, a \
         subscriber on each of {} other replicas): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
         (target p99 {} ms)",
        latencies.len(),
        cluster.replicas.len() - 1,
        ms(p50),
        ms(p99),
        ms(max),
        TARGET_P99.as_millis()
    );
    ensure!(
        p99 < BOUND_P99,
        "the p99 of cross-replica delivery is {:.1} ms, over the bound of {} ms: are the other \
         replicas woken by NOTIFY?",
        ms(p99),
        BOUND_P99.as_millis()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
