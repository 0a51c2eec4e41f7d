//! Revocation and agency suspension with immediate effect, on every replica.
//!
//! A revocation is a row in the shared store that advances the revocation counter. Each
//! replica's watcher polls that counter (a one-row read) every quarter second; when it moves,
//! the watcher reloads the revoked set that the identity layer checks on **every call** (so
//! open connections stop being served at once) and rebuilds the CRL in the TLS acceptor (so the
//! next handshake fails). Polling a single counter keeps this identical on SQLite and
//! PostgreSQL and well inside the one-second bound; the CRL is also re-signed before it nears
//! its next-update time, because the verifier refuses an expired CRL.
//!
//! Suspending or resuming an agency moves the same counter, so the suspended set the identity
//! layer checks is reloaded the same way: a suspended agency's tokens stop working at once, not
//! when they expire.
//!
//! Each reload also moves a generation that open streams watch ([`Revocations::changes`]): a
//! stream already open re-checks its connection's certificate and agency at once (see the
//! `live` module), so it ends within the same bound as the next unary call.
//!
//! On the replica that revokes or suspends, the admin handler does not wait for the poll: it
//! calls [`RevocationWatcher::refresh`] through [`yrd_admin::ApplyRevocations`] and answers only
//! once the change is in this replica's sets and CRL. Refreshes are serialized, so a slow
//! refresh that read the store before the change can never store its older sets over a newer
//! one.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use yrd_call::periodic::every;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_pki::{CertificateAuthority, RevocationReason, RevokedCert};
use yrd_store::Store;

use crate::server::tls::ServerTls;

/// How often each replica looks at the revocation counter.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a CRL is valid; it is re-signed when half of that has passed.
pub const CRL_VALIDITY: time::Duration = time::Duration::days(2);

/// The revoked certificates' fingerprints and the suspended agencies, as the identity layer
/// checks them per call.
#[derive(Debug)]
pub struct Revocations {
    fingerprints: ArcSwap<HashSet<String>>,
    suspended: ArcSwap<HashSet<String>>,
    /// The counter value the set reflects; -1 before the first load.
    seq: AtomicI64,
    /// Moved after every reload of the sets, so open streams re-check without polling.
    generation: tokio::sync::watch::Sender<i64>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new()
    }
}

impl Revocations {
    /// An empty set that has not been loaded yet.
    pub fn new() -> Self {
        Revocations {
            fingerprints: ArcSwap::from_pointee(HashSet::new()),
            suspended: ArcSwap::from_pointee(HashSet::new()),
            seq: AtomicI64::new(-1),
            generation: tokio::sync::watch::Sender::new(-1),
        }
    }

    /// Sees every reload of the revoked and suspended sets (the value is the store's revocation
    /// counter the sets reflect). Open streams wait on it to re-check their caller.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<i64> {
        self.generation.subscribe()
    }

    /// True when the certificate with this SHA-256 fingerprint (lowercase hex) is revoked.
    pub fn is_revoked(&self, fingerprint: &str) -> bool {
        self.fingerprints.load().contains(fingerprint)
    }

    /// True when the agency with this id is suspended: none of its certificates is served.
    pub fn is_suspended(&self, agency: &str) -> bool {
        self.suspended.load().contains(agency)
    }
}

#[cfg(test)]
impl Revocations {
    /// Replaces both sets as a refresh would (unit tests of the layers that read them).
    pub(crate) fn set_for_test(&self, fingerprints: &[&str], suspended: &[&str]) {
        let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        self.fingerprints.store(Arc::new(owned(fingerprints)));
        self.suspended.store(Arc::new(owned(suspended)));
        self.generation.send_modify(|g| *g += 1);
    }
}

