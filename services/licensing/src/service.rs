//! The `LicensingService` handler: identity from the extensions → the pilot and party checks →
//! parse → the domain's state machine → one store transaction → answer with a receipt.
//!
//! Every step goes through [`LicensingHandler::run_step`]: it loads the application, refuses a
//! caller that is not one of its two provinces, lets [`yrd_domain::licensing::apply`] decide
//! (the role comes from the caller's certificate, never from the message), then builds
//! everything the step commits — the new row and view, the history entry, the licence row when
//! the step issues, revokes or changes one, one feed event per recipient (plus a licence event
//! where a licence changed), the audit leaf and the signed answer — and hands it to the store as
//! one transaction that applies only while the application is still at the version read.

use std::sync::Arc;

use prost::Message as _;
use time::{Date, OffsetDateTime};
pub(crate) use yrd_call::Call;
use yrd_call::{receipt, timestamp};
use yrd_domain::audit::LeafData;
use yrd_domain::calendar::china_date;
use yrd_domain::clock::Clock;
use yrd_domain::licensing::{
    Application, LicensingCommand, Serial, Transition, apply, years_later,
};
use yrd_domain::referral::Actor;
use yrd_domain::spotcheck::format_date;
use yrd_domain::{AgencyId, RegionCode};
use yrd_pki::ReceiptSigner;
use yrd_proto::v1::{self as pb, application_step::Detail};
use yrd_store::{
    ApplicationColumns, ApplicationStepWrite, IdempotencyKey, LicenceWrite, NewFeedEvent, Store,
    StoredApplication, WriteOutcome,
};

use crate::config::LicensingSettings;
use crate::error::CallError;
use crate::view::{self, refresh, state_of};

pub(crate) const SERVICE: &str = "/yrd.exchange.v1.LicensingService/";

/// The `LicensingService` handler (also the overdue scheduler's engine).
#[derive(Debug, Clone)]
pub struct LicensingHandler {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) receipts: Arc<ReceiptSigner>,
    pub(crate) settings: Arc<LicensingSettings>,
}

/// A write call as a step sees it: the call's context (taken once from the request, see
/// [`yrd_call::Call`]), its agency, and the instant it is decided at.
pub(crate) struct StepCall<'a> {
    pub(crate) caller: AgencyId,
    pub(crate) ctx: &'a mut Call,
    pub(crate) now: OffsetDateTime,
}

/// What a step does to the licence of its application.
pub(crate) enum LicenceEffect {
    None,
    /// Issue it, on this date (`None`: today).
    Issue(Option<Date>),
    /// Revoke it when the step leaves the application revoked.
    RevokeIfRevoked(String),
    /// A linked change after a business-licence change.
    Change(Box<pb::LicenceChange>),
}

pub(crate) type Check = Box<dyn FnOnce(&Application) -> Result<(), CallError> + Send>;
pub(crate) type Edit = Box<dyn FnOnce(&mut pb::LicenceApplication, &Application) + Send>;

/// One step asked by a call.
pub(crate) struct Step {
    pub(crate) method: &'static str,
    pub(crate) request_id: String,
    pub(crate) id: String,
    pub(crate) command: LicensingCommand,
    pub(crate) kind: pb::ApplicationStepKind,
    pub(crate) note: String,
    pub(crate) detail: Option<Detail>,
    pub(crate) check: Option<Check>,
    pub(crate) edit: Option<Edit>,
    pub(crate) licence: LicenceEffect,
}

impl Step {
    pub(crate) fn new(
        method: &'static str,
        request_id: String,
        id: String,
        command: LicensingCommand,
        kind: pb::ApplicationStepKind,
        note: String,
    ) -> Step {
        Step {
            method,
            request_id,
            id,
            command,
            kind,
            note,
            detail: None,
            check: None,
            edit: None,
            licence: LicenceEffect::None,
        }
    }
}

/// One history entry a write appends, with the feed event type it raises.
pub(crate) struct Entry {
    pub(crate) event: pb::EventType,
    pub(crate) step: pb::ApplicationStep,
}

