//! `AdminService`: agencies and the certificates that admit their systems. Callable only with
//! an `admin` certificate of the exchange's operator agency: the gateway's policy layer
//! enforces the role; this handler does the work.
//!
//! # Layout
//!
//! * this file: the handler, what its writes share (idempotency key, replay, receipt, putting
//!   a change in force) and the service's dispatch, each call through its [`Call`].
//! * [`agencies`]: `CreateAgency`, `UpdateAgency`, `GetAgency`, `ListAgencies`.
//! * [`certificates`]: `IssueCertificate`, `GetCertificate`, `ListCertificates`,
//!   `RevokeCertificate`.
//! * [`crl`]: the `GetCrl` call.
//! * [`convert`]: wire forms and the request fields the calls share.

mod agencies;
mod certificates;
mod convert;
mod crl;

use std::sync::Arc;

use time::OffsetDateTime;
use yrd_call::{Call, FieldErrors, receipt};
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;
use yrd_domain::clock::Clock;
use yrd_pki::{CertificateAuthority, ReceiptSigner};
use yrd_proto::v1::admin_service_server::AdminService;
use yrd_proto::v1::{
    self as pb, CreateAgencyRequest, CreateAgencyResponse, GetAgencyRequest, GetAgencyResponse,
    GetCertificateRequest, GetCertificateResponse, GetCrlRequest, GetCrlResponse,
    IssueCertificateRequest, IssueCertificateResponse, ListAgenciesRequest, ListAgenciesResponse,
    ListCertificatesRequest, ListCertificatesResponse, RevokeCertificateRequest,
    RevokeCertificateResponse, UpdateAgencyRequest, UpdateAgencyResponse,
};
use yrd_store::{Agency, Answer, Answered, CertificateRecord, IdempotencyKey, Store, StoreError};

use crate::enforcement::ApplyRevocations;
use crate::error::AdminError;
use convert::decode_answer;

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
    async fn in_force(&self, what: &'static str) -> Result<(), AdminError> {
        self.revocations
            .apply_now()
            .await
            .map_err(|source| AdminError::NotInForce { what, source })
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
    ) -> Result<Option<M>, AdminError> {
        match self.store.answered_request(key).await {
            Ok(Some(bytes)) => decode_answer(&bytes).map(Some),
            Ok(None) => Ok(None),
            Err(e @ StoreError::RequestIdReused { .. }) => Err(AdminError::Reused(e)),
            Err(e) => Err(AdminError::Store(e)),
        }
    }

    /// The answer recorded with a write for its retries: `reply`, the response the call
    /// answers now, encoded from what was written.
    fn recorded<T, M: prost::Message>(
        &self,
        key: &IdempotencyKey,
        reply: impl Fn(&AdminHandler, &T) -> M + Send + Sync + 'static,
    ) -> Answer<T> {
        let this = self.clone();
        Answer {
            key: key.clone(),
            encode: Box::new(move |written| reply(&this, written).encode_to_vec()),
        }
    }

    /// The answer of a write: built from what it wrote (the call's leaf is then written), or
    /// the first answer of an earlier call with the same request.
    fn finish<M: prost::Message + Default, T>(
        answered: Answered<T>,
        call: &mut Call,
        build: impl FnOnce(T) -> M,
    ) -> Result<M, AdminError> {
        match answered {
            Answered::Written(value) => {
                call.mark_written();
                Ok(build(value))
            }
            Answered::Replayed(bytes) => decode_answer(&bytes),
        }
    }

    /// The start of a write of one agency (`create`: a new one, named by its id): the audit
    /// of the call, noting the agency; its idempotency key; the request's field errors with
    /// its request id checked; and the agency the request carries, which is required.
    fn agency_write(
        &self,
        call: &mut Call,
        method: &str,
        request_id: &str,
        agency: Option<pb::Agency>,
        create: bool,
    ) -> Result<(Option<LeafData>, IdempotencyKey, FieldErrors, pb::Agency), AdminError> {
        let resources = agency
            .as_ref()
            .map(|a| vec![agency_name(Some(a), create)])
            .unwrap_or_default();
        let audit = Self::audit(call, resources);
        let key = self.key(call, method, request_id);
        let mut errors = FieldErrors::new();
        yrd_call::request_id(request_id, &mut errors);
        let Some(agency) = agency else {
            errors.push(yrd_call::violation("agency", "is required"));
            return Err(errors.into());
        };
        Ok((audit, key, errors, agency))
    }

    fn ca(&self) -> Result<&CertificateAuthority, AdminError> {
        self.ca.as_deref().ok_or(AdminError::NoCa)
    }

    fn agency_to_pb(&self, a: &Agency) -> pb::Agency {
        convert::agency_to_pb(a, &self.operator)
    }

    fn certificate_to_pb(&self, c: &CertificateRecord, now: OffsetDateTime) -> pb::Certificate {
        convert::certificate_to_pb(c, self.ca.as_deref(), now)
    }
}

/// The resource name of the agency a request names ("" when none).
fn agency_name(agency: Option<&pb::Agency>, create: bool) -> String {
    match agency {
        Some(a) if create => format!("agencies/{}", a.agency_id.trim()),
        Some(a) => a.name.clone(),
        None => String::new(),
    }
}

yrd_call::serve_rpcs! {
    impl AdminService for AdminHandler {
        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            request_id = %request.get_ref().request_id,
            name = %agency_name(request.get_ref().agency.as_ref(), true),
        ))]
        fn create_agency(&self, call, request: CreateAgencyRequest) -> CreateAgencyResponse {
            self.create_agency_call(call, request).await
        }

        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            request_id = %request.get_ref().request_id,
            name = %agency_name(request.get_ref().agency.as_ref(), false),
        ))]
        fn update_agency(&self, call, request: UpdateAgencyRequest) -> UpdateAgencyResponse {
            self.update_agency_call(call, request).await
        }

        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            name = %request.get_ref().name,
        ))]
        fn get_agency(&self, _, request: GetAgencyRequest) -> GetAgencyResponse {
            self.get_agency_call(request).await
        }

        #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
        fn list_agencies(&self, _, request: ListAgenciesRequest) -> ListAgenciesResponse {
            self.list_agencies_call(request).await
        }

        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            request_id = %request.get_ref().request_id,
            name = %request.get_ref().agency,
        ))]
        fn issue_certificate(
            &self,
            call,
            request: IssueCertificateRequest,
        ) -> IssueCertificateResponse {
            self.issue_certificate_call(call, request).await
        }

        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            name = %request.get_ref().name,
        ))]
        fn get_certificate(&self, _, request: GetCertificateRequest) -> GetCertificateResponse {
            self.get_certificate_call(request).await
        }

        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            name = %request.get_ref().agency,
        ))]
        fn list_certificates(
            &self,
            _,
            request: ListCertificatesRequest,
        ) -> ListCertificatesResponse {
            self.list_certificates_call(request).await
        }

        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            request_id = %request.get_ref().request_id,
            name = %request.get_ref().name,
        ))]
        fn revoke_certificate(
            &self,
            call,
            request: RevokeCertificateRequest,
        ) -> RevokeCertificateResponse {
            self.revoke_certificate_call(call, request).await
        }

        #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
        fn get_crl(&self, _, _request: GetCrlRequest) -> GetCrlResponse {
            self.get_crl_call().await
        }
    }
}
