//! The referral and licensing steps of the load: which step comes next on a referral or an
//! application a writer owns, the request that takes it (kept to send it again with the same
//! `request_id` and body), and how it is sent.
//!
//! A writer owns the referrals its publications opened (and those it opened by hand) and the
//! applications it submitted; only it steps them, so no two steps of one referral or
//! application race (which the exchange would refuse `ABORTED`). It acts as whichever agency
//! the disposal contract or the licensing procedure names: the handling agency for a
//! referral's steps, the issuing province for an application's.

use std::collections::{BTreeMap, BTreeSet};

use yrd_bench::connect::{AGENCIES, Authed, failure};
use yrd_bench::workloads::results::today;
use yrd_e2e::fixtures::{fertilizer, pdf, uscc};
use yrd_proto::v1 as pb;
use yrd_proto::v1::disposal_service_client::DisposalServiceClient;
use yrd_proto::v1::licensing_service_client::LicensingServiceClient;

use crate::ledger::{Acked, Request};

/// The Hu-Lu pilot (沪鲁通办): Shanghai's and Shandong's indices into [`AGENCIES`]; each
/// province's window submits applications the other one issues.
pub(crate) const PILOT: [usize; 2] = [0, 4];

/// The last step the load took on a referral; the next one follows from it (docs/domain.md
/// §"Disposal": acknowledge, handle, measures, order and review correction, close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReferralStep {
    /// Opened (automatically by a publication, or by hand: `CreateReferral`).
    Opened,
    Acknowledged,
    HandlingStarted,
    /// A "stop sales" measure (legal any number of times while in progress).
    StopSales,
    /// Correction ordered (责令改正): the 60/75-day clocks run.
    RectificationOrdered,
    /// A conforming review (复查).
    Reviewed,
    Closed,
    /// The sampling agency filed the producer's objection (异议): the clock pauses until the
    /// re-inspection (复检) outcome; a non-conforming one resumes the step before.
    ObjectionFiled,
    /// Returned (退回) by the handling agency without a suggestion: the sampling agency
    /// reroutes it (改派), and the new handling agency acknowledges it again.
    Returned,
    /// Closed by a conforming re-inspection (复检推翻原结论).
    Overturned,
}

impl ReferralStep {
    /// Whether the referral is closed (by its handling agency or by a re-inspection).
    pub(crate) fn is_closed(self) -> bool {
        matches!(self, ReferralStep::Closed | ReferralStep::Overturned)
    }
}

/// The last step the load took on an application (Hu-Lu joint processing: submitted at one
/// province's window, accepted, reviewed, verified and decided by the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LicensingStep {
    Submitted,
    Accepted,
    ReviewStarted,
    Verified,
    Decided,
}

/// A disposal request.
#[derive(Debug, Clone)]
pub(crate) enum ReferralRequest {
    Create(pb::CreateReferralRequest),
    Acknowledge(pb::AcknowledgeReferralRequest),
    Start(pb::StartHandlingRequest),
    Measure(pb::RecordMeasureRequest),
    Close(pb::CloseReferralRequest),
    Objection(pb::FileObjectionRequest),
    Reinspection(pb::RecordReinspectionRequest),
    /// A return; with a suggested agency the exchange reroutes it there at once (two
    /// timeline entries).
    Return(pb::ReturnReferralRequest),
    Reroute(pb::RerouteReferralRequest),
    Reaction(pb::AddReactionRequest),
}

/// A licensing request.
#[derive(Debug, Clone)]
pub(crate) enum LicensingRequest {
    Submit(Box<pb::SubmitApplicationRequest>),
    Accept(pb::AcceptApplicationRequest),
    StartReview(pb::StartReviewRequest),
    Report(pb::SubmitVerificationReportRequest),
    Decide(pb::DecideApplicationRequest),
}

/// A referral step of the load: the request and the step it takes.
#[derive(Debug, Clone)]
pub(crate) struct ReferralCall {
    pub(crate) step: ReferralStep,
    pub(crate) request: ReferralRequest,
}

/// A licensing step of the load.
#[derive(Debug, Clone)]
pub(crate) struct LicensingCall {
    pub(crate) step: LicensingStep,
    pub(crate) request: LicensingRequest,
}

