//! Opening a referral: by hand (`CreateReferral`) or automatically when a non-conforming result
//! is published against another province's producer or seller.
//!
//! Which automatic referrals to open, on which basis, asking for what and with which deadlines
//! is decided by the pure `yrd_domain::referral::automatic::referrals_for`, which the spot-check
//! write calls; [`automatic`] only gives its answer the wire shape. Both paths build the wire
//! referral with [`build`], so they cannot drift apart.

use prost::Message as _;
use time::OffsetDateTime;
use yrd_call::timestamp;
use yrd_domain::AgencyId;
use yrd_domain::referral::automatic::{AutomaticReferral, RequestedAction};
use yrd_domain::referral::{JurisdictionBasis, Referral, ReferralRules, Refusal, Transition};
use yrd_domain::spotcheck::SpotCheckResult;
use yrd_proto::v1 as pb;
use yrd_store::NewReferral;

use crate::convert::{self, agency_name};
use crate::timeline::{StepContext, StepDetail, advance};

/// Builds new referrals with the deployment's referral rules.
#[derive(Debug, Clone, Default)]
pub struct Opener {
    rules: ReferralRules,
}

/// What a new referral says.
#[derive(Debug, Clone)]
pub struct Opening<'a> {
    /// The result referred.
    pub result_id: &'a str,
    /// Its version.
    pub result_version: u32,
    /// Its product name.
    pub product_name: &'a str,
    /// Its nominal producer.
    pub producer: pb::Party,
    /// The sampling agency (the result's publisher).
    pub sampling: &'a AgencyId,
    /// The handling agency.
    pub handling: &'a AgencyId,
    /// Why the handling agency has jurisdiction.
    pub basis: JurisdictionBasis,
    /// Automatic or by hand.
    pub origin: pb::ReferralOrigin,
    /// The measure kinds asked for.
    pub requested_actions: Vec<i32>,
    /// The sampling agency's note.
    pub note: String,
    /// When.
    pub at: OffsetDateTime,
    /// The trace of the call that opens it.
    pub trace_id: &'a str,
    /// The officer named in that call's token.
    pub officer: &'a str,
}

impl Opener {
    /// An opener applying `rules`.
    pub fn new(rules: ReferralRules) -> Self {
        Opener { rules }
    }

    /// The rules it applies.
    pub fn rules(&self) -> &ReferralRules {
        &self.rules
    }

    /// The rows and feed events of a new referral. Refused when the two agencies are one.
    pub fn open(&self, o: &Opening<'_>) -> Result<NewReferral, Refusal> {
        let t = Referral::open(o.sampling.clone(), o.handling.clone(), o.at, &self.rules)?;
        Ok(build(o, uuid::Uuid::now_v7().simple().to_string(), &t))
    }
}

/// The rows and feed events of new referral `id`, opened by `t`.
pub fn build(o: &Opening<'_>, id: String, t: &Transition) -> NewReferral {
    let producer_uscc = o.producer.uscc.clone();
    let base = pb::Referral {
        name: format!("referrals/{id}"),
        id: id.clone(),
        result: format!("results/{}", o.result_id),
        result_version: o.result_version,
        product_name: o.product_name.to_owned(),
        producer: Some(o.producer.clone()),
        sampling_agency: agency_name(o.sampling),
        handling_agency: agency_name(o.handling),
        jurisdiction_basis: convert::basis(o.basis) as i32,
        origin: o.origin as i32,
        requested_actions: o.requested_actions.clone(),
        note: o.note.clone(),
        create_time: Some(timestamp(o.at)),
        ..Default::default()
    };
    let (referral, events) = advance(
        &base,
        t,
        &StepDetail::None,
        StepContext {
            actor: Some(o.sampling),
            officer: o.officer,
            note: &o.note,
            trace_id: o.trace_id,
            at: o.at,
        },
    );
    NewReferral {
        id,
        result_id: o.result_id.to_owned(),
        result_version: o.result_version,
        product_name: o.product_name.to_owned(),
        producer_uscc,
        machine: t.new_state.clone(),
        body: referral.encode_to_vec(),
        at: o.at,
        events,
    }
}

/// The wire measure kind of `action`.
fn measure_kind(action: RequestedAction) -> pb::MeasureKind {
    match action {
        RequestedAction::StopProduction => pb::MeasureKind::StopProduction,
        RequestedAction::StopSales => pb::MeasureKind::StopSales,
        RequestedAction::DelistOnline => pb::MeasureKind::DelistOnline,
        RequestedAction::OrderRectification => pb::MeasureKind::OrderRectification,
        RequestedAction::Review => pb::MeasureKind::Review,
    }
}

/// What the spot-check write opens for `a`, decided by the domain, about version
/// `result_version` of result `result_id` (content `result`) published by `sampling`.
#[allow(clippy::too_many_arguments)]
pub fn automatic(
    a: &AutomaticReferral,
    result_id: &str,
    result_version: u32,
    result: &SpotCheckResult,
    sampling: &AgencyId,
    at: OffsetDateTime,
    trace_id: &str,
    officer: &str,
) -> NewReferral {
    let producer = result.producer();
    build(
        &Opening {
            result_id,
            result_version,
            product_name: &result.product().name,
            producer: pb::Party {
                name: producer.name.clone(),
                uscc: producer.uscc.as_str().to_owned(),
                address: producer.address.clone(),
                region_code: producer.region.as_str().to_owned(),
            },
            sampling,
            handling: &a.handling_agency,
            basis: a.basis,
            origin: pb::ReferralOrigin::Automatic,
            requested_actions: a
                .requested_actions
                .iter()
                .map(|k| measure_kind(*k) as i32)
                .collect(),
            note: a.note.clone(),
            at,
            trace_id,
            officer,
        },
        a.id.clone(),
        &a.opened,
    )
}
