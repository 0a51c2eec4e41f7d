//! Opening a referral: by hand (`CreateReferral`) or automatically when a non-conforming result
//! is published against another province's producer or seller.
//!
//! The automatic path runs inside the spot-check service's publish, which knows nothing of
//! referrals on the wire: the gateway hands it this [`Opener`] as a
//! [`yrd_store::ReferralOpener`], and it writes what the opener builds in the transaction of the
//! result. Both paths build the referral here, so they cannot drift apart.
//!
//! Requested actions of an automatic referral (the issue leaves them open): what the Interim
//! Measures ask of the handling agency by default — for the producer's authority stopping
//! production and sales (art. 45), ordering correction (art. 46) and reviewing it (art. 47); for
//! the seller's authority stopping sales and delisting the online offer instead of stopping
//! production.

use prost::Message as _;
use time::OffsetDateTime;
use yrd_call::timestamp;
use yrd_domain::AgencyId;
use yrd_domain::referral::{JurisdictionBasis, Referral, ReferralRules, Refusal};
use yrd_proto::v1 as pb;
use yrd_store::{AutoReferral, NewReferral, ReferralOpener};

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
        let id = uuid::Uuid::now_v7().simple().to_string();
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
            &t,
            &StepDetail::None,
            StepContext {
                actor: Some(o.sampling),
                officer: o.officer,
                note: &o.note,
                trace_id: o.trace_id,
                at: o.at,
            },
        );
        Ok(NewReferral {
            id,
            result_id: o.result_id.to_owned(),
            result_version: o.result_version,
            product_name: o.product_name.to_owned(),
            producer_uscc,
            machine: t.new_state,
            body: referral.encode_to_vec(),
            at: o.at,
            events,
        })
    }
}

/// The measures an automatic referral asks for, by basis.
pub fn default_actions(basis: JurisdictionBasis) -> Vec<i32> {
    let kinds: &[pb::MeasureKind] = match basis {
        JurisdictionBasis::Producer => &[
            pb::MeasureKind::StopProduction,
            pb::MeasureKind::OrderRectification,
            pb::MeasureKind::Review,
        ],
        JurisdictionBasis::Seller => &[
            pb::MeasureKind::StopSales,
            pb::MeasureKind::DelistOnline,
            pb::MeasureKind::OrderRectification,
            pb::MeasureKind::Review,
        ],
    };
    kinds.iter().map(|k| *k as i32).collect()
}

impl ReferralOpener for Opener {
    fn open_automatic(&self, a: &AutoReferral<'_>) -> Result<NewReferral, Refusal> {
        let producer = a.result.producer();
        let whose = match a.basis {
            JurisdictionBasis::Producer => "the nominal producer",
            JurisdictionBasis::Seller => "the sampled seller",
        };
        self.open(&Opening {
            result_id: a.result_id,
            result_version: a.result_version,
            product_name: &a.result.product().name,
            producer: pb::Party {
                name: producer.name.clone(),
                uscc: producer.uscc.as_str().to_owned(),
                address: producer.address.clone(),
                region_code: producer.region.as_str().to_owned(),
            },
            sampling: a.sampling_agency,
            handling: a.handling_agency,
            basis: a.basis,
            origin: pb::ReferralOrigin::Automatic,
            requested_actions: default_actions(a.basis),
            note: format!(
                "Opened by the exchange: non-conforming result, {whose} lies in {}'s area \
                 (Interim Measures art. 44).",
                agency_name(a.handling_agency)
            ),
            at: a.at,
            trace_id: a.trace_id,
            officer: a.officer,
        })
    }
}
