//! The exchange's signing keys (ES256), kept in the database so every replica signs and
//! verifies with the same ring. The private key is stored as PKCS#8 PEM; the database is the
//! exchange's own, and its backups must be protected like the CA key.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use crate::decode;
use crate::time_codec::to_micros;
use crate::write::refuse_existing;
use crate::write::{Rows, Write, WriteError};
use crate::{Store, StoreError};

/// What a key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Access tokens (TokenService).
    AccessToken,
    /// The legacy exchange-log key, which signed receipts and tree heads alike until each got
    /// a key of its own; kept (retired) so that what it signed stays verifiable.
    Log,
    /// Receipts of writes.
    Receipt,
    /// Signed tree heads of the exchange log.
    TreeHead,
}

impl KeyPurpose {
    fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::AccessToken => "access_token",
            KeyPurpose::Log => "log",
            KeyPurpose::Receipt => "receipt",
            KeyPurpose::TreeHead => "tree_head",
        }
    }
}

/// A stored signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// What it signs.
    pub purpose: KeyPurpose,
    /// PKCS#8 PEM.
    pub private_key_pem: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it starts signing.
    pub activates_at: OffsetDateTime,
    /// When it stops verifying (set once a successor exists).
    pub retires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("purpose", &self.purpose)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .finish_non_exhaustive()
    }
}

impl SigningKeyRecord {
    fn from_row(row: &AnyRow, purpose: KeyPurpose) -> Result<Self, StoreError> {
        Ok(SigningKeyRecord {
            kid: row.try_get("kid")?,
            purpose,
            private_key_pem: row.try_get("private_key_pem")?,
            created_at: decode::time(row, "created_at")?,
            activates_at: decode::time(row, "activates_at")?,
            retires_at: decode::time_opt(row, "retires_at")?,
        })
    }
}

impl Store {
    /// Stores a new key and, in the same write, sets `retires_at` on every key of the
    /// purpose that had none (the overlap: they keep verifying until then).
    pub async fn add_signing_key(
        &self,
        key: &SigningKeyRecord,
        predecessors_retire_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let rows = KeyRows::Add {
            key: key.clone(),
            predecessors_retire_at,
        };
        self.commit_keys(rows).await
    }

    /// Sets `retires_at` to `at` on every key of `purpose` that has none yet (used when the
    /// legacy log key hands over to the receipt and tree-head keys).
    pub async fn retire_signing_keys(
        &self,
        purpose: KeyPurpose,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.commit_keys(KeyRows::Retire { purpose, at }).await
    }

    async fn commit_keys(&self, rows: KeyRows) -> Result<(), StoreError> {
        self.commit(Write::new(rows))
            .await
            .map(|_| ())
            .map_err(WriteError::into_store)
    }

    /// Every key of `purpose` ever stored, retired ones included, oldest first: the exchange
    /// log's keys are never pruned, so that what they signed stays verifiable.
    pub async fn all_signing_keys(
        &self,
        purpose: KeyPurpose,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.keys_verifying(purpose, None).await
    }

    /// Keys of `purpose` still verifying at `now` (not retired), oldest first.
    pub async fn signing_keys(
        &self,
        purpose: KeyPurpose,
        now: OffsetDateTime,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.keys_verifying(purpose, Some(now)).await
    }

    /// Keys of `purpose` not retired at `now` (every one for `None`), oldest first.
    async fn keys_verifying(
        &self,
        purpose: KeyPurpose,
        now: Option<OffsetDateTime>,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, private_key_pem, created_at, activates_at, retires_at FROM signing_keys \
             WHERE purpose = $1 AND ($2 IS NULL OR retires_at IS NULL OR retires_at > $2) \
             ORDER BY activates_at, kid",
        )
        .bind(purpose.as_str())
        .bind(now.map(to_micros))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| SigningKeyRecord::from_row(row, purpose))
            .collect()
    }
}

/// The rows of a key change (not `Debug`: it holds a private key).
#[derive(Clone)]
enum KeyRows {
    /// A new key; its predecessors of the purpose retire at the given time.
    Add {
        key: SigningKeyRecord,
        predecessors_retire_at: OffsetDateTime,
    },
    /// Every key of the purpose without a retirement retires at `at`.
    Retire {
        purpose: KeyPurpose,
        at: OffsetDateTime,
    },
}

/// Sets `retires_at` on every key of `purpose` that has none.
async fn retire_in(
    conn: &mut AnyConnection,
    purpose: KeyPurpose,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE signing_keys SET retires_at = $1 WHERE purpose = $2 AND retires_at IS NULL",
    )
    .bind(to_micros(at))
    .bind(purpose.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Rows for KeyRows {
    type Value = ();
    /// [`StoreError::AlreadyExists`] when the key id is taken.
    type Refusal = StoreError;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<(), WriteError<StoreError>> {
        let (key, retire_at) = match self {
            KeyRows::Retire { purpose, at } => {
                retire_in(conn, *purpose, *at).await?;
                return Ok(());
            }
            KeyRows::Add {
                key,
                predecessors_retire_at,
            } => (key, *predecessors_retire_at),
        };
        retire_in(conn, key.purpose, retire_at).await?;
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, purpose, private_key_pem, created_at, activates_at, retires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(key.purpose.as_str())
        .bind(&key.private_key_pem)
        .bind(to_micros(key.created_at))
        .bind(to_micros(key.activates_at))
        .bind(key.retires_at.map(to_micros))
        .execute(&mut *conn)
        .await;
        refuse_existing(inserted, || format!("signing key {}", key.kid))?;
        Ok(())
    }
}
