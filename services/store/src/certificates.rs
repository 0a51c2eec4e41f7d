//! Certificates issued to agencies: the record admins list and revoke, and that revocation
//! checks read.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use yrd_domain::{AgencyId, Profile};

use crate::error::is_unique_violation;
use crate::time_codec::{from_micros, to_micros};
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

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let agency: String = row.try_get("agency_id")?;
        let profile: String = row.try_get("profile")?;
        Ok(CertificateRecord {
            serial: row.try_get("serial")?,
            agency_id: AgencyId::parse(&agency).map_err(|e| StoreError::corrupt("agency id", e))?,
            profile: profile
                .parse()
                .map_err(|e| StoreError::corrupt("certificate profile", e))?,
            fingerprint: row.try_get("fingerprint")?,
            subject: row.try_get("subject")?,
            not_before: from_micros(row.try_get("not_before")?)?,
            not_after: from_micros(row.try_get("not_after")?)?,
            certificate_pem: row.try_get("certificate_pem")?,
            issued_at: from_micros(row.try_get("issued_at")?)?,
            revoked_at: row
                .try_get::<Option<i64>, _>("revoked_at")?
                .map(from_micros)
                .transpose()?,
            revocation_reason: row.try_get("revocation_reason")?,
        })
    }
}

const CERT_COLUMNS: &str = "serial, agency_id, profile, fingerprint, subject, not_before, \
                            not_after, certificate_pem, issued_at, revoked_at, revocation_reason";

impl Store {
    /// Records an issued certificate. Fails with [`StoreError::AlreadyExists`] when the serial or
    /// fingerprint is already recorded.
    pub async fn insert_certificate(&self, cert: &CertificateRecord) -> Result<(), StoreError> {
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
        .execute(&self.write)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                what: format!("certificate {}", cert.serial),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// One certificate by its SHA-256 fingerprint (lowercase hex).
    pub async fn certificate_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE fingerprint = $1"
        ))
        .bind(fingerprint)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(CertificateRecord::from_row).transpose()
    }

    /// The certificates of one agency, newest first.
    pub async fn certificates_of(
        &self,
        agency: &AgencyId,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE agency_id = $1 \
             ORDER BY issued_at DESC, serial"
        ))
        .bind(agency.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(CertificateRecord::from_row).collect()
    }
}
