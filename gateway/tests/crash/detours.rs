//! The referral steps off the disposal's main path (docs/domain.md §"Disposal"): the
//! producer's objection (异议) filed by the sampling agency and its re-inspection (复检)
//! outcome, a return (退回) by the handling agency, with or without a suggested agency, the
//! sampling agency's reroute (改派) of a returned referral, and reactions (协查反馈) of a third
//! agency. Each is taken only where the disposal contract allows it, so every one the load
//! sends must succeed.

use rand::Rng;
use yrd_bench::connect::AGENCIES;
use yrd_bench::workloads::results::today;
use yrd_domain::spotcheck::format_date;
use yrd_e2e::fixtures::pdf;
use yrd_proto::v1 as pb;

use crate::steps::{Owned, ReferralCall, ReferralRequest, ReferralStep};

/// Share of referral steps that file an objection, where one may still be filed.
pub(crate) const OBJECTION_SHARE: f64 = 0.08;

/// Share of referral steps that return the referral, where the handling agency may.
pub(crate) const RETURN_SHARE: f64 = 0.06;

/// Share of referral steps that add a third agency's reaction.
pub(crate) const REACTION_SHARE: f64 = 0.08;

/// Share of re-inspections that conform (and so close the referral as overturned).
pub(crate) const OVERTURN_SHARE: f64 = 0.3;

/// A referral step off the main path for the referral `name`, owned by a writer of `sampling`
/// (index into [`AGENCIES`]) and handled by `handler`, whose last step was `last`; `None` to
/// take the main path's next step. Answers the agency that sends it and the call; the note
/// or reason of each names `request_id`, so that the checks find the step by it.
pub(crate) fn detour(
    owned: &Owned,
    name: &str,
    last: ReferralStep,
    (sampling, handler): (usize, usize),
    request_id: String,
    rng: &mut impl Rng,
) -> Option<(usize, ReferralCall)> {
    use ReferralStep as S;
    let name = name.to_owned();
    let day = format_date(today());
    // An agency that is neither party: the one after the handler, skipping the sampler.
    let third = (1..AGENCIES.len())
        .map(|k| (handler + k) % AGENCIES.len())
        .find(|a| *a != sampling && *a != handler)?;
    let roll: f64 = rng.random();
    let call = |step, request| ReferralCall { step, request };
    Some(match last {
        S::Returned => (
            sampling,
            call(
                S::Opened,
                ReferralRequest::Reroute(pb::RerouteReferralRequest {
                    request_id: request_id.clone(),
                    name,
                    handling_agency: format!("agencies/{}", AGENCIES[third].0),
                    jurisdiction_basis: pb::JurisdictionBasis::Seller as i32,
                    reason: format!("改派至销售者所在地 {request_id}"),
                }),
            ),
        ),
        S::ObjectionFiled => {
            let conforming = rng.random_bool(OVERTURN_SHARE);
            let (step, outcome) = if conforming {
                (S::Overturned, pb::Verdict::Conforming)
            } else {
                let resume = owned.resume.get(&name).copied()?;
                (resume, pb::Verdict::NonConforming)
            };
            (
                sampling,
                call(
                    step,
                    ReferralRequest::Reinspection(pb::RecordReinspectionRequest {
                        request_id: request_id.clone(),
                        name,
                        reinspection: Some(pb::Reinspection {
                            outcome: outcome as i32,
                            inspection_body: "某复检机构".into(),
                            report_number: format!("FJ-{request_id}"),
                            report_date: day,
                            detail: String::new(),
                            attachments: vec![pdf("复检报告.pdf", "复检报告")],
                        }),
                        note: request_id,
                    }),
                ),
            )
        }
        S::Opened
        | S::Acknowledged
        | S::HandlingStarted
        | S::StopSales
        | S::RectificationOrdered
            if roll < OBJECTION_SHARE && !owned.objected.contains(&name) =>
        {
            (
                sampling,
                call(
                    S::ObjectionFiled,
                    ReferralRequest::Objection(pb::FileObjectionRequest {
                        request_id: request_id.clone(),
                        name,
                        objection: Some(pb::Objection {
                            party_name: "某生产企业".into(),
                            result_received_date: day.clone(),
                            received_date: day,
                            grounds: "对检验结论有异议，申请复检".into(),
                            attachments: vec![],
                        }),
                        note: request_id,
                    }),
                ),
            )
        }
        S::Opened | S::Acknowledged | S::HandlingStarted | S::StopSales
            if roll < OBJECTION_SHARE + RETURN_SHARE =>
        {
            // Half the returns name the competent agency: the exchange reroutes at once.
            let suggest = rng.random_bool(0.5);
            let (step, suggested_agency) = if suggest {
                (S::Opened, format!("agencies/{}", AGENCIES[third].0))
            } else {
                (S::Returned, String::new())
            };
            (
                handler,
                call(
                    step,
                    ReferralRequest::Return(pb::ReturnReferralRequest {
                        request_id: request_id.clone(),
                        name,
                        reason: format!("非本局管辖 {request_id}"),
                        suggested_agency,
                    }),
                ),
            )
        }
        _ if roll < OBJECTION_SHARE + RETURN_SHARE + REACTION_SHARE => (
            third,
            call(
                last,
                ReferralRequest::Reaction(pb::AddReactionRequest {
                    request_id: request_id.clone(),
                    name,
                    reaction: Some(pb::Reaction {
                        kind: pb::ReactionKind::FoundOnSaleHere as i32,
                        text: format!("本地发现同款产品在售 {request_id}"),
                        ..Default::default()
                    }),
                }),
            ),
        ),
        _ => return None,
    })
}