/// Why a refresh failed. The watcher logs it and tries again on the next tick, keeping what it
/// had: a store outage never un-revokes anything.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] yrd_store::StoreError),
    /// The CRL could not be signed.
    #[error(transparent)]
    Pki(#[from] yrd_pki::PkiError),
    /// The TLS configuration refused the new CRL.
    #[error(transparent)]
    Tls(#[from] crate::server::tls::TlsError),
}

/// Keeps [`Revocations`] and the acceptor's CRL in step with the store.
#[derive(Debug)]
pub struct RevocationWatcher {
    store: Store,
    revocations: Arc<Revocations>,
    tls: Arc<ServerTls>,
    ca: Option<Arc<CertificateAuthority>>,
    crl_signed_at: std::sync::Mutex<Option<OffsetDateTime>>,
    /// Held for a whole refresh: the poll and an admin's immediate refresh never interleave,
    /// so sets read before a change are never stored after the sets that include it.
    refreshing: tokio::sync::Mutex<()>,
}

impl RevocationWatcher {
    /// A watcher; without a CA key it keeps the per-call check only (no CRL is signed).
    pub fn new(
        store: Store,
        revocations: Arc<Revocations>,
        tls: Arc<ServerTls>,
        ca: Option<Arc<CertificateAuthority>>,
    ) -> Self {
        RevocationWatcher {
            store,
            revocations,
            tls,
            ca,
            crl_signed_at: std::sync::Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Brings the revoked set and the CRL up to date; cheap when nothing changed.
    pub async fn refresh(&self) -> Result<(), RefreshError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let seq = self.store.revocation_seq().await?;
        // The CRL's window is read by rustls against the system clock, so it is set from the
        // system clock too, whatever clock the rest of the exchange runs on.
        let now = SystemClock.now();
        let stale_crl = self.ca.is_some()
            && self
                .crl_signed_at
                .lock()
                .map(|t| t.is_none_or(|t| now - t > CRL_VALIDITY / 2))
                .unwrap_or(true);
        if seq == self.revocations.seq.load(Ordering::SeqCst) && !stale_crl {
            return Ok(());
        }
        let revoked = self.store.revoked_certificates().await?;
        let fingerprints: HashSet<String> = revoked.iter().map(|r| r.fingerprint.clone()).collect();
        self.revocations.fingerprints.store(Arc::new(fingerprints));
        let suspended: HashSet<String> =
            self.store.suspended_agencies().await?.into_iter().collect();
        self.revocations.suspended.store(Arc::new(suspended));
        self.revocations.seq.store(seq, Ordering::SeqCst);
        self.revocations.generation.send_replace(seq);
        if let Some(ca) = &self.ca {
            let entries = revoked
                .iter()
                .map(|r| RevokedCert {
                    serial_hex: r.serial.clone(),
                    revoked_at: r.revoked_at,
                    reason: r.reason.parse().unwrap_or(RevocationReason::Unspecified),
                })
                .collect::<Vec<_>>();
            let crl = ca.crl(
                &entries,
                now,
                now + CRL_VALIDITY,
                u64::try_from(seq).unwrap_or(0),
            )?;
            self.tls.set_crls(vec![crl.der.to_vec()])?;
            if let Ok(mut t) = self.crl_signed_at.lock() {
                *t = Some(now);
            }
        }
        tracing::info!(
            revocations = revoked.len(),
            seq,
            "revocation list refreshed"
        );
        Ok(())
    }

    /// Refreshes every [`POLL_INTERVAL`] until `stop` is cancelled. (A change made on this
    /// replica is applied before its answer, through [`yrd_admin::ApplyRevocations`].)
    pub fn spawn(self: Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        every(POLL_INTERVAL, None, stop, move || {
            let watcher = self.clone();
            async move {
                if let Err(e) = watcher.refresh().await {
                    tracing::warn!(error = %e, "revocation refresh failed; keeping the current list");
                }
            }
        })
    }
}

impl yrd_admin::ApplyRevocations for RevocationWatcher {
    fn apply_now(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<(), yrd_admin::ApplyError>> + Send + '_>> {
        Box::pin(async move {
            self.refresh()
                .await
                .map_err(|e| yrd_admin::ApplyError(e.to_string()))
        })
    }
}
