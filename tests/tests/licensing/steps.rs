//! The supplement round trip with idempotent retries, and refusals that follow the state
//! machine.

use std::sync::Arc;

use tonic::Code;
use yrd_domain::clock::ManualClock;
use yrd_e2e::fixtures::assert_refused;
use yrd_e2e::{SHANDONG, SHANGHAI, TestApp};
use yrd_proto::v1::{self as pb, ApplicationStepKind as K, EventType as E};

use crate::support::*;

pub async fn a_supplement_round_trip_and_idempotent_retries(
    app: TestApp,
    _clock: Arc<ManualClock>,
) {
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
    let asked = applied(
        sd.request_supplement(ask(
            "sup-ask",
            vec!["厂区平面图".into(), "主要生产设备清单".into()],
        ))
        .await,
        "ask",
    );
    assert_eq!(asked.state(), pb::ApplicationState::SupplementRequested);
    assert_eq!(asked.missing_items, ["厂区平面图", "主要生产设备清单"]);
    // The same request again replays the first answer.
    let replay = applied(
        sd.request_supplement(ask(
            "sup-ask",
            vec!["厂区平面图".into(), "主要生产设备清单".into()],
        ))
        .await,
        "replay",
    );
    assert_eq!(replay, asked);

    let supplement = |rid: &str| pb::SupplementApplicationRequest {
        request_id: rid.into(),
        name: name.clone(),
        supplement: Some(pb::Supplement {
            materials: vec![pdf_named("厂区平面图"), pdf_named("设备清单")],
        }),
        note: "申请人补正".into(),
    };
    let by_issuer = sd
        .supplement_application(supplement("sup-in-sd"))
        .await
        .expect_err("the window hands in supplements");
    assert_eq!(by_issuer.code(), Code::PermissionDenied, "{by_issuer:?}");
    let back = applied(
        sh.supplement_application(supplement("sup-in")).await,
        "supplement",
    );
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
    assert_eq!(
        feed_summary(&app, SHANDONG).await,
        [
            (E::ApplicationSubmitted, K::Submitted, 1),
            (E::ApplicationUpdated, K::Supplemented, 3),
        ]
    );
    assert_eq!(
        feed_summary(&app, SHANGHAI).await,
        [
            (E::ApplicationUpdated, K::SupplementRequested, 2),
            (E::ApplicationUpdated, K::Accepted, 4),
        ]
    );
}

pub async fn refusals_follow_the_state_machine(app: TestApp, _clock: Arc<ManualClock>) {
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;

    // Not accepted (不予受理): final.
    let rejected = submit(&mut sh, "ref-submit-1", fertilizer(4)).await.name;
    let not_accepted = applied(
        sd.reject_application(pb::RejectApplicationRequest {
            request_id: "ref-reject".into(),
            name: rejected.clone(),
            rejection: Some(pb::Rejection {
                reason: "不属于生产许可证管理目录".into(),
            }),
        })
        .await,
        "reject",
    );
    assert_eq!(not_accepted.state(), pb::ApplicationState::NotAccepted);
    let late = accept_err(&mut sd, "ref-accept-late", &rejected).await;
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    // The contract's method and state, the Chinese term beside the state.
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
    assert_refused(&approve, Code::FailedPrecondition, "verification failed");
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
    assert_refused(
        &no_licence,
        Code::FailedPrecondition,
        "APPLICATION_STATE_REFUSED (不予许可)",
    );
    assert!(
        sd.licences(pb::ListLicencesRequest::default())
            .await
            .is_empty()
    );
    // Unknown applications are NOT_FOUND.
    let missing = accept_err(&mut sd, "ref-missing", "applications/nope").await;
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
}

pub async fn accept_err(c: &mut Client, rid: &str, name: &str) -> tonic::Status {
    c.accept_application(pb::AcceptApplicationRequest {
        request_id: rid.into(),
        name: name.into(),
        ..Default::default()
    })
    .await
    .expect_err("refused")
}
