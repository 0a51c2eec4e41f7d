//! Licence applications and licences in the store, on SQLite and PostgreSQL with the same test
//! code: concurrent serials never collide, a step computed from a stale version is refused with
//! nothing written, a licence number cannot be taken twice, and lists see only the viewer's
//! applications, newest first, page by page.

use std::collections::BTreeSet;

use time::OffsetDateTime;
use yrd_store::licensing::ProvinceRole;
use yrd_store::{
    ApplicationColumns, ApplicationFilter, ApplicationStepWrite, IdempotencyKey, LicenceFilter,
    LicenceWrite, LicensingWriteError, NewApplication, Store, WriteOutcome,
};

mod common;

use common::agency;

yrd_store::on_both_backends!(
    concurrent_serials_never_collide,
    a_stale_step_is_refused_and_writes_nothing,
    a_licence_number_is_taken_once,
    lists_show_the_viewers_applications_page_by_page,
);

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_710_000_000 + seconds).expect("time")
}

fn columns(state: &str) -> ApplicationColumns {
    ApplicationColumns {
        state: state.into(),
        overdue: false,
        next_due: Some("2024-03-11".into()),
        machine: "{}".into(),
        view: vec![1, 2, 3],
    }
}

async fn submit(store: &Store, id: &str, accepting: &str, issuing: &str, t: i64) {
    let outcome = store
        .submit_application(&NewApplication {
            key: IdempotencyKey {
                agency: agency(accepting),
                method: "/test/Submit".into(),
                request_id: format!("submit-{id}"),
                request_digest: "d".into(),
            },
            id: id.into(),
            accepting_agency: agency(accepting),
            issuing_agency: agency(issuing),
            applicant_uscc: "91370100MA3C00001X".into(),
            catalogue_code: "13-001".into(),
            columns: columns("APPLICATION_STATE_SUBMITTED"),
            step: vec![9],
            at: at(t),
            events: Vec::new(),
            leaf: None,
            response: vec![7],
        })
        .await
        .expect("submit");
    assert!(matches!(outcome, WriteOutcome::Written(_)));
}

fn step(id: &str, version: i64, licence: Option<LicenceWrite>) -> ApplicationStepWrite {
    ApplicationStepWrite {
        key: None,
        id: id.into(),
        expected_version: version,
        columns: columns("APPLICATION_STATE_ACCEPTED"),
        steps: vec![(2, vec![2])],
        licence,
        at: at(100),
        events: Vec::new(),
        leaf: None,
        response: Vec::new(),
    }
}

fn issue(number: &str) -> Option<LicenceWrite> {
    Some(LicenceWrite::Issue {
        number: number.into(),
        holder_uscc: "91370100MA3C00001X".into(),
        catalogue_code: "13-001".into(),
        state: "LICENCE_STATE_VALID".into(),
        body: vec![5],
    })
}

async fn concurrent_serials_never_collide(store: Store) {
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = store.clone();
            let prefix = if i % 3 == 0 {
                "沪|13|001"
            } else {
                "鲁|13|001"
            };
            tokio::spawn(async move {
                (
                    prefix,
                    store.next_licence_serial(prefix).await.expect("serial"),
                )
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        let (prefix, serial) = task.await.expect("task");
        assert!(seen.insert((prefix, serial)), "{prefix} {serial} twice");
    }
    let lu: Vec<i64> = seen
        .iter()
        .filter(|(p, _)| *p == "鲁|13|001")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(lu, (1..=16).collect::<Vec<_>>());
}

async fn a_stale_step_is_refused_and_writes_nothing(store: Store) {
    submit(&store, "a1", "310000-SAMR", "370000-AMR", 0).await;
    store
        .apply_step(&step("a1", 1, None))
        .await
        .expect("first step");
    let stale = store.apply_step(&step("a1", 1, None)).await;
    assert!(
        matches!(stale, Err(LicensingWriteError::Conflict { ref id }) if id == "a1"),
        "{stale:?}"
    );
    let stored = store
        .get_application("a1")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.steps, vec![vec![9], vec![2]]);
    assert_eq!(stored.state, "APPLICATION_STATE_ACCEPTED");
}

async fn a_licence_number_is_taken_once(store: Store) {
    submit(&store, "b1", "310000-SAMR", "370000-AMR", 0).await;
    submit(&store, "b2", "310000-SAMR", "370000-AMR", 1).await;
    store
        .apply_step(&step("b1", 1, issue("(鲁)XK13-001-00001")))
        .await
        .expect("issue");
    let again = store
        .apply_step(&step("b2", 1, issue("(鲁)XK13-001-00001")))
        .await;
    assert!(
        matches!(again, Err(LicensingWriteError::NumberTaken { .. })),
        "{again:?}"
    );
    // Nothing of the refused step stayed behind.
    let b2 = store
        .get_application("b2")
        .await
        .expect("read")
        .expect("b2");
    assert_eq!(b2.version, 1);
    assert_eq!(b2.steps.len(), 1);
    let licence = store
        .get_licence("(鲁)XK13-001-00001")
        .await
        .expect("read")
        .expect("licence");
    assert_eq!(licence.application_id, "b1");
    assert_eq!(licence.accepting_agency, agency("310000-SAMR"));
    let filter = LicenceFilter {
        viewer: agency("320000-AMR"),
        holder_uscc: None,
        catalogue_code: None,
        state: None,
        issuing_agency: None,
    };
    assert!(
        store
            .list_licences(&filter, None, 10)
            .await
            .expect("list")
            .is_empty()
    );
    let mine = LicenceFilter {
        viewer: agency("370000-AMR"),
        ..filter
    };
    assert_eq!(
        store
            .list_licences(&mine, None, 10)
            .await
            .expect("list")
            .len(),
        1
    );
}

async fn lists_show_the_viewers_applications_page_by_page(store: Store) {
    for i in 0..5 {
        submit(&store, &format!("s{i}"), "310000-SAMR", "370000-AMR", i).await;
    }
    submit(&store, "r0", "370000-AMR", "310000-SAMR", 10).await;
    let filter = |viewer: &str, role| ApplicationFilter {
        viewer: agency(viewer),
        role,
        state: None,
        applicant_uscc: None,
        catalogue_code: None,
        overdue: None,
    };
    let all = filter("310000-SAMR", None);
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_applications(&all, after.as_ref(), 2)
            .await
            .expect("page");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|a| a.cursor());
        ids.extend(page.into_iter().map(|a| a.id));
    }
    assert_eq!(ids, ["r0", "s4", "s3", "s2", "s1", "s0"]);
    let issuing = store
        .list_applications(
            &filter("310000-SAMR", Some(ProvinceRole::Issuing)),
            None,
            10,
        )
        .await
        .expect("list");
    assert_eq!(
        issuing.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["r0"]
    );
    let outsider = store
        .list_applications(&filter("330000-AMR", None), None, 10)
        .await
        .expect("list");
    assert!(outsider.is_empty());
    let due = store
        .applications_due_before("2024-03-12", 100)
        .await
        .expect("due");
    assert_eq!(due.len(), 6);
    assert!(
        store
            .applications_due_before("2024-03-11", 100)
            .await
            .expect("due")
            .is_empty()
    );
}
