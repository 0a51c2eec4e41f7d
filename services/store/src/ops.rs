//! Reads for operations: what the readiness probe and the gauges the server's metrics
//! computes by a slow periodic task (`docs/metrics.md`), never per call. Each is one cheap query
//! over an index (or a grouping over a small table: agencies, certificates, open referrals).

use sqlx::Row;
use time::OffsetDateTime;

use crate::time_codec::{from_micros, to_micros};
use crate::{Store, StoreError};

/// The feed of one agency as its consumer stands in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedBacklog {
    /// The recipient agency.
    pub agency: String,
    /// Events written for the agency that it has not acknowledged yet.
    pub unacknowledged: u64,
    /// When the oldest of them was written; `None` when there are none.
    pub oldest_unacknowledged: Option<OffsetDateTime>,
}

/// A count per agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyCount {
    /// The agency.
    pub agency: String,
    /// How many.
    pub count: u64,
}

impl Store {
    /// When the oldest exchange-log leaf still waiting for its index (and so for a signed
    /// tree head) was appended; `None` when every leaf is sequenced.
    pub async fn oldest_unsequenced_leaf(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let micros: Option<i64> = sqlx::query_scalar(
            "SELECT time_us FROM audit_leaves WHERE leaf_index IS NULL ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        micros.map(from_micros).transpose()
    }

    /// Per recipient agency with a feed: events not acknowledged, and when the oldest of them
    /// was written.
    pub async fn feed_backlogs(&self) -> Result<Vec<FeedBacklog>, StoreError> {
        let rows = sqlx::query(
            "SELECT h.agency_id, h.last_cursor, COALESCE(p.acked_cursor, 0) AS acked, \
                    (SELECT e.event_time FROM feed_events e \
                      WHERE e.agency_id = h.agency_id AND e.seq > COALESCE(p.acked_cursor, 0) \
                      ORDER BY e.seq LIMIT 1) AS oldest \
               FROM feed_heads h LEFT JOIN feed_positions p ON p.agency_id = h.agency_id \
              ORDER BY h.agency_id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let last: i64 = row.try_get("last_cursor")?;
                let acked: i64 = row.try_get("acked")?;
                let oldest: Option<i64> = row.try_get("oldest")?;
                Ok(FeedBacklog {
                    agency: row.try_get("agency_id")?,
                    unacknowledged: u64::try_from(last.saturating_sub(acked)).unwrap_or(0),
                    oldest_unacknowledged: oldest.map(from_micros).transpose()?,
                })
            })
            .collect()
    }

    /// Per agency, when its soonest-expiring active client certificate (valid at `now`, not
    /// revoked) expires. Agencies without one are absent.
    pub async fn soonest_certificate_expiry(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        let rows = sqlx::query(
            "SELECT agency_id, MIN(not_after) AS soonest FROM certificates \
              WHERE revoked_at IS NULL AND not_before <= $1 AND not_after >= $1 \
              GROUP BY agency_id ORDER BY agency_id",
        )
        .bind(to_micros(now))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let soonest: i64 = row.try_get("soonest")?;
                Ok((row.try_get("agency_id")?, from_micros(soonest)?))
            })
            .collect()
    }

    /// Open disposal referrals flagged overdue, per handling agency; every agency is listed,
    /// with 0 when none of its referrals is overdue.
    pub async fn overdue_referrals(&self) -> Result<Vec<AgencyCount>, StoreError> {
        self.counts(
            "SELECT a.agency_id AS agency, COUNT(r.id) AS n FROM agencies a \
               LEFT JOIN referrals r \
                 ON r.handling_agency = a.agency_id AND r.is_open = 1 AND r.overdue = 1 \
              GROUP BY a.agency_id ORDER BY a.agency_id",
        )
        .await
    }

    /// Licence applications flagged overdue, per issuing agency (the one whose time limit ran
    /// out); every agency is listed, with 0 when none of its applications is overdue.
    pub async fn overdue_applications(&self) -> Result<Vec<AgencyCount>, StoreError> {
        self.counts(
            "SELECT a.agency_id AS agency, COUNT(l.id) AS n FROM agencies a \
               LEFT JOIN licence_applications l \
                 ON l.issuing_agency = a.agency_id AND l.overdue = 1 \
              GROUP BY a.agency_id ORDER BY a.agency_id",
        )
        .await
    }

    async fn counts(&self, sql: &'static str) -> Result<Vec<AgencyCount>, StoreError> {
        let rows = sqlx::query(sql).fetch_all(&self.read).await?;
        rows.iter()
            .map(|row| {
                let n: i64 = row.try_get("n")?;
                Ok(AgencyCount {
                    agency: row.try_get("agency")?,
                    count: u64::try_from(n).unwrap_or(0),
                })
            })
            .collect()
    }
}
