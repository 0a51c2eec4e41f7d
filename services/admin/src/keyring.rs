//! The token signing keys as every replica sees them: loaded from the store, created on first
//! start, rotated on a schedule with an overlap, and reloaded when another replica rotated.
//!
//! A rotation stores the successor with an activation a little in the future
//! ([`ACTIVATION_DELAY`]), so every replica has reloaded it (they reload every
//! [`RELOAD_INTERVAL`] and on any unknown `kid`) before the first token it signs arrives; the
//! predecessor keeps verifying until the successor's activation plus the longest token
//! lifetime.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use yrd_call::periodic::{RotatedKeys, keep_rotated};
use yrd_domain::clock::Clock;
use yrd_store::{KeyPurpose, SigningKeyRecord, Store};

use crate::token::{KeyError, KeyRing, MAX_TOKEN_LIFETIME, SigningKey, StoredSigningKey};

/// How long after it is stored a rotated-in key starts signing.
pub const ACTIVATION_DELAY: time::Duration = time::Duration::seconds(60);
/// How often every replica reloads the ring from the store.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// Why the key ring could not be loaded or rotated.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] yrd_store::StoreError),
    /// A stored key is unusable, or a key could not be made.
    #[error("token signing key: {0}")]
    Key(#[from] KeyError),
}

/// The shared, reloadable key ring.
#[derive(Debug)]
pub struct TokenKeys {
    ring: ArcSwap<KeyRing>,
    store: Store,
    clock: Arc<dyn Clock>,
    rotation_period: time::Duration,
    /// Serialises reloads triggered by unknown key ids, at most one a second.
    last_reload: std::sync::Mutex<OffsetDateTime>,
}

impl TokenKeys {
    /// Loads the ring, making and storing the first key when the store has none.
    pub async fn load_or_create(
        store: Store,
        clock: Arc<dyn Clock>,
        rotation_period: time::Duration,
    ) -> Result<TokenKeys, KeyStoreError> {
        let now = clock.now();
        let mut records = store.signing_keys(KeyPurpose::AccessToken, now).await?;
        if records.is_empty() {
            let key = SigningKey::generate(now)?;
            store
                .add_signing_key(&to_record(&key.to_stored()?, now)?, now)
                .await?;
            records = store.signing_keys(KeyPurpose::AccessToken, now).await?;
        }
        let ring = ring_from(&records)?;
        Ok(TokenKeys {
            ring: ArcSwap::from_pointee(ring),
            store,
            clock,
            rotation_period,
            last_reload: std::sync::Mutex::new(now),
        })
    }

    /// The ring as it stands.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    /// Reloads the ring from the store.
    pub async fn reload(&self) -> Result<(), KeyStoreError> {
        let now = self.clock.now();
        let records = self
            .store
            .signing_keys(KeyPurpose::AccessToken, now)
            .await?;
        if !records.is_empty() {
            self.ring.store(Arc::new(ring_from(&records)?));
        }
        Ok(())
    }

    /// Reloads when a token names a key this replica does not know, at most once a second, so
    /// a token signed by a key another replica just rotated in verifies here too.
    pub async fn reload_for_unknown_kid(&self) -> bool {
        let now = self.clock.now();
        {
            let Ok(mut last) = self.last_reload.lock() else {
                return false;
            };
            if now - *last < time::Duration::seconds(1) {
                return false;
            }
            *last = now;
        }
        self.reload().await.is_ok()
    }

    /// Rotates when the newest key is older than the rotation period. Answers whether it did.
    pub async fn rotate_if_due(&self) -> Result<bool, KeyStoreError> {
        let now = self.clock.now();
        let ring = self.ring();
        let newest = ring.keys().iter().map(SigningKey::not_before).max();
        if newest.is_some_and(|t| now - t < self.rotation_period) {
            return Ok(false);
        }
        self.rotate(now).await?;
        Ok(true)
    }

    /// Stores a successor activating after [`ACTIVATION_DELAY`]; the keys before it retire
    /// once the successor has been signing for the longest token lifetime.
    pub async fn rotate(&self, now: OffsetDateTime) -> Result<(), KeyStoreError> {
        let activation = now + ACTIVATION_DELAY;
        let successor = SigningKey::generate(activation)?;
        let retire = activation + MAX_TOKEN_LIFETIME;
        self.store
            .add_signing_key(&to_record(&successor.to_stored()?, now)?, retire)
            .await?;
        self.reload().await
    }

    /// Reloads every [`RELOAD_INTERVAL`] and rotates when due, until `stop` is cancelled.
    pub fn spawn(self: Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        keep_rotated(self, RELOAD_INTERVAL, stop)
    }
}

impl RotatedKeys for TokenKeys {
    type Error = KeyStoreError;
    const SIGNS: &'static str = "token";

    async fn reload(&self) -> Result<(), KeyStoreError> {
        TokenKeys::reload(self).await
    }

    async fn rotate_due(&self) -> Result<(), KeyStoreError> {
        if self.rotate_if_due().await? {
            tracing::info!("token signing key rotated");
        }
        Ok(())
    }
}

fn ring_from(records: &[SigningKeyRecord]) -> Result<KeyRing, KeyError> {
    let stored = records
        .iter()
        .map(|r| StoredSigningKey {
            kid: r.kid.clone(),
            pkcs8_pem: r.private_key_pem.clone(),
            not_before: r.activates_at.unix_timestamp(),
            retire_after: r.retires_at.map(|t| t.unix_timestamp()),
        })
        .collect::<Vec<_>>();
    KeyRing::from_stored(&stored)
}

fn to_record(stored: &StoredSigningKey, now: OffsetDateTime) -> Result<SigningKeyRecord, KeyError> {
    let at = |seconds: i64| {
        OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| KeyError::TimeOutOfRange {
            kid: stored.kid.clone(),
            seconds,
        })
    };
    Ok(SigningKeyRecord {
        kid: stored.kid.clone(),
        purpose: KeyPurpose::AccessToken,
        private_key_pem: stored.pkcs8_pem.clone(),
        created_at: now,
        activates_at: at(stored.not_before)?,
        retires_at: stored.retire_after.map(at).transpose()?,
    })
}
