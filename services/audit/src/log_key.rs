//! The exchange log's signing key. One ES256 key signs receipts and tree heads; it lives in the
//! store (purpose `log`) so every replica signs with the same key and a sequencer that takes
//! over after another keeps the same key id. Its public half is published with the token keys
//! by `TokenService.GetJwks`.

use time::OffsetDateTime;
use yrd_pki::Es256Key;
use yrd_store::{KeyPurpose, SigningKeyRecord, Store, StoreError};

/// Why the log key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LogKeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored key is unusable.
    #[error("log signing key: {0}")]
    Key(#[from] yrd_pki::PkiError),
}

/// Loads the log key, making and storing it on first start. When two replicas start at once
/// and both make one, the second insert loses and it loads the winner's.
pub async fn load_or_create(store: &Store, now: OffsetDateTime) -> Result<Es256Key, LogKeyError> {
    if let Some(record) = store.signing_keys(KeyPurpose::Log, now).await?.first() {
        return Ok(Es256Key::from_pkcs8_pem(&record.private_key_pem)?);
    }
    let key = Es256Key::generate();
    let record = SigningKeyRecord {
        kid: key.kid().to_owned(),
        purpose: KeyPurpose::Log,
        private_key_pem: key.to_pkcs8_pem()?,
        created_at: now,
        activates_at: now,
        retires_at: None,
    };
    match store.add_signing_key(&record, now).await {
        Ok(()) => Ok(key),
        Err(StoreError::AlreadyExists { .. }) => {
            let stored = store.signing_keys(KeyPurpose::Log, now).await?;
            let first = stored.first().ok_or_else(|| StoreError::Corrupt {
                what: "log signing key",
                detail: "vanished after a concurrent insert".into(),
            })?;
            Ok(Es256Key::from_pkcs8_pem(&first.private_key_pem)?)
        }
        Err(e) => Err(e.into()),
    }
}
