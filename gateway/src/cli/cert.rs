//! `yrd cert …`: the admins' command line for the certificate lifecycle (证书), plus the one
//! partner-side step, `yrd cert request`. (`yrd agency …` is `cli::agency`; both fail with
//! [`CliError`], of `cli::error`.)
//!
//! The partner's private key must never reach the exchange, so the lifecycle is split where the
//! key is: `request` runs on the partner's machine and writes the key (mode 0600) beside the
//! CSR, and only the CSR travels to the admin, whose `issue` sends it to
//! `AdminService.IssueCertificate`. Nothing in this module reads a key file except through the
//! mTLS connection setup.
//!
//! Every command is a plain async function that writes to a caller-supplied `out`, so the
//! end-to-end tests run exactly what a user types (`Cli::try_parse_from`) against a real server
//! without spawning a process. Calling commands go through [`Session`], a `yrd-client` connection
//! with its certificate-bound token. A refused call comes back as [`RpcError`], which prints the
//! gRPC code, message and each field violation.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use comfy_table::{Table, presets};
use prost_types::Timestamp;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use yrd_call::{from_timestamp, timestamp};
use yrd_client::{Authed, RpcError, list_all};
use yrd_domain::Profile;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_pki::{CertificateAuthority, RevocationReason, Validity};
use yrd_proto::v1::admin_service_client::AdminServiceClient;
use yrd_proto::v1::{
    self as pb, GetCrlRequest, IssueCertificateRequest, ListCertificatesRequest,
    RevokeCertificateRequest,
};

use crate::cli::command::{
    CertCommand, CertState, CrlArgs, InitCaArgs, IssueArgs, ListArgs, RequestArgs, RevokeArgs,
};
pub use crate::cli::error::CliError;
use crate::cli::error::admin_session;
use crate::cli::output::write_json;

/// Runs one `yrd cert` subcommand, writing what a user reads to `out`.
pub async fn run(command: CertCommand, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    match command {
        CertCommand::InitCa(args) => init_ca(&args, out),
        CertCommand::Request(args) => request(&args, out),
        CertCommand::Issue(args) => issue(args, out).await,
        CertCommand::List(args) => list(args, out).await,
        CertCommand::Revoke(args) => revoke(args, out).await,
        CertCommand::Crl(args) => crl(args, out).await,
        CertCommand::DevPki(args) => crate::cli::dev_pki::dev_pki(&args, out),
    }
}

fn init_ca(args: &InitCaArgs, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    let cert_path = args.out.join("ca.pem");
    let key_path = args.out.join("ca.key");
    for path in [&cert_path, &key_path] {
        if path.exists() {
            return Err(CliError::Exists(path.clone()));
        }
    }
    let pki = |action| move |source| CliError::Pki { action, source };
    let validity = Validity::starting(
        SystemClock.now(),
        time::Duration::days(i64::from(args.days)),
    )
    .map_err(pki("compute the CA's validity"))?;
    let ca =
        CertificateAuthority::create(&args.common_name, validity).map_err(pki("make the CA"))?;
    create_dir(&args.out)?;
    create_new(&key_path, ca.key_pem().as_bytes(), 0o600)?;
    create_new(&cert_path, ca.cert_pem().as_bytes(), 0o644)?;
    writeln!(out, "wrote the CA certificate {}", cert_path.display())?;
    writeln!(
        out,
        "wrote the CA key         {} (mode 0600: keep it off shared disks)",
        key_path.display()
    )?;
    writeln!(
        out,
        "  fingerprint  sha256 {}",
        hex::encode(ca.fingerprint_sha256())
    )?;
    writeln!(
        out,
        "  valid        {} to {}",
        rfc3339(validity.not_before()),
        rfc3339(validity.not_after())
    )?;
    writeln!(
        out,
        "configure the exchange with tls.ca_cert = {:?} and tls.ca_key = {:?}, and a server certificate this CA signed",
        cert_path.display().to_string(),
        key_path.display().to_string()
    )?;
    Ok(())
}

fn request(args: &RequestArgs, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    let stem = format!("{}-{}", args.agency, args.profile);
    let key_path = args.out.join(format!("{stem}.key"));
    let csr_path = args.out.join(format!("{stem}.csr"));
    for path in [&key_path, &csr_path] {
        if path.exists() {
            return Err(CliError::Exists(path.clone()));
        }
    }
    let (key_pem, csr_pem) =
        yrd_pki::make_csr(&args.agency, args.profile).map_err(|source| CliError::Pki {
            action: "make the key and the certificate signing request",
            source,
        })?;
    create_dir(&args.out)?;
    create_new(&key_path, key_pem.as_bytes(), 0o600)?;
    create_new(&csr_path, csr_pem.as_bytes(), 0o644)?;
    writeln!(
        out,
        "wrote the private key {} (mode 0600: it never leaves this machine)",
        key_path.display()
    )?;
    writeln!(out, "wrote the request     {}", csr_path.display())?;
    writeln!(
        out,
        "send only {} to the exchange's admin; the certificate you get back works with this key alone",
        csr_path.display()
    )?;
    Ok(())
}

