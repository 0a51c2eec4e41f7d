//! The steps up to the on-site verification and testing: acceptance, supplement, rejection,
//! review, delegation, the verification report, product testing.

use tonic::Request;
use yrd_domain::AgencyId;
use yrd_domain::calendar::china_date;
use yrd_domain::licensing::LicensingCommand;
use yrd_proto::v1::{self as pb, application_step::Detail};

use crate::error::CallError;
use crate::parse::{FieldParse, MAX_SHORT_CHARS, MAX_TEXT_CHARS};
use yrd_call::FieldErrors;

use crate::service::*;

impl LicensingHandler {
    /// Common head of a step call: identity, pilot, request id, application name.
    pub(crate) fn head<'a>(
        &self,
        call: &'a mut Call,
        request_id: &str,
        name: &str,
    ) -> Result<(StepCall<'a>, FieldErrors, String, Option<String>), CallError> {
        let call = self.call_of(call);
        self.pilot(&call.caller)?;
        let mut e = FieldErrors::new();
        let request_id = e.request_id(request_id);
        let id = e.application_id("name", name);
        Ok((call, e, request_id, id))
    }

    pub(crate) async fn accept(
        &self,
        call: &mut Call,
        request: Request<pb::AcceptApplicationRequest>,
    ) -> Result<pb::AcceptApplicationResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let number = e.optional("acceptance_number", &r.acceptance_number, MAX_SHORT_CHARS);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), true) = (id, e.is_empty()) else {
            return Err(CallError::Invalid(e));
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

    pub(crate) async fn request_supplement(
        &self,
        call: &mut Call,
        request: Request<pb::RequestSupplementRequest>,
    ) -> Result<pb::RequestSupplementResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let items = r
            .supplement_request
            .clone()
            .unwrap_or_default()
            .missing_items;
        let missing = e.items("supplement_request.missing_items", &items);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(missing), true) = (id, missing, e.is_empty()) else {
            return Err(CallError::Invalid(e));
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

    pub(crate) async fn supplement(
        &self,
        call: &mut Call,
        request: Request<pb::SupplementApplicationRequest>,
    ) -> Result<pb::SupplementApplicationResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let supplement = e.message("supplement", &r.supplement);
        e.attachments("supplement.materials", &supplement.materials, true);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), true) = (id, e.is_empty()) else {
            return Err(CallError::Invalid(e));
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

    pub(crate) async fn reject(
        &self,
        call: &mut Call,
        request: Request<pb::RejectApplicationRequest>,
    ) -> Result<pb::RejectApplicationResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let rejection = r.rejection.clone().unwrap_or_default();
        let reason = e.remark("rejection.reason", &rejection.reason, MAX_TEXT_CHARS);
        let (Some(id), Some(reason), true) = (id, reason, e.is_empty()) else {
            return Err(CallError::Invalid(e));
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

    /// A step whose request carries nothing but its request id, the application and a note
    /// (`fields` reads those three from the request).
    pub(crate) async fn note_step<T: prost::Message, R: prost::Message + Default>(
        &self,
        call: &mut Call,
        request: Request<T>,
        fields: fn(&T) -> (&str, &str, &str),
        (method, command, kind): (&'static str, LicensingCommand, pb::ApplicationStepKind),
        respond: impl FnOnce(pb::LicenceApplication, Option<pb::Licence>, Option<pb::Receipt>) -> R,
    ) -> Result<R, CallError> {
        let (request_id, name, note) = fields(request.get_ref());
        let (call, mut e, request_id, id) = self.head(call, request_id, name)?;
        let note = e.optional("note", note, MAX_TEXT_CHARS);
        let (Some(id), true) = (id, e.is_empty()) else {
            return Err(CallError::Invalid(e));
        };
        let step = Step::new(method, request_id, id, command, kind, note);
        self.run_step(call, step, respond).await
    }

    pub(crate) async fn start_review(
        &self,
        call: &mut Call,
        request: Request<pb::StartReviewRequest>,
    ) -> Result<pb::StartReviewResponse, CallError> {
        self.note_step(
            call,
            request,
            |r| (&r.request_id, &r.name, &r.note),
            (
                "StartReview",
                LicensingCommand::StartReview,
                pb::ApplicationStepKind::ReviewStarted,
            ),
            app_response!(StartReviewResponse),
        )
        .await
    }

    pub(crate) async fn delegate(
        &self,
        call: &mut Call,
        request: Request<pb::DelegateVerificationRequest>,
    ) -> Result<pb::DelegateVerificationResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let delegation = e.message("delegation", &r.delegation);
        let delegate = yrd_call::resource_id(
            delegation.delegate_agency.trim(),
            "agencies",
            "delegation.delegate_agency",
        )
        .map_err(|v| e.push(v))
        .ok()
        .and_then(|a| {
            AgencyId::parse(a)
                .map_err(|err| e.add("delegation.delegate_agency", err.to_string()))
                .ok()
        });
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(delegate), true) = (id, delegate, e.is_empty()) else {
            return Err(CallError::Invalid(e));
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
                Err(CallError::Invalid(yrd_call::FieldErrors::from(
                    yrd_call::violation(
                        "delegation.delegate_agency",
                        format!(
                            "must be the application's other province, agencies/{}",
                            app.accepting_agency
                        ),
                    ),
                )))
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

    pub(crate) async fn report(
        &self,
        call: &mut Call,
        request: Request<pb::SubmitVerificationReportRequest>,
    ) -> Result<pb::SubmitVerificationReportResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let today = china_date(call.now);
        let mut report = e.message("report", &r.report);
        let verifiers = e.verifiers("report.verifiers", &report.verifiers);
        let visited = e.past_date("report.verification_date", &report.verification_date, today);
        let passed = e.outcome("report.outcome", report.outcome);
        e.findings("report.findings", &report.findings, passed);
        let reported = e.past_date("report.report_date", &report.report_date, today);
        if let (Some(v), Some(d)) = (visited, reported) {
            if d < v {
                e.add(
                    "report.report_date",
                    "must not be before report.verification_date",
                );
            }
        }
        e.attachments("report.attachments", &report.attachments, false);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(verifiers), Some(passed), true) = (id, verifiers, passed, e.is_empty())
        else {
            return Err(CallError::Invalid(e));
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

    pub(crate) async fn record_testing(
        &self,
        call: &mut Call,
        request: Request<pb::RecordTestingRequest>,
    ) -> Result<pb::RecordTestingResponse, CallError> {
        let r = request.get_ref().clone();
        let (call, mut e, request_id, id) = self.head(call, &r.request_id, &r.name)?;
        let today = china_date(call.now);
        let testing = e.message("testing", &r.testing);
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
                        e.add("testing.report_date", "must not be before the sealing date");
                    }
                }
                Some(LicensingCommand::RecordTestResult {
                    conforming: v == pb::Verdict::Conforming,
                })
            }
            _ => {
                e.add(
                    "testing.outcome",
                    "must be unset (testing opens) or VERDICT_CONFORMING / VERDICT_NON_CONFORMING",
                );
                None
            }
        };
        e.attachments("testing.attachments", &testing.attachments, false);
        let note = e.optional("note", &r.note, MAX_TEXT_CHARS);
        let (Some(id), Some(command), true) = (id, command, e.is_empty()) else {
            return Err(CallError::Invalid(e));
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
}
