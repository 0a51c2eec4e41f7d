//! Why the server could not start, or stopped with an error.
//!
//! Its own module because both the start-up steps (`bootstrap`) and the server that runs them
//! (`startup`) return it; neither has to import the other for it.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::server::config::ConfigError;
use crate::server::tls::TlsError;

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
    /// The revocation list could not be loaded.
    #[error("revocation list: {0}")]
    Revocation(#[from] crate::server::revocation::RefreshError),
    /// The token signing keys could not be loaded or made.
    #[error(transparent)]
    TokenKeys(#[from] yrd_admin::keyring::KeyStoreError),
    /// The exchange log's signing keys could not be loaded or made.
    #[error(transparent)]
    LogKey(#[from] yrd_audit::log_key::LogKeyError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// A background task (scheduler, sequencer, watcher) panicked, which stopped the server.
    #[error("the {task} background task panicked; the server stopped (see the log)")]
    BackgroundTask {
        /// Which task.
        task: &'static str,
    },
    /// The reflection service could not be built from the descriptors.
    /// The metrics pipeline could not be built.
    #[error("metrics: {0}")]
    Metrics(#[from] crate::server::telemetry::TelemetryError),
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}
