//! Database faults under load. [`disk`]: SQLite's disk full, [`readonly`]: SQLite's database
//! read-only (each in its own documentation). Here, the PostgreSQL outage test: `yrd serve` on a
//! private PostgreSQL instance ([`pg`]) that is stopped with `pg_ctl stop -m immediate` under a
//! mixed load of every agency (publications and corrections, an auditor reading signed tree
//! heads, a live feed subscriber), then started again. It checks that
//!
//! * every call made while the database is down fails with `UNAVAILABLE` (the writers' calls in
//!   flight at the stop, and fresh reads and a fresh write after it), each within the store's
//!   acquire timeout the server is given (`store.acquire_timeout_ms`, [`ACQUIRE_TIMEOUT_MS`]):
//!   one wait on the database per call, not one per round; the server process stays up;
//! * readiness (`grpc.health.v1`, service `readiness`, the state `/readyz` serves too) turns
//!   `NOT_SERVING`;
//! * the live feed stream ends with a clear status (`UNAVAILABLE`) rather than hanging, and a
//!   new subscription resumes from the last cursor it delivered, with nothing skipped;
//! * once PostgreSQL is back, readiness returns (the time from the restart is printed) and the
//!   crash test's checker (`gateway/tests/crash/check.rs`) finds every acknowledged write stored
//!   once, every unanswered one succeeding when sent again, the feeds complete and the exchange
//!   log consistent with every head seen before the outage.
//!
//! The machine's shared PostgreSQL is never touched. Without PostgreSQL's server binaries
//! (`initdb`, `pg_ctl`) the test is skipped with the reason printed, unless
//! `YRD_TEST_REQUIRE_POSTGRES=1`, where it fails. See `docs/reliability.md` §"Database outage".

#![forbid(unsafe_code)]

// The crash test's writers, ledger and checks (gateway/tests/crash/), used as they are.
#[path = "../crash/check.rs"]
mod check;
#[path = "../crash/detours.rs"]
mod detours;
mod disk;
#[path = "../crash/ledger.rs"]
mod ledger;
#[path = "../crash/load.rs"]
#[allow(
    dead_code,
    reason = "load_and_kill is the crash test's SIGKILL; this test stops the database"
)]
mod load;
#[path = "../crash/log.rs"]
mod log;
#[path = "../crash/machines.rs"]
mod machines;
mod pg;
mod readonly;
#[path = "../crash/steps.rs"]
mod steps;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use rand::Rng as _;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use yrd_bench::cli::StoreKind;
use yrd_bench::connect::{AGENCIES, Authed, failure};
use yrd_bench::server::YrdServer;
use yrd_bench::workloads::feed::subscribe_after;
use yrd_proto::v1 as pb;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;

use crate::ledger::{Ledger, PHASE_DEADLINE};
use crate::load::{Run, load_until_fault};
use crate::pg::PrivatePostgres;

/// Set to `1` (CI), missing PostgreSQL binaries fail the test instead of skipping it.
const REQUIRE_POSTGRES_VAR: &str = "YRD_TEST_REQUIRE_POSTGRES";

/// Acknowledged writes before the stop (after the auditor's first head).
const STOP_AFTER_ACKS: u64 = 40;

/// The store's connection acquire timeout the server is given (`store.acquire_timeout_ms`):
/// how long a call waits on the stopped database before it is refused.
const ACQUIRE_TIMEOUT_MS: u64 = 1_500;

/// What a refusal may take beyond [`ACQUIRE_TIMEOUT_MS`] on a loaded test machine: less than a
/// second wait, so a call that waits on the database twice fails the test.
const REFUSAL_SLACK: Duration = Duration::from_millis(1_000);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_mid_load_and_started_again() -> anyhow::Result<()> {
    let Some(bin) = pg::find_binaries() else {
        ensure!(
            std::env::var(REQUIRE_POSTGRES_VAR).as_deref() != Ok("1"),
            "{REQUIRE_POSTGRES_VAR}=1 but PostgreSQL's server binaries (initdb, pg_ctl) are not \
             under /usr/lib/postgresql/*/bin nor on PATH"
        );
        eprintln!(
            "skipped: the outage test needs PostgreSQL's server binaries (initdb, pg_ctl) to run \
             a private instance it may stop"
        );
        return Ok(());
    };
    let pg = PrivatePostgres::start(&bin).context("starting a private PostgreSQL")?;
    let data = tempfile::tempdir()?;
    let binary = Path::new(env!("CARGO_BIN_EXE_yrd"));
    let acquire = ACQUIRE_TIMEOUT_MS.to_string();
    let mut server = YrdServer::start_with(
        binary,
        StoreKind::Postgres,
        &pg.url(),
        data.path(),
        &[("YRD_STORE__ACQUIRE_TIMEOUT_MS", &acquire)],
    )
    .await
    .context("starting yrd serve on the private PostgreSQL")?;
    let outcome = outage(&mut server, &pg).await;
    if outcome.is_err() {
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!("--- the last lines of the server's log ---");
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
        eprintln!(
            "--- the last lines of PostgreSQL's log ---\n{}",
            pg.log_tail()
        );
        // The database is dropped through PostgreSQL: bring it back if the test left it down.
        let _ = pg.start_again();
    }
    let stopped = server.stop().await;
    outcome.and(stopped)
}

