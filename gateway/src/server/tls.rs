//! The TLS listener: our own rustls acceptor in front of tonic.
//!
//! tonic's `ServerTlsConfig` takes a CA root but no client-certificate verifier and no CRLs
//! (as of tonic 0.14), so TLS is terminated here with `tokio-rustls` and the
//! accepted streams are handed to tonic with `serve_with_incoming_shutdown`. The `ServerConfig`
//! sits behind an [`ArcSwap`] so that a revocation or a rotated certificate or CA bundle takes
//! effect for the next handshake without a restart.
//!
//! Each handshake runs in its own task under a timeout, so a client that connects and stalls
//! cannot hold up the accept loop. The peer certificate is inspected once, at the handshake, and
//! travels with the connection as [`ConnInfo`], which tonic puts into every request's extensions.
//!
//! Connections waiting for their handshake are anonymous and each holds a file descriptor, so
//! they are capped in total and per source ([`crate::server::handshake_limit`]): beyond a cap the socket
//! is closed at once, before any TLS work. Should `accept()` fail all the same (out of file
//! descriptors), the loop backs off briefly and retries; connections already established run
//! in their own tasks and keep being served. Refusals and accept failures are logged at most
//! once a second each, with the number left unlogged, so a flood cannot flood the log too.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

use crate::server::handshake_limit::HandshakeLimiter;
use crate::server::peer::PeerCertificate;

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

/// The current server configuration, swappable while the server runs, and the material it
/// was built from (so a new CRL or a rotated certificate replaces one part and keeps the rest).
#[derive(Debug)]
pub struct ServerTls {
    config: ArcSwap<rustls::ServerConfig>,
    /// Serialises rebuilds, so a CRL update and a certificate rotation racing each other
    /// cannot lose one another's change.
    material: std::sync::Mutex<TlsMaterial>,
}

impl ServerTls {
    /// Starts with the configuration built from `material`.
    pub fn new(material: &TlsMaterial) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            config: ArcSwap::from_pointee(server_config(material)?),
            material: std::sync::Mutex::new(material.clone()),
        })
    }

    /// Replaces the CA bundle and server certificate and key, keeping the CRLs. Every
    /// handshake from now on uses the new material; connections already open keep theirs.
    pub fn rotate(
        &self,
        ca_pem: Vec<u8>,
        cert_pem: Vec<u8>,
        key_pem: Vec<u8>,
    ) -> Result<(), TlsError> {
        self.update(|m| {
            m.ca_pem = ca_pem;
            m.server_cert_pem = cert_pem;
            m.server_key_pem = key_pem;
        })
    }

    /// Replaces the CRLs, keeping the rest.
    pub fn set_crls(&self, crls: Vec<Vec<u8>>) -> Result<(), TlsError> {
        self.update(|m| m.crls = crls)
    }

    /// The material currently served.
    pub fn material(&self) -> TlsMaterial {
        match self.material.lock() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut TlsMaterial)) -> Result<(), TlsError> {
        let mut guard = match self.material.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = guard.clone();
        change(&mut next);
        // Build first: on bad material the old configuration stays in force.
        let config = server_config(&next)?;
        self.config.store(Arc::new(config));
        *guard = next;
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
    /// Calls in flight and the last activity, for the idle timeout.
    pub activity: Arc<ConnActivity>,
}

