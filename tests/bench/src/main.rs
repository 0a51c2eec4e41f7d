//! `yrd-bench`: the throughput instrument of the exchange. The code lives in the library of
//! this package (`src/lib.rs`), which the crash test of `yrd serve` shares
//! (`gateway/tests/crash.rs`); this is its command line. How to run it and the figures
//! measured: `docs/performance.md`.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

use yrd_bench::cli::{Args, Command, StoreKind};
use yrd_bench::load::Watched;
use yrd_bench::report::Row;
use yrd_bench::server::{EchoServer, YrdServer};
use yrd_bench::workloads::Context;
use yrd_bench::{echo, fill, procstat, report, soak};

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
        // SQLite is one process owning its file: replicas are a PostgreSQL deployment.
        let counts = match store {
            StoreKind::Sqlite => vec![1],
            StoreKind::Postgres => args.replicas.clone(),
        };
        for replicas in counts {
            eprintln!(
                "yrd-bench: {} — starting yrd serve ({replicas} replica(s))",
                store.as_str()
            );
            match run_store(&args, &this, &yrd, store, replicas).await {
                Ok(more) => rows.extend(more),
                Err(e) => {
                    eprintln!("yrd-bench: {}: {e:#}", store.as_str());
                    if args.check {
                        return Err(e);
                    }
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

/// One store: start its server (and its other replicas) and the echo on the server's PKI, the
/// echo baselines first, then each workload.
async fn run_store(
    args: &Args,
    this: &std::path::Path,
    yrd: &std::path::Path,
    store: StoreKind,
    replicas: u32,
) -> anyhow::Result<Vec<Row>> {
    let data = tempdir()?;
    let server = YrdServer::start(yrd, store, &args.postgres_url, &data.0).await?;
    let mut others = Vec::new();
    let mut other_dirs = Vec::new();
    let outcome = async {
        for _ in 1..replicas {
            let dir = tempdir()?;
            others.push(server.start_replica(&dir.0).await?);
            other_dirs.push(dir);
        }
        let echo = EchoServer::start(this, &server.pki)?;
        let ticks = procstat::ticks_per_second();
        // The report names the replica count beside the store when there are several.
        let label: &'static str = match replicas {
            1 => store.as_str(),
            n => Box::leak(format!("{}×{n}", store.as_str()).into_boxed_str()),
        };
        let targets: Vec<_> = others.iter().map(|r| r.target.clone()).collect();
        let cx = Context::new(
            args.clone(),
            label,
            (
                server.target.spread_over(&targets),
                Watched {
                    pid: server.process.pid(),
                    replicas: others.iter().map(|r| r.process.pid()).collect(),
                    ticks_per_second: ticks,
                    profile: None,
                },
            ),
            (
                echo.target.clone(),
                Watched {
                    pid: echo.process.pid(),
                    replicas: Vec::new(),
                    ticks_per_second: ticks,
                    profile: None,
                },
            ),
        );
        eprintln!("yrd-bench: {} — echo baselines", store.as_str());
        let mut rows = cx.echo_baselines().await?;
        if let Some(length) = args.soak {
            eprintln!("yrd-bench: {} — soak for {length:?}", store.as_str());
            rows.extend(soak::run(&cx, server.process.pid(), length, args.sample_every).await?);
        }
        for workload in args
            .soak
            .map_or_else(|| args.expanded_workloads(), |_| Vec::new())
        {
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
    for replica in others {
        replica.stop().await?;
    }
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
