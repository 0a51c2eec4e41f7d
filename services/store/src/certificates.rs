//! Certificates issued to agencies: the record admins list and revoke, and that revocation
//! checks read.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row};
use time::OffsetDateTime;
use yrd_domain::{AgencyId, Profile};

use yrd_domain::audit::LeafData;

use crate::decode::{self, FromRow};
use crate::time_codec::{from_micros, to_micros};
use crate::write::refuse_existing;
use crate::write::{Answer, Answered, Rows, Write, WriteError};
use crate::{Store, StoreError};

/// A certificate as the exchange recorded it when issuing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// The agency it admits.
    pub agency_id: AgencyId,
    /// What it admits the holder as.
    pub profile: Profile,
    /// SHA-256 of the DER certificate, lowercase hex (RFC 8705 `x5t#S256`).
    pub fingerprint: String,
    /// The subject distinguished name.
    pub subject: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// The certificate itself.
    pub certificate_pem: String,
    /// When the exchange issued it.
    pub issued_at: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// RFC 5280 reason name, when revoked.
    pub revocation_reason: Option<String>,
}

/// Where a certificate stands at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateState {
    /// Valid and not revoked.
    Active,
    /// Revoked by an admin.
    Revoked,
    /// Past its validity (or not yet valid).
    Expired,
}

impl CertificateRecord {
    /// The certificate's state at `now`. Revocation wins over expiry.
    pub fn state_at(&self, now: OffsetDateTime) -> CertificateState {
        if self.revoked_at.is_some() {
            CertificateState::Revoked
        } else if now < self.not_before || now > self.not_after {
            CertificateState::Expired
        } else {
            CertificateState::Active
        }
    }
}

impl FromRow for CertificateRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(CertificateRecord {
            serial: row.try_get("serial")?,
            agency_id: decode::parsed(row, "agency_id", "agency id")?,
            profile: decode::parsed(row, "profile", "certificate profile")?,
            fingerprint: row.try_get("fingerprint")?,
            subject: row.try_get("subject")?,
            not_before: decode::time(row, "not_before")?,
            not_after: decode::time(row, "not_after")?,
            certificate_pem: row.try_get("certificate_pem")?,
            issued_at: decode::time(row, "issued_at")?,
            revoked_at: decode::time_opt(row, "revoked_at")?,
            revocation_reason: row.try_get("revocation_reason")?,
        })
    }
}

const CERT_COLUMNS: &str = "serial, agency_id, profile, fingerprint, subject, not_before, \
                            not_after, certificate_pem, issued_at, revoked_at, revocation_reason";

/// Certificate `serial` as `executor` (a pool, or a transaction that just changed it) sees it.
async fn fetch_certificate<'e, E>(
    executor: E,
    serial: &str,
) -> Result<Option<CertificateRecord>, StoreError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE serial = $1");
    decode::optional(sqlx::query(&sql).bind(serial), executor).await
}

impl Store {
    /// Records an issued certificate, with the issuing call's audit `leaf` in the same
    /// transaction. Fails with [`StoreError::AlreadyExists`] when the serial or fingerprint is
    /// already recorded.
    pub async fn insert_certificate(
        &self,
        cert: &CertificateRecord,
        leaf: Option<&LeafData>,
    ) -> Result<(), StoreError> {
        self.insert_certificate_answered(cert, leaf, None)
            .await
            .map(|_| ())
    }

    /// As [`Store::insert_certificate`], recording `answer` for retries of the same request in
    /// the same write (a retry answers [`Answered::Replayed`] and records nothing).
    pub async fn insert_certificate_answered(
        &self,
        cert: &CertificateRecord,
        leaf: Option<&LeafData>,
        answer: Option<Answer<CertificateRecord>>,
    ) -> Result<Answered<()>, StoreError> {
        let write = Write::new(InsertRows(cert.clone()))
            .claim(answer.map(|a| a.into_claim(cert.issued_at)))
            .leaf(leaf.cloned());
        self.commit(write)
            .await
            .map(|done| done.map(|_| ()))
            .map_err(WriteError::into_store)
    }

