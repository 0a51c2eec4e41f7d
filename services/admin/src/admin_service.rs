//! `AdminService`: agencies and the certificates that admit their systems. Callable only with
//! an `admin` certificate of the exchange's operator agency: the gateway's policy layer
//! enforces the role; this handler does the work.

use std::sync::Arc;

use prost::Message as _;

use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use yrd_call::{
    Call, FieldErrors, FieldViolation, bad_request, from_timestamp, receipt, request_id,
    resource_id, timestamp, violation,
};
use yrd_domain::audit::LeafData;
use yrd_domain::clock::Clock;
use yrd_domain::{AgencyId, Profile, SpiffeId};
use yrd_pki::ReceiptSigner;
use yrd_pki::{CertificateAuthority, CsrPolicy, PkiError, RevocationReason, RevokedCert, Validity};
use yrd_proto::v1::admin_service_server::AdminService;
use yrd_proto::v1::{
    self as pb, CreateAgencyRequest, CreateAgencyResponse, GetAgencyRequest, GetAgencyResponse,
    GetCertificateRequest, GetCertificateResponse, GetCrlRequest, GetCrlResponse,
    IssueCertificateRequest, IssueCertificateResponse, ListAgenciesRequest, ListAgenciesResponse,
    ListCertificatesRequest, ListCertificatesResponse, RevokeCertificateRequest,
    RevokeCertificateResponse, UpdateAgencyRequest, UpdateAgencyResponse,
};
use yrd_store::{
    Agency, AgencyState, AgencyUpdate, Answer, Answered, CertificateCursor, CertificateFilter,
    CertificateRecord, CertificateState, IdempotencyKey, NewAgency, RevokeError, Store, StoreError,
};

use crate::enforcement::ApplyRevocations;
use crate::status::{internal, store_failure};

/// Default page size of the listings.
const DEFAULT_PAGE: u32 = 50;
/// Largest page size of the listings.
const MAX_PAGE: u32 = 500;
/// Longest display name accepted.
const MAX_NAME_CHARS: usize = 200;
/// The province prefixes of the Yangtze River Delta exchange's members (Shanghai, Jiangsu,
/// Zhejiang, Anhui) and its partner Shandong.
const DELTA_PROVINCES: &[&str] = &["31", "32", "33", "34", "37"];
/// How long a CRL handed out by `GetCrl` is valid.
const CRL_VALIDITY: time::Duration = time::Duration::days(2);

/// The `AdminService` handler.
#[derive(Debug, Clone)]
pub struct AdminHandler {
    store: Store,
    ca: Option<Arc<CertificateAuthority>>,
    operator: AgencyId,
    max_validity: time::Duration,
    clock: Arc<dyn Clock>,
    /// Puts a revocation or suspension in force on this replica before the answer.
    revocations: Arc<dyn ApplyRevocations>,
    /// Signs the receipts of admin writes.
    receipts: Arc<ReceiptSigner>,
}

impl AdminHandler {
    /// A handler issuing certificates with `ca` (none: issuance and CRLs are refused), valid for
    /// at most `max_validity`.
    pub fn new(
        store: Store,
        ca: Option<Arc<CertificateAuthority>>,
        operator: AgencyId,
        max_validity: time::Duration,
        clock: Arc<dyn Clock>,
        revocations: Arc<dyn ApplyRevocations>,
        receipts: Arc<ReceiptSigner>,
    ) -> Self {
        AdminHandler {
            store,
            ca,
            operator,
            max_validity,
            clock,
            revocations,
            receipts,
        }
    }

    /// Waits until the store's revocations and suspensions hold on this replica (its revoked
    /// and suspended sets, its CRL), so that the answer to a revocation or suspension means
    /// this replica refuses the certificate or agency from then on, on open connections too.
    /// The other replicas follow within their poll (see the README's revocation bound).
    async fn in_force(&self, what: &str) -> Result<(), Status> {
        self.revocations.apply_now().await.map_err(|e| {
            tracing::error!(error = %e, what, "committed, but not yet in force on this replica");
            Status::unavailable(format!(
                "the {what} is recorded but could not be put in force on this replica yet: \
                 send the same request (same request_id) again to confirm it"
            ))
        })
    }

