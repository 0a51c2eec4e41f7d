//! What every console page shares: the language (中文 by default, English on request) and its
//! labels, times in China Standard Time, deadlines as "due in N days", the generic table, and
//! rendering with errors shown as pages.

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, http::header};
use time::OffsetDateTime;

use crate::cli::console::Console;
use crate::cli::console::security::{LANG_COOKIE, cookie};
use crate::cli::desk::format::{Due, cst_time, due};

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 中文, the default.
    Zh,
    /// English.
    En,
}

/// Every label a page shows: key, 中文, English.
const LABELS: &[(&str, &str, &str)] = &[
    ("title", "数据交换控制台", "Exchange console"),
    ("switch", "English", "中文"),
    ("home", "首页", "Home"),
    ("auditor", "审计", "Auditor"),
    ("officer", "业务", "Officer"),
    ("admin", "管理", "Admin"),
    ("log", "交换日志", "Exchange log"),
    ("verify_export", "核验导出文件", "Verify an export"),
    ("referrals", "我的移送", "My referrals"),
    ("applications", "我的许可申请", "My applications"),
    ("results", "抽查结果查询", "Results search"),
    ("cases", "我的串案", "My cases"),
    ("case", "串案", "Case"),
    ("case_open", "串并中", "open"),
    ("case_dissolved", "已解散", "dissolved"),
    ("all", "全部", "all"),
    ("model", "型号", "Model"),
    ("first_finding", "首次发现", "First finding"),
    ("last_finding", "最近发现", "Last finding"),
    (
        "finding_date",
        "发现日期（检验报告日期）",
        "Finding date (report date)",
    ),
    ("result_count", "结果数", "Results"),
    ("referral_count", "移送数", "Referrals"),
    ("referrals_of_case", "移送", "Referrals"),
    ("results_of_case", "抽查结果", "Results"),
    ("result", "结果", "Result"),
    ("referral", "移送", "Referral"),
    ("handling", "处置部门", "Handling agency"),
    ("linked", "串并时间", "Linked"),
    ("unlinked", "已解除串并的结果", "Results unlinked"),
    ("officer_id", "执法人员", "Officer"),
    ("reason", "理由", "Reason"),
    ("formed", "形成时间", "Formed"),
    ("updated", "更新时间", "Updated"),
    (
        "case_timeline",
        "时间线（交换日志）",
        "Timeline (exchange log)",
    ),
    ("agencies", "部门", "Agencies"),
    ("certificates", "证书", "Certificates"),
    ("crl", "证书吊销列表", "Revocation list (CRL)"),
    ("filter", "筛选", "Filter"),
    ("since", "起始时间", "Since"),
    ("until", "截止时间", "Until"),
    ("agency", "部门", "Agency"),
    ("method", "方法", "Method"),
    ("outcome", "结果", "Outcome"),
    ("resource", "资源", "Resource"),
    ("trace", "追踪号", "Trace id"),
    ("index", "序号", "Index"),
    ("time", "时间", "Time"),
    ("next_page", "下一页", "Next page"),
    ("export", "导出", "Export"),
    (
        "export_hint",
        "导出从序号 0 至最新签名树头的全部条目（与 yrd audit export 格式相同）",
        "Exports every entry from index 0 to the latest signed tree head (the format of yrd audit export)",
    ),
    ("entry", "日志条目", "Log entry"),
    ("trace_timeline", "追踪时间线", "Trace timeline"),
    ("verified", "已验证", "verified"),
    ("failed", "验证失败", "FAILED"),
    ("not_checked", "未检查", "not checked"),
    ("tree_head", "签名树头", "Signed tree head"),
    ("inclusion", "包含证明", "Inclusion proof"),
    ("consistency", "一致性", "Consistency"),
    ("fields", "字段", "Fields"),
    ("file", "文件", "File"),
    ("upload", "上传并核验", "Upload and verify"),
    ("line", "行", "Line"),
    ("check", "核验", "Check"),
    ("passing", "通过", "passing"),
    ("failing", "不通过", "failing"),
    ("product", "产品", "Product"),
    ("from", "抽查部门", "From"),
    ("to", "处置部门", "To"),
    ("state", "状态", "State"),
    ("next_deadline", "下一期限", "Next deadline"),
    ("due", "期限", "Due"),
    ("deadlines", "期限", "Deadlines"),
    ("timeline", "时间线", "Timeline"),
    ("applicant", "申请人", "Applicant"),
    ("accepting", "受理部门", "Accepting agency"),
    ("issuing", "发证部门", "Issuing agency"),
    ("producer", "生产者", "Producer"),
    ("verdict", "结论", "Verdict"),
    ("sampling_date", "抽样日期", "Sampling date"),
    ("product_contains", "产品名称包含", "Product name contains"),
    ("producer_uscc", "生产者统一社会信用代码", "Producer USCC"),
    ("search", "查询", "Search"),
    ("name", "名称", "Name"),
    ("serial", "序列号", "Serial"),
    ("profile", "类型", "Profile"),
    ("not_after", "有效期至", "Not after"),
    ("horizon", "到期", "Expiry"),
    ("rotation_due", "需轮换", "due for rotation"),
    ("crl_number", "CRL 编号", "CRL number"),
    ("this_update", "本次更新", "This update"),
    ("next_update", "下次更新", "Next update"),
    ("revoked_at", "吊销时间", "Revoked at"),
    ("none", "无", "none"),
    ("count", "条", "row(s)"),
    (
        "home_auditor",
        "浏览与核验交换日志（本地验证签名树头、包含与一致性证明）",
        "Browse and verify the exchange log (tree heads, inclusion and consistency proofs checked here)",
    ),
    (
        "home_officer",
        "本部门的移送与许可申请及其期限，本部门参与的串案",
        "Your agency's referrals and applications with their deadlines, the cases your agency is in",
    ),
    (
        "home_admin",
        "部门、证书与吊销列表",
        "Agencies, certificates and the revocation list",
    ),
    ("error", "错误", "Error"),
];