    /// One certificate by its SHA-256 fingerprint (lowercase hex).
    pub async fn certificate_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE fingerprint = $1");
        decode::optional(sqlx::query(&sql).bind(fingerprint), &self.read).await
    }

    /// The certificates of one agency, newest first.
    pub async fn certificates_of(
        &self,
        agency: &AgencyId,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE agency_id = $1 \
             ORDER BY issued_at DESC, serial"
        );
        decode::all(sqlx::query(&sql).bind(agency.as_str()), &self.read).await
    }
}

/// Which certificates a listing wants.
#[derive(Debug, Clone, Default)]
pub struct CertificateFilter {
    /// Only this agency's.
    pub agency: Option<AgencyId>,
    /// Only this profile.
    pub profile: Option<Profile>,
    /// Only certificates in this state at `now`.
    pub state: Option<CertificateState>,
    /// Only certificates whose validity ends before this instant.
    pub expiring_before: Option<OffsetDateTime>,
}

/// A position in a certificate listing (newest first): the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateCursor {
    /// `issued_at` of the last row returned.
    pub issued_at: OffsetDateTime,
    /// Its serial.
    pub serial: String,
}

/// A revoked certificate, as the CRL and the per-call revocation check need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// SHA-256 fingerprint, lowercase hex.
    pub fingerprint: String,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// RFC 5280 reason name.
    pub reason: String,
}

/// Why a certificate could not be revoked.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// No certificate has that serial.
    #[error("certificate {0} not found")]
    NotFound(String),
    /// It was revoked before.
    #[error("certificate {serial} was already revoked at {at}")]
    AlreadyRevoked {
        /// Its serial.
        serial: String,
        /// When.
        at: OffsetDateTime,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::error::store_failure!(RevokeError);

impl Store {
    /// One certificate by serial.
    pub async fn get_certificate(
        &self,
        serial: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        fetch_certificate(&self.read, serial).await
    }

    /// Certificates matching `filter` at `now`, newest first, at most `limit`, after `after`.
    pub async fn list_certificates(
        &self,
        filter: &CertificateFilter,
        now: OffsetDateTime,
        after: Option<&CertificateCursor>,
        limit: u32,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        // Every condition is present and switched off by a NULL parameter, so one statement
        // text serves every filter combination (and stays prepared).
        let state = filter.state.map(|s| match s {
            CertificateState::Active => "active",
            CertificateState::Revoked => "revoked",
            CertificateState::Expired => "expired",
        });
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates \
             WHERE ($1 IS NULL OR agency_id = $1) \
               AND ($2 IS NULL OR profile = $2) \
               AND ($3 IS NULL \
                    OR ($3 = 'revoked' AND revoked_at IS NOT NULL) \
                    OR ($3 = 'active' AND revoked_at IS NULL AND not_before <= $4 AND not_after >= $4) \
                    OR ($3 = 'expired' AND revoked_at IS NULL AND (not_after < $4 OR not_before > $4))) \
               AND ($5 IS NULL OR not_after < $5) \
               AND ($6 IS NULL OR issued_at < $6 OR (issued_at = $6 AND serial > $7)) \
             ORDER BY issued_at DESC, serial \
             LIMIT $8"
        );
        let query = sqlx::query(&sql)
            .bind(filter.agency.as_ref().map(AgencyId::as_str))
            .bind(filter.profile.map(|p| p.as_str()))
            .bind(state)
            .bind(to_micros(now))
            .bind(filter.expiring_before.map(to_micros))
            .bind(after.map(|c| to_micros(c.issued_at)))
            .bind(after.map(|c| c.serial.as_str()).unwrap_or(""))
            .bind(i64::from(limit));
        decode::all(query, &self.read).await
    }

    /// Revokes a certificate with an RFC 5280 `reason` at `at`, advancing the revocation
    /// counter and appending the call's audit `leaf` (and, when given, recording the `answer`
    /// for retries) in the same transaction.
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "revoke_certificate", db.system = self.backend().as_str()))]
    pub async fn revoke_certificate(
        &self,
        serial: &str,
        reason: &str,
        at: OffsetDateTime,
        leaf: Option<&LeafData>,
        answer: Option<Answer<CertificateRecord>>,
    ) -> Result<Answered<CertificateRecord>, RevokeError> {
        let rows = RevokeRows {
            serial: serial.to_owned(),
            reason: reason.to_owned(),
            at,
        };
        let write = Write::new(rows)
            .claim(answer.map(|a| a.into_claim(at)))
            .leaf(leaf.cloned());
        match self.commit(write).await {
            Ok(done) => Ok(done.map(|w| w.value)),
            Err(e) => Err(match e.refusal() {
                Ok(refused) => refused,
                Err(e) => RevokeError::Store(e),
            }),
        }
    }

    /// The revocation counter: it moves whenever any certificate is revoked, on any replica.
    /// It doubles as the CRL number.
    pub async fn revocation_seq(&self) -> Result<i64, StoreError> {
        let seq: i64 = sqlx::query_scalar("SELECT value FROM counters WHERE name = 'revocation'")
            .fetch_one(&self.read)
            .await?;
        Ok(seq)
    }

    /// Every revoked certificate, in revocation order.
    pub async fn revoked_certificates(&self) -> Result<Vec<RevokedCertificate>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial, fingerprint, revoked_at, revocation_reason FROM certificates \
             WHERE revoked_at IS NOT NULL ORDER BY revocation_seq",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RevokedCertificate {
                    serial: row.try_get("serial")?,
                    fingerprint: row.try_get("fingerprint")?,
                    revoked_at: decode::time(row, "revoked_at")?,
                    reason: row
                        .try_get::<Option<String>, _>("revocation_reason")?
                        .unwrap_or_else(|| "unspecified".to_owned()),
                })
            })
            .collect()
    }
}

