//! What every licensing scenario uses: the scenario's days, the sample applications, and the
//! calls of `LicensingService` as one-line steps.

use std::sync::OnceLock;

use time::{Duration, OffsetDateTime};
use yrd_e2e::TestApp;
pub use yrd_e2e::fixtures::fertilizer;
use yrd_e2e::fixtures::{self, pdf, stored_feed};
use yrd_proto::v1::licensing_service_client::LicensingServiceClient;
use yrd_proto::v1::{self as pb, ApplicationStepKind as K, EventType as E};

pub type Client = LicensingServiceClient<yrd_e2e::Authed>;

/// Next Monday, 10:00 in Beijing: day 0 of every scenario. Weekends are the only days off in
/// the default calendar, so "5 working days" is always day 7, "20" day 28 and "30" day 42,
/// while "30 calendar days" is day 30, a Wednesday (no roll to the next working day).
pub fn start() -> OffsetDateTime {
    static START: OnceLock<OffsetDateTime> = OnceLock::new();
    *START.get_or_init(yrd_e2e::next_monday_morning)
}

/// Day `n` of the scenario, `YYYY-MM-DD`.
pub fn day(n: i64) -> String {
    yrd_domain::spotcheck::format_date(start().date() + Duration::days(n))
}

/// Day `n` of the scenario at 09:00 in Beijing.
pub fn morning_of(n: i64) -> OffsetDateTime {
    start() + Duration::days(n) - Duration::hours(1)
}

/// `agency`'s licensing client.
pub async fn client(app: &TestApp, agency: &str) -> Client {
    app.as_agency(agency).await.licensing
}

/// A Shandong cable producer on the commitment route (告知承诺).
pub fn cable(serial: u32) -> pb::LicenceApplication {
    let mut a = fertilizer(serial);
    a.applicant.as_mut().expect("applicant").name = "山东某电缆有限公司".into();
    a.product = Some(pb::LicensedProduct {
        catalogue_code: "06-001".into(),
        name: String::new(),
        units: vec![pb::ProductUnit {
            code: "06-001-01".into(),
            name: "低压电力电缆".into(),
            specifications: vec![],
        }],
    });
    a.route = pb::LicensingRoute::Commitment as i32;
    a.materials.push(pdf_named("承诺书"));
    a
}

pub async fn submit(
    sh: &mut Client,
    request_id: &str,
    a: pb::LicenceApplication,
) -> pb::LicenceApplication {
    let request = pb::SubmitApplicationRequest {
        request_id: request_id.into(),
        application: Some(a),
    };
    applied(sh.submit_application(request).await, "submit")
}

pub fn verifiers() -> Vec<pb::Officer> {
    vec![
        pb::Officer {
            id: "HC-001".into(),
            display_name: "张核查".into(),
        },
        pb::Officer {
            id: "HC-002".into(),
            display_name: "李核查".into(),
        },
    ]
}

pub fn report(passed: bool) -> pb::VerificationReport {
    pb::VerificationReport {
        verifiers: verifiers(),
        verification_date: day(0),
        outcome: if passed {
            pb::CheckOutcome::Passed
        } else {
            pb::CheckOutcome::Failed
        } as i32,
        findings: if passed {
            vec![]
        } else {
            vec!["无原料检验记录".into()]
        },
        report_date: day(0),
        attachments: vec![pdf_named("核查报告")],
        verifying_agency: String::new(),
    }
}

pub async fn accept(sd: &mut Client, rid: &str, name: &str) -> pb::LicenceApplication {
    let request = pb::AcceptApplicationRequest {
        request_id: rid.into(),
        name: name.into(),
        acceptance_number: "鲁市监许受〔2024〕001号".into(),
        note: String::new(),
    };
    applied(sd.accept_application(request).await, "accept")
}

pub async fn start_review(sd: &mut Client, rid: &str, name: &str) {
    sd.start_review(pb::StartReviewRequest {
        request_id: rid.into(),
        name: name.into(),
        note: String::new(),
    })
    .await
    .expect("start review");
}