/// SQLite's disk filling under load, then space returning (`disk`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_on_a_full_disk_refuses_clearly_and_recovers() -> anyhow::Result<()> {
    disk::full_disk(Path::new(env!("CARGO_BIN_EXE_yrd"))).await
}

/// SQLite's database read-only when the server starts, then writable again (`readonly`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_on_a_read_only_database_refuses_to_start_then_recovers() -> anyhow::Result<()> {
    readonly::read_only(Path::new(env!("CARGO_BIN_EXE_yrd"))).await
}

/// The scenario of the module documentation.
async fn outage(server: &mut YrdServer, pg: &PrivatePostgres) -> anyhow::Result<()> {
    let (seed, campaign) = seeded("outage", "OUTAGE");
    let readiness = HealthClient::new(server.target.channel(AGENCIES[0].0).await?);
    // Agency 0's results go to agency 1 (`yrd_domain::routing`, the crash test's samples).
    let subscriber = server.target.session(AGENCIES[1].0).await?;
    let live = tokio::spawn(follow(subscriber.clone()));
    // Sessions hold a token: issuing one during the outage is refused too.
    let mut spot = SpotCheckServiceClient::new(server.target.session(AGENCIES[0].0).await?);
    let mut clients = Vec::new();
    for (agency, _) in AGENCIES {
        clients.push(server.target.session(agency).await?);
    }

    let mut ledger = Ledger::default();
    let run = run_of(&campaign, seed, STOP_AFTER_ACKS);
    let seen = load_until_fault(server, &mut ledger, run, |_| pg.stop_immediate())
        .await
        .context("the load until PostgreSQL stopped")?;
    let down = Instant::now();
    ensure!(
        server.is_running(),
        "yrd serve exited when PostgreSQL stopped"
    );

    // The writers' calls in flight at the stop were refused as unavailable.
    let acked = ledger.attempts.iter().filter(|a| a.acked.is_some()).count();
    let mut refused = 0;
    for attempt in ledger.attempts.iter().filter(|a| a.acked.is_none()) {
        let error = attempt.error.as_deref().unwrap_or_default();
        ensure!(
            error.starts_with("Unavailable:"),
            "write {} during the outage failed with {error:?}, not UNAVAILABLE",
            attempt.request.id()
        );
        refused += 1;
    }
    eprintln!("outage: {acked} writes acknowledged before the stop, {refused} refused after it");

    // Fresh calls fail fast, with UNAVAILABLE: two reads, and one of the refused writes sent
    // again with its request id.
    let name = ledger
        .attempts
        .iter()
        .filter(|a| matches!(a.request, ledger::Request::Publish(_)))
        .find_map(|a| a.acked.as_ref().map(|acked| acked.name.clone()))
        .context("no publication was acknowledged before the stop")?;
    let write = ledger
        .attempts
        .iter()
        .find(|a| a.acked.is_none())
        .context("no write was refused at the stop")?;
    let limit = Duration::from_millis(ACQUIRE_TIMEOUT_MS) + REFUSAL_SLACK;
    for what in ["GetResult", "SearchResults", write.request.kind()] {
        let started = Instant::now();
        let answer = match what {
            "GetResult" => spot
                .get_result(pb::GetResultRequest { name: name.clone() })
                .await
                .map(drop)
                .map_err(|status| failure(&status)),
            "SearchResults" => spot
                .search_results(pb::SearchResultsRequest {
                    page_size: 5,
                    ..Default::default()
                })
                .await
                .map(drop)
                .map_err(|status| failure(&status)),
            _ => write
                .request
                .send(clients[write.agency].clone())
                .await
                .map(drop),
        };
        let took = started.elapsed();
        let Err(refusal) = answer else {
            bail!("{what} succeeded while PostgreSQL was down");
        };
        ensure!(
            refusal.starts_with("Unavailable:"),
            "{what} during the outage answered {refusal:?}, not UNAVAILABLE"
        );
        ensure!(
            took <= limit,
            "{what} during the outage was refused after {} ms, more than the acquire timeout \
             ({ACQUIRE_TIMEOUT_MS} ms) and {} ms of slack",
            took.as_millis(),
            REFUSAL_SLACK.as_millis()
        );
        eprintln!(
            "outage: {what} refused as UNAVAILABLE in {} ms (acquire timeout \
             {ACQUIRE_TIMEOUT_MS} ms): {refusal}",
            took.as_millis()
        );
    }
    ensure!(server.is_running(), "yrd serve exited during the outage");

    wait_readiness(&readiness, ServingStatus::NotServing).await?;
    eprintln!(
        "outage: readiness NOT_SERVING {} ms after the stop",
        down.elapsed().as_millis()
    );
    let (last_cursor, end) = tokio::time::timeout(PHASE_DEADLINE, live)
        .await
        .context("the live feed stream neither ended nor failed during the outage")???;
    let end = end.context("the live feed stream ended without a status")?;
    ensure!(
        end.code() == tonic::Code::Unavailable,
        "the live feed stream ended with {:?} ({}), not UNAVAILABLE",
        end.code(),
        end.message()
    );
    eprintln!(
        "outage: the live feed stream ended with UNAVAILABLE ({}) at cursor {last_cursor}",
        end.message()
    );

    pg.start_again().context("starting PostgreSQL again")?;
    let back = Instant::now();
    wait_readiness(&readiness, ServingStatus::Serving).await?;
    eprintln!(
        "outage: readiness SERVING {} ms after PostgreSQL accepted connections again",
        back.elapsed().as_millis()
    );
    let started = Instant::now();
    spot.get_result(pb::GetResultRequest { name })
        .await
        .context("GetResult after PostgreSQL returned")?;
    eprintln!(
        "outage: the first GetResult after the return answered in {} ms",
        started.elapsed().as_millis()
    );

    // A new subscription resumes at the cursor after the last one delivered.
    let resumed = resume_from(&subscriber, last_cursor).await?;
    let report = check::check(server, &mut ledger, &campaign, 0, &seen)
        .await
        .context("after PostgreSQL returned")?;
    eprintln!(
        "outage: resumed feed from cursor {last_cursor}: {resumed}; {report}; acknowledged by \
         kind: {:?}",
        ledger.acked_by_kind()
    );
    Ok(())
}