async fn issue(args: IssueArgs, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    let csr_pem = std::fs::read_to_string(&args.csr).map_err(|source| CliError::Read {
        path: args.csr.clone(),
        source,
    })?;
    let cert_path = args
        .out
        .clone()
        .unwrap_or_else(|| args.csr.with_extension("pem"));
    let chain_path = cert_path.with_extension("chain.pem");
    // Refuse before the call: an issued certificate we could not write would be a stray.
    for path in [&cert_path, &chain_path] {
        if path.exists() {
            return Err(CliError::Exists(path.clone()));
        }
    }
    let session = admin_session(&args.connect).await?;
    let issued = session
        .admin()
        .issue_certificate(IssueCertificateRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            agency: format!("agencies/{}", args.agency),
            profile: profile_pb(args.profile) as i32,
            csr_pem,
            validity: args.days.map(|days| prost_types::Duration {
                seconds: i64::from(days) * 86_400,
                nanos: 0,
            }),
        })
        .await
        .map_err(|s| RpcError::new("AdminService.IssueCertificate", s))?
        .into_inner()
        .certificate
        .ok_or(CliError::Incomplete {
            method: "AdminService.IssueCertificate",
            field: "certificate",
        })?;
    create_new(&cert_path, issued.certificate_pem.as_bytes(), 0o644)?;
    create_new(&chain_path, issued.chain_pem.as_bytes(), 0o644)?;
    let view = CertificateView::from_pb(&issued);
    writeln!(
        out,
        "issued a {} certificate for {}",
        view.profile, view.agency
    )?;
    writeln!(out, "  serial       {}", view.serial)?;
    writeln!(out, "  fingerprint  sha256 {}", view.fingerprint_sha256)?;
    writeln!(
        out,
        "  valid        {} to {}",
        view.not_before.as_deref().unwrap_or("?"),
        view.not_after.as_deref().unwrap_or("?")
    )?;
    writeln!(out, "  certificate  {}", cert_path.display())?;
    writeln!(out, "  chain        {}", chain_path.display())?;
    writeln!(
        out,
        "send both files back to the partner; their key never came here"
    )?;
    Ok(())
}

