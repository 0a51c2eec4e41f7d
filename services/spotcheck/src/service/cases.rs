//! The case link (串案) of a publish or a correction (docs/cases.md): the candidates of the
//! result's product read, the link decided by the domain's rule, and what the write commits
//! for it — the case rows with their guard, a `CASE_LINKED` event to every agency of the case,
//! and the case's name for the call's audit leaf.

use time::OffsetDateTime;
use yrd_call::Call;
use yrd_domain::AgencyId;
use yrd_domain::case::{Candidate, Finding, Link, plan_link};
use yrd_domain::routing::AgencyDirectory;
use yrd_domain::spotcheck::SpotCheckResult;
use yrd_proto::v1 as pb;
use yrd_store::{CaseMember, CaseRows, CaseState, LinkRows, NewCase, StoreError, StoredCase};

use super::SpotCheckHandler;
use crate::case_wire::{case_event, case_to_pb};
use crate::error::CallError;

/// What a result write commits for its case.
#[derive(Debug, Default)]
pub(crate) struct CasePlan {
    /// The case rows.
    pub(crate) rows: CaseRows,
    /// The `CASE_LINKED` events of a new link.
    pub(crate) events: Vec<yrd_store::NewFeedEvent>,
    /// The case the result is in after the write (`cases/{id}`).
    pub(crate) case: Option<String>,
}

impl CasePlan {
    /// The resources a call about result `name` touches: the result, and its case when it is
    /// in one after the write (so the case's audit trail holds it).
    pub(crate) fn resources(&self, name: &str) -> Vec<String> {
        std::iter::once(name.to_owned())
            .chain(self.case.clone())
            .collect()
    }
}

impl SpotCheckHandler {
    /// The case plan of a write of result `id` whose content becomes `parsed` (`None` for a
    /// withdrawal), by `publisher`, opening referrals `opened` (ids).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn case_plan(
        &self,
        call: &Call,
        id: &str,
        parsed: Option<&SpotCheckResult>,
        publisher: &AgencyId,
        opened: &[String],
        directory: &AgencyDirectory,
        now: OffsetDateTime,
    ) -> Result<CasePlan, CallError> {
        let mut plan = CasePlan {
            rows: CaseRows {
                result_id: id.to_owned(),
                at: Some(now),
                ..Default::default()
            },
            ..Default::default()
        };
        let current = self.store.cases_of_results(&[id]).await?.remove(id);
        plan.case = current.as_ref().map(|c| format!("cases/{c}"));
        let Some(finding) = parsed.and_then(Finding::of) else {
            return Ok(plan);
        };
        let stored = self
            .store
            .case_candidates(&finding.key.producer_uscc, &finding.key.model, id)
            .await?;
        plan.rows.seen = stored
            .iter()
            .map(|c| (c.result_id.clone(), c.case_id.clone()))
            .collect();
        plan.rows.finding = Some((publisher.clone(), finding.clone()));
        if current.is_some() {
            // Already in a case: it stays there (only an officer unlinks it).
            return Ok(plan);
        }
        let excluded = self.store.cases_unlinked_from(id).await?;
        let candidates: Vec<Candidate> = stored
            .iter()
            .map(|c| Candidate {
                result_id: c.result_id.clone(),
                finding: c.finding.clone(),
                case_id: c.case_id.clone(),
            })
            .collect();
        let (case_id, create, with) =
            match plan_link(&finding, &candidates, &excluded, self.case_window) {
                Link::None => return Ok(plan),
                Link::Create { with } => {
                    let handling = parsed
                        .and_then(|p| directory.province_authority(p.producer().region))
                        .cloned();
                    let new = NewCase {
                        producer_uscc: finding.key.producer_uscc.clone(),
                        model: finding.key.model.clone(),
                        handling_agency: handling,
                        trace_id: call.trace_id.clone(),
                        span_id: call.span_id().to_owned(),
                    };
                    (uuid::Uuid::now_v7().simple().to_string(), Some(new), with)
                }
                Link::Join { case_id, with } => (case_id, None, with),
            };
        let mut before = match &create {
            Some(new) => new_case(&case_id, new, now),
            None => self.store.get_case(&case_id).await?.ok_or_else(|| {
                CallError::Store(StoreError::Corrupt {
                    what: "case",
                    detail: format!("case {case_id} was found and is gone"),
                })
            })?,
        };
        let joining: Vec<&yrd_store::StoredFinding> = with
            .iter()
            .filter_map(|r| stored.iter().find(|c| &c.result_id == r))
            .collect();
        let ids: Vec<&str> = joining.iter().map(|c| c.result_id.as_str()).collect();
        let mut referrals = self.store.referral_names_of_results(&ids).await?;
        let mut members: Vec<CaseMember> = joining
            .iter()
            .map(|c| CaseMember {
                result_id: c.result_id.clone(),
                publisher: c.publisher.clone(),
                finding_date: c.finding.date,
                linked_at: now,
                referrals: ids_of(referrals.remove(&c.result_id).unwrap_or_default()),
            })
            .collect();
        members.push(CaseMember {
            result_id: id.to_owned(),
            publisher: publisher.clone(),
            finding_date: finding.date,
            linked_at: now,
            referrals: opened.to_vec(),
        });
        plan.rows.link = Some(LinkRows {
            case_id: case_id.clone(),
            create,
            members: members
                .iter()
                .map(|m| (m.result_id.clone(), m.publisher.clone(), m.finding_date))
                .collect(),
        });
        before.members.extend(members);
        before
            .members
            .sort_by(|a, b| (a.finding_date, &a.result_id).cmp(&(b.finding_date, &b.result_id)));
        before.state = CaseState::Open;
        before.updated_at = now;
        if let (Some(first), Some(last)) = (before.members.first(), before.members.last()) {
            before.first_finding = first.finding_date;
            before.last_finding = last.finding_date;
        }
        let message = case_to_pb(&before);
        plan.events = case_event(
            &before.agencies(),
            pb::EventType::CaseLinked,
            &message,
            call.agency(),
            &call.trace_id,
            now,
        );
        plan.case = Some(message.name);
        Ok(plan)
    }
}

/// Referral names `referrals/{id}` as ids.
fn ids_of(names: Vec<String>) -> Vec<String> {
    names
        .into_iter()
        .map(|n| n.trim_start_matches("referrals/").to_owned())
        .collect()
}

/// A case about to be formed, before its results are added.
fn new_case(id: &str, new: &NewCase, now: OffsetDateTime) -> StoredCase {
    StoredCase {
        id: id.to_owned(),
        producer_uscc: new.producer_uscc.clone(),
        model: new.model.clone(),
        handling_agency: new.handling_agency.clone(),
        state: CaseState::Open,
        first_finding: now.date(),
        last_finding: now.date(),
        trace_id: new.trace_id.clone(),
        span_id: new.span_id.clone(),
        created_at: now,
        updated_at: now,
        members: Vec::new(),
        unlinks: Vec::new(),
    }
}
