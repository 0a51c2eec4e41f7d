//! Several `yrd serve` replicas on one PostgreSQL database, as separate processes (issue 20):
//! what scale-out promises, proven end to end against the built binary.
//!
//! Three replicas are started once for the whole binary (the first makes the database and the
//! dev PKI; the other two are told to serve its PKI files, as an operator's replicas are) and
//! the scenarios run one after the other on them, in an order where each leaves the cluster
//! whole for the next:
//!
//! 1. the exchange-log sequencer runs on exactly one replica (its log line, and one advisory
//!    lock in `pg_locks`);
//! 2. a token issued by one replica is accepted by every other (the signing keys live in the
//!    database), and all publish the same JWKS;
//! 3. a replica killed with SIGKILL mid-publish loses nothing it acknowledged: the crash test's
//!    writers and checks (`gateway/tests/crash/`), the checks run through another replica;
//!    the killed one is started again;
//! 4. an idempotent retry (same `request_id`) landing on another replica returns the first
//!    answer, also when both are sent at once;
//! 5. a result published through one replica reaches live subscribers on the others: the
//!    delivery latency over [`delivery::PUBLISHES`] publishes is printed (p50/p99) and its p99
//!    must stay under a loose bound (the target, 100 ms, is reported, not asserted: CI machines
//!    are loaded);
//! 6. the sequencer's replica is killed with SIGKILL: another takes over within 5 s (the time
//!    is printed) and the tree heads before and after are consistent (RFC 9162 consistency
//!    proof from the AuditService, verified here).
//!
//! It needs `YRD_TEST_POSTGRES_URL` and skips without it, unless `YRD_TEST_REQUIRE_POSTGRES=1`
//! (CI), as every PostgreSQL test does.
//!
//! # Layout
//!
//! * this file: the test and the order of the scenarios.
//! * [`cluster`]: the replicas, their logs and sessions.
//! * [`calls`]: scenarios 2 and 4; [`delivery`]: 5; [`sequencer`]: 1 and 6;
//!   [`kill_publish`]: 3.
//! * `ledger`, `log`, `load`, `steps`, `check`, `machines`: the crash test's own modules,
//!   shared.

#![forbid(unsafe_code)]

mod calls;
mod cluster;
mod delivery;
mod kill_publish;
mod sequencer;

// The crash test's writers, ledger and checks (gateway/tests/crash/), used as they are.
#[path = "../crash/check.rs"]
mod check;
#[path = "../crash/detours.rs"]
mod detours;
#[path = "../crash/ledger.rs"]
mod ledger;
#[path = "../crash/load.rs"]
mod load;
#[path = "../crash/log.rs"]
mod log;
#[path = "../crash/machines.rs"]
mod machines;
#[path = "../crash/steps.rs"]
mod steps;

use anyhow::{Context as _, ensure};

use crate::cluster::Cluster;

/// PostgreSQL of the test suite, as every store test reads it (README, "Two commands").
const POSTGRES_URL_VAR: &str = "YRD_TEST_POSTGRES_URL";

/// Set to `1` (CI), a missing PostgreSQL fails the test instead of skipping it.
const REQUIRE_POSTGRES_VAR: &str = "YRD_TEST_REQUIRE_POSTGRES";

/// How many replicas the scenarios run on.
const REPLICAS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_on_one_postgres() -> anyhow::Result<()> {
    let url = std::env::var(POSTGRES_URL_VAR).unwrap_or_default();
    if url.trim().is_empty() {
        ensure!(
            std::env::var(REQUIRE_POSTGRES_VAR).as_deref() != Ok("1"),
            "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set"
        );
        eprintln!(
            "skipped: the replica suite needs {POSTGRES_URL_VAR} (a server where it may create \
             a throw-away database)"
        );
        return Ok(());
    }
    let mut cluster = Cluster::start(url.trim(), REPLICAS)
        .await
        .context("starting the replicas")?;
    let outcome = scenarios(&mut cluster).await;
    if outcome.is_err() {
        cluster.show_logs();
    }
    let stopped = cluster.stop().await;
    outcome.and(stopped)
}

/// The scenarios, in the order the module documentation gives.
async fn scenarios(cluster: &mut Cluster) -> anyhow::Result<()> {
    sequencer::runs_on_exactly_one_replica(cluster)
        .await
        .context("the sequencer runs on exactly one replica")?;
    calls::tokens_are_accepted_by_every_replica(cluster)
        .await
        .context("a token issued by one replica is accepted by all")?;
    kill_publish::acknowledged_writes_survive_a_killed_replica(cluster)
        .await
        .context("a replica killed mid-publish loses nothing it acknowledged")?;
    calls::a_retry_on_another_replica_gets_the_first_answer(cluster)
        .await
        .context("an idempotent retry on another replica returns the first answer")?;
    delivery::published_on_one_replica_reaches_subscribers_on_the_others(cluster)
        .await
        .context("a result published on one replica reaches subscribers on the others")?;
    sequencer::another_replica_takes_over_after_sigkill(cluster)
        .await
        .context("another replica takes the sequencer over after SIGKILL")?;
    Ok(())
}
