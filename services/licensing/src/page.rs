//! List filters and page tokens.
//!
//! A page token is the last row's `(creation time, key)`, the store's keyset cursor, so the
//! next page starts strictly after it whatever was added in between. Like every field, each
//! bad filter is named in one `BadRequest`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use yrd_domain::AgencyId;
use yrd_domain::uscc::Uscc;
use yrd_proto::v1 as pb;
use yrd_store::licensing::ProvinceRole;
use yrd_store::{ApplicationFilter, LicenceFilter, PageCursor};

use crate::error::CallError;
use yrd_call::FieldErrors;

/// Rows per page when the request does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Most rows per page.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Encodes a cursor as a page token.
pub fn encode_token(c: &PageCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", c.created_at_us, c.key))
}

/// Decodes a page token.
pub fn decode_token(token: &str) -> Option<PageCursor> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, key) = text.split_once(':')?;
    if key.is_empty() {
        return None;
    }
    Some(PageCursor {
        created_at_us: at.parse().ok()?,
        key: key.to_owned(),
    })
}

/// Keeps `limit` of `rows` (which were read with `limit + 1`) and answers the next token.
pub fn next_token<T>(rows: &mut Vec<T>, limit: u32, cursor: impl Fn(&T) -> PageCursor) -> String {
    yrd_call::next_page_token(rows, limit as usize, |r| encode_token(&cursor(r)))
}

fn page(e: &mut FieldErrors, size: i32, token: &str) -> (u32, Option<PageCursor>) {
    let limit = match size {
        0 => DEFAULT_PAGE_SIZE,
        n if n < 0 => {
            e.add("page_size", "must not be negative");
            DEFAULT_PAGE_SIZE
        }
        n => u32::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
    };
    let after = if token.trim().is_empty() {
        None
    } else {
        let cursor = decode_token(token);
        if cursor.is_none() {
            e.add("page_token", "is not a token this list returned");
        }
        cursor
    };
    (limit, after)
}

fn uscc(e: &mut FieldErrors, field: &str, value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Uscc::parse(value)
        .map(|u| u.as_str().to_owned())
        .map_err(|err| e.add(field, err.to_string()))
        .ok()
}

/// The store filter, page size and cursor of a `ListApplications` call by `viewer`.
pub fn application_filter(
    viewer: AgencyId,
    r: &pb::ListApplicationsRequest,
) -> Result<(ApplicationFilter, u32, Option<PageCursor>), CallError> {
    let mut e = FieldErrors::new();
    let state = match pb::ApplicationState::try_from(r.state) {
        Ok(pb::ApplicationState::Unspecified) => None,
        Ok(s) => Some(s.as_str_name().to_owned()),
        Err(_) => {
            e.add("state", "is not an ApplicationState");
            None
        }
    };
    let role = match pb::ProvinceRole::try_from(r.province_role) {
        Ok(pb::ProvinceRole::Unspecified) => None,
        Ok(pb::ProvinceRole::Accepting) => Some(ProvinceRole::Accepting),
        Ok(pb::ProvinceRole::Issuing) => Some(ProvinceRole::Issuing),
        Err(_) => {
            e.add("province_role", "is not a ProvinceRole");
            None
        }
    };
    let applicant_uscc = uscc(&mut e, "applicant_uscc", &r.applicant_uscc);
    let catalogue_code = Some(r.catalogue_code.trim().to_owned()).filter(|c| !c.is_empty());
    let (limit, after) = page(&mut e, r.page_size, &r.page_token);
    if !e.is_empty() {
        return Err(CallError::Invalid(e));
    }
    Ok((
        ApplicationFilter {
            viewer,
            role,
            state,
            applicant_uscc,
            catalogue_code,
            overdue: r.overdue,
        },
        limit,
        after,
    ))
}

/// The store filter, page size and cursor of a `ListLicences` call by `viewer`.
pub fn licence_filter(
    viewer: AgencyId,
    r: &pb::ListLicencesRequest,
) -> Result<(LicenceFilter, u32, Option<PageCursor>), CallError> {
    let mut e = FieldErrors::new();
    let state = match pb::LicenceState::try_from(r.state) {
        Ok(pb::LicenceState::Unspecified) => None,
        Ok(s) => Some(s.as_str_name().to_owned()),
        Err(_) => {
            e.add("state", "is not a LicenceState");
            None
        }
    };
    let holder_uscc = uscc(&mut e, "holder_uscc", &r.holder_uscc);
    let catalogue_code = Some(r.catalogue_code.trim().to_owned()).filter(|c| !c.is_empty());
    let issuing_agency = match r.issuing_agency.trim() {
        "" => None,
        name => yrd_call::resource_id(name, "agencies", "issuing_agency")
            .map_err(|v| e.push(v))
            .ok()
            .and_then(|id| {
                AgencyId::parse(id)
                    .map_err(|err| e.add("issuing_agency", err.to_string()))
                    .ok()
            }),
    };
    let (limit, after) = page(&mut e, r.page_size, &r.page_token);
    if !e.is_empty() {
        return Err(CallError::Invalid(e));
    }
    Ok((
        LicenceFilter {
            viewer,
            holder_uscc,
            catalogue_code,
            state,
            issuing_agency,
        },
        limit,
        after,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let c = PageCursor {
            created_at_us: 1_700_000_000_000_000,
            key: "(鲁)XK13-001-00001".into(),
        };
        assert_eq!(decode_token(&encode_token(&c)), Some(c));
        assert_eq!(decode_token("not a token"), None);
        assert_eq!(decode_token(&URL_SAFE_NO_PAD.encode("12:")), None);
    }
}
