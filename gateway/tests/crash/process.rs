//! Process control: the knobs of a run, the server started on a fresh store, the iterations
//! of load, SIGKILL, restart and check, and the server's log shown when a run fails.

use std::path::Path;

use anyhow::{Context as _, bail, ensure};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use yrd_bench::cli::StoreKind;
use yrd_bench::server::YrdServer;

use crate::check::check;
use crate::ledger::Ledger;
use crate::load::load_and_kill;

/// Replays a run: the seed it printed.
pub(crate) const SEED_VAR: &str = "YRD_CRASH_SEED";

/// How many kill-and-restart iterations each store runs.
pub(crate) const ITERATIONS_VAR: &str = "YRD_CRASH_ITERATIONS";

/// Iterations when `YRD_CRASH_ITERATIONS` is unset: enough to crash a recovered server once.
pub(crate) const DEFAULT_ITERATIONS: u64 = 2;

/// The kill comes after this many writes were acknowledged since the auditor's first head, at
/// least and at most.
pub(crate) const KILL_AFTER_ACKS: std::ops::RangeInclusive<u64> = 15..=90;

/// A variable of this test read as a whole number; unset is `None`, anything else an error
/// naming the variable.
pub(crate) fn env_number(name: &str) -> anyhow::Result<Option<u64>> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => bail!("{name}={v:?} is not a whole number"),
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a whole number")),
    }
}

/// Starts the server on a fresh store, runs the iterations, stops it and drops its database.
pub(crate) async fn crash_test(store: StoreKind, postgres_url: &str) -> anyhow::Result<()> {
    let iterations = env_number(ITERATIONS_VAR)?.unwrap_or(DEFAULT_ITERATIONS);
    ensure!(iterations >= 1, "{ITERATIONS_VAR} must be at least 1");
    let seed = match env_number(SEED_VAR)? {
        Some(seed) => seed,
        None => rand::rng().random(),
    };
    let replay = format!("{SEED_VAR}={seed} {ITERATIONS_VAR}={iterations}");
    eprintln!(
        "crash test on {}: seed {seed}, {iterations} iterations (replay: {replay})",
        store.as_str()
    );
    let data = tempfile::tempdir()?;
    let binary = Path::new(env!("CARGO_BIN_EXE_yrd"));
    let outcome = match YrdServer::start(binary, store, postgres_url, data.path()).await {
        Ok(mut server) => {
            let outcome = run(&mut server, seed, iterations, store.as_str()).await;
            let stopped = server.stop().await;
            outcome.and(stopped)
        }
        Err(e) => Err(e.context("starting yrd serve")),
    };
    outcome.map_err(|e| {
        // The data folder goes with the test; what the server said goes to the test's output.
        let log = std::fs::read_to_string(data.path().join("yrd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!("--- the last lines of the server's log ---");
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
        e.context(format!(
            "crash test on {} failed; replay with {replay}",
            store.as_str()
        ))
    })
}

/// The run: `iterations` times load, kill, restart, check.
pub(crate) async fn run(
    server: &mut YrdServer,
    seed: u64,
    iterations: u64,
    store: &str,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let campaign = format!("CRASH-{seed}");
    let mut ledger = Ledger::default();
    for iteration in 1..=iterations {
        let kill_after = rng.random_range(KILL_AFTER_ACKS);
        let load_seed: u64 = rng.random();
        let first_new = ledger.attempts.len();
        let seen = load_and_kill(
            server,
            &mut ledger,
            &campaign,
            iteration,
            kill_after,
            load_seed,
        )
        .await
        .with_context(|| format!("iteration {iteration}: the load"))?;
        server
            .restart()
            .await
            .with_context(|| format!("iteration {iteration}: restarting after SIGKILL"))?;
        let report = check(server, &mut ledger, &campaign, first_new, &seen)
            .await
            .with_context(|| format!("iteration {iteration}: after the restart"))?;
        eprintln!(
            "{store}, iteration {iteration}: SIGKILL {kill_after} acknowledged writes after \
             the auditor's first head; {report}"
        );
    }
    eprintln!(
        "{store}: {iterations} iterations passed; acknowledged writes by kind: {:?}",
        ledger.acked_by_kind()
    );
    Ok(())
}
