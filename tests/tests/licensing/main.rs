//! LicensingService over real mTLS (issue 7, "Hu-Lu joint processing" 沪鲁通办): a Shandong
//! fertilizer producer applies at the Shanghai window and Shandong examines and issues; the
//! supplement round trip; refusals; the commitment route with a failed after-issue check; an
//! overdue step under a manual clock (with two replicas flagging it once); the other provinces
//! refused on every method; the linked licence change; invalid inputs; concurrent issuance.
//! Each scenario runs on SQLite and on PostgreSQL, with the server's clock standing on the next
//! Monday, 10:00 in Beijing (the dev certificates are issued at the real time, so the clock
//! cannot stand in the past), and moving only when the test says.

use std::sync::Arc;

use std::sync::OnceLock;

use time::{Duration, OffsetDateTime};
use tonic::Code;
use tonic_types::StatusExt as _;
use yrd_domain::Profile;
use yrd_domain::clock::ManualClock;
use yrd_e2e::fixtures::{self, stored_feed, uscc};
use yrd_e2e::spawn_for_deadlines as spawn;
use yrd_e2e::{ANHUI, JIANGSU, SHANDONG, SHANGHAI, TestApp, call_path};
use yrd_proto::v1::licensing_service_client::LicensingServiceClient;
use yrd_proto::v1::{self as pb, ApplicationStepKind as K, EventType as E};

type Client = LicensingServiceClient<yrd_e2e::Authed>;

/// Next Monday, 10:00 in Beijing: day 0 of every scenario. Weekends are the only days off in
/// the default calendar, so "5 working days" is always day 7, "20" day 28 and "30" day 42,
/// while "30 calendar days" is day 30, a Wednesday (no roll to the next working day).
fn start() -> OffsetDateTime {
    static START: OnceLock<OffsetDateTime> = OnceLock::new();
    *START.get_or_init(yrd_e2e::next_monday_morning)
}

/// Day `n` of the scenario, `YYYY-MM-DD`.
fn day(n: i64) -> String {
    yrd_domain::spotcheck::format_date(start().date() + Duration::days(n))
}

/// Day `n` of the scenario at 09:00 in Beijing.
fn morning_of(n: i64) -> OffsetDateTime {
    start() + Duration::days(n) - Duration::hours(1)
}

yrd_e2e::on_both_stores_with_clock!(
    a_shandong_producer_applies_in_shanghai_and_gets_a_conditional_licence,
    a_supplement_round_trip_and_idempotent_retries,
    refusals_follow_the_state_machine,
    a_commitment_licence_is_revoked_after_a_failed_check,
    an_overdue_step_is_flagged_once_to_both_provinces,
    other_provinces_are_refused_on_every_method,
    a_business_licence_change_changes_the_licence,
    a_window_reads_the_catalogue_before_it_submits,
    each_invalid_input_is_named_and_nothing_is_stored,
    concurrent_issues_never_share_a_number,
);

async fn client(app: &TestApp, agency: &str) -> Client {
    app.as_agency(agency).await.licensing
}

fn attachment(name: &str) -> pb::Attachment {
    pb::Attachment {
        file_name: format!("{name}.pdf"),
        media_type: "application/pdf".into(),
        sha256: "ab".repeat(32),
        size_bytes: 1024,
        description: name.into(),
    }
}

/// A Shandong fertilizer producer in Jinan (370102), ordinary route.
fn fertilizer(serial: u32) -> pb::LicenceApplication {
    pb::LicenceApplication {
        applicant: Some(pb::Enterprise {
            name: "山东某化肥有限公司".into(),
            uscc: uscc("370102", serial),
            residence: "山东省济南市历下区某路1号".into(),
            production_address: "山东省济南市历城区某工业园2号".into(),
            production_region_code: "370102".into(),
        }),
        product: Some(pb::LicensedProduct {
            catalogue_code: "13-001".into(),
            name: String::new(),
            units: vec![pb::ProductUnit {
                code: "13-001-01".into(),
                name: "复混肥料".into(),
                specifications: vec!["N-P2O5-K2O 15-15-15".into()],
            }],
        }),
        route: pb::LicensingRoute::Ordinary as i32,
        materials: vec![attachment("申请书"), attachment("营业执照")],
        note: "沪鲁通办 窗口受理".into(),
        ..Default::default()
    }
}

/// A Shandong cable producer on the commitment route (告知承诺).
fn cable(serial: u32) -> pb::LicenceApplication {
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
    a.materials.push(attachment("承诺书"));
    a
}

async fn submit(
    sh: &mut Client,
    request_id: &str,
    a: pb::LicenceApplication,
) -> pb::LicenceApplication {
    sh.submit_application(pb::SubmitApplicationRequest {
        request_id: request_id.into(),
        application: Some(a),
    })
    .await
    .expect("submit")
    .into_inner()
    .application
    .expect("application")
}

fn verifiers() -> Vec<pb::Officer> {
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

fn report(passed: bool) -> pb::VerificationReport {
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
        attachments: vec![attachment("核查报告")],
        verifying_agency: String::new(),
    }
}

async fn accept(sd: &mut Client, rid: &str, name: &str) -> pb::LicenceApplication {
    sd.accept_application(pb::AcceptApplicationRequest {
        request_id: rid.into(),
        name: name.into(),
        acceptance_number: "鲁市监许受〔2024〕001号".into(),
        note: String::new(),
    })
    .await
    .expect("accept")
    .into_inner()
    .application
    .expect("application")
}

async fn start_review(sd: &mut Client, rid: &str, name: &str) {
    sd.start_review(pb::StartReviewRequest {
        request_id: rid.into(),
        name: name.into(),
        note: String::new(),
    })
    .await
    .expect("start review");
}

async fn own_report(sd: &mut Client, rid: &str, name: &str, passed: bool) {
    sd.submit_verification_report(pb::SubmitVerificationReportRequest {
        request_id: rid.into(),
        name: name.into(),
        report: Some(report(passed)),
        note: String::new(),
    })
    .await
    .expect("report");
}

