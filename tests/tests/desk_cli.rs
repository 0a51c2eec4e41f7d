//! `yrd referral …`, `yrd application …` and `yrd feed tail` against a real exchange on both
//! stores, each command built exactly as typed (`Cli::try_parse_from`) and run in-process as
//! the officer of the agency whose dev certificate it presents: every step of both services
//! the scenarios reach, the lists' deadlines and overdue flags, and refusals printed as the API
//! gives them (code, message, each field violation).

use clap::Parser as _;
use serde_json::Value;
use yrd_domain::Profile;
use yrd_e2e::fixtures::{non_conforming_toy, uscc};
use yrd_e2e::{ANHUI, JIANGSU, SHANDONG, SHANGHAI, StoreKind, TestApp, spawn_for_deadlines};
use yrd_gateway::cli::{Cli, Command, desk};
use yrd_proto::v1 as pb;

/// Runs `yrd <line>` as `agency`'s system against `app`; answers what it printed, or the error
/// as the binary prints it.
async fn yrd(app: &TestApp, agency: &str, line: &str) -> Result<String, String> {
    let data_dir = app.pki_dir.parent().expect("pki in the data folder");
    let mut words = vec!["yrd".to_owned()];
    words.extend(shlex::split(line).unwrap_or_else(|| panic!("not a shell line: {line}")));
    words.extend([
        "--server".to_owned(),
        app.addr.to_string(),
        "--data-dir".to_owned(),
        data_dir.to_str().expect("UTF-8").to_owned(),
        "--agency-cert".to_owned(),
        agency.to_owned(),
    ]);
    let command = Cli::try_parse_from(&words)
        .unwrap_or_else(|e| panic!("yrd {line}: {e}"))
        .command;
    let mut out = Vec::new();
    let outcome = match command {
        Command::Referral(c) => desk::referral::run(c, &mut out).await,
        Command::Application(c) => desk::application::run(c, &mut out).await,
        Command::Feed(c) => {
            let stop = tokio::time::sleep(std::time::Duration::from_secs(2));
            desk::feed::run(c, &mut out, stop).await
        }
        other => panic!("not a desk command: {other:?}"),
    };
    let printed = String::from_utf8(out).expect("UTF-8");
    outcome.map(|()| printed).map_err(|e| format!("yrd: {e:#}"))
}

/// [`yrd`], which must succeed.
async fn ok(app: &TestApp, agency: &str, line: &str) -> String {
    yrd(app, agency, line)
        .await
        .unwrap_or_else(|e| panic!("{agency}: yrd {line}\n{e}"))
}

/// [`yrd`], which must be refused with `code`; answers the printed refusal.
async fn refused(app: &TestApp, agency: &str, line: &str, code: &str) -> String {
    let error = yrd(app, agency, line)
        .await
        .expect_err(&format!("{agency}: yrd {line} should be refused"));
    assert!(error.contains(&format!("failed: {code}: ")), "{error}");
    error
}

fn has(printed: &str, text: &str) {
    assert!(printed.contains(text), "no {text:?} in:\n{printed}");
}

/// Publishes the sample toy as `publisher` against a producer in `producer_region`; answers
/// the referral it opened (its id).
async fn referral(app: &TestApp, publisher: &str, producer_region: &str, tag: &str) -> String {
    let published = app
        .client(publisher, Profile::System)
        .await
        .spot_check()
        .publish_result(pb::PublishResultRequest {
            request_id: tag.into(),
            result: Some(non_conforming_toy(
                producer_region,
                "310104",
                app.clock.now(),
            )),
        })
        .await
        .expect("publish")
        .into_inner();
    assert_eq!(published.opened_referrals.len(), 1, "{published:?}");
    published.opened_referrals[0]
        .trim_start_matches("referrals/")
        .to_owned()
}

