//! `ListCatalogueProducts`: the licensing catalogue as partners see it.
//!
//! The catalogue (products, units, routes, per-product decision limits) is configuration, not
//! data the exchange stores: it is the same on every replica and changes only with a restart.
//! So the read answers from [`LicensingSettings`] alone, without the store, and a page token is
//! the last catalogue code of the previous page (the catalogue is ordered by code), opaque to
//! the caller. The time limits are shown per product with their unit, from the same rules the
//! state machine runs on, so what a window reads is what the deadlines will be.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::Request;
use yrd_domain::calendar::{Counting, DeadlineKind};
use yrd_domain::licensing::LicensingRules;
use yrd_proto::v1 as pb;

use crate::config::{LicensingSettings, Product};
use crate::error::CallError;
use crate::page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::service::{Call, LicensingHandler};
use crate::view::{deadline_kind, route_of};
use yrd_call::FieldErrors;

/// Marks a catalogue page token, so a token of another list is not mistaken for one.
const TOKEN_PREFIX: &str = "catalogue:";

impl LicensingHandler {
    pub(crate) async fn list_catalogue_products_call(
        &self,
        call: &mut Call,
        request: Request<pb::ListCatalogueProductsRequest>,
    ) -> Result<pb::ListCatalogueProductsResponse, CallError> {
        let caller = call.agency().clone();
        self.pilot(&caller)?;
        let query = Query::parse(request.get_ref())?;
        Ok(list(&self.settings, &query))
    }
}

/// A checked request.
#[derive(Debug, PartialEq, Eq)]
struct Query {
    route: Option<yrd_domain::licensing::Route>,
    limit: usize,
    after: Option<String>,
}

impl Query {
    /// Checks every field; each bad one is named.
    fn parse(r: &pb::ListCatalogueProductsRequest) -> Result<Self, CallError> {
        use yrd_domain::licensing::Route;
        let mut e = FieldErrors::new();
        let route = match pb::LicensingRoute::try_from(r.route) {
            Ok(pb::LicensingRoute::Unspecified) => None,
            Ok(pb::LicensingRoute::Ordinary) => Some(Route::Ordinary),
            Ok(pb::LicensingRoute::Commitment) => Some(Route::Commitment),
            Err(_) => {
                e.add("route", "is not a LicensingRoute");
                None
            }
        };
        let limit = match r.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                e.add("page_size", "must not be negative");
                DEFAULT_PAGE_SIZE
            }
            n => u32::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
        };
        let after = if r.page_token.trim().is_empty() {
            None
        } else {
            let code = decode_token(&r.page_token);
            if code.is_none() {
                e.add("page_token", "is not a token this list returned");
            }
            code
        };
        if !e.is_empty() {
            return Err(CallError::Invalid(e));
        }
        Ok(Query {
            route,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            after,
        })
    }
}

fn encode_token(code: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{code}"))
}

fn decode_token(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let code = text.strip_prefix(TOKEN_PREFIX)?;
    (!code.is_empty()).then(|| code.to_owned())
}

/// One page of the catalogue, by code.
fn list(settings: &LicensingSettings, query: &Query) -> pb::ListCatalogueProductsResponse {
    let mut matching = settings
        .catalogue
        .0
        .iter()
        .filter(|(code, _)| query.after.as_ref().is_none_or(|after| *code > after))
        .filter(|(_, p)| {
            query
                .route
                .is_none_or(|route| p.entry.check_route(route).is_ok())
        });
    let page: Vec<(&String, &Product)> = matching.by_ref().take(query.limit).collect();
    let next_page_token = match (page.last(), matching.next()) {
        (Some((last, _)), Some(_)) => encode_token(last),
        _ => String::new(),
    };
    pb::ListCatalogueProductsResponse {
        catalogue_products: page
            .into_iter()
            .map(|(code, p)| product(code, p, &settings.rules))
            .collect(),
        next_page_token,
    }
}