pub async fn own_report(sd: &mut Client, rid: &str, name: &str, passed: bool) {
    sd.submit_verification_report(pb::SubmitVerificationReportRequest {
        request_id: rid.into(),
        name: name.into(),
        report: Some(report(passed)),
        note: String::new(),
    })
    .await
    .expect("report");
}

pub fn decision(outcome: pb::DecisionOutcome) -> pb::Decision {
    match outcome {
        pb::DecisionOutcome::ApprovedWithConditions => pb::Decision {
            outcome: outcome as i32,
            conditions: vec!["更换烘干设备".into(), "补充原料检验记录".into()],
            condition_deadline: day(90),
            decision_number: "鲁许决〔2024〕12号".into(),
            ..Default::default()
        },
        pb::DecisionOutcome::Refused => pb::Decision {
            outcome: outcome as i32,
            refusal_reason: "实地核查不合格".into(),
            ..Default::default()
        },
        _ => pb::Decision {
            outcome: outcome as i32,
            ..Default::default()
        },
    }
}

pub async fn decide(
    sd: &mut Client,
    rid: &str,
    name: &str,
    outcome: pb::DecisionOutcome,
) -> Result<pb::LicenceApplication, tonic::Status> {
    sd.decide_application(pb::DecideApplicationRequest {
        request_id: rid.into(),
        name: name.into(),
        decision: Some(decision(outcome)),
        note: String::new(),
    })
    .await
    .map(|r| r.into_inner().application.expect("application"))
}

pub async fn issue(
    sd: &mut Client,
    rid: &str,
    name: &str,
) -> Result<pb::IssueLicenceResponse, tonic::Status> {
    sd.issue_licence(pb::IssueLicenceRequest {
        request_id: rid.into(),
        name: name.into(),
        issue_date: String::new(),
        note: String::new(),
    })
    .await
    .map(tonic::Response::into_inner)
}

/// Submits a fertilizer application and takes it to approval with Shandong verifying itself.
pub async fn approved(sh: &mut Client, sd: &mut Client, tag: &str, serial: u32) -> String {
    let name = submit(sh, &format!("{tag}-submit"), fertilizer(serial))
        .await
        .name;
    accept(sd, &format!("{tag}-accept"), &name).await;
    start_review(sd, &format!("{tag}-review"), &name).await;
    own_report(sd, &format!("{tag}-report"), &name, true).await;
    decide(
        sd,
        &format!("{tag}-decide"),
        &name,
        pb::DecisionOutcome::Approved,
    )
    .await
    .expect("approve");
    name
}

/// The next event of a feed stream; the scheduler's flags come with the round the scenario
/// asked for, the rest at once, so 20 s only fails a hung test.
pub async fn next_event(stream: &mut tonic::Streaming<pb::SubscribeResponse>) -> pb::FeedEvent {
    fixtures::next_event(stream, std::time::Duration::from_secs(20)).await
}

pub async fn subscribe(app: &TestApp, agency: &str) -> tonic::Streaming<pb::SubscribeResponse> {
    subscribe_after(app, agency, None).await
}

/// A live subscription of `agency` streaming the events after `cursor` (from the start when
/// `None`), with a token of the server's current time.
pub async fn subscribe_after(
    app: &TestApp,
    agency: &str,
    cursor: Option<u64>,
) -> tonic::Streaming<pb::SubscribeResponse> {
    app.subscribe(agency, cursor).await
}

pub fn kinds(a: &pb::LicenceApplication) -> Vec<K> {
    a.history.iter().map(pb::ApplicationStep::kind).collect()
}

pub fn event_summary(e: &pb::FeedEvent) -> (E, K, u32) {
    (
        e.event_type(),
        e.application_step_kind(),
        e.resource_version,
    )
}

pub fn change_request(rid: &str, licence: &str) -> pb::ChangeLicenceRequest {
    pb::ChangeLicenceRequest {
        request_id: rid.into(),
        name: licence.into(),
        holder_name: Some("山东某新材料化肥有限公司".into()),
        residence: None,
        production_address: Some("山东省济南市历城区某工业园8号".into()),
        business_licence_change_date: day(0),
        reason: "营业执照名称及地址变更".into(),
        attachments: vec![pdf_named("变更后营业执照")],
    }
}

