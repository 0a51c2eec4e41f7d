//! Backups of the embedded SQLite store, and the check that a copy is whole.
//!
//! [`backup_sqlite`] copies a live database with `VACUUM INTO`: SQLite writes the copy from one
//! read transaction, so it is a consistent snapshot taken while the server keeps committing (in
//! WAL mode a reader never blocks the writer), and the copy is compact. The source is opened
//! read-only and never migrated, so a backup tool newer than the running server cannot change
//! its schema.
//!
//! [`verify_copy`] opens a copy and checks it the way an auditor would check the log
//! (`docs/operations.md` "Backups"): SQLite's own `integrity_check`, then every sequenced leaf of
//! the exchange log re-hashed from its stored canonical input and re-read from its columns, the
//! RFC 6962 root recomputed from those leaf hashes, and that root compared with the latest
//! signed tree head the copy holds and with the root of the copy's stored subtrees. PostgreSQL
//! is backed up with its own tools; the same log check is then `yrd audit verify` against the
//! restored database (`docs/operations.md`).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection};
use yrd_domain::merkle::{self, Frontier, Hash};

use crate::{AuditError, Backend, Store, StoreError, StoreOptions};

/// Leaves read per query while the log is re-hashed.
const VERIFY_PAGE: u64 = 4096;

/// Why a backup could not be made, or why a copy does not verify.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The database is not SQLite (PostgreSQL is backed up with `pg_dump` or
    /// `pg_basebackup`, see `docs/operations.md`).
    #[error(
        "yrd backup copies the embedded SQLite store; {url} is {backend}: back it up with \
         pg_dump or pg_basebackup and check the restored log with `yrd audit verify` \
         (docs/operations.md \"Backups\")"
    )]
    NotSqlite {
        /// The database URL, password redacted.
        url: String,
        /// The backend it names.
        backend: &'static str,
    },
    /// The source database file does not exist.
    #[error("no SQLite database at {0}")]
    NoSource(PathBuf),
    /// The destination exists; a backup never replaces a file.
    #[error("{0} already exists; a backup never replaces a file, choose another --out")]
    DestinationExists(PathBuf),
    /// The store failed underneath (opening, copying, reading the copy).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The copy's Merkle tree could not be read or computed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// SQLite's `integrity_check` found damage in the copy.
    #[error("the copy is damaged: SQLite integrity_check reports: {0}")]
    Damaged(String),
    /// The copy's log does not verify.
    #[error("the copy's exchange log does not verify: {0}")]
    Log(String),
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        BackupError::Store(e.into())
    }
}

/// What a verified copy holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCopy {
    /// Sequenced leaves, each re-hashed; the size of the latest signed tree head.
    pub tree_size: u64,
    /// The root recomputed from the leaves, equal to the signed head's.
    pub root: Hash,
    /// Leaves appended but not yet sequenced when the copy was taken (a later sequencer run
    /// on a restored database sequences them).
    pub unsequenced: u64,
}

/// The file a `sqlite://PATH[?…]` URL names.
pub fn sqlite_path(url: &str) -> Result<PathBuf, BackupError> {
    let backend = Backend::from_url(url)?;
    if backend != Backend::Sqlite {
        return Err(BackupError::NotSqlite {
            url: crate::db::redact_url(url),
            backend: backend.as_str(),
        });
    }
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    Ok(PathBuf::from(path))
}

