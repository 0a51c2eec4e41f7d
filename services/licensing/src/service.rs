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
use tonic::{Request, Response, Status};
use yrd_domain::audit::{AuditCall, AuditNotes, CallRecord, LeafData};
use yrd_domain::calendar::{DeadlineKind, china_date};
use yrd_domain::clock::Clock;
use yrd_domain::licensing::{
    Application, Decision, Holder, LicenceChange, LicenceNumber, LicensingCommand,
    LicensingEventKind, Route, Serial, Submission, Transition, apply, years_later,
};
use yrd_domain::referral::{Actor, Remark};
use yrd_domain::spotcheck::format_date;
use yrd_domain::uscc::Uscc;
use yrd_domain::{AgencyId, AgencyIdentity, RegionCode};
use yrd_pki::ReceiptSigner;
use yrd_proto::v1::licensing_service_server::LicensingService;
use yrd_proto::v1::{self as pb, application_step::Detail};
use yrd_proto::wire::{receipt, request_sha256, timestamp};
use yrd_store::{
    ApplicationColumns, ApplicationStepWrite, IdempotencyKey, LicenceWrite, NewApplication,
    NewFeedEvent, Store, StoredApplication, WriteOutcome,
};

use crate::config::LicensingSettings;
use crate::error::CallError;
use crate::parse::{Errors, MAX_SHORT_CHARS, MAX_TEXT_CHARS};
use crate::view::{self, refresh, state_of};

const SERVICE: &str = "/yrd.exchange.v1.LicensingService/";

/// The `LicensingService` handler (also the overdue scheduler's engine).
#[derive(Debug, Clone)]
pub struct LicensingHandler {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    receipts: Arc<ReceiptSigner>,
    pub(crate) settings: Arc<LicensingSettings>,
}

/// Who calls and how the call is audited.
struct Call {
    caller: AgencyId,
    officer: String,
    audit: Option<AuditCall>,
    trace_id: String,
    request_digest: String,
    now: OffsetDateTime,
}

/// What a step does to the licence of its application.
enum LicenceEffect {
    None,
    /// Issue it, on this date (`None`: today).
    Issue(Option<Date>),
    /// Revoke it when the step leaves the application revoked.
    RevokeIfRevoked(String),
    /// A linked change after a business-licence change.
    Change(Box<pb::LicenceChange>),
}

type Check = Box<dyn FnOnce(&Application) -> Result<(), CallError> + Send>;
type Edit = Box<dyn FnOnce(&mut pb::LicenceApplication, &Application) + Send>;

/// One step asked by a call.
struct Step {
    method: &'static str,
    request_id: String,
    id: String,
    command: LicensingCommand,
    kind: pb::ApplicationStepKind,
    note: String,
    detail: Option<Detail>,
    check: Option<Check>,
    edit: Option<Edit>,
    licence: LicenceEffect,
}

