//! A bare rustls client, so the handshake matrix can assert *why* the server refused a
//! connection (the TLS alert it sent), not merely that a gRPC call failed.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What happened to a connection attempt.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The handshake completed and the server answered the HTTP/2 preface.
    Accepted,
    /// The handshake or the first read failed with this TLS error (usually the server's alert).
    Refused(rustls::Error),
    /// The connection closed without a TLS error.
    Closed,
}

/// A client identity: certificate chain and key, PEM.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// Certificate (PEM).
    pub cert_pem: Vec<u8>,
    /// PKCS#8 key (PEM).
    pub key_pem: Vec<u8>,
}

/// Connects to `addr` trusting `ca_pem`, presenting `client` (or no certificate), offering only
/// `versions`, and reports how the server answered.
pub async fn attempt(
    addr: std::net::SocketAddr,
    ca_pem: &[u8],
    client: Option<&ClientCert>,
    versions: &[&'static SupportedProtocolVersion],
) -> Outcome {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots);
    let mut config = match client {
        Some(c) => {
            let chain = CertificateDer::pem_slice_iter(&c.cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .expect("client certificate PEM");
            let key = PrivateKeyDer::from_pem_slice(&c.key_pem).expect("client key PEM");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client identity")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let mut stream = match connector.connect(name, tcp).await {
        Ok(stream) => stream,
        Err(e) => return tls_error(e),
    };
    // In TLS 1.3 the server checks the client certificate after the client thinks the
    // handshake is done, so the verdict arrives on the first read.
    if let Err(e) = stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
    {
        return tls_error(e);
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
        Ok(Ok(0)) => Outcome::Closed,
        Ok(Ok(_)) => Outcome::Accepted,
        Ok(Err(e)) => tls_error(e),
        Err(_) => Outcome::Closed,
    }
}

fn tls_error(e: std::io::Error) -> Outcome {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => Outcome::Refused(tls.clone()),
        None => Outcome::Closed,
    }
}

/// A TLS 1.3 connection to `addr` as `client` (ALPN `h2`), trusting `ca_pem`; panics when the
/// handshake fails.
pub async fn connect(
    addr: std::net::SocketAddr,
    ca_pem: &[u8],
    client: &ClientCert,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let chain = CertificateDer::pem_slice_iter(&client.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("client certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(&client.key_pem).expect("client key PEM");
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client identity");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    let name = ServerName::try_from("localhost").expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake")
}

/// Completes a handshake and the HTTP/2 preface, then sends nothing and waits up to `limit`
/// for the server to close the connection; answers how long that took (`None`: still open).
pub async fn idle_until_closed(
    addr: std::net::SocketAddr,
    ca_pem: &[u8],
    client: &ClientCert,
    limit: Duration,
) -> Option<Duration> {
    let mut stream = connect(addr, ca_pem, client).await;
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("preface");
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(started + limit, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {} // SETTINGS, pings, GOAWAY: keep reading until the close.
        }
    }
}

/// A client that stalls in the middle of its TLS handshake: it sends its ClientHello, reads
/// what the server answers (ServerHello … Finished) and never sends its own flight. Answers
/// how long after connecting the server closed the connection (`None`: still open after
/// `limit`) and how many bytes of handshake the server had sent.
pub async fn stall_mid_handshake(
    addr: std::net::SocketAddr,
    limit: Duration,
) -> (Option<Duration>, usize) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::try_from("localhost").expect("server name");
    let mut session =
        rustls::ClientConnection::new(Arc::new(config), name).expect("a client session");
    let mut hello = Vec::new();
    session.write_tls(&mut hello).expect("a ClientHello");
    // Timed from before the connection: the server's timeout starts when it accepts it.
    let started = tokio::time::Instant::now();
    let mut tcp = TcpStream::connect(addr).await.expect("TCP connect");
    tcp.write_all(&hello).await.expect("send the ClientHello");
    let mut received = 0;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(started + limit, tcp.read(&mut buf)).await {
            Err(_) => return (None, received),
            Ok(Ok(0)) | Ok(Err(_)) => return (Some(started.elapsed()), received),
            Ok(Ok(n)) => received += n,
        }
    }
}

/// Completes a TLS 1.3 handshake with `addr` as `client`, trusting `ca_pem`, and answers the
/// certificate the server presented (its leaf, DER), or `None` when the handshake failed. The
/// rotation test compares it with the certificate it wrote to disk.
pub async fn server_certificate(
    addr: std::net::SocketAddr,
    ca_pem: &[u8],
    client: &ClientCert,
) -> Option<Vec<u8>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.ok()?).ok()?;
    }
    let chain = CertificateDer::pem_slice_iter(&client.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let key = PrivateKeyDer::from_pem_slice(&client.key_pem).ok()?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .ok()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .ok()?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.ok()?;
    let name = ServerName::try_from("localhost").ok()?;
    let stream = connector.connect(name, tcp).await.ok()?;
    let (_, session) = stream.get_ref();
    session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.as_ref().to_vec())
}
