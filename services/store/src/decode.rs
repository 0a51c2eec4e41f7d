//! Reading rows back into the store's types: a stored column into its value (times are Unix
//! microseconds, flags `0/1`, agency ids and parsed values text, counts non-negative
//! `BIGINT`s), a row into its record ([`FromRow`]), and a query's rows into records.
//!
//! A value that no longer parses is [`StoreError::Corrupt`], named by `what`, whichever record
//! it belongs to.

use std::fmt::Display;
use std::str::FromStr;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Executor, Row};
use time::OffsetDateTime;

use crate::StoreError;
use crate::time_codec::from_micros;

/// A query on the `Any` driver with its values bound.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

/// A record the store reads back from one row of its columns.
pub(crate) trait FromRow: Sized {
    /// The record of `row`.
    fn from_row(row: &AnyRow) -> Result<Self, StoreError>;
}

/// The record of the row `query` finds on `executor`, if it finds one.
pub(crate) async fn optional<'q, 'c, T, E>(
    query: AnyQuery<'q>,
    executor: E,
) -> Result<Option<T>, StoreError>
where
    T: FromRow,
    E: Executor<'c, Database = Any> + 'q,
{
    let row = query.fetch_optional(executor).await?;
    row.as_ref().map(T::from_row).transpose()
}

/// The records of the rows `query` finds on `executor`, in their order.
pub(crate) async fn all<'q, 'c, T, E>(
    query: AnyQuery<'q>,
    executor: E,
) -> Result<Vec<T>, StoreError>
where
    T: FromRow,
    E: Executor<'c, Database = Any> + 'q,
{
    let rows = query.fetch_all(executor).await?;
    rows.iter().map(T::from_row).collect()
}

/// An instant stored as Unix microseconds.
pub(crate) fn time(row: &AnyRow, column: &str) -> Result<OffsetDateTime, StoreError> {
    from_micros(row.try_get(column)?)
}

/// An instant stored as Unix microseconds, or `NULL`.
pub(crate) fn time_opt(row: &AnyRow, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    row.try_get::<Option<i64>, _>(column)?
        .map(from_micros)
        .transpose()
}

/// A flag stored as `0/1`.
pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// A number stored as a `BIGINT` that must fit `N` (a version, a cursor, a size).
pub(crate) fn number<N>(row: &AnyRow, column: &str, what: &'static str) -> Result<N, StoreError>
where
    N: TryFrom<i64>,
    N::Error: Display,
{
    N::try_from(row.try_get::<i64, _>(column)?).map_err(|e| StoreError::corrupt(what, e))
}

/// A value stored as its text form (an agency id, a hash, a profile name).
pub(crate) fn parsed<T>(row: &AnyRow, column: &str, what: &'static str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: Display,
{
    row.try_get::<String, _>(column)?
        .parse()
        .map_err(|e| StoreError::corrupt(what, e))
}
