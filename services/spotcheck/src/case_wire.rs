//! The wire shape of a case (串案, `yrd.exchange.v1.Case`) and of its feed events, shared by
//! the link a result write makes and by the reads and unlinks of a case.

use prost::Message as _;
use time::OffsetDateTime;
use yrd_call::timestamp;
use yrd_domain::AgencyId;
use yrd_domain::spotcheck::format_date;
use yrd_proto::v1 as pb;
use yrd_store::{CaseState, NewFeedEvent, StoredCase};

/// `agencies/{agency}`.
fn agency_name(a: &AgencyId) -> String {
    format!("agencies/{a}")
}

/// The wire message of `case`.
pub fn case_to_pb(case: &StoredCase) -> pb::Case {
    pb::Case {
        name: format!("cases/{}", case.id),
        id: case.id.clone(),
        state: match case.state {
            CaseState::Open => pb::CaseState::Open,
            CaseState::Dissolved => pb::CaseState::Dissolved,
        } as i32,
        producer_uscc: case.producer_uscc.clone(),
        model: case.model.clone(),
        handling_agency: case
            .handling_agency
            .as_ref()
            .map(agency_name)
            .unwrap_or_default(),
        agencies: case.agencies().iter().map(agency_name).collect(),
        results: case
            .members
            .iter()
            .map(|m| pb::CaseResult {
                result: format!("results/{}", m.result_id),
                publisher_agency: agency_name(&m.publisher),
                finding_date: format_date(m.finding_date),
                referrals: m
                    .referrals
                    .iter()
                    .map(|r| format!("referrals/{r}"))
                    .collect(),
                link_time: Some(timestamp(m.linked_at)),
            })
            .collect(),
        first_finding_date: format_date(case.first_finding),
        last_finding_date: format_date(case.last_finding),
        unlinks: case
            .unlinks
            .iter()
            .map(|u| pb::CaseUnlink {
                result: format!("results/{}", u.result_id),
                agency: agency_name(&u.agency),
                officer: u.officer.clone(),
                reason: u.reason.clone(),
                unlink_time: Some(timestamp(u.at)),
            })
            .collect(),
        trace_id: case.trace_id.clone(),
        create_time: Some(timestamp(case.created_at)),
        update_time: Some(timestamp(case.updated_at)),
    }
}

/// One `event_type` event about `case` to each of `recipients`, caused by `actor`'s call of
/// trace `trace_id` at `at`.
pub fn case_event(
    recipients: &[AgencyId],
    event_type: pb::EventType,
    case: &pb::Case,
    actor: &AgencyId,
    trace_id: &str,
    at: OffsetDateTime,
) -> Vec<NewFeedEvent> {
    let version = u32::try_from(case.results.len() + case.unlinks.len()).unwrap_or(u32::MAX);
    recipients
        .iter()
        .map(|recipient| {
            let event_id = uuid::Uuid::new_v4().simple().to_string();
            let event = pb::FeedEvent {
                event_id: event_id.clone(),
                event_type: event_type as i32,
                resource_name: case.name.clone(),
                resource_version: version,
                event_time: Some(timestamp(at)),
                actor_agency: agency_name(actor),
                trace_id: trace_id.to_owned(),
                resource: Some(pb::feed_event::Resource::Case(case.clone())),
                ..Default::default()
            };
            NewFeedEvent {
                recipient: recipient.clone(),
                event_id,
                event_type: event_type.as_str_name().to_owned(),
                resource_name: case.name.clone(),
                resource_version: i64::from(version),
                event_time: at,
                actor_agency: actor.to_string(),
                trace_id: trace_id.to_owned(),
                needs_disposal: false,
                payload: event.encode_to_vec(),
            }
        })
        .collect()
}