/// The referrals and applications a writer owns, with the last step it took on each, in the
/// order they were opened or submitted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owned {
    pub(crate) referrals: Vec<(String, ReferralStep)>,
    /// The result each referral is about.
    pub(crate) referred: BTreeMap<String, String>,
    pub(crate) applications: Vec<(String, LicensingStep)>,
    /// The handling agency (index into [`AGENCIES`]) of each referral rerouted since it was
    /// opened; the others are handled by the producer's province.
    pub(crate) handlers: BTreeMap<String, usize>,
    /// The step a referral with an objection pending resumes after a non-conforming
    /// re-inspection.
    pub(crate) resume: BTreeMap<String, ReferralStep>,
    /// The referrals whose objection was decided (one objection per referral).
    pub(crate) objected: BTreeSet<String>,
}

impl Owned {
    /// Remembers what an acknowledged write opened (the referrals of a publication, or of a
    /// correction of a result whose referrals were closed) or moved on.
    pub(crate) fn took(&mut self, request: &Request, acked: &Acked) {
        fn moved<S>(list: &mut Vec<(String, S)>, name: &str, step: S) {
            match list.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = step,
                None => list.push((name.to_owned(), step)),
            }
        }
        match request {
            Request::Publish(_) | Request::Correct(_) => {
                for name in &acked.opened {
                    if !self.referred.contains_key(name) {
                        self.referrals.push((name.clone(), ReferralStep::Opened));
                        self.referred.insert(name.clone(), acked.name.clone());
                    }
                }
            }
            Request::Referral(c) => {
                let before = self
                    .referrals
                    .iter()
                    .find(|(n, _)| *n == acked.name)
                    .map(|(_, step)| *step);
                match &c.request {
                    ReferralRequest::Objection(_) => {
                        if let Some(before) = before {
                            self.resume.insert(acked.name.clone(), before);
                        }
                    }
                    ReferralRequest::Reinspection(_) => {
                        self.resume.remove(&acked.name);
                        self.objected.insert(acked.name.clone());
                    }
                    ReferralRequest::Return(pb::ReturnReferralRequest {
                        suggested_agency: to,
                        ..
                    })
                    | ReferralRequest::Reroute(pb::RerouteReferralRequest {
                        handling_agency: to,
                        ..
                    }) => {
                        if let Some(to) = agency_index(to) {
                            self.handlers.insert(acked.name.clone(), to);
                        }
                    }
                    _ => {}
                }
                moved(&mut self.referrals, &acked.name, c.step);
                if let ReferralRequest::Create(r) = &c.request {
                    self.referred.insert(acked.name.clone(), r.result.clone());
                }
            }
            Request::Licensing(c) => moved(&mut self.applications, &acked.name, c.step),
        }
    }
}

impl Owned {
    /// The results whose referrals are all closed: a new one may be opened by hand (the
    /// exchange refuses a second open referral of a result to the same agency).
    pub(crate) fn closed_results(&self) -> Vec<String> {
        let open: BTreeSet<&String> = self
            .referrals
            .iter()
            .filter(|(_, step)| !step.is_closed())
            .filter_map(|(name, _)| self.referred.get(name))
            .collect();
        let all: BTreeSet<&String> = self.referred.values().collect();
        all.difference(&open).map(|r| (*r).clone()).collect()
    }
}