/// The cursor of `event` after `last` in the `which` feed: the next one, or an error.
fn next_cursor(which: &str, last: u64, event: &pb::FeedEvent) -> anyhow::Result<u64> {
    ensure!(
        event.cursor == last + 1,
        "the {which} feed went from cursor {last} to {}",
        event.cursor
    );
    Ok(event.cursor)
}

/// Follows the feed of `session` live from its latest cursor until the stream ends; answers the
/// last cursor delivered and the status it ended with (`None`: ended without one).
async fn follow(session: Authed) -> anyhow::Result<(u64, Option<tonic::Status>)> {
    let (mut stream, mut last, _) = subscribe_after(session, None).await?;
    loop {
        match stream.message().await {
            Ok(Some(pb::SubscribeResponse {
                kind: Some(pb::subscribe_response::Kind::Event(event)),
            })) => last = next_cursor("live", last, &event)?,
            Ok(Some(_)) => {}
            Ok(None) => return Ok((last, None)),
            Err(status) => return Ok((last, Some(status))),
        }
    }
}

/// Subscribes after `cursor` and reads up to the feed's latest: the next cursor is `cursor + 1`
/// and none is skipped. Answers a summary.
async fn resume_from(session: &Authed, cursor: u64) -> anyhow::Result<String> {
    let (mut stream, mut last, latest) = subscribe_after(session.clone(), Some(cursor)).await?;
    while last < latest {
        let message = tokio::time::timeout(PHASE_DEADLINE, stream.message())
            .await
            .with_context(|| format!("the resumed feed stalled after cursor {last}"))??
            .with_context(|| format!("the resumed feed ended after cursor {last}"))?;
        if let Some(pb::subscribe_response::Kind::Event(event)) = message.kind {
            last = next_cursor("resumed", last, &event)?;
        }
    }
    Ok(format!("{} events up to cursor {latest}", latest - cursor))
}

/// One fault test's random seed (printed, so that a failure can be replayed) and the campaign
/// name of its load.
fn seeded(test: &str, kind: &str) -> (u64, String) {
    let seed: u64 = rand::rng().random();
    eprintln!("{test} test: seed {seed}");
    (seed, format!("{kind}-{seed}"))
}

/// The run of one fault test: one iteration of `campaign`, stopped for the fault after `acks`.
fn run_of(campaign: &str, seed: u64, acks: u64) -> Run<'_> {
    Run {
        campaign,
        iteration: 1,
        kill_after: acks,
        seed,
    }
}

/// Prints the last lines of the server's log when a fault test failed.
fn print_log_tail(server: &YrdServer) {
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    eprintln!("--- the last lines of the server's log ---");
    for line in tail.iter().rev() {
        eprintln!("{line}");
    }
}

/// Polls readiness until it is `wanted` (each poll a `Health/Check` of service `readiness`).
async fn wait_readiness(
    client: &HealthClient<tonic::transport::Channel>,
    wanted: ServingStatus,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_DEADLINE;
    let mut last = None;
    while Instant::now() < deadline {
        let answer = client
            .clone()
            .check(HealthCheckRequest {
                service: "readiness".to_owned(),
            })
            .await;
        match answer {
            Ok(a) if a.get_ref().status() == wanted => return Ok(()),
            Ok(a) => last = Some(format!("{:?}", a.get_ref().status())),
            Err(status) => last = Some(format!("{:?}: {}", status.code(), status.message())),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    bail!("readiness did not turn {wanted:?} within {PHASE_DEADLINE:?} (last: {last:?})")
}
