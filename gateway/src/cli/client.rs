//! The client side of mTLS, for the `yrd` subcommands that call a running exchange.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use yrd_domain::{AgencyId, Profile};

/// Where a client's certificate, key and the exchange CA are.
#[derive(Debug, Clone)]
pub struct ClientFiles {
    /// The exchange CA certificate (PEM).
    pub ca: PathBuf,
    /// The client certificate (PEM).
    pub cert: PathBuf,
    /// The client key (PKCS#8 PEM).
    pub key: PathBuf,
}

impl ClientFiles {
    /// The dev PKI's files for `agency` and `profile` under `pki_dir`.
    pub fn dev(pki_dir: &Path, agency: &AgencyId, profile: Profile) -> ClientFiles {
        let agency_dir = pki_dir.join("agencies").join(agency.as_str());
        ClientFiles {
            ca: pki_dir.join("ca.pem"),
            cert: agency_dir.join(format!("{profile}.pem")),
            key: agency_dir.join(format!("{profile}.key")),
        }
    }
}

/// Why a client could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server address is not a URI.
    #[error("bad server address {0:?}: expected host:port or https://host:port")]
    Address(String),
    /// The connection or TLS setup failed.
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
}

/// Opens an mTLS channel to `server` (`host:port` or `https://host:port`), verifying the server
/// certificate for `tls_name` against the exchange CA.
pub async fn connect(
    server: &str,
    tls_name: &str,
    files: &ClientFiles,
) -> Result<Channel, ClientError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ClientError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&files.ca)?))
        .identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?))
        .domain_name(tls_name);
    let uri = if server.contains("://") {
        server.to_owned()
    } else {
        format!("https://{server}")
    };
    let endpoint =
        Endpoint::from_shared(uri).map_err(|_| ClientError::Address(server.to_owned()))?;
    Ok(endpoint.tls_config(tls)?.connect().await?)
}
