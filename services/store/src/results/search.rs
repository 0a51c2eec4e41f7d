//! The search over results' latest versions: newest first, keyset pages, driven by the index
//! that fits the filter (see the module docs of `results`).

use std::collections::HashMap;
use std::sync::LazyLock;

use sqlx::Row;
use yrd_domain::AgencyId;
use yrd_domain::uscc::Uscc;

use super::{
    RESULT_COLUMNS, ResultCursor, ResultFilter, ResultState, StoredResult, campaign_kind_name,
    db_version, iso_date, name_bigrams, verdict_name,
};
use crate::conditions::Conditions;
use crate::decode::{self, AnyQuery};
use crate::multirow::placeholders;
use crate::text::{contains_pattern, fold_name};
use crate::{Store, StoreError};

/// Result `$1` in its latest version.
static LATEST_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RESULT_COLUMNS} FROM results r JOIN result_versions v \
         ON v.result_id = r.id AND v.version = r.latest_version WHERE r.id = $1"
    )
});

/// Result `$1` in version `$2`.
static VERSION_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RESULT_COLUMNS} FROM results r JOIN result_versions v \
         ON v.result_id = r.id WHERE r.id = $1 AND v.version = $2"
    )
});

impl Store {
    /// Result `id` in version `version`, or in its latest version when `None`; `None` when
    /// there is no such result or version.
    pub async fn get_result(
        &self,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<StoredResult>, StoreError> {
        let query = match version {
            None => sqlx::query(&LATEST_BY_ID).bind(id),
            Some(n) => sqlx::query(&VERSION_BY_ID).bind(id).bind(db_version(n)),
        };
        decode::optional(query, &self.read).await
    }

    /// Up to `limit` results matching `filter` (latest versions), newest publication first,
    /// strictly after `after` in that order.
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "search_results", db.system = self.backend().as_str()))]
    pub async fn search_results(
        &self,
        filter: &ResultFilter,
        after: Option<&ResultCursor>,
        limit: u32,
    ) -> Result<Vec<StoredResult>, StoreError> {
        let ids = match Plan::of(filter) {
            Plan::Direct => self.search_ids(filter, after, limit, Dates::Filter).await?,
            Plan::WalkThenRange => {
                // Walk the equality filter's index in page order for a bounded number of rows,
                // checking the dates here: when the range is recent (or the filter narrow),
                // the page is found in the first rows. Otherwise continue after the walked
                // rows from the range's own index, whose cost is the rows the range holds.
                let walked = self.search_walk(filter, after, WALK_BUDGET).await?;
                let exhausted = walked.len() < WALK_BUDGET as usize;
                let last = walked.last().map(|(cursor, _)| cursor.clone());
                let (from, to) = (
                    filter.sampled_from.map(iso_date),
                    filter.sampled_to.map(iso_date),
                );
                let mut ids: Vec<String> = walked
                    .into_iter()
                    .filter(|(_, date)| {
                        from.as_deref().is_none_or(|f| date.as_str() >= f)
                            && to.as_deref().is_none_or(|t| date.as_str() <= t)
                    })
                    .map(|(cursor, _)| cursor.id)
                    .take(limit as usize)
                    .collect();
                let missing = limit.saturating_sub(ids.len() as u32);
                if missing > 0 && !exhausted {
                    ids.extend(
                        self.search_ids(filter, last.as_ref().or(after), missing, Dates::Drive)
                            .await?,
                    );
                }
                ids
            }
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM results r JOIN result_versions v \
             ON v.result_id = r.id AND v.version = r.latest_version WHERE r.id IN {}",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(id.as_str());
        }
        let mut by_id: HashMap<String, StoredResult> = HashMap::new();
        for result in decode::all::<StoredResult, _>(query, &self.read).await? {
            by_id.insert(result.id.clone(), result);
        }
        ids.iter()
            .map(|id| {
                by_id
                    .remove(id)
                    .ok_or_else(|| StoreError::corrupt("result", "found by search, not by id"))
            })
            .collect()
    }
}

impl Store {
    /// The ids of one search page, driven as `dates` says.
    async fn search_ids(
        &self,
        filter: &ResultFilter,
        after: Option<&ResultCursor>,
        limit: u32,
        dates: Dates,
    ) -> Result<Vec<String>, StoreError> {
        let page = SearchQuery::new(filter, after, limit, dates);
        page.query()
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|row| row.try_get("id").map_err(StoreError::from))
            .collect()
    }

    /// Up to `budget` results matching `filter` but its sampling dates, in page order after
    /// `after`: each one's cursor and sampling date.
    async fn search_walk(
        &self,
        filter: &ResultFilter,
        after: Option<&ResultCursor>,
        budget: u32,
    ) -> Result<Vec<(ResultCursor, String)>, StoreError> {
        let page = SearchQuery::new(filter, after, budget, Dates::Check);
        page.query()
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    ResultCursor {
                        created_at_us: row.try_get("created_at")?,
                        id: row.try_get("id")?,
                    },
                    row.try_get("sampling_date")?,
                ))
            })
            .collect()
    }
}

