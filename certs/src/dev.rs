//! The dev PKI: everything `yrd serve` needs to start with no configuration, and everything
//! a developer needs to call it, written as plain PEM files any gRPC client can be pointed at.
//!
//! ```text
//! <dir>/ca.pem   ca.key                      the dev CA (key PKCS#8, mode 0600)
//!        server.pem   server.key             the server certificate for localhost + names
//!        agencies/<agency id>/<profile>.pem  one system, admin and auditor certificate
//!        agencies/<agency id>/<profile>.key  per agency, with its key (mode 0600)
//! ```
//!
//! [`DevPki::ensure`] is idempotent: what is on disk and still good is reused, never
//! regenerated, so certificates handed to clients keep working across restarts. A missing or
//! unusable piece is (re)made alone: a deleted agency file, a server certificate lacking a
//! newly configured name, an expired leaf, or a leaf not signed by the CA on disk. Only a
//! missing `ca.pem` makes a new CA (and so reissues every leaf); half a CA — the certificate
//! without its key — or an expired CA is an error to resolve by hand, because silently
//! replacing a CA would invalidate every certificate already handed out.
//!
//! Dev validities (development only; production certificates come from CSRs, see
//! [`crate::CsrPolicy`]): CA 10 years, server 1 year, agency certificates 1 year. Files are
//! written to a temporary name and renamed into place, so a crash never leaves half a PEM.
//! Two processes ensuring the same folder at the same moment are not coordinated.

