//! The partner's client library of the yrd-exchange: everything a partner system (or the
//! `yrd` command line) needs to call the exchange, so that none of it writes TLS, token
//! renewal, retries or feed cursors by hand.
//!
//! * [`tls`] — the mTLS channel from the client certificate, its key and the exchange CA
//!   bundle (files or PEM bytes), the server address and the name its certificate must carry.
//! * [`token`] — the access token bound to that certificate (`TokenService.IssueToken` over
//!   the same connection), renewed after 80 % of its lifetime, and once more when a call is
//!   refused `UNAUTHENTICATED`.
//! * [`trace`] — a W3C `traceparent` on every call: a fresh trace per call unless the caller
//!   puts its own on the request.
//! * [`retry`] — retries of the calls that may be sent twice (reads, writes with a
//!   `request_id`, `FeedService.Ack`) on `UNAVAILABLE` and `RESOURCE_EXHAUSTED`, after the
//!   server's `google.rpc.RetryInfo` delay or an exponential backoff with full jitter, a
//!   bounded number of times. Other calls are never retried.
//! * [`Authed`] — the tower service that does the three above for every typed client.
//! * [`Client`] — one connection and one token shared by typed clients of every v1 service.
//! * [`feed`] — a consumer of the agency's feed that resumes from its stored cursor and
//!   acknowledges an event only after the caller's handler succeeded (at-least-once).
//! * [`RpcError`] — a refused call as a command line prints it: the method, the code name, the
//!   message and each `BadRequest` field violation on its own line.
//!
//! # Example
//!
//! ```no_run
//! use yrd_client::{Client, ClientConfig, ClientFiles};
//! use yrd_client::feed::{FeedConsumer, FileCursorStore};
//! use yrd_proto::v1::SearchResultsRequest;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let files = ClientFiles {
//!     ca: "ca.pem".into(),
//!     cert: "370000-AMR-system.pem".into(),
//!     key: "370000-AMR-system.key".into(),
//! };
//! let config = ClientConfig::from_files("exchange.example:50051", "exchange.example", &files)?
//!     .officer("SD-ZF-0042");
//! let client = Client::connect(config).await?;
//!
//! // A read: retried on UNAVAILABLE, with the token and a traceparent added.
//! let page = client
//!     .spot_check()
//!     .search_results(SearchResultsRequest { page_size: 50, ..Default::default() })
//!     .await?
//!     .into_inner();
//! println!("{} results", page.results.len());
//!
//! // The feed, at least once, resuming from `feed.cursor` after any restart.
//! let consumer = FeedConsumer::new(client.clone(), FileCursorStore::new("feed.cursor"));
//! consumer
//!     .run(
//!         |event| async move {
//!             println!("{} {}", event.cursor, event.resource_name);
//!             Ok::<(), std::io::Error>(())
//!         },
//!         async { tokio::signal::ctrl_c().await.ok(); },
//!     )
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! The crate depends on the contract (`yrd-proto`) only, never on the exchange's own crates:
//! it talks to the exchange as any partner does.

#![forbid(unsafe_code)]

pub mod authed;
pub mod error;
pub mod feed;
pub mod retry;
pub mod tls;
pub mod token;
pub mod trace;

use std::sync::Arc;

use tonic::transport::Channel;
use yrd_proto::v1::admin_service_client::AdminServiceClient;
use yrd_proto::v1::audit_service_client::AuditServiceClient;
use yrd_proto::v1::disposal_service_client::DisposalServiceClient;
use yrd_proto::v1::feed_service_client::FeedServiceClient;
use yrd_proto::v1::licensing_service_client::LicensingServiceClient;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;
use yrd_proto::v1::token_service_client::TokenServiceClient;

pub use authed::Authed;
pub use error::{ConnectError, RpcError, code_name, list_all};
pub use retry::RetryPolicy;
pub use tls::{ClientFiles, Credentials, connect, connect_with};
pub use token::{ClockFn, Token, TokenSource};
pub use trace::TraceParent;

/// Where to connect and as whom, and how patiently.
#[derive(Clone)]
pub struct ClientConfig {
    /// `host:port` or `https://host:port`.
    pub server: String,
    /// The name the server certificate must carry.
    pub tls_name: String,
    /// The CA bundle, the client certificate and its key.
    pub credentials: Credentials,
    /// The acting officer named in the tokens (their `act` claim), recorded in the audit log.
    pub officer: Option<String>,
    /// The retry policy of idempotent calls.
    pub retry: RetryPolicy,
    /// The clock token renewal reads.
    pub clock: ClockFn,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server", &self.server)
            .field("tls_name", &self.tls_name)
            .field("officer", &self.officer)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// Calls `server`, whose certificate must carry `tls_name`, presenting `credentials`; no
    /// officer, the default retry policy, the system clock.
    pub fn new(
        server: impl Into<String>,
        tls_name: impl Into<String>,
        credentials: Credentials,
    ) -> ClientConfig {
        ClientConfig {
            server: server.into(),
            tls_name: tls_name.into(),
            credentials,
            officer: None,
            retry: RetryPolicy::default(),
            clock: token::system_clock(),
        }
    }

