//! The crash test: `yrd serve` killed with SIGKILL under a mixed load from every agency,
//! restarted on the same data, loses nothing it acknowledged and writes nothing twice.
//!
//! The `yrd` binary of this package (`CARGO_BIN_EXE_yrd`) runs as a real child process, started,
//! killed and restarted by the bench's process code (`yrd_bench::server`), and is driven as
//! partners drive it (`yrd_bench::connect`: mTLS, bound tokens). Each iteration:
//!
//! 1. several writers per agency publish non-conforming results (each opens a referral to the
//!    producer's province), correct their own, open referrals by hand (`CreateReferral`), take
//!    their referrals through the disposal steps as the handling agency (acknowledge, start,
//!    measures, order correction, review, close), and in the Hu-Lu pilot provinces submit
//!    licence applications that the other province accepts, reviews, verifies and decides;
//!    off the main path they file objections and record re-inspections as the sampling
//!    agency, return referrals as the handling one, reroute returned ones, and add reactions
//!    as a third agency ([`detours`]);
//!    each call has its own `request_id`, and every acknowledged answer is recorded (request
//!    id → resource and version, receipt), while an auditor reads the signed tree heads as
//!    they are published;
//! 2. a seeded number of acknowledged writes after the auditor saw its first head, the server
//!    gets SIGKILL;
//! 3. it is restarted on the same data folder or PostgreSQL database, and then (as Jepsen's
//!    set-full checker does, for every write of the run):
//!    * every publication or correction acknowledged before the kill is stored, with the
//!      content it sent (read before anything is sent again);
//!    * every request that got no answer is sent again with its `request_id` and body: it must
//!      succeed, with the stored answer or written now (how many were stored is printed);
//!    * every acknowledged request sent again must return the stored answer: the same
//!      resource, version and receipt;
//!    * a search over the run's campaign finds each acknowledged publication exactly once (no
//!      report number twice, nothing unacknowledged), at its last acknowledged version;
//!    * the exchange lists exactly the referrals and applications acknowledged writes opened;
//!      each acknowledged step is in its referral's timeline or application's history exactly
//!      once, and nothing else is; each timeline, replayed through the domain's machines at
//!      its recorded times, is legal step by step and gives the stored state and deadlines
//!      ([`machines`]);
//!    * every agency's feed holds exactly one event per event due to it (the results'
//!      recipients, and every agency the machines say a step must tell), none for a write
//!      nobody acknowledged, with cursors gap-free and event ids unique;
//!    * the exchange log's new signed head verifies, is consistent (RFC 9162 consistency proof,
//!      checked with `yrd_domain::merkle`) with every head the auditor saw before the crash and
//!      with the previous iteration's, and includes the leaf of every acknowledged receipt.
//!
//! Iterations follow one another on the same data, so a later one also checks recovery after
//! recovery. `YRD_CRASH_ITERATIONS` (default 2) sets how many; `YRD_CRASH_SEED` replays a run
//! from the seed it printed (timing still differs from run to run, so the kill falls on the same
//! count of acknowledged writes, not on the same instruction). See `docs/performance.md`
//! §"Crash test".

//!
//! # Layout
//!
//! * this file: the two tests, one a store.
//! * [`process`]: the knobs, the server's start, kills and restarts, the iterations.
//! * [`ledger`]: every write of the run and what the auditor trusts.
//! * [`load`]: the writers that publish, correct and step until the kill.
//! * [`steps`]: the referral and licensing steps, which comes next, and their requests.
//! * [`detours`]: the referral steps off the main path (objections, returns, reroutes,
//!   reactions).
//! * [`log`]: the auditor's tree heads, and the log's checks after a restart.
//! * [`check`]: the writes, searches and feeds checked after a restart.
//! * [`machines`]: the referrals and applications checked after a restart, by replay.

#![forbid(unsafe_code)]

mod check;
mod detours;
mod ledger;
mod load;
mod log;
mod machines;
mod process;
mod steps;

use anyhow::ensure;
use yrd_bench::cli::StoreKind;

use crate::process::crash_test;

/// PostgreSQL of the test suite, as every store test reads it (README, "Two commands").
const POSTGRES_URL_VAR: &str = "YRD_TEST_POSTGRES_URL";

/// Set to `1` (CI), a missing PostgreSQL fails the test instead of skipping it.
const REQUIRE_POSTGRES_VAR: &str = "YRD_TEST_REQUIRE_POSTGRES";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_on_sqlite() -> anyhow::Result<()> {
    crash_test(StoreKind::Sqlite, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_on_postgres() -> anyhow::Result<()> {
    let url = std::env::var(POSTGRES_URL_VAR).unwrap_or_default();
    if url.trim().is_empty() {
        ensure!(
            std::env::var(REQUIRE_POSTGRES_VAR).as_deref() != Ok("1"),
            "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set"
        );
        eprintln!(
            "skipped: the PostgreSQL crash test needs {POSTGRES_URL_VAR} (a server where it may \
             create a throw-away database)"
        );
        return Ok(());
    }
    crash_test(StoreKind::Postgres, url.trim()).await
}