/// The referral's next step after `last`, as request `request_id` (its note, where the
/// request has one, is the request id: the checks find the step in the timeline by it).
/// `None` once closed. `close_now` picks, in progress, between closing (no violation found)
/// and ordering correction; `more_measures` between another measure and moving on.
pub(crate) fn next_referral_step(
    name: &str,
    last: ReferralStep,
    request_id: String,
    more_measures: bool,
    close_now: bool,
) -> Option<ReferralCall> {
    use ReferralStep as S;
    let name = name.to_owned();
    let note = request_id.clone();
    let measure = |kind: pb::MeasureKind, review: pb::Verdict, step| ReferralCall {
        step,
        request: ReferralRequest::Measure(pb::RecordMeasureRequest {
            request_id: request_id.clone(),
            name: name.clone(),
            measure: Some(pb::Measure {
                kind: kind as i32,
                occur_time: Some(yrd_call::timestamp(yrd_domain::clock::Clock::now(
                    &yrd_domain::clock::SystemClock,
                ))),
                officers: vec![pb::Officer {
                    id: "CRASH0001".into(),
                    display_name: "张三".into(),
                }],
                detail: kind.as_str_name().into(),
                review_outcome: review as i32,
                ..Default::default()
            }),
            note: note.clone(),
        }),
    };
    let close = |outcome: pb::ReferralOutcome| ReferralCall {
        step: S::Closed,
        request: ReferralRequest::Close(pb::CloseReferralRequest {
            request_id: request_id.clone(),
            name: name.clone(),
            closure: Some(pb::ReferralClosure {
                outcome: outcome as i32,
                summary: format!("{} ({})", outcome.as_str_name(), request_id),
            }),
        }),
    };
    Some(match last {
        S::Opened => ReferralCall {
            step: S::Acknowledged,
            request: ReferralRequest::Acknowledge(pb::AcknowledgeReferralRequest {
                request_id: request_id.clone(),
                name,
                note,
            }),
        },
        S::Acknowledged => ReferralCall {
            step: S::HandlingStarted,
            request: ReferralRequest::Start(pb::StartHandlingRequest {
                request_id: request_id.clone(),
                name,
                note,
            }),
        },
        S::HandlingStarted | S::StopSales if more_measures => measure(
            pb::MeasureKind::StopSales,
            pb::Verdict::Unspecified,
            S::StopSales,
        ),
        S::HandlingStarted | S::StopSales if close_now => {
            close(pb::ReferralOutcome::NoViolationFound)
        }
        S::HandlingStarted | S::StopSales => measure(
            pb::MeasureKind::OrderRectification,
            pb::Verdict::Unspecified,
            S::RectificationOrdered,
        ),
        S::RectificationOrdered => measure(
            pb::MeasureKind::Review,
            pb::Verdict::Conforming,
            S::Reviewed,
        ),
        S::Reviewed => close(pb::ReferralOutcome::Rectified),
        // The sampling agency's steps: see `crate::detours`.
        S::Closed | S::Overturned | S::ObjectionFiled | S::Returned => return None,
    })
}

/// `CreateReferral` by hand: the publisher (`agency`) refers its own result `result` to the
/// producer's province, as request `request_id`.
pub(crate) fn create_referral(agency: usize, result: &str, request_id: String) -> ReferralCall {
    let (handler, _) = AGENCIES[(agency + 1) % AGENCIES.len()];
    ReferralCall {
        step: ReferralStep::Opened,
        request: ReferralRequest::Create(pb::CreateReferralRequest {
            request_id: request_id.clone(),
            result: result.to_owned(),
            result_version: 0,
            handling_agency: format!("agencies/{handler}"),
            jurisdiction_basis: pb::JurisdictionBasis::Producer as i32,
            requested_actions: vec![pb::MeasureKind::StopSales as i32],
            note: request_id,
        }),
    }
}

/// The index into [`AGENCIES`] of `agencies/{id}`.
pub(crate) fn agency_index(name: &str) -> Option<usize> {
    let id = name.strip_prefix("agencies/")?;
    AGENCIES.iter().position(|(a, _)| *a == id)
}

/// The issuing province of an application submitted at `window`'s window (index into
/// [`AGENCIES`]): the other pilot province.
pub(crate) fn issuing_of(window: usize) -> usize {
    if window == PILOT[0] {
        PILOT[1]
    } else {
        PILOT[0]
    }
}

/// `SubmitApplication` at `window`'s window: the fertilizer (化肥) producer of the e2e
/// fixtures, moved to the other pilot province, its USCC made unique by `serial`.
pub(crate) fn submit_application(window: usize, serial: u32, request_id: String) -> LicensingCall {
    let (_, region) = AGENCIES[issuing_of(window)];
    let mut application = fertilizer(serial);
    if let Some(applicant) = application.applicant.as_mut() {
        applicant.name = format!("某化肥有限公司{serial}");
        applicant.uscc = uscc(region, serial);
        applicant.production_region_code = region.into();
    }
    application.note = format!("沪鲁通办 {request_id}");
    LicensingCall {
        step: LicensingStep::Submitted,
        request: LicensingRequest::Submit(Box::new(pb::SubmitApplicationRequest {
            request_id,
            application: Some(application),
        })),
    }
}

