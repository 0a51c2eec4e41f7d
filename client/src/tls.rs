//! The mTLS channel: the client certificate and key, the exchange CA bundle, the server's
//! address and the name its certificate must carry.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::ConnectError;

/// Where a client's certificate, key and the exchange CA bundle are (all PEM).
#[derive(Debug, Clone)]
pub struct ClientFiles {
    /// The exchange CA certificate or bundle (PEM).
    pub ca: PathBuf,
    /// The client certificate (PEM), optionally followed by its chain.
    pub cert: PathBuf,
    /// The client key (PKCS#8 PEM).
    pub key: PathBuf,
}

impl ClientFiles {
    /// The files of `agency` (e.g. `370000-AMR`) with `profile` (`system`, `admin`,
    /// `auditor`) in a development PKI folder as `yrd serve` writes it:
    /// `<pki_dir>/ca.pem` and `<pki_dir>/agencies/<agency>/<profile>.{pem,key}`.
    pub fn dev(pki_dir: &Path, agency: &str, profile: &str) -> ClientFiles {
        let agency_dir = pki_dir.join("agencies").join(agency);
        ClientFiles {
            ca: pki_dir.join("ca.pem"),
            cert: agency_dir.join(format!("{profile}.pem")),
            key: agency_dir.join(format!("{profile}.key")),
        }
    }

    /// Reads the three files.
    pub fn read(&self) -> Result<Credentials, ConnectError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| ConnectError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Ok(Credentials {
            ca_pem: read(&self.ca)?,
            cert_pem: read(&self.cert)?,
            key_pem: read(&self.key)?,
        })
    }
}

/// The exchange CA bundle, the client certificate and its key, as PEM bytes.
#[derive(Clone)]
pub struct Credentials {
    /// The CA certificate(s) the server certificate must chain to.
    pub ca_pem: Vec<u8>,
    /// The client certificate (and optionally its chain).
    pub cert_pem: Vec<u8>,
    /// The client key, PKCS#8.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Credentials {
    /// The credentials from PEM bytes already in memory.
    pub fn from_pem(
        ca_pem: impl Into<Vec<u8>>,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Credentials {
        Credentials {
            ca_pem: ca_pem.into(),
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        }
    }
}

/// The endpoint of `server` (`host:port` or `https://host:port`) with mTLS: the client
/// presents `credentials` and verifies the server certificate for `tls_name` against the CA
/// bundle. Not yet connected; [`Endpoint::connect`] or [`Endpoint::connect_lazy`] it.
pub fn endpoint(
    server: &str,
    tls_name: &str,
    credentials: &Credentials,
) -> Result<Endpoint, ConnectError> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&credentials.ca_pem))
        .identity(Identity::from_pem(
            &credentials.cert_pem,
            &credentials.key_pem,
        ))
        .domain_name(tls_name);
    let uri = if server.contains("://") {
        server.to_owned()
    } else {
        format!("https://{server}")
    };
    let endpoint =
        Endpoint::from_shared(uri).map_err(|_| ConnectError::Address(server.to_owned()))?;
    Ok(endpoint.tls_config(tls)?)
}

/// Opens an mTLS channel to `server` with the files in `files` (see [`endpoint`]). The
/// channel reconnects by itself when the connection drops.
pub async fn connect(
    server: &str,
    tls_name: &str,
    files: &ClientFiles,
) -> Result<Channel, ConnectError> {
    connect_with(server, tls_name, &files.read()?).await
}

/// As [`connect`], with credentials in memory.
pub async fn connect_with(
    server: &str,
    tls_name: &str,
    credentials: &Credentials,
) -> Result<Channel, ConnectError> {
    Ok(endpoint(server, tls_name, credentials)?.connect().await?)
}
