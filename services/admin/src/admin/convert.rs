//! The wire forms of agencies and certificates, and the request fields the admin calls share
//! (resource names, profiles, display names, pages).

use time::OffsetDateTime;
use yrd_call::{FieldErrors, FieldViolation, resource_id, timestamp, violation};
use yrd_domain::{AgencyId, Profile, SpiffeId};
use yrd_pki::{CertificateAuthority, RevocationReason};
use yrd_proto::v1 as pb;
use yrd_store::{Agency, AgencyState, CertificateCursor, CertificateRecord, CertificateState};

use crate::error::AdminError;

/// Default page size of the listings.
const DEFAULT_PAGE: u32 = 50;
/// Largest page size of the listings.
const MAX_PAGE: u32 = 500;
/// Longest display name accepted.
const MAX_NAME_CHARS: usize = 200;

/// The wire form of `a`; `operator` is the exchange's operator agency.
pub(super) fn agency_to_pb(a: &Agency, operator: &AgencyId) -> pb::Agency {
    pb::Agency {
        name: format!("agencies/{}", a.agency_id),
        agency_id: a.agency_id.to_string(),
        region_code: a.agency_id.region().to_string(),
        display_name: a.display_name.clone(),
        display_name_zh: a.display_name_zh.clone(),
        state: match a.state {
            AgencyState::Active => pb::AgencyState::Active,
            AgencyState::Suspended => pb::AgencyState::Suspended,
        } as i32,
        operator: &a.agency_id == operator,
        create_time: Some(timestamp(a.created_at)),
        update_time: Some(timestamp(a.updated_at)),
    }
}

/// The wire form of `c` as of `now`, with the chain of `ca` when there is one.
pub(super) fn certificate_to_pb(
    c: &CertificateRecord,
    ca: Option<&CertificateAuthority>,
    now: OffsetDateTime,
) -> pb::Certificate {
    let chain_pem = match ca {
        Some(ca) => format!("{}{}", c.certificate_pem, ca.cert_pem()),
        None => c.certificate_pem.clone(),
    };
    pb::Certificate {
        name: format!("certificates/{}", c.serial),
        serial: c.serial.clone(),
        agency: format!("agencies/{}", c.agency_id),
        profile: profile_to_pb(c.profile) as i32,
        fingerprint_sha256: c.fingerprint.clone(),
        subject: c.subject.clone(),
        uri_san: SpiffeId::new(c.agency_id.clone(), c.profile).to_uri(),
        not_before: Some(timestamp(c.not_before)),
        not_after: Some(timestamp(c.not_after)),
        state: match c.state_at(now) {
            CertificateState::Active => pb::CertificateState::Active,
            CertificateState::Revoked => pb::CertificateState::Revoked,
            CertificateState::Expired => pb::CertificateState::Expired,
        } as i32,
        revoke_time: c.revoked_at.map(timestamp),
        revocation_reason: c
            .revocation_reason
            .as_deref()
            .and_then(|r| r.parse::<RevocationReason>().ok())
            .map_or(0, |r| i32::from(r.code())),
        certificate_pem: c.certificate_pem.clone(),
        chain_pem,
        issued_by: ca.map(ca_subject).unwrap_or_default(),
        issued_by_officer: String::new(),
        create_time: Some(timestamp(c.issued_at)),
    }
}

fn ca_subject(ca: &CertificateAuthority) -> String {
    yrd_pki::CertInfo::from_der(ca.cert_der())
        .map(|i| i.subject)
        .unwrap_or_default()
}

fn profile_to_pb(p: Profile) -> pb::Profile {
    match p {
        Profile::System => pb::Profile::System,
        Profile::Admin => pb::Profile::Admin,
        Profile::Auditor => pb::Profile::Auditor,
    }
}

pub(super) fn profile_from_pb(value: i32, field: &str) -> Result<Profile, FieldViolation> {
    match pb::Profile::try_from(value) {
        Ok(pb::Profile::System) => Ok(Profile::System),
        Ok(pb::Profile::Admin) => Ok(Profile::Admin),
        Ok(pb::Profile::Auditor) => Ok(Profile::Auditor),
        _ => Err(violation(
            field,
            "must be PROFILE_SYSTEM, PROFILE_ADMIN or PROFILE_AUDITOR",
        )),
    }
}

pub(super) fn agency_from_name(name: &str, field: &str) -> Result<AgencyId, FieldViolation> {
    let id = resource_id(name, "agencies", field)?;
    AgencyId::parse(id).map_err(|e| violation(field, e.to_string()))
}

pub(super) fn display_name(value: &str, field: &str, errors: &mut FieldErrors) -> String {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        errors.push(violation(field, "is required"));
    } else if trimmed.chars().count() > MAX_NAME_CHARS {
        errors.push(violation(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    trimmed.to_owned()
}

pub(super) fn page_size(requested: i32) -> Result<u32, AdminError> {
    match requested {
        0 => Ok(DEFAULT_PAGE),
        n if n < 0 => Err(AdminError::field("page_size", "must not be negative")),
        n => Ok(u32::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE)),
    }
}

pub(super) fn bad_page_token() -> AdminError {
    AdminError::field("page_token", "is not a token this listing returned")
}

pub(super) fn encode_cursor(c: &CertificateRecord) -> String {
    format!(
        "{}.{}",
        c.issued_at.unix_timestamp_nanos() / 1_000,
        c.serial
    )
}

pub(super) fn decode_cursor(token: &str) -> Option<CertificateCursor> {
    let (micros, serial) = token.split_once('.')?;
    let micros: i128 = micros.parse().ok()?;
    if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(CertificateCursor {
        issued_at: OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).ok()?,
        serial: serial.to_owned(),
    })
}

/// A recorded answer, decoded; one that no longer decodes is the exchange's fault.
pub(super) fn decode_answer<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, AdminError> {
    M::decode(bytes).map_err(|e| AdminError::internal("decoding a recorded answer", e))
}