/// The application's next step after `last`, by the issuing province; `None` once decided.
pub(crate) fn next_licensing_step(
    name: &str,
    last: LicensingStep,
    request_id: String,
) -> Option<LicensingCall> {
    use LicensingStep as S;
    let name = name.to_owned();
    let note = request_id.clone();
    let day = yrd_domain::spotcheck::format_date(today());
    Some(match last {
        S::Submitted => LicensingCall {
            step: S::Accepted,
            request: LicensingRequest::Accept(pb::AcceptApplicationRequest {
                request_id,
                name,
                acceptance_number: "鲁市监许受〔2026〕001号".into(),
                note,
            }),
        },
        S::Accepted => LicensingCall {
            step: S::ReviewStarted,
            request: LicensingRequest::StartReview(pb::StartReviewRequest {
                request_id,
                name,
                note,
            }),
        },
        S::ReviewStarted => LicensingCall {
            step: S::Verified,
            request: LicensingRequest::Report(pb::SubmitVerificationReportRequest {
                request_id,
                name,
                report: Some(pb::VerificationReport {
                    verifiers: ["HC-001", "HC-002"]
                        .iter()
                        .map(|id| pb::Officer {
                            id: (*id).into(),
                            display_name: "核查员".into(),
                        })
                        .collect(),
                    verification_date: day.clone(),
                    outcome: pb::CheckOutcome::Passed as i32,
                    findings: vec![],
                    report_date: day,
                    attachments: vec![pdf("核查报告.pdf", "核查报告")],
                    verifying_agency: String::new(),
                }),
                note,
            }),
        },
        S::Verified => LicensingCall {
            step: S::Decided,
            request: LicensingRequest::Decide(pb::DecideApplicationRequest {
                request_id,
                name,
                decision: Some(pb::Decision {
                    outcome: pb::DecisionOutcome::Approved as i32,
                    ..Default::default()
                }),
                note,
            }),
        },
        S::Decided => return None,
    })
}

/// An answer's parts: the resource, its version (result version, or timeline or history
/// length), and the receipt.
fn acked(
    name: Option<String>,
    version: Option<u32>,
    receipt: Option<pb::Receipt>,
    id: &str,
) -> Result<Acked, String> {
    match (name, version, receipt) {
        (Some(name), Some(version), Some(receipt)) => Ok(Acked {
            name,
            version,
            receipt,
            opened: Vec::new(),
        }),
        _ => Err(format!("{id} answered no resource or no receipt")),
    }
}

fn of_referral(
    r: Option<pb::Referral>,
    receipt: Option<pb::Receipt>,
    id: &str,
) -> Result<Acked, String> {
    let version = r.as_ref().map(|r| r.timeline.len() as u32);
    acked(r.map(|r| r.name), version, receipt, id)
}

fn of_application(
    a: Option<pb::LicenceApplication>,
    receipt: Option<pb::Receipt>,
    id: &str,
) -> Result<Acked, String> {
    let version = a.as_ref().map(|a| a.history.len() as u32);
    acked(a.map(|a| a.name), version, receipt, id)
}

impl ReferralCall {
    pub(crate) fn id(&self) -> &str {
        match &self.request {
            ReferralRequest::Create(r) => &r.request_id,
            ReferralRequest::Acknowledge(r) => &r.request_id,
            ReferralRequest::Start(r) => &r.request_id,
            ReferralRequest::Measure(r) => &r.request_id,
            ReferralRequest::Close(r) => &r.request_id,
            ReferralRequest::Objection(r) => &r.request_id,
            ReferralRequest::Reinspection(r) => &r.request_id,
            ReferralRequest::Return(r) => &r.request_id,
            ReferralRequest::Reroute(r) => &r.request_id,
            ReferralRequest::Reaction(r) => &r.request_id,
        }
    }

    /// The referral it steps (`None` for a creation: the answer names it).
    pub(crate) fn referral(&self) -> Option<&str> {
        match &self.request {
            ReferralRequest::Create(_) => None,
            ReferralRequest::Acknowledge(r) => Some(&r.name),
            ReferralRequest::Start(r) => Some(&r.name),
            ReferralRequest::Measure(r) => Some(&r.name),
            ReferralRequest::Close(r) => Some(&r.name),
            ReferralRequest::Objection(r) => Some(&r.name),
            ReferralRequest::Reinspection(r) => Some(&r.name),
            ReferralRequest::Return(r) => Some(&r.name),
            ReferralRequest::Reroute(r) => Some(&r.name),
            ReferralRequest::Reaction(r) => Some(&r.name),
        }
    }