use std::fs;
use std::io::{ErrorKind, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{KeyPair, PublicKeyData};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use yrd_domain::{AgencyId, Profile, SpiffeId};

use crate::ca::{CertificateAuthority, IssuedKeyPair, SERVER_DEFAULT_NAMES, Validity};
use crate::error::PkiError;
use crate::inspect;

/// Lifetime of the dev CA: 10 years.
pub const DEV_CA_LIFETIME: Duration = Duration::days(3650);
/// Lifetime of the dev server certificate: 1 year.
pub const DEV_SERVER_LIFETIME: Duration = Duration::days(365);
/// Lifetime of the dev agency certificates: 1 year.
pub const DEV_AGENCY_LIFETIME: Duration = Duration::days(365);
/// Common name of the dev CA.
pub const DEV_CA_COMMON_NAME: &str = "yrd-exchange dev CA";

/// A dev PKI folder: its paths, and what the last [`DevPki::ensure`] wrote.
#[derive(Debug, Clone)]
pub struct DevPki {
    dir: PathBuf,
    written: Vec<PathBuf>,
}

impl DevPki {
    /// Creates the dev PKI under `dir`, or reuses what is there (see the module docs), with a
    /// system, admin and auditor certificate for each of `agencies` and a server certificate
    /// for `localhost`, `127.0.0.1`, `::1` and `server_names`. What is expired at `now` is
    /// remade, and what is made is valid from `now`.
    pub fn ensure(
        dir: &Path,
        agencies: &[AgencyId],
        server_names: &[String],
        now: OffsetDateTime,
    ) -> Result<DevPki, PkiError> {
        let mut pki = DevPki::at(dir);
        create_dir(dir)?;
        let ca = pki.ensure_ca(now)?;
        let ca_der = ca.cert_der().clone();
        let ca_cert = inspect::parse_certificate(&ca_der)?;

        let (cert, key) = (pki.server_cert(), pki.server_key());
        let wanted: Vec<SanName> = SERVER_DEFAULT_NAMES
            .iter()
            .copied()
            .chain(server_names.iter().map(String::as_str))
            .map(SanName::of_config)
            .collect();
        let has_names = |c: &X509Certificate<'_>| {
            let present = san_names(c);
            wanted.iter().all(|n| present.contains(n))
        };
        if !reusable(&ca_cert, &cert, &key, now, has_names)? {
            let issued =
                ca.issue_server(server_names, Validity::starting(now, DEV_SERVER_LIFETIME)?)?;
            pki.write_pair(&cert, &key, &issued)?;
        }

        for agency in agencies {
            create_dir(&dir.join("agencies").join(agency.as_str()))?;
            for profile in Profile::ALL {
                let (cert, key) = (
                    pki.agency_cert(agency, profile),
                    pki.agency_key(agency, profile),
                );
                let uri = SpiffeId::new(agency.clone(), profile).to_uri();
                let names_it = |c: &X509Certificate<'_>| {
                    inspect::uri_sans(c).is_ok_and(|uris| uris == [uri.as_str()])
                };
                if !reusable(&ca_cert, &cert, &key, now, names_it)? {
                    let issued = ca.issue_agency(
                        agency,
                        profile,
                        Validity::starting(now, DEV_AGENCY_LIFETIME)?,
                    )?;
                    pki.write_pair(&cert, &key, &issued)?;
                }
            }
        }
        Ok(pki)
    }

    /// The paths of a dev PKI under `dir`, without creating or checking anything.
    pub fn at(dir: &Path) -> DevPki {
        DevPki {
            dir: dir.to_path_buf(),
            written: Vec::new(),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ca.pem`: the trust anchor to give clients.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `ca.key`: the dev CA's private key.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// `server.pem`.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// `server.key`.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// `agencies/<agency id>/<profile>.pem`.
    pub fn agency_cert(&self, agency: &AgencyId, profile: Profile) -> PathBuf {
        self.agency_file(agency, profile, "pem")
    }

    /// `agencies/<agency id>/<profile>.key`.
    pub fn agency_key(&self, agency: &AgencyId, profile: Profile) -> PathBuf {
        self.agency_file(agency, profile, "key")
    }

    fn agency_file(&self, agency: &AgencyId, profile: Profile, ext: &str) -> PathBuf {
        self.dir
            .join("agencies")
            .join(agency.as_str())
            .join(format!("{profile}.{ext}"))
    }

    /// Loads the dev CA from `ca.pem` and `ca.key`.
    pub fn ca(&self) -> Result<CertificateAuthority, PkiError> {
        let cert = read(&self.ca_cert())?;
        let key = read(&self.ca_key())?;
        CertificateAuthority::from_pem(&cert, &key)
    }

    /// The files the [`DevPki::ensure`] call that returned this value wrote; empty when it
    /// reused everything.
    pub fn written(&self) -> &[PathBuf] {
        &self.written
    }

    fn ensure_ca(&mut self, now: OffsetDateTime) -> Result<CertificateAuthority, PkiError> {
        let (cert_path, key_path) = (self.ca_cert(), self.ca_key());
        match (read_optional(&cert_path)?, read_optional(&key_path)?) {
            (Some(cert), Some(key)) => {
                let ca = CertificateAuthority::from_pem(&cert, &key)?;
                if ca.not_after() < now {
                    return Err(PkiError::DevCaExpired {
                        path: cert_path,
                        not_after: ca.not_after(),
                    });
                }
                Ok(ca)
            }
            (Some(_), None) => Err(PkiError::DevCaIncomplete {
                present: cert_path,
                missing: key_path,
            }),
            // No certificate: nothing can depend on a key without one, so start afresh.
            (None, _) => {
                let ca = CertificateAuthority::create(
                    DEV_CA_COMMON_NAME,
                    Validity::starting(now, DEV_CA_LIFETIME)?,
                )?;
                self.write(&key_path, ca.key_pem(), true)?;
                self.write(&cert_path, ca.cert_pem(), false)?;
                Ok(ca)
            }
        }
    }

    /// Writes key then certificate: a crash in between leaves a pair that fails the key check
    /// and is remade next time.
    fn write_pair(
        &mut self,
        cert: &Path,
        key: &Path,
        issued: &IssuedKeyPair,
    ) -> Result<(), PkiError> {
        self.write(key, &issued.key_pem, true)?;
        self.write(cert, &issued.cert_pem, false)
    }

    /// Writes through a temporary file renamed into place; `secret` files get mode 0600.
    fn write(&mut self, path: &Path, contents: &str, secret: bool) -> Result<(), PkiError> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{file_name}.tmp"));
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(PkiError::io("remove", &tmp)(e));
            }
            _ => {}
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(if secret { 0o600 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = secret;
        let mut file = options.open(&tmp).map_err(PkiError::io("create", &tmp))?;
        file.write_all(contents.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(PkiError::io("write", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(PkiError::io("rename into place", path))?;
        self.written.push(path.to_path_buf());
        Ok(())
    }
}

/// Whether an existing leaf pair can be kept: both files there, the certificate signed by the
/// CA, valid at `now`, the key its key, and `fits` says it names what is wanted. Unreadable
/// contents mean "remake"; only I/O errors other than absence are errors.
fn reusable(
    ca: &X509Certificate<'_>,
    cert_path: &Path,
    key_path: &Path,
    now: OffsetDateTime,
    fits: impl Fn(&X509Certificate<'_>) -> bool,
) -> Result<bool, PkiError> {
    let (Some(cert_pem), Some(key_pem)) = (read_optional(cert_path)?, read_optional(key_path)?)
    else {
        return Ok(false);
    };
    let Ok(der) = inspect::der_from_pem(&cert_pem) else {
        return Ok(false);
    };
    let Ok(cert) = inspect::parse_certificate(&der) else {
        return Ok(false);
    };
    let Ok(key) = KeyPair::from_pem(&key_pem) else {
        return Ok(false);
    };
    let validity = cert.validity();
    Ok(cert.verify_signature(Some(ca.public_key())).is_ok()
        && validity.not_before.to_datetime() <= now
        && now <= validity.not_after.to_datetime()
        && key.subject_public_key_info() == cert.public_key().raw
        && fits(&cert))
}

/// A server name as a SAN compares: DNS names case-insensitively, addresses by value.
#[derive(Debug, PartialEq, Eq)]
enum SanName {
    Dns(String),
    Ip(IpAddr),
}

impl SanName {
    fn of_config(name: &str) -> SanName {
        match name.parse::<IpAddr>() {
            Ok(ip) => SanName::Ip(ip),
            Err(_) => SanName::Dns(name.to_ascii_lowercase()),
        }
    }
}

fn san_names(cert: &X509Certificate<'_>) -> Vec<SanName> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(SanName::Dns(dns.to_ascii_lowercase())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| SanName::Ip(IpAddr::from(b))),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| SanName::Ip(IpAddr::from(b))),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(PkiError::io("create folder", dir))
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(PkiError::io("read", path))
}

fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io("read", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{CertInfo, agency_identity};
    use yrd_domain::clock::{Clock as _, SystemClock};

    fn agencies() -> Vec<AgencyId> {
        ["310000-SAMR", "370000-AMR"]
            .into_iter()
            .map(|a| AgencyId::parse(a).unwrap())
            .collect()
    }

    fn fingerprint(path: &Path) -> String {
        CertInfo::from_pem(&fs::read_to_string(path).unwrap())
            .unwrap()
            .fingerprint_sha256_hex
    }

    fn relative(pki: &DevPki) -> Vec<String> {
        let mut files: Vec<String> = pki
            .written()
            .iter()
            .map(|p| p.strip_prefix(pki.dir()).unwrap().display().to_string())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn first_call_lays_out_every_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let pki = DevPki::ensure(
            &dir,
            &agencies(),
            &["exchange.test".to_owned()],
            SystemClock.now(),
        )
        .unwrap();
        assert_eq!(pki.written().len(), 2 + 2 + 2 * 3 * 2);
        let ca = pki.ca().unwrap();
        let ca_cert = inspect::parse_certificate(ca.cert_der()).unwrap();
        let mut expected = vec![
            "ca.key".to_owned(),
            "ca.pem".to_owned(),
            "server.key".to_owned(),
            "server.pem".to_owned(),
        ];
        for agency in agencies() {
            for profile in Profile::ALL {
                let cert_pem = fs::read_to_string(pki.agency_cert(&agency, profile)).unwrap();
                let der = inspect::der_from_pem(&cert_pem).unwrap();
                assert_eq!(agency_identity(&der).unwrap(), (agency.clone(), profile));
                let cert = inspect::parse_certificate(&der).unwrap();
                cert.verify_signature(Some(ca_cert.public_key())).unwrap();
                let key = fs::read_to_string(pki.agency_key(&agency, profile)).unwrap();
                assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
                expected.push(format!("agencies/{agency}/{profile}.key"));
                expected.push(format!("agencies/{agency}/{profile}.pem"));
            }
        }
        expected.sort();
        assert_eq!(relative(&pki), expected);
        let server = CertInfo::from_pem(&fs::read_to_string(pki.server_cert()).unwrap()).unwrap();
        assert_eq!(server.not_after - server.not_before, DEV_SERVER_LIFETIME);
        let ca_info = CertInfo::from_pem(ca.cert_pem()).unwrap();
        assert_eq!(ca_info.not_after - ca_info.not_before, DEV_CA_LIFETIME);
        // No temporary files left behind.
        assert!(
            fs::read_dir(&dir)
                .unwrap()
                .all(|e| { !e.unwrap().file_name().to_string_lossy().ends_with(".tmp") })
        );

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: PathBuf| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(pki.ca_key()), 0o600);
            assert_eq!(mode(pki.server_key()), 0o600);
            assert_eq!(mode(pki.agency_key(&agencies()[1], Profile::Admin)), 0o600);
            assert_eq!(mode(pki.ca_cert()), 0o644);
        }
    }

    #[test]
    fn second_call_reuses_and_fills_in_what_is_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let first = DevPki::ensure(dir, &agencies(), &[], SystemClock.now()).unwrap();
        let ca_fp = fingerprint(&first.ca_cert());
        let server_fp = fingerprint(&first.server_cert());
        let shanghai = &agencies()[0];
        let kept_fp = fingerprint(&first.agency_cert(shanghai, Profile::System));

        let second = DevPki::ensure(dir, &agencies(), &[], SystemClock.now()).unwrap();
        assert!(second.written().is_empty(), "{:?}", second.written());
        assert_eq!(fingerprint(&second.ca_cert()), ca_fp);

        // A deleted key is made again, with its certificate; nothing else changes.
        fs::remove_file(first.agency_key(shanghai, Profile::Auditor)).unwrap();
        let third = DevPki::ensure(dir, &agencies(), &[], SystemClock.now()).unwrap();
        assert_eq!(
            relative(&third),
            vec![
                "agencies/310000-SAMR/auditor.key".to_owned(),
                "agencies/310000-SAMR/auditor.pem".to_owned()
            ]
        );
        assert!(third.agency_key(shanghai, Profile::Auditor).exists());
        assert_eq!(fingerprint(&third.ca_cert()), ca_fp);
        assert_eq!(fingerprint(&third.server_cert()), server_fp);
        assert_eq!(
            fingerprint(&third.agency_cert(shanghai, Profile::System)),
            kept_fp
        );

        // A new agency and a new server name are filled in.
        let mut more = agencies();
        more.push(AgencyId::parse("330000-AMR").unwrap());
        let fourth =
            DevPki::ensure(dir, &more, &["10.0.0.7".to_owned()], SystemClock.now()).unwrap();
        let mut expected = vec!["server.key".to_owned(), "server.pem".to_owned()];
        for profile in Profile::ALL {
            expected.push(format!("agencies/330000-AMR/{profile}.key"));
            expected.push(format!("agencies/330000-AMR/{profile}.pem"));
        }
        expected.sort();
        assert_eq!(relative(&fourth), expected);
        assert_eq!(fingerprint(&fourth.ca_cert()), ca_fp);
        // Same names again: reused.
        let fifth =
            DevPki::ensure(dir, &more, &["10.0.0.7".to_owned()], SystemClock.now()).unwrap();
        assert!(fifth.written().is_empty(), "{:?}", fifth.written());
    }

    #[test]
    fn broken_or_expired_leaves_are_remade() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let now = SystemClock.now();
        let first = DevPki::ensure(dir, &agencies(), &[], now).unwrap();
        let ca_fp = fingerprint(&first.ca_cert());

        // A key that belongs to another certificate, and a garbled certificate.
        let shanghai = &agencies()[0];
        fs::copy(
            first.agency_key(shanghai, Profile::Admin),
            first.agency_key(shanghai, Profile::System),
        )
        .unwrap();
        fs::write(first.server_cert(), "garbage").unwrap();
        let second = DevPki::ensure(dir, &agencies(), &[], now).unwrap();
        assert_eq!(
            relative(&second),
            vec![
                "agencies/310000-SAMR/system.key".to_owned(),
                "agencies/310000-SAMR/system.pem".to_owned(),
                "server.key".to_owned(),
                "server.pem".to_owned(),
            ]
        );

        // Past the leaves' year, within the CA's ten: every leaf, and only the leaves, renewed.
        let later = now + DEV_AGENCY_LIFETIME + Duration::days(1);
        let renewed = DevPki::ensure(dir, &agencies(), &[], later).unwrap();
        assert_eq!(renewed.written().len(), 2 + 2 * 3 * 2);
        assert_eq!(fingerprint(&renewed.ca_cert()), ca_fp);
    }

    #[test]
    fn the_ca_is_never_replaced_silently() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let now = SystemClock.now();
        let first = DevPki::ensure(dir, &agencies(), &[], now).unwrap();
        let ca_fp = fingerprint(&first.ca_cert());

        let expired = DevPki::ensure(
            dir,
            &agencies(),
            &[],
            now + DEV_CA_LIFETIME + Duration::days(1),
        );
        assert!(
            matches!(expired, Err(PkiError::DevCaExpired { .. })),
            "{expired:?}"
        );

        fs::remove_file(first.ca_key()).unwrap();
        let incomplete = DevPki::ensure(dir, &agencies(), &[], now);
        assert!(
            matches!(&incomplete, Err(PkiError::DevCaIncomplete { missing, .. }) if *missing == first.ca_key()),
            "{incomplete:?}"
        );

        // Without ca.pem there is nothing to keep: a new CA, and every leaf reissued under it.
        fs::remove_file(first.ca_cert()).unwrap();
        let fresh = DevPki::ensure(dir, &agencies(), &[], now).unwrap();
        assert_ne!(fingerprint(&fresh.ca_cert()), ca_fp);
        assert_eq!(fresh.written().len(), 2 + 2 + 2 * 3 * 2);
    }
}