/// Rows a date-range search walks in page order before it turns to the range's index
/// ([`Plan::WalkThenRange`]).
const WALK_BUDGET: u32 = 400;

/// How a search finds its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// One query, driven by the index that fits the filter.
    Direct,
    /// A sampling-date range with an equality filter on `results` (an agency, a verdict, …):
    /// first a bounded walk of the equality's index in page order, then the range's index.
    /// Either alone is slow for some ranges: the walk reads every newer result of the agency
    /// before an old range, the range's index every result of a wide one (measured in
    /// benches/search.rs, docs/performance.md "Search at 1,000,000 results").
    WalkThenRange,
}

impl Plan {
    fn of(filter: &ResultFilter) -> Plan {
        let dates = filter.sampled_from.is_some() || filter.sampled_to.is_some();
        let driven_elsewhere = filter.region.is_some() || name_gram(filter).is_some();
        let equality = filter.producer_uscc.is_some()
            || filter.seller_uscc.is_some()
            || filter.platform.is_some()
            || filter.verdict.is_some()
            || filter.campaign_code.is_some()
            || filter.campaign_kind.is_some()
            || filter.publisher.is_some()
            || filter.state.is_some();
        if dates && equality && !driven_elsewhere {
            Plan::WalkThenRange
        } else {
            Plan::Direct
        }
    }
}

/// What a search query does with the sampling-date range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dates {
    /// Filters by it; with no other filter the range's index drives the query.
    Filter,
    /// Filters by it and lets the range's index drive the query whatever else filters.
    Drive,
    /// Leaves it out and answers each row's sampling date and publication time, for the
    /// caller to check.
    Check,
}

/// The bigram a product-name filter is driven by, if it has one.
fn name_gram(filter: &ResultFilter) -> Option<String> {
    let name = filter
        .product_name_contains
        .as_deref()
        .map(fold_name)
        .filter(|n| !n.is_empty())?;
    name_bigrams(&name).into_iter().next()
}

/// Whether a product-name search walks its bigram's rows in page order and checks each
/// result in a fenced subquery, rather than joining `results` and leaving the order of the join
/// to the planner.
///
/// Without statistics (a new database, before autovacuum's first `ANALYZE`) PostgreSQL takes
/// an equality on `results` (e.g. `verdict = 'non_conforming'`) as highly selective, drives the
/// join from that column's index and probes the bigram table once per result: every result of
/// the verdict is read to find one page (a `search-category` of `yrd-bench` at 5,600 results:
/// 83–137 ms a call instead of 0.1–0.4 ms; docs/performance.md). A plain `EXISTS` is no
/// remedy: it becomes a semi-join, which the planner turns into the same join. `OFFSET 0`
/// keeps the subquery a per-row check (PostgreSQL never flattens a subquery with an `OFFSET`;
/// SQLite runs a correlated `EXISTS` per row anyway), so the page costs the bigram rows walked.
///
/// A producer's or seller's USCC is narrower than any bigram (tens of results where a bigram
/// has thousands): with one of them the join stays, so that its index can drive.
fn fence_name_walk(filter: &ResultFilter) -> bool {
    filter.producer_uscc.is_none() && filter.seller_uscc.is_none()
}

/// The id query of one search page: which table drives it (so the page is an index range in
/// page order) and the conditions on `results`.
#[derive(Debug)]
struct SearchQuery {
    sql: String,
    conditions: Conditions,
}

