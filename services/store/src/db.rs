//! Opening a store: the backend chosen by the URL, connection settings, migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Connection as _, Executor};

use crate::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file, one writer.
    Sqlite,
    /// The production store, shared by several replicas.
    Postgres,
}

impl Backend {
    /// The backend a database URL selects.
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }

    /// The backend's name, for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Pool and timeout settings of a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the read pool (and the write pool on PostgreSQL).
    pub max_connections: u32,
    /// How long a call waits for a free connection before it fails.
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a lock held by another process before it answers "busy".
    pub sqlite_busy_timeout: Duration,
    /// The most writes one group-committed transaction holds (1: a transaction per write).
    pub max_batch: usize,
    /// SQLite's page cache per connection, in KiB; `None` keeps SQLite's default (2 MiB). A
    /// bulk load (`Store::load_results`) into a large database needs far more: every result
    /// adds entries at scattered places of a dozen indexes.
    pub sqlite_cache_kib: Option<u32>,
    /// On PostgreSQL, how many group-committed transactions may run at once, each on a pooled
    /// connection of its own (at least 1, fewer than `max_connections`, so that reads always
    /// find a connection). SQLite, which admits one writer, always runs one.
    pub max_flushes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
            max_batch: crate::write::queue::MAX_BATCH,
            sqlite_cache_kib: None,
            max_flushes: crate::write::queue::MAX_FLUSHES,
        }
    }
}

/// The exchange's persistence. Cheap to clone: the pools are shared.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads; on PostgreSQL also writes.
    pub(crate) read: AnyPool,
    /// Writes. On SQLite a pool of exactly one connection, because SQLite admits one writer at
    /// a time and a second would only wait on the file lock (or fail with "busy" when a
    /// deferred transaction tries to upgrade).
    pub(crate) write: AnyPool,
    backend: Backend,
    /// Feed wake-ups on this replica.
    pub(crate) feed: std::sync::Arc<crate::feed::FeedSignals>,
    /// The database URL, for connections outside the pools (PostgreSQL LISTEN).
    pub(crate) url: String,
    /// The queue of the group committer (docs/architecture.md "Storage").
    pub(crate) batcher: std::sync::Arc<crate::write::queue::Batcher>,
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` creates the file when missing;
    /// `postgres://…`), then brings its schema up to date.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        if options.max_flushes == 0 {
            return Err(StoreError::InvalidOptions(
                "max_flushes is 0; it must be at least 1".into(),
            ));
        }
        let store = match backend {
            Backend::Sqlite => {
                refuse_read_only(url)?;
                let url = sqlite_url_with_create(url);
                let connect = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
                let busy_ms = options.sqlite_busy_timeout.as_millis();
                let cache_kib = options.sqlite_cache_kib;
                let pool = |max: u32| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(options.acquire_timeout)
                        .after_connect(move |conn, _meta| {
                            Box::pin(async move {
                                // WAL lets readers proceed while the writer commits;
                                // synchronous=FULL makes every acknowledged commit durable.
                                conn.execute("PRAGMA journal_mode = WAL").await?;
                                conn.execute("PRAGMA synchronous = FULL").await?;
                                conn.execute("PRAGMA foreign_keys = ON").await?;
                                conn.execute(&*format!("PRAGMA busy_timeout = {busy_ms}"))
                                    .await?;
                                if let Some(kib) = cache_kib {
                                    conn.execute(&*format!("PRAGMA cache_size = -{kib}"))
                                        .await?;
                                }
                                Ok(())
                            })
                        })
                        .after_release(|conn, _meta| {
                            Box::pin(async move {
                                // When a statement fails for a full disk or an I/O error, SQLite
                                // rolls the transaction back itself; the driver's own ROLLBACK
                                // then fails, and it goes on counting the transaction open, so
                                // every later `BEGIN` on this connection would be refused. The
                                // ping runs the driver's queued rollback; a connection still in
                                // a transaction after it is closed, and the pool opens a fresh
                                // one (docs/reliability.md, "Full disk").
                                conn.ping().await?;
                                Ok(!conn.is_in_transaction())
                            })
                        })
                };
                let write = pool(1).connect_with(connect.clone()).await?;
                SQLITE_MIGRATIONS.run(&write).await?;
                let read = pool(options.max_connections.max(1))
                    .connect_with(connect)
                    .await?;
                Store {
                    read,
                    write,
                    backend,
                    feed: crate::feed::signals(),
                    url: url.clone(),
                    batcher: std::sync::Arc::new(crate::write::queue::Batcher::new(
                        options.max_batch,
                        1,
                    )),
                }
            }
            Backend::Postgres => {
                let connections = options.max_connections.max(2);
                if options.max_flushes >= connections as usize {
                    return Err(StoreError::InvalidOptions(format!(
                        "max_flushes is {}; on PostgreSQL it must be below max_connections \
                         ({connections}), so that reads always find a connection",
                        options.max_flushes
                    )));
                }
                let connect = AnyConnectOptions::from_str(url)?.disable_statement_logging();
                let pool = AnyPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(options.acquire_timeout)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // The store's queries are short index reads that stop after a
                            // page; a parallel plan's worker start costs more than it saves
                            // (a category search at 1,000,000 results: 36 ms parallel, 9 ms
                            // serial; docs/performance.md "Search at 1,000,000 results").
                            conn.execute("SET max_parallel_workers_per_gather = 0")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(connect)
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Store {
                    read: pool.clone(),
                    write: pool,
                    backend,
                    feed: crate::feed::signals(),
                    url: url.to_owned(),
                    batcher: std::sync::Arc::new(crate::write::queue::Batcher::new(
                        options.max_batch,
                        options.max_flushes,
                    )),
                }
            }
        };
        tracing::info!(backend = backend.as_str(), "store opened and migrated");
        Ok(store)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes every connection, waiting for those in use to come back.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// Refuses a SQLite database file that exists but cannot be opened for writing (a read-only
