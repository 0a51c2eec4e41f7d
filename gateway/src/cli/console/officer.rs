//! The officer's pages (system profile), read-only: my referrals and licence applications with
//! their deadlines (overdue and soon-due rows highlighted), one referral or application with its
//! deadlines and timeline, and the results search. The views are the desk commands' own
//! ([`crate::cli::desk`]), so the console and `yrd referral` never disagree.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use yrd_client::RpcError;
use yrd_domain::Profile;
use yrd_proto::v1 as pb;

use crate::cli::console::Console;
use crate::cli::console::page::{
    Cell, Ctx, DetailPage, Failure, Lang, ListPage, Table, due_class, render,
};
use crate::cli::desk::application::{ApplicationView, all_applications};
use crate::cli::desk::format::{agency, resource, today};
use crate::cli::desk::referral::{ReferralView, all_referrals, get_referral};
use crate::cli::session::Session;

/// The officer's routes.
pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/officer/referrals", get(referrals))
        .route("/officer/referrals/{id}", get(referral))
        .route("/officer/applications", get(applications))
        .route("/officer/applications/{id}", get(application))
        .route("/officer/results", get(results))
}

/// A session with the system certificate (the officer's profile).
pub(crate) async fn officer(console: &Console) -> Result<Session, Failure> {
    Session::open(&console.connect.target(Profile::System))
        .await
        .map_err(Failure::exchange)
}

/// A deadline's cells: kind and date, and "due in N days" in the page's language.
fn deadline_cells(lang: Lang, kind: &str, due_date: &str, overdue: bool) -> [Cell; 2] {
    [
        Cell::text(format!("{kind} {due_date}")),
        Cell::text(lang.due(due_date, overdue, today())),
    ]
}

/// The columns of a table of referrals (my referrals, a case's referrals).
pub(crate) const REFERRAL_COLUMNS: &[&str] = &[
    "referrals",
    "product",
    "from",
    "to",
    "state",
    "next_deadline",
    "due",
];

/// A referral's row under [`REFERRAL_COLUMNS`] and its class: the next deadline owed, else the
/// one that passed unmet; `overdue` when a deadline passed unmet, `soon` within three days.
pub(crate) fn referral_row(
    lang: Lang,
    r: ReferralView,
    today: time::Date,
) -> (&'static str, Vec<Cell>) {
    let shown = r
        .next_deadline
        .as_ref()
        .or_else(|| r.deadlines.iter().find(|d| d.overdue));
    let (class, deadline) = match shown {
        Some(d) => (
            if r.overdue {
                "overdue"
            } else {
                due_class(&d.due_date, d.overdue, today)
            },
            deadline_cells(lang, &d.kind, &d.due_date, d.overdue),
        ),
        None => (if r.overdue { "overdue" } else { "" }, Default::default()),
    };
    let mut cells = vec![
        Cell::link(r.id.clone(), format!("/officer/referrals/{}", r.id)),
        Cell::text(r.product_name),
        Cell::text(r.sampling_agency),
        Cell::text(r.handling_agency),
        Cell::text(r.state),
    ];
    cells.extend(deadline);
    (class, cells)
}

/// `GET /officer/referrals`.
async fn referrals(State(console): State<Arc<Console>>, ctx: Ctx) -> Result<Response, Failure> {
    let session = officer(&console).await?;
    let request = pb::ListReferralsRequest {
        page_size: 500,
        ..Default::default()
    };
    let found = all_referrals(&session, request)
        .await
        .map_err(Failure::exchange)?;
    let today = today();
    let mut table = Table::new(&ctx, REFERRAL_COLUMNS);
    for r in found.iter().map(|r| ReferralView::new(r, today)) {
        let (class, cells) = referral_row(ctx.lang, r, today);
        table.push(class, cells);
    }
    Ok(render(&ListPage {
        title: ctx.t("referrals"),
        notes: Vec::new(),
        search: Vec::new(),
        ctx,
        table,
    }))
}

/// A list of deadlines as a table: kind and date, due.
fn deadline_table<'a>(
    ctx: &Ctx,
    deadlines: impl Iterator<Item = (&'a str, &'a str, bool, bool)>,
) -> Table {
    let mut table = Table::new(ctx, &["deadlines", "due"]);
    for (kind, due_date, overdue, met) in deadlines {
        let class = if met {
            ""
        } else {
            due_class(due_date, overdue, today())
        };
        table.push(
            class,
            deadline_cells(ctx.lang, kind, due_date, overdue).into(),
        );
    }
    table
}

