//! The exchange log's signing keys as every replica sees them: a receipt key
//! (`KEY_PURPOSE_RECEIPT`) and a tree-head key (`KEY_PURPOSE_TREE_HEAD`), kept in the store so
//! every replica signs with the same keys and a sequencer that takes over keeps signing with
//! the current one; rotated on a schedule with an overlap, as the token keys are
//! (`yrd_admin::keyring`), but never pruned: a receipt or tree head must stay verifiable
//! forever, so every key ever used stays in the ring and is published with its window.
//!
//! # Rotation with overlap
//!
//! When the newest key of a purpose is older than its rotation period, a successor is stored
//! that activates [`ACTIVATION_DELAY`] later, so every replica has reloaded it (every
//! [`RELOAD_INTERVAL`]) before it signs; the predecessor's window closes [`OVERLAP`] after that
//! activation, which covers a replica that reloads late. Window bounds are whole seconds.
//!
//! # The legacy log key
//!
//! Before issue 16 one key (store purpose `log`) signed receipts and tree heads. On the first
//! start of this version the dedicated keys are made, active at once, and the legacy key's
//! window closes [`OVERLAP`] later; it stays in the ring for both purposes, so what it signed
//! verifies, and it is published twice, as a retired receipt key and a retired tree-head key
//! (which is what it was). A rolling upgrade should finish within the overlap: a replica of the
//! old version still signing with it after that makes receipts a verifier refuses.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use yrd_call::periodic::{RotatedKeys, keep_rotated};
use yrd_domain::clock::Clock;
use yrd_pki::{Es256Key, LogKey, LogKeyPurpose, LogKeyRing, LogKeyRingError, SharedLogKeys};
use yrd_store::{KeyPurpose, SigningKeyRecord, Store, StoreError};

/// How long after it is stored a rotated-in key starts signing.
pub const ACTIVATION_DELAY: time::Duration = time::Duration::seconds(60);
/// How long a predecessor's window stays open after its successor's activation.
pub const OVERLAP: time::Duration = time::Duration::minutes(10);
/// How often every replica reloads the ring from the store (and rotates when due).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// Why the log keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LogKeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key is unusable.
    #[error("log signing key: {0}")]
    Key(#[from] yrd_pki::PkiError),
    /// A stored key's id is not the thumbprint of the key stored with it.
    #[error("stored log signing key {stored:?} is really key {actual:?}: kid and key disagree")]
    KidMismatch {
        /// The kid as stored.
        stored: String,
        /// The thumbprint of the key.
        actual: String,
    },
    /// The stored keys leave a purpose without a key.
    #[error(transparent)]
    Ring(#[from] LogKeyRingError),
}

/// How often each log key is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogKeyRotation {
    /// Rotation period of the receipt key.
    pub receipt: time::Duration,
    /// Rotation period of the tree-head key.
    pub tree_head: time::Duration,
}

impl LogKeyRotation {
    fn period(&self, purpose: LogKeyPurpose) -> time::Duration {
        match purpose {
            LogKeyPurpose::Receipt => self.receipt,
            LogKeyPurpose::TreeHead => self.tree_head,
        }
    }
}

/// The shared, reloadable log keys of this replica.
#[derive(Debug)]
pub struct LogKeys {
    shared: Arc<SharedLogKeys>,
    store: Store,
    clock: Arc<dyn Clock>,
    rotation: LogKeyRotation,
}

const PURPOSES: [LogKeyPurpose; 2] = [LogKeyPurpose::Receipt, LogKeyPurpose::TreeHead];

fn store_purpose(purpose: LogKeyPurpose) -> KeyPurpose {
    match purpose {
        LogKeyPurpose::Receipt => KeyPurpose::Receipt,
        LogKeyPurpose::TreeHead => KeyPurpose::TreeHead,
    }
}

/// `t` rounded down to the whole second (window bounds are whole seconds).
fn whole_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