impl Lang {
    /// The label `key` in this language (the key itself when there is none, which the
    /// templates' test forbids).
    pub fn t(self, key: &str) -> &'static str {
        LABELS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("?", |(_, zh, en)| match self {
                Lang::Zh => zh,
                Lang::En => en,
            })
    }

    /// The `lang` attribute of the page.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// A deadline beside its date: `3天后到期` / `due in 3 days`, `逾期2天` / `overdue 2 days`.
    pub fn due(self, due_date: &str, overdue: bool, today: time::Date) -> String {
        let plural = |n: i64| if n == 1 { "" } else { "s" };
        match (self, due(due_date, overdue, today)) {
            (_, None) => String::new(),
            (Lang::Zh, Some(Due::Overdue(n))) => format!("逾期{n}天"),
            (Lang::Zh, Some(Due::Today)) => "今日到期".to_owned(),
            (Lang::Zh, Some(Due::In(n))) => format!("{n}天后到期"),
            (Lang::Zh, Some(Due::Ended(n))) => format!("已于{n}天前结束"),
            (Lang::En, Some(Due::Overdue(n))) => format!("overdue {n} day{}", plural(n)),
            (Lang::En, Some(Due::Today)) => "due today".to_owned(),
            (Lang::En, Some(Due::In(n))) => format!("due in {n} day{}", plural(n)),
            (Lang::En, Some(Due::Ended(n))) => format!("ended {n} day{} ago", plural(n)),
        }
    }
}

/// The row class of a deadline: `overdue`, `soon` (within three days), or none.
pub fn due_class(due_date: &str, overdue: bool, today: time::Date) -> &'static str {
    match due(due_date, overdue, today) {
        Some(Due::Overdue(_)) => "overdue",
        Some(Due::Today) => "soon",
        Some(Due::In(n)) if n <= 3 => "soon",
        _ => "",
    }
}

/// An instant for people: China Standard Time.
pub fn cst(t: OffsetDateTime) -> String {
    cst_time(t)
}

/// What the layout needs: the language, the CSRF token for its forms, the path (to come back
/// to after switching language).
pub struct Ctx {
    /// The language.
    pub lang: Lang,
    /// The session's CSRF token.
    pub csrf: String,
    /// The request's path and query.
    pub path: String,
}

impl Ctx {
    /// The label `key`.
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }
}

impl FromRequestParts<Arc<Console>> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let lang = match cookie(&parts.headers, LANG_COOKIE) {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        };
        Ok(Ctx {
            lang,
            csrf: console.secrets.csrf().to_owned(),
            path: parts
                .uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// One cell of a table: its text, a link, a class.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    /// The text.
    pub text: String,
    /// Where it links to.
    pub href: Option<String>,
}

impl Cell {
    /// A plain cell.
    pub fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            href: None,
        }
    }

    /// A cell linking to `href`.
    pub fn link(text: impl Into<String>, href: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            href: Some(href.into()),
        }
    }
}

/// A row: its class (`overdue`, `soon`, `failing`, …) and cells.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The CSS class.
    pub class: &'static str,
    /// The cells.
    pub cells: Vec<Cell>,
}

/// A table with headed columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// The column headings.
    pub head: Vec<&'static str>,
    /// The rows.
    pub rows: Vec<Row>,
}

