//! A client session with a running exchange for the `yrd` subcommands that call business or
//! admin methods: a [`yrd_client::Client`] (the mTLS channel, the token bound to its
//! certificate, trace context and retries) opened from the command line's connection flags.
//!
//! The token is fetched when the session opens, so a certificate the exchange refuses is
//! reported before any command runs, as the [`RpcError`] of `TokenService.IssueToken`.

use std::sync::Arc;

use yrd_client::{Client, ClientConfig, ClientFiles, ConnectError, RpcError, Token};
use yrd_proto::v1::admin_service_client::AdminServiceClient;

pub use yrd_client::Authed;

/// Where to connect and as whom: the exchange's address, the name its certificate must carry,
/// the client's certificate files, and the officer to name in the token.
#[derive(Debug, Clone)]
pub struct ConnectTarget {
    /// `host:port` or `https://host:port`.
    pub server: String,
    /// The name the server certificate must carry.
    pub tls_name: String,
    /// The exchange CA and the client certificate and key.
    pub files: ClientFiles,
    /// The acting officer (token `act`), recorded in the audit log of every call.
    pub officer: Option<String>,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The mTLS connection could not be made.
    #[error("cannot connect to {server}")]
    Connect {
        /// The address tried.
        server: String,
        /// Why.
        #[source]
        source: ConnectError,
    },
    /// The exchange refused to issue a token for this certificate.
    #[error(transparent)]
    Token(RpcError),
}

/// An open connection and the token bound to its certificate.
#[derive(Debug, Clone)]
pub struct Session {
    client: Client,
    token: Arc<Token>,
}

impl Session {
    /// Connects to `target` and obtains a token for its certificate (naming the officer when
    /// one is given).
    pub async fn open(target: &ConnectTarget) -> Result<Session, SessionError> {
        let connect_error = |source| SessionError::Connect {
            server: target.server.clone(),
            source,
        };
        let mut config = ClientConfig::from_files(&target.server, &target.tls_name, &target.files)
            .map_err(connect_error)?;
        config.officer = target.officer.clone();
        let client = Client::connect(config).await.map_err(connect_error)?;
        let token = client.token().await.map_err(SessionError::Token)?;
        Ok(Session { client, token })
    }

    /// The client: typed service clients sharing the connection and the token.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The roles the token grants (its `roles` claim), e.g. `exchange:admin`.
    pub fn roles(&self) -> &[String] {
        &self.token.roles
    }

    /// An `AdminService` client.
    pub fn admin(&self) -> AdminServiceClient<Authed> {
        self.client.admin()
    }
}
