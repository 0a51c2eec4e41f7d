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
//! * [`TestApp`] — one running server; [`TestApp::spawn_replica`] and [`TestApp::restart`]
//!   start another on the same database and PKI through the same [`Running::start`].
//! * [`fixtures`] — the test data and waits every suite shares (USCC generator, `next_event`,
//!   feed events, sequenced leaves).
//! * [`raw_tls`] — a bare rustls client for the handshake matrix.
//! * [`raw_h2`] — HTTP/2 frames written by hand, for a peer that breaks the protocol's limits.
//! * [`calm`] — an agency's paced calls, timed while another peer misbehaves.

#![forbid(unsafe_code)]

pub mod agency;
pub mod calm;
pub mod fixtures;
pub mod raw_h2;
pub mod raw_tls;

pub use agency::{AgencyClients, spawn_for_deadlines};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use yrd_client::{ClientFiles, connect};
use yrd_domain::clock::{Clock, ManualClock, SystemClock};
use yrd_domain::{AgencyId, Profile};
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
    /// Fires a round of this server's deadline schedulers.
    schedulers: yrd_call::periodic::Trigger,
    /// Counts the feed subscribers this server dropped as too slow.
    pub slow_drops: yrd_feed::SlowDrops,
    /// Where its admin listener (`/metrics`, `/readyz`) listens, when `metrics.listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    /// The data folder and database this server owns (a replica borrows its primary's).
    _data_dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
    /// The settings it was built with, so a replica can share its database and PKI.
    settings: Settings,
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
        let running = Running::start(settings.clone(), clock.clone(), "the test server").await;
        Some(TestApp {
            addr: running.addr,
            pki_dir: running.pki_dir,
            store_kind: kind,
            store: running.store,
            clock,
            stop: running.stop,
            server: Some(running.server),
            schedulers: running.schedulers,
            slow_drops: running.slow_drops,
            metrics_addr: running.metrics_addr,
            _data_dir: Some(data_dir),
            _database: Some(database),
            settings,
        })
    }

    /// A second server on the same database and PKI (another replica behind the same load
    /// balancer), listening on its own port. The first server must outlive it.
    pub async fn spawn_replica(&self) -> TestApp {
        let settings = self.settings_on_a_new_port();
        let running = Running::start(settings.clone(), self.clock.clone(), "the replica").await;
        self.on(running, settings, None, None)
    }

    /// This server's settings, listening on a free port of its own.
    fn settings_on_a_new_port(&self) -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..self.settings.clone()
        }
    }

    /// A `TestApp` for `running`, a server on this one's database and PKI; it owns the data
    /// folder and database only when given them (a restart takes them over, a replica
    /// borrows).
    fn on(
        &self,
        running: Running,
        settings: Settings,
        data_dir: Option<tempfile::TempDir>,
        database: Option<TestDatabase>,
    ) -> TestApp {
        TestApp {
            addr: running.addr,
            pki_dir: self.pki_dir.clone(),
            store_kind: self.store_kind,
            store: running.store,
            clock: self.clock.clone(),
            stop: running.stop,
            server: Some(running.server),
            schedulers: running.schedulers,
            slow_drops: running.slow_drops,
            metrics_addr: running.metrics_addr,
            _data_dir: data_dir,
            _database: database,
            settings,
        }
    }

    /// The database URL this server runs on.
    pub fn database_url(&self) -> &str {
        &self.settings.database_url
    }

    /// Runs a round of this server's disposal and licensing deadline schedulers now: a test
    /// that moved its manual clock past a deadline calls this rather than waiting for their
    /// interval (its scenario then waits for the event the round writes).
    pub fn tick_schedulers(&self) {
        self.schedulers.fire();
    }

    /// The dev PKI files of `agency` with `profile`.
    pub fn client_files(&self, agency: &str, profile: Profile) -> ClientFiles {
        ClientFiles::dev(&self.pki_dir, agency_id(agency).as_str(), profile.as_str())
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

/// Runs each named scenario `async fn name(app: TestApp)` as two tests, `name::sqlite` and
/// `name::postgres`, on servers started by the calling file's
/// `async fn $spawn(kind: StoreKind) -> Option<TestApp>` (its settings, e.g. tighter limits).
#[macro_export]
macro_rules! on_both_stores_spawned_by {
    ($spawn:ident; $($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = super::$spawn($crate::StoreKind::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$scenario(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = super::$spawn($crate::StoreKind::Postgres).await {
                        super::$scenario(app).await;
                    }
                }
            }
        )*
    };
}

/// Runs each named scenario `async fn name(app: TestApp, clock: Arc<ManualClock>)` as two
/// tests, `name::sqlite` and `name::postgres`; the calling file provides
/// `async fn spawn(kind: StoreKind) -> Option<(TestApp, Arc<ManualClock>)>` (its settings, e.g.
/// a fast scheduler, and a clock it moves by hand).
#[macro_export]
macro_rules! on_both_stores_with_clock {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let (app, clock) = super::spawn($crate::StoreKind::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$scenario(app, clock).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some((app, clock)) = super::spawn($crate::StoreKind::Postgres).await {
                        super::$scenario(app, clock).await;
                    }
                }
            }
        )*
    };
}

