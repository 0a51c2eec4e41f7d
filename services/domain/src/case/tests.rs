//! The matching rule as a table (docs/cases.md "Matching").

use time::Date;
use time::macros::date;

use super::*;
use crate::routing::tests::result_input;
use crate::spotcheck::{ProductInput, SpotCheckResult, Verdict};

const USCC_A: &str = "91310115MA1XY01234";
const USCC_B: &str = "91370102MA1XY01234";

fn finding(uscc: &str, model: &str, batch: &str, trademark: &str, date: Date) -> Finding {
    let mark = |m: &str| normalise_mark(m);
    Finding {
        key: ProductKey {
            producer_uscc: uscc.to_owned(),
            model: mark(model).expect("a model"),
            batch: mark(batch),
            trademark: mark(trademark),
        },
        date,
    }
}

const D0: Date = date!(2024 - 05 - 20);

#[test]
fn matching_table() {
    let base = finding(USCC_A, "XK-100", "B2024-01", "乐童", D0);
    #[rustfmt::skip]
    let rows: &[(&str, Finding, bool)] = &[
        ("same spelling",
         finding(USCC_A, "XK-100", "B2024-01", "乐童", D0), true),
        ("model without hyphen",
         finding(USCC_A, "XK100", "B2024-01", "乐童", D0), true),
        ("model full-width, lower-case batch",
         finding(USCC_A, "ＸＫ－１００", "b2024 01", "乐童", D0), true),
        ("other producer",
         finding(USCC_B, "XK-100", "B2024-01", "乐童", D0), false),
        ("other model",
         finding(USCC_A, "XK-101", "B2024-01", "乐童", D0), false),
        ("other batch",
         finding(USCC_A, "XK-100", "B2024-02", "乐童", D0), false),
        ("no batch: neither confirms nor refutes",
         finding(USCC_A, "XK-100", "/", "乐童", D0), true),
        ("other trademark",
         finding(USCC_A, "XK-100", "B2024-01", "乐乐", D0), false),
        ("no trademark",
         finding(USCC_A, "XK-100", "B2024-01", "", D0), true),
        ("365 days later: inside the window",
         finding(USCC_A, "XK100", "", "", date!(2025 - 05 - 20)), true),
        ("366 days later: outside",
         finding(USCC_A, "XK100", "", "", date!(2025 - 05 - 21)), false),
        ("365 days earlier: inside",
         finding(USCC_A, "XK100", "", "", date!(2023 - 05 - 21)), true),
        ("366 days earlier: outside",
         finding(USCC_A, "XK100", "", "", date!(2023 - 05 - 20)), false),
    ];
    let window = MatchWindow::default();
    let mut failures = Vec::new();
    for (case, other, want) in rows {
        let there = same_product(&base, other, window);
        let back = same_product(other, &base, window);
        if there != *want || back != *want {
            failures.push(format!("{case}: got {there}/{back}, want {want}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_window_is_configurable_and_bounded() {
    let a = finding(USCC_A, "XK100", "", "", D0);
    let b = finding(USCC_A, "XK100", "", "", date!(2024 - 06 - 20));
    assert!(!same_product(&a, &b, MatchWindow::days(30).unwrap()));
    assert!(same_product(&a, &b, MatchWindow::days(31).unwrap()));
    assert_eq!(MatchWindow::days(0), Err(WindowError { days: 0 }));
    assert_eq!(MatchWindow::days(-5), Err(WindowError { days: -5 }));
    assert!(MatchWindow::days(i64::from(MatchWindow::MAX_DAYS) + 1).is_err());
    assert_eq!(MatchWindow::default().as_days(), 365);
}

/// A result of the routing fixtures with `model`, `batch` and `trademark`, of `verdict`.
fn parsed(model: &str, batch: &str, trademark: &str, verdict: Verdict) -> SpotCheckResult {
    let mut input = result_input("310115", "330106", None, verdict);
    input.product = Some(ProductInput {
        name: "儿童滑板车".into(),
        model: model.into(),
        batch_number: batch.into(),
        trademark: trademark.into(),
        ..Default::default()
    });
    SpotCheckResult::parse(input, date!(2024 - 06 - 30)).unwrap()
}

#[test]
fn a_finding_is_taken_from_a_non_conforming_result_with_a_model() {
    let found = Finding::of(&parsed("ＸＫ－１００", "/", "乐童", Verdict::NonConforming))
        .expect("a finding");
    assert_eq!(found.key.model, "xk100");
    assert_eq!(found.key.batch, None);
    assert_eq!(found.key.trademark.as_deref(), Some("乐童"));
    assert_eq!(found.date, date!(2024 - 05 - 20));
    assert_eq!(found.key.producer_uscc.len(), 18);
    assert_eq!(
        Finding::of(&parsed("XK-100", "", "", Verdict::Conforming)),
        None
    );
    assert_eq!(
        Finding::of(&parsed("/", "B1", "", Verdict::NonConforming)),
        None
    );
}

fn candidate(id: &str, model: &str, case_id: Option<&str>) -> Candidate {
    Candidate {
        result_id: id.to_owned(),
        finding: finding(USCC_A, model, "", "", D0),
        case_id: case_id.map(str::to_owned),
    }
}

#[test]
fn link_planning_table() {
    let new = finding(USCC_A, "XK-100", "", "", D0);
    let window = MatchWindow::default();
    let with = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<Candidate>, Vec<String>, Link)> = vec![
        ("nothing earlier", vec![], vec![], Link::None),
        ("no match", vec![candidate("r1", "XK-200", None)], vec![], Link::None),
        ("one match in no case: a new case",
         vec![candidate("r2", "xk100", None), candidate("r1", "XK100", None)], vec![],
         Link::Create { with: with(&["r1", "r2"]) }),
        ("a match in a case: join it, with the loose matches",
         vec![candidate("r1", "XK100", Some("c1")), candidate("r2", "XK100", None)], vec![],
         Link::Join { case_id: "c1".into(), with: with(&["r2"]) }),
        ("matches in two cases: the oldest, no merge",
         vec![candidate("r1", "XK100", Some("c2")), candidate("r2", "XK100", Some("c1"))],
         vec![], Link::Join { case_id: "c1".into(), with: vec![] }),
        ("unlinked from the case: not again",
         vec![candidate("r1", "XK100", Some("c1"))], with(&["c1"]), Link::None),
        ("unlinked from one case, another matches",
         vec![candidate("r1", "XK100", Some("c1")), candidate("r2", "XK100", None)],
         with(&["c1"]), Link::Create { with: with(&["r2"]) }),
    ];
    for (case, candidates, excluded, want) in rows {
        assert_eq!(
            plan_link(&new, &candidates, &excluded, window),
            want,
            "{case}"
        );
    }
}