impl LogKeys {
    /// Loads the keys; on first start makes the receipt and tree-head keys (retiring the
    /// legacy log key, if any), and rotates a key whose period has passed.
    pub async fn load_or_create(
        store: Store,
        clock: Arc<dyn Clock>,
        rotation: LogKeyRotation,
    ) -> Result<LogKeys, LogKeyError> {
        let now = clock.now();
        let start = whole_second(now);
        let mut made = false;
        for purpose in PURPOSES {
            if store
                .all_signing_keys(store_purpose(purpose))
                .await?
                .is_empty()
            {
                let key = Es256Key::generate();
                store
                    .add_signing_key(&record(&key, purpose, now, start)?, start + OVERLAP)
                    .await?;
                made = true;
            }
        }
        if made {
            // Idempotent: only a legacy key still without an end gets one.
            store
                .retire_signing_keys(KeyPurpose::Log, start + OVERLAP)
                .await?;
        }
        let keys = LogKeys {
            shared: Arc::new(SharedLogKeys::new(load_ring(&store).await?)),
            store,
            clock,
            rotation,
        };
        keys.rotate_if_due().await?;
        Ok(keys)
    }

    /// The ring the signers read.
    pub fn shared(&self) -> Arc<SharedLogKeys> {
        self.shared.clone()
    }

    /// Reloads the ring from the store.
    pub async fn reload(&self) -> Result<(), LogKeyError> {
        self.shared.replace(load_ring(&self.store).await?);
        Ok(())
    }

    /// Rotates each key whose newest is older than its period; answers which were rotated.
    pub async fn rotate_if_due(&self) -> Result<Vec<LogKeyPurpose>, LogKeyError> {
        let now = self.clock.now();
        let ring = self.shared.ring();
        let mut rotated = Vec::new();
        for purpose in PURPOSES {
            let due = ring
                .newest(purpose)
                .is_none_or(|k| now - k.not_before() >= self.rotation.period(purpose));
            if due {
                self.rotate(purpose, now).await?;
                rotated.push(purpose);
            }
        }
        Ok(rotated)
    }

    /// Stores a successor for `purpose` activating [`ACTIVATION_DELAY`] after `now`; the
    /// predecessors' windows close [`OVERLAP`] after that activation.
    pub async fn rotate(
        &self,
        purpose: LogKeyPurpose,
        now: OffsetDateTime,
    ) -> Result<(), LogKeyError> {
        let activation = whole_second(now) + ACTIVATION_DELAY;
        let key = Es256Key::generate();
        self.store
            .add_signing_key(
                &record(&key, purpose, now, activation)?,
                activation + OVERLAP,
            )
            .await?;
        self.reload().await
    }

    /// Reloads every [`RELOAD_INTERVAL`] and rotates when due, until `stop` is cancelled.
    pub fn spawn(self: Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        keep_rotated(self, RELOAD_INTERVAL, stop)
    }
}

impl RotatedKeys for LogKeys {
    type Error = LogKeyError;
    const SIGNS: &'static str = "log";

    async fn reload(&self) -> Result<(), LogKeyError> {
        LogKeys::reload(self).await
    }

    async fn rotate_due(&self) -> Result<(), LogKeyError> {
        for purpose in self.rotate_if_due().await? {
            tracing::info!(purpose = purpose.contract_name(), "log signing key rotated");
        }
        Ok(())
    }
}

fn record(
    key: &Es256Key,
    purpose: LogKeyPurpose,
    now: OffsetDateTime,
    activation: OffsetDateTime,
) -> Result<SigningKeyRecord, LogKeyError> {
    Ok(SigningKeyRecord {
        kid: key.kid().to_owned(),
        purpose: store_purpose(purpose),
        private_key_pem: key.to_pkcs8_pem()?,
        created_at: now,
        activates_at: activation,
        retires_at: None,
    })
}

/// Every log key ever stored: the legacy key for both purposes, then the dedicated ones.
async fn load_ring(store: &Store) -> Result<LogKeyRing, LogKeyError> {
    let mut keys = Vec::new();
    for (stored, purposes) in [
        (
            KeyPurpose::Log,
            &[LogKeyPurpose::Receipt, LogKeyPurpose::TreeHead][..],
        ),
        (KeyPurpose::Receipt, &[LogKeyPurpose::Receipt][..]),
        (KeyPurpose::TreeHead, &[LogKeyPurpose::TreeHead][..]),
    ] {
        for r in store.all_signing_keys(stored).await? {
            let key = Es256Key::from_pkcs8_pem(&r.private_key_pem)?;
            if key.kid() != r.kid {
                return Err(LogKeyError::KidMismatch {
                    stored: r.kid,
                    actual: key.kid().to_owned(),
                });
            }
            keys.push(LogKey::new(key, purposes, r.activates_at, r.retires_at));
        }
    }
    Ok(LogKeyRing::new(keys)?)
}
