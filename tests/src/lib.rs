//! The end-to-end harness: starts the real server ([`yrd_gateway::Application`], the same thing
//! `yrd serve` runs) on a free port with a throw-away PKI and database, and hands tests a client
//! per agency and profile.
//!
//! Every test gets its own server, data folder and database, so tests never share state or
//! depend on order. `on_both_stores!` runs one scenario on SQLite and on PostgreSQL; the
//! PostgreSQL half says it was skipped when `YRD_TEST_POSTGRES_URL` is unset (CI sets it and
//! `YRD_TEST_REQUIRE_POSTGRES=1`, so there it can never skip).
//!
//! # Layout
//!
//! * [`TestApp`] — one running server.
//! * [`raw_tls`] — a bare rustls client for the handshake matrix.

#![forbid(unsafe_code)]

pub mod raw_tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use yrd_domain::clock::{Clock, ManualClock, SystemClock};
use yrd_domain::{AgencyId, Profile};
use yrd_gateway::client::{ClientFiles, connect};
use yrd_gateway::config::Settings;
use yrd_gateway::{Application, StartupError};
use yrd_store::Store;
use yrd_store::testing::TestDatabase;

/// Which store a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded default.
    Sqlite,
    /// PostgreSQL, from `YRD_TEST_POSTGRES_URL`.
    Postgres,
}

/// The five Delta agencies, by the names tests use.
pub const SHANGHAI: &str = "310000-SAMR";
/// Jiangsu.
pub const JIANGSU: &str = "320000-AMR";
/// Zhejiang.
pub const ZHEJIANG: &str = "330000-AMR";
/// Anhui.
pub const ANHUI: &str = "340000-AMR";
/// Shandong.
pub const SHANDONG: &str = "370000-AMR";

/// A running server for one test.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its dev PKI folder.
    pub pki_dir: PathBuf,
    /// Which store it runs on.
    pub store_kind: StoreKind,
    /// The store, for assertions on what was written.
    pub store: Store,
    /// The clock the server reads; tests move it by hand when built with one.
    pub clock: Arc<dyn Clock>,
    stop: CancellationToken,
    server: Option<JoinHandle<Result<(), StartupError>>>,
    _data_dir: tempfile::TempDir,
    _database: TestDatabase,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("addr", &self.addr)
            .field("store_kind", &self.store_kind)
            .finish_non_exhaustive()
    }
}

impl TestApp {
    /// Starts a server on `kind`, or `None` when that store is not available here (the
    /// PostgreSQL half without a configured server; the reason is printed).
    pub async fn spawn(kind: StoreKind) -> Option<TestApp> {
        Self::spawn_with(kind, |_| {}, Arc::new(SystemClock)).await
    }

    /// Starts a server whose clock stands at `start` and moves only when the test says.
    pub async fn spawn_with_manual_clock(
        kind: StoreKind,
        start: OffsetDateTime,
    ) -> Option<(TestApp, Arc<ManualClock>)> {
        let clock = Arc::new(ManualClock::new(start));
        let app = Self::spawn_with(kind, |_| {}, clock.clone()).await?;
        Some((app, clock))
    }

    /// Starts a server with settings adjusted by `configure`.
    pub async fn spawn_with(
        kind: StoreKind,
        configure: impl FnOnce(&mut Settings),
        clock: Arc<dyn Clock>,
    ) -> Option<TestApp> {
        init_tracing();
        let database = match kind {
            StoreKind::Sqlite => TestDatabase::sqlite(),
            StoreKind::Postgres => TestDatabase::postgres().await?,
        };
        let data_dir = tempfile::tempdir().expect("temporary data folder");
        let mut settings = Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.path().to_owned(),
            database_url: database.url.clone(),
            ..Settings::default()
        };
        configure(&mut settings);
        let app = Application::build_with_clock(settings, clock.clone())
            .await
            .expect("the test server builds");
        let addr = app.local_addr();
        let store = app.store().clone();
        let pki_dir = app
            .dev_pki()
            .expect("test servers use the dev PKI")
            .to_owned();
        let stop = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
        Some(TestApp {
            addr,
            pki_dir,
            store_kind: kind,
            store,
            clock,
            stop,
            server: Some(server),
            _data_dir: data_dir,
            _database: database,
        })
    }

    /// The dev PKI files of `agency` with `profile`.
    pub fn client_files(&self, agency: &str, profile: Profile) -> ClientFiles {
        ClientFiles::dev(&self.pki_dir, &agency_id(agency), profile)
    }

    /// An mTLS channel presenting `agency`'s dev certificate for `profile`.
    pub async fn channel(&self, agency: &str, profile: Profile) -> Channel {
        self.channel_with(&self.client_files(agency, profile)).await
    }

    /// An mTLS channel presenting the given files.
    pub async fn channel_with(&self, files: &ClientFiles) -> Channel {
        connect(&self.addr.to_string(), "localhost", files)
            .await
            .expect("connect to the test server")
    }

    /// The exchange CA, loaded from the dev PKI, for tests that mint special certificates.
    pub fn ca(&self) -> yrd_pki::CertificateAuthority {
        let cert = std::fs::read_to_string(self.pki_dir.join("ca.pem")).expect("CA certificate");
        let key = std::fs::read_to_string(self.pki_dir.join("ca.key")).expect("CA key");
        yrd_pki::CertificateAuthority::from_pem(&cert, &key).expect("load CA")
    }

    /// The exchange CA certificate, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.pki_dir.join("ca.pem")).expect("CA certificate")
    }

    /// Asks the server to shut down gracefully and waits until it has.
    pub async fn shutdown(mut self) -> Result<(), StartupError> {
        self.stop.cancel();
        match self.server.take() {
            Some(server) => server.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An agency id the test names; panics on a typo.
pub fn agency_id(id: &str) -> AgencyId {
    AgencyId::parse(id).expect("a valid agency id in the test")
}

/// Logs to the test's captured output; `YRD_LOG=debug` for more.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("YRD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Runs each named scenario `async fn name(app: TestApp)` as two tests, `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::TestApp::spawn($crate::StoreKind::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$scenario(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::TestApp::spawn($crate::StoreKind::Postgres).await {
                        super::$scenario(app).await;
                    }
                }
            }
        )*
    };
}