/// `GET /officer/referrals/{id}`.
async fn referral(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let session = officer(&console).await?;
    let r = get_referral(&session, &id)
        .await
        .map_err(Failure::exchange)?;
    let v = ReferralView::new(&r, today());
    let deadlines = deadline_table(
        &ctx,
        v.deadlines
            .iter()
            .map(|d| (d.kind.as_str(), d.due_date.as_str(), d.overdue, false)),
    );
    let fields = [
        ("product", v.product_name.clone()),
        ("producer", v.producer.clone()),
        ("from", v.sampling_agency.clone()),
        ("to", v.handling_agency.clone()),
        ("state", v.state.clone()),
    ];
    Ok(render(&DetailPage {
        title: format!("{} {}", ctx.t("referrals"), v.id),
        fields: fields
            .into_iter()
            .map(|(k, text)| (ctx.t(k), Cell::text(text)))
            .chain([(ctx.t("results"), Cell::text(v.result.clone()))])
            .chain(case_field(&ctx, &r.r#case))
            .collect(),
        checks: Vec::new(),
        tables: vec![(ctx.t("deadlines"), deadlines)],
        timeline: v.timeline,
        ctx,
    }))
}

/// The case (串案) a referral's result belongs to, linking to its page; none when it is in no
/// case (docs/cases.md).
fn case_field(ctx: &Ctx, case: &str) -> Option<(&'static str, Cell)> {
    let id = case.strip_prefix("cases/").filter(|id| !id.is_empty())?;
    Some((
        ctx.t("case"),
        Cell::link(id, format!("/officer/cases/{id}")),
    ))
}

/// `GET /officer/applications`.
async fn applications(State(console): State<Arc<Console>>, ctx: Ctx) -> Result<Response, Failure> {
    let session = officer(&console).await?;
    let request = pb::ListApplicationsRequest {
        page_size: 500,
        ..Default::default()
    };
    let found = all_applications(&session, request)
        .await
        .map_err(Failure::exchange)?;
    let today = today();
    let mut table = Table::new(
        &ctx,
        &[
            "applications",
            "applicant",
            "accepting",
            "issuing",
            "state",
            "next_deadline",
            "due",
        ],
    );
    for a in found.iter().map(|a| ApplicationView::new(a, today)) {
        let next = a.deadlines.iter().find(|d| !d.met);
        let class = match next {
            _ if a.overdue => "overdue",
            Some(d) => due_class(&d.due_date, d.overdue, today),
            None => "",
        };
        let mut cells = vec![
            Cell::link(a.id.clone(), format!("/officer/applications/{}", a.id)),
            Cell::text(a.applicant),
            Cell::text(a.accepting_agency),
            Cell::text(a.issuing_agency),
            Cell::text(a.state),
        ];
        cells.extend(match next {
            Some(d) => deadline_cells(ctx.lang, &d.kind, &d.due_date, d.overdue),
            None => Default::default(),
        });
        table.push(class, cells);
    }
    Ok(render(&ListPage {
        title: ctx.t("applications"),
        notes: Vec::new(),
        search: Vec::new(),
        ctx,
        table,
    }))
}

/// `GET /officer/applications/{id}`.
async fn application(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    const METHOD: &str = "LicensingService.GetApplication";
    let session = officer(&console).await?;
    let a = session
        .client()
        .licensing()
        .get_application(pb::GetApplicationRequest {
            name: resource("applications", &id),
        })
        .await
        .map_err(|s| Failure::exchange(RpcError::new(METHOD, s)))?
        .into_inner()
        .application
        .ok_or_else(|| {
            Failure::exchange(format!(
                "the exchange answered {METHOD} without an application"
            ))
        })?;
    let v = ApplicationView::new(&a, today());
    let deadlines = deadline_table(
        &ctx,
        v.deadlines
            .iter()
            .map(|d| (d.kind.as_str(), d.due_date.as_str(), d.overdue, d.met)),
    );
    let fields = [
        ("applicant", v.applicant.clone()),
        ("product", v.product.clone()),
        ("accepting", v.accepting_agency.clone()),
        ("issuing", v.issuing_agency.clone()),
        ("state", v.state.clone()),
    ];
    Ok(render(&DetailPage {
        title: format!("{} {}", ctx.t("applications"), v.id),
        fields: fields
            .into_iter()
            .map(|(k, text)| (ctx.t(k), Cell::text(text)))
            .collect(),
        checks: Vec::new(),
        tables: vec![(ctx.t("deadlines"), deadlines)],
        timeline: v.history,
        ctx,
    }))
}

/// `GET /officer/results?product=…&producer=…`: the first 100 results that match.
async fn results(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Failure> {
    const METHOD: &str = "SpotCheckService.SearchResults";
    let value = |k: &str| q.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let session = officer(&console).await?;
    let page = session
        .client()
        .spot_check()
        .search_results(pb::SearchResultsRequest {
            product_name_contains: value("product"),
            producer_uscc: value("producer"),
            page_size: 100,
            ..Default::default()
        })
        .await
        .map_err(|s| Failure::exchange(RpcError::new(METHOD, s)))?
        .into_inner();
    let mut table = Table::new(
        &ctx,
        &[
            "results",
            "product",
            "producer",
            "verdict",
            "from",
            "sampling_date",
        ],
    );
    for r in &page.results {
        let product = r.product.clone().unwrap_or_default();
        let producer = r.producer.clone().unwrap_or_default();
        let verdict = r.verdict().as_str_name().trim_start_matches("VERDICT_");
        let class = if r.verdict == pb::Verdict::NonConforming as i32 {
            "failing"
        } else {
            ""
        };
        table.push(
            class,
            vec![
                Cell::text(r.id.clone()),
                Cell::text(format!("{} {}", product.name, product.model)),
                Cell::text(format!("{} {}", producer.name, producer.uscc)),
                Cell::text(verdict.to_owned()),
                Cell::text(agency(&r.publisher_agency).to_owned()),
                Cell::text(r.sampling_date.clone()),
            ],
        );
    }
    Ok(render(&ListPage {
        title: ctx.t("results"),
        notes: Vec::new(),
        search: vec![
            ("product", ctx.t("product_contains"), value("product")),
            ("producer", ctx.t("producer_uscc"), value("producer")),
        ],
        ctx,
        table,
    }))
}
