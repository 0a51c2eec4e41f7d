//! Throw-away databases for tests: a fresh SQLite file in a temporary folder, or a fresh
//! PostgreSQL database created on the server named by `YRD_TEST_POSTGRES_URL`.
//!
//! Every test gets its own database, so tests never depend on one another's rows or order.
//! Without `YRD_TEST_POSTGRES_URL` the PostgreSQL half says it was skipped and why; with
//! `YRD_TEST_REQUIRE_POSTGRES=1` (as CI sets it) a missing or unreachable server fails the test
//! instead, so that half can never skip silently.

use std::str::FromStr;

use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

/// The variable naming the PostgreSQL server tests create their databases on, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_URL_VAR: &str = "YRD_TEST_POSTGRES_URL";
/// Set to `1` to make a missing PostgreSQL a failure rather than a skip.
pub const REQUIRE_POSTGRES_VAR: &str = "YRD_TEST_REQUIRE_POSTGRES";
/// Every test database's name starts with this, so leftovers are easy to find and drop.
pub const TEST_DATABASE_PREFIX: &str = "yrd_test_";

/// Opens a store on `db` with the default options (panics when it cannot: a test).
pub async fn open(db: &TestDatabase) -> crate::Store {
    match crate::Store::open(&db.url, &crate::StoreOptions::default()).await {
        Ok(store) => store,
        Err(e) => panic!("cannot open the test store at {}: {e}", db.url),
    }
}

/// Runs each named case `async fn name(store: Store)` as two tests, `name::sqlite` and
/// `name::postgres`, each on a fresh database (the PostgreSQL one skips or fails as
/// [`TestDatabase::postgres`] says).
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::testing::TestDatabase::sqlite();
                    let store = $crate::testing::open(&db).await;
                    super::$case(store.clone()).await;
                    store.close().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(db) = $crate::testing::TestDatabase::postgres().await else {
                        return;
                    };
                    let store = $crate::testing::open(&db).await;
                    super::$case(store.clone()).await;
                    store.close().await;
                }
            }
        )*
    };
}

/// A database that exists for one test and is dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL to open the store with.
    pub url: String,
    /// Keeps a SQLite file's folder alive.
    _dir: Option<tempfile::TempDir>,
    /// For PostgreSQL: the server URL and the database to drop at the end.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh SQLite database in a new temporary folder.
    pub fn sqlite() -> TestDatabase {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("cannot make a temporary folder for a test database: {e}"),
        };
        let url = format!("sqlite://{}", dir.path().join("yrd.db").display());
        TestDatabase {
            url,
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` (after saying why on stderr) when no server is
    /// configured and none is required.
    pub async fn postgres() -> Option<TestDatabase> {
        let required = std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v == "1");
        let Ok(server) = std::env::var(POSTGRES_URL_VAR) else {
            if required {
                panic!("{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set");
            }
            eprintln!(
                "skipped: the PostgreSQL half of this test needs {POSTGRES_URL_VAR} \
                 (e.g. postgres://postgres@127.0.0.1:5432/test)"
            );
            return None;
        };
        let name = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
        if let Err(e) = admin_execute(&server, &format!("CREATE DATABASE {name}")).await {
            if required {
                panic!("cannot create a test database on {server}: {e}");
            }
            eprintln!("skipped: PostgreSQL at {server} is not usable: {e}");
            return None;
        }
        let url = with_database(&server, &name);
        Some(TestDatabase {
            url,
            _dir: None,
            postgres: Some((server, name)),
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async; a short-lived thread with its own runtime does the
        // asynchronous DROP DATABASE without blocking the test's runtime.
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = runtime.block_on(admin_execute(&server, &sql)) {
                    eprintln!("could not drop test database {name}: {e}");
                }
            }
        });
        let _ = handle.join();
    }
}

async fn admin_execute(server: &str, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(server)?.disable_statement_logging();
    let mut conn = options.connect().await?;
    conn.execute(sql).await?;
    conn.close().await
}

/// The server URL with its database path replaced by `name`.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_swapped_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://h:5432?sslmode=disable", "x"),
            "postgres://h:5432/x?sslmode=disable"
        );
    }
}
