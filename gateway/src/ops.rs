//! The operator commands that work on the store directly: `yrd migrate` (the schema brought up
//! to date, nothing else — the one-shot step before replicas start) and `yrd backup` (an online
//! copy of the SQLite store, verified; `docs/operations.md` "Backups").
//!
//! Both read the database location exactly as `yrd serve` does, from [`Settings`].

use std::io::Write;

use anyhow::Context as _;
use yrd_store::backup::{VerifiedCopy, backup_sqlite, verify_copy};
use yrd_store::db::redact_url;
use yrd_store::{Store, StoreOptions};

use crate::cli::ops::{BackupArgs, StoreArgs};
use crate::server::config::{Overrides, Settings};

/// The settings `yrd serve` would run with, as far as they locate the store.
fn settings(args: &StoreArgs) -> anyhow::Result<Settings> {
    let overrides = Overrides {
        data_dir: args.data_dir.clone(),
        listen: None,
        database_url: args.database_url.clone(),
    };
    Ok(Settings::load(args.config.as_deref(), &overrides)?)
}

/// `yrd migrate`: opens the store, which applies the migrations it lacks, and closes it.
/// Replicas started afterwards find the schema current (their own check is then a no-op).
pub async fn migrate(args: &StoreArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let settings = settings(args)?;
    let url = settings.effective_database_url();
    if settings.database_url.is_empty() {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    }
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .with_context(|| format!("cannot migrate {}", redact_url(&url)))?;
    let backend = store.backend().as_str();
    store.close().await;
    writeln!(out, "{backend} store {} is migrated", redact_url(&url))?;
    Ok(())
}

/// `yrd backup`: copies the SQLite store into `--out` while it serves and verifies the copy,
/// or (`--check`) verifies an existing copy.
pub async fn backup(args: &BackupArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let (copy, made) = match (&args.out, &args.check) {
        (_, Some(check)) => (check.clone(), false),
        (Some(target), None) => {
            let settings = settings(&args.store)?;
            let url = settings.effective_database_url();
            backup_sqlite(&url, target)
                .await
                .with_context(|| format!("cannot back up into {}", target.display()))?;
            (target.clone(), true)
        }
        (None, None) => anyhow::bail!("give --out FILE to make a copy, or --check FILE"),
    };
    let verified = verify_copy(&copy).await.with_context(|| {
        if made {
            format!(
                "the copy {} was written but does NOT verify",
                copy.display()
            )
        } else {
            format!("{} does not verify", copy.display())
        }
    })?;
    report(&copy, made, &verified, out)?;
    Ok(())
}

fn report(
    copy: &std::path::Path,
    made: bool,
    verified: &VerifiedCopy,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    if made {
        writeln!(out, "backup       {} written", copy.display())?;
    }
    writeln!(out, "integrity    SQLite integrity_check: ok")?;
    writeln!(
        out,
        "exchange log {} leaves re-hashed; root {} recomputed equals the latest signed tree head \
         and the stored subtrees",
        verified.tree_size, verified.root
    )?;
    if verified.unsequenced > 0 {
        writeln!(
            out,
            "pending      {} leaves not yet sequenced at the copy's moment (sequenced after a restore)",
            verified.unsequenced
        )?;
    }
    Ok(())
}