    /// As [`Self::new`], with the credentials read from `files`.
    pub fn from_files(
        server: impl Into<String>,
        tls_name: impl Into<String>,
        files: &ClientFiles,
    ) -> Result<ClientConfig, ConnectError> {
        Ok(ClientConfig::new(server, tls_name, files.read()?))
    }

    /// Names `officer` as acting in every token.
    pub fn officer(mut self, officer: impl Into<String>) -> Self {
        self.officer = Some(officer.into());
        self
    }

    /// Retries idempotent calls by `policy` ([`RetryPolicy::none`] to turn retries off).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Reads the time for token renewal from `clock` instead of the system clock.
    pub fn clock(mut self, clock: ClockFn) -> Self {
        self.clock = clock;
        self
    }
}

/// One mTLS connection to the exchange and the token bound to its certificate, shared by
/// typed clients of every v1 service. Cheap to clone; clones share both.
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    tokens: Arc<TokenSource>,
    authed: Authed,
}

impl Client {
    /// Connects now (so a wrong address, CA or certificate shows at once). The token is
    /// fetched with the first call that needs one, or by [`Self::token`].
    pub async fn connect(config: ClientConfig) -> Result<Client, ConnectError> {
        let channel = tls::endpoint(&config.server, &config.tls_name, &config.credentials)?
            .connect()
            .await?;
        Ok(Client::on_channel(channel, &config))
    }

    /// As [`Self::connect`] without connecting: the first call connects, and a server that is
    /// not up yet counts as `UNAVAILABLE` for that call (so it is retried).
    pub fn connect_lazy(config: ClientConfig) -> Result<Client, ConnectError> {
        let channel =
            tls::endpoint(&config.server, &config.tls_name, &config.credentials)?.connect_lazy();
        Ok(Client::on_channel(channel, &config))
    }

    /// A client over an mTLS `channel` made elsewhere (see [`tls::endpoint`]); `config`'s
    /// officer, retry policy and clock apply, its address and credentials are not used.
    pub fn on_channel(channel: Channel, config: &ClientConfig) -> Client {
        let tokens = Arc::new(TokenSource::new(
            channel.clone(),
            config.officer.clone().unwrap_or_default(),
            config.clock.clone(),
        ));
        let authed = Authed::new(channel.clone(), tokens.clone(), config.retry);
        Client {
            channel,
            tokens,
            authed,
        }
    }

    /// The current token, fetched or renewed first when due. Calls do this themselves; call
    /// it to check early that the exchange admits the certificate, or to read the roles.
    pub async fn token(&self) -> Result<Arc<Token>, RpcError> {
        self.tokens
            .token()
            .await
            .map_err(|s| RpcError::new("TokenService.IssueToken", s))
    }

    /// The token source (e.g. how many tokens it was issued).
    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// How many times a call was sent again after `UNAVAILABLE` or `RESOURCE_EXHAUSTED` (see
    /// [`Authed::retries`]).
    pub fn retries(&self) -> u64 {
        self.authed.retries()
    }

    /// The bare mTLS channel: no token, no trace context, no retries (health checks, or
    /// calls that must be sent exactly as built).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The channel with the token, trace context and retries, for any generated client.
    pub fn authed(&self) -> Authed {
        self.authed.clone()
    }

    /// `TokenService` (`IssueToken`, `GetJwks`): no token is sent to it.
    pub fn token_service(&self) -> TokenServiceClient<Authed> {
        TokenServiceClient::new(self.authed())
    }

    /// `AdminService`: certificates, agencies, the CRL.
    pub fn admin(&self) -> AdminServiceClient<Authed> {
        AdminServiceClient::new(self.authed())
    }

    /// `AuditService`: the exchange log, its tree heads and proofs.
    pub fn audit(&self) -> AuditServiceClient<Authed> {
        AuditServiceClient::new(self.authed())
    }

    /// `SpotCheckService`: publishing and searching spot-check results.
    pub fn spot_check(&self) -> SpotCheckServiceClient<Authed> {
        SpotCheckServiceClient::new(self.authed())
    }

    /// `FeedService`: the agency's feed (see [`feed::FeedConsumer`] to consume it).
    pub fn feed(&self) -> FeedServiceClient<Authed> {
        FeedServiceClient::new(self.authed())
    }

    /// `DisposalService`: referrals of non-conforming products (不合格产品联动处置).
    pub fn disposal(&self) -> DisposalServiceClient<Authed> {
        DisposalServiceClient::new(self.authed())
    }

    /// `LicensingService`: production-licence applications (沪鲁通办) and licences.
    pub fn licensing(&self) -> LicensingServiceClient<Authed> {
        LicensingServiceClient::new(self.authed())
    }
}
