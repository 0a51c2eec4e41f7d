//! What the overdue scheduler writes: the history entries of a `MarkOverdue` transition and
//! one application's flagging, as one conditional write with its events and leaf.

use prost::Message as _;
use time::{Date, OffsetDateTime};
use yrd_call::timestamp;
use yrd_domain::audit::LeafData;
use yrd_domain::calendar::{DeadlineKind, china_date};
use yrd_domain::licensing::{Application, LicensingCommand, LicensingEventKind, Transition, apply};
use yrd_domain::referral::Actor;
use yrd_domain::spotcheck::format_date;
use yrd_proto::v1::{self as pb, application_step::Detail};
use yrd_store::{ApplicationStepWrite, StoredApplication};

use crate::error::CallError;
use crate::view::{self, refresh, state_of};

use crate::service::*;

/// What the scheduler writes for one application whose time limit passed.
pub(crate) fn overdue_entries(
    before: &Application,
    transition: &Transition,
    rules: &yrd_domain::licensing::LicensingRules,
    today: Date,
    first_seq: u32,
    now: OffsetDateTime,
) -> Vec<Entry> {
    let after = &transition.new_state;
    let state_after = state_of(after.state) as i32;
    let mut entries = Vec::new();
    let mut push = |kind: pb::ApplicationStepKind,
                    event: pb::EventType,
                    note: String,
                    detail: Option<Detail>| {
        let seq = first_seq + u32::try_from(entries.len()).unwrap_or(0);
        entries.push(Entry {
            event,
            step: pb::ApplicationStep {
                seq,
                kind: kind as i32,
                time: Some(timestamp(now)),
                agency: String::new(),
                officer: String::new(),
                note,
                state_after,
                detail,
            },
        });
    };
    for event in &transition.events {
        match &event.kind {
            LicensingEventKind::Overdue(d) => push(
                pb::ApplicationStepKind::OverdueFlagged,
                pb::EventType::ApplicationStepOverdue,
                format!("the time limit for {} passed unmet", d.kind),
                Some(Detail::Deadline(view::deadline(after, *d, rules, today))),
            ),
            LicensingEventKind::Accepted { deemed: true } => {
                if let Some(d) = before.deadlines.acceptance {
                    let mut shown = view::deadline(before, d, rules, today);
                    shown.overdue = true;
                    shown.met = false;
                    push(
                        pb::ApplicationStepKind::OverdueFlagged,
                        pb::EventType::ApplicationStepOverdue,
                        format!(
                            "the time limit for {} passed unmet",
                            DeadlineKind::Acceptance
                        ),
                        Some(Detail::Deadline(shown)),
                    );
                }
                push(
                    pb::ApplicationStepKind::Accepted,
                    pb::EventType::ApplicationUpdated,
                    format!(
                        "accepted by operation of law as of {} (行政许可法 art. 32: no notice \
                         within {} working days)",
                        after.accepted_on.map(format_date).unwrap_or_default(),
                        rules.acceptance_working_days
                    ),
                    None,
                );
            }
            _ => {}
        }
    }
    entries
}

/// The method the exchange log records for the scheduler's own steps (no partner called).
pub const SCHEDULER_METHOD: &str = "yrd-exchange/LicensingScheduler/MarkOverdue";

/// The exchange-log leaf of a step the scheduler took, with its own trace id.
fn scheduler_leaf(resource: &str, now: OffsetDateTime) -> LeafData {
    LeafData::of_exchange(
        SCHEDULER_METHOD,
        vec![resource.to_owned()],
        now,
        uuid::Uuid::new_v4().simple().to_string(),
    )
}

impl LicensingHandler {
    /// Flags what is newly overdue on `stored` as of now; `Ok(false)` when another replica or
    /// call moved it on first, or nothing is overdue after all.
    pub(crate) async fn flag_overdue(&self, stored: &StoredApplication) -> Result<bool, CallError> {
        let Some(stored) = self.store.get_application(&stored.id).await? else {
            return Ok(false);
        };
        let app = machine_of(&stored)?;
        let now = stored_precision(self.clock.now());
        let today = china_date(now);
        let rules = &self.settings.rules;
        let transition = match apply(
            &app,
            &LicensingCommand::MarkOverdue,
            &Actor::Scheduler,
            now,
            rules,
        ) {
            Ok(t) => t,
            Err(refusal) => {
                tracing::debug!(application = %stored.id, %refusal, "nothing to flag");
                return Ok(false);
            }
        };
        let next = transition.new_state.clone();
        let mut view: pb::LicenceApplication = decode("application", &stored.view)?;
        refresh(&mut view, &next, rules, today, now);
        let history: Vec<pb::ApplicationStep> = stored
            .steps
            .iter()
            .map(|s| decode("application step", s))
            .collect::<Result<_, _>>()?;
        let first = u32::try_from(history.len() + 1).unwrap_or(u32::MAX);
        let entries = overdue_entries(&app, &transition, rules, today, first, now);
        let mut full = view.clone();
        full.history = history;
        full.history.extend(entries.iter().map(|e| e.step.clone()));
        let events = events(
            &recipients(&transition),
            &full,
            &entries,
            None,
            None,
            "",
            now,
        );
        let write = ApplicationStepWrite {
            key: None,
            id: stored.id.clone(),
            expected_version: stored.version,
            columns: columns(&next, &view)?,
            steps: entries
                .iter()
                .map(|e| (e.step.seq, e.step.encode_to_vec()))
                .collect(),
            licence: None,
            at: now,
            events,
            leaf: Some(scheduler_leaf(&full.name, now)),
            response: Vec::new(),
        };
        match self.store.apply_step(&write).await {
            Ok(_) => Ok(true),
            Err(yrd_store::LicensingWriteError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