async fn every_referral_step(app: TestApp) {
    let id = referral(&app, SHANGHAI, "370102", "desk-1").await;

    // Shandong's desk: the new referral with its acknowledgement deadline, as JSON too.
    let listed = ok(&app, SHANDONG, "referral list --role handling").await;
    has(&listed, &id);
    has(&listed, "opened (已移送)");
    has(&listed, "acknowledgement");
    has(&listed, "1 referral(s), 0 overdue");
    let json: Value = serde_json::from_str(&ok(&app, SHANDONG, "referral list --json").await)
        .expect("a JSON array");
    let next = &json[0]["next_deadline"];
    assert_eq!(next["kind"], "acknowledgement", "{json}");
    assert!(
        next["due"].as_str().is_some_and(|d| d.starts_with("due ")),
        "{json}"
    );

    // A step the state does not allow is refused as the API refuses it, naming the state.
    let error = refused(
        &app,
        SHANDONG,
        &format!("referral start {id}"),
        "FAILED_PRECONDITION",
    )
    .await;
    has(&error, "REFERRAL_STATE_OPENED (已移送)");
    // A step that is not the caller's.
    refused(
        &app,
        ANHUI,
        &format!("referral acknowledge {id}"),
        "PERMISSION_DENIED",
    )
    .await;

    ok(
        &app,
        SHANDONG,
        &format!("referral acknowledge {id} --note SD-1"),
    )
    .await;
    ok(&app, SHANDONG, &format!("referral start {id}")).await;
    // A field the API requires is named with its reason, one violation per line.
    let error = refused(
        &app,
        SHANDONG,
        &format!("referral measure {id} --kind case-filed"),
        "INVALID_ARGUMENT",
    )
    .await;
    has(&error, "\n  measure.decision_number: ");
    let measured = ok(
        &app,
        SHANDONG,
        &format!("referral measure {id} --kind seal-or-seize --by 37010012345:张三 --detail 查封 --note 现场"),
    )
    .await;
    has(&measured, "in-progress (处置中)");
    has(&measured, "measure-recorded");
    has(&measured, "seal-or-seize: 查封");
    has(&measured, "receipt  signed");
    // Not Shandong's after all: returned; Shanghai reroutes it to Jiangsu.
    let returned = ok(
        &app,
        SHANDONG,
        &format!("referral return {id} --reason \"生产者住所不在本省\""),
    )
    .await;
    has(&returned, "returned (已退回)");
    let rerouted = ok(
        &app,
        SHANGHAI,
        &format!("referral reroute {id} --to {JIANGSU} --basis producer --reason 生产者实际在江苏"),
    )
    .await;
    has(&rerouted, "opened (已移送)");
    ok(&app, JIANGSU, &format!("referral acknowledge {id}")).await;
    // The producer objects (异议); the re-inspection conforms and closes it as overturned.
    let today =
        yrd_domain::spotcheck::format_date(yrd_domain::calendar::china_date(app.clock.now()));
    let objected = ok(
        &app,
        SHANGHAI,
        &format!(
            "referral object {id} --party 某玩具有限公司 --result-received {today} --received {today} --grounds 样品保存不当"
        ),
    )
    .await;
    has(&objected, "objection-pending (异议/复检中)");
    ok(
        &app,
        ANHUI,
        &format!("referral react {id} --kind found-on-sale-here --text 安徽某网店在售"),
    )
    .await;
    let closed = ok(
        &app,
        SHANGHAI,
        &format!(
            "referral reinspect {id} --outcome conforming --inspection-body 某检测院 --report-number FJ-1 --report-date {today}"
        ),
    )
    .await;
    has(&closed, "closed (已办结)");
    let shown = ok(&app, JIANGSU, &format!("referral show {id}")).await;
    for text in [
        "acknowledged",
        "returned",
        "rerouted",
        "370000-AMR → 320000-AMR",
        "objection-filed",
        "reinspection-recorded",
        "outcome      overturned",
        "found-on-sale-here: 安徽某网店在售",
        "CST",
    ] {
        has(&shown, text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_referral_step_on_sqlite() {
    if let Some(app) = TestApp::spawn(StoreKind::Sqlite).await {
        every_referral_step(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_referral_step_on_postgres() {
    if let Some(app) = TestApp::spawn(StoreKind::Postgres).await {
        every_referral_step(app).await;
    }
}

/// A referral whose acknowledgement deadline passed shows as overdue with how many days.
async fn overdue_referrals_are_flagged(kind: StoreKind) {
    // The referral opens on the exchange's manual clock; the clock then moves three weeks on,
    // long past its acknowledgement deadline.
    let Some((app, clock)) = spawn_for_deadlines(kind).await else {
        return;
    };
    let id = referral(&app, SHANGHAI, "370102", "late-1").await;
    clock.advance(time::Duration::weeks(3));
    // The exchange's scheduler flags it (a round asked for now rather than waited for).
    app.tick_schedulers();
    let mut listed = String::new();
    for _ in 0..100 {
        listed = ok(&app, SHANDONG, "referral list --overdue").await;
        if listed.contains(&id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    has(&listed, &id);
    has(&listed, "OVERDUE");
    has(&listed, "1 referral(s), 1 overdue");
    let json: Value =
        serde_json::from_str(&ok(&app, SHANDONG, "referral list --json").await).expect("JSON");
    // The days are counted to this machine's today, which the exchange's clock left behind.
    let due = json[0]["deadlines"]
        .as_array()
        .expect("deadlines")
        .iter()
        .find(|d| d["kind"] == "acknowledgement")
        .and_then(|d| d["due"].as_str())
        .unwrap_or_else(|| panic!("no acknowledgement deadline: {json}"));
    assert!(due.starts_with("overdue "), "{due}");
    assert_eq!(json[0]["overdue"], true);
    let shown = ok(&app, SHANDONG, &format!("referral show {id}")).await;
    has(&shown, "flags        OVERDUE");
    has(&shown, "acknowledgement  ");
}

#[tokio::test(flavor = "multi_thread")]
async fn overdue_referrals_are_flagged_on_sqlite() {
    overdue_referrals_are_flagged(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overdue_referrals_are_flagged_on_postgres() {
    overdue_referrals_are_flagged(StoreKind::Postgres).await;
}

/// A fertilizer application through Hu-Lu joint processing, from the Shanghai window to the
/// licence Shandong issues.
async fn an_application_from_window_to_licence(app: TestApp) {
    let folder = tempfile::tempdir().expect("materials");
    let file = |name: &str| {
        let path = folder.path().join(name);
        std::fs::write(&path, format!("{name} contents")).expect("write");
        path.to_str().expect("UTF-8").to_owned()
    };
    let (form, licence) = (file("申请书.pdf"), file("营业执照.pdf"));
    let submitted = ok(
        &app,
        SHANGHAI,
        &format!(
            "application submit --applicant 山东某化肥有限公司 --uscc {} \
             --residence 山东省济南市历下区某路1号 --production-address 山东省济南市历城区某工业园2号 \
             --region 370102 --product 13-001 --unit 13-001-01:复混肥料 \
             --material {form} --material {licence}",
            uscc("370102", 3)
        ),
    )
    .await;
    has(&submitted, "submitted (已提交)");
    let id = submitted
        .split(':')
        .next()
        .and_then(|n| n.strip_prefix("applications/"))
        .expect("the application's name first")
        .to_owned();
    let listed = ok(&app, SHANDONG, "application list --role issuing").await;
    has(&listed, &id);
    has(&listed, "acceptance");
    has(&listed, "due ");
    has(&listed, "1 application(s), 0 overdue");
    let shown = ok(&app, SHANDONG, &format!("application show {id}")).await;
    has(&shown, "acceptance");
    has(&shown, "working days from");
    // The accepting province cannot accept for the issuing one.
    refused(
        &app,
        SHANGHAI,
        &format!("application accept {id} --acceptance-number X"),
        "PERMISSION_DENIED",
    )
    .await;
    // Other agencies take no part at all.
    refused(&app, ANHUI, "application list", "PERMISSION_DENIED").await;
    ok(
        &app,
        SHANDONG,
        &format!("application accept {id} --acceptance-number 鲁市监许受〔2026〕001号"),
    )
    .await;
    ok(&app, SHANDONG, &format!("application start-review {id}")).await;
    let today =
        yrd_domain::spotcheck::format_date(yrd_domain::calendar::china_date(app.clock.now()));
    let report = file("核查报告.pdf");
    let reported = ok(
        &app,
        SHANDONG,
        &format!(
            "application report-verification {id} --outcome passed --verifier HC-001:张核查 \
             --verifier HC-002:李核查 --verification-date {today} --report-date {today} --attach {report}"
        ),
    )
    .await;
    has(&reported, "verification-reported");
    // A refusal needs its reason: the API names the field.
    let error = refused(
        &app,
        SHANDONG,
        &format!("application decide {id} --outcome refused"),
        "INVALID_ARGUMENT",
    )
    .await;
    has(&error, "\n  decision.refusal_reason: ");
    ok(
        &app,
        SHANDONG,
        &format!("application decide {id} --outcome approved"),
    )
    .await;
    let issued = ok(&app, SHANDONG, &format!("application issue {id}")).await;
    has(&issued, "licence-issued");
    has(&issued, "licence (鲁)XK13-001-");
    let shown = ok(&app, SHANDONG, &format!("application show {id}")).await;
    for text in [
        "licence-issued (已发证)",
        "accepting 310000-SAMR, issuing 370000-AMR",
        "accepted",
        "review-started",
        "decided",
        "CST",
    ] {
        has(&shown, text);
    }
    let json: Value =
        serde_json::from_str(&ok(&app, SHANGHAI, &format!("application show {id} --json")).await)
            .expect("JSON");
    assert_eq!(json["state"], "licence-issued", "{json}");

    // Shanghai's feed told it each step, in China Standard Time.
    let feed = ok(&app, SHANGHAI, "feed tail --from-start").await;
    has(&feed, "application-updated/accepted");
    has(&feed, "licence-issued");
    has(&feed, " CST ");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_application_from_window_to_licence_on_sqlite() {
    if let Some(app) = TestApp::spawn(StoreKind::Sqlite).await {
        an_application_from_window_to_licence(app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_application_from_window_to_licence_on_postgres() {
    if let Some(app) = TestApp::spawn(StoreKind::Postgres).await {
        an_application_from_window_to_licence(app).await;
    }
}

/// Bad command-line values are refused before anything is sent, naming what is accepted.
#[test]
fn enum_arguments_name_the_accepted_values() {
    let error = Cli::try_parse_from(["yrd", "referral", "measure", "x", "--kind", "seize"])
        .expect_err("unknown kind");
    let text = error.to_string();
    assert!(
        text.contains("seal-or-seize") && text.contains("order-rectification"),
        "{text}"
    );
    let error = Cli::try_parse_from([
        "yrd", "referral", "measure", "x", "--kind", "review", "--by", "张三",
    ])
    .expect_err("an officer without id");
    assert!(error.to_string().contains("ID:NAME"), "{error}");
}
