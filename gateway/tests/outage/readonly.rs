//! SQLite on a read-only database: `yrd serve`'s database file on a small tmpfs of its own
//! (`YRD_DATABASE_URL`; the data folder with its log and dev PKI stays writable). Under the crash
//! test's load the server is stopped (SIGTERM), the tmpfs remounted read-only (`mount -o
//! remount,ro`), and the server started again on it. It must refuse to start, naming the
//! read-only database file, rather than fail on SQLite's "unable to open database file" (or open
//! it read-only without a word); the database must pass `PRAGMA integrity_check`. Once the
//! tmpfs is writable again the server starts, and the crash test's checker finds every
//! acknowledged write stored once, every unanswered one succeeding when sent again, the feeds
//! complete and the exchange log consistent. Where mounting is not permitted the test is skipped
//! with the reason printed, unless `CI=true`, where it fails.
//!
//! A database that becomes read-only under the running server cannot be made so by a test:
//! Linux refuses to remount a file system read-only (`EBUSY`) while a process holds a file on it
//! open for writing, as the server holds its database; see docs/reliability.md, "Read-only
//! database".

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use yrd_bench::cli::StoreKind;
use yrd_bench::server::YrdServer;

use crate::disk::{integrity, mount_tmpfs};
use crate::ledger::Ledger;
use crate::load::load_until_fault;
use crate::{print_log_tail, run_of, seeded};

/// Acknowledged writes before the stop.
const STOP_AFTER_ACKS: u64 = 30;

/// The scenario of the module documentation.
pub(crate) async fn read_only(binary: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let db_dir = dir.path().join("db");
    std::fs::create_dir(&data)?;
    std::fs::create_dir(&db_dir)?;
    let Some(_mount) = mount_tmpfs(&db_dir, "size=32m", "read-only database")? else {
        return Ok(());
    };
    let db = db_dir.join("yrd.db");
    let url = format!("sqlite://{}", db.display());
    let mut server = YrdServer::start_with(
        binary,
        StoreKind::Sqlite,
        "",
        &data,
        &[("YRD_DATABASE_URL", &url)],
    )
    .await
    .context("starting yrd serve with its database on the tmpfs")?;
    let outcome = stop_and_start_read_only(&mut server, &db_dir, &db).await;
    if outcome.is_err() {
        let _ = remount(&db_dir, "rw");
        print_log_tail(&server);
    }
    let stopped = server.stop().await;
    outcome.and(stopped)
}

async fn stop_and_start_read_only(
    server: &mut YrdServer,
    db_dir: &Path,
    db: &Path,
) -> anyhow::Result<()> {
    let (seed, campaign) = seeded("read-only", "READONLY");
    let mut ledger = Ledger::default();
    let run = run_of(&campaign, seed, STOP_AFTER_ACKS);
    let seen = load_until_fault(server, &mut ledger, run, |server| {
        stop(server)?;
        remount(db_dir, "ro")
    })
    .await
    .context("the load until the server stopped")?;
    let acked = ledger.attempts.iter().filter(|a| a.acked.is_some()).count();
    let unanswered = ledger.attempts.len() - acked;
    integrity(db, true)
        .await
        .context("on the read-only file system")?;

    let started = Instant::now();
    let Err(refused) = server.restart().await else {
        bail!("yrd serve started on a read-only database");
    };
    let log = std::fs::read_to_string(&server.log)?;
    let reason = log
        .lines()
        .rev()
        .find(|line| line.contains("is read-only"))
        .with_context(|| {
            format!("yrd serve did not start on the read-only database ({refused:#}), but its log does not say the database file is read-only")
        })?;
    ensure!(
        reason.contains(&db.display().to_string()),
        "the refusal does not name the database file {}: {reason}",
        db.display()
    );
    eprintln!(
        "read-only database: {acked} writes acknowledged, {unanswered} unanswered at the stop; \
         the start on the read-only tmpfs was refused in {} ms: {reason}",
        started.elapsed().as_millis()
    );
    integrity(db, true)
        .await
        .context("after the refused start")?;

    remount(db_dir, "rw")?;
    server
        .restart()
        .await
        .context("starting again once the database was writable")?;
    let report = crate::check::check(server, &mut ledger, &campaign, 0, &seen)
        .await
        .context("after the database was writable again")?;
    integrity(db, false)
        .await
        .context("after the database was writable again")?;
    eprintln!(
        "read-only database: writable again, started: {report}; integrity_check ok; \
         acknowledged by kind: {:?}",
        ledger.acked_by_kind()
    );
    Ok(())
}

/// Stops the server as an operator does (SIGTERM: calls in flight finish, the database is
/// checkpointed and closed) and waits until it exited.
fn stop(server: &mut YrdServer) -> anyhow::Result<()> {
    let pid = server.process.pid().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
    ensure!(sent.success(), "kill -TERM {pid} failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.is_running() {
        ensure!(
            Instant::now() < deadline,
            "yrd serve (pid {pid}) did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `mount -o remount,<mode>` of the tmpfs at `at` (`ro` or `rw`).
fn remount(at: &Path, mode: &str) -> anyhow::Result<()> {
    let out = Command::new("mount")
        .args(["-o", &format!("remount,{mode}")])
        .arg(at)
        .output()?;
    ensure!(
        out.status.success(),
        "mount -o remount,{mode} {} failed: {}",
        at.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}
