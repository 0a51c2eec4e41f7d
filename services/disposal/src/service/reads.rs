//! `GetReferral` and `ListReferrals`. Any agency of the exchange reads any referral (results are
//! public to all of them, and a third agency must read what it reacts to); a list holds the
//! caller's referrals as sampling, handling or reacting agency, newest first, keyset-paged.

use yrd_domain::AgencyId;
use yrd_proto::v1 as pb;
use yrd_store::{ReferralCursor, ReferralFilter, ReferralParty, StoredReferral};

use super::{DEFAULT_PAGE, DisposalHandler, MAX_PAGE, decode};
use crate::convert::{refresh_deadlines, state_filter};
use crate::error::CallError;
use crate::parse::RequestFields as _;
use yrd_call::{Call, FieldErrors};

impl DisposalHandler {
    pub(super) async fn get(
        &self,
        call: &mut Call,
        request: pb::GetReferralRequest,
    ) -> Result<pb::GetReferralResponse, CallError> {
        call.note(vec![request.name.trim().to_owned()]);
        let mut v = FieldErrors::new();
        let Some(id) = v.referral_id("name", &request.name) else {
            return Err(CallError::Invalid(v));
        };
        let stored = self
            .store
            .get_referral(&id)
            .await?
            .ok_or_else(|| CallError::NotFound(format!("referrals/{id}")))?;
        if let Some(case) = super::case_name(&stored) {
            // A read of a referral of a case is part of the case's story in the log
            // (docs/cases.md).
            call.note(vec![format!("referrals/{id}"), case]);
        }
        Ok(pb::GetReferralResponse {
            referral: Some(self.as_of_now(&stored)?),
        })
    }

    pub(super) async fn list(
        &self,
        caller: AgencyId,
        request: pb::ListReferralsRequest,
    ) -> Result<pb::ListReferralsResponse, CallError> {
        let mut v = FieldErrors::new();
        let party = match pb::ReferralRole::try_from(request.role) {
            Ok(pb::ReferralRole::Unspecified) => ReferralParty::SamplingOrHandling,
            Ok(pb::ReferralRole::Sampling) => ReferralParty::Sampling,
            Ok(pb::ReferralRole::Handling) => ReferralParty::Handling,
            Ok(pb::ReferralRole::Reacting) => ReferralParty::Reacting,
            Err(_) => {
                v.add("role", "is not a ReferralRole");
                ReferralParty::SamplingOrHandling
            }
        };
        let state = match pb::ReferralState::try_from(request.state) {
            Ok(s) => state_filter(s),
            Err(_) => {
                v.add("state", "is not a ReferralState");
                None
            }
        };
        let producer_uscc =
            yrd_call::optional_uscc("producer_uscc", &request.producer_uscc, &mut v);
        let product = v.optional_text("product_name_contains", &request.product_name_contains);
        let limit = yrd_call::page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE, &mut v);
        let after = yrd_call::page_after(&request.page_token, decode_token, &mut v);
        if !v.is_empty() {
            return Err(CallError::Invalid(v));
        }
        let filter = ReferralFilter {
            agency: caller,
            party,
            state,
            overdue: request.overdue,
            announcement_required: request.announcement_required,
            product_name_contains: (!product.is_empty()).then_some(product),
            producer_uscc,
        };
        let mut rows = self
            .store
            .list_referrals(&filter, after.as_ref(), limit + 1)
            .await?;
        let next_page_token =
            yrd_call::next_page_token(&mut rows, limit as usize, |r| encode_token(&r.cursor()));
        Ok(pb::ListReferralsResponse {
            referrals: rows
                .iter()
                .map(|r| self.as_of_now(r))
                .collect::<Result<_, _>>()?,
            next_page_token,
        })
    }
}

impl DisposalHandler {
    /// The stored referral with its deadlines as of now: the stored body was encoded at the
    /// last step, and the objection window closes without one.
    fn as_of_now(&self, stored: &StoredReferral) -> Result<pb::Referral, CallError> {
        let mut referral: pb::Referral = decode(&stored.body, "referral")?;
        refresh_deadlines(&mut referral, &stored.machine, self.clock.now());
        referral.r#case = super::case_name(stored).unwrap_or_default();
        Ok(referral)
    }
}

/// A page token: the cursor, hex-encoded (opaque to partners).
fn encode_token(c: &ReferralCursor) -> String {
    hex::encode(format!("{}:{}", c.created_at_us, c.id))
}

fn decode_token(token: &str) -> Option<ReferralCursor> {
    let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let (at, id) = text.split_once(':')?;
    Some(ReferralCursor {
        created_at_us: at.parse().ok()?,
        id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_refuse_garbage() {
        let c = ReferralCursor {
            created_at_us: 1_720_000_000_000_000,
            id: "0190abc".into(),
        };
        assert_eq!(decode_token(&encode_token(&c)), Some(c));
        assert_eq!(decode_token("zz"), None);
        assert_eq!(decode_token(&hex::encode("no-colon")), None);
    }
}
