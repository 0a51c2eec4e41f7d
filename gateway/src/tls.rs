//! The TLS listener: our own rustls acceptor in front of tonic.
//!
//! tonic's `ServerTlsConfig` takes a CA root but no client-certificate verifier and no CRLs
//! (DESIGN.md, "Known facts of the stack"), so TLS is terminated here with `tokio-rustls` and the
//! accepted streams are handed to tonic with `serve_with_incoming_shutdown`. The `ServerConfig`
//! sits behind an [`ArcSwap`] so that a revocation or a rotated certificate or CA bundle takes
//! effect for the next handshake without a restart.
//!
//! Each handshake runs in its own task under a timeout, so a client that connects and stalls
//! cannot hold up the accept loop. The peer certificate is inspected once, at the handshake, and
//! travels with the connection as [`ConnInfo`], which tonic puts into every request's extensions.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::identity::PeerCertificate;

/// Why TLS material could not be loaded into a server configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file held nothing usable.
    #[error("{what}: {detail}")]
    Pem {
        /// Which file or value.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// rustls refused the material (e.g. a key that does not match the certificate).
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built (e.g. an unusable CA or CRL).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The PEM material a server configuration is built from.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// CA certificates that client certificates must chain to (PEM, one or more).
    pub ca_pem: Vec<u8>,
    /// The server certificate chain (PEM).
    pub server_cert_pem: Vec<u8>,
    /// The server private key (PEM, PKCS#8).
    pub server_key_pem: Vec<u8>,
    /// Certificate revocation lists (DER), one per issuing CA.
    pub crls: Vec<Vec<u8>>,
}

/// Builds a TLS 1.3-only server configuration that requires a client certificate chaining to
/// the exchange CA and checks it against the CRLs given.
pub fn server_config(material: &TlsMaterial) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let mut found = 0;
    for cert in CertificateDer::pem_slice_iter(&material.ca_pem) {
        let cert = cert.map_err(|e| TlsError::Pem {
            what: "CA certificate",
            detail: e.to_string(),
        })?;
        roots.add(cert)?;
        found += 1;
    }
    if found == 0 {
        return Err(TlsError::Pem {
            what: "CA certificate",
            detail: "no certificate in the PEM".into(),
        });
    }
    let crls = material
        .crls
        .iter()
        .map(|der| CertificateRevocationListDer::from(der.clone()))
        .collect::<Vec<_>>();
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if !crls.is_empty() {
        // A CRL past its next update is treated as an error rather than trusted forever.
        verifier = verifier.with_crls(crls).enforce_revocation_expiration();
    }
    let verifier = verifier.build()?;
    let chain = CertificateDer::pem_slice_iter(&material.server_cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: "server certificate",
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            what: "server certificate",
            detail: "no certificate in the PEM".into(),
        });
    }
    let key =
        PrivateKeyDer::from_pem_slice(&material.server_key_pem).map_err(|e| TlsError::Pem {
            what: "server key",
            detail: e.to_string(),
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    // gRPC runs over HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The current server configuration, swappable while the server runs.
#[derive(Debug)]
pub struct ServerTls {
    config: ArcSwap<rustls::ServerConfig>,
}

impl ServerTls {
    /// Starts with the configuration built from `material`.
    pub fn new(material: &TlsMaterial) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            config: ArcSwap::from_pointee(server_config(material)?),
        })
    }

    /// Replaces the configuration for every handshake from now on. Connections already open
    /// keep theirs; the token layer's per-call checks cover them.
    pub fn reload(&self, material: &TlsMaterial) -> Result<(), TlsError> {
        self.config.store(Arc::new(server_config(material)?));
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }
}

/// What the server knows about a connection: where it comes from and who the client
/// certificate says it is. tonic inserts a clone into every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The verified client certificate, read once at the handshake.
    pub peer: Arc<PeerCertificate>,
}

/// An accepted TLS connection carrying its [`ConnInfo`].
#[derive(Debug)]
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    info: ConnInfo,
}

impl Connected for TlsConnection {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepts TCP connections on `listener`, performs each TLS handshake in its own task under
/// `handshake_timeout`, and yields the connections that completed it. Stops accepting when
/// `stop` is cancelled; the stream ends once the handshakes still running have finished.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    handshake_timeout: Duration,
    stop: CancellationToken,
) -> ReceiverStream<Result<TlsConnection, io::Error>> {
    // A small buffer: tonic takes connections as fast as they come, and back-pressure here
    // only delays handshakes already done.
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, remote_addr) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually out of file descriptors: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                let stream =
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::info!(%remote_addr, error = %e, "TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%remote_addr, "TLS handshake timed out");
                            return;
                        }
                    };
                let peer = {
                    let (_, session) = stream.get_ref();
                    PeerCertificate::from_session(session.peer_certificates())
                };
                let conn = TlsConnection {
                    stream,
                    info: ConnInfo {
                        remote_addr,
                        peer: Arc::new(peer),
                    },
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
        tracing::debug!("accept loop stopped");
    });
    ReceiverStream::new(rx)
}
