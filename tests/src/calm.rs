//! The agency that behaves while another peer misbehaves (docs/reliability.md, "Slow and
//! abusive peers"): its paced, ordinary calls — a `PublishResult` then a `GetResult` of what it
//! published, in turns — are timed before the abuse (the baseline, in the same run) and during
//! it. Every call must be answered OK; the suites print p50/p99 of both and the ratio, and
//! assert only a generous bound ([`DURING_P99_BOUND`]): the machine running the tests is
//! shared and noisy, the point is that the calm agency is never queued behind the abuse.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;
use yrd_proto::v1::{self as pb};

use crate::fixtures::non_conforming_toy;
use crate::{Authed, TestApp, next_monday_morning};

/// The slowest the calm agency's 99th-percentile call may be while the abuse goes on.
pub const DURING_P99_BOUND: Duration = Duration::from_secs(2);

/// One agency's results client, making ordinary calls at a steady pace.
#[derive(Clone)]
pub struct CalmAgency {
    agency: String,
    results: SpotCheckServiceClient<Authed>,
}

/// The latencies of a run of calls.
#[derive(Debug, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// The `p`-th percentile (50: the median), nearest rank.
    pub fn percentile(&self, p: usize) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let rank = (p * sorted.len()).div_ceil(100).saturating_sub(1);
        sorted
            .get(rank.min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.percentile(50)
    }

    /// The 99th percentile (of a few dozen samples: about the slowest).
    pub fn p99(&self) -> Duration {
        self.percentile(99)
    }

    /// How many calls were timed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl CalmAgency {
    /// `agency`'s system clients on a connection of its own.
    pub async fn new(app: &TestApp, agency: &str) -> CalmAgency {
        CalmAgency {
            agency: agency.to_owned(),
            results: app.as_agency(agency).await.results,
        }
    }

    /// `count` calls, one every `every`, each publishing a result (request id `<tag>-<i>`) or
    /// reading the last one back, in turns; panics naming the call when one is not answered OK.
    pub async fn paced(&mut self, tag: &str, count: usize, every: Duration) -> Latencies {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut latencies = Vec::with_capacity(count);
        let mut last = String::new();
        for i in 0..count {
            tick.tick().await;
            let started = Instant::now();
            if i % 2 == 0 {
                // Made and sold in the agency's own province: no referral to another
                // agency's feed, whose cursors a suite may be counting.
                let region = format!("{}0102", self.agency.get(..2).unwrap_or("31"));
                let mut result = non_conforming_toy(&region, &region, next_monday_morning());
                result.report_number = format!("CALM-{tag}-{i}");
                let published = self
                    .results
                    .publish_result(pb::PublishResultRequest {
                        request_id: format!("{}-{tag}-{i}", self.agency),
                        result: Some(result),
                    })
                    .await
                    .unwrap_or_else(|s| panic!("{}'s PublishResult {tag}/{i}: {s:?}", self.agency));
                last = published
                    .into_inner()
                    .result
                    .expect("a published result")
                    .name;
            } else {
                self.results
                    .get_result(pb::GetResultRequest { name: last.clone() })
                    .await
                    .unwrap_or_else(|s| panic!("{}'s GetResult {tag}/{i}: {s:?}", self.agency));
            }
            latencies.push(started.elapsed());
        }
        Latencies(latencies)
    }

    /// [`CalmAgency::paced`] in a task of its own, to run beside the abuse.
    pub fn spawn_paced(
        &self,
        tag: &'static str,
        count: usize,
        every: Duration,
    ) -> JoinHandle<Latencies> {
        let mut calm = self.clone();
        tokio::spawn(async move { calm.paced(tag, count, every).await })
    }
}

/// Prints the calm agency's latencies before and during `abuse` and their ratio, and asserts
/// the generous bound: during the abuse its p99 stays under [`DURING_P99_BOUND`].
pub fn report(abuse: &str, before: &Latencies, during: &Latencies) {
    let ratio = |d: Duration, b: Duration| d.as_secs_f64() / b.as_secs_f64().max(1e-6);
    println!(
        "{abuse}: the calm agency's calls, {} before: p50 {:?} p99 {:?}; {} during: p50 {:?} \
         p99 {:?}; ratio during/before p50 {:.2} p99 {:.2}",
        before.len(),
        before.p50(),
        before.p99(),
        during.len(),
        during.p50(),
        during.p99(),
        ratio(during.p50(), before.p50()),
        ratio(during.p99(), before.p99()),
    );
    assert!(
        during.p99() < DURING_P99_BOUND,
        "{abuse}: the calm agency's p99 rose to {:?} (bound {DURING_P99_BOUND:?})",
        during.p99()
    );
}

/// The resident memory of this process (`VmRSS` in `/proc/self/status`), in bytes: the test
/// server runs in the test's process, so this is the server's memory plus the test's own.
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("a VmRSS line in kB")
        * 1024
}
