//! The steps from the decision on: decision, extension, issue, the after-issue check and the
//! linked licence change.

use tonic::Request;
use yrd_domain::calendar::china_date;
use yrd_domain::licensing::{Decision, LicenceChange, LicenceNumber, LicensingCommand, Serial};
use yrd_domain::referral::Remark;
use yrd_proto::v1::{self as pb, application_step::Detail};

use crate::error::CallError;
use crate::parse::{FieldParse, MAX_SHORT_CHARS, MAX_TEXT_CHARS};
use yrd_call::FieldErrors;

use crate::service::*;

impl LicensingHandler {
    pub(crate) async fn decide(
        &self,
        call: &mut Call,
        request: Request<pb::DecideApplicationRequest>,
    ) -> Result<pb::DecideApplicationResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let today = china_date(call.now);
        let decision = e.message("decision", &r.decision);
        e.optional(
            "decision.decision_number",
            &decision.decision_number,
            MAX_SHORT_CHARS,
        );
        let outcome = pb::DecisionOutcome::try_from(decision.outcome)
            .unwrap_or(pb::DecisionOutcome::Unspecified);
        let empty = |e: &mut FieldErrors, field: &str, is_empty: bool, outcome: &str| {
            if !is_empty {
                e.add(field, format!("must be empty for {outcome}"));
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
                    e.add(
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
                e.add(
                    "decision.outcome",
                    "must be APPROVED, APPROVED_WITH_CONDITIONS or REFUSED",
                );
                None
            }
        };
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(parsed), true) = (id, parsed, e.is_empty()) else {
            return Err(CallError::Invalid(e));
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

    pub(crate) async fn extend(
        &self,
        call: &mut Call,
        request: Request<pb::ExtendTimeLimitRequest>,
    ) -> Result<pb::ExtendTimeLimitResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let mut extension = e.message("extension", &r.extension);
        e.required(
            "extension.approval_reference",
            &extension.approval_reference,
            MAX_SHORT_CHARS,
        );
        e.required("extension.reason", &extension.reason, MAX_TEXT_CHARS);
        let (Some(id), true) = (id, e.is_empty()) else {
            return Err(CallError::Invalid(e));
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

    pub(crate) async fn conditions_met(
        &self,
        call: &mut Call,
        request: Request<pb::ConfirmConditionsRequest>,
    ) -> Result<pb::ConfirmConditionsResponse, CallError> {
        self.note_step(
            call,
            request,
            |r| (&r.request_id, &r.name, &r.note),
            (
                "ConfirmConditions",
                LicensingCommand::ConfirmConditionsMet,
                pb::ApplicationStepKind::ConditionsMet,
            ),
            app_response!(ConfirmConditionsResponse),
        )
        .await
    }

    pub(crate) async fn issue(
        &self,
        call: &mut Call,
        request: Request<pb::IssueLicenceRequest>,
    ) -> Result<pb::IssueLicenceResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let today = china_date(call.now);
        let on = if r.issue_date.trim().is_empty() {
            None
        } else {
            e.past_date("issue_date", &r.issue_date, today)
        };
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), true) = (id, e.is_empty()) else {
            return Err(CallError::Invalid(e));
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
            (Some(on), Some(accepted)) if on < accepted => Err(CallError::Invalid(
                yrd_call::FieldErrors::from(yrd_call::violation(
                    "issue_date",
                    format!("must not be before the acceptance ({accepted})"),
                )),
            )),
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

    pub(crate) async fn post_issue_check(
        &self,
        call: &mut Call,
        request: Request<pb::RecordPostIssueCheckRequest>,
    ) -> Result<pb::RecordPostIssueCheckResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let today = china_date(call.now);
        let check = e.message("check", &r.check);
        let passed = e.outcome("check.outcome", check.outcome);
        e.past_date("check.check_date", &check.check_date, today);
        e.verifiers("check.verifiers", &check.verifiers);
        e.findings("check.findings", &check.findings, passed);
        e.attachments("check.attachments", &check.attachments, false);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(passed), true) = (id, passed, e.is_empty()) else {
            return Err(CallError::Invalid(e));
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

    pub(crate) async fn change_licence(
        &self,
        call: &mut Call,
        request: Request<pb::ChangeLicenceRequest>,
    ) -> Result<pb::ChangeLicenceResponse, CallError> {
        let call = self.call_of(call);
        self.pilot(&call.caller)?;
        let r = request.into_inner();
        let mut e = FieldErrors::new();
        let request_id = e.request_id(&r.request_id);
        let number = licence_number(&mut e, "name", &r.name);
        let today = china_date(call.now);
        let text =
            |e: &mut FieldErrors, field: &'static str, v: &Option<String>| -> Option<Remark> {
                v.as_ref().and_then(|v| e.remark(field, v, MAX_SHORT_CHARS))
            };
        let name = text(&mut e, "holder_name", &r.holder_name);
        let residence = text(&mut e, "residence", &r.residence);
        let address = text(&mut e, "production_address", &r.production_address);
        if r.holder_name.is_none() && r.residence.is_none() && r.production_address.is_none() {
            e.add(
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
            return Err(CallError::Invalid(e));
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
pub(crate) fn licence_number(
    e: &mut FieldErrors,
    field: &str,
    name: &str,
) -> Option<LicenceNumber> {
    let number = name.trim().strip_prefix("licences/");
    match number.map(LicenceNumber::parse) {
        Some(Ok(n)) => Some(n),
        Some(Err(err)) => {
            e.add(field, err.to_string());
            None
        }
        None => {
            e.add(
                field,
                format!("must be a resource name of the form licences/{{number}}, got {name:?}"),
            );
            None
        }
    }
}
