//! The baseline: a bare tonic service that echoes its message, served exactly as `yrd serve`
//! serves the exchange minus its layers and handlers: the same rustls acceptor
//! (`yrd_gateway::server::tls`, TLS 1.3, client certificates checked against the exchange CA),
//! the same handshake caps, and the same HTTP/2 limits from the default settings. What the
//! exchange costs beyond this is what its own code costs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use yrd_gateway::config::Settings;
use yrd_gateway::server::handshake_limit::{HandshakeCaps, HandshakeLimiter};
use yrd_gateway::server::startup::server_builder;
use yrd_gateway::server::tls::{ServerTls, TlsMaterial, incoming};

/// The generated echo contract (`proto/echo.proto`).
pub mod pb {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("yrd.bench.v1");
}

use pb::EchoMessage;
use pb::echo_service_server::{EchoService, EchoServiceServer};

/// The size of an echoed message: about a spot-check publication on the wire.
pub const PAYLOAD_BYTES: usize = 1200;

/// A message of [`PAYLOAD_BYTES`].
pub fn message() -> EchoMessage {
    EchoMessage {
        payload: (0..PAYLOAD_BYTES).map(|i| (i % 251) as u8).collect(),
    }
}

#[derive(Debug, Default)]
struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(
        &self,
        request: tonic::Request<EchoMessage>,
    ) -> Result<tonic::Response<EchoMessage>, tonic::Status> {
        Ok(tonic::Response::new(request.into_inner()))
    }
}

/// Serves the echo with the server certificate and CA of the dev PKI in `pki` on a free port
/// of 127.0.0.1, prints `listening <addr>` on stdout, and runs until killed.
pub async fn serve(pki: &Path) -> anyhow::Result<()> {
    let read = |name: &str| {
        let path = pki.join(name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let material = TlsMaterial {
        ca_pem: read("ca.pem")?,
        server_cert_pem: read("server.pem")?,
        server_key_pem: read("server.key")?,
        crls: Vec::new(),
    };
    let tls = Arc::new(ServerTls::new(&material)?);
    let settings = Settings::default();
    let limits = &settings.limits;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let connections = incoming(
        listener,
        tls,
        Duration::from_millis(settings.tls.handshake_timeout_ms),
        Duration::from_secs(limits.idle_timeout_s),
        HandshakeLimiter::new(HandshakeCaps {
            total: settings.tls.max_pending_handshakes,
            per_source: settings.tls.max_pending_handshakes_per_source,
        }),
        stop.clone(),
    );
    // The builder settings of `yrd serve`, without its layers.
    server_builder(limits)
        .add_service(
            EchoServiceServer::new(Echo).max_decoding_message_size(limits.max_message_bytes),
        )
        .serve_with_incoming_shutdown(connections, stop.cancelled_owned())
        .await?;
    Ok(())
}
