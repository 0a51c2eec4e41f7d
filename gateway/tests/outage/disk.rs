//! SQLite on a full disk: `yrd serve`'s data folder on a small tmpfs of its own (`mount -t
//! tmpfs -o size=…`, root only), filled with a file under the crash test's load until every
//! writer is refused. Every refusal is `RESOURCE_EXHAUSTED` naming the disk; the process stays
//! up; the database passes `PRAGMA integrity_check` while full; and once the file is removed,
//! without a restart, the crash test's checker finds every acknowledged write stored once, each
//! refused one succeeding when sent again, the feeds complete and the exchange log consistent.
//! Where mounting is not permitted the test is skipped with the reason printed, unless
//! `CI=true`, where it fails.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail, ensure};
use sqlx::Connection as _;
use yrd_bench::cli::StoreKind;
use yrd_bench::server::YrdServer;

use crate::ledger::Ledger;
use crate::load::load_until_fault;
use crate::{print_log_tail, run_of, seeded};

/// The file system's size: the store, its WAL, the dev PKI and the server's log, with room.
const TMPFS_SIZE: &str = "size=48m";

/// Acknowledged writes before the disk is filled.
const FILL_AFTER_ACKS: u64 = 30;

/// A tmpfs mounted for the test; unmounted (lazily, in case a file is still open) when dropped.
pub(crate) struct Mount(pub(crate) PathBuf);

/// Mounts a tmpfs of `size` (`size=48m`) on the folder `at`; `None` when mounting is not
/// permitted here (the reason printed), unless `CI=true`, where that fails.
pub(crate) fn mount_tmpfs(at: &Path, size: &str, test: &str) -> anyhow::Result<Option<Mount>> {
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", size, "tmpfs"])
        .arg(at)
        .output();
    let refused = match &mounted {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = refused {
        ensure!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but mounting a tmpfs for the {test} test failed: {why}"
        );
        eprintln!("skipped: the {test} test mounts a small tmpfs, which failed here: {why}");
        return Ok(None);
    }
    Ok(Some(Mount(at.to_owned())))
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The scenario of the module documentation.
pub(crate) async fn full_disk(binary: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir(&data)?;
    let Some(_mount) = mount_tmpfs(&data, TMPFS_SIZE, "full-disk")? else {
        return Ok(());
    };
    let mut server = YrdServer::start(binary, StoreKind::Sqlite, "", &data)
        .await
        .context("starting yrd serve on the tmpfs")?;
    let filler = data.join("filler");
    let outcome = fill_and_recover(&mut server, &data, &filler).await;
    if outcome.is_err() {
        let _ = std::fs::remove_file(&filler);
        print_log_tail(&server);
    }
    let stopped = server.stop().await;
    outcome.and(stopped)
}

async fn fill_and_recover(
    server: &mut YrdServer,
    data: &Path,
    filler: &Path,
) -> anyhow::Result<()> {
    let (seed, campaign) = seeded("full-disk", "DISKFULL");
    let mut ledger = Ledger::default();
    let run = run_of(&campaign, seed, FILL_AFTER_ACKS);
    let seen = load_until_fault(server, &mut ledger, run, |_| fill(filler))
        .await
        .context("the load until the disk was full")?;
    ensure!(server.is_running(), "yrd serve exited when its disk filled");
    let acked = ledger.attempts.iter().filter(|a| a.acked.is_some()).count();
    let mut refused = 0;
    for attempt in ledger.attempts.iter().filter(|a| a.acked.is_none()) {
        let error = attempt.error.as_deref().unwrap_or_default();
        ensure!(
            error.starts_with("ResourceExhausted:") && error.contains("disk"),
            "write {} on the full disk failed with {error:?}, not RESOURCE_EXHAUSTED naming the \
             disk",
            attempt.request.id()
        );
        refused += 1;
    }
    eprintln!("full disk: {acked} writes acknowledged, then {refused} refused: the disk is full");
    let db = data.join("yrd.db");
    integrity(&db, false)
        .await
        .context("while the disk is full")?;

    std::fs::remove_file(filler)?;
    let report = crate::check::check(server, &mut ledger, &campaign, 0, &seen)
        .await
        .context("after space returned")?;
    integrity(&db, false)
        .await
        .context("after space returned")?;
    eprintln!("full disk: space returned, no restart: {report}; integrity_check ok");
    Ok(())
}

/// Writes zeros to `path` until the file system refuses (`ENOSPC`), flushed.
fn fill(path: &Path) -> anyhow::Result<()> {
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = file.write_all(&chunk) {
            ensure!(
                e.kind() == std::io::ErrorKind::StorageFull,
                "filling the disk failed otherwise: {e}"
            );
            break;
        }
    }
    // What did not fit was refused; what did is on the tmpfs already.
    let _ = file.sync_all();
    Ok(())
}

/// `PRAGMA integrity_check` of the SQLite database at `path` (beside the running server: WAL
/// admits a reader), read-only. On a read-only file system with no server running, `immutable`:
/// SQLite cannot open a WAL database there otherwise (it would create the `-shm` file).
pub(crate) async fn integrity(path: &Path, immutable: bool) -> anyhow::Result<()> {
    let url = format!(
        "sqlite://{}?mode=ro{}",
        path.display(),
        if immutable { "&immutable=true" } else { "" }
    );
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .with_context(|| format!("opening {} read-only", path.display()))?;
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    let lines: Vec<String> = rows.into_iter().map(|(line,)| line).collect();
    if lines != ["ok"] {
        bail!("PRAGMA integrity_check of {}: {lines:?}", path.display());
    }
    Ok(())
}
