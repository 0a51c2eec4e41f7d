//! The officer's cases pages (串案, docs/cases.md; system profile), read-only: the cases my
//! agency is in, filtered by state, producer USCC and model, page by page; and one case with its
//! results, its referrals with their deadlines (overdue and soon-due rows highlighted as on the
//! referrals page), its agencies, the results officers unlinked, and its timeline from the
//! exchange log — the case's whole story (`cases/{id}`, docs/cases.md "The exchange log"), each
//! entry linking to its verified page. Unlinking a wrong match is `CaseService.UnlinkResult`'s,
//! not the console's.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use tonic::Code;
use yrd_client::{Authed, RpcError};
use yrd_domain::{AgencyId, Profile};
use yrd_proto::v1 as pb;
use yrd_proto::v1::case_service_client::CaseServiceClient;

use crate::cli::audit::read::all_entries;
use crate::cli::audit::session::Auditor;
use crate::cli::console::Console;
use crate::cli::console::audit::{entry_table, next_page};
use crate::cli::console::officer::{REFERRAL_COLUMNS, officer, referral_row};
use crate::cli::console::page::{Cell, Check, Ctx, DetailPage, Failure, Table, render};
use crate::cli::desk::format::{agency, cst, resource, today};
use crate::cli::desk::referral::{ReferralView, get_referral};
use crate::cli::results::import::agency_of;
use crate::cli::session::Session;

/// The cases routes.
pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/officer/cases", get(cases))
        .route("/officer/cases/{id}", get(case))
}

/// Cases per page of the list.
const PAGE_SIZE: i32 = 50;

#[derive(Template)]
#[template(path = "console/cases.html")]
struct CasesPage {
    ctx: Ctx,
    /// The state filter's choices: value, label, chosen.
    states: Vec<(&'static str, &'static str, bool)>,
    /// The text filters: query name, label, value.
    filters: Vec<(&'static str, &'static str, String)>,
    problem: Option<String>,
    table: Table,
    next: Option<String>,
}

/// The state filter: empty for every state, else `open` or `dissolved`, named when neither.
fn case_state(value: &str) -> Result<pb::CaseState, String> {
    match value {
        "" => Ok(pb::CaseState::Unspecified),
        "open" => Ok(pb::CaseState::Open),
        "dissolved" => Ok(pb::CaseState::Dissolved),
        other => Err(format!(
            "state: expected open or dissolved (or nothing for every state), got {other:?}"
        )),
    }
}

/// The label key of a case state.
fn state_label(state: i32) -> &'static str {
    match pb::CaseState::try_from(state) {
        Ok(pb::CaseState::Open) => "case_open",
        Ok(pb::CaseState::Dissolved) => "case_dissolved",
        _ => "none",
    }
}

/// The `ListCases` request the filters ask for, for the cases `agency` is or was in, or the
/// first filter that does not parse, named.
fn cases_request(
    agency: &AgencyId,
    q: &HashMap<String, String>,
) -> Result<pb::ListCasesRequest, String> {
    let get = |name: &str| q.get(name).map_or("", |v| v.trim()).to_owned();
    Ok(pb::ListCasesRequest {
        agency: agency.resource_name(),
        producer_uscc: get("producer"),
        model: get("model"),
        state: case_state(&get("state"))? as i32,
        page_size: PAGE_SIZE,
        page_token: get("page"),
    })
}

/// The generated `CaseService` client over the session's connection and token.
fn case_service(session: &Session) -> CaseServiceClient<Authed> {
    CaseServiceClient::new(session.client().authed())
}

/// The agency the officer's certificate admits its holder as: the cases page lists its cases.
fn my_agency(console: &Console) -> Result<AgencyId, Failure> {
    let cert = console.connect.target(Profile::System).files.cert;
    agency_of(&cert).ok_or_else(|| {
        Failure::bad_input(format!(
            "--cert: {} is not an exchange certificate naming an agency, so the console cannot \
             list that agency's cases",
            cert.display()
        ))
    })
}

/// The number of referrals of a case's results.
fn referral_count(c: &pb::Case) -> usize {
    c.results.iter().map(|r| r.referrals.len()).sum()
}

