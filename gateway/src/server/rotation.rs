//! Rotation of the server certificate and the CA bundle without a restart: the files are
//! re-read when their modification time changes (checked every two seconds) or at once on
//! SIGHUP, and the acceptor's configuration is rebuilt. Bad new material is refused and logged;
//! the server keeps serving with what it had.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::server::tls::ServerTls;

/// How often the files' modification times are compared.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The files the acceptor's certificate material comes from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA bundle (PEM) that client certificates must chain to.
    pub ca: PathBuf,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server key (PKCS#8 PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    fn stamps(&self) -> [Option<SystemTime>; 3] {
        let stamp = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        [stamp(&self.ca), stamp(&self.cert), stamp(&self.key)]
    }

    /// Reads the three files and rebuilds the acceptor with them.
    pub fn reload_into(&self, tls: &ServerTls) -> Result<(), String> {
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        tls.rotate(read(&self.ca)?, read(&self.cert)?, read(&self.key)?)
            .map_err(|e| e.to_string())
    }
}

/// Watches `files` until `stop` is cancelled.
pub fn spawn(
    files: TlsFiles,
    tls: Arc<ServerTls>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = files.stamps();
        let mut hangup = hangup_signal();
        let mut tick = tokio::time::interval(CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => false,
                () = next_hangup(&mut hangup) => true,
            };
            let now = files.stamps();
            if !forced && now == seen {
                continue;
            }
            seen = now;
            match files.reload_into(&tls) {
                Ok(()) => tracing::info!(forced, "server certificate and CA bundle reloaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "TLS material not reloaded; keeping the current one")
                }
            }
        }
    })
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(signal: &mut Hangup) {
    match signal {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}
#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending::<()>().await
}