pub(crate) use yrd_store::stored_precision;

pub(crate) fn decode<M: prost::Message + Default>(
    what: &'static str,
    bytes: &[u8],
) -> Result<M, CallError> {
    M::decode(bytes).map_err(|e| CallError::corrupt(what, e))
}

pub(crate) fn machine_of(stored: &StoredApplication) -> Result<Application, CallError> {
    serde_json::from_str(&stored.machine).map_err(|e| CallError::corrupt("application data", e))
}

/// The application with its history.
pub(crate) fn full_view(stored: &StoredApplication) -> Result<pb::LicenceApplication, CallError> {
    let mut view: pb::LicenceApplication = decode("application", &stored.view)?;
    view.history = stored
        .steps
        .iter()
        .map(|s| decode("application step", s))
        .collect::<Result<_, _>>()?;
    Ok(view)
}

pub(crate) fn columns(
    app: &Application,
    view: &pb::LicenceApplication,
) -> Result<ApplicationColumns, CallError> {
    let mut stored = view.clone();
    stored.history.clear();
    Ok(ApplicationColumns {
        state: state_of(app.state).as_str_name().to_owned(),
        overdue: view.overdue,
        next_due: app.next_deadline().map(|d| format_date(d.due)),
        machine: serde_json::to_string(app)
            .map_err(|e| CallError::corrupt("application data", e))?,
        view: stored.encode_to_vec(),
    })
}

/// One feed event for `recipient`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn feed_event(
    recipient: &AgencyId,
    event_type: pb::EventType,
    step_kind: pb::ApplicationStepKind,
    resource_name: &str,
    version: u32,
    resource: pb::feed_event::Resource,
    actor: Option<&AgencyId>,
    trace_id: &str,
    at: OffsetDateTime,
) -> NewFeedEvent {
    let event_id = uuid::Uuid::new_v4().simple().to_string();
    let event = pb::FeedEvent {
        cursor: 0,
        event_id: event_id.clone(),
        event_type: event_type as i32,
        resource_name: resource_name.to_owned(),
        resource_version: version,
        event_time: Some(timestamp(at)),
        actor_agency: actor.map(|a| format!("agencies/{a}")).unwrap_or_default(),
        trace_id: trace_id.to_owned(),
        application_step_kind: step_kind as i32,
        resource: Some(resource),
        ..Default::default()
    };
    NewFeedEvent {
        recipient: recipient.clone(),
        event_id,
        event_type: event_type.as_str_name().to_owned(),
        resource_name: resource_name.to_owned(),
        resource_version: i64::from(version),
        event_time: at,
        actor_agency: actor.map(ToString::to_string).unwrap_or_default(),
        trace_id: trace_id.to_owned(),
        needs_disposal: false,
        payload: event.encode_to_vec(),
    }
}

/// The recipients of a transition's events, each once.
pub(crate) fn recipients(t: &Transition) -> Vec<AgencyId> {
    let mut all: Vec<AgencyId> = Vec::new();
    for e in &t.events {
        for a in &e.notify {
            if !all.contains(a) {
                all.push(a.clone());
            }
        }
    }
    all
}

/// The events of a write: per recipient, one per history entry (carrying the application with
/// its history) and one for the licence when it was issued, revoked or changed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn events(
    recipients: &[AgencyId],
    full: &pb::LicenceApplication,
    entries: &[Entry],
    licence: Option<(pb::EventType, &pb::Licence)>,
    actor: Option<&AgencyId>,
    trace_id: &str,
    at: OffsetDateTime,
) -> Vec<NewFeedEvent> {
    let mut out = Vec::new();
    for recipient in recipients {
        for entry in entries {
            out.push(feed_event(
                recipient,
                entry.event,
                entry.step.kind(),
                &full.name,
                entry.step.seq,
                pb::feed_event::Resource::Application(full.clone()),
                actor,
                trace_id,
                at,
            ));
        }
        if let Some((event_type, licence)) = licence {
            out.push(feed_event(
                recipient,
                event_type,
                entries
                    .last()
                    .map_or(pb::ApplicationStepKind::Unspecified, |e| e.step.kind()),
                &licence.name,
                u32::try_from(licence.changes.len()).unwrap_or(u32::MAX),
                pb::feed_event::Resource::Licence(licence.clone()),
                actor,
                trace_id,
                at,
            ));
        }
    }
    out
}

