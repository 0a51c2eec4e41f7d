//! Monotonic counters, advanced inside the transaction that consumes the value, so two
//! replicas never hand out the same number.

use sqlx::AnyConnection;

use crate::StoreError;

/// Advances counter `name` by one on `conn` (inside a write) and answers the new value.
pub(crate) async fn next(conn: &mut AnyConnection, name: &str) -> Result<i64, StoreError> {
    let value: i64 =
        sqlx::query_scalar("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
    Ok(value)
}