/// 10:00 in Beijing on the next Monday (after today): day 0 of a scenario under a manual
/// clock. Later than the dev certificates' start (they are issued at the real time), and with
/// the statutory periods added (months at most) well within their year of validity.
pub fn next_monday_morning() -> time::OffsetDateTime {
    let beijing = time::UtcOffset::from_hms(8, 0, 0).expect("UTC+8");
    let today = SystemClock.now().to_offset(beijing).date();
    let ahead = 7 - i64::from(today.weekday().number_days_from_monday());
    (today + time::Duration::days(ahead))
        .with_hms(10, 0, 0)
        .expect("10:00")
        .assume_offset(beijing)
}

/// A gRPC client whose calls carry `authorization: Bearer <token>`.
pub type Authed = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

/// Adds a bearer token to every call.
#[derive(Debug, Clone)]
pub struct Bearer(pub tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

impl Bearer {
    /// The interceptor for `token`.
    pub fn new(token: &str) -> Bearer {
        Bearer(format!("Bearer {token}").parse().expect("a token is ASCII"))
    }
}

impl TestApp {
    /// Issues an access token over `channel` (whose certificate it will be bound to), naming
    /// `officer` as acting when given.
    pub async fn token_over(
        channel: &Channel,
        officer: Option<&str>,
    ) -> Result<String, tonic::Status> {
        let issued = yrd_client::token::issue_token(channel, officer.unwrap_or_default()).await?;
        Ok(issued.access_token)
    }

    /// A channel presenting `agency`'s dev certificate for `profile`, and a token bound to it.
    pub async fn session(&self, agency: &str, profile: Profile) -> Session {
        let channel = self.channel(agency, profile).await;
        let token = Self::token_over(&channel, None)
            .await
            .expect("a token for a dev certificate");
        Session { channel, token }
    }
}

/// A connection with a bound token: hand out typed clients that send it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The mTLS channel.
    pub channel: Channel,
    /// The access token bound to its certificate.
    pub token: String,
}

impl Session {
    /// The channel with the bearer interceptor, for any generated client's `with_interceptor`.
    pub fn authed(&self) -> Authed {
        tonic::service::interceptor::InterceptedService::new(
            self.channel.clone(),
            Bearer::new(&self.token),
        )
    }

    /// An `AdminService` client sending the token.
    pub fn admin(&self) -> yrd_proto::v1::admin_service_client::AdminServiceClient<Authed> {
        yrd_proto::v1::admin_service_client::AdminServiceClient::new(self.authed())
    }

    /// Revokes certificate `name` (`certificates/<serial>`) for `reason`, with request id
    /// `revoke <name>` (so a second call is a retry); panics when the exchange refuses.
    pub async fn revoke(
        &self,
        name: &str,
        reason: yrd_proto::v1::RevocationReason,
    ) -> yrd_proto::v1::RevokeCertificateResponse {
        self.admin()
            .revoke_certificate(yrd_proto::v1::RevokeCertificateRequest {
                request_id: format!("revoke {name}"),
                name: name.to_owned(),
                reason: reason as i32,
                note: String::new(),
            })
            .await
            .expect("revoke")
            .into_inner()
    }