/// The answer of a write: the new one when it was written, or the first answer to the same
/// request, unchanged.
pub(crate) fn finish<M: prost::Message + Default>(
    outcome: WriteOutcome,
    call: &mut Call,
    response: M,
) -> Result<M, CallError> {
    match outcome {
        WriteOutcome::Written(_) => {
            call.mark_written();
            Ok(response)
        }
        WriteOutcome::Replayed(answer) => decode("stored answer", &answer),
    }
}

impl LicensingHandler {
    /// A handler writing to `store`, reading "today" from `clock`, signing receipts with
    /// `receipts`, under `settings`.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        receipts: Arc<ReceiptSigner>,
        settings: Arc<LicensingSettings>,
    ) -> Self {
        LicensingHandler {
            store,
            clock,
            receipts,
            settings,
        }
    }

    /// The step's view of `call`, decided now.
    pub(crate) fn call_of<'a>(&self, call: &'a mut Call) -> StepCall<'a> {
        StepCall {
            caller: call.agency().clone(),
            ctx: call,
            now: stored_precision(self.clock.now()),
        }
    }

    /// Refuses an agency outside the pilot, whatever it asks.
    pub(crate) fn pilot(&self, agency: &AgencyId) -> Result<(), CallError> {
        if self.settings.rules.pilot_agencies.contains(agency) {
            Ok(())
        } else {
            Err(CallError::Denied(format!(
                "{agency} is not part of the Hu-Lu joint-processing pilot (沪鲁通办); only {} \
                 may submit, see or act on licence applications",
                self.settings
                    .rules
                    .pilot_agencies
                    .iter()
                    .map(AgencyId::as_str)
                    .collect::<Vec<_>>()
                    .join(" and ")
            )))
        }
    }

    pub(crate) fn receipt(
        &self,
        leaf: Option<&LeafData>,
        at: OffsetDateTime,
    ) -> Option<pb::Receipt> {
        leaf.map(|leaf| receipt(&self.receipts.sign(&leaf.leaf_hash(), at)))
    }

    pub(crate) async fn replayed<R: prost::Message + Default>(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<R>, CallError> {
        match self
            .store
            .answered_request(key)
            .await
            .map_err(yrd_store::ResultWriteError::from)?
        {
            Some(answer) => Ok(Some(decode("stored answer", &answer)?)),
            None => Ok(None),
        }
    }

    /// Application `id` when `caller` is one of its provinces.
    pub(crate) async fn visible(
        &self,
        id: &str,
        caller: &AgencyId,
    ) -> Result<(StoredApplication, Application), CallError> {
        let name = format!("applications/{id}");
        let stored = self
            .store
            .get_application(id)
            .await?
            .ok_or_else(|| CallError::NotFound(name.clone()))?;
        let app = machine_of(&stored)?;
        if !app.can_see(caller) {
            return Err(CallError::Denied(format!(
                "{name} is handled by {} and {}; {caller} may neither see nor act on it",
                app.accepting_agency, app.issuing_agency
            )));
        }
        Ok((stored, app))
    }

    /// Runs one step of a call and answers `respond(application, licence, receipt)`.
    pub(crate) async fn run_step<R>(
        &self,
        call: StepCall<'_>,
        step: Step,
        respond: impl FnOnce(pb::LicenceApplication, Option<pb::Licence>, Option<pb::Receipt>) -> R,
    ) -> Result<R, CallError>
    where
        R: prost::Message + Default,
    {
        let StepCall { caller, ctx, now } = call;
        let officer = ctx.officer.clone();
        let name = format!("applications/{}", step.id);
        let key = IdempotencyKey {
            agency: caller.clone(),
            method: format!("{SERVICE}{}", step.method),
            request_id: step.request_id.clone(),
            request_digest: ctx.request_sha256.clone(),
        };
        ctx.note(vec![name.clone()]);
        if let Some(answer) = self.replayed(&key).await? {
            return Ok(answer);
        }
        let (stored, app) = self.visible(&step.id, &caller).await?;
        let rules = &self.settings.rules;
        let actor = Actor::Agency(caller.clone());
        let mut command = step.command;
        if let LicensingCommand::IssueLicence { .. } = command {
            // Refuse before a serial is taken; then take the next one of this prefix.
            let placeholder = Serial::new(1).map_err(|e| CallError::corrupt("serial", e))?;
            apply(
                &app,
                &LicensingCommand::IssueLicence {
                    serial: placeholder,
                },
                &actor,
                now,
                rules,
            )?;
            if let Some(check) = step.check {
                check(&app)?;
            }
            command = LicensingCommand::IssueLicence {
                serial: self.next_serial(&app).await?,
            };
        } else if let Some(check) = step.check {
            apply(&app, &command, &actor, now, rules)?;
            check(&app)?;
        }
        let transition = apply(&app, &command, &actor, now, rules)?;
        let mut next = transition.new_state.clone();
        let today = china_date(now);

        let mut view: pb::LicenceApplication = decode("application", &stored.view)?;
        let history: Vec<pb::ApplicationStep> = stored
            .steps
            .iter()
            .map(|s| decode("application step", s))
            .collect::<Result<_, _>>()?;

        // The licence the step writes, if any.
        let mut licence_write = None;
        let mut licence_event = None;
        let mut licence_detail = None;
        match step.licence {
            LicenceEffect::None => {}
            LicenceEffect::Issue(on) => {
                if let (Some(on), Some(l)) = (on, next.licence.as_mut()) {
                    l.valid_from = on;
                    l.valid_until = years_later(on, rules.validity_years);
                }
                let licence = view::new_licence(&view, &next, now)
                    .ok_or_else(|| CallError::corrupt("issued application", "no licence"))?;
                view.licence.clone_from(&licence.name);
                licence_detail = Some(licence.name.clone());
                licence_write = Some(LicenceWrite::Issue {
                    number: licence.number.clone(),
                    holder_uscc: view
                        .applicant
                        .as_ref()
                        .map(|a| a.uscc.clone())
                        .unwrap_or_default(),
                    catalogue_code: next.product.code.to_string(),
                    state: pb::LicenceState::Valid.as_str_name().to_owned(),
                    body: licence.encode_to_vec(),
                });
                licence_event = Some((pb::EventType::LicenceIssued, licence));
            }
            LicenceEffect::RevokeIfRevoked(reason) => {
                if next.state == yrd_domain::licensing::ApplicationState::Revoked {
                    let mut licence = self.licence_of_view(&view).await?;
                    licence.state = pb::LicenceState::Revoked as i32;
                    licence.revoke_time = Some(timestamp(now));
                    licence.revocation_reason = reason;
                    licence.update_time = Some(timestamp(now));
                    licence_write = Some(LicenceWrite::Update {
                        number: licence.number.clone(),
                        state: pb::LicenceState::Revoked.as_str_name().to_owned(),
                        body: licence.encode_to_vec(),
                    });
                    licence_event = Some((pb::EventType::LicenceRevoked, licence));
                }
            }
            LicenceEffect::Change(mut change) => {
                let mut licence = self.licence_of_view(&view).await?;
                let holder = licence.holder.get_or_insert_with(Default::default);
                change.seq = u32::try_from(licence.changes.len() + 1).unwrap_or(u32::MAX);
                change.time = Some(timestamp(now));
                change.agency = format!("agencies/{caller}");
                change.officer.clone_from(&officer);
                if !change.new_holder_name.is_empty() {
                    change.previous_holder_name =
                        std::mem::replace(&mut holder.name, change.new_holder_name.clone());
                }
                if !change.new_residence.is_empty() {
                    change.previous_residence =
                        std::mem::replace(&mut holder.residence, change.new_residence.clone());
                }
                if !change.new_production_address.is_empty() {
                    change.previous_production_address = std::mem::replace(
                        &mut holder.production_address,
                        change.new_production_address.clone(),
                    );
                }
                licence.changes.push(*change);
                licence.update_time = Some(timestamp(now));
                licence_write = Some(LicenceWrite::Update {
                    number: licence.number.clone(),
                    state: pb::LicenceState::try_from(licence.state)
                        .unwrap_or(pb::LicenceState::Valid)
                        .as_str_name()
                        .to_owned(),
                    body: licence.encode_to_vec(),
                });
                licence_detail = Some(licence.name.clone());
                licence_event = Some((pb::EventType::LicenceChanged, licence));
            }
        }

        refresh(&mut view, &next, rules, today, now);
        if let Some(edit) = step.edit {
            edit(&mut view, &next);
        }
        let detail = step.detail.or(licence_detail.map(Detail::Licence));
        let seq = u32::try_from(history.len() + 1).unwrap_or(u32::MAX);
        let entry = Entry {
            event: pb::EventType::ApplicationUpdated,
            step: pb::ApplicationStep {
                seq,
                kind: step.kind as i32,
                time: Some(timestamp(now)),
                agency: format!("agencies/{caller}"),
                officer,
                note: step.note,
                state_after: view.state,
                detail,
            },
        };
        let mut full = view.clone();
        full.history = history;
        full.history.push(entry.step.clone());

        let leaf = ctx.success_leaf();
        let licence_out = licence_event.as_ref().map(|(_, l)| l.clone());
        let events = events(
            &recipients(&transition),
            &full,
            std::slice::from_ref(&entry),
            licence_event.as_ref().map(|(t, l)| (*t, l)),
            Some(&caller),
            &ctx.trace_id,
            now,
        );
        let response = respond(full, licence_out, self.receipt(leaf.as_ref(), now));
        let outcome = self
            .store
            .apply_step(&ApplicationStepWrite {
                key: Some(key),
                id: step.id.clone(),
                expected_version: stored.version,
                columns: columns(&next, &view)?,
                steps: vec![(seq, entry.step.encode_to_vec())],
                licence: licence_write,
                at: now,
                events,
                leaf,
                response: response.encode_to_vec(),
            })
            .await?;
        finish(outcome, ctx, response)
    }

    /// The licence an application's view names.
    pub(crate) async fn licence_of_view(
        &self,
        view: &pb::LicenceApplication,
    ) -> Result<pb::Licence, CallError> {
        let number = view
            .licence
            .strip_prefix("licences/")
            .ok_or_else(|| CallError::corrupt("application", "names no licence"))?;
        let stored = self
            .store
            .get_licence(number)
            .await?
            .ok_or_else(|| CallError::corrupt("licence", format!("{number} is missing")))?;
        decode("licence", &stored.body)
    }

    /// The next free serial of the application's licence-number prefix.
    pub(crate) async fn next_serial(&self, app: &Application) -> Result<Serial, CallError> {
        let abbreviation = app.issuing_agency.province().province_abbreviation();
        let prefix = format!(
            "{abbreviation}|{}|{}",
            app.product.industry_code, app.product.product_code
        );
        let n = self.store.next_licence_serial(&prefix).await?;
        u32::try_from(n)
            .ok()
            .and_then(|n| Serial::new(n).ok())
            .ok_or_else(|| {
                CallError::Precondition(format!(
                    "the 5-digit enterprise serials of ({abbreviation})XK{}-{} are used up",
                    app.product.industry_code, app.product.product_code
                ))
            })
    }

    /// The issuing agency for a production region: the pilot agency of its province.
    pub(crate) fn issuing_agency(&self, region: &RegionCode) -> Option<AgencyId> {
        self.settings
            .rules
            .pilot_agencies
            .iter()
            .find(|a| a.province() == region.province())
            .cloned()
    }
}
