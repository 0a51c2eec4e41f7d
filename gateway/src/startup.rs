//! Building and running the server. `main` and the end-to-end tests start the very same thing:
//! [`Application::build`] binds the listener first (so `port = 0` works and the bound port is
//! known), then [`Application::run_until_stopped`] serves until its shutdown future resolves and
//! the calls in flight have finished.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use yrd_domain::clock::{Clock, SystemClock};
use yrd_store::Store;

use crate::config::{ConfigError, Settings};
use crate::identity::IdentityLayer;
use crate::tls::{ServerTls, TlsError, incoming};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is not acceptable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data folder could not be created.
    #[error("cannot create data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file the server needs could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate file is not PEM text.
    #[error("{0} is not a PEM text file")]
    NotPem(PathBuf),
    /// The store could not be opened, migrated or seeded.
    #[error(transparent)]
    Store(#[from] yrd_store::StoreError),
    /// The certificate authority failed.
    #[error(transparent)]
    Pki(#[from] yrd_pki::PkiError),
    /// The TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// The reflection service could not be built from the descriptors.
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A server that is bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    settings: Settings,
    store: Store,
    tls: Arc<ServerTls>,
    clock: Arc<dyn Clock>,
    dev_pki: Option<PathBuf>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("local_addr", &self.local_addr)
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Prepares the data folder, store and TLS material and binds the listener, reading time
    /// from the wall clock.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As [`Application::build`], with an injected clock (tests move time by hand).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Application, StartupError> {
        let prepared = crate::bootstrap::prepare(&settings, clock.now()).await?;
        let tls = Arc::new(ServerTls::new(&prepared.tls)?);
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.listen,
            source,
        })?;
        Ok(Application {
            listener,
            local_addr,
            settings,
            store: prepared.store,
            tls,
            clock,
            dev_pki: prepared.dev_pki,
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The store the server uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The dev PKI folder, when the dev PKI is in use.
    pub fn dev_pki(&self) -> Option<&std::path::Path> {
        self.dev_pki.as_deref()
    }

    /// The TLS configuration, swappable while serving.
    pub fn tls(&self) -> Arc<ServerTls> {
        self.tls.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, tells health checkers it is no
    /// longer serving, and returns once the calls in flight have finished.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let limits = &self.settings.limits;
        let max_message = limits.max_message_bytes;

        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(yrd_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(yrd_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let stop = CancellationToken::new();
        let connections = incoming(
            self.listener,
            self.tls.clone(),
            Duration::from_millis(self.settings.tls.handshake_timeout_ms),
            stop.clone(),
        );
        let signal = {
            let stop = stop.clone();
            let reporter = health_reporter.clone();
            async move {
                shutdown.await;
                tracing::info!("shutting down: no new connections; finishing calls in flight");
                reporter
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                stop.cancel();
            }
        };

        // Why the layers sit where they do: identity is outermost of ours so that nothing
        // runs for a connection whose certificate names no agency. (Token, policy, audit and
        // trace layers join in the access-control and audit work.)
        let mut server = Server::builder()
            .max_concurrent_streams(limits.max_concurrent_streams)
            .concurrency_limit_per_connection(limits.concurrency_per_connection)
            .timeout(Duration::from_millis(limits.request_timeout_ms))
            .http2_keepalive_interval(Some(Duration::from_millis(limits.keepalive_interval_ms)))
            .http2_keepalive_timeout(Some(Duration::from_millis(limits.keepalive_timeout_ms)))
            .max_connection_age(Duration::from_secs(limits.max_connection_age_s))
            .http2_max_pending_accept_reset_streams(Some(limits.max_pending_accept_reset_streams))
            .http2_max_local_error_reset_streams(Some(limits.max_local_error_reset_streams))
            .load_shed(true)
            .layer(IdentityLayer::new(self.clock.clone()));

        let router = server
            .add_service(health.max_decoding_message_size(max_message))
            .add_service(reflection_v1.max_decoding_message_size(max_message))
            .add_service(reflection_v1alpha.max_decoding_message_size(max_message));

        tracing::info!(addr = %self.local_addr, backend = self.store.backend().as_str(), "serving");
        router
            .serve_with_incoming_shutdown(connections, signal)
            .await?;
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}