/// file or file system). SQLite itself would open it read-only without a word, and the start
/// would fail later on a less clear error, or not at all until the first call
/// (docs/reliability.md, "Read-only database"). A URL that asks for read-only access
/// (`mode=ro`), an in-memory database and a file yet to be created are left to SQLite.
fn refuse_read_only(url: &str) -> Result<(), StoreError> {
    if url.contains("mode=ro") || url.contains(":memory:") {
        return Ok(());
    }
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || !std::path::Path::new(path).is_file() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(source)
            if matches!(
                source.kind(),
                std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            Err(StoreError::ReadOnly {
                path: path.to_owned(),
                source,
            })
        }
        // Anything else (a file that vanished meanwhile) is SQLite's to report.
        Err(_) => Ok(()),
    }
}

/// SQLite opens read-write without creating by default; the exchange creates its file on first
/// start, so `mode=rwc` is added unless the URL already says otherwise.
fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// A URL for logs and errors, with any password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(matches!(
            Backend::from_url("mysql://u:secret@h/db"),
            Err(StoreError::UnsupportedUrl(u)) if u == "mysql://u:***@h/db"
        ));
    }

    #[test]
    fn a_read_only_database_file_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("ro.db");
        std::fs::write(&path, b"").expect("a file");
        let url = format!("sqlite://{}", path.display());
        assert!(
            refuse_read_only(&url).is_ok(),
            "a writable file is accepted"
        );
        assert!(refuse_read_only(&format!("{url}.missing")).is_ok());
        let mut permissions = std::fs::metadata(&path).expect("metadata").permissions();
        permissions.set_readonly(true);
        std::fs::set_permissions(&path, permissions).expect("chmod");
        match refuse_read_only(&url) {
            Err(StoreError::ReadOnly { path: named, .. }) => {
                assert_eq!(named, path.display().to_string())
            }
            // Root writes a read-only file all the same: nothing to refuse there.
            Ok(()) => assert!(
                std::fs::OpenOptions::new().write(true).open(&path).is_ok(),
                "a read-only file was accepted"
            ),
            Err(e) => panic!("unexpected error: {e}"),
        }
        assert!(refuse_read_only(&format!("{url}?mode=ro")).is_ok());
    }

    #[test]
    fn sqlite_url_gets_create_mode() {
        assert_eq!(
            sqlite_url_with_create("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_with_create("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
    }
}