/// Calls in flight on a connection and when the last one began or ended. The identity layer
/// keeps it; the connection closes itself once it has had no call for the idle timeout.
#[derive(Debug)]
pub struct ConnActivity {
    opened: tokio::time::Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` of the last call start or end.
    last_active_ms: AtomicU64,
}

impl ConnActivity {
    fn new() -> Self {
        ConnActivity {
            opened: tokio::time::Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.fetch_max(ms, Ordering::SeqCst);
    }

    /// A call began; the returned guard ends it when dropped (when its response body is done).
    pub fn begin(self: &Arc<Self>) -> CallGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
        CallGuard(self.clone())
    }

    /// When the connection last became idle, if no call is in flight now.
    fn idle_since(&self) -> Option<tokio::time::Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(self.opened + Duration::from_millis(self.last_active_ms.load(Ordering::SeqCst)))
    }
}

/// Ends a call on its connection when dropped.
#[derive(Debug)]
pub struct CallGuard(Arc<ConnActivity>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// An accepted TLS connection carrying its [`ConnInfo`].
#[derive(Debug)]
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    info: ConnInfo,
    /// The idle timeout and its timer: when it fires with no call in flight and none begun
    /// for the timeout, the connection reports end-of-stream and the server closes it.
    idle: (Duration, Pin<Box<tokio::time::Sleep>>),
}

impl Connected for TlsConnection {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Poll::Ready(outcome) = Pin::new(&mut this.stream).poll_read(cx, buf) {
            return Poll::Ready(outcome);
        }
        let (timeout, timer) = &mut this.idle;
        while timer.as_mut().poll(cx).is_ready() {
            match this.info.activity.idle_since() {
                Some(since) if since.elapsed() >= *timeout => {
                    tracing::debug!(remote = %this.info.remote_addr, "closing idle connection");
                    return Poll::Ready(Ok(()));
                }
                Some(since) => timer.as_mut().reset(since + *timeout),
                None => timer.as_mut().reset(tokio::time::Instant::now() + *timeout),
            }
        }
        Poll::Pending
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
/// `handshake_timeout`, and yields the connections that completed it. A connection beyond the
/// caps of `limiter` is closed at once. Stops accepting when `stop` is cancelled; the stream
/// ends once the handshakes still running have finished.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    limiter: Arc<HandshakeLimiter>,
    stop: CancellationToken,
) -> ReceiverStream<Result<TlsConnection, io::Error>> {
    // A small buffer: tonic takes connections as fast as they come, and back-pressure here
    // only delays handshakes already done.
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut refusals = Throttled::new(LOG_AT_MOST_EVERY);
        let mut failures = Throttled::new(LOG_AT_MOST_EVERY);
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, remote_addr) = match accepted {
                Ok(pair) => pair,
                // The client went away between its SYN and our accept(): nothing to wait for.
                Err(e) if is_one_connection_error(&e) => {
                    tracing::debug!(error = %e, "accept: connection lost before it was accepted");
                    continue;
                }
                Err(e) => {
                    // Usually out of file descriptors (EMFILE, ENFILE). The clients waiting
                    // stay in the kernel's backlog until a handshake ends and frees one; calls
                    // on established connections go on meanwhile. Wait a moment, not spin.
                    if let Some(unlogged) = failures.admit(std::time::Instant::now()) {
                        tracing::warn!(
                            error = %e,
                            pending_handshakes = limiter.pending(),
                            unlogged,
                            "accept failed; retrying in 50 ms (established connections are still served)"
                        );
                    }
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_RETRY) => continue,
                    }
                }
            };
            let slot = match limiter.admit(remote_addr.ip()) {
                Ok(slot) => slot,
                Err(refusal) => {
                    // Closed before a byte is read: the file descriptor is free again at once.
                    drop(tcp);
                    if let Some(unlogged) = refusals.admit(std::time::Instant::now()) {
                        tracing::warn!(%remote_addr, unlogged, "connection closed before its TLS handshake: {refusal}");
                    }
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await;
                // The handshake is over, whatever its outcome: the connection is no longer
                // anonymous (or no longer open).
                drop(slot);
                let stream = match handshake {
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
                        activity: Arc::new(ConnActivity::new()),
                    },
                    idle: (idle_timeout, Box::pin(tokio::time::sleep(idle_timeout))),
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
        tracing::debug!("accept loop stopped");
    });
    ReceiverStream::new(rx)
}

/// How long the accept loop waits after `accept()` failed for want of resources.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Refusals and accept failures are each logged at most this often.
const LOG_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// Errors of `accept()` that concern one connection only (it was reset or aborted before we
/// took it), after which the next `accept()` can go on at once.
fn is_one_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Lets a log line through at most once per interval and counts the ones held back.
#[derive(Debug)]
struct Throttled {
    every: Duration,
    last: Option<std::time::Instant>,
    held_back: u64,
}

impl Throttled {
    fn new(every: Duration) -> Self {
        Throttled {
            every,
            last: None,
            held_back: 0,
        }
    }

    /// `Some(lines held back since the last one let through)` when a line at `now` may be
    /// logged.
    fn admit(&mut self, now: std::time::Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.every => {
                self.held_back += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_line_is_let_through_once_per_interval_with_the_count_held_back() {
        let start = std::time::Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut log = Throttled::new(Duration::from_secs(1));
        assert_eq!(log.admit(at(0)), Some(0));
        assert_eq!(log.admit(at(10)), None);
        assert_eq!(log.admit(at(999)), None);
        assert_eq!(log.admit(at(1_000)), Some(2));
        assert_eq!(log.admit(at(1_500)), None);
        assert_eq!(log.admit(at(2_000)), Some(1));
    }
}