    /// Sets the state of agency `agency` (its id) with an update mask naming only `state`,
    /// under `request_id`; the exchange's answer is returned as is.
    pub async fn set_agency_state(
        &self,
        agency: &str,
        state: yrd_proto::v1::AgencyState,
        request_id: String,
    ) -> Result<tonic::Response<yrd_proto::v1::UpdateAgencyResponse>, tonic::Status> {
        self.admin()
            .update_agency(yrd_proto::v1::UpdateAgencyRequest {
                request_id,
                agency: Some(yrd_proto::v1::Agency {
                    name: format!("agencies/{agency}"),
                    state: state as i32,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["state".into()],
                }),
            })
            .await
    }
}

// ----------------------------------------------------------------------------------------------
// Access control (issue 3): raw calls by path, the dev certificates as the identity layer reads
// them, and the exchange's own signing key, so a test can craft a token that differs from a
// real one in exactly one defect.
// ----------------------------------------------------------------------------------------------

/// Calls the unary method at `path` with an empty message over `channel`, sending
/// `authorization: Bearer <token>` when a token is given. The answer's content is ignored: the
/// access tests only care whether the call got past the gateway's layers, and with what status.
pub async fn call_path(
    channel: &Channel,
    token: Option<&str>,
    path: &str,
) -> Result<(), tonic::Status> {
    call_path_with_header(
        channel,
        token.map(|t| format!("Bearer {t}")).as_deref(),
        path,
    )
    .await
}

/// As [`call_path`], with the `authorization` header's value given verbatim (or none).
pub async fn call_path_with_header(
    channel: &Channel,
    authorization: Option<&str>,
    path: &str,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("channel not ready: {e}")))?;
    let path = http::uri::PathAndQuery::try_from(path).expect("a method path in the test");
    let mut request = tonic::Request::new(());
    if let Some(value) = authorization {
        request.metadata_mut().insert(
            "authorization",
            value.parse().expect("an ASCII header value"),
        );
    }
    // A server-streaming method (e.g. `FeedService/Subscribe`) called this way stays open after
    // it was accepted; refusals come at once. So a call still running after a few seconds was
    // let through, and answers DEADLINE_EXCEEDED here.
    match tokio::time::timeout(
        std::time::Duration::from_secs(3),
        grpc.unary::<(), (), _>(request, path, tonic_prost::ProstCodec::default()),
    )
    .await
    {
        Ok(outcome) => outcome.map(|_| ()),
        Err(_) => Err(tonic::Status::deadline_exceeded(
            "accepted and still streaming after 3 s",
        )),
    }
}

/// Asserts that a call got past the gateway's identity and token layers: only those answer
/// `UNAUTHENTICATED` or `PERMISSION_DENIED` to a `system` token; the handler's own answer (an
/// empty search succeeds) does not matter here.
pub fn passed(outcome: Result<(), tonic::Status>) {
    if let Err(status) = outcome {
        assert!(
            !matches!(
                status.code(),
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            ),
            "{status:?}"
        );
    }
}

