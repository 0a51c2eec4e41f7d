//! Client connections as a partner system makes them: mTLS with an agency's dev certificate,
//! and an access token bound to it (`TokenService.IssueToken`) sent as a bearer on every call.
//!
//! The PEM files are read once per agency, so that a new connection (the handshake workload)
//! costs the client a TCP connect, a TLS handshake and the HTTP/2 preface, nothing more.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The five Delta agencies with a district of each province (GB/T 2260), in the order
/// connections are spread over them.
pub const AGENCIES: [(&str, &str); 5] = [
    ("310000-SAMR", "310104"),
    ("320000-AMR", "320102"),
    ("330000-AMR", "330102"),
    ("340000-AMR", "340102"),
    ("370000-AMR", "370102"),
];

/// A server to connect to: its address (or its replicas' addresses) and the dev PKI its
/// certificates come from.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    /// The other replicas (`--replicas`): each new connection goes to the next address in
    /// turn, as a TCP load balancer in front of them would spread them.
    replicas: Vec<SocketAddr>,
    /// Counts the connections made, for the turn.
    next: Arc<AtomicUsize>,
    pki: PathBuf,
}

impl Target {
    /// The server at `addr` with the dev PKI in `pki` (as `yrd serve` lays it out).
    pub fn new(addr: SocketAddr, pki: &Path) -> Target {
        Target {
            addr,
            replicas: Vec::new(),
            next: Arc::default(),
            pki: pki.to_owned(),
        }
    }

    /// This server and `others` (replicas serving the same PKI): connections are spread over
    /// them round-robin.
    pub fn spread_over(&self, others: &[Target]) -> Target {
        Target {
            replicas: others.iter().map(|t| t.addr).collect(),
            next: Arc::default(),
            ..self.clone()
        }
    }

    /// The address the next connection goes to.
    fn next_addr(&self) -> SocketAddr {
        if self.replicas.is_empty() {
            return self.addr;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % (self.replicas.len() + 1);
        match turn {
            0 => self.addr,
            i => self.replicas[i - 1],
        }
    }

    /// An endpoint presenting `agency`'s `system` certificate; connect it as often as needed.
    pub fn endpoint(&self, agency: &str) -> anyhow::Result<Endpoint> {
        self.endpoint_as(agency, "system")
    }

    /// An endpoint presenting `agency`'s dev certificate of `profile` (`system`, `admin` or
    /// `auditor`).
    pub fn endpoint_as(&self, agency: &str, profile: &str) -> anyhow::Result<Endpoint> {
        let read = |path: PathBuf| {
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        };
        let folder = self.pki.join("agencies").join(agency);
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(self.pki.join("ca.pem"))?))
            .identity(Identity::from_pem(
                read(folder.join(format!("{profile}.pem")))?,
                read(folder.join(format!("{profile}.key")))?,
            ))
            .domain_name("localhost");
        Ok(Endpoint::from_shared(format!("https://{}", self.next_addr()))?.tls_config(tls)?)
    }

    /// One connection as `agency`.
    pub async fn channel(&self, agency: &str) -> anyhow::Result<Channel> {
        Ok(self.endpoint(agency)?.connect().await?)
    }

    /// One connection as `agency` with a token bound to its certificate.
    pub async fn session(&self, agency: &str) -> anyhow::Result<Authed> {
        self.session_as(agency, "system").await
    }

    /// One connection as `agency`'s `profile` certificate with a token bound to it.
    pub async fn session_as(&self, agency: &str, profile: &str) -> anyhow::Result<Authed> {
        let channel = self.endpoint_as(agency, profile)?.connect().await?;
        let token = yrd_proto::v1::token_service_client::TokenServiceClient::new(channel.clone())
            .issue_token(yrd_proto::v1::IssueTokenRequest::default())
            .await
            .with_context(|| format!("issuing a token to {agency} ({profile})"))?
            .into_inner()
            .access_token;
        let bearer: MetadataValue<Ascii> = format!("Bearer {token}").parse()?;
        Ok(InterceptedService::new(channel, Bearer(bearer)))
    }

    /// `count` sessions, connection `i` as agency `i mod 5` (or the agencies `pick` names).
    pub async fn sessions(
        &self,
        count: usize,
        pick: impl Fn(usize) -> usize,
    ) -> anyhow::Result<Vec<Authed>> {
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            out.push(self.session(AGENCIES[pick(i) % AGENCIES.len()].0).await?);
        }
        Ok(out)
    }
}

/// A channel whose calls carry the bearer token: the suites' own (`yrd_e2e`), so that the
/// bench calls as the end-to-end tests do.
pub use yrd_e2e::{Authed, Bearer};

/// A failed call as the report shows it.
pub fn failure(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}