/// The ids of agencies, space-separated.
fn agencies(names: &[String]) -> String {
    names
        .iter()
        .map(|a| agency(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET /officer/cases?state=…&producer=…&model=…&page=…`: one page of the cases my agency is
/// or was in, newest first.
async fn cases(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Failure> {
    const METHOD: &str = "CaseService.ListCases";
    let value = |k: &str| q.get(k).cloned().unwrap_or_default();
    let chosen = value("state");
    let states = [
        ("", "all"),
        ("open", "case_open"),
        ("dissolved", "case_dissolved"),
    ]
    .into_iter()
    .map(|(v, key)| (v, ctx.t(key), chosen.trim() == v))
    .collect();
    let filters = vec![
        ("producer", ctx.t("producer_uscc"), value("producer")),
        ("model", ctx.t("model"), value("model")),
    ];
    let mut page = CasesPage {
        table: Table::new(&ctx, &[]),
        ctx,
        states,
        filters,
        problem: None,
        next: None,
    };
    let request = match cases_request(&my_agency(&console)?, &q) {
        Ok(request) => request,
        Err(problem) => {
            page.problem = Some(problem);
            return Ok(render(&page));
        }
    };
    let session = officer(&console).await?;
    let answer = match case_service(&session).list_cases(request).await {
        Ok(answer) => answer.into_inner(),
        // A filter the exchange refuses (a producer USCC that is not one) is shown beside the
        // filters, with the field the exchange names.
        Err(status) if status.code() == Code::InvalidArgument => {
            page.problem = Some(RpcError::new(METHOD, status).to_string());
            return Ok(render(&page));
        }
        Err(status) => return Err(Failure::exchange(RpcError::new(METHOD, status))),
    };
    let mut table = Table::new(
        &page.ctx,
        &[
            "case",
            "state",
            "product",
            "agencies",
            "first_finding",
            "last_finding",
            "handling",
            "result_count",
            "referral_count",
        ],
    );
    for c in &answer.cases {
        table.push(
            "",
            vec![
                Cell::link(c.id.clone(), format!("/officer/cases/{}", c.id)),
                Cell::text(page.ctx.t(state_label(c.state))),
                Cell::text(format!("{} {}", c.producer_uscc, c.model)),
                Cell::text(agencies(&c.agencies)),
                Cell::text(c.first_finding_date.clone()),
                Cell::text(c.last_finding_date.clone()),
                Cell::text(agency(&c.handling_agency).to_owned()),
                Cell::text(c.results.len().to_string()),
                Cell::text(referral_count(c).to_string()),
            ],
        );
    }
    page.table = table;
    page.next = next_page("/officer/cases", &q, &answer.next_page_token);
    Ok(render(&page))
}

/// `GET /officer/cases/{id}`: the case, its results, referrals, agencies and unlinks, and its
/// timeline from the exchange log.
async fn case(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    const METHOD: &str = "CaseService.GetCase";
    let session = officer(&console).await?;
    let c = case_service(&session)
        .get_case(pb::GetCaseRequest {
            name: resource("cases", &id),
        })
        .await
        .map_err(|s| Failure::exchange(RpcError::new(METHOD, s)))?
        .into_inner()
        .r#case
        .ok_or_else(|| {
            Failure::exchange(format!("the exchange answered {METHOD} without a case"))
        })?;
    let today = today();

    let mut results = Table::new(
        &ctx,
        &["result", "from", "finding_date", "linked", "referral"],
    );
    // A case's results are found by its producer in the results search.
    let search = format!("/officer/results?producer={}", c.producer_uscc);
    for r in &c.results {
        let referrals: Vec<&str> = r
            .referrals
            .iter()
            .map(|n| n.trim_start_matches("referrals/"))
            .collect();
        results.push(
            "",
            vec![
                Cell::link(r.result.trim_start_matches("results/"), search.clone()),
                Cell::text(agency(&r.publisher_agency).to_owned()),
                Cell::text(r.finding_date.clone()),
                Cell::text(cst(r.link_time.as_ref())),
                Cell::text(referrals.join(" ")),
            ],
        );
    }

    // Its referrals, each read as the referral page reads it (a case has a few).
    let columns = [&["referral"], &REFERRAL_COLUMNS[1..]].concat();
    let mut referrals = Table::new(&ctx, &columns);
    for name in c.results.iter().flat_map(|r| &r.referrals) {
        let r = get_referral(&session, name.trim_start_matches("referrals/"))
            .await
            .map_err(Failure::exchange)?;
        let (class, cells) = referral_row(ctx.lang, ReferralView::new(&r, today), today);
        referrals.push(class, cells);
    }

    let mut tables = vec![
        (ctx.t("results_of_case"), results),
        (ctx.t("referrals_of_case"), referrals),
    ];
    if !c.unlinks.is_empty() {
        let mut unlinks = Table::new(&ctx, &["result", "agency", "officer_id", "reason", "time"]);
        for u in &c.unlinks {
            unlinks.push(
                "",
                vec![
                    Cell::text(u.result.trim_start_matches("results/")),
                    Cell::text(agency(&u.agency).to_owned()),
                    Cell::text(u.officer.clone()),
                    Cell::text(u.reason.clone()),
                    Cell::text(cst(u.unlink_time.as_ref())),
                ],
            );
        }
        tables.push((ctx.t("unlinked"), unlinks));
    }

    // The timeline: every log entry recording the case, with the auditor certificate (the log
    // is the auditor's); a refusal is shown in place of it, the rest of the page stays.
    let mut checks = Vec::new();
    match timeline(&console, &ctx, &c.name).await {
        Ok(table) => tables.push((ctx.t("case_timeline"), table)),
        Err(e) => checks.push(Check {
            what: ctx.t("case_timeline"),
            ok: false,
            detail: e,
        }),
    }

    let mut fields = vec![
        ("state", Cell::text(ctx.t(state_label(c.state)))),
        ("producer_uscc", Cell::text(c.producer_uscc.clone())),
        ("model", Cell::text(c.model.clone())),
        (
            "handling",
            Cell::text(agency(&c.handling_agency).to_owned()),
        ),
        ("agencies", Cell::text(agencies(&c.agencies))),
        ("first_finding", Cell::text(c.first_finding_date.clone())),
        ("last_finding", Cell::text(c.last_finding_date.clone())),
        ("formed", Cell::text(cst(c.create_time.as_ref()))),
        ("updated", Cell::text(cst(c.update_time.as_ref()))),
    ];
    if !c.trace_id.is_empty() {
        fields.push((
            "trace",
            Cell::link(c.trace_id.clone(), format!("/audit/traces/{}", c.trace_id)),
        ));
    }
    fields.push((
        "log",
        Cell::link(c.name.clone(), format!("/audit?resource={}", c.name)),
    ));
    Ok(render(&DetailPage {
        title: format!("{} {}", ctx.t("case"), c.id),
        fields: fields
            .into_iter()
            .map(|(key, cell)| (ctx.t(key), cell))
            .collect(),
        checks,
        tables,
        timeline: Vec::new(),
        ctx,
    }))
}

/// The exchange-log entries recording case `name` (`yrd audit query --resource cases/{id}`),
/// oldest first, as the log page shows them.
async fn timeline(console: &Console, ctx: &Ctx, name: &str) -> Result<Table, String> {
    let auditor = Auditor::open(&console.connect)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let request = pb::ListAuditEntriesRequest {
        resource_name: name.to_owned(),
        page_size: 1000,
        ..Default::default()
    };
    let entries = all_entries(&auditor, request)
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok(entry_table(ctx, &entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_name_the_field_they_fail_on() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>()
        };
        let agency = AgencyId::parse("370000-AMR").expect("an agency id");
        let r = cases_request(
            &agency,
            &q(&[("state", " open "), ("model", " XK-1 "), ("page", "t")]),
        )
        .expect("valid");
        assert_eq!(r.agency, "agencies/370000-AMR");
        assert_eq!(r.state, pb::CaseState::Open as i32);
        assert_eq!((r.model.as_str(), r.page_token.as_str()), ("XK-1", "t"));
        assert_eq!(
            cases_request(&agency, &q(&[])).expect("valid").state,
            pb::CaseState::Unspecified as i32
        );
        let bad = cases_request(&agency, &q(&[("state", "closed")])).expect_err("bad state");
        assert!(bad.starts_with("state: "), "{bad}");
        assert_eq!(
            state_label(pb::CaseState::Dissolved as i32),
            "case_dissolved"
        );
        assert_eq!(
            next_page(
                "/officer/cases",
                &q(&[("model", "XK 1"), ("state", "")]),
                "n2"
            ),
            Some("/officer/cases?model=XK%201&page=n2".to_owned())
        );
        assert_eq!(next_page("/officer/cases", &q(&[]), ""), None);
    }
}
