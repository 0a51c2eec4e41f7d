//! Cases (串案) in the store on both backends: a link committed with its result's write, the
//! guard that refuses a link decided on candidates that changed meanwhile, reads, lists and the
//! officer's unlink.

use time::macros::date;
use yrd_domain::case::{Finding, ProductKey};
use yrd_domain::spotcheck::{SpotCheckResult, Verdict};
use yrd_store::{
    CaseFilter, CaseRows, CaseState, IdempotencyKey, LinkRows, NewCase, NewPublication, NewUnlink,
    ResultWriteError, Store, UnlinkError, WriteOutcome,
};

mod common;

use common::{JS, SD, SH, ZJ, agency, t0, uscc};

yrd_store::on_both_backends!(
    a_case_forms_grows_and_is_read_back,
    a_link_decided_on_stale_candidates_is_refused,
    an_unlink_lets_a_result_go_and_dissolves_a_case_of_one,
);

fn finding(model: &str, day: u8) -> Finding {
    Finding {
        key: ProductKey {
            producer_uscc: uscc("370102", 1),
            model: model.into(),
            batch: None,
            trademark: None,
        },
        date: date!(2024 - 05 - 01)
            .replace_day(day)
            .expect("a day of May"),
    }
}

fn result() -> SpotCheckResult {
    let input = common::result_input("滑板车", "370102", "320106", Verdict::NonConforming);
    SpotCheckResult::parse(input, date!(2024 - 06 - 03)).expect("valid result")
}

/// Publishes result `id` by `publisher` with case rows `cases`.
async fn publish(
    store: &Store,
    id: &str,
    publisher: &str,
    cases: CaseRows,
) -> Result<WriteOutcome, ResultWriteError> {
    let r = result();
    store
        .publish_result(&NewPublication {
            key: IdempotencyKey {
                method: "/yrd.exchange.v1.SpotCheckService/PublishResult".into(),
                ..common::key("m", &format!("pub-{id}"), id)
            },
            id: id.into(),
            publisher: agency(publisher),
            result: &r,
            body: b"result".to_vec(),
            at: t0(),
            events: vec![],
            referrals: vec![],
            leaf: None,
            response: b"published".to_vec(),
            cases,
        })
        .await
}

/// The case rows of result `id` with finding `f`, decided on `seen`, linking `link`.
fn rows(
    id: &str,
    publisher: &str,
    f: &Finding,
    seen: &[(&str, Option<&str>)],
    link: Option<LinkRows>,
) -> CaseRows {
    CaseRows {
        result_id: id.into(),
        finding: Some((agency(publisher), f.clone())),
        seen: seen
            .iter()
            .map(|(r, c)| ((*r).to_owned(), c.map(str::to_owned)))
            .collect(),
        link,
        at: Some(t0()),
    }
}

fn member(id: &str, publisher: &str, f: &Finding) -> (String, yrd_domain::AgencyId, time::Date) {
    (id.into(), agency(publisher), f.date)
}

/// Three findings of one product: the first alone, the second creates the case, the third
/// joins it. Answers the case id.
async fn three_findings(store: &Store) -> String {
    let (f1, f2, f3) = (
        finding("xk100", 1),
        finding("xk100", 9),
        finding("xk100", 20),
    );
    publish(store, "r1", SH, rows("r1", SH, &f1, &[], None))
        .await
        .expect("first");
    let create = LinkRows {
        case_id: "c1".into(),
        create: Some(NewCase {
            producer_uscc: f1.key.producer_uscc.clone(),
            model: "xk100".into(),
            handling_agency: Some(agency(SD)),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "b7ad6b7169203331".into(),
        }),
        members: vec![member("r1", SH, &f1), member("r2", JS, &f2)],
    };
    publish(
        store,
        "r2",
        JS,
        rows("r2", JS, &f2, &[("r1", None)], Some(create)),
    )
    .await
    .expect("second");
    let join = LinkRows {
        case_id: "c1".into(),
        create: None,
        members: vec![member("r3", ZJ, &f3)],
    };
    let seen = [("r1", Some("c1")), ("r2", Some("c1"))];
    publish(store, "r3", ZJ, rows("r3", ZJ, &f3, &seen, Some(join)))
        .await
        .expect("third");
    "c1".into()
}

