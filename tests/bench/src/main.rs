//! `yrd-bench`: the throughput instrument of the exchange (issue 18, "the instrument first").
//!
//! It starts `yrd serve` from its built binary as a child process on a fresh store, and a bare
//! tonic echo server (this binary again, with `--echo-serve`) behind the same rustls mTLS
//! acceptor; drives both with the same generator (N connections × M calls in flight, closed or
//! open loop) over mTLS with bound tokens; and reports latency percentiles, calls per second,
//! the server's CPU time per call and peak memory, and each row's ratio to the echo measured in
//! the same run. How to run it and the figures measured: `docs/performance.md`.
//!
//! # Layout
//!
//! * [`cli`] — the command line.
//! * [`server`] — the child processes (`yrd serve`, the echo) and the throw-away PostgreSQL
//!   database.
//! * [`echo`] — the baseline service and how it is served.
//! * [`connect`] — client connections with the dev certificates and bound tokens.
//! * [`load`] — the generator and its measurements; [`procstat`] — CPU and memory from `/proc`.
//! * [`workloads`] — what each workload calls; [`report`] — the table and JSON.
//! * [`fill`] — `yrd-bench load`: a store filled with synthetic results in bulk.

#![forbid(unsafe_code)]

mod cli;
mod connect;
mod echo;
mod fill;
mod load;
mod procstat;
mod report;
mod server;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

use crate::cli::{Args, Command, StoreKind};
use crate::load::Watched;
use crate::report::Row;
use crate::server::{EchoServer, YrdServer};
use crate::workloads::Context;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("yrd-bench: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match (&args.echo_serve, &args.command) {
        (Some(pki), _) => runtime
            .block_on(echo::serve(pki))
            .map(|()| ExitCode::SUCCESS),
        (None, Some(Command::Load(load))) => runtime
            .block_on(fill::load(load))
            .map(|()| ExitCode::SUCCESS),
        (None, None) => runtime.block_on(bench(args)),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("yrd-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every workload on every store asked for, prints the report, and with `--check` fails
/// unless every row is healthy.
async fn bench(args: Args) -> anyhow::Result<ExitCode> {
    let this = std::env::current_exe().context("locating this binary")?;
    let yrd = match &args.yrd {
        Some(path) => path.clone(),
        None => sibling_yrd(&this)?,
    };
    if let Some(dir) = &args.profile {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut rows = Vec::new();
    for store in args.store.clone() {
        eprintln!("yrd-bench: {} — starting yrd serve", store.as_str());
        match run_store(&args, &this, &yrd, store).await {
            Ok(more) => rows.extend(more),
            Err(e) => {
                eprintln!("yrd-bench: {}: {e:#}", store.as_str());
                if args.check {
                    return Err(e);
                }
            }
        }
    }
    report::ratios(&mut rows);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{}", report::table(&rows));
    }
    if args.check {
        let unhealthy: Vec<&Row> = rows.iter().filter(|r| !r.healthy()).collect();
        let expected = args.store.len();
        if rows.is_empty() || !unhealthy.is_empty() || rows.len() < expected {
            for r in unhealthy {
                eprintln!(
                    "yrd-bench: check failed: {} on {}: {} calls, {} errors, ratio {:?}, first error {:?}",
                    r.workload, r.store, r.calls, r.errors, r.ratio_to_echo, r.first_error
                );
            }
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("yrd-bench: check passed ({} rows)", rows.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// One store: start its server and the echo on the server's PKI, the echo baselines first,
/// then each workload.
async fn run_store(
    args: &Args,
    this: &std::path::Path,
    yrd: &std::path::Path,
    store: StoreKind,
) -> anyhow::Result<Vec<Row>> {
    let data = tempdir()?;
    let server = YrdServer::start(yrd, store, &args.postgres_url, &data.0).await?;
    let outcome = async {
        let echo = EchoServer::start(this, &server.pki)?;
        let ticks = procstat::ticks_per_second();
        let cx = Context::new(
            args.clone(),
            store.as_str(),
            (
                server.target.clone(),
                Watched {
                    pid: server.process.pid(),
                    ticks_per_second: ticks,
                    profile: None,
                },
            ),
            (
                echo.target.clone(),
                Watched {
                    pid: echo.process.pid(),
                    ticks_per_second: ticks,
                    profile: None,
                },
            ),
        );
        eprintln!("yrd-bench: {} — echo baselines", store.as_str());
        let mut rows = cx.echo_baselines().await?;
        for workload in args.expanded_workloads() {
            eprintln!("yrd-bench: {} — {workload:?}", store.as_str());
            let more = cx
                .run(workload)
                .await
                .with_context(|| format!("workload {workload:?}"))?;
            rows.extend(more);
        }
        echo.process.stop(std::time::Duration::from_secs(5));
        anyhow::Ok(rows)
    }
    .await;
    let log = server.log.clone();
    server.stop().await?;
    outcome.with_context(|| format!("the server's log: {}", log.display()))
}

/// `yrd` built next to this binary (`target/<profile>/yrd`); from a test executable in
/// `target/<profile>/deps`, the folder above.
fn sibling_yrd(this: &std::path::Path) -> anyhow::Result<PathBuf> {
    let dir = this.parent().context("this binary's folder")?;
    let candidates = [dir.join("yrd"), dir.join("../yrd")];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "no yrd binary next to {}; build it (cargo build [--release] -p yrd-gateway) or pass --yrd",
                this.display()
            )
        })
}

/// A fresh folder under the system temporary folder, removed when dropped.
struct TempDir(PathBuf);

fn tempdir() -> anyhow::Result<TempDir> {
    let stamp =
        yrd_domain::clock::Clock::now(&yrd_domain::clock::SystemClock).unix_timestamp_nanos();
    let path = std::env::temp_dir().join(format!("yrd-bench-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&path)?;
    Ok(TempDir(path))
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