    /// The audit of a write call: notes what it touches and gives the leaf to commit with it.
    fn audit(call: &mut Call, resources: Vec<String>) -> Option<LeafData> {
        call.note(resources);
        call.success_leaf()
    }

    /// The receipt of a write, signed before the write so that the answer recorded for
    /// retries carries it.
    fn sign(&self, leaf: Option<&LeafData>, now: OffsetDateTime) -> Option<pb::Receipt> {
        leaf.map(|leaf| receipt(&self.receipts.sign(&leaf.leaf_hash(), now)))
    }

    /// The idempotency key of a write: the calling agency, the method, the client's request
    /// id and the digest of the whole request.
    fn key(&self, call: &Call, method: &str, request_id: &str) -> IdempotencyKey {
        IdempotencyKey {
            agency: call.agency().clone(),
            method: format!("/yrd.exchange.v1.AdminService/{method}"),
            request_id: request_id.trim().to_owned(),
            request_digest: call.request_sha256.clone(),
        }
    }

    /// The first answer to `key` when that request was answered before (a retry), so it gets
    /// the same answer even where the first call's success would now be refused.
    async fn replay<M: prost::Message + Default>(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<M>, Status> {
        match self.store.answered_request(key).await {
            Ok(Some(bytes)) => decode_answer(&bytes).map(Some),
            Ok(None) => Ok(None),
            Err(e @ StoreError::RequestIdReused { .. }) => {
                Err(Status::already_exists(e.to_string()))
            }
            Err(e) => Err(store_failure(&e)),
        }
    }

    /// The answer of a write: built from what it wrote (the call's leaf is then written), or
    /// the first answer of an earlier call with the same request.
    fn finish<M: prost::Message + Default, T>(
        answered: Answered<T>,
        call: &mut Call,
        build: impl FnOnce(T) -> M,
    ) -> Result<M, Status> {
        match answered {
            Answered::Written(value) => {
                call.mark_written();
                Ok(build(value))
            }
            Answered::Replayed(bytes) => decode_answer(&bytes),
        }
    }

    fn ca(&self) -> Result<&CertificateAuthority, Status> {
        self.ca.as_deref().ok_or_else(|| {
            Status::failed_precondition(
                "this exchange has no CA key configured (tls.ca_key): it cannot issue certificates or sign CRLs",
            )
        })
    }

    fn agency_to_pb(&self, a: &Agency) -> pb::Agency {
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
            operator: a.agency_id == self.operator,
            create_time: Some(timestamp(a.created_at)),
            update_time: Some(timestamp(a.updated_at)),
        }
    }