async fn a_case_forms_grows_and_is_read_back(store: Store) {
    let id = three_findings(&store).await;
    let case = store.get_case(&id).await.expect("read").expect("the case");
    assert_eq!(case.state, CaseState::Open);
    let members: Vec<&str> = case.members.iter().map(|m| m.result_id.as_str()).collect();
    assert_eq!(members, ["r1", "r2", "r3"]);
    assert_eq!(case.first_finding, date!(2024 - 05 - 01));
    assert_eq!(case.last_finding, date!(2024 - 05 - 20));
    let agencies: Vec<String> = case.agencies().iter().map(|a| a.to_string()).collect();
    assert_eq!(agencies, [SH, JS, ZJ, SD]);
    let forming = (
        "0af7651916cd43dd8448eb211c80319c".to_owned(),
        "b7ad6b7169203331".to_owned(),
    );
    assert_eq!((case.trace_id.clone(), case.span_id.clone()), forming);
    assert_eq!(store.case_trace(&id).await.expect("trace"), Some(forming));
    assert_eq!(store.case_trace("c9").await.expect("no case"), None);

    let candidates = store
        .case_candidates(&uscc("370102", 1), "xk100", "r9")
        .await
        .expect("candidates");
    assert_eq!(candidates.len(), 3);
    assert!(
        candidates
            .iter()
            .all(|c| c.case_id.as_deref() == Some("c1"))
    );
    assert_eq!(candidates[1].finding, finding("xk100", 9));

    let filter = |agency_id: &str| CaseFilter {
        agency: Some(agency(agency_id)),
        ..Default::default()
    };
    let (mine, next) = store.list_cases(&filter(ZJ), None, 10).await.expect("list");
    assert_eq!((mine.len(), next), (1, None));
    let (theirs, _) = store
        .list_cases(&filter("340000-AMR"), None, 10)
        .await
        .expect("list");
    assert!(theirs.is_empty());
    let by_model = CaseFilter {
        model: Some("xk200".into()),
        ..Default::default()
    };
    assert!(
        store
            .list_cases(&by_model, None, 10)
            .await
            .expect("list")
            .0
            .is_empty()
    );
    let cases = store
        .cases_of_results(&["r2", "r9"])
        .await
        .expect("cases of results");
    assert_eq!(cases.get("r2").map(String::as_str), Some("c1"));
    assert_eq!(cases.len(), 1);
}

async fn a_link_decided_on_stale_candidates_is_refused(store: Store) {
    let f1 = finding("xk100", 1);
    publish(&store, "r1", SH, rows("r1", SH, &f1, &[], None))
        .await
        .expect("first");
    // Decided before r1 was found: nothing seen.
    let f2 = finding("xk100", 2);
    let refused = publish(&store, "r2", JS, rows("r2", JS, &f2, &[], None)).await;
    assert!(
        matches!(refused, Err(ResultWriteError::CasesMoved(ref id)) if id == "r2"),
        "{refused:?}"
    );
    // Nothing of the refused write stayed: the result can be published on a fresh decision.
    assert!(store.get_result("r2", None).await.expect("read").is_none());
    publish(&store, "r2", JS, rows("r2", JS, &f2, &[("r1", None)], None))
        .await
        .expect("decided again");
}

fn unlink(case_id: &str, result_id: &str, tag: &str) -> NewUnlink {
    NewUnlink {
        key: common::key("/yrd.exchange.v1.CaseService/UnlinkResult", tag, tag),
        case_id: case_id.into(),
        result_id: result_id.into(),
        agency: agency(SD),
        officer: "SD-0001".into(),
        reason: "另一批次".into(),
        at: t0(),
        events: vec![],
        leaf: None,
        response: b"unlinked".to_vec(),
    }
}

async fn an_unlink_lets_a_result_go_and_dissolves_a_case_of_one(store: Store) {
    let id = three_findings(&store).await;
    store
        .unlink_case_result(&unlink(&id, "r3", "u1"))
        .await
        .expect("unlink");
    let case = store.get_case(&id).await.expect("read").expect("case");
    assert_eq!(case.members.len(), 2);
    assert_eq!(case.unlinks.len(), 1);
    assert_eq!(case.unlinks[0].reason, "另一批次");
    assert_eq!(
        store.cases_unlinked_from("r3").await.expect("unlinks"),
        std::slice::from_ref(&id)
    );
    let again = store.unlink_case_result(&unlink(&id, "r3", "u2")).await;
    assert!(
        matches!(again, Err(UnlinkError::NotInCase { .. })),
        "{again:?}"
    );
    let missing = store.unlink_case_result(&unlink("c9", "r1", "u3")).await;
    assert!(
        matches!(missing, Err(UnlinkError::NotFound(_))),
        "{missing:?}"
    );

    store
        .unlink_case_result(&unlink(&id, "r2", "u4"))
        .await
        .expect("unlink the second");
    let case = store.get_case(&id).await.expect("read").expect("case");
    assert_eq!(case.state, CaseState::Dissolved);
    assert!(case.members.is_empty());
}