impl Table {
    /// A table with these headings (labels in `ctx`'s language).
    pub fn new(ctx: &Ctx, keys: &[&str]) -> Table {
        Table {
            head: keys.iter().map(|k| ctx.t(k)).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, class: &'static str, cells: Vec<Cell>) {
        self.rows.push(Row { class, cells });
    }
}

/// A verification outcome as a page shows it.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked (a label).
    pub what: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What it said.
    pub detail: String,
}

/// A page of fields, checks, tables and a timeline: an entry, a referral, an application.
#[derive(Template)]
#[template(path = "console/detail.html")]
pub struct DetailPage {
    pub ctx: Ctx,
    pub title: String,
    pub checks: Vec<Check>,
    pub fields: Vec<(&'static str, Cell)>,
    pub tables: Vec<(&'static str, Table)>,
    pub timeline: Vec<String>,
}

/// A page that is one table under a title, with an optional search form.
#[derive(Template)]
#[template(path = "console/list.html")]
pub struct ListPage {
    pub ctx: Ctx,
    pub title: &'static str,
    pub notes: Vec<String>,
    pub search: Vec<(&'static str, &'static str, String)>,
    pub table: Table,
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    ctx: Ctx,
}

/// Renders a page.
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /`.
pub async fn home(ctx: Ctx) -> Response {
    render(&HomePage { ctx })
}

/// The language form.
#[derive(serde::Deserialize)]
pub struct LangForm {
    csrf: String,
    to: String,
    back: String,
}

/// `POST /lang`: sets the language cookie and goes back.
pub async fn switch_language(
    State(console): State<Arc<Console>>,
    Form(form): Form<LangForm>,
) -> Response {
    if !console.secrets.csrf_ok(&form.csrf) {
        return Failure::csrf().into_response();
    }
    let lang = if form.to == "en" { "en" } else { "zh" };
    // Only a path of this console: never an absolute or scheme-relative URL.
    let back = if form.back.starts_with('/') && !form.back.starts_with("//") {
        form.back
    } else {
        "/".to_owned()
    };
    (
        [(
            header::SET_COOKIE,
            format!("{LANG_COOKIE}={lang}; SameSite=Strict; Path=/"),
        )],
        Redirect::to(&back),
    )
        .into_response()
}

/// A request the console cannot answer, shown as a small page in both languages.
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    message: String,
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

impl Failure {
    /// A failure with this status and message.
    pub fn new(status: StatusCode, message: String) -> Failure {
        Failure { status, message }
    }

    /// A bad value in a form or a filter, named.
    pub fn bad_input(message: String) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, message)
    }

    /// No such page.
    pub fn not_found() -> Failure {
        Failure::new(StatusCode::NOT_FOUND, "no such page".to_owned())
    }

    /// A POST without this session's CSRF token.
    pub fn csrf() -> Failure {
        Failure::new(
            StatusCode::FORBIDDEN,
            "the form does not carry this session's CSRF token; reload the page and try again"
                .to_owned(),
        )
    }

    /// A call to the exchange that failed, or a session that could not open.
    pub fn exchange(e: impl std::fmt::Display) -> Failure {
        Failure::new(StatusCode::BAD_GATEWAY, format!("{e:#}"))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            status: self.status.as_u16(),
            message: &self.message,
        };
        let body = page.render().unwrap_or(self.message);
        (self.status, Html(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_the_templates_use_exists_in_both_languages() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/console");
        let mut keys = Vec::new();
        for file in std::fs::read_dir(&dir).expect("templates") {
            let text = std::fs::read_to_string(file.expect("entry").path()).expect("read");
            for part in text.split("t(\"").skip(1) {
                keys.push(part.split('"').next().unwrap_or_default().to_owned());
            }
        }
        assert!(keys.len() > 10, "{keys:?}");
        for key in keys {
            assert!(LABELS.iter().any(|(k, _, _)| *k == key), "no label {key:?}");
        }
    }

    #[test]
    fn deadlines_read_in_both_languages() {
        let today = time::Date::from_calendar_date(2026, time::Month::December, 7).expect("a date");
        assert_eq!(Lang::Zh.due("2026-12-10", false, today), "3天后到期");
        assert_eq!(Lang::En.due("2026-12-10", false, today), "due in 3 days");
        assert_eq!(Lang::Zh.due("2026-12-05", true, today), "逾期2天");
        assert_eq!(Lang::En.due("2026-12-06", true, today), "overdue 1 day");
        assert_eq!(due_class("2026-12-05", true, today), "overdue");
        assert_eq!(due_class("2026-12-09", false, today), "soon");
        assert_eq!(due_class("2026-12-20", false, today), "");
    }
}