async fn list(args: ListArgs, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    let session = admin_session(&args.connect).await?;
    let admin = session.admin();
    let expire_before = args
        .expiring_within
        .map(|days| timestamp(SystemClock.now() + time::Duration::days(i64::from(days))));
    let request = ListCertificatesRequest {
        agency: args
            .agency
            .as_ref()
            .map(|a| format!("agencies/{a}"))
            .unwrap_or_default(),
        profile: args.profile.map_or(0, |p| profile_pb(p) as i32),
        state: match args.state {
            None => pb::CertificateState::Unspecified,
            Some(CertState::Active) => pb::CertificateState::Active,
            Some(CertState::Revoked) => pb::CertificateState::Revoked,
            Some(CertState::Expired) => pb::CertificateState::Expired,
        } as i32,
        expire_before,
        page_size: i32::try_from(args.page_size).unwrap_or(500),
        page_token: String::new(),
    };
    let views: Vec<CertificateView> = all_certificates(&admin, request)
        .await?
        .iter()
        .map(CertificateView::from_pb)
        .collect();
    if args.json {
        return write_json(out, &views);
    }
    if views.is_empty() {
        writeln!(out, "no certificates match")?;
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED).set_header([
        "serial",
        "agency",
        "profile",
        "state",
        "not after",
        "revoked",
        "fingerprint (sha256)",
    ]);
    for v in &views {
        let revoked = match (&v.revoke_time, v.revocation_reason) {
            (Some(at), Some(reason)) => format!("{at} {reason}"),
            (Some(at), None) => at.clone(),
            _ => String::new(),
        };
        table.add_row([
            v.serial.clone(),
            v.agency.clone(),
            v.profile.to_owned(),
            v.state.to_owned(),
            v.not_after.clone().unwrap_or_default(),
            revoked,
            short_fingerprint(&v.fingerprint_sha256),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(out, "{} certificate(s)", views.len())?;
    Ok(())
}

async fn revoke(args: RevokeArgs, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    let session = admin_session(&args.connect).await?;
    let revoked = session
        .admin()
        .revoke_certificate(RevokeCertificateRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            name: format!("certificates/{}", args.serial),
            reason: revocation_reason_pb(args.reason) as i32,
            note: args.note.unwrap_or_default(),
        })
        .await
        .map_err(|s| RpcError::new("AdminService.RevokeCertificate", s))?
        .into_inner()
        .certificate
        .ok_or(CliError::Incomplete {
            method: "AdminService.RevokeCertificate",
            field: "certificate",
        })?;
    let view = CertificateView::from_pb(&revoked);
    if args.json {
        return write_json(out, &view);
    }
    writeln!(
        out,
        "revoked {} ({} {}) at {}, reason {}",
        view.serial,
        view.agency,
        view.profile,
        view.revoke_time.as_deref().unwrap_or("?"),
        view.revocation_reason.unwrap_or("unspecified")
    )?;
    writeln!(
        out,
        "its next handshake fails and its tokens stop working on open connections"
    )?;
    Ok(())
}

async fn crl(args: CrlArgs, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    let session = admin_session(&args.connect).await?;
    let crl = session
        .admin()
        .get_crl(GetCrlRequest {})
        .await
        .map_err(|s| RpcError::new("AdminService.GetCrl", s))?
        .into_inner();
    let bytes = if args.der {
        crl.crl_der.clone()
    } else {
        crl.crl_pem.clone().into_bytes()
    };
    let Some(path) = &args.out else {
        out.write_all(&bytes)?;
        return Ok(());
    };
    let revoked = revoked_count(&crl.crl_der)?;
    std::fs::write(path, &bytes).map_err(|source| CliError::Write {
        path: path.clone(),
        source,
    })?;
    writeln!(
        out,
        "wrote CRL number {} ({}, {revoked} revoked certificate(s)) to {}",
        crl.crl_number,
        if args.der { "DER" } else { "PEM" },
        path.display()
    )?;
    writeln!(
        out,
        "  this update  {}",
        pb_time(crl.this_update.as_ref()).unwrap_or_default()
    )?;
    writeln!(
        out,
        "  next update  {}",
        pb_time(crl.next_update.as_ref()).unwrap_or_default()
    )?;
    Ok(())
}

/// How many entries a DER CRL lists.
fn revoked_count(der: &[u8]) -> Result<usize, CliError> {
    use x509_parser::prelude::FromDer;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der)
        .map_err(|e| CliError::CrlMalformed(e.to_string()))?;
    Ok(crl.iter_revoked_certificates().count())
}

/// Every certificate `request` matches, all pages (`yrd cert list`, the console).
pub(crate) async fn all_certificates(
    admin: &AdminServiceClient<Authed>,
    request: ListCertificatesRequest,
) -> Result<Vec<pb::Certificate>, RpcError> {
    list_all(
        "AdminService.ListCertificates",
        request,
        |r, token| r.page_token = token,
        |r| {
            let mut admin = admin.clone();
            async move {
                let page = admin.list_certificates(r).await?.into_inner();
                Ok((page.certificates, page.next_page_token))
            }
        },
    )
    .await
}

/// A certificate as `yrd cert list --json` and `yrd cert revoke --json` print it.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateView {
    /// Serial number, lower-case hexadecimal.
    pub serial: String,
    /// The agency id it identifies, e.g. `370000-AMR`.
    pub agency: String,
    /// `system`, `admin` or `auditor`.
    pub profile: &'static str,
    /// `active`, `revoked` or `expired`.
    pub state: &'static str,
    /// SHA-256 of the DER certificate, 64 lower-case hex characters.
    pub fingerprint_sha256: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// The SPIFFE-style URI SAN.
    pub uri_san: String,
    /// Start of validity, RFC 3339.
    pub not_before: Option<String>,
    /// End of validity, RFC 3339.
    pub not_after: Option<String>,
    /// When it was revoked, RFC 3339.
    pub revoke_time: Option<String>,
    /// Why, kebab-case (`key-compromise`); absent unless revoked with a reason.
    pub revocation_reason: Option<&'static str>,
    /// When it was issued, RFC 3339.
    pub issued_at: Option<String>,
}

