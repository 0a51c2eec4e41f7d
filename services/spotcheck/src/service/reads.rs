//! The reads of `SpotCheckService`: one result (or one of its versions), and the search.

use yrd_call::{Call, FieldErrors, next_page_token, violation};
use yrd_proto::v1::{
    self as pb, GetResultRequest, GetResultResponse, SearchResultsRequest, SearchResultsResponse,
};

use super::{SpotCheckHandler, to_pb};
use crate::error::CallError;
use crate::search::{decode_token, encode_token, parse_search};

impl SpotCheckHandler {
    pub(crate) async fn get(
        &self,
        call: &mut Call,
        request: GetResultRequest,
    ) -> Result<GetResultResponse, CallError> {
        let name = request.name.trim();
        call.note(vec![name.to_owned()]);
        let bad = || {
            CallError::Invalid(FieldErrors::from(violation(
                "name",
                format!("must be results/{{id}} or results/{{id}}/versions/{{n}}, got {name:?}"),
            )))
        };
        let parts: Vec<&str> = name.split('/').collect();
        let (id, version) = match parts.as_slice() {
            ["results", id] if !id.is_empty() => (*id, None),
            ["results", id, "versions", n] if !id.is_empty() => {
                let n: u32 = n.parse().map_err(|_| bad())?;
                if n == 0 {
                    return Err(bad());
                }
                (*id, Some(n))
            }
            _ => return Err(bad()),
        };
        let stored = self
            .store
            .get_result(id, version)
            .await?
            .ok_or_else(|| CallError::NotFound(name.to_owned()))?;
        let mut result = to_pb(&stored)?;
        self.with_referrals(std::slice::from_mut(&mut result))
            .await?;
        // A read of a result in a case is part of the case's story in the log
        // (docs/cases.md).
        if let Some(case) = self.store.cases_of_results(&[id]).await?.remove(id) {
            call.note(vec![name.to_owned(), format!("cases/{case}")]);
        }
        Ok(GetResultResponse {
            result: Some(result),
        })
    }

    pub(crate) async fn search(
        &self,
        request: SearchResultsRequest,
    ) -> Result<SearchResultsResponse, CallError> {
        let (filter, limit) = parse_search(&request).map_err(CallError::Invalid)?;
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(decode_token(&request.page_token).ok_or_else(|| {
                CallError::Invalid(FieldErrors::from(violation(
                    "page_token",
                    "is not a token this search returned",
                )))
            })?)
        };
        let mut rows = self
            .store
            .search_results(&filter, after.as_ref(), limit + 1)
            .await?;
        let next_page_token =
            next_page_token(&mut rows, limit as usize, |r| encode_token(&r.cursor()));
        let mut results: Vec<pb::SpotCheckResult> =
            rows.iter().map(to_pb).collect::<Result<_, _>>()?;
        self.with_referrals(&mut results).await?;
        Ok(SearchResultsResponse {
            results,
            next_page_token,
        })
    }
}