    fn certificate_to_pb(&self, c: &CertificateRecord, now: OffsetDateTime) -> pb::Certificate {
        let chain_pem = match &self.ca {
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
            issued_by: self
                .ca
                .as_ref()
                .map(|ca| ca_subject(ca))
                .unwrap_or_default(),
            issued_by_officer: String::new(),
            create_time: Some(timestamp(c.issued_at)),
        }
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

fn profile_from_pb(value: i32, field: &str) -> Result<Profile, FieldViolation> {
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

fn agency_from_name(name: &str, field: &str) -> Result<AgencyId, FieldViolation> {
    let id = resource_id(name, "agencies", field)?;
    AgencyId::parse(id).map_err(|e| violation(field, e.to_string()))
}

fn display_name(value: &str, field: &str, errors: &mut FieldErrors) -> String {
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

fn page_size(requested: i32) -> Result<u32, Status> {
    match requested {
        0 => Ok(DEFAULT_PAGE),
        n if n < 0 => Err(bad_request(&[violation(
            "page_size",
            "must not be negative",
        )])),
        n => Ok(u32::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE)),
    }
}

fn bad_page_token() -> Status {
    bad_request(&[violation(
        "page_token",
        "is not a token this listing returned",
    )])
}

/// Whether a new agency is its province's authority and a member of the Delta exchange,
/// derived from its id: a province-level code (`xx0000`) is the province's authority unless
/// one is registered already; Delta membership follows the province.
async fn derived_roles(store: &Store, id: &AgencyId) -> Result<(bool, bool), StoreError> {
    let region = id.region();
    let is_delta = DELTA_PROVINCES.contains(&region.province_prefix());
    let has_authority = store
        .list_agencies()
        .await?
        .iter()
        .any(|a| a.is_province_authority && a.agency_id.province() == region.province());
    Ok((is_delta, region.is_province() && !has_authority))
}

/// A recorded answer, decoded; one that no longer decodes is the exchange's fault.
fn decode_answer<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, Status> {
    M::decode(bytes).map_err(|e| internal("decoding a recorded answer", &e))
}

/// The handlers, each given the context of its call.
impl AdminHandler {
    async fn create_agency_call(
        &self,
        call: &mut Call,
        request: Request<CreateAgencyRequest>,
    ) -> Result<Response<CreateAgencyResponse>, Status> {
        let now = self.clock.now();
        let audit = Self::audit(
            call,
            request
                .get_ref()
                .agency
                .as_ref()
                .map(|a| vec![format!("agencies/{}", a.agency_id.trim())])
                .unwrap_or_default(),
        );
        let key = self.key(call, "CreateAgency", &request.get_ref().request_id);
        let body = request.into_inner();
        let mut errors = FieldErrors::new();
        request_id(&body.request_id, &mut errors);
        let Some(agency) = body.agency else {
            errors.push(violation("agency", "is required"));
            return Err(bad_request(&errors));
        };
        let id = match AgencyId::parse(agency.agency_id.trim()) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.push(violation("agency.agency_id", e.to_string()));
                None
            }
        };
        let name = display_name(&agency.display_name, "agency.display_name", &mut errors);
        let name_zh = display_name(
            &agency.display_name_zh,
            "agency.display_name_zh",
            &mut errors,
        );
        let (Some(id), true) = (id, errors.is_empty()) else {
            return Err(bad_request(&errors));
        };
        if let Some(first) = self.replay(&key).await? {
            return Ok(Response::new(first));
        }
        let (is_delta_member, is_province_authority) = derived_roles(&self.store, &id)
            .await
            .map_err(|e| store_failure(&e))?;
        let signed = self.sign(audit.as_ref(), now);
        let (this, receipt) = (self.clone(), signed.clone());
        let encode = move |a: &Agency| {
            CreateAgencyResponse {
                agency: Some(this.agency_to_pb(a)),
                receipt: receipt.clone(),
            }
            .encode_to_vec()
        };
        let answered = self
            .store
            .create_agency_answered(
                &NewAgency {
                    agency_id: id.clone(),
                    display_name: name,
                    display_name_zh: name_zh,
                    is_delta_member,
                    is_province_authority,
                },
                now,
                audit.as_ref(),
                Some(Answer {
                    key: key.clone(),
                    encode: Box::new(encode),
                }),
            )
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists { .. } => {
                    Status::already_exists(format!("agency {id} is already registered"))
                }
                other => store_failure(&other),
            })?;
        Self::finish(answered, call, |created| CreateAgencyResponse {
            agency: Some(self.agency_to_pb(&created)),
            receipt: signed.clone(),
        })
        .map(Response::new)
    }

    async fn update_agency_call(
        &self,
        call: &mut Call,
        request: Request<UpdateAgencyRequest>,
    ) -> Result<Response<UpdateAgencyResponse>, Status> {
        let now = self.clock.now();
        let audit = Self::audit(
            call,
            request
                .get_ref()
                .agency
                .as_ref()
                .map(|a| vec![a.name.clone()])
                .unwrap_or_default(),
        );
        let key = self.key(call, "UpdateAgency", &request.get_ref().request_id);
        let body = request.into_inner();
        let mut errors = FieldErrors::new();
        request_id(&body.request_id, &mut errors);
        let Some(agency) = body.agency else {
            errors.push(violation("agency", "is required"));
            return Err(bad_request(&errors));
        };
        let id = match agency_from_name(&agency.name, "agency.name") {
            Ok(id) => id,
            Err(v) => {
                errors.push(v);
                return Err(bad_request(&errors));
            }
        };
        let paths = body.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            errors.push(violation(
                "update_mask",
                "is required: name the fields to change (display_name, display_name_zh, state)",
            ));
            return Err(bad_request(&errors));
        }
        let mut update = AgencyUpdate::default();
        for path in &paths {
            match path.as_str() {
                "display_name" => {
                    update.display_name = Some(display_name(
                        &agency.display_name,
                        "agency.display_name",
                        &mut errors,
                    ));
                }
                "display_name_zh" => {
                    update.display_name_zh = Some(display_name(
                        &agency.display_name_zh,
                        "agency.display_name_zh",
                        &mut errors,
                    ));
                }
                "state" => match pb::AgencyState::try_from(agency.state) {
                    Ok(pb::AgencyState::Active) => update.state = Some(AgencyState::Active),
                    Ok(pb::AgencyState::Suspended) => {
                        if id == self.operator {
                            errors.push(violation(
                                "agency.state",
                                "the operator agency cannot be suspended",
                            ));
                        }
                        update.state = Some(AgencyState::Suspended);
                    }
                    _ => errors.push(violation(
                        "agency.state",
                        "must be AGENCY_STATE_ACTIVE or AGENCY_STATE_SUSPENDED",
                    )),
                },
                other => errors.push(violation(
                    "update_mask",
                    format!("{other:?} cannot be changed (display_name, display_name_zh, state)"),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(bad_request(&errors));
        }
        if let Some(first) = self.replay(&key).await? {
            if update.state.is_some() {
                // A retry after an answer lost (or not yet in force) confirms it holds.
                self.in_force("suspension or resumption").await?;
            }
            return Ok(Response::new(first));
        }
        let signed = self.sign(audit.as_ref(), now);
        let (this, receipt) = (self.clone(), signed.clone());
        let encode = move |a: &Agency| {
            UpdateAgencyResponse {
                agency: Some(this.agency_to_pb(a)),
                receipt: receipt.clone(),
            }
            .encode_to_vec()
        };
        let answered = self
            .store
            .update_agency(
                &id,
                &update,
                now,
                audit.as_ref(),
                Some(Answer {
                    key: key.clone(),
                    encode: Box::new(encode),
                }),
            )
            .await
            .map_err(|e| store_failure(&e))?
            .ok_or_else(|| Status::not_found(format!("agencies/{id} not found")))?;
        if update.state.is_some() {
            // In force on this replica before the answer; the others at their next poll.
            self.in_force("suspension or resumption").await?;
        }
        Self::finish(answered, call, |updated| UpdateAgencyResponse {
            agency: Some(self.agency_to_pb(&updated)),
            receipt: signed.clone(),
        })
        .map(Response::new)
    }

    async fn get_agency_call(
        &self,
        _call: &mut Call,
        request: Request<GetAgencyRequest>,
    ) -> Result<Response<GetAgencyResponse>, Status> {
        let id =
            agency_from_name(&request.get_ref().name, "name").map_err(|v| bad_request(&[v]))?;
        let agency = self
            .store
            .get_agency(&id)
            .await
            .map_err(|e| store_failure(&e))?
            .ok_or_else(|| Status::not_found(format!("agencies/{id} not found")))?;
        Ok(Response::new(GetAgencyResponse {
            agency: Some(self.agency_to_pb(&agency)),
        }))
    }

    async fn list_agencies_call(
        &self,
        _call: &mut Call,
        request: Request<ListAgenciesRequest>,
    ) -> Result<Response<ListAgenciesResponse>, Status> {
        let body = request.into_inner();
        let limit = page_size(body.page_size)? as usize;
        let state = match pb::AgencyState::try_from(body.state) {
            Ok(pb::AgencyState::Unspecified) => None,
            Ok(pb::AgencyState::Active) => Some(AgencyState::Active),
            Ok(pb::AgencyState::Suspended) => Some(AgencyState::Suspended),
            Err(_) => {
                return Err(bad_request(&[violation("state", "unknown state")]));
            }
        };
        let after = if body.page_token.is_empty() {
            None
        } else {
            Some(AgencyId::parse(&body.page_token).map_err(|_| bad_page_token())?)
        };
        let all = self
            .store
            .list_agencies()
            .await
            .map_err(|e| store_failure(&e))?;
        let mut page: Vec<&Agency> = all
            .iter()
            .filter(|a| state.is_none_or(|s| a.state == s))
            .filter(|a| after.as_ref().is_none_or(|after| &a.agency_id > after))
            .take(limit + 1)
            .collect();
        let next_page_token = if page.len() > limit {
            page.truncate(limit);
            page.last()
                .map(|a| a.agency_id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListAgenciesResponse {
            agencies: page.into_iter().map(|a| self.agency_to_pb(a)).collect(),
            next_page_token,
        }))
    }

    async fn issue_certificate_call(
        &self,
        call: &mut Call,
        request: Request<IssueCertificateRequest>,
    ) -> Result<Response<IssueCertificateResponse>, Status> {
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
            return Err(bad_request(&errors));
        };
        if let Some(first) = self.replay(&key).await? {
            return Ok(Response::new(first));
        }
        let registered = self
            .store
            .get_agency(&agency)
            .await
            .map_err(|e| store_failure(&e))?;
        match registered {
            Some(a) if a.state == AgencyState::Active => {}
            Some(_) => {
                return Err(Status::failed_precondition(format!(
                    "agency {agency} is suspended: no certificate is issued to it"
                )));
            }
            None => {
                return Err(bad_request(&[violation(
                    "agency",
                    format!("agency {agency} is not registered with the exchange"),
                )]));
            }
        }
        let now = self.clock.now();
        let validity = Validity::starting(now, lifetime)
            .map_err(|e| bad_request(&[violation("validity", e.to_string())]))?;
        let known = |id: &AgencyId| id == &agency;
        let policy = CsrPolicy::new(&known, validity)
            .approved_agency(&agency)
            .approved_profile(profile)
            .max_validity(self.max_validity);
        let issued = ca.sign_csr(&body.csr_pem, policy).map_err(|e| {
            if e.is_caller_fault() {
                bad_request(&[violation("csr_pem", e.to_string())])
            } else {
                internal("signing the certificate", &e)
            }
        })?;
        let info = yrd_pki::CertInfo::from_pem(&issued.cert_pem)
            .map_err(|e| internal("reading the issued certificate", &e))?;
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
        let signed = self.sign(audit.as_ref(), now);
        let (this, receipt) = (self.clone(), signed.clone());
        let encode = move |c: &CertificateRecord| {
            IssueCertificateResponse {
                certificate: Some(this.certificate_to_pb(c, now)),
                receipt: receipt.clone(),
            }
            .encode_to_vec()
        };
        let answered = self
            .store
            .insert_certificate_answered(
                &record,
                audit.as_ref(),
                Some(Answer {
                    key: key.clone(),
                    encode: Box::new(encode),
                }),
            )
            .await
            .map_err(|e| store_failure(&e))?;
        if matches!(answered, Answered::Written(())) {
            tracing::info!(serial = %record.serial, agency = %record.agency_id, profile = %profile, "certificate issued");
        }
        Self::finish(answered, call, |()| IssueCertificateResponse {
            certificate: Some(self.certificate_to_pb(&record, now)),
            receipt: signed.clone(),
        })
        .map(Response::new)
    }

    async fn get_certificate_call(
        &self,
        _call: &mut Call,
        request: Request<GetCertificateRequest>,
    ) -> Result<Response<GetCertificateResponse>, Status> {
        let serial = resource_id(&request.get_ref().name, "certificates", "name")
            .map_err(|v| bad_request(&[v]))?;
        let cert = self
            .store
            .get_certificate(serial)
            .await
            .map_err(|e| store_failure(&e))?
            .ok_or_else(|| Status::not_found(format!("certificates/{serial} not found")))?;
        Ok(Response::new(GetCertificateResponse {
            certificate: Some(self.certificate_to_pb(&cert, self.clock.now())),
        }))
    }

    async fn list_certificates_call(
        &self,
        _call: &mut Call,
        request: Request<ListCertificatesRequest>,
    ) -> Result<Response<ListCertificatesResponse>, Status> {
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
            return Err(bad_request(&errors));
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
            .await
            .map_err(|e| store_failure(&e))?;
        let next_page_token = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(encode_cursor).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListCertificatesResponse {
            certificates: rows
                .iter()
                .map(|c| self.certificate_to_pb(c, now))
                .collect(),
            next_page_token,
        }))
    }

    async fn revoke_certificate_call(
        &self,
        call: &mut Call,
        request: Request<RevokeCertificateRequest>,
    ) -> Result<Response<RevokeCertificateResponse>, Status> {
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
            return Err(bad_request(&errors));
        };
        if let Some(first) = self.replay(&key).await? {
            // A retry after an answer lost (or refused as not yet in force) confirms it holds.
            self.in_force("revocation").await?;
            return Ok(Response::new(first));
        }
        let now = self.clock.now();
        let signed = self.sign(audit.as_ref(), now);
        let (this, receipt) = (self.clone(), signed.clone());
        let encode = move |c: &CertificateRecord| {
            RevokeCertificateResponse {
                certificate: Some(this.certificate_to_pb(c, now)),
                receipt: receipt.clone(),
            }
            .encode_to_vec()
        };
        let answered = self
            .store
            .revoke_certificate(
                serial,
                reason.as_str(),
                now,
                audit.as_ref(),
                Some(Answer {
                    key: key.clone(),
                    encode: Box::new(encode),
                }),
            )
            .await
            .map_err(|e| match e {
                RevokeError::NotFound(s) => {
                    Status::not_found(format!("certificates/{s} not found"))
                }
                RevokeError::AlreadyRevoked { serial, at } => Status::failed_precondition(format!(
                    "certificates/{serial} is already revoked (at {at})"
                )),
                RevokeError::Store(e) => store_failure(&e),
            })?;
        // In force on this replica (revoked set and CRL) before the answer; the others within
        // their poll.
        self.in_force("revocation").await?;
        tracing::info!(serial, reason = reason.as_str(), "certificate revoked");
        Self::finish(answered, call, |revoked| RevokeCertificateResponse {
            certificate: Some(self.certificate_to_pb(&revoked, now)),
            receipt: signed.clone(),
        })
        .map(Response::new)
    }

    async fn get_crl_call(
        &self,
        _call: &mut Call,
        _request: Request<GetCrlRequest>,
    ) -> Result<Response<GetCrlResponse>, Status> {
        let ca = self.ca()?;
        let seq = self
            .store
            .revocation_seq()
            .await
            .map_err(|e| store_failure(&e))?;
        let revoked = self
            .store
            .revoked_certificates()
            .await
            .map_err(|e| store_failure(&e))?;
        let entries: Vec<RevokedCert> = revoked
            .iter()
            .map(|r| RevokedCert {
                serial_hex: r.serial.clone(),
                revoked_at: r.revoked_at,
                reason: r.reason.parse().unwrap_or(RevocationReason::Unspecified),
            })
            .collect();
        let this_update = self.clock.now();
        let next_update = this_update + CRL_VALIDITY;
        let crl = ca
            .crl(
                &entries,
                this_update,
                next_update,
                u64::try_from(seq).unwrap_or(0),
            )
            .map_err(|e: PkiError| internal("signing the CRL", &e))?;
        Ok(Response::new(GetCrlResponse {
            crl_der: crl.der.to_vec(),
            crl_pem: crl.pem,
            this_update: Some(timestamp(this_update)),
            next_update: Some(timestamp(next_update)),
            crl_number: u64::try_from(seq).unwrap_or(0),
        }))
    }
}

