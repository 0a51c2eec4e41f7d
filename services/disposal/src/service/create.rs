//! `CreateReferral`: the sampling agency opens a referral by hand, for a non-conforming result
//! it published (not withdrawn), to a registered agency whose province matches the stated basis
//! (the producer's or the seller's region).

use prost::Message as _;
use yrd_call::{Call, FieldErrors, resource_id, violation};
use yrd_domain::referral::JurisdictionBasis;
use yrd_domain::routing::within_jurisdiction;
use yrd_proto::v1 as pb;
use yrd_store::{IdempotencyKey, ResultState, WriteOutcome};

use super::{DisposalHandler, SERVICE, StepAnswer, decode, of_lookup, stored_precision};
use crate::convert::{agency_name, basis_from_wire};
use crate::error::CallError;
use crate::opener::Opening;
use crate::parse::RequestFields as _;

impl DisposalHandler {
    pub(super) async fn create(
        &self,
        call: &mut Call,
        body: pb::CreateReferralRequest,
    ) -> Result<pb::CreateReferralResponse, CallError> {
        let now = stored_precision(self.clock.now());
        call.note(vec![body.result.trim().to_owned()]);
        let mut v = FieldErrors::new();
        let request_id = v.request_id(&body.request_id);
        let result_id = match resource_id(body.result.trim(), "results", "result") {
            Ok(id) => Some(id.to_owned()),
            Err(violation) => {
                v.push(violation);
                None
            }
        };
        let handling = v.agency("handling_agency", &body.handling_agency, true);
        let basis = basis_from_wire(body.jurisdiction_basis);
        if basis.is_none() {
            v.add("jurisdiction_basis", "is required: PRODUCER or SELLER");
        }
        let requested_actions = v.requested_actions(&body.requested_actions);
        let note = v.optional_text("note", &body.note);
        if let Some(h) = &handling {
            self.check_registered(&[("handling_agency", h.clone())], &mut v)
                .await?;
        }
        let (Some(result_id), Some(handling), Some(basis), true) =
            (result_id, handling, basis, v.is_empty())
        else {
            return Err(CallError::Invalid(v));
        };
        let key = IdempotencyKey {
            agency: call.agency().clone(),
            method: format!("{SERVICE}CreateReferral"),
            request_id,
            request_digest: call.request_sha256.clone(),
        };
        if let Some(answer) = self.store.answered_request(&key).await.map_err(of_lookup)? {
            return decode(&answer, "stored answer");
        }
        let result_name = format!("results/{result_id}");
        let version = (body.result_version != 0).then_some(body.result_version);
        let stored = self
            .store
            .get_result(&result_id, version)
            .await?
            .ok_or_else(|| match version {
                Some(n) => CallError::NotFound(format!("{result_name}/versions/{n}")),
                None => CallError::NotFound(result_name.clone()),
            })?;
        if &stored.publisher != call.agency() {
            return Err(CallError::NotPublisher {
                name: result_name,
                publisher: agency_name(&stored.publisher),
            });
        }
        if stored.state == ResultState::Withdrawn {
            return Err(CallError::NotReferable(format!(
                "{result_name} is withdrawn; a withdrawn result is not referred"
            )));
        }
        let content: pb::SpotCheckResult = decode(&stored.body, "result body")?;
        if content.verdict != pb::Verdict::NonConforming as i32 {
            return Err(CallError::NotReferable(format!(
                "{result_name} version {} is conforming; only a non-conforming result is referred",
                stored.version
            )));
        }
        let producer = content.producer.clone().unwrap_or_default();
        let (whose, region) = match basis {
            JurisdictionBasis::Producer => ("nominal producer", producer.region_code.clone()),
            JurisdictionBasis::Seller => (
                "sampled seller",
                content
                    .seller
                    .as_ref()
                    .map(|s| s.region_code.clone())
                    .unwrap_or_default(),
            ),
        };
        if !within_jurisdiction(&handling, &region) {
            let province = handling.province();
            return Err(CallError::Invalid(FieldErrors::from(violation(
                "handling_agency",
                format!(
                    "the {whose} of {result_name} lies in region {region}, outside {}'s \
                     province {}",
                    agency_name(&handling),
                    province.as_str()
                ),
            ))));
        }
        let new = self.opener.open(&Opening {
            result_id: &result_id,
            result_version: stored.version,
            product_name: content
                .product
                .as_ref()
                .map(|p| p.name.as_str())
                .unwrap_or_default(),
            producer,
            sampling: call.agency(),
            handling: &handling,
            basis,
            origin: pb::ReferralOrigin::Manual,
            requested_actions,
            note,
            at: now,
            trace_id: &call.trace_id,
            officer: &call.officer,
        })?;
        let referral: pb::Referral = decode(&new.body, "referral")?;
        // A referral of a result in a case is part of the case's story in the log
        // (docs/cases.md).
        let case = self
            .store
            .cases_of_results(&[result_id.as_str()])
            .await?
            .remove(&result_id);
        call.note(
            std::iter::once(result_name)
                .chain(case.map(|c| format!("cases/{c}")))
                .collect(),
        );
        let leaf = call.success_leaf();
        let response = pb::CreateReferralResponse::new(referral, self.receipt(leaf.as_ref(), now));
        let outcome = self
            .store
            .create_referral(&key, &new, leaf.as_ref(), &response.encode_to_vec())
            .await
            .map_err(|e| CallError::of_write(&format!("referrals/{}", new.id), e))?;
        match outcome {
            WriteOutcome::Written(_) => {
                call.mark_written();
                Ok(response)
            }
            WriteOutcome::Replayed(answer) => decode(&answer, "stored answer"),
        }
    }
}
