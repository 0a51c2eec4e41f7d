//! `IssueCertificate`, `GetCertificate`, `ListCertificates` and `RevokeCertificate`.

use tonic::Request;
use yrd_call::{Call, FieldErrors, from_timestamp, request_id, resource_id, violation};
use yrd_domain::AgencyId;
use yrd_pki::{CsrPolicy, RevocationReason, Validity};
use yrd_proto::v1::{
    self as pb, GetCertificateRequest, GetCertificateResponse, IssueCertificateRequest,
    IssueCertificateResponse, ListCertificatesRequest, ListCertificatesResponse,
    RevokeCertificateRequest, RevokeCertificateResponse,
};
use yrd_store::{
    AgencyState, Answered, CertificateFilter, CertificateRecord, CertificateState, RevokeError,
};

use super::AdminHandler;
use super::convert::{
    agency_from_name, bad_page_token, decode_cursor, encode_cursor, page_size, profile_from_pb,
};
use crate::error::AdminError;

impl AdminHandler {
    pub(super) async fn issue_certificate_call(
        &self,
        call: &mut Call,
        request: Request<IssueCertificateRequest>,
    ) -> Result<IssueCertificateResponse, AdminError> {
        let key = self.key(call, "IssueCertificate", &request.get_ref().request_id);
        let body = request.into_inner();
        let ca = self.ca()?;
        let mut errors = FieldErrors::new();
        request_id(&body.request_id, &mut errors);
        let agency = agency_from_name(&body.agency, "agency")
            .map_err(|v| errors.push(v))
            .ok();
        let profile = profile_from_pb(body.profile, "profile")
            .map_err(|v| errors.push(v))
            .ok();
        if body.csr_pem.trim().is_empty() {
            errors.push(violation("csr_pem", "is required"));
        }
        let lifetime = match &body.validity {
            None => self.max_validity,
            Some(d) => {
                let lifetime = time::Duration::new(d.seconds, d.nanos);
                if lifetime <= time::Duration::ZERO {
                    errors.push(violation("validity", "must be positive"));
                } else if lifetime > self.max_validity {
                    errors.push(violation(
                        "validity",
                        format!("must be at most {} days", self.max_validity.whole_days()),
                    ));
                }
                lifetime
            }
        };
        let (Some(agency), Some(profile), true) = (agency, profile, errors.is_empty()) else {
            return Err(errors.into());
        };
        if let Some(first) = self.replay(&key).await? {
            return Ok(first);
        }
        let registered = self.store.get_agency(&agency).await?;
        match registered {
            Some(a) if a.state == AgencyState::Active => {}
            Some(_) => {
                return Err(AdminError::IssueToSuspended(agency));
            }
            None => {
                return Err(AdminError::field(
                    "agency",
                    format!("agency {agency} is not registered with the exchange"),
                ));
            }
        }
        let now = self.clock.now();
        let validity = Validity::starting(now, lifetime)
            .map_err(|e| AdminError::field("validity", e.to_string()))?;
        let known = |id: &AgencyId| id == &agency;
        let policy = CsrPolicy::new(&known, validity)
            .approved_agency(&agency)
            .approved_profile(profile)
            .max_validity(self.max_validity);
        let issued = ca.sign_csr(&body.csr_pem, policy).map_err(|e| {
            if e.is_caller_fault() {
                AdminError::field("csr_pem", e.to_string())
            } else {
                AdminError::internal("signing the certificate", e)
            }
        })?;
        let info = yrd_pki::CertInfo::from_pem(&issued.cert_pem)
            .map_err(|e| AdminError::internal("reading the issued certificate", e))?;
        let record = CertificateRecord {
            serial: issued.serial_hex.clone(),
            agency_id: agency,
            profile,
            fingerprint: issued.fingerprint_sha256_hex.clone(),
            subject: info.subject,
            not_before: issued.not_before,
            not_after: issued.not_after,
            certificate_pem: issued.cert_pem.clone(),
            issued_at: now,
            revoked_at: None,
            revocation_reason: None,
        };
        let audit = Self::audit(
            call,
            vec![
                format!("certificates/{}", record.serial),
                format!("agencies/{}", record.agency_id),
            ],
        );
        let receipt = self.sign(audit.as_ref(), now);
        let reply = move |this: &AdminHandler, c: &CertificateRecord| IssueCertificateResponse {
            certificate: Some(this.certificate_to_pb(c, now)),
            receipt: receipt.clone(),
        };
        let answered = self
            .store
            .insert_certificate_answered(
                &record,
                audit.as_ref(),
                Some(self.recorded(&key, reply.clone())),
            )
            .await?;
        if matches!(answered, Answered::Written(())) {
            tracing::info!(serial = %record.serial, agency = %record.agency_id, profile = %profile, "certificate issued");
        }
        Self::finish(answered, call, |()| reply(self, &record))
    }