/// Takes a fertilizer application to approval (see [`approved`]) and issues its licence (as
/// `<tag>-issue`): answers the application's name and the licence.
pub async fn licensed(
    sh: &mut Client,
    sd: &mut Client,
    tag: &str,
    serial: u32,
) -> (String, pb::Licence) {
    let name = approved(sh, sd, tag, serial).await;
    let issued = issue(sd, &format!("{tag}-issue"), &name).await;
    let licence = issued.expect("issue").licence.expect("licence");
    (name, licence)
}

/// A PDF `<name>.pdf` described as `name`.
pub fn pdf_named(name: &str) -> pb::Attachment {
    pdf(&format!("{name}.pdf"), name)
}

/// What `agency`'s feed holds (read from the store), summarised.
pub async fn feed_summary(app: &TestApp, agency: &str) -> Vec<(E, K, u32)> {
    stored_feed(app, agency)
        .await
        .iter()
        .map(event_summary)
        .collect()
}

/// The next `n` events of a feed stream.
pub async fn next_events(
    stream: &mut tonic::Streaming<pb::SubscribeResponse>,
    n: usize,
) -> Vec<pb::FeedEvent> {
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(next_event(stream).await);
    }
    events
}

/// The application a step's answer carries.
pub trait Answer {
    /// The application after the step.
    fn application(self) -> pb::LicenceApplication;
}

yrd_e2e::carries!(
    Answer::application -> pb::LicenceApplication;
    pb::SubmitApplicationResponse,
    pb::GetApplicationResponse,
    pb::AcceptApplicationResponse,
    pb::RejectApplicationResponse,
    pb::RequestSupplementResponse,
    pb::SupplementApplicationResponse,
    pb::DelegateVerificationResponse,
    pb::SubmitVerificationReportResponse,
    pb::DecideApplicationResponse,
    pb::ConfirmConditionsResponse,
    pb::ExtendTimeLimitResponse,
);

/// The application a step answered; panics, naming `what`, when it was refused.
pub fn applied<R: Answer>(
    answer: Result<tonic::Response<R>, tonic::Status>,
    what: &str,
) -> pb::LicenceApplication {
    answer
        .unwrap_or_else(|status| panic!("{what}: {status:?}"))
        .into_inner()
        .application()
}

/// The reads of `LicensingService`, as one-line calls.
pub trait Reads {
    /// The client.
    fn client(&mut self) -> &mut Client;

    /// `GetApplication`.
    async fn application(&mut self, name: &str) -> pb::LicenceApplication {
        let request = pb::GetApplicationRequest { name: name.into() };
        applied(self.client().get_application(request).await, "get")
    }

    /// `ListApplications`.
    async fn applications(
        &mut self,
        request: pb::ListApplicationsRequest,
    ) -> Vec<pb::LicenceApplication> {
        let listed = self.client().list_applications(request).await;
        listed.expect("list").into_inner().applications
    }

    /// `GetLicence`.
    async fn licence(&mut self, name: &str) -> pb::Licence {
        let request = pb::GetLicenceRequest { name: name.into() };
        let got = self.client().get_licence(request).await;
        got.expect("get licence")
            .into_inner()
            .licence
            .expect("licence")
    }

    /// `ListCatalogueProducts`.
    async fn catalogue(
        &mut self,
        request: pb::ListCatalogueProductsRequest,
    ) -> pb::ListCatalogueProductsResponse {
        let listed = self.client().list_catalogue_products(request).await;
        listed.expect("list the catalogue").into_inner()
    }

    /// `ListLicences`.
    async fn licences(&mut self, request: pb::ListLicencesRequest) -> Vec<pb::Licence> {
        let listed = self.client().list_licences(request).await;
        listed.expect("list").into_inner().licences
    }
}

impl Reads for Client {
    fn client(&mut self) -> &mut Client {
        self
    }
}