/// Copies the SQLite database at `source_url` into the new file `out`, consistently, while the
/// database stays in use (see the module docs). `out` must not exist.
pub async fn backup_sqlite(source_url: &str, out: &Path) -> Result<(), BackupError> {
    let source = sqlite_path(source_url)?;
    if !source.is_file() {
        return Err(BackupError::NoSource(source));
    }
    if out.exists() {
        return Err(BackupError::DestinationExists(out.to_owned()));
    }
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnectOptions::from_str(&format!("sqlite://{}?mode=ro", source.display()))?
        .disable_statement_logging()
        .connect()
        .await?;
    // SQLite waits this long for a writer's lock instead of answering "busy" at once.
    sqlx::query("PRAGMA busy_timeout = 5000")
        .execute(&mut conn)
        .await?;
    let copied = sqlx::query("VACUUM INTO $1")
        .bind(out.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await;
    conn.close().await?;
    copied?;
    Ok(())
}

/// Opens the copy at `path` and checks it whole (see the module docs); the first problem found
/// is the error.
pub async fn verify_copy(path: &Path) -> Result<VerifiedCopy, BackupError> {
    if !path.is_file() {
        return Err(BackupError::NoSource(path.to_owned()));
    }
    integrity_check(path).await?;
    let store = Store::open(
        &format!("sqlite://{}", path.display()),
        &StoreOptions::default(),
    )
    .await?;
    let verified = verify_log(&store).await;
    store.close().await;
    verified
}

/// SQLite's `PRAGMA integrity_check` on a read-only connection: `ok`, or the damage found.
async fn integrity_check(path: &Path) -> Result<(), BackupError> {
    sqlx::any::install_default_drivers();
    let connected = AnyConnectOptions::from_str(&format!("sqlite://{}?mode=ro", path.display()))?
        .disable_statement_logging()
        .connect()
        .await;
    let mut conn = match connected {
        Ok(conn) => conn,
        // A copy so damaged that SQLite will not open it at all.
        Err(e) => return Err(BackupError::Damaged(e.to_string())),
    };
    let rows: Result<Vec<String>, sqlx::Error> = sqlx::query_scalar("PRAGMA integrity_check(20)")
        .fetch_all(&mut conn)
        .await;
    conn.close().await?;
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(()),
        Ok(rows) => Err(BackupError::Damaged(rows.join("; "))),
        Err(e) => Err(BackupError::Damaged(e.to_string())),
    }
}

/// Re-hashes every sequenced leaf, recomputes the root and compares it with the latest signed
/// tree head and with the stored subtrees.
async fn verify_log(store: &Store) -> Result<VerifiedCopy, BackupError> {
    let size = store.sequenced_size().await?;
    let head = store.latest_tree_head().await?;
    let (head_size, head_root) = match &head {
        Some(h) => (h.tree_size, h.root),
        None => (0, merkle::empty_root()),
    };
    if head_size != size {
        return Err(BackupError::Log(format!(
            "{size} leaves are sequenced but the latest signed tree head covers {head_size}"
        )));
    }
    let mut frontier = Frontier::new();
    let mut start = 0;
    while start < size {
        let end = (start + VERIFY_PAGE).min(size);
        let page = store.leaves_range(start, end).await?;
        for leaf in &page {
            let expected_index = frontier.size();
            if leaf.index != expected_index {
                return Err(BackupError::Log(format!(
                    "leaf index {expected_index} is missing (the next stored leaf is {})",
                    leaf.index
                )));
            }
            if merkle::leaf_hash(leaf.leaf_input.as_bytes()) != leaf.leaf_hash {
                return Err(BackupError::Log(format!(
                    "leaf {} does not hash to its stored leaf hash {}",
                    leaf.index, leaf.leaf_hash
                )));
            }
            if leaf.leaf.leaf_input() != leaf.leaf_input.as_bytes() {
                return Err(BackupError::Log(format!(
                    "leaf {}'s columns differ from the canonical input its hash covers",
                    leaf.index
                )));
            }
            frontier.append(leaf.leaf_hash);
        }
        if page.len() as u64 != end - start {
            return Err(BackupError::Log(format!(
                "leaf index {} is missing",
                frontier.size()
            )));
        }
        start = end;
    }
    let recomputed = frontier.root();
    if recomputed != head_root {
        return Err(BackupError::Log(format!(
            "the root recomputed from the {size} leaves is {recomputed}, the latest signed tree \
             head says {head_root}"
        )));
    }
    let stored = store.root_at(size).await?;
    if stored != head_root {
        return Err(BackupError::Log(format!(
            "the stored subtrees give the root {stored} for size {size}, the signed tree head \
             says {head_root}"
        )));
    }
    let unsequenced: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_leaves WHERE leaf_index IS NULL")
            .fetch_one(&store.read)
            .await?;
    Ok(VerifiedCopy {
        tree_size: size,
        root: recomputed,
        unsequenced: u64::try_from(unsequenced).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/yrd/yrd.db?mode=rwc").ok(),
            Some(PathBuf::from("/var/lib/yrd/yrd.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://yrd-data/yrd.db").ok(),
            Some(PathBuf::from("yrd-data/yrd.db"))
        );
        let err = sqlite_path("postgres://yrd:secret@db/yrd").expect_err("not SQLite");
        let text = err.to_string();
        assert!(
            text.contains("pg_dump") && text.contains("yrd:***@db") && !text.contains("secret"),
            "{text}"
        );
    }
}
