//! A step the domain accepted → the referral as partners read it after the step, and the feed
//! events that tell every party about it.
//!
//! Each event of the machine's [`Transition`] becomes one timeline entry (a reaction becomes a
//! reaction instead) and one feed event per agency the machine says must be told, each carrying
//! the whole referral after the step, so a partner can act without a second call. The same code
//! serves calls, automatic openings and the scheduler, so all three look alike on the wire.

use prost::Message as _;
use time::OffsetDateTime;
use yrd_call::timestamp;
use yrd_domain::AgencyId;
use yrd_domain::referral::{JurisdictionBasis, ReferralEventKind, ReviewResult, Transition};
use yrd_proto::v1 as pb;
use yrd_store::NewFeedEvent;

use crate::convert::{self, agency_name};

/// The step's own data, as the caller sent it (parsed).
#[derive(Debug, Clone, Default)]
pub enum StepDetail {
    /// Nothing beyond the note.
    #[default]
    None,
    /// A measure.
    Measure(pb::Measure),
    /// An objection.
    Objection(pb::Objection),
    /// A re-inspection outcome.
    Reinspection(pb::Reinspection),
    /// A return.
    Returned(pb::ReferralReturn),
    /// A reroute by the sampling agency (or by a return naming the competent agency).
    Reroute {
        /// The new agency's jurisdiction basis; `None` keeps the current one.
        basis: Option<JurisdictionBasis>,
        /// Why.
        reason: String,
    },
    /// A closure.
    Closure(pb::ReferralClosure),
    /// A reaction.
    Reaction(pb::Reaction),
}

/// Who took the step, and when.
#[derive(Debug, Clone, Copy)]
pub struct StepContext<'a> {
    /// The acting agency; `None` for the exchange's scheduler.
    pub actor: Option<&'a AgencyId>,
    /// The officer named in the caller's token.
    pub officer: &'a str,
    /// The caller's note.
    pub note: &'a str,
    /// The call's trace id.
    pub trace_id: &'a str,
    /// When.
    pub at: OffsetDateTime,
}