    /// Sends it; the answer's resource is the referral, its version the timeline's length.
    pub(crate) async fn send(&self, client: Authed) -> Result<Acked, String> {
        let mut d = DisposalServiceClient::new(client);
        let id = self.id();
        let s = |s: tonic::Status| failure(&s);
        match &self.request {
            ReferralRequest::Create(r) => {
                let a = d.create_referral(r.clone()).await.map_err(s)?.into_inner();
                of_referral(a.referral, a.receipt, id)
            }
            ReferralRequest::Acknowledge(r) => {
                let a = d.acknowledge_referral(r.clone()).await.map_err(s)?;
                let a = a.into_inner();
                of_referral(a.referral, a.receipt, id)
            }
            ReferralRequest::Start(r) => {
                let a = d.start_handling(r.clone()).await.map_err(s)?.into_inner();
                of_referral(a.referral, a.receipt, id)
            }
            ReferralRequest::Measure(r) => {
                let a = d.record_measure(r.clone()).await.map_err(s)?.into_inner();
                of_referral(a.referral, a.receipt, id)
            }
            ReferralRequest::Close(r) => {
                let a = d.close_referral(r.clone()).await.map_err(s)?.into_inner();
                of_referral(a.referral, a.receipt, id)
            }
            ReferralRequest::Objection(r) => {
                let a = d.file_objection(r.clone()).await.map_err(s)?.into_inner();
                of_referral(a.referral, a.receipt, id)
            }
            ReferralRequest::Reinspection(r) => {
                let a = d.record_reinspection(r.clone()).await.map_err(s)?;
                let a = a.into_inner();
                of_referral(a.referral, a.receipt, id)
            }
            ReferralRequest::Return(r) => {
                let a = d.return_referral(r.clone()).await.map_err(s)?.into_inner();
                of_referral(a.referral, a.receipt, id)
            }
            ReferralRequest::Reroute(r) => {
                let a = d.reroute_referral(r.clone()).await.map_err(s)?.into_inner();
                of_referral(a.referral, a.receipt, id)
            }
            ReferralRequest::Reaction(r) => {
                let a = d.add_reaction(r.clone()).await.map_err(s)?.into_inner();
                of_referral(a.referral, a.receipt, id)
            }
        }
    }
}

impl LicensingCall {
    pub(crate) fn id(&self) -> &str {
        match &self.request {
            LicensingRequest::Submit(r) => &r.request_id,
            LicensingRequest::Accept(r) => &r.request_id,
            LicensingRequest::StartReview(r) => &r.request_id,
            LicensingRequest::Report(r) => &r.request_id,
            LicensingRequest::Decide(r) => &r.request_id,
        }
    }

    /// The application it steps (`None` for a submission: the answer names it).
    pub(crate) fn application(&self) -> Option<&str> {
        match &self.request {
            LicensingRequest::Submit(_) => None,
            LicensingRequest::Accept(r) => Some(&r.name),
            LicensingRequest::StartReview(r) => Some(&r.name),
            LicensingRequest::Report(r) => Some(&r.name),
            LicensingRequest::Decide(r) => Some(&r.name),
        }
    }

    /// The applicant's USCC of a submission.
    pub(crate) fn submitted_uscc(&self) -> Option<&str> {
        match &self.request {
            LicensingRequest::Submit(r) => r
                .application
                .as_ref()
                .and_then(|a| a.applicant.as_ref())
                .map(|e| e.uscc.as_str()),
            _ => None,
        }
    }

    /// Sends it; the answer's resource is the application, its version the history's length.
    pub(crate) async fn send(&self, client: Authed) -> Result<Acked, String> {
        let mut l = LicensingServiceClient::new(client);
        let id = self.id();
        let s = |s: tonic::Status| failure(&s);
        match &self.request {
            LicensingRequest::Submit(r) => {
                let a = l.submit_application(*r.clone()).await.map_err(s)?;
                let a = a.into_inner();
                of_application(a.application, a.receipt, id)
            }
            LicensingRequest::Accept(r) => {
                let a = l.accept_application(r.clone()).await.map_err(s)?;
                let a = a.into_inner();
                of_application(a.application, a.receipt, id)
            }
            LicensingRequest::StartReview(r) => {
                let a = l.start_review(r.clone()).await.map_err(s)?.into_inner();
                of_application(a.application, a.receipt, id)
            }
            LicensingRequest::Report(r) => {
                let a = l.submit_verification_report(r.clone()).await.map_err(s)?;
                let a = a.into_inner();
                of_application(a.application, a.receipt, id)
            }
            LicensingRequest::Decide(r) => {
                let a = l.decide_application(r.clone()).await.map_err(s)?;
                let a = a.into_inner();
                of_application(a.application, a.receipt, id)
            }
        }
    }
}