#[tonic::async_trait]
impl AdminService for AdminHandler {
    #[tracing::instrument(skip_all, fields(agency))]
    async fn create_agency(
        &self,
        request: Request<CreateAgencyRequest>,
    ) -> Result<Response<CreateAgencyResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.create_agency_call(&mut call, request).await;
        call.answer(result)
    }

    #[tracing::instrument(skip_all, fields(agency))]
    async fn update_agency(
        &self,
        request: Request<UpdateAgencyRequest>,
    ) -> Result<Response<UpdateAgencyResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.update_agency_call(&mut call, request).await;
        call.answer(result)
    }

    #[tracing::instrument(skip_all, fields(agency))]
    async fn get_agency(
        &self,
        request: Request<GetAgencyRequest>,
    ) -> Result<Response<GetAgencyResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.get_agency_call(&mut call, request).await;
        call.answer(result)
    }

    #[tracing::instrument(skip_all, fields(agency))]
    async fn list_agencies(
        &self,
        request: Request<ListAgenciesRequest>,
    ) -> Result<Response<ListAgenciesResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.list_agencies_call(&mut call, request).await;
        call.answer(result)
    }

    #[tracing::instrument(skip_all, fields(agency))]
    async fn issue_certificate(
        &self,
        request: Request<IssueCertificateRequest>,
    ) -> Result<Response<IssueCertificateResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.issue_certificate_call(&mut call, request).await;
        call.answer(result)
    }

    #[tracing::instrument(skip_all, fields(agency))]
    async fn get_certificate(
        &self,
        request: Request<GetCertificateRequest>,
    ) -> Result<Response<GetCertificateResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.get_certificate_call(&mut call, request).await;
        call.answer(result)
    }

    #[tracing::instrument(skip_all, fields(agency))]
    async fn list_certificates(
        &self,
        request: Request<ListCertificatesRequest>,
    ) -> Result<Response<ListCertificatesResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.list_certificates_call(&mut call, request).await;
        call.answer(result)
    }

    #[tracing::instrument(skip_all, fields(agency))]
    async fn revoke_certificate(
        &self,
        request: Request<RevokeCertificateRequest>,
    ) -> Result<Response<RevokeCertificateResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.revoke_certificate_call(&mut call, request).await;
        call.answer(result)
    }

    #[tracing::instrument(skip_all, fields(agency))]
    async fn get_crl(
        &self,
        request: Request<GetCrlRequest>,
    ) -> Result<Response<GetCrlResponse>, Status> {
        let mut call = Call::of(&request)?;
        tracing::Span::current().record("agency", call.agency().as_str());
        let result = self.get_crl_call(&mut call, request).await;
        call.answer(result)
    }
}

fn encode_cursor(c: &CertificateRecord) -> String {
    format!(
        "{}.{}",
        c.issued_at.unix_timestamp_nanos() / 1_000,
        c.serial
    )
}

fn decode_cursor(token: &str) -> Option<CertificateCursor> {
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
