//! What `yrd serve` prepares before it listens: the data folder, the store and its seed
//! agencies, and the TLS material (the dev PKI when none is configured).
//!
//! Everything here is idempotent: a second start reuses the database, the CA and the
//! certificates it finds, and only fills in what is missing.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_domain::ids::DELTA_AGENCIES;
use yrd_domain::{AgencyId, Profile};
use yrd_store::{CertificateRecord, NewAgency, Store, StoreError, StoreOptions};

use crate::server::config::Settings;
use crate::server::error::StartupError;
use crate::server::rotation::TlsFiles;
use crate::server::tls::TlsMaterial;

/// The outcome of preparing a start.
#[derive(Debug)]
pub struct Prepared {
    /// The opened, migrated store.
    pub store: Store,
    /// The TLS material to serve with.
    pub tls: TlsMaterial,
    /// The dev PKI folder, when the dev PKI is in use.
    pub dev_pki: Option<PathBuf>,
    /// The files the TLS material was read from (watched for rotation).
    pub tls_files: TlsFiles,
    /// The exchange CA with its key, when the key is available: it signs CRLs and the
    /// certificates admins issue.
    pub ca: Option<yrd_pki::CertificateAuthority>,
}

/// Opens the store (with the pool settings of `store`), seeds the Delta agencies, and loads (or
/// creates) the TLS material.
pub async fn prepare(
    settings: &Settings,
    store: &StoreOptions,
    now: OffsetDateTime,
) -> Result<Prepared, StartupError> {
    let needs_data_dir = settings.database_url.is_empty() || settings.uses_dev_pki();
    if needs_data_dir {
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| StartupError::DataDir {
            path: settings.data_dir.clone(),
            source: e,
        })?;
    }
    let store = Store::open(&settings.effective_database_url(), store).await?;
    let agencies = seed_agencies(&store, now).await?;

    if settings.uses_dev_pki() {
        let dir = settings.dev_pki_dir();
        // rustls checks certificates against the system clock, so the dev PKI is made (and
        // renewed) by the system clock too, whatever clock the rest of the exchange runs on.
        let pki = yrd_pki::DevPki::ensure(
            &dir,
            &agencies,
            &settings.tls.server_names,
            SystemClock.now(),
        )?;
        record_dev_certificates(&store, &pki, &agencies, now).await?;
        let tls_files = TlsFiles {
            ca: pki.ca_cert(),
            cert: pki.server_cert(),
            key: pki.server_key(),
        };
        let tls = TlsMaterial {
            ca_pem: read(&tls_files.ca)?,
            server_cert_pem: read(&tls_files.cert)?,
            server_key_pem: read(&tls_files.key)?,
            crls: Vec::new(),
        };
        Ok(Prepared {
            store,
            tls,
            dev_pki: Some(dir),
            tls_files,
            ca: Some(pki.ca()?),
        })
    } else {
        let path = |p: &Option<PathBuf>, key: &'static str| {
            p.clone().ok_or(StartupError::Config(
                crate::server::config::ConfigError::Invalid {
                    key,
                    problem: "missing".into(),
                },
            ))
        };
        let tls_files = TlsFiles {
            ca: path(&settings.tls.ca_cert, "tls.ca_cert")?,
            cert: path(&settings.tls.server_cert, "tls.server_cert")?,
            key: path(&settings.tls.server_key, "tls.server_key")?,
        };
        let tls = TlsMaterial {
            ca_pem: read(&tls_files.ca)?,
            server_cert_pem: read(&tls_files.cert)?,
            server_key_pem: read(&tls_files.key)?,
            crls: Vec::new(),
        };
        // Without the CA key the exchange cannot issue certificates or sign CRLs; revocation is
        // then enforced per call only.
        let ca = match &settings.tls.ca_key {
            Some(key) => {
                let cert = String::from_utf8(tls.ca_pem.clone())
                    .map_err(|_| StartupError::NotPem(tls_files.ca.clone()))?;
                let key_pem =
                    String::from_utf8(read(key)?).map_err(|_| StartupError::NotPem(key.clone()))?;
                Some(yrd_pki::CertificateAuthority::from_pem(&cert, &key_pem)?)
            }
            None => None,
        };
        Ok(Prepared {
            store,
            tls,
            dev_pki: None,
            tls_files,
            ca,
        })
    }
}

/// Registers the five province agencies (`docs/domain.md` §"Parties") unless they exist;
/// answers their ids.
async fn seed_agencies(store: &Store, now: OffsetDateTime) -> Result<Vec<AgencyId>, StartupError> {
    let mut ids = Vec::with_capacity(DELTA_AGENCIES.len());
    for (id, name, name_zh) in DELTA_AGENCIES {
        let agency_id = AgencyId::parse(id).map_err(|e| {
            StartupError::Store(StoreError::Corrupt {
                what: "seed agency id",
                detail: e.to_string(),
            })
        })?;
        let created = store
            .ensure_agency(
                &NewAgency {
                    agency_id: agency_id.clone(),
                    display_name: (*name).to_owned(),
                    display_name_zh: (*name_zh).to_owned(),
                    is_delta_member: true,
                    is_province_authority: true,
                },
                now,
            )
            .await?;
        if created {
            tracing::info!(agency = %agency_id, "seeded agency");
        }
        ids.push(agency_id);
    }
    Ok(ids)
}

/// Records the dev PKI's agency certificates, so that admins see them listed and can revoke
/// them like any other.
async fn record_dev_certificates(
    store: &Store,
    pki: &yrd_pki::DevPki,
    agencies: &[AgencyId],
    now: OffsetDateTime,
) -> Result<(), StartupError> {
    for agency in agencies {
        for profile in Profile::ALL {
            let path = pki.agency_cert(agency, profile);
            let pem = String::from_utf8(read(&path)?).map_err(|_| StartupError::NotPem(path))?;
            let info = yrd_pki::CertInfo::from_pem(&pem)?;
            if store
                .certificate_by_fingerprint(&info.fingerprint_sha256_hex)
                .await?
                .is_some()
            {
                continue;
            }
            let record = CertificateRecord {
                serial: info.serial_hex,
                agency_id: agency.clone(),
                profile,
                fingerprint: info.fingerprint_sha256_hex,
                subject: info.subject,
                not_before: info.not_before,
                not_after: info.not_after,
                certificate_pem: pem,
                issued_at: now,
                revoked_at: None,
                revocation_reason: None,
            };
            match store.insert_certificate(&record, None).await {
                Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, StartupError> {
    std::fs::read(path).map_err(|e| StartupError::ReadFile {
        path: path.to_owned(),
        source: e,
    })
}
