//! Applications taken to a licence: the main story with a conditional licence, the
//! commitment route revoked after a failed check, and concurrent issuance.

use std::sync::Arc;

use tonic::Code;
use yrd_domain::clock::ManualClock;
use yrd_e2e::fixtures::{assert_receipt, assert_refused, stored_feed};
use yrd_e2e::{ANHUI, JIANGSU, SHANDONG, SHANGHAI, TestApp, violated_fields};
use yrd_proto::v1::{self as pb, ApplicationStepKind as K, EventType as E};

use crate::support::*;

/// The issue's main story, with both provinces' live subscribers watching.
pub async fn a_shandong_producer_applies_in_shanghai_and_gets_a_conditional_licence(
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
    let delegated = applied(
        sd.delegate_verification(pb::DelegateVerificationRequest {
            request_id: "main-delegate".into(),
            name: name.clone(),
            delegation: Some(pb::VerificationDelegation {
                delegate_agency: "agencies/310000-SAMR".into(),
                due_date: String::new(),
            }),
            note: "请核查原料仓库".into(),
        })
        .await,
        "delegate",
    );
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

    let reported = applied(
        sh.submit_verification_report(pb::SubmitVerificationReportRequest {
            request_id: "main-report".into(),
            name: name.clone(),
            report: Some(report(true)),
            note: String::new(),
        })
        .await,
        "the delegate reports",
    );
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
        let got = c.application(&name).await;
        assert_eq!(kinds(&got), expected);
        assert_eq!(got.state(), pb::ApplicationState::LicenceIssued);
        assert_eq!(got.licence, licence.name);
        assert_eq!(got.history[0].agency, "agencies/310000-SAMR");
        assert_eq!(got.history[1].agency, "agencies/370000-AMR");
        let fetched = c.licence(&licence.name).await;
        assert_eq!(fetched, licence);
    }

    // Every step reached the other province's live subscriber, in order, carrying the
    // application with its history; together the two feeds show every step once.
    let sd_seen = next_events(&mut sd_stream, 2).await;
    assert_eq!(
        sd_seen.iter().map(event_summary).collect::<Vec<_>>(),
        [
            (E::ApplicationSubmitted, K::Submitted, 1),
            (E::ApplicationUpdated, K::VerificationReported, 5),
        ]
    );
    let sh_seen = next_events(&mut sh_stream, 6).await;
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
    let met = applied(
        sd.confirm_conditions(confirm("main-conditions")).await,
        "confirm",
    );
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
        assert!(stored_feed(&app, agency).await.is_empty(), "{agency}");
    }
}

pub async fn a_commitment_licence_is_revoked_after_a_failed_check(
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
    assert_eq!(violated_fields(&refused), ["application.route"]);

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
    let fetched = sh.licence(&licence.name).await;
    assert_eq!(fetched.state(), pb::LicenceState::Revoked);
    let revoked_only = pb::ListLicencesRequest {
        state: pb::LicenceState::Revoked as i32,
        ..Default::default()
    };
    assert_eq!(sh.licences(revoked_only).await.len(), 1);
    // The window hears of the revocation with the licence itself.
    let sh_feed = stored_feed(&app, SHANGHAI).await;
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
    assert_refused(
        &change,
        Code::FailedPrecondition,
        "APPLICATION_STATE_REVOKED",
    );
}

/// Eight approved applications issued at once, half through a second replica: eight different
/// numbers, 00001 to 00008.
pub async fn concurrent_issues_never_share_a_number(app: TestApp, _clock: Arc<ManualClock>) {
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
