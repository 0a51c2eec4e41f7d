//! A `SearchResultsRequest` as a store filter, and the page token.
//!
//! Every filter is parsed once here and every bad one is reported together, like a write's
//! fields. The page token is the last result's `(publication time, id)`: the store's keyset
//! cursor, so the next page starts strictly after it whatever was published in between.

use yrd_call::{FieldErrors, resource_id, violation};
use yrd_domain::spotcheck::{CampaignKind, Verdict, parse_date};
use yrd_domain::uscc::Uscc;
use yrd_domain::{AgencyId, RegionCode};
use yrd_proto::v1::{self as pb, SearchResultsRequest};
use yrd_store::{ResultCursor, ResultFilter, ResultState};

/// Results per page when the request does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Most results per page.
pub const MAX_PAGE_SIZE: u32 = 500;
/// Longest text filter, in characters.
const MAX_FILTER_CHARS: usize = 200;

/// The store filter and page size of a search, or every bad field.
pub fn parse_search(r: &SearchResultsRequest) -> Result<(ResultFilter, u32), FieldErrors> {
    let mut errors = FieldErrors::new();
    let text = |field: &str, value: &str, errors: &mut FieldErrors| {
        let value = value.trim();
        if value.is_empty() {
            None
        } else if value.chars().count() > MAX_FILTER_CHARS {
            errors.push(violation(
                field,
                format!("must be at most {MAX_FILTER_CHARS} characters"),
            ));
            None
        } else {
            Some(value.to_owned())
        }
    };
    let uscc = |field: &str, value: &str, errors: &mut FieldErrors| {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        Uscc::parse(value)
            .map_err(|e| errors.push(violation(field, e.to_string())))
            .ok()
    };
    let producer_uscc = uscc("producer_uscc", &r.producer_uscc, &mut errors);
    let seller_uscc = uscc("seller_uscc", &r.seller_uscc, &mut errors);
    let product_name_contains = text(
        "product_name_contains",
        &r.product_name_contains,
        &mut errors,
    );
    let platform = text("platform", &r.platform, &mut errors);
    let region = match r.region_code.trim() {
        "" => None,
        code => RegionCode::parse(code)
            .map_err(|e| errors.push(violation("region_code", e.to_string())))
            .ok(),
    };
    let verdict = match r.verdict {
        0 => None,
        n => {
            let v = Verdict::from_wire(n);
            if v.is_none() {
                errors.push(violation(
                    "verdict",
                    "must be VERDICT_CONFORMING or VERDICT_NON_CONFORMING (or unset for any)",
                ));
            }
            v
        }
    };
    let campaign_code = text("campaign_code", &r.campaign_code, &mut errors);
    let (sampled_from, sampled_to) = match &r.sampling_date {
        None => (None, None),
        Some(range) => {
            let mut date = |field: &str, value: &str| match value.trim() {
                "" => None,
                value => parse_date(value)
                    .map_err(|e| errors.push(violation(field, e)))
                    .ok(),
            };
            let from = date("sampling_date.start_date", &range.start_date);
            let to = date("sampling_date.end_date", &range.end_date);
            if let (Some(from), Some(to)) = (from, to) {
                if from > to {
                    errors.push(violation(
                        "sampling_date.end_date",
                        "is before sampling_date.start_date",
                    ));
                }
            }
            (from, to)
        }
    };
    let publisher = match r.publisher_agency.trim() {
        "" => None,
        name => resource_id(name, "agencies", "publisher_agency")
            .and_then(|id| {
                AgencyId::parse(id).map_err(|e| violation("publisher_agency", e.to_string()))
            })
            .map_err(|v| errors.push(v))
            .ok(),
    };
    let state = match pb::ResultState::try_from(r.state) {
        Ok(pb::ResultState::Unspecified) => None,
        Ok(pb::ResultState::Published) => Some(ResultState::Published),
        Ok(pb::ResultState::Withdrawn) => Some(ResultState::Withdrawn),
        Err(_) => {
            errors.push(violation("state", "unknown state"));
            None
        }
    };
    let campaign_kind = match r.campaign_kind {
        0 => None,
        n => {
            let k = CampaignKind::from_wire(n);
            if k.is_none() {
                errors.push(violation(
                    "campaign_kind",
                    format!("unknown campaign kind {n}"),
                ));
            }
            k
        }
    };
    let page_size = match r.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n < 0 => {
            errors.push(violation("page_size", "must not be negative"));
            DEFAULT_PAGE_SIZE
        }
        n => u32::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        ResultFilter {
            producer_uscc,
            seller_uscc,
            product_name_contains,
            platform,
            region,
            verdict,
            campaign_code,
            campaign_kind,
            sampled_from,
            sampled_to,
            publisher,
            state,
        },
        page_size,
    ))
}

/// The page token of a cursor: `<publication time in µs>.<result id>`.
pub fn encode_token(c: &ResultCursor) -> String {
    format!("{}.{}", c.created_at_us, c.id)
}

/// The cursor of a page token this search returned, or `None`.
pub fn decode_token(token: &str) -> Option<ResultCursor> {
    let (micros, id) = token.split_once('.')?;
    let created_at_us: i64 = micros.parse().ok()?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(ResultCursor {
        created_at_us,
        id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_filter_is_named() {
        let request = SearchResultsRequest {
            producer_uscc: "91350100M000100Y44".into(),
            region_code: "990000".into(),
            verdict: 3,
            sampling_date: Some(pb::DateRange {
                start_date: "2024-06-02".into(),
                end_date: "2024-06-01".into(),
            }),
            publisher_agency: "370000-AMR".into(),
            page_size: -1,
            ..Default::default()
        };
        let fields: Vec<String> = parse_search(&request)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "producer_uscc",
                "region_code",
                "verdict",
                "sampling_date.end_date",
                "publisher_agency",
                "page_size"
            ]
        );
    }

    #[test]
    fn tokens_round_trip_and_refuse_junk() {
        let c = ResultCursor {
            created_at_us: 1_700_000_000_000_000,
            id: "0190abcdef".into(),
        };
        assert_eq!(decode_token(&encode_token(&c)), Some(c));
        for junk in ["", "x.y", "1.", "1.zz", "abc"] {
            assert_eq!(decode_token(junk), None, "{junk}");
        }
    }
}