fn decision(outcome: pb::DecisionOutcome) -> pb::Decision {
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

async fn decide(
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

async fn issue(
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
async fn approved(sh: &mut Client, sd: &mut Client, tag: &str, serial: u32) -> String {
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

/// The events in `agency`'s feed, decoded.
async fn feed(app: &TestApp, agency: &str) -> Vec<pb::FeedEvent> {
    stored_feed(app, agency).await
}

/// The next event of a feed stream; the scheduler's flags come with the round the scenario
/// asked for, the rest at once, so 20 s only fails a hung test.
async fn next_event(stream: &mut tonic::Streaming<pb::SubscribeResponse>) -> pb::FeedEvent {
    fixtures::next_event(stream, std::time::Duration::from_secs(20)).await
}

async fn subscribe(app: &TestApp, agency: &str) -> tonic::Streaming<pb::SubscribeResponse> {
    subscribe_after(app, agency, None).await
}

/// A live subscription of `agency` streaming the events after `cursor` (from the start when
/// `None`), with a token of the server's current time.
async fn subscribe_after(
    app: &TestApp,
    agency: &str,
    cursor: Option<u64>,
) -> tonic::Streaming<pb::SubscribeResponse> {
    app.subscribe(agency, cursor).await
}

fn kinds(a: &pb::LicenceApplication) -> Vec<K> {
    a.history.iter().map(pb::ApplicationStep::kind).collect()
}

fn event_summary(e: &pb::FeedEvent) -> (E, K, u32) {
    (
        e.event_type(),
        e.application_step_kind(),
        e.resource_version,
    )
}

fn bad_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn assert_receipt(receipt: Option<&pb::Receipt>) {
    let receipt = receipt.expect("a write answers with a receipt");
    assert_eq!(receipt.leaf_hash.len(), 32);
    assert!(!receipt.signature.is_empty());
}

/// The issue's main story, with both provinces' live subscribers watching.
async fn a_shandong_producer_applies_in_shanghai_and_gets_a_conditional_licence(
    app: TestApp,
    _clock: Arc<ManualClock>,
) {
    let mut sh_stream = subscribe(&app, SHANGHAI).await;
    let mut sd_stream = subscribe(&app, SHANDONG).await;
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;

    // Shanghai's window submits; the production address makes Shandong the issuing province.
    let response = sh
        .submit_application(pb::SubmitApplicationRequest {
            request_id: "main-submit".into(),
            application: Some(fertilizer(1)),
        })
        .await
        .expect("submit")
        .into_inner();
    assert_receipt(response.receipt.as_ref());
    let submitted = response.application.expect("application");
    let name = submitted.name.clone();
    assert_eq!(submitted.accepting_agency, "agencies/310000-SAMR");
    assert_eq!(submitted.issuing_agency, "agencies/370000-AMR");
    assert_eq!(submitted.state(), pb::ApplicationState::Submitted);
    assert_eq!(submitted.product.as_ref().expect("product").name, "化肥");
    let acceptance = &submitted.deadlines[0];
    assert_eq!(acceptance.kind(), pb::ApplicationDeadlineKind::Acceptance);
    // Monday + 5 working days = next Monday.
    assert_eq!(acceptance.due_date, day(7));
    assert!(acceptance.working_days);

    let accepted = accept(&mut sd, "main-accept", &name).await;
    assert_eq!(accepted.state(), pb::ApplicationState::Accepted);
    assert_eq!(accepted.accept_date, day(0));
    let decision_limit = accepted
        .deadlines
        .iter()
        .find(|d| d.kind() == pb::ApplicationDeadlineKind::Decision)
        .expect("decision limit");
    // 20 working days after Monday.
    assert_eq!(decision_limit.due_date, day(28));
    assert!(decision_limit.working_days);
    // The on-site verification result: 30 calendar days (条例 art. 18), not 30 working days.
    let verification_limit = accepted
        .deadlines
        .iter()
        .find(|d| d.kind() == pb::ApplicationDeadlineKind::Verification)
        .expect("verification limit");
    assert_eq!(verification_limit.due_date, day(30));
    assert_eq!(verification_limit.limit_days, 30);
    assert_eq!(verification_limit.start_date, day(0));
    assert!(!verification_limit.working_days);
    start_review(&mut sd, "main-review", &name).await;
    let delegated = sd
        .delegate_verification(pb::DelegateVerificationRequest {
            request_id: "main-delegate".into(),
            name: name.clone(),
            delegation: Some(pb::VerificationDelegation {
                delegate_agency: "agencies/310000-SAMR".into(),
                due_date: String::new(),
            }),
            note: "请核查原料仓库".into(),
        })
        .await
        .expect("delegate")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(
        delegated.state(),
        pb::ApplicationState::VerificationDelegated
    );
    assert_eq!(delegated.verifying_agency, "agencies/310000-SAMR");
    match delegated.history.last().and_then(|s| s.detail.clone()) {
        Some(pb::application_step::Detail::Delegation(d)) => {
            assert_eq!(d.due_date, day(30));
        }
        other => panic!("delegation detail: {other:?}"),
    }
    // The issuing province may not report a verification it delegated.
    let own = sd
        .submit_verification_report(pb::SubmitVerificationReportRequest {
            request_id: "main-own-report".into(),
            name: name.clone(),
            report: Some(report(true)),
            note: String::new(),
        })
        .await
        .expect_err("delegated away");
    assert_eq!(own.code(), Code::PermissionDenied, "{own:?}");

    let reported = sh
        .submit_verification_report(pb::SubmitVerificationReportRequest {
            request_id: "main-report".into(),
            name: name.clone(),
            report: Some(report(true)),
            note: String::new(),
        })
        .await
        .expect("the delegate reports")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(reported.state(), pb::ApplicationState::VerificationReported);
    assert_eq!(
        reported
            .verification_report
            .as_ref()
            .expect("report")
            .verifying_agency,
        "agencies/310000-SAMR"
    );

    let decided = decide(
        &mut sd,
        "main-decide",
        &name,
        pb::DecisionOutcome::ApprovedWithConditions,
    )
    .await
    .expect("conditional approval");
    assert_eq!(
        decided.state(),
        pb::ApplicationState::DecidedApprovedWithConditions
    );
    let issued = issue(&mut sd, "main-issue", &name).await.expect("issue");
    assert_receipt(issued.receipt.as_ref());
    let licence = issued.licence.expect("licence");
    assert_eq!(licence.number, "(鲁)XK13-001-00001");
    assert_eq!(licence.name, "licences/(鲁)XK13-001-00001");
    assert_eq!(licence.issue_date, day(0));
    let expiry = yrd_domain::licensing::years_later(start().date(), 5);
    assert_eq!(
        licence.expiry_date,
        yrd_domain::spotcheck::format_date(expiry)
    );
    assert_eq!(licence.state(), pb::LicenceState::Valid);
    assert_eq!(licence.conditions.len(), 2);
    assert_eq!(licence.condition_deadline, day(90));
    assert_eq!(licence.issuing_agency, "agencies/370000-AMR");
    assert_eq!(licence.application, name);

    // Both provinces read the full history.
    let expected = [
        K::Submitted,
        K::Accepted,
        K::ReviewStarted,
        K::VerificationDelegated,
        K::VerificationReported,
        K::Decided,
        K::LicenceIssued,
    ];
    for c in [&mut sh, &mut sd] {
        let got = c
            .get_application(pb::GetApplicationRequest { name: name.clone() })
            .await
            .expect("get")
            .into_inner()
            .application
            .expect("application");
        assert_eq!(kinds(&got), expected);
        assert_eq!(got.state(), pb::ApplicationState::LicenceIssued);
        assert_eq!(got.licence, licence.name);
        assert_eq!(got.history[0].agency, "agencies/310000-SAMR");
        assert_eq!(got.history[1].agency, "agencies/370000-AMR");
        let fetched = c
            .get_licence(pb::GetLicenceRequest {
                name: licence.name.clone(),
            })
            .await
            .expect("get licence")
            .into_inner()
            .licence
            .expect("licence");
        assert_eq!(fetched, licence);
    }

    // Every step reached the other province's live subscriber, in order, carrying the
    // application with its history; together the two feeds show every step once.
    let mut sd_seen = Vec::new();
    for _ in 0..2 {
        sd_seen.push(next_event(&mut sd_stream).await);
    }
    assert_eq!(
        sd_seen.iter().map(event_summary).collect::<Vec<_>>(),
        [
            (E::ApplicationSubmitted, K::Submitted, 1),
            (E::ApplicationUpdated, K::VerificationReported, 5),
        ]
    );
    let mut sh_seen = Vec::new();
    for _ in 0..6 {
        sh_seen.push(next_event(&mut sh_stream).await);
    }
    assert_eq!(
        sh_seen.iter().map(event_summary).collect::<Vec<_>>(),
        [
            (E::ApplicationUpdated, K::Accepted, 2),
            (E::ApplicationUpdated, K::ReviewStarted, 3),
            (E::ApplicationUpdated, K::VerificationDelegated, 4),
            (E::ApplicationUpdated, K::Decided, 6),
            (E::ApplicationUpdated, K::LicenceIssued, 7),
            (E::LicenceIssued, K::LicenceIssued, 0),
        ]
    );
    let mut versions: Vec<u32> = sd_seen
        .iter()
        .chain(&sh_seen)
        .filter(|e| e.resource_name == name)
        .map(|e| e.resource_version)
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7]);
    match &sh_seen[4].resource {
        Some(pb::feed_event::Resource::Application(a)) => assert_eq!(kinds(a), expected),
        other => panic!("application resource: {other:?}"),
    }
    match &sh_seen[5].resource {
        Some(pb::feed_event::Resource::Licence(l)) => assert_eq!(l, &licence),
        other => panic!("licence resource: {other:?}"),
    }
    assert_eq!(sh_seen[0].actor_agency, "agencies/370000-AMR");
    assert!(!sh_seen[0].trace_id.is_empty());

    // The conditions are confirmed met by the issuing province only, once: their deadline
    // stops running, the state stays, and Shanghai is told.
    let confirm = |request_id: &str| pb::ConfirmConditionsRequest {
        request_id: request_id.into(),
        name: name.clone(),
        note: "整改报告 received".into(),
    };
    let not_issuer = sh
        .confirm_conditions(confirm("sh-conditions"))
        .await
        .expect_err("the accepting window does not confirm");
    assert_eq!(not_issuer.code(), Code::PermissionDenied, "{not_issuer:?}");
    let met = sd
        .confirm_conditions(confirm("main-conditions"))
        .await
        .expect("confirm")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(met.state(), pb::ApplicationState::LicenceIssued);
    assert_eq!(kinds(&met).last(), Some(&K::ConditionsMet));
    assert!(
        met.deadlines
            .iter()
            .all(|d| d.kind() != pb::ApplicationDeadlineKind::Conditions || d.met),
        "{:?}",
        met.deadlines
    );
    assert_eq!(
        event_summary(&next_event(&mut sh_stream).await),
        (E::ApplicationUpdated, K::ConditionsMet, 8)
    );
    let again = sd
        .confirm_conditions(confirm("main-conditions-again"))
        .await
        .expect_err("conditions already met");
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");

    // Third provinces hear nothing.
    for agency in [JIANGSU, ANHUI] {
        assert!(feed(&app, agency).await.is_empty(), "{agency}");
    }
}

async fn a_supplement_round_trip_and_idempotent_retries(app: TestApp, _clock: Arc<ManualClock>) {
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;
    let name = submit(&mut sh, "sup-submit", fertilizer(2)).await.name;
    // A retry of the submission answers the first application, not a second one.
    let again = submit(&mut sh, "sup-submit", fertilizer(2)).await;
    assert_eq!(again.name, name);
    let reused = sh
        .submit_application(pb::SubmitApplicationRequest {
            request_id: "sup-submit".into(),
            application: Some(fertilizer(3)),
        })
        .await
        .expect_err("another body");
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");

    // Only the issuing province asks for a supplement; the window may not.
    let ask = |rid: &str, items: Vec<String>| pb::RequestSupplementRequest {
        request_id: rid.into(),
        name: name.clone(),
        supplement_request: Some(pb::SupplementRequest {
            missing_items: items,
        }),
        note: String::new(),
    };
    let by_window = sh
        .request_supplement(ask("sup-ask-sh", vec!["厂区平面图".into()]))
        .await
        .expect_err("not the window's step");
    assert_eq!(by_window.code(), Code::PermissionDenied, "{by_window:?}");
    let asked = sd
        .request_supplement(ask(
            "sup-ask",
            vec!["厂区平面图".into(), "主要生产设备清单".into()],
        ))
        .await
        .expect("ask")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(asked.state(), pb::ApplicationState::SupplementRequested);
    assert_eq!(asked.missing_items, ["厂区平面图", "主要生产设备清单"]);
    // The same request again replays the first answer.
    let replay = sd
        .request_supplement(ask(
            "sup-ask",
            vec!["厂区平面图".into(), "主要生产设备清单".into()],
        ))
        .await
        .expect("replay")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(replay, asked);

    let supplement = |rid: &str| pb::SupplementApplicationRequest {
        request_id: rid.into(),
        name: name.clone(),
        supplement: Some(pb::Supplement {
            materials: vec![attachment("厂区平面图"), attachment("设备清单")],
        }),
        note: "申请人补正".into(),
    };
    let by_issuer = sd
        .supplement_application(supplement("sup-in-sd"))
        .await
        .expect_err("the window hands in supplements");
    assert_eq!(by_issuer.code(), Code::PermissionDenied, "{by_issuer:?}");
    let back = sh
        .supplement_application(supplement("sup-in"))
        .await
        .expect("supplement")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(back.state(), pb::ApplicationState::Submitted);
    assert!(back.missing_items.is_empty());
    assert_eq!(back.materials.len(), 4);
    assert_eq!(
        kinds(&back),
        [K::Submitted, K::SupplementRequested, K::Supplemented]
    );

    // One notice only (一次性告知): a second supplement request is refused, naming the state.
    let second = sd
        .request_supplement(ask("sup-ask-2", vec!["其他".into()]))
        .await
        .expect_err("one notice");
    assert_eq!(second.code(), Code::FailedPrecondition, "{second:?}");
    assert!(
        second
            .message()
            .starts_with("RequestSupplement is not allowed in state APPLICATION_STATE_SUBMITTED"),
        "{}",
        second.message()
    );
    let accepted = accept(&mut sd, "sup-accept", &name).await;
    assert_eq!(accepted.state(), pb::ApplicationState::Accepted);

    // Shandong's feed: the submission and the supplement; Shanghai's: the notice and the
    // acceptance.
    let sd_feed: Vec<_> = feed(&app, SHANDONG)
        .await
        .iter()
        .map(event_summary)
        .collect();
    assert_eq!(
        sd_feed,
        [
            (E::ApplicationSubmitted, K::Submitted, 1),
            (E::ApplicationUpdated, K::Supplemented, 3),
        ]
    );
    let sh_feed: Vec<_> = feed(&app, SHANGHAI)
        .await
        .iter()
        .map(event_summary)
        .collect();
    assert_eq!(
        sh_feed,
        [
            (E::ApplicationUpdated, K::SupplementRequested, 2),
            (E::ApplicationUpdated, K::Accepted, 4),
        ]
    );
}

async fn refusals_follow_the_state_machine(app: TestApp, _clock: Arc<ManualClock>) {
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;

    // Not accepted (不予受理): final.
    let rejected = submit(&mut sh, "ref-submit-1", fertilizer(4)).await.name;
    let not_accepted = sd
        .reject_application(pb::RejectApplicationRequest {
            request_id: "ref-reject".into(),
            name: rejected.clone(),
            rejection: Some(pb::Rejection {
                reason: "不属于生产许可证管理目录".into(),
            }),
        })
        .await
        .expect("reject")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(not_accepted.state(), pb::ApplicationState::NotAccepted);
    let late = accept_err(&mut sd, "ref-accept-late", &rejected).await;
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    // Issue 16: the contract's method and state, the Chinese term beside the state.
    assert_eq!(
        late.message(),
        "AcceptApplication is not allowed in state APPLICATION_STATE_NOT_ACCEPTED (不予受理)"
    );

    // A failed verification cannot be approved, only refused; a refused one is final.
    let name = submit(&mut sh, "ref-submit-2", fertilizer(5)).await.name;
    let early = decide(&mut sd, "ref-early", &name, pb::DecisionOutcome::Approved)
        .await
        .expect_err("not accepted yet");
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    assert!(
        early.message().starts_with(
            "DecideApplication is not allowed in state APPLICATION_STATE_SUBMITTED (已提交)"
        ),
        "{}",
        early.message()
    );
    accept(&mut sd, "ref-accept", &name).await;
    let by_window = decide(
        &mut sh,
        "ref-sh-decide",
        &name,
        pb::DecisionOutcome::Approved,
    )
    .await
    .expect_err("the window does not decide");
    assert_eq!(by_window.code(), Code::PermissionDenied, "{by_window:?}");
    start_review(&mut sd, "ref-review", &name).await;
    own_report(&mut sd, "ref-report", &name, false).await;
    let approve = decide(&mut sd, "ref-approve", &name, pb::DecisionOutcome::Approved)
        .await
        .expect_err("verification failed");
    assert_eq!(approve.code(), Code::FailedPrecondition, "{approve:?}");
    assert!(
        approve.message().contains("verification failed"),
        "{}",
        approve.message()
    );
    let refused = decide(&mut sd, "ref-refuse", &name, pb::DecisionOutcome::Refused)
        .await
        .expect("refuse");
    assert_eq!(refused.state(), pb::ApplicationState::Refused);
    assert_eq!(
        refused.decision.as_ref().expect("decision").refusal_reason,
        "实地核查不合格"
    );
    let no_licence = issue(&mut sd, "ref-issue", &name)
        .await
        .expect_err("refused");
    assert_eq!(
        no_licence.code(),
        Code::FailedPrecondition,
        "{no_licence:?}"
    );
    assert!(
        no_licence
            .message()
            .contains("APPLICATION_STATE_REFUSED (不予许可)"),
        "{}",
        no_licence.message()
    );
    let list = sd
        .list_licences(pb::ListLicencesRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(list.licences.is_empty());
    // Unknown applications are NOT_FOUND.
    let missing = accept_err(&mut sd, "ref-missing", "applications/nope").await;
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
}

async fn accept_err(c: &mut Client, rid: &str, name: &str) -> tonic::Status {
    c.accept_application(pb::AcceptApplicationRequest {
        request_id: rid.into(),
        name: name.into(),
        ..Default::default()
    })
    .await
    .expect_err("refused")
}

async fn a_commitment_licence_is_revoked_after_a_failed_check(
    app: TestApp,
    _clock: Arc<ManualClock>,
) {
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;
    // Fertilizer left the commitment route in 2024.
    let mut commitment_fertilizer = fertilizer(6);
    commitment_fertilizer.route = pb::LicensingRoute::Commitment as i32;
    let refused = sh
        .submit_application(pb::SubmitApplicationRequest {
            request_id: "com-fert".into(),
            application: Some(commitment_fertilizer),
        })
        .await
        .expect_err("fertilizer is 先核后证");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&refused), ["application.route"]);

    let name = submit(&mut sh, "com-submit", cable(7)).await.name;
    accept(&mut sd, "com-accept", &name).await;
    // Decided on the commitment, without an on-site verification first.
    let approved = decide(&mut sd, "com-approve", &name, pb::DecisionOutcome::Approved)
        .await
        .expect("approve on the commitment");
    assert_eq!(approved.state(), pb::ApplicationState::DecidedApproved);
    let licence = issue(&mut sd, "com-issue", &name)
        .await
        .expect("issue")
        .licence
        .expect("licence");
    assert_eq!(licence.number, "(鲁)XK06-001-00001");
    assert_eq!(licence.route(), pb::LicensingRoute::Commitment);
    // 30 working days after Monday.
    assert_eq!(licence.post_issue_check_due_date, day(42));

    let check = pb::PostIssueCheck {
        outcome: pb::CheckOutcome::Failed as i32,
        check_date: day(0),
        verifiers: verifiers(),
        findings: vec!["承诺的检验设备不存在".into()],
        attachments: vec![],
    };
    let by_window = sh
        .record_post_issue_check(pb::RecordPostIssueCheckRequest {
            request_id: "com-check-sh".into(),
            name: name.clone(),
            check: Some(check.clone()),
            note: String::new(),
        })
        .await
        .expect_err("the issuing province checks");
    assert_eq!(by_window.code(), Code::PermissionDenied, "{by_window:?}");
    let checked = sd
        .record_post_issue_check(pb::RecordPostIssueCheckRequest {
            request_id: "com-check".into(),
            name: name.clone(),
            check: Some(check),
            note: String::new(),
        })
        .await
        .expect("check")
        .into_inner();
    assert_eq!(
        checked.application.expect("application").state(),
        pb::ApplicationState::Revoked
    );
    let revoked = checked.licence.expect("the revoked licence");
    assert_eq!(revoked.state(), pb::LicenceState::Revoked);
    assert!(revoked.revoke_time.is_some());
    assert!(revoked.revocation_reason.contains("承诺的检验设备不存在"));
    let fetched = sh
        .get_licence(pb::GetLicenceRequest {
            name: licence.name.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .licence
        .expect("licence");
    assert_eq!(fetched.state(), pb::LicenceState::Revoked);
    let revoked_list = sh
        .list_licences(pb::ListLicencesRequest {
            state: pb::LicenceState::Revoked as i32,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .licences;
    assert_eq!(revoked_list.len(), 1);
    // The window hears of the revocation with the licence itself.
    let sh_feed = feed(&app, SHANGHAI).await;
    let last = sh_feed.last().expect("events");
    assert_eq!(last.event_type(), E::LicenceRevoked);
    assert!(matches!(
        &last.resource,
        Some(pb::feed_event::Resource::Licence(l)) if l.state() == pb::LicenceState::Revoked
    ));
    // A revoked licence is not changed any more.
    let change = sd
        .change_licence(change_request("com-change", &licence.name))
        .await
        .expect_err("revoked");
    assert_eq!(change.code(), Code::FailedPrecondition, "{change:?}");
    assert!(
        change.message().contains("APPLICATION_STATE_REVOKED"),
        "{}",
        change.message()
    );
}

fn change_request(rid: &str, licence: &str) -> pb::ChangeLicenceRequest {
    pb::ChangeLicenceRequest {
        request_id: rid.into(),
        name: licence.into(),
        holder_name: Some("山东某新材料化肥有限公司".into()),
        residence: None,
        production_address: Some("山东省济南市历城区某工业园8号".into()),
        business_licence_change_date: day(0),
        reason: "营业执照名称及地址变更".into(),
        attachments: vec![attachment("变更后营业执照")],
    }
}

/// The acceptance limit passes (deemed acceptance), then the decision limit: each is flagged
/// once, to both provinces, with two replicas' schedulers running on the same database.
async fn an_overdue_step_is_flagged_once_to_both_provinces(app: TestApp, clock: Arc<ManualClock>) {
    let replica = app.spawn_replica().await;
    let mut sh = client(&app, SHANGHAI).await;
    let name = submit(&mut sh, "due-submit", fertilizer(8)).await.name;
    let on_time = sh
        .list_applications(pb::ListApplicationsRequest {
            overdue: Some(true),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(on_time.applications.is_empty());

    // Tuesday of the next week: the 5 working days passed without a notice (行政许可法 art. 32).
    clock.set(morning_of(8));
    // Both replicas' schedulers run a round at the same moment.
    app.tick_schedulers();
    replica.tick_schedulers();
    let mut sh_stream = subscribe(&app, SHANGHAI).await;
    let mut sd_stream = subscribe(&replica, SHANDONG).await;
    let submitted = next_event(&mut sd_stream).await;
    assert_eq!(
        event_summary(&submitted),
        (E::ApplicationSubmitted, K::Submitted, 1)
    );
    let mut cursors = Vec::new();
    for stream in [&mut sh_stream, &mut sd_stream] {
        let flagged = next_event(stream).await;
        assert_eq!(
            event_summary(&flagged),
            (E::ApplicationStepOverdue, K::OverdueFlagged, 2)
        );
        assert!(flagged.actor_agency.is_empty());
        let deemed = next_event(stream).await;
        assert_eq!(
            event_summary(&deemed),
            (E::ApplicationUpdated, K::Accepted, 3)
        );
        match &deemed.resource {
            Some(pb::feed_event::Resource::Application(a)) => {
                assert_eq!(a.state(), pb::ApplicationState::Accepted);
                assert_eq!(a.accept_date, day(0));
                match a.history[1].detail.as_ref() {
                    Some(pb::application_step::Detail::Deadline(d)) => {
                        assert_eq!(d.kind(), pb::ApplicationDeadlineKind::Acceptance);
                        assert_eq!(d.due_date, day(7));
                    }
                    other => panic!("deadline detail: {other:?}"),
                }
            }
            other => panic!("application: {other:?}"),
        }
        cursors.push(deemed.cursor);
    }

    // Tuesday of the fifth week: the decision limit (its Monday) passed. Fresh subscriptions (the
    // tokens of the old ones expired with the clock's jump) continue where those stopped.
    clock.set(morning_of(29));
    app.tick_schedulers();
    replica.tick_schedulers();
    let mut sh_stream = subscribe_after(&app, SHANGHAI, Some(cursors[0])).await;
    let mut sd_stream = subscribe_after(&replica, SHANDONG, Some(cursors[1])).await;
    for stream in [&mut sh_stream, &mut sd_stream] {
        let flagged = next_event(stream).await;
        assert_eq!(
            event_summary(&flagged),
            (E::ApplicationStepOverdue, K::OverdueFlagged, 4)
        );
        match &flagged.resource {
            Some(pb::feed_event::Resource::Application(a)) => {
                assert!(a.overdue);
                let d = a
                    .deadlines
                    .iter()
                    .find(|d| d.kind() == pb::ApplicationDeadlineKind::Decision)
                    .expect("decision");
                assert!(d.overdue && !d.met);
            }
            other => panic!("application: {other:?}"),
        }
    }
    // New tokens: the old ones expired with the clock's jump.
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&replica, SHANDONG).await;
    let overdue = sh
        .list_applications(pb::ListApplicationsRequest {
            overdue: Some(true),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(overdue.applications.len(), 1);
    assert_eq!(overdue.applications[0].name, name);
    // The next step is the next event on both sides: nothing was flagged twice, by either
    // replica, though both schedulers ran again.
    app.tick_schedulers();
    replica.tick_schedulers();
    start_review(&mut sd, "due-review", &name).await;
    let next = next_event(&mut sh_stream).await;
    assert_eq!(
        event_summary(&next),
        (E::ApplicationUpdated, K::ReviewStarted, 5)
    );
    let history = sd
        .get_application(pb::GetApplicationRequest { name: name.clone() })
        .await
        .expect("get")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(
        kinds(&history),
        [
            K::Submitted,
            K::OverdueFlagged,
            K::Accepted,
            K::OverdueFlagged,
            K::ReviewStarted
        ]
    );
    // The one extension moves the limit by 10 working days: no longer overdue.
    let extended = sd
        .extend_time_limit(pb::ExtendTimeLimitRequest {
            request_id: "due-extend".into(),
            name: name.clone(),
            extension: Some(pb::TimeLimitExtension {
                approval_reference: "鲁市监许延〔2024〕3号".into(),
                reason: "专家评审".into(),
                extension_days: 0,
            }),
        })
        .await
        .expect("extend")
        .into_inner()
        .application
        .expect("application");
    assert!(extended.time_limit_extended);
    assert!(!extended.overdue);
    let again = sd
        .extend_time_limit(pb::ExtendTimeLimitRequest {
            request_id: "due-extend-2".into(),
            name: name.clone(),
            extension: Some(pb::TimeLimitExtension {
                approval_reference: "x".into(),
                reason: "y".into(),
                extension_days: 0,
            }),
        })
        .await
        .expect_err("once only");
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    let sh_overdue = feed(&app, SHANGHAI)
        .await
        .iter()
        .filter(|e| e.event_type() == E::ApplicationStepOverdue)
        .count();
    assert_eq!(sh_overdue, 2);
    // Each of the scheduler's two writes left its leaf in the exchange log (sequenced within
    // the merge delay the receipts promise).
    let filter = yrd_store::LeafFilter {
        method: Some("yrd-exchange/LicensingScheduler/MarkOverdue".into()),
        resource: Some(name.clone()),
        ..Default::default()
    };
    let leaves =
        fixtures::sequenced_leaves(&app, &filter, 2, std::time::Duration::from_secs(15)).await;
    assert!(
        leaves
            .iter()
            .all(|l| l.leaf.agency.is_empty() && l.leaf.code == 0),
        "scheduler leaves: {leaves:?}"
    );
}

/// Jiangsu, Zhejiang and Anhui are not part of Hu-Lu processing: every method refuses them,
/// with empty messages and with real requests naming a real application and licence.
async fn other_provinces_are_refused_on_every_method(app: TestApp, _clock: Arc<ManualClock>) {
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;
    let name = approved(&mut sh, &mut sd, "out", 9).await;
    let licence = issue(&mut sd, "out-issue", &name)
        .await
        .expect("issue")
        .licence
        .expect("licence");
    let methods: Vec<&str> = yrd_domain::roles::METHOD_ROLES
        .iter()
        .map(|(path, _)| *path)
        .filter(|p| p.starts_with("/yrd.exchange.v1.LicensingService/"))
        .collect();
    assert_eq!(methods.len(), 20);
    for agency in [JIANGSU, yrd_e2e::ZHEJIANG, ANHUI] {
        let session = app.session(agency, Profile::System).await;
        for path in &methods {
            let status = call_path(&session.channel, Some(&session.token), path)
                .await
                .expect_err("refused");
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{agency} {path}: {status:?}"
            );
            assert!(status.message().contains("pilot"), "{}", status.message());
        }
        let mut c = LicensingServiceClient::new(session.authed());
        let get = c
            .get_application(pb::GetApplicationRequest { name: name.clone() })
            .await
            .expect_err("not theirs");
        assert_eq!(get.code(), Code::PermissionDenied);
        let get = c
            .get_licence(pb::GetLicenceRequest {
                name: licence.name.clone(),
            })
            .await
            .expect_err("not theirs");
        assert_eq!(get.code(), Code::PermissionDenied);
        let list = c
            .list_licences(pb::ListLicencesRequest::default())
            .await
            .expect_err("not theirs");
        assert_eq!(list.code(), Code::PermissionDenied);
        let change = c
            .change_licence(change_request("out-change", &licence.name))
            .await
            .expect_err("not theirs");
        assert_eq!(change.code(), Code::PermissionDenied);
        let confirm = c
            .confirm_conditions(pb::ConfirmConditionsRequest {
                request_id: "out-conditions".into(),
                name: name.clone(),
                note: String::new(),
            })
            .await
            .expect_err("not theirs");
        assert_eq!(confirm.code(), Code::PermissionDenied);
        let submit = c
            .submit_application(pb::SubmitApplicationRequest {
                request_id: "out-submit".into(),
                application: Some(fertilizer(10)),
            })
            .await
            .expect_err("not in the pilot");
        assert_eq!(submit.code(), Code::PermissionDenied);
    }
    // A production address outside the pilot cannot be routed through it.
    let mut jiangsu_made = fertilizer(11);
    jiangsu_made
        .applicant
        .as_mut()
        .expect("applicant")
        .production_region_code = "320106".into();
    let outside = sh
        .submit_application(pb::SubmitApplicationRequest {
            request_id: "out-region".into(),
            application: Some(jiangsu_made),
        })
        .await
        .expect_err("Jiangsu issues its own");
    assert_eq!(outside.code(), Code::FailedPrecondition, "{outside:?}");
    // The window cannot submit for its own province either.
    let mut shanghai_made = fertilizer(12);
    shanghai_made
        .applicant
        .as_mut()
        .expect("applicant")
        .production_region_code = "310115".into();
    let own = sh
        .submit_application(pb::SubmitApplicationRequest {
            request_id: "out-own".into(),
            application: Some(shanghai_made),
        })
        .await
        .expect_err("not joint processing");
    assert_eq!(own.code(), Code::FailedPrecondition, "{own:?}");
    for agency in [JIANGSU, yrd_e2e::ZHEJIANG, ANHUI] {
        assert!(feed(&app, agency).await.is_empty(), "{agency}");
    }
}

/// Issue 16 item 10: a window reads the licensing catalogue (products, units, routes and time
/// limits with their units) and submits what it found there; the other provinces may not read
/// it; paging and bad fields behave as on the other lists.
async fn a_window_reads_the_catalogue_before_it_submits(app: TestApp, _clock: Arc<ManualClock>) {
    let mut sh = client(&app, SHANGHAI).await;
    let catalogue = sh
        .list_catalogue_products(pb::ListCatalogueProductsRequest::default())
        .await
        .expect("list the catalogue")
        .into_inner();
    assert!(catalogue.next_page_token.is_empty());
    let codes: Vec<&str> = catalogue
        .catalogue_products
        .iter()
        .map(|p| p.catalogue_code.as_str())
        .collect();
    assert_eq!(codes, ["06-001", "13-001"]);
    let fertilizer_entry = &catalogue.catalogue_products[1];
    assert_eq!(fertilizer_entry.name, "catalogueProducts/13-001");
    assert_eq!(fertilizer_entry.display_name, "化肥");
    let units: Vec<(&str, &str)> = fertilizer_entry
        .units
        .iter()
        .map(|u| (u.code.as_str(), u.display_name.as_str()))
        .collect();
    assert_eq!(
        units,
        [
            ("13-001-01", "复混肥料"),
            ("13-001-02", "掺混肥料"),
            ("13-001-03", "有机-无机复混肥料"),
        ]
    );
    // Fertilizer takes only the ordinary route (先核后证) since the 2024 catalogue decision.
    assert_eq!(
        fertilizer_entry.routes().collect::<Vec<_>>(),
        [pb::LicensingRoute::Ordinary]
    );
    let limits: Vec<(pb::ApplicationDeadlineKind, u32, bool)> = fertilizer_entry
        .time_limits
        .iter()
        .map(|l| (l.kind(), l.days, l.working_days))
        .collect();
    assert_eq!(
        limits,
        [
            (pb::ApplicationDeadlineKind::Acceptance, 5, true),
            (pb::ApplicationDeadlineKind::Verification, 30, false),
            (pb::ApplicationDeadlineKind::Decision, 20, true),
            (pb::ApplicationDeadlineKind::Issuance, 10, true),
        ]
    );
    let cable_entry = &catalogue.catalogue_products[0];
    assert_eq!(cable_entry.display_name, "电线电缆");
    assert_eq!(
        cable_entry.routes().collect::<Vec<_>>(),
        [pb::LicensingRoute::Ordinary, pb::LicensingRoute::Commitment]
    );
    assert!(
        cable_entry
            .time_limits
            .iter()
            .any(|l| l.kind() == pb::ApplicationDeadlineKind::PostIssueCheck
                && l.days == 30
                && l.working_days)
    );

    // What the catalogue lists is what the window may submit: fertilizer, its second unit.
    let mut from_catalogue = fertilizer(30);
    from_catalogue.product = Some(pb::LicensedProduct {
        catalogue_code: fertilizer_entry.catalogue_code.clone(),
        name: String::new(),
        units: vec![pb::ProductUnit {
            code: fertilizer_entry.units[1].code.clone(),
            name: fertilizer_entry.units[1].display_name.clone(),
            specifications: vec![],
        }],
    });
    let submitted = submit(&mut sh, "cat-submit", from_catalogue).await;
    assert_eq!(submitted.state(), pb::ApplicationState::Submitted);
    assert_eq!(submitted.product.as_ref().expect("product").name, "化肥");

    // The issuing province reads the same catalogue; the route filter and pages.
    let mut sd = client(&app, SHANDONG).await;
    let commitment = sd
        .list_catalogue_products(pb::ListCatalogueProductsRequest {
            route: pb::LicensingRoute::Commitment as i32,
            ..Default::default()
        })
        .await
        .expect("commitment products")
        .into_inner();
    assert_eq!(commitment.catalogue_products.len(), 1);
    assert_eq!(commitment.catalogue_products[0].catalogue_code, "06-001");
    let first = sd
        .list_catalogue_products(pb::ListCatalogueProductsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(first.catalogue_products.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = sd
        .list_catalogue_products(pb::ListCatalogueProductsRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("second page")
        .into_inner();
    assert_eq!(second.catalogue_products[0].catalogue_code, "13-001");
    assert!(second.next_page_token.is_empty());
    let bad = sd
        .list_catalogue_products(pb::ListCatalogueProductsRequest {
            route: 7,
            page_size: -1,
            page_token: "not-a-token".into(),
        })
        .await
        .expect_err("bad fields");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&bad), ["route", "page_size", "page_token"]);

    // Only the pilot provinces read it.
    for agency in [JIANGSU, ANHUI] {
        let session = app.session(agency, Profile::System).await;
        let refused = LicensingServiceClient::new(session.authed())
            .list_catalogue_products(pb::ListCatalogueProductsRequest::default())
            .await
            .expect_err("not in the pilot");
        assert_eq!(refused.code(), Code::PermissionDenied, "{agency}");
        assert!(refused.message().contains("pilot"), "{}", refused.message());
    }
}

async fn a_business_licence_change_changes_the_licence(app: TestApp, _clock: Arc<ManualClock>) {
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;
    let name = approved(&mut sh, &mut sd, "chg", 13).await;
    let licence = issue(&mut sd, "chg-issue", &name)
        .await
        .expect("issue")
        .licence
        .expect("licence");
    let by_window = sh
        .change_licence(change_request("chg-sh", &licence.name))
        .await
        .expect_err("the issuing province changes licences");
    assert_eq!(by_window.code(), Code::PermissionDenied, "{by_window:?}");
    let response = sd
        .change_licence(change_request("chg-1", &licence.name))
        .await
        .expect("change")
        .into_inner();
    assert_receipt(response.receipt.as_ref());
    let changed = response.licence.expect("licence");
    assert_eq!(changed.number, licence.number);
    let holder = changed.holder.as_ref().expect("holder");
    assert_eq!(holder.name, "山东某新材料化肥有限公司");
    assert_eq!(holder.production_address, "山东省济南市历城区某工业园8号");
    assert_eq!(holder.residence, "山东省济南市历下区某路1号");
    let change = &changed.changes[0];
    assert_eq!(change.seq, 1);
    assert_eq!(change.previous_holder_name, "山东某化肥有限公司");
    assert_eq!(change.new_holder_name, "山东某新材料化肥有限公司");
    assert_eq!(
        change.previous_production_address,
        "山东省济南市历城区某工业园2号"
    );
    assert!(change.previous_residence.is_empty() && change.new_residence.is_empty());
    assert_eq!(change.agency, "agencies/370000-AMR");
    assert_eq!(change.business_licence_change_date, day(0));

    // Visible to the window: in its feed, by Get and by List.
    let last = feed(&app, SHANGHAI).await.pop().expect("events");
    assert_eq!(last.event_type(), E::LicenceChanged);
    assert_eq!(last.resource_name, licence.name);
    assert_eq!(last.resource_version, 1);
    assert!(matches!(&last.resource, Some(pb::feed_event::Resource::Licence(l)) if *l == changed));
    let fetched = sh
        .get_licence(pb::GetLicenceRequest {
            name: licence.name.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .licence
        .expect("licence");
    assert_eq!(fetched, changed);
    let by_holder = sh
        .list_licences(pb::ListLicencesRequest {
            holder_uscc: uscc("370102", 13),
            issuing_agency: "agencies/370000-AMR".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .licences;
    assert_eq!(by_holder, std::slice::from_ref(&changed));
    let application = sh
        .get_application(pb::GetApplicationRequest { name })
        .await
        .expect("get")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(kinds(&application).last(), Some(&K::LicenceChanged));
    // Only the residence changes this time; the change is numbered 2.
    let mut residence = change_request("chg-2", &licence.name);
    residence.holder_name = None;
    residence.production_address = None;
    residence.residence = Some("山东省济南市历下区新路9号".into());
    let second = sd
        .change_licence(residence)
        .await
        .expect("change")
        .into_inner()
        .licence
        .expect("licence");
    assert_eq!(second.changes.len(), 2);
    assert_eq!(
        second.changes[1].previous_residence,
        "山东省济南市历下区某路1号"
    );
    assert_eq!(
        second.holder.as_ref().expect("holder").name,
        "山东某新材料化肥有限公司"
    );
    let unknown = sd
        .change_licence(change_request("chg-3", "licences/(鲁)XK13-001-09999"))
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
}

type Mutation = fn(&mut pb::SubmitApplicationRequest);

fn app_of(r: &mut pb::SubmitApplicationRequest) -> &mut pb::LicenceApplication {
    r.application.as_mut().expect("application")
}

fn applicant_of(r: &mut pb::SubmitApplicationRequest) -> &mut pb::Enterprise {
    app_of(r).applicant.as_mut().expect("applicant")
}

#[rustfmt::skip]
const INVALID: &[(&str, Mutation, &str)] = &[
    ("no request id", |r| r.request_id.clear(), "request_id"),
    ("no enterprise name", |r| applicant_of(r).name.clear(), "application.applicant.name"),
    ("USCC check character", |r| applicant_of(r).uscc = "91350100M000100Y44".into(), "application.applicant.uscc"),
    ("no production address", |r| applicant_of(r).production_address.clear(), "application.applicant.production_address"),
    ("unknown region", |r| applicant_of(r).production_region_code = "990000".into(), "application.applicant.production_region_code"),
    ("product outside the catalogue", |r| app_of(r).product.as_mut().expect("p").catalogue_code = "99-999".into(), "application.product.catalogue_code"),
    ("no unit", |r| app_of(r).product.as_mut().expect("p").units.clear(), "application.product.units"),
    ("unit of another product", |r| app_of(r).product.as_mut().expect("p").units[0].code = "06-001-01".into(), "application.product.units[0].code"),
    ("route unspecified", |r| app_of(r).route = 0, "application.route"),
    ("no materials", |r| app_of(r).materials.clear(), "application.materials"),
    ("bad digest", |r| app_of(r).materials[1].sha256 = "XYZ".into(), "application.materials[1].sha256"),
    ("empty file", |r| app_of(r).materials[0].size_bytes = 0, "application.materials[0].size_bytes"),
    ("name too long", |r| applicant_of(r).name = "肥".repeat(201), "application.applicant.name"),
];

async fn each_invalid_input_is_named_and_nothing_is_stored(app: TestApp, _clock: Arc<ManualClock>) {
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;
    let mut failures = Vec::new();
    for (n, (case, mutate, field)) in INVALID.iter().enumerate() {
        let mut request = pb::SubmitApplicationRequest {
            request_id: format!("bad-{n}"),
            application: Some(fertilizer(14)),
        };
        mutate(&mut request);
        match sh.submit_application(request).await {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(status) => {
                let fields = bad_fields(&status);
                if status.code() != Code::InvalidArgument || fields != [*field] {
                    failures.push(format!(
                        "{case}: expected INVALID_ARGUMENT naming [{field}], got {:?} {fields:?}: {}",
                        status.code(),
                        status.message()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // Several bad fields at once are all named.
    let mut request = pb::SubmitApplicationRequest {
        request_id: String::new(),
        application: Some(fertilizer(14)),
    };
    applicant_of(&mut request).uscc = "123".into();
    app_of(&mut request).materials.clear();
    let status = sh.submit_application(request).await.expect_err("bad");
    assert_eq!(
        bad_fields(&status),
        [
            "request_id",
            "application.applicant.uscc",
            "application.materials"
        ]
    );

    // A step's fields too: a verification report with one verifier, no outcome and a report
    // dated before the visit.
    let name = submit(&mut sh, "bad-ok", fertilizer(14)).await.name;
    accept(&mut sd, "bad-accept", &name).await;
    start_review(&mut sd, "bad-review", &name).await;
    let mut bad = report(true);
    bad.verifiers.truncate(1);
    bad.outcome = 0;
    bad.report_date = day(-3);
    let status = sd
        .submit_verification_report(pb::SubmitVerificationReportRequest {
            request_id: "bad-report".into(),
            name: "results/x".into(),
            report: Some(bad),
            note: String::new(),
        })
        .await
        .expect_err("bad");
    assert_eq!(
        bad_fields(&status),
        [
            "name",
            "report.verifiers",
            "report.outcome",
            "report.report_date"
        ]
    );
    let status = decide(
        &mut sd,
        "bad-decide",
        &name,
        pb::DecisionOutcome::Unspecified,
    )
    .await
    .expect_err("bad");
    assert_eq!(bad_fields(&status), ["decision.outcome"]);
    let mut conditions = decision(pb::DecisionOutcome::ApprovedWithConditions);
    conditions.conditions.clear();
    conditions.condition_deadline = day(-3);
    let status = sd
        .decide_application(pb::DecideApplicationRequest {
            request_id: "bad-cond".into(),
            name: name.clone(),
            decision: Some(conditions),
            note: String::new(),
        })
        .await
        .expect_err("bad");
    assert_eq!(
        bad_fields(&status),
        ["decision.conditions", "decision.condition_deadline"]
    );
    let status = sd
        .delegate_verification(pb::DelegateVerificationRequest {
            request_id: "bad-delegate".into(),
            name: name.clone(),
            delegation: Some(pb::VerificationDelegation {
                delegate_agency: "agencies/370000-AMR".into(),
                due_date: String::new(),
            }),
            note: String::new(),
        })
        .await
        .expect_err("only the other province");
    assert_eq!(bad_fields(&status), ["delegation.delegate_agency"]);

    // Nothing of the refused calls was stored: one application, two steps taken.
    let listed = sh
        .list_applications(pb::ListApplicationsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .applications;
    assert_eq!(listed.len(), 1);
    let got = sh
        .get_application(pb::GetApplicationRequest { name })
        .await
        .expect("get")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(kinds(&got), [K::Submitted, K::Accepted, K::ReviewStarted]);
    assert_eq!(feed(&app, SHANDONG).await.len(), 1);
    // The refused request id is free for a valid request: a refusal claims nothing.
    submit(&mut sh, "bad-0", fertilizer(15)).await;
    // Bad list filters are named too.
    let status = sh
        .list_applications(pb::ListApplicationsRequest {
            applicant_uscc: "nope".into(),
            page_token: "???".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad");
    assert_eq!(bad_fields(&status), ["applicant_uscc", "page_token"]);
}

/// Eight approved applications issued at once, half through a second replica: eight different
/// numbers, 00001 to 00008.
async fn concurrent_issues_never_share_a_number(app: TestApp, _clock: Arc<ManualClock>) {
    let replica = app.spawn_replica().await;
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;
    let mut names = Vec::new();
    for i in 0..8 {
        names.push(approved(&mut sh, &mut sd, &format!("con{i}"), 20 + i).await);
    }
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut c = if i % 2 == 0 {
            client(&app, SHANDONG).await
        } else {
            client(&replica, SHANDONG).await
        };
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            issue(&mut c, &format!("con-issue-{i}"), &name)
                .await
                .expect("issue")
                .licence
                .expect("licence")
                .number
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.expect("task"));
    }
    numbers.sort();
    let expected: Vec<String> = (1..=8).map(|n| format!("(鲁)XK13-001-{n:05}")).collect();
    assert_eq!(numbers, expected);
    // Paged newest first, eight licences in three pages.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = sh
            .list_licences(pb::ListLicencesRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        seen.extend(page.licences.into_iter().map(|l| l.number));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    seen.sort();
    assert_eq!(seen, expected);
}