impl Step {
    fn new(
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

/// The calling agency, which the gateway's identity layer always puts in the extensions.
fn caller<T>(request: &Request<T>) -> Result<AgencyId, CallError> {
    request
        .extensions()
        .get::<AgencyIdentity>()
        .map(|i| i.agency.clone())
        .ok_or(CallError::NoIdentity)
}

/// `t` at the microsecond precision the store keeps.
fn stored_precision(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

fn decode<M: prost::Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, CallError> {
    M::decode(bytes).map_err(|e| CallError::corrupt(what, e))
}

fn machine_of(stored: &StoredApplication) -> Result<Application, CallError> {
    serde_json::from_str(&stored.machine).map_err(|e| CallError::corrupt("application data", e))
}

/// The application with its history.
fn full_view(stored: &StoredApplication) -> Result<pb::LicenceApplication, CallError> {
    let mut view: pb::LicenceApplication = decode("application", &stored.view)?;
    view.history = stored
        .steps
        .iter()
        .map(|s| decode("application step", s))
        .collect::<Result<_, _>>()?;
    Ok(view)
}

fn columns(
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
fn feed_event(
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
fn recipients(t: &Transition) -> Vec<AgencyId> {
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
fn finish<M: prost::Message + Default>(
    outcome: WriteOutcome,
    audit: Option<&AuditCall>,
    response: M,
) -> Result<M, CallError> {
    match outcome {
        WriteOutcome::Written(_) => {
            if let Some(audit) = audit {
                audit.mark_written();
            }
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

    fn call_of<T: prost::Message>(&self, request: &Request<T>) -> Result<Call, CallError> {
        let caller = caller(request)?;
        let record = request.extensions().get::<CallRecord>();
        let notes = request.extensions().get::<AuditNotes>();
        Ok(Call {
            caller,
            officer: notes.map(|n| n.snapshot().officer).unwrap_or_default(),
            audit: AuditCall::new(record, notes),
            trace_id: record.map(|r| r.trace_id.clone()).unwrap_or_default(),
            request_digest: request_sha256(request.get_ref()),
            now: stored_precision(self.clock.now()),
        })
    }

    /// Refuses an agency outside the pilot, whatever it asks.
    fn pilot(&self, agency: &AgencyId) -> Result<(), CallError> {
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

    fn receipt(&self, leaf: Option<&LeafData>, at: OffsetDateTime) -> Option<pb::Receipt> {
        leaf.map(|leaf| receipt(&self.receipts.sign(&leaf.leaf_hash(), at)))
    }

    async fn replayed<R: prost::Message + Default>(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<R>, CallError> {
        match self.store.answered_request(key).await? {
            Some(answer) => Ok(Some(decode("stored answer", &answer)?)),
            None => Ok(None),
        }
    }

    /// Application `id` when `caller` is one of its provinces.
    async fn visible(
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
    async fn run_step<R>(
        &self,
        call: Call,
        step: Step,
        respond: impl FnOnce(pb::LicenceApplication, Option<pb::Licence>, Option<pb::Receipt>) -> R,
    ) -> Result<R, CallError>
    where
        R: prost::Message + Default,
    {
        let Call {
            caller,
            officer,
            audit,
            trace_id,
            request_digest,
            now,
        } = call;
        let name = format!("applications/{}", step.id);
        let key = IdempotencyKey {
            agency: caller.clone(),
            method: format!("{SERVICE}{}", step.method),
            request_id: step.request_id.clone(),
            request_digest: request_digest.clone(),
        };
        if let Some(audit) = &audit {
            audit.note(vec![name.clone()], request_digest);
        }
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

        let leaf = audit.as_ref().map(AuditCall::success_leaf);
        let licence_out = licence_event.as_ref().map(|(_, l)| l.clone());
        let events = events(
            &recipients(&transition),
            &full,
            std::slice::from_ref(&entry),
            licence_event.as_ref().map(|(t, l)| (*t, l)),
            Some(&caller),
            &trace_id,
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
        finish(outcome, audit.as_ref(), response)
    }

    /// The licence an application's view names.
    async fn licence_of_view(
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
    async fn next_serial(&self, app: &Application) -> Result<Serial, CallError> {
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
    fn issuing_agency(&self, region: &RegionCode) -> Option<AgencyId> {
        self.settings
            .rules
            .pilot_agencies
            .iter()
            .find(|a| a.province() == region.province())
            .cloned()
    }
}

// ------------------------------------------------------------------------------------------
// Submission.
// ------------------------------------------------------------------------------------------

impl LicensingHandler {
    async fn submit(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<pb::SubmitApplicationResponse, CallError> {
        let call = self.call_of(&request)?;
        self.pilot(&call.caller)?;
        let body = request.into_inner();
        let mut e = Errors::default();
        let request_id = e.request_id(&body.request_id);
        let Some(input) = body.application else {
            e.push("application", "is required");
            return Err(CallError::Invalid(e.0));
        };
        let applicant = input.applicant.clone().unwrap_or_default();
        if input.applicant.is_none() {
            e.push("application.applicant", "is required");
        }
        let enterprise_name = e.remark(
            "application.applicant.name",
            &applicant.name,
            MAX_SHORT_CHARS,
        );
        let uscc = Uscc::parse(applicant.uscc.trim())
            .map_err(|err| e.push("application.applicant.uscc", err.to_string()))
            .ok();
        e.optional(
            "application.applicant.residence",
            &applicant.residence,
            MAX_SHORT_CHARS,
        );
        let address = e.remark(
            "application.applicant.production_address",
            &applicant.production_address,
            MAX_SHORT_CHARS,
        );
        let region = RegionCode::parse(applicant.production_region_code.trim())
            .map_err(|err| {
                e.push(
                    "application.applicant.production_region_code",
                    err.to_string(),
                )
            })
            .ok();
        let product_in = input.product.clone().unwrap_or_default();
        if input.product.is_none() {
            e.push("application.product", "is required");
        }
        let product = self
            .settings
            .catalogue
            .0
            .get(product_in.catalogue_code.trim())
            .cloned();
        if product.is_none() {
            e.push(
                "application.product.catalogue_code",
                format!(
                    "must be a product of the licensing catalogue ({})",
                    self.settings
                        .catalogue
                        .0
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if product_in.units.is_empty() {
            e.push(
                "application.product.units",
                "must list at least one product unit",
            );
        }
        for (i, unit) in product_in.units.iter().enumerate() {
            let field = format!("application.product.units[{i}]");
            if let Some(p) = &product {
                if !p.units.contains_key(unit.code.trim()) {
                    e.push(
                        format!("{field}.code"),
                        format!("is not a unit of {} ({})", p.entry.name, p.entry.code),
                    );
                }
            }
            e.required(&format!("{field}.name"), &unit.name, MAX_SHORT_CHARS);
            for (j, s) in unit.specifications.iter().enumerate() {
                e.required(&format!("{field}.specifications[{j}]"), s, MAX_SHORT_CHARS);
            }
        }
        let route = match pb::LicensingRoute::try_from(input.route) {
            Ok(pb::LicensingRoute::Ordinary) => Some(Route::Ordinary),
            Ok(pb::LicensingRoute::Commitment) => Some(Route::Commitment),
            _ => {
                e.push(
                    "application.route",
                    "must be LICENSING_ROUTE_ORDINARY or LICENSING_ROUTE_COMMITMENT",
                );
                None
            }
        };
        e.attachments("application.materials", &input.materials, true);
        let note = e.optional("application.note", &input.note, MAX_TEXT_CHARS);
        let submission = match (&product, route, enterprise_name, address) {
            (Some(p), Some(route), Some(name), Some(address)) => {
                Submission::new(p.entry.clone(), route, Holder { name, address })
                    .map_err(|err| e.push("application.route", err.to_string()))
                    .ok()
            }
            _ => None,
        };
        let (Some(submission), Some(uscc), Some(region), Some(product), true) =
            (submission, uscc, region, product, e.is_empty())
        else {
            return Err(CallError::Invalid(e.0));
        };
        let Some(issuing) = self.issuing_agency(&region) else {
            return Err(CallError::Precondition(format!(
                "the production address lies in {} ({}), which is not part of the Hu-Lu \
                 joint-processing pilot; apply to that province's own authority",
                region.province_name(),
                region.province()
            )));
        };

        let key = IdempotencyKey {
            agency: call.caller.clone(),
            method: format!("{SERVICE}SubmitApplication"),
            request_id,
            request_digest: call.request_digest.clone(),
        };
        if let Some(answer) = self.replayed(&key).await? {
            return Ok(answer);
        }
        let now = call.now;
        let rules = &self.settings.rules;
        let transition = Application::submit(submission, &call.caller, issuing, now, rules)?;
        let app = transition.new_state.clone();
        let id = uuid::Uuid::now_v7().simple().to_string();
        let name = format!("applications/{id}");
        if let Some(audit) = &call.audit {
            audit.note(vec![name.clone()], call.request_digest.clone());
        }
        let mut view = pb::LicenceApplication {
            name: name.clone(),
            id: id.clone(),
            applicant: Some(pb::Enterprise {
                name: applicant.name.trim().to_owned(),
                uscc: uscc.as_str().to_owned(),
                residence: applicant.residence.trim().to_owned(),
                production_address: applicant.production_address.trim().to_owned(),
                production_region_code: region.as_str().to_owned(),
            }),
            accepting_agency: format!("agencies/{}", app.accepting_agency),
            issuing_agency: format!("agencies/{}", app.issuing_agency),
            product: Some(pb::LicensedProduct {
                catalogue_code: product.entry.code.to_string(),
                name: product.entry.name.to_string(),
                units: product_in.units.clone(),
            }),
            route: input.route,
            materials: input.materials.clone(),
            note: note.clone(),
            create_time: Some(timestamp(now)),
            ..Default::default()
        };
        refresh(&mut view, &app, rules, china_date(now), now);
        let entry = Entry {
            event: pb::EventType::ApplicationSubmitted,
            step: pb::ApplicationStep {
                seq: 1,
                kind: pb::ApplicationStepKind::Submitted as i32,
                time: Some(timestamp(now)),
                agency: format!("agencies/{}", call.caller),
                officer: call.officer.clone(),
                note,
                state_after: view.state,
                detail: None,
            },
        };
        let mut full = view.clone();
        full.history.push(entry.step.clone());
        let leaf = call.audit.as_ref().map(AuditCall::success_leaf);
        let events = events(
            &recipients(&transition),
            &full,
            std::slice::from_ref(&entry),
            None,
            Some(&call.caller),
            &call.trace_id,
            now,
        );
        let response = pb::SubmitApplicationResponse {
            application: Some(full),
            receipt: self.receipt(leaf.as_ref(), now),
        };
        let outcome = self
            .store
            .submit_application(&NewApplication {
                key,
                id,
                accepting_agency: app.accepting_agency.clone(),
                issuing_agency: app.issuing_agency.clone(),
                applicant_uscc: uscc.as_str().to_owned(),
                catalogue_code: product.entry.code.to_string(),
                columns: columns(&app, &view)?,
                step: entry.step.encode_to_vec(),
                at: now,
                events,
                leaf,
                response: response.encode_to_vec(),
            })
            .await?;
        finish(outcome, call.audit.as_ref(), response)
    }
}

// ------------------------------------------------------------------------------------------
// The steps.
// ------------------------------------------------------------------------------------------

/// The answer shape shared by most steps.
macro_rules! app_response {
    ($ty:ident) => {
        |application, _licence, receipt| pb::$ty {
            application: Some(application),
            receipt,
        }
    };
}

impl LicensingHandler {
    /// Common head of a step call: identity, pilot, request id, application name.
    fn head<T: prost::Message>(
        &self,
        request: &Request<T>,
        request_id: &str,
        name: &str,
    ) -> Result<(Call, Errors, String, Option<String>), CallError> {
        let call = self.call_of(request)?;
        self.pilot(&call.caller)?;
        let mut e = Errors::default();
        let request_id = e.request_id(request_id);
        let id = e.application_id("name", name);
        Ok((call, e, request_id, id))
    }

    async fn accept(
        &self,
        request: Request<pb::AcceptApplicationRequest>,
    ) -> Result<pb::AcceptApplicationResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let number = e.optional("acceptance_number", &r.acceptance_number, MAX_SHORT_CHARS);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), true) = (id, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let note = if number.is_empty() {
            note
        } else if note.is_empty() {
            format!("受理通知书 {number}")
        } else {
            format!("受理通知书 {number}; {note}")
        };
        let mut step = Step::new(
            "AcceptApplication",
            request_id,
            id,
            LicensingCommand::Accept,
            pb::ApplicationStepKind::Accepted,
            note,
        );
        step.edit = Some(Box::new(|v, _| v.missing_items.clear()));
        self.run_step(call, step, app_response!(AcceptApplicationResponse))
            .await
    }

    async fn request_supplement(
        &self,
        request: Request<pb::RequestSupplementRequest>,
    ) -> Result<pb::RequestSupplementResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let items = r
            .supplement_request
            .clone()
            .unwrap_or_default()
            .missing_items;
        let missing = e.items("supplement_request.missing_items", &items);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(missing), true) = (id, missing, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let listed: Vec<String> = missing.items().iter().map(ToString::to_string).collect();
        let mut step = Step::new(
            "RequestSupplement",
            request_id,
            id,
            LicensingCommand::RequestSupplement { missing },
            pb::ApplicationStepKind::SupplementRequested,
            note,
        );
        step.detail = Some(Detail::SupplementRequest(pb::SupplementRequest {
            missing_items: listed.clone(),
        }));
        step.edit = Some(Box::new(move |v, _| v.missing_items = listed));
        self.run_step(call, step, app_response!(RequestSupplementResponse))
            .await
    }

    async fn supplement(
        &self,
        request: Request<pb::SupplementApplicationRequest>,
    ) -> Result<pb::SupplementApplicationResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let supplement = r.supplement.clone().unwrap_or_default();
        if r.supplement.is_none() {
            e.push("supplement", "is required");
        }
        e.attachments("supplement.materials", &supplement.materials, true);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), true) = (id, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let materials = supplement.materials.clone();
        let mut step = Step::new(
            "SupplementApplication",
            request_id,
            id,
            LicensingCommand::RecordSupplement,
            pb::ApplicationStepKind::Supplemented,
            note,
        );
        step.detail = Some(Detail::Supplement(supplement));
        step.edit = Some(Box::new(move |v, _| {
            v.missing_items.clear();
            v.materials.extend(materials);
        }));
        self.run_step(call, step, app_response!(SupplementApplicationResponse))
            .await
    }

    async fn reject(
        &self,
        request: Request<pb::RejectApplicationRequest>,
    ) -> Result<pb::RejectApplicationResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let rejection = r.rejection.clone().unwrap_or_default();
        let reason = e.remark("rejection.reason", &rejection.reason, MAX_TEXT_CHARS);
        let (Some(id), Some(reason), true) = (id, reason, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let mut step = Step::new(
            "RejectApplication",
            request_id,
            id,
            LicensingCommand::NotAccept { reason },
            pb::ApplicationStepKind::Rejected,
            String::new(),
        );
        step.detail = Some(Detail::Rejection(pb::Rejection {
            reason: rejection.reason.trim().to_owned(),
        }));
        self.run_step(call, step, app_response!(RejectApplicationResponse))
            .await
    }

    async fn start_review(
        &self,
        request: Request<pb::StartReviewRequest>,
    ) -> Result<pb::StartReviewResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), true) = (id, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let step = Step::new(
            "StartReview",
            request_id,
            id,
            LicensingCommand::StartReview,
            pb::ApplicationStepKind::ReviewStarted,
            note,
        );
        self.run_step(call, step, app_response!(StartReviewResponse))
            .await
    }

    async fn delegate(
        &self,
        request: Request<pb::DelegateVerificationRequest>,
    ) -> Result<pb::DelegateVerificationResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let delegation = r.delegation.clone().unwrap_or_default();
        if r.delegation.is_none() {
            e.push("delegation", "is required");
        }
        let delegate = yrd_proto::wire::resource_id(
            delegation.delegate_agency.trim(),
            "agencies",
            "delegation.delegate_agency",
        )
        .map_err(|v| e.0.push(v))
        .ok()
        .and_then(|a| {
            AgencyId::parse(a)
                .map_err(|err| e.push("delegation.delegate_agency", err.to_string()))
                .ok()
        });
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(delegate), true) = (id, delegate, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let mut step = Step::new(
            "DelegateVerification",
            request_id,
            id,
            LicensingCommand::DelegateVerification,
            pb::ApplicationStepKind::VerificationDelegated,
            note,
        );
        let expected = delegate.clone();
        step.check = Some(Box::new(move |app| {
            if app.accepting_agency == expected {
                Ok(())
            } else {
                Err(CallError::Invalid(vec![
                    yrd_proto::wire::FieldViolation::new(
                        "delegation.delegate_agency",
                        format!(
                            "must be the application's other province, agencies/{}",
                            app.accepting_agency
                        ),
                    ),
                ]))
            }
        }));
        step.detail = Some(Detail::Delegation(pb::VerificationDelegation {
            delegate_agency: format!("agencies/{delegate}"),
            due_date: String::new(),
        }));
        step.edit = Some(Box::new(move |v, _| {
            v.verifying_agency = format!("agencies/{delegate}");
        }));
        self.run_step(call, step, |mut application, _, receipt| {
            // The delegation's report is due with the verification limit.
            let due = application
                .deadlines
                .iter()
                .find(|d| d.kind() == pb::ApplicationDeadlineKind::Verification)
                .map(|d| d.due_date.clone())
                .unwrap_or_default();
            if let Some(Detail::Delegation(d)) = application
                .history
                .last_mut()
                .and_then(|s| s.detail.as_mut())
            {
                d.due_date = due;
            }
            pb::DelegateVerificationResponse {
                application: Some(application),
                receipt,
            }
        })
        .await
    }

    async fn report(
        &self,
        request: Request<pb::SubmitVerificationReportRequest>,
    ) -> Result<pb::SubmitVerificationReportResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let today = china_date(call.now);
        let mut report = r.report.clone().unwrap_or_default();
        if r.report.is_none() {
            e.push("report", "is required");
        }
        let verifiers = e.verifiers("report.verifiers", &report.verifiers);
        let visited = e.past_date("report.verification_date", &report.verification_date, today);
        let passed = e.outcome("report.outcome", report.outcome);
        e.findings("report.findings", &report.findings, passed);
        let reported = e.past_date("report.report_date", &report.report_date, today);
        if let (Some(v), Some(d)) = (visited, reported) {
            if d < v {
                e.push(
                    "report.report_date",
                    "must not be before report.verification_date",
                );
            }
        }
        e.attachments("report.attachments", &report.attachments, false);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(verifiers), Some(passed), true) = (id, verifiers, passed, e.is_empty())
        else {
            return Err(CallError::Invalid(e.0));
        };
        report.verifying_agency = format!("agencies/{}", call.caller);
        let mut step = Step::new(
            "SubmitVerificationReport",
            request_id,
            id,
            LicensingCommand::ReportVerification { verifiers, passed },
            pb::ApplicationStepKind::VerificationReported,
            note,
        );
        step.detail = Some(Detail::VerificationReport(report.clone()));
        let verifying = report.verifying_agency.clone();
        step.edit = Some(Box::new(move |v, _| {
            v.verification_report = Some(report);
            v.verifying_agency = verifying;
        }));
        self.run_step(call, step, app_response!(SubmitVerificationReportResponse))
            .await
    }

    async fn record_testing(
        &self,
        request: Request<pb::RecordTestingRequest>,
    ) -> Result<pb::RecordTestingResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let today = china_date(call.now);
        let testing = r.testing.clone().unwrap_or_default();
        if r.testing.is_none() {
            e.push("testing", "is required");
        }
        let sealed = e.past_date(
            "testing.sample_sealed_date",
            &testing.sample_sealed_date,
            today,
        );
        e.required(
            "testing.testing_body",
            &testing.testing_body,
            MAX_SHORT_CHARS,
        );
        let command = match pb::Verdict::try_from(testing.outcome) {
            Ok(pb::Verdict::Unspecified) => Some(LicensingCommand::StartTesting),
            Ok(v @ (pb::Verdict::Conforming | pb::Verdict::NonConforming)) => {
                e.required(
                    "testing.report_number",
                    &testing.report_number,
                    MAX_SHORT_CHARS,
                );
                if let Some(d) = e.past_date("testing.report_date", &testing.report_date, today) {
                    if sealed.is_some_and(|s| d < s) {
                        e.push("testing.report_date", "must not be before the sealing date");
                    }
                }
                Some(LicensingCommand::RecordTestResult {
                    conforming: v == pb::Verdict::Conforming,
                })
            }
            _ => {
                e.push(
                    "testing.outcome",
                    "must be unset (testing opens) or VERDICT_CONFORMING / VERDICT_NON_CONFORMING",
                );
                None
            }
        };
        e.attachments("testing.attachments", &testing.attachments, false);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(command), true) = (id, command, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let completes = testing.outcome != pb::Verdict::Unspecified as i32;
        let mut step = Step::new(
            "RecordTesting",
            request_id,
            id,
            command,
            pb::ApplicationStepKind::TestingRecorded,
            note,
        );
        step.detail = Some(Detail::Testing(testing.clone()));
        step.edit = Some(Box::new(move |v, _| {
            // A result completes the open record of the same sealing date.
            let open = v.testing.iter_mut().rev().find(|t| {
                t.outcome == pb::Verdict::Unspecified as i32
                    && t.sample_sealed_date == testing.sample_sealed_date
            });
            match (completes, open) {
                (true, Some(open)) => *open = testing,
                _ => v.testing.push(testing),
            }
        }));
        self.run_step(call, step, app_response!(RecordTestingResponse))
            .await
    }

    async fn decide(
        &self,
        request: Request<pb::DecideApplicationRequest>,
    ) -> Result<pb::DecideApplicationResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let today = china_date(call.now);
        let decision = r.decision.clone().unwrap_or_default();
        if r.decision.is_none() {
            e.push("decision", "is required");
        }
        e.optional(
            "decision.decision_number",
            &decision.decision_number,
            MAX_SHORT_CHARS,
        );
        let outcome = pb::DecisionOutcome::try_from(decision.outcome)
            .unwrap_or(pb::DecisionOutcome::Unspecified);
        let empty = |e: &mut Errors, field: &str, is_empty: bool, outcome: &str| {
            if !is_empty {
                e.push(field, format!("must be empty for {outcome}"));
            }
        };
        let parsed = match outcome {
            pb::DecisionOutcome::Approved => {
                empty(
                    &mut e,
                    "decision.conditions",
                    decision.conditions.is_empty(),
                    "APPROVED",
                );
                empty(
                    &mut e,
                    "decision.condition_deadline",
                    decision.condition_deadline.is_empty(),
                    "APPROVED",
                );
                empty(
                    &mut e,
                    "decision.refusal_reason",
                    decision.refusal_reason.is_empty(),
                    "APPROVED",
                );
                Some(Decision::Approve)
            }
            pb::DecisionOutcome::ApprovedWithConditions => {
                let conditions = e.items("decision.conditions", &decision.conditions);
                let due = e.date("decision.condition_deadline", &decision.condition_deadline);
                if due.is_some_and(|d| d <= today) {
                    e.push(
                        "decision.condition_deadline",
                        format!("must lie after today ({today})"),
                    );
                }
                empty(
                    &mut e,
                    "decision.refusal_reason",
                    decision.refusal_reason.is_empty(),
                    "APPROVED_WITH_CONDITIONS",
                );
                conditions
                    .zip(due)
                    .map(|(conditions, due)| Decision::ApproveWithConditions { conditions, due })
            }
            pb::DecisionOutcome::Refused => {
                empty(
                    &mut e,
                    "decision.conditions",
                    decision.conditions.is_empty(),
                    "REFUSED",
                );
                empty(
                    &mut e,
                    "decision.condition_deadline",
                    decision.condition_deadline.is_empty(),
                    "REFUSED",
                );
                e.remark(
                    "decision.refusal_reason",
                    &decision.refusal_reason,
                    MAX_TEXT_CHARS,
                )
                .map(|reason| Decision::Refuse { reason })
            }
            pb::DecisionOutcome::Unspecified => {
                e.push(
                    "decision.outcome",
                    "must be APPROVED, APPROVED_WITH_CONDITIONS or REFUSED",
                );
                None
            }
        };
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(parsed), true) = (id, parsed, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let mut step = Step::new(
            "DecideApplication",
            request_id,
            id,
            LicensingCommand::Decide(parsed),
            pb::ApplicationStepKind::Decided,
            note,
        );
        step.detail = Some(Detail::Decision(decision.clone()));
        step.edit = Some(Box::new(move |v, _| v.decision = Some(decision)));
        self.run_step(call, step, app_response!(DecideApplicationResponse))
            .await
    }

    async fn extend(
        &self,
        request: Request<pb::ExtendTimeLimitRequest>,
    ) -> Result<pb::ExtendTimeLimitResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let mut extension = r.extension.clone().unwrap_or_default();
        if r.extension.is_none() {
            e.push("extension", "is required");
        }
        e.required(
            "extension.approval_reference",
            &extension.approval_reference,
            MAX_SHORT_CHARS,
        );
        e.required("extension.reason", &extension.reason, MAX_TEXT_CHARS);
        let (Some(id), true) = (id, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        extension.extension_days = self.settings.rules.extension_working_days;
        let mut step = Step::new(
            "ExtendTimeLimit",
            request_id,
            id,
            LicensingCommand::ExtendDecisionLimit,
            pb::ApplicationStepKind::TimeLimitExtended,
            String::new(),
        );
        step.detail = Some(Detail::Extension(extension));
        self.run_step(call, step, app_response!(ExtendTimeLimitResponse))
            .await
    }

    async fn issue(
        &self,
        request: Request<pb::IssueLicenceRequest>,
    ) -> Result<pb::IssueLicenceResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let today = china_date(call.now);
        let on = if r.issue_date.trim().is_empty() {
            None
        } else {
            e.past_date("issue_date", &r.issue_date, today)
        };
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), true) = (id, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let mut step = Step::new(
            "IssueLicence",
            request_id,
            id,
            LicensingCommand::IssueLicence {
                serial: Serial::new(1).map_err(|e| CallError::corrupt("serial", e))?,
            },
            pb::ApplicationStepKind::LicenceIssued,
            note,
        );
        step.check = Some(Box::new(move |app| match (on, app.accepted_on) {
            (Some(on), Some(accepted)) if on < accepted => Err(CallError::Invalid(vec![
                yrd_proto::wire::FieldViolation::new(
                    "issue_date",
                    format!("must not be before the acceptance ({accepted})"),
                ),
            ])),
            _ => Ok(()),
        }));
        step.licence = LicenceEffect::Issue(on);
        self.run_step(call, step, |application, licence, receipt| {
            pb::IssueLicenceResponse {
                application: Some(application),
                licence,
                receipt,
            }
        })
        .await
    }

    async fn post_issue_check(
        &self,
        request: Request<pb::RecordPostIssueCheckRequest>,
    ) -> Result<pb::RecordPostIssueCheckResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(&request, &r.request_id, &r.name)?;
        let today = china_date(call.now);
        let check = r.check.clone().unwrap_or_default();
        if r.check.is_none() {
            e.push("check", "is required");
        }
        let passed = e.outcome("check.outcome", check.outcome);
        e.past_date("check.check_date", &check.check_date, today);
        e.verifiers("check.verifiers", &check.verifiers);
        e.findings("check.findings", &check.findings, passed);
        e.attachments("check.attachments", &check.attachments, false);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(passed), true) = (id, passed, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let reason = if check.findings.is_empty() {
            "the after-issue check (证后核查) failed".to_owned()
        } else {
            format!(
                "the after-issue check (证后核查) of {} failed: {}",
                check.check_date.trim(),
                check
                    .findings
                    .iter()
                    .map(|f| f.trim())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        let mut step = Step::new(
            "RecordPostIssueCheck",
            request_id,
            id,
            LicensingCommand::RecordPostIssueCheck { passed },
            pb::ApplicationStepKind::PostIssueCheckRecorded,
            note,
        );
        step.detail = Some(Detail::PostIssueCheck(check));
        step.licence = LicenceEffect::RevokeIfRevoked(reason);
        self.run_step(call, step, |application, licence, receipt| {
            pb::RecordPostIssueCheckResponse {
                application: Some(application),
                licence,
                receipt,
            }
        })
        .await
    }

    async fn change_licence(
        &self,
        request: Request<pb::ChangeLicenceRequest>,
    ) -> Result<pb::ChangeLicenceResponse, CallError> {
        let call = self.call_of(&request)?;
        self.pilot(&call.caller)?;
        let r = request.into_inner();
        let mut e = Errors::default();
        let request_id = e.request_id(&r.request_id);
        let number = licence_number(&mut e, "name", &r.name);
        let today = china_date(call.now);
        let text = |e: &mut Errors, field: &'static str, v: &Option<String>| -> Option<Remark> {
            v.as_ref().and_then(|v| e.remark(field, v, MAX_SHORT_CHARS))
        };
        let name = text(&mut e, "holder_name", &r.holder_name);
        let residence = text(&mut e, "residence", &r.residence);
        let address = text(&mut e, "production_address", &r.production_address);
        if r.holder_name.is_none() && r.residence.is_none() && r.production_address.is_none() {
            e.push(
                "holder_name",
                "one of holder_name, residence and production_address must be set",
            );
        }
        e.past_date(
            "business_licence_change_date",
            &r.business_licence_change_date,
            today,
        );
        e.required("reason", &r.reason, MAX_TEXT_CHARS);
        e.attachments("attachments", &r.attachments, false);
        let change = LicenceChange::of(name, residence, address);
        let (Some(number), Ok(change), true) = (number, change, e.is_empty()) else {
            return Err(CallError::Invalid(e.0));
        };
        let licence = self
            .store
            .get_licence(&number.to_string())
            .await?
            .ok_or_else(|| CallError::NotFound(format!("licences/{number}")))?;
        let wire = pb::LicenceChange {
            new_holder_name: change.name().map(ToString::to_string).unwrap_or_default(),
            new_residence: change
                .residence()
                .map(ToString::to_string)
                .unwrap_or_default(),
            new_production_address: change
                .address()
                .map(ToString::to_string)
                .unwrap_or_default(),
            business_licence_change_date: r.business_licence_change_date.trim().to_owned(),
            reason: r.reason.trim().to_owned(),
            ..Default::default()
        };
        let mut step = Step::new(
            "ChangeLicence",
            request_id,
            licence.application_id.clone(),
            LicensingCommand::ChangeLicence(change),
            pb::ApplicationStepKind::LicenceChanged,
            String::new(),
        );
        step.licence = LicenceEffect::Change(Box::new(wire));
        self.run_step(call, step, |_, licence, receipt| {
            pb::ChangeLicenceResponse { licence, receipt }
        })
        .await
    }
}

/// A licence number from `licences/{number}`.
pub(crate) fn licence_number(e: &mut Errors, field: &str, name: &str) -> Option<LicenceNumber> {
    let number = name.trim().strip_prefix("licences/");
    match number.map(LicenceNumber::parse) {
        Some(Ok(n)) => Some(n),
        Some(Err(err)) => {
            e.push(field, err.to_string());
            None
        }
        None => {
            e.push(
                field,
                format!("must be a resource name of the form licences/{{number}}, got {name:?}"),
            );
            None
        }
    }
}

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

/// The exchange-log leaf of a step the scheduler took: no agency, certificate or token; its
/// own trace id, so the step can be found in the log like any call's.
fn scheduler_leaf(resource: &str, now: OffsetDateTime) -> LeafData {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = uuid::Uuid::new_v4().simple().to_string();
    LeafData {
        v: yrd_domain::audit::LEAF_VERSION,
        time_us: i64::try_from(now.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX),
        trace_id: trace,
        span_id: span.get(..16).unwrap_or_default().to_owned(),
        agency: String::new(),
        cert_fingerprint: String::new(),
        profile: String::new(),
        officer: String::new(),
        token_id: String::new(),
        method: SCHEDULER_METHOD.to_owned(),
        resources: vec![resource.to_owned()],
        code: 0,
        message: String::new(),
        request_sha256: String::new(),
        duration_us: 0,
    }
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

// ------------------------------------------------------------------------------------------
// Reads.
// ------------------------------------------------------------------------------------------

impl LicensingHandler {
    async fn get(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<pb::GetApplicationResponse, CallError> {
        let caller = caller(&request)?;
        self.pilot(&caller)?;
        let mut e = Errors::default();
        let id = e.application_id("name", &request.get_ref().name);
        let Some(id) = id else {
            return Err(CallError::Invalid(e.0));
        };
        let (stored, _) = self.visible(&id, &caller).await?;
        let mut view = full_view(&stored)?;
        self.as_of_now(&mut view, &stored)?;
        Ok(pb::GetApplicationResponse {
            application: Some(view),
        })
    }

    /// Re-derives the time-limit flags for today (a limit may have passed since the last write).
    fn as_of_now(
        &self,
        view: &mut pb::LicenceApplication,
        stored: &StoredApplication,
    ) -> Result<(), CallError> {
        let app = machine_of(stored)?;
        let today = china_date(self.clock.now());
        view.deadlines = view::deadlines(&app, &self.settings.rules, today);
        view.overdue = view::is_overdue(&app, today);
        Ok(())
    }

    async fn list(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<pb::ListApplicationsResponse, CallError> {
        let caller = caller(&request)?;
        self.pilot(&caller)?;
        let (filter, limit, after) = crate::page::application_filter(caller, request.get_ref())?;
        let mut rows = self
            .store
            .list_applications(&filter, after.as_ref(), limit + 1)
            .await?;
        let next_page_token = crate::page::next_token(&mut rows, limit, |r| r.cursor());
        let mut applications = Vec::with_capacity(rows.len());
        for stored in &rows {
            let mut view = full_view(stored)?;
            self.as_of_now(&mut view, stored)?;
            applications.push(view);
        }
        Ok(pb::ListApplicationsResponse {
            applications,
            next_page_token,
        })
    }

    async fn get_licence_call(
        &self,
        request: Request<pb::GetLicenceRequest>,
    ) -> Result<pb::GetLicenceResponse, CallError> {
        let caller = caller(&request)?;
        self.pilot(&caller)?;
        let mut e = Errors::default();
        let Some(number) = licence_number(&mut e, "name", &request.get_ref().name) else {
            return Err(CallError::Invalid(e.0));
        };
        let name = format!("licences/{number}");
        let stored = self
            .store
            .get_licence(&number.to_string())
            .await?
            .ok_or_else(|| CallError::NotFound(name.clone()))?;
        if stored.accepting_agency != caller && stored.issuing_agency != caller {
            return Err(CallError::Denied(format!(
                "{name} was issued through the exchange by {} for an application at {}; {caller} \
                 may not see it",
                stored.issuing_agency, stored.accepting_agency
            )));
        }
        let licence: pb::Licence = decode("licence", &stored.body)?;
        Ok(pb::GetLicenceResponse {
            licence: Some(view::licence_as_of(licence, china_date(self.clock.now()))),
        })
    }

    async fn list_licences_call(
        &self,
        request: Request<pb::ListLicencesRequest>,
    ) -> Result<pb::ListLicencesResponse, CallError> {
        let caller = caller(&request)?;
        self.pilot(&caller)?;
        let (filter, limit, after) = crate::page::licence_filter(caller, request.get_ref())?;
        let mut rows = self
            .store
            .list_licences(&filter, after.as_ref(), limit + 1)
            .await?;
        let next_page_token = crate::page::next_token(&mut rows, limit, |r| r.cursor());
        let today = china_date(self.clock.now());
        let licences = rows
            .iter()
            .map(|r| decode("licence", &r.body).map(|l| view::licence_as_of(l, today)))
            .collect::<Result<_, _>>()?;
        Ok(pb::ListLicencesResponse {
            licences,
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl LicensingService for LicensingHandler {
    #[tracing::instrument(skip_all)]
    async fn submit_application(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::SubmitApplicationResponse>, Status> {
        Ok(Response::new(self.submit(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::GetApplicationResponse>, Status> {
        Ok(Response::new(self.get(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        Ok(Response::new(self.list(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn accept_application(
        &self,
        request: Request<pb::AcceptApplicationRequest>,
    ) -> Result<Response<pb::AcceptApplicationResponse>, Status> {
        Ok(Response::new(self.accept(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn request_supplement(
        &self,
        request: Request<pb::RequestSupplementRequest>,
    ) -> Result<Response<pb::RequestSupplementResponse>, Status> {
        Ok(Response::new(
            LicensingHandler::request_supplement(self, request).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn supplement_application(
        &self,
        request: Request<pb::SupplementApplicationRequest>,
    ) -> Result<Response<pb::SupplementApplicationResponse>, Status> {
        Ok(Response::new(self.supplement(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn reject_application(
        &self,
        request: Request<pb::RejectApplicationRequest>,
    ) -> Result<Response<pb::RejectApplicationResponse>, Status> {
        Ok(Response::new(self.reject(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn start_review(
        &self,
        request: Request<pb::StartReviewRequest>,
    ) -> Result<Response<pb::StartReviewResponse>, Status> {
        Ok(Response::new(
            LicensingHandler::start_review(self, request).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn delegate_verification(
        &self,
        request: Request<pb::DelegateVerificationRequest>,
    ) -> Result<Response<pb::DelegateVerificationResponse>, Status> {
        Ok(Response::new(self.delegate(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn submit_verification_report(
        &self,
        request: Request<pb::SubmitVerificationReportRequest>,
    ) -> Result<Response<pb::SubmitVerificationReportResponse>, Status> {
        Ok(Response::new(self.report(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn record_testing(
        &self,
        request: Request<pb::RecordTestingRequest>,
    ) -> Result<Response<pb::RecordTestingResponse>, Status> {
        Ok(Response::new(
            LicensingHandler::record_testing(self, request).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn decide_application(
        &self,
        request: Request<pb::DecideApplicationRequest>,
    ) -> Result<Response<pb::DecideApplicationResponse>, Status> {
        Ok(Response::new(self.decide(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn extend_time_limit(
        &self,
        request: Request<pb::ExtendTimeLimitRequest>,
    ) -> Result<Response<pb::ExtendTimeLimitResponse>, Status> {
        Ok(Response::new(self.extend(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_licence(
        &self,
        request: Request<pb::IssueLicenceRequest>,
    ) -> Result<Response<pb::IssueLicenceResponse>, Status> {
        Ok(Response::new(self.issue(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn record_post_issue_check(
        &self,
        request: Request<pb::RecordPostIssueCheckRequest>,
    ) -> Result<Response<pb::RecordPostIssueCheckResponse>, Status> {
        Ok(Response::new(self.post_issue_check(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn change_licence(
        &self,
        request: Request<pb::ChangeLicenceRequest>,
    ) -> Result<Response<pb::ChangeLicenceResponse>, Status> {
        Ok(Response::new(
            LicensingHandler::change_licence(self, request).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn get_licence(
        &self,
        request: Request<pb::GetLicenceRequest>,
    ) -> Result<Response<pb::GetLicenceResponse>, Status> {
        Ok(Response::new(self.get_licence_call(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_licences(
        &self,
        request: Request<pb::ListLicencesRequest>,
    ) -> Result<Response<pb::ListLicencesResponse>, Status> {
        Ok(Response::new(self.list_licences_call(request).await?))
    }
}