impl CertificateView {
    /// The view of a certificate the exchange returned.
    pub fn from_pb(c: &pb::Certificate) -> Self {
        let state = match pb::CertificateState::try_from(c.state) {
            Ok(pb::CertificateState::Active) => "active",
            Ok(pb::CertificateState::Revoked) => "revoked",
            Ok(pb::CertificateState::Expired) => "expired",
            _ => "unknown",
        };
        let revocation_reason = if c.revoke_time.is_some() && c.revocation_reason != 0 {
            u8::try_from(c.revocation_reason)
                .ok()
                .and_then(RevocationReason::from_code)
                .map(reason_name)
        } else {
            None
        };
        CertificateView {
            serial: c.serial.clone(),
            agency: c
                .agency
                .strip_prefix("agencies/")
                .unwrap_or(&c.agency)
                .to_owned(),
            profile: profile_name(c.profile),
            state,
            fingerprint_sha256: c.fingerprint_sha256.clone(),
            subject: c.subject.clone(),
            uri_san: c.uri_san.clone(),
            not_before: pb_time(c.not_before.as_ref()),
            not_after: pb_time(c.not_after.as_ref()),
            revoke_time: pb_time(c.revoke_time.as_ref()),
            revocation_reason,
            issued_at: pb_time(c.create_time.as_ref()),
        }
    }
}

/// The kebab-case name of a reason, as `--reason` takes it.
fn reason_name(reason: RevocationReason) -> &'static str {
    match reason {
        RevocationReason::Unspecified => "unspecified",
        RevocationReason::KeyCompromise => "key-compromise",
        RevocationReason::CaCompromise => "ca-compromise",
        RevocationReason::AffiliationChanged => "affiliation-changed",
        RevocationReason::Superseded => "superseded",
        RevocationReason::CessationOfOperation => "cessation-of-operation",
        RevocationReason::CertificateHold => "certificate-hold",
        RevocationReason::RemoveFromCrl => "remove-from-crl",
        RevocationReason::PrivilegeWithdrawn => "privilege-withdrawn",
        RevocationReason::AaCompromise => "aa-compromise",
    }
}

/// The wire value of a reason; the proto enum carries RFC 5280's codes.
fn revocation_reason_pb(reason: RevocationReason) -> pb::RevocationReason {
    pb::RevocationReason::try_from(i32::from(reason.code()))
        .unwrap_or(pb::RevocationReason::Unspecified)
}

fn profile_pb(profile: Profile) -> pb::Profile {
    match profile {
        Profile::System => pb::Profile::System,
        Profile::Admin => pb::Profile::Admin,
        Profile::Auditor => pb::Profile::Auditor,
    }
}

fn profile_name(value: i32) -> &'static str {
    match pb::Profile::try_from(value) {
        Ok(pb::Profile::System) => Profile::System.as_str(),
        Ok(pb::Profile::Admin) => Profile::Admin.as_str(),
        Ok(pb::Profile::Auditor) => Profile::Auditor.as_str(),
        _ => "unknown",
    }
}

/// An instant as RFC 3339 in UTC, whole seconds.
fn rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn pb_time(t: Option<&Timestamp>) -> Option<String> {
    t.and_then(from_timestamp).map(rfc3339)
}

/// The first 16 hex digits of a fingerprint, enough to tell certificates apart in a table.
fn short_fingerprint(hex: &str) -> String {
    match hex.get(..16) {
        Some(head) if hex.len() > 16 => format!("{head}…"),
        _ => hex.to_owned(),
    }
}

fn create_dir(dir: &Path) -> Result<(), CliError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
    builder.create(dir).map_err(|source| CliError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Writes `contents` to a file that must not exist yet, created with `mode` on Unix (so a key
/// is never readable by others, not even for an instant).
fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CliError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let write_error = |source| CliError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            CliError::Exists(path.to_owned())
        } else {
            write_error(e)
        }
    })?;
    file.write_all(contents).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_travel_with_their_rfc_5280_codes() {
        for reason in RevocationReason::ALL {
            if reason == RevocationReason::RemoveFromCrl {
                continue;
            }
            let wire = revocation_reason_pb(reason);
            assert_eq!(wire as i32, i32::from(reason.code()), "{reason}");
            assert_eq!(
                crate::cli::command::parse_reason(reason_name(reason)),
                Ok(reason),
                "the printed name reads back"
            );
        }
    }

    #[test]
    fn timestamps_print_as_whole_second_utc() {
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).expect("valid");
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(short_fingerprint("ab"), "ab");
        assert_eq!(
            short_fingerprint(&"a".repeat(64)),
            format!("{}…", "a".repeat(16))
        );
    }

    #[test]
    fn create_new_never_replaces_and_keys_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.key");
        create_new(&path, b"one", 0o600).expect("first write");
        let again = create_new(&path, b"two", 0o600);
        assert!(matches!(again, Err(CliError::Exists(p)) if p == path));
        assert_eq!(std::fs::read(&path).expect("read"), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