/// The wire form of a configured product.
fn product(code: &str, p: &Product, rules: &LicensingRules) -> pb::CatalogueProduct {
    use yrd_domain::licensing::Route;
    let routes = [Route::Ordinary, Route::Commitment]
        .into_iter()
        .filter(|r| p.entry.check_route(*r).is_ok())
        .map(|r| route_of(r) as i32)
        .collect();
    let limit = |kind: DeadlineKind, days: u32| pb::CatalogueTimeLimit {
        kind: deadline_kind(kind) as i32,
        days,
        working_days: kind.counting() == Counting::WorkingDays,
    };
    let mut time_limits = vec![
        limit(DeadlineKind::Acceptance, rules.acceptance_working_days),
        limit(DeadlineKind::Verification, rules.verification_calendar_days),
        limit(
            DeadlineKind::Decision,
            p.entry.decision_limit_working_days.working_days(),
        ),
        limit(DeadlineKind::Issuance, rules.issuance_working_days),
    ];
    if p.entry.commitment_allowed {
        time_limits.push(limit(
            DeadlineKind::PostIssueCheck,
            rules.post_issue_check_working_days,
        ));
    }
    pb::CatalogueProduct {
        name: format!("catalogueProducts/{code}"),
        catalogue_code: code.to_owned(),
        display_name: p.entry.name.to_string(),
        industry_code: p.entry.industry_code.to_string(),
        product_code: p.entry.product_code.to_string(),
        units: p
            .units
            .iter()
            .map(|(code, name)| pb::CatalogueUnit {
                code: code.clone(),
                display_name: name.clone(),
            })
            .collect(),
        routes,
        time_limits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LicensingConfig;

    fn settings() -> LicensingSettings {
        LicensingConfig::default().build().expect("defaults build")
    }

    fn query(r: pb::ListCatalogueProductsRequest) -> Query {
        Query::parse(&r).expect("valid")
    }

    #[test]
    fn the_default_catalogue_with_units_routes_and_limits() {
        let all = list(&settings(), &query(Default::default()));
        let codes: Vec<_> = all
            .catalogue_products
            .iter()
            .map(|p| p.catalogue_code.as_str())
            .collect();
        assert_eq!(codes, ["06-001", "13-001"]);
        assert!(all.next_page_token.is_empty());
        let fertilizer = &all.catalogue_products[1];
        assert_eq!(fertilizer.name, "catalogueProducts/13-001");
        assert_eq!(fertilizer.display_name, "化肥");
        assert_eq!(
            (
                fertilizer.industry_code.as_str(),
                fertilizer.product_code.as_str()
            ),
            ("13", "001")
        );
        assert_eq!(fertilizer.units.len(), 3);
        assert_eq!(fertilizer.routes, [pb::LicensingRoute::Ordinary as i32]);
        let verification = fertilizer
            .time_limits
            .iter()
            .find(|l| l.kind == pb::ApplicationDeadlineKind::Verification as i32)
            .expect("verification limit");
        assert_eq!((verification.days, verification.working_days), (30, false));
        assert_eq!(fertilizer.time_limits.len(), 4, "no post-issue check");
        let cable = &all.catalogue_products[0];
        assert_eq!(
            cable.routes,
            [
                pb::LicensingRoute::Ordinary as i32,
                pb::LicensingRoute::Commitment as i32
            ]
        );
        assert!(
            cable
                .time_limits
                .iter()
                .any(|l| l.kind == pb::ApplicationDeadlineKind::Decision as i32
                    && l.days == 15
                    && l.working_days)
        );
    }

    #[test]
    fn pages_and_the_route_filter() {
        let settings = settings();
        let first = list(
            &settings,
            &query(pb::ListCatalogueProductsRequest {
                page_size: 1,
                ..Default::default()
            }),
        );
        assert_eq!(first.catalogue_products[0].catalogue_code, "06-001");
        let second = list(
            &settings,
            &query(pb::ListCatalogueProductsRequest {
                page_size: 1,
                page_token: first.next_page_token,
                ..Default::default()
            }),
        );
        assert_eq!(second.catalogue_products[0].catalogue_code, "13-001");
        assert!(second.next_page_token.is_empty());
        let commitment = list(
            &settings,
            &query(pb::ListCatalogueProductsRequest {
                route: pb::LicensingRoute::Commitment as i32,
                ..Default::default()
            }),
        );
        assert_eq!(commitment.catalogue_products.len(), 1);
        assert_eq!(commitment.catalogue_products[0].catalogue_code, "06-001");
    }

    #[test]
    fn every_bad_field_is_named() {
        let err = Query::parse(&pb::ListCatalogueProductsRequest {
            route: 9,
            page_size: -1,
            page_token: "bm9wZQ".into(),
        })
        .expect_err("invalid");
        let CallError::Invalid(violations) = err else {
            panic!("not a bad request: {err:?}");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["route", "page_size", "page_token"]);
    }
}