    pub(super) async fn get_certificate_call(
        &self,
        request: Request<GetCertificateRequest>,
    ) -> Result<GetCertificateResponse, AdminError> {
        let serial = resource_id(&request.get_ref().name, "certificates", "name")
            .map_err(FieldErrors::from)?;
        let cert = self
            .store
            .get_certificate(serial)
            .await?
            .ok_or_else(|| AdminError::CertificateNotFound(serial.to_owned()))?;
        Ok(GetCertificateResponse {
            certificate: Some(self.certificate_to_pb(&cert, self.clock.now())),
        })
    }

    pub(super) async fn list_certificates_call(
        &self,
        request: Request<ListCertificatesRequest>,
    ) -> Result<ListCertificatesResponse, AdminError> {
        let body = request.into_inner();
        let limit = page_size(body.page_size)?;
        let mut errors = FieldErrors::new();
        let agency = if body.agency.is_empty() {
            None
        } else {
            agency_from_name(&body.agency, "agency")
                .map_err(|v| errors.push(v))
                .ok()
        };
        let profile = if body.profile == 0 {
            None
        } else {
            profile_from_pb(body.profile, "profile")
                .map_err(|v| errors.push(v))
                .ok()
        };
        let state = match pb::CertificateState::try_from(body.state) {
            Ok(pb::CertificateState::Unspecified) => None,
            Ok(pb::CertificateState::Active) => Some(CertificateState::Active),
            Ok(pb::CertificateState::Revoked) => Some(CertificateState::Revoked),
            Ok(pb::CertificateState::Expired) => Some(CertificateState::Expired),
            Err(_) => {
                errors.push(violation("state", "unknown state"));
                None
            }
        };
        let expiring_before = match &body.expire_before {
            None => None,
            Some(t) => from_timestamp(t).or_else(|| {
                errors.push(violation("expire_before", "out of range"));
                None
            }),
        };
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let after = if body.page_token.is_empty() {
            None
        } else {
            Some(decode_cursor(&body.page_token).ok_or_else(bad_page_token)?)
        };
        let now = self.clock.now();
        let filter = CertificateFilter {
            agency,
            profile,
            state,
            expiring_before,
        };
        let mut rows = self
            .store
            .list_certificates(&filter, now, after.as_ref(), limit + 1)
            .await?;
        let next_page_token = yrd_call::next_page_token(&mut rows, limit as usize, encode_cursor);
        Ok(ListCertificatesResponse {
            certificates: rows
                .iter()
                .map(|c| self.certificate_to_pb(c, now))
                .collect(),
            next_page_token,
        })
    }

    pub(super) async fn revoke_certificate_call(
        &self,
        call: &mut Call,
        request: Request<RevokeCertificateRequest>,
    ) -> Result<RevokeCertificateResponse, AdminError> {
        let audit = Self::audit(call, vec![request.get_ref().name.clone()]);
        let key = self.key(call, "RevokeCertificate", &request.get_ref().request_id);
        let body = request.into_inner();
        let mut errors = FieldErrors::new();
        request_id(&body.request_id, &mut errors);
        let serial = resource_id(&body.name, "certificates", "name")
            .map_err(|v| errors.push(v))
            .ok();
        let reason = u8::try_from(body.reason)
            .ok()
            .and_then(RevocationReason::from_code)
            .filter(|r| *r != RevocationReason::RemoveFromCrl);
        if reason.is_none() {
            errors.push(violation(
                "reason",
                "must be an RFC 5280 revocation reason (REVOCATION_REASON_…)",
            ));
        }
        let (Some(serial), Some(reason), true) = (serial, reason, errors.is_empty()) else {
            return Err(errors.into());
        };
        if let Some(first) = self.replay(&key).await? {
            // A retry after an answer lost (or refused as not yet in force) confirms it holds.
            self.in_force("revocation").await?;
            return Ok(first);
        }
        let now = self.clock.now();
        let receipt = self.sign(audit.as_ref(), now);
        let reply = move |this: &AdminHandler, c: &CertificateRecord| RevokeCertificateResponse {
            certificate: Some(this.certificate_to_pb(c, now)),
            receipt: receipt.clone(),
        };
        let answered = self
            .store
            .revoke_certificate(
                serial,
                reason.as_str(),
                now,
                audit.as_ref(),
                Some(self.recorded(&key, reply.clone())),
            )
            .await
            .map_err(|e| match e {
                RevokeError::NotFound(s) => AdminError::CertificateNotFound(s),
                RevokeError::AlreadyRevoked { serial, at } => {
                    AdminError::AlreadyRevoked { serial, at }
                }
                RevokeError::Store(e) => AdminError::Store(e),
            })?;
        // In force on this replica (revoked set and CRL) before the answer; the others within
        // their poll.
        self.in_force("revocation").await?;
        tracing::info!(serial, reason = reason.as_str(), "certificate revoked");
        Self::finish(answered, call, |revoked| reply(self, &revoked))
    }
}