impl SearchQuery {
    fn new(
        filter: &ResultFilter,
        after: Option<&ResultCursor>,
        limit: u32,
        dates: Dates,
    ) -> SearchQuery {
        let mut q = Conditions::default();
        let name = filter
            .product_name_contains
            .as_deref()
            .map(fold_name)
            .filter(|n| !n.is_empty());
        let name_gram = name_gram(filter);

        // The driving table: its (created_at, id) columns give the page order.
        let mut verdict = filter.verdict;
        // Whether the conditions on `results` go into a fenced subquery (`fence_name_walk`).
        let mut fenced = false;
        let (from, created, id) = if let Some(region) = &filter.region {
            q.when("d.place = ?", Some(region.as_str()));
            q.when("d.verdict = ?", verdict.take().map(verdict_name));
            (
                "result_places d JOIN results r ON r.id = d.result_id",
                "d.created_at",
                "d.result_id",
            )
        } else if let Some(gram) = &name_gram {
            q.when("d.gram = ?", Some(gram.as_str()));
            fenced = fence_name_walk(filter);
            if fenced {
                ("result_name_grams d", "d.created_at", "d.result_id")
            } else {
                (
                    "result_name_grams d JOIN results r ON r.id = d.result_id",
                    "d.created_at",
                    "d.result_id",
                )
            }
        } else {
            ("results r", "r.created_at", "r.id")
        };

        // The conditions from here to the keyset are on `results`.
        let on_results_from = q.len();
        q.when(
            "r.producer_uscc = ?",
            filter.producer_uscc.as_ref().map(Uscc::as_str),
        );
        q.when(
            "r.seller_uscc = ?",
            filter.seller_uscc.as_ref().map(Uscc::as_str),
        );
        q.when("r.platform = ?", filter.platform.as_deref());
        q.when("r.verdict = ?", verdict.map(verdict_name));
        q.when("r.campaign_code = ?", filter.campaign_code.as_deref());
        q.when(
            "r.campaign_kind = ?",
            filter.campaign_kind.map(campaign_kind_name),
        );
        q.when(
            "r.publisher = ?",
            filter.publisher.as_ref().map(AgencyId::as_str),
        );
        q.when("r.state = ?", filter.state.map(ResultState::as_str));
        // With no equality filter, a sampling-date range is served by its own index: the
        // results sampled in the range, sorted. Left to itself the planner may instead walk
        // the newest-first index and filter, which reads the whole table for an old range; the
        // unary plus keeps it off that index. The cost is proportional to the results sampled
        // in the range (measured in benches/search.rs).
        // With an equality filter as well, `Dates::Drive` does the same for the second step of
        // `Plan::WalkThenRange` (the agency's range is then one range of
        // `results_by_publisher_sampling`).
        let has_range = filter.sampled_from.is_some() || filter.sampled_to.is_some();
        let created =
            if has_range && (dates == Dates::Drive || (dates == Dates::Filter && q.is_empty())) {
                "+r.created_at"
            } else {
                created
            };
        if dates != Dates::Check {
            q.when("r.sampling_date >= ?", filter.sampled_from.map(iso_date));
            q.when("r.sampling_date <= ?", filter.sampled_to.map(iso_date));
        }
        q.when(
            "r.product_name_fold LIKE ? ESCAPE '\\'",
            name.as_deref().map(contains_pattern),
        );
        if fenced {
            // A walk answers the sampling dates from `results`: never with a fenced name walk
            // (`Plan::of` drives a name search directly).
            debug_assert!(dates != Dates::Check, "a name search is never walked");
            q.fence(on_results_from, |on_results| {
                format!(
                    "EXISTS (SELECT 1 FROM results r WHERE r.id = d.result_id AND {on_results} \
                     LIMIT 1 OFFSET 0)"
                )
            });
        }
        q.after(created, id, after.map(|c| (c.created_at_us, c.id.as_str())));
        let extra = if dates == Dates::Check {
            ", r.created_at AS created_at, r.sampling_date AS sampling_date"
        } else {
            ""
        };
        let sql = q.newest_first(
            &format!("SELECT {id} AS id{extra} FROM {from}"),
            created,
            id,
            limit,
        );
        SearchQuery { sql, conditions: q }
    }

    /// The query with its values bound.
    fn query(&self) -> AnyQuery<'_> {
        self.conditions.query(&self.sql)
    }
}

#[cfg(test)]
mod tests {
    use yrd_domain::RegionCode;
    use yrd_domain::spotcheck::Verdict;

    use super::*;

    fn region(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    #[test]
    fn the_region_drives_a_region_search() {
        let filter = ResultFilter {
            region: Some(region("330000")),
            verdict: Some(Verdict::NonConforming),
            ..Default::default()
        };
        let q = SearchQuery::new(&filter, None, 50, Dates::Filter);
        assert!(q.sql.contains("FROM result_places d"), "{}", q.sql);
        assert!(
            q.sql
                .ends_with("ORDER BY d.created_at DESC, d.result_id DESC LIMIT $3")
        );
        assert_eq!(q.conditions.bound(), 3);
    }

    #[test]
    fn a_name_search_walks_its_bigram_and_checks_results_in_a_fenced_subquery() {
        let filter = ResultFilter {
            product_name_contains: Some("玩具".into()),
            verdict: Some(Verdict::NonConforming),
            ..Default::default()
        };
        let after = ResultCursor {
            created_at_us: 7,
            id: "x".into(),
        };
        let q = SearchQuery::new(&filter, Some(&after), 20, Dates::Filter);
        assert!(
            q.sql.starts_with(
                "SELECT d.result_id AS id FROM result_name_grams d WHERE d.gram = $1 AND \
                 EXISTS (SELECT 1 FROM results r WHERE r.id = d.result_id AND r.verdict = $2 \
                 AND r.product_name_fold LIKE $3 ESCAPE '\\' LIMIT 1 OFFSET 0) AND \
                 d.created_at <= $4"
            ),
            "{}",
            q.sql
        );
        assert!(
            q.sql
                .ends_with("ORDER BY d.created_at DESC, d.result_id DESC LIMIT $6")
        );

        // A USCC is narrower than the bigram: the planner may drive by its index.
        let body = "91310000MA1FL0LX0";
        let check = yrd_domain::uscc::check_character(body).unwrap();
        let filter = ResultFilter {
            producer_uscc: Some(yrd_domain::uscc::Uscc::parse(&format!("{body}{check}")).unwrap()),
            ..filter
        };
        let q = SearchQuery::new(&filter, None, 20, Dates::Filter);
        assert!(
            q.sql
                .contains("FROM result_name_grams d JOIN results r ON r.id = d.result_id"),
            "{}",
            q.sql
        );
        assert!(!q.sql.contains("EXISTS"), "{}", q.sql);
    }
}
