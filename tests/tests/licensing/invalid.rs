//! Invalid inputs: each bad field is named, and nothing of a refused call is stored.

use std::sync::Arc;

use yrd_domain::clock::ManualClock;
use yrd_e2e::fixtures::{self, stored_feed};
use yrd_e2e::{SHANDONG, SHANGHAI, TestApp, violated_fields};
use yrd_proto::v1::{self as pb, ApplicationStepKind as K};

use crate::support::*;

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

pub async fn each_invalid_input_is_named_and_nothing_is_stored(
    app: TestApp,
    _clock: Arc<ManualClock>,
) {
    let mut sh = client(&app, SHANGHAI).await;
    let mut sd = client(&app, SHANDONG).await;
    let mut failures = Vec::new();
    for (n, (case, mutate, field)) in INVALID.iter().enumerate() {
        let mut request = pb::SubmitApplicationRequest {
            request_id: format!("bad-{n}"),
            application: Some(fertilizer(14)),
        };
        mutate(&mut request);
        failures.extend(fixtures::refused_for_field(
            case,
            field,
            sh.submit_application(request).await,
        ));
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
        violated_fields(&status),
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
        violated_fields(&status),
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
    assert_eq!(violated_fields(&status), ["decision.outcome"]);
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
        violated_fields(&status),
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
    assert_eq!(violated_fields(&status), ["delegation.delegate_agency"]);

    // Nothing of the refused calls was stored: one application, two steps taken.
    let listed = sh
        .list_applications(pb::ListApplicationsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .applications;
    assert_eq!(listed.len(), 1);
    let got = sh.application(&name).await;
    assert_eq!(kinds(&got), [K::Submitted, K::Accepted, K::ReviewStarted]);
    assert_eq!(stored_feed(&app, SHANDONG).await.len(), 1);
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
    assert_eq!(violated_fields(&status), ["applicant_uscc", "page_token"]);
}
