//! The admin's pages (admin profile), read-only: the agencies, the certificates with their
//! expiry horizon (those due for rotation highlighted), and the certificate revocation list.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use time::OffsetDateTime;
use yrd_call::from_timestamp;
use yrd_client::RpcError;
use yrd_domain::Profile;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_proto::v1 as pb;

use crate::cli::agency::{AgencyView, all_agencies};
use crate::cli::cert::{CertificateView, all_certificates};
use crate::cli::console::Console;
use crate::cli::console::page::{Cell, Ctx, Failure, Lang, ListPage, Table, cst, render};
use crate::cli::session::Session;

/// The admin's routes.
pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/admin/agencies", get(agencies))
        .route("/admin/certificates", get(certificates))
        .route("/admin/crl", get(crl))
}

async fn admin(console: &Console) -> Result<Session, Failure> {
    Session::open(&console.connect.target(Profile::Admin))
        .await
        .map_err(Failure::exchange)
}

/// `GET /admin/agencies`.
async fn agencies(State(console): State<Arc<Console>>, ctx: Ctx) -> Result<Response, Failure> {
    let admin = admin(&console).await?.admin();
    let request = pb::ListAgenciesRequest {
        page_size: 500,
        ..Default::default()
    };
    let found = all_agencies(&admin, request)
        .await
        .map_err(Failure::exchange)?;
    let mut table = Table::new(&ctx, &["agency", "name", "state"]);
    for a in found.iter().map(AgencyView::from_pb) {
        let name = match ctx.lang {
            Lang::Zh => a.display_name_zh,
            Lang::En => a.display_name,
        };
        let class = if a.state == "active" { "" } else { "failing" };
        table.push(
            class,
            vec![
                Cell::text(a.agency_id),
                Cell::text(name),
                Cell::text(a.state),
            ],
        );
    }
    Ok(render(&ListPage {
        title: ctx.t("agencies"),
        notes: Vec::new(),
        search: Vec::new(),
        ctx,
        table,
    }))
}

/// A certificate's expiry horizon: the row class (`overdue` when expired, `soon` when due for
/// rotation within `rotation_days`) and the words beside its date.
fn horizon(
    lang: Lang,
    not_after: Option<OffsetDateTime>,
    now: OffsetDateTime,
    rotation_days: u32,
) -> (&'static str, String) {
    let Some(end) = not_after else {
        return ("", String::new());
    };
    let days = (end - now).whole_days();
    let due = days < i64::from(rotation_days);
    let class = match (end <= now, due) {
        (true, _) => "overdue",
        (false, true) => "soon",
        _ => "",
    };
    let words = match (lang, end <= now) {
        (Lang::Zh, true) => format!("已过期{}天", -days),
        (Lang::En, true) => format!("expired {} days ago", -days),
        (Lang::Zh, false) => format!("{days}天后到期"),
        (Lang::En, false) => format!("expires in {days} days"),
    };
    let words = if due && end > now {
        format!("{words} — {}", lang.t("rotation_due"))
    } else {
        words
    };
    (class, words)
}

/// `GET /admin/certificates`.
async fn certificates(State(console): State<Arc<Console>>, ctx: Ctx) -> Result<Response, Failure> {
    let admin = admin(&console).await?.admin();
    let request = pb::ListCertificatesRequest {
        page_size: 500,
        ..Default::default()
    };
    let found = all_certificates(&admin, request)
        .await
        .map_err(Failure::exchange)?;
    let now = SystemClock.now();
    let mut table = Table::new(
        &ctx,
        &[
            "serial",
            "agency",
            "profile",
            "state",
            "not_after",
            "horizon",
        ],
    );
    for c in &found {
        let not_after = c.not_after.as_ref().and_then(from_timestamp);
        let v = CertificateView::from_pb(c);
        let (class, words) = if v.state == "active" {
            horizon(ctx.lang, not_after, now, console.rotation_days)
        } else {
            ("", String::new())
        };
        table.push(
            class,
            vec![
                Cell::text(v.serial),
                Cell::text(v.agency),
                Cell::text(v.profile),
                Cell::text(v.state),
                Cell::text(not_after.map(cst).unwrap_or_default()),
                Cell::text(words),
            ],
        );
    }
    Ok(render(&ListPage {
        title: ctx.t("certificates"),
        notes: vec![format!(
            "{}: {} {}",
            ctx.t("rotation_due"),
            console.rotation_days,
            match ctx.lang {
                Lang::Zh => "天内到期",
                Lang::En => "days or less left",
            }
        )],
        search: Vec::new(),
        ctx,
        table,
    }))
}

/// `GET /admin/crl`: the CRL the exchange publishes, its entries read from its DER here.
async fn crl(State(console): State<Arc<Console>>, ctx: Ctx) -> Result<Response, Failure> {
    use x509_parser::prelude::FromDer;
    let crl = admin(&console)
        .await?
        .admin()
        .get_crl(pb::GetCrlRequest {})
        .await
        .map_err(|s| Failure::exchange(RpcError::new("AdminService.GetCrl", s)))?
        .into_inner();
    let (_, parsed) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&crl.crl_der)
            .map_err(|e| Failure::exchange(format!("the CRL the exchange sent: {e}")))?;
    let when = |t: Option<&prost_types::Timestamp>| {
        t.and_then(from_timestamp).map(cst).unwrap_or_default()
    };
    let mut table = Table::new(&ctx, &["serial", "revoked_at"]);
    for revoked in parsed.iter_revoked_certificates() {
        let at = OffsetDateTime::from_unix_timestamp(revoked.revocation_date.timestamp())
            .map(cst)
            .unwrap_or_default();
        table.push(
            "",
            vec![
                Cell::text(revoked.raw_serial_as_string().replace(':', "")),
                Cell::text(at),
            ],
        );
    }
    Ok(render(&ListPage {
        title: ctx.t("crl"),
        notes: vec![
            format!("{}: {}", ctx.t("crl_number"), crl.crl_number),
            format!(
                "{}: {}",
                ctx.t("this_update"),
                when(crl.this_update.as_ref())
            ),
            format!(
                "{}: {}",
                ctx.t("next_update"),
                when(crl.next_update.as_ref())
            ),
        ],
        search: Vec::new(),
        ctx,
        table,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_near_their_end_are_due_for_rotation() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let days = |d: i64| Some(now + time::Duration::days(d));
        assert_eq!(horizon(Lang::En, days(90), now, 30).0, "");
        let (class, words) = horizon(Lang::En, days(10), now, 30);
        assert_eq!(class, "soon");
        assert_eq!(words, "expires in 10 days — due for rotation");
        assert_eq!(
            horizon(Lang::Zh, days(10), now, 30).1,
            "10天后到期 — 需轮换"
        );
        assert_eq!(
            horizon(Lang::En, days(-2), now, 30),
            ("overdue", "expired 2 days ago".to_owned())
        );
    }
}