/// Calls `call` every 20 ms until it fails with `code`, and answers that status and how long
/// it took; panics naming `what` when `within` passes first.
pub async fn refused_within<F, Fut>(
    what: &str,
    within: std::time::Duration,
    code: tonic::Code,
    mut call: F,
) -> (tonic::Status, std::time::Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let started = std::time::Instant::now();
    loop {
        let outcome = call().await;
        match outcome {
            Err(status) if status.code() == code => return (status, started.elapsed()),
            other if started.elapsed() > within => {
                panic!("{what}: still {other:?} after {within:?}, expected {code:?}")
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

impl TestApp {
    /// A `yrd-client` configuration presenting `agency`'s dev certificate for `profile`.
    pub fn client_config(&self, agency: &str, profile: Profile) -> yrd_client::ClientConfig {
        yrd_client::ClientConfig::from_files(
            self.addr.to_string(),
            "localhost",
            &self.client_files(agency, profile),
        )
        .expect("the dev certificate files")
    }

    /// A `yrd-client` client presenting `agency`'s dev certificate for `profile`: the
    /// library partners use, with its token renewal, trace context and retries.
    pub async fn client(&self, agency: &str, profile: Profile) -> yrd_client::Client {
        yrd_client::Client::connect(self.client_config(agency, profile))
            .await
            .expect("connect to the test server")
    }

    /// What the dev certificate of `agency` with `profile` says (serial, fingerprint, …).
    pub fn cert_info(&self, agency: &str, profile: Profile) -> yrd_pki::CertInfo {
        let pem = std::fs::read_to_string(self.client_files(agency, profile).cert)
            .expect("dev certificate");
        yrd_pki::CertInfo::from_pem(&pem).expect("dev certificate parses")
    }

    /// The identity the gateway derives from that dev certificate.
    pub fn identity(&self, agency: &str, profile: Profile) -> yrd_domain::AgencyIdentity {
        yrd_domain::AgencyIdentity {
            agency: agency_id(agency),
            profile,
            cert_fingerprint: self.cert_info(agency, profile).fingerprint_sha256_hex,
        }
    }

    /// The AdminService resource name of that dev certificate, `certificates/<serial>`.
    pub fn certificate_name(&self, agency: &str, profile: Profile) -> String {
        format!(
            "certificates/{}",
            self.cert_info(agency, profile).serial_hex
        )
    }

    /// That dev certificate and key, for [`raw_tls::attempt`].
    pub fn client_cert(&self, agency: &str, profile: Profile) -> raw_tls::ClientCert {
        let files = self.client_files(agency, profile);
        raw_tls::ClientCert {
            cert_pem: std::fs::read(files.cert).expect("dev certificate"),
            key_pem: std::fs::read(files.key).expect("dev key"),
        }
    }

    /// The key the exchange signs access tokens with now, read from the store.
    pub async fn exchange_key(&self) -> ExchangeKey {
        let now = self.clock.now();
        let records = self
            .store
            .signing_keys(yrd_store::KeyPurpose::AccessToken, now)
            .await
            .expect("signing keys");
        let record = records
            .iter()
            .rev()
            .find(|r| r.activates_at <= now)
            .expect("an active token signing key");
        ExchangeKey {
            kid: record.kid.clone(),
            pkcs8_pem: record.private_key_pem.clone(),
        }
    }

    /// The claims the exchange would put in a token for that dev certificate, issued now for
    /// ten minutes with the default issuer and audience (Shanghai is the operator).
    pub fn claims_for(&self, agency: &str, profile: Profile) -> yrd_admin::token::Claims {
        let identity = self.identity(agency, profile);
        let now = self.clock.now().unix_timestamp();
        let roles = yrd_domain::roles::granted_roles(profile, agency == SHANGHAI);
        yrd_admin::token::Claims {
            iss: yrd_admin::token::DEFAULT_ISSUER.to_owned(),
            sub: yrd_domain::SpiffeId::new(identity.agency.clone(), profile).to_uri(),
            aud: yrd_admin::token::DEFAULT_AUDIENCE.to_owned(),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: uuid_v4_like(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            act: None,
            cnf: Some(yrd_admin::token::Confirmation {
                x5t_s256: yrd_admin::token::x5t_s256_from_hex(&identity.cert_fingerprint)
                    .expect("a SHA-256 fingerprint"),
            }),
            agency: identity.agency,
            profile,
        }
    }
}

/// The exchange's token signing key (PKCS#8 PEM and its `kid`), as the store holds it. Only a
/// test has it outside the exchange: it signs crafted tokens that are wrong in one way only.
#[derive(Clone)]
pub struct ExchangeKey {
    /// The key id, written in the `kid` header.
    pub kid: String,
    /// The private key, PKCS#8 PEM.
    pub pkcs8_pem: String,
}

impl std::fmt::Debug for ExchangeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ExchangeKey {
    /// Signs `claims` as the exchange does: ES256, header `{"typ":"JWT","alg":"ES256","kid":…}`.
    pub fn sign(&self, claims: &yrd_admin::token::Claims) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_ec_pem(self.pkcs8_pem.as_bytes())
            .expect("the exchange key is a P-256 PKCS#8 PEM");
        jsonwebtoken::encode(&header, claims, &key).expect("signing a token")
    }
}

/// A fresh random token id (`jti`).
fn uuid_v4_like() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}

// ----------------------------------------------------------------------------------------------
// Restarts (issue 5, the feed): stop a server and start a new one on the same database, data
// folder and PKI, as an operator restarting `yrd serve` would.
// ----------------------------------------------------------------------------------------------

impl TestApp {
    /// Shuts this server down gracefully (its calls in flight end first), then starts a new one
    /// with the same settings, database and data folder, on a new port. Answers the new server.
    pub async fn restart(self) -> TestApp {
        let stopped = self.stop().await;
        let settings = stopped.app.settings_on_a_new_port();
        stopped.start_with(settings, "the restarted server").await
    }

    /// Shuts this server down gracefully and waits until it has; [`StoppedApp::start`] starts
    /// a new one on the same address, database, data folder and PKI, so that clients keeping
    /// their channel reach it without being told a new address (as behind a fixed DNS name).
    pub async fn stop(mut self) -> StoppedApp {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("the server stops cleanly");
        }
        StoppedApp { app: self }
    }
}

/// A test server that was shut down by [`TestApp::stop`]; its port is free until
/// [`StoppedApp::start`].
#[derive(Debug)]
pub struct StoppedApp {
    app: TestApp,
}

impl StoppedApp {
    /// Where the server listened, and will again.
    pub fn addr(&self) -> SocketAddr {
        self.app.addr
    }

    /// Starts a new server on the same address, settings, database, data folder and PKI.
    pub async fn start(self) -> TestApp {
        let settings = Settings {
            listen: self.app.addr,
            ..self.app.settings.clone()
        };
        self.start_with(settings, "the server restarted on its address")
            .await
    }

    /// Starts the server `what` with `settings` on this one's database, data folder and PKI.
    async fn start_with(mut self, settings: Settings, what: &str) -> TestApp {
        let running = Running::start(settings.clone(), self.app.clock.clone(), what).await;
        let data_dir = self.app._data_dir.take();
        let database = self.app._database.take();
        self.app.on(running, settings, data_dir, database)
    }
}

/// A server built from settings and serving in a task of its own: what [`TestApp::spawn_with`],
/// [`TestApp::spawn_replica`] and [`TestApp::restart`] all start.
struct Running {
    addr: SocketAddr,
    pki_dir: PathBuf,
    store: Store,
    stop: CancellationToken,
    server: JoinHandle<Result<(), StartupError>>,
    schedulers: yrd_call::periodic::Trigger,
    slow_drops: yrd_feed::SlowDrops,
    metrics_addr: Option<SocketAddr>,
}

impl Running {
    /// Builds the server `what` (named in the panic when it does not build) and serves it until
    /// its `stop` is cancelled.
    async fn start(settings: Settings, clock: Arc<dyn Clock>, what: &str) -> Running {
        let app = Application::build_with_clock(settings, clock)
            .await
            .unwrap_or_else(|e| panic!("{what} builds: {e:?}"));
        let addr = app.local_addr();
        let store = app.store().clone();
        let pki_dir = app
            .dev_pki()
            .expect("test servers use the dev PKI")
            .to_owned();
        let schedulers = app.schedulers();
        let slow_drops = app.slow_drops();
        let metrics_addr = app.metrics_addr();
        let stop = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
        Running {
            addr,
            pki_dir,
            store,
            stop,
            server,
            schedulers,
            slow_drops,
            metrics_addr,
        }
    }
}

/// The fields an `INVALID_ARGUMENT` names in its `google.rpc.BadRequest` detail, in order.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .expect("a BadRequest detail")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}