/// The rows of recording an issued certificate.
#[derive(Debug, Clone)]
struct InsertRows(CertificateRecord);

impl Rows for InsertRows {
    type Value = CertificateRecord;
    /// [`StoreError::AlreadyExists`] when the serial or fingerprint is taken.
    type Refusal = StoreError;

    async fn apply(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<CertificateRecord, WriteError<StoreError>> {
        let cert = &self.0;
        let result = sqlx::query(&format!(
            "INSERT INTO certificates ({CERT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&cert.serial)
        .bind(cert.agency_id.as_str())
        .bind(cert.profile.as_str())
        .bind(&cert.fingerprint)
        .bind(&cert.subject)
        .bind(to_micros(cert.not_before))
        .bind(to_micros(cert.not_after))
        .bind(&cert.certificate_pem)
        .bind(to_micros(cert.issued_at))
        .bind(cert.revoked_at.map(to_micros))
        .bind(cert.revocation_reason.as_deref())
        .execute(&mut *conn)
        .await;
        refuse_existing(result, || format!("certificate {}", cert.serial))?;
        Ok(cert.clone())
    }
}

/// The rows of a revocation: the certificate's revocation columns and the counter.
#[derive(Debug, Clone)]
struct RevokeRows {
    serial: String,
    reason: String,
    at: OffsetDateTime,
}

impl Rows for RevokeRows {
    type Value = CertificateRecord;
    type Refusal = RevokeError;

    async fn apply(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<CertificateRecord, WriteError<RevokeError>> {
        let serial = self.serial.as_str();
        let current: Option<Option<i64>> =
            sqlx::query_scalar("SELECT revoked_at FROM certificates WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&mut *conn)
                .await?;
        match current {
            None => {
                return Err(WriteError::Refused(RevokeError::NotFound(
                    serial.to_owned(),
                )));
            }
            Some(Some(revoked_at)) => {
                return Err(WriteError::Refused(RevokeError::AlreadyRevoked {
                    serial: serial.to_owned(),
                    at: from_micros(revoked_at)?,
                }));
            }
            Some(None) => {}
        }
        let seq = crate::counters::next(conn, "revocation").await?;
        sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revocation_reason = $2, revocation_seq = $3 \
             WHERE serial = $4",
        )
        .bind(to_micros(self.at))
        .bind(&self.reason)
        .bind(seq)
        .bind(serial)
        .execute(&mut *conn)
        .await?;
        fetch_certificate(&mut *conn, serial)
            .await?
            .ok_or_else(|| WriteError::Refused(RevokeError::NotFound(serial.to_owned())))
    }
}