/// The referral after `t` applied to `before`, and the feed events of the step.
pub fn advance(
    before: &pb::Referral,
    t: &Transition,
    detail: &StepDetail,
    ctx: StepContext<'_>,
) -> (pb::Referral, Vec<NewFeedEvent>) {
    let machine = &t.new_state;
    let mut r = before.clone();
    let actor = ctx.actor.map(agency_name).unwrap_or_default();
    let final_state = convert::state(&machine.state) as i32;
    // The wire version each event is about: the timeline entry it added.
    let mut versions: Vec<u32> = Vec::with_capacity(t.events.len());
    for (i, event) in t.events.iter().enumerate() {
        if let ReferralEventKind::ReactionAdded(_) = event.kind {
            if let StepDetail::Reaction(reaction) = detail {
                let mut reaction = reaction.clone();
                reaction.seq = u32::try_from(r.reactions.len() + 1).unwrap_or(u32::MAX);
                reaction.agency.clone_from(&actor);
                reaction.officer = ctx.officer.to_owned();
                reaction.create_time = Some(timestamp(ctx.at));
                r.reactions.push(reaction);
            }
            versions.push(u32::try_from(r.timeline.len()).unwrap_or(u32::MAX));
            continue;
        }
        let rerouted_next = matches!(
            t.events.get(i + 1).map(|e| &e.kind),
            Some(ReferralEventKind::Rerouted { .. })
        );
        let state_after = if rerouted_next {
            pb::ReferralState::Returned as i32
        } else {
            final_state
        };
        let step_detail = match (&event.kind, detail) {
            (ReferralEventKind::MeasureRecorded(_), StepDetail::Measure(m)) => {
                Some(pb::referral_step::Detail::Measure(m.clone()))
            }
            (ReferralEventKind::ObjectionFiled, StepDetail::Objection(o)) => {
                Some(pb::referral_step::Detail::Objection(o.clone()))
            }
            (ReferralEventKind::ReinspectionRecorded(result), StepDetail::Reinspection(x)) => {
                if *result == ReviewResult::Conforming {
                    r.outcome_summary = format!(
                        "overturned by re-inspection report {} of {} ({})",
                        x.report_number, x.inspection_body, x.report_date
                    );
                }
                Some(pb::referral_step::Detail::Reinspection(x.clone()))
            }
            (ReferralEventKind::Returned, StepDetail::Returned(x)) => {
                Some(pb::referral_step::Detail::Returned(x.clone()))
            }
            (ReferralEventKind::Rerouted { from, to }, detail) => {
                let (basis, reason) = match detail {
                    StepDetail::Reroute { basis, reason } => (*basis, reason.clone()),
                    StepDetail::Returned(x) => (None, x.reason.clone()),
                    _ => (None, String::new()),
                };
                if let Some(b) = basis {
                    r.jurisdiction_basis = convert::basis(b) as i32;
                }
                r.previous_handling_agencies.push(agency_name(from));
                Some(pb::referral_step::Detail::Reroute(pb::ReferralReroute {
                    from_agency: agency_name(from),
                    to_agency: agency_name(to),
                    jurisdiction_basis: r.jurisdiction_basis,
                    reason,
                }))
            }
            (ReferralEventKind::Closed(_), StepDetail::Closure(c)) => {
                r.outcome_summary.clone_from(&c.summary);
                Some(pb::referral_step::Detail::Closure(c.clone()))
            }
            (ReferralEventKind::Overdue(d), _) => Some(pb::referral_step::Detail::Deadline(
                convert::deadline(d, machine),
            )),
            _ => None,
        };
        let seq = u32::try_from(r.timeline.len() + 1).unwrap_or(u32::MAX);
        r.timeline.push(pb::ReferralStep {
            seq,
            kind: convert::step_kind(&event.kind) as i32,
            time: Some(timestamp(ctx.at)),
            agency: actor.clone(),
            officer: ctx.officer.to_owned(),
            note: ctx.note.to_owned(),
            state_after,
            detail: step_detail,
        });
        versions.push(seq);
    }
    convert::refresh(&mut r, machine, ctx.at);

    let mut events = Vec::new();
    for (event, version) in t.events.iter().zip(versions) {
        for recipient in &event.notify {
            let event_type = event_type(&event.kind, recipient);
            let event_id = uuid::Uuid::new_v4().simple().to_string();
            let payload = pb::FeedEvent {
                cursor: 0,
                event_id: event_id.clone(),
                event_type: event_type as i32,
                resource_name: r.name.clone(),
                resource_version: version,
                event_time: Some(timestamp(ctx.at)),
                actor_agency: actor.clone(),
                trace_id: ctx.trace_id.to_owned(),
                needs_disposal: false,
                referral_step_kind: convert::step_kind(&event.kind) as i32,
                resource: Some(pb::feed_event::Resource::Referral(r.clone())),
                ..Default::default()
            };
            events.push(NewFeedEvent {
                recipient: recipient.clone(),
                event_id,
                event_type: event_type.as_str_name().to_owned(),
                resource_name: r.name.clone(),
                resource_version: i64::from(version),
                event_time: ctx.at,
                actor_agency: ctx.actor.map(ToString::to_string).unwrap_or_default(),
                trace_id: ctx.trace_id.to_owned(),
                needs_disposal: false,
                payload: payload.encode_to_vec(),
            });
        }
    }
    (r, events)
}

/// The feed event type of a machine event, as `recipient` sees it: a referral rerouted to an
/// agency is, for that agency, a referral opened to it.
fn event_type(kind: &ReferralEventKind, recipient: &AgencyId) -> pb::EventType {
    match kind {
        ReferralEventKind::Opened => pb::EventType::ReferralOpened,
        ReferralEventKind::Rerouted { to, .. } if to == recipient => pb::EventType::ReferralOpened,
        ReferralEventKind::Overdue(_) => pb::EventType::ReferralOverdue,
        ReferralEventKind::AnnouncementRequired => pb::EventType::ReferralAnnouncementRequired,
        ReferralEventKind::ReactionAdded(_) => pb::EventType::ReactionAdded,
        _ => pb::EventType::ReferralUpdated,
    }
}
