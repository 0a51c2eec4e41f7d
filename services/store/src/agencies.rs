//! Agencies known to the exchange (`docs/domain.md` §"Parties").

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row};
use time::OffsetDateTime;
use yrd_domain::AgencyId;

use yrd_domain::audit::LeafData;

use crate::decode::{self, FromRow};
use crate::time_codec::to_micros;
use crate::write::refuse_existing;
use crate::write::{Answer, Answered, Rows, Write, WriteError};
use crate::{Store, StoreError};

/// Whether an agency may call the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgencyState {
    /// Admitted.
    Active,
    /// Registered but not admitted for now.
    Suspended,
}

impl AgencyState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgencyState::Active => "active",
            AgencyState::Suspended => "suspended",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(AgencyState::Active),
            "suspended" => Ok(AgencyState::Suspended),
            other => Err(StoreError::corrupt("agency state", other)),
        }
    }
}

/// An agency to register.
#[derive(Debug, Clone)]
pub struct NewAgency {
    /// `<GB/T 2260 code>-<short code>`.
    pub agency_id: AgencyId,
    /// English name.
    pub display_name: String,
    /// Chinese name.
    pub display_name_zh: String,
    /// A member of the Yangtze River Delta exchange (receives Delta joint campaign results).
    pub is_delta_member: bool,
    /// The province-level market-regulation authority of its province: the agency that
    /// handles results and referrals for producers located there.
    pub is_province_authority: bool,
}

/// Changes to a registered agency; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AgencyUpdate {
    /// New English name.
    pub display_name: Option<String>,
    /// New Chinese name.
    pub display_name_zh: Option<String>,
    /// Admit or suspend.
    pub state: Option<AgencyState>,
    /// Delta membership.
    pub is_delta_member: Option<bool>,
    /// Province-level authority.
    pub is_province_authority: Option<bool>,
}

/// A registered agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    /// `<GB/T 2260 code>-<short code>`.
    pub agency_id: AgencyId,
    /// English name.
    pub display_name: String,
    /// Chinese name.
    pub display_name_zh: String,
    /// Admitted or suspended.
    pub state: AgencyState,
    /// A member of the Delta exchange.
    pub is_delta_member: bool,
    /// The province-level authority of its province.
    pub is_province_authority: bool,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl FromRow for Agency {
    fn from_row(row: &AnyRow) -> Result<Agency, StoreError> {
        Ok(Agency {
            agency_id: decode::parsed(row, "agency_id", "agency id")?,
            display_name: row.try_get("display_name")?,
            display_name_zh: row.try_get("display_name_zh")?,
            state: AgencyState::parse(&row.try_get::<String, _>("state")?)?,
            is_delta_member: decode::flag(row, "is_delta_member")?,
            is_province_authority: decode::flag(row, "is_province_authority")?,
            created_at: decode::time(row, "created_at")?,
            updated_at: decode::time(row, "updated_at")?,
        })
    }
}

const AGENCY_COLUMNS: &str = "agency_id, display_name, display_name_zh, state, is_delta_member, \
                              is_province_authority, created_at, updated_at";

/// Agency `id` as `executor` (a pool, or a transaction that may have just written it) sees it.
async fn fetch_agency<'e, E>(executor: E, id: &AgencyId) -> Result<Option<Agency>, StoreError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let sql = format!("SELECT {AGENCY_COLUMNS} FROM agencies WHERE agency_id = $1");
    decode::optional(sqlx::query(&sql).bind(id.as_str()), executor).await
}

impl Store {
    /// Registers an agency, and appends `leaf` (the admin call's audit leaf) in the same
    /// transaction. Fails with [`StoreError::AlreadyExists`] when the id is taken.
    pub async fn create_agency(
        &self,
        agency: &NewAgency,
        now: OffsetDateTime,
        leaf: Option<&LeafData>,
    ) -> Result<Agency, StoreError> {
        self.create_agency_answered(agency, now, leaf, None)
            .await?
            .written()
            .ok_or_else(|| StoreError::corrupt("agency", "a write without a request id replayed"))
    }

    /// As [`Store::create_agency`], recording `answer` for retries of the same request in the
    /// same write (a retry answers [`Answered::Replayed`] and writes nothing).
    pub async fn create_agency_answered(
        &self,
        agency: &NewAgency,
        now: OffsetDateTime,
        leaf: Option<&LeafData>,
        answer: Option<Answer<Agency>>,
    ) -> Result<Answered<Agency>, StoreError> {
        let write = Write::new(CreateRows {
            agency: agency.clone(),
            now,
        })
        .claim(answer.map(|a| a.into_claim(now)))
        .leaf(leaf.cloned());
        self.commit(write)
            .await
            .map(|done| done.map(|w| w.value))
            .map_err(WriteError::into_store)
    }

    /// Registers an agency unless one with that id exists; answers whether it was created.
    pub async fn ensure_agency(
        &self,
        agency: &NewAgency,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        match self.create_agency(agency, now, None).await {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One agency by id.
    pub async fn get_agency(&self, id: &AgencyId) -> Result<Option<Agency>, StoreError> {
        fetch_agency(&self.read, id).await
    }

    /// Every registered agency, ordered by id.
    pub async fn list_agencies(&self) -> Result<Vec<Agency>, StoreError> {
        let sql = format!("SELECT {AGENCY_COLUMNS} FROM agencies ORDER BY agency_id");
        decode::all(sqlx::query(&sql), &self.read).await
    }

    /// Applies `update` to agency `id` (with the call's audit `leaf` and, when given, the
    /// `answer` for retries, in the same write); answers the agency as it now is, or `None`
    /// when no agency has that id.
    pub async fn update_agency(
        &self,
        id: &AgencyId,
        update: &AgencyUpdate,
        now: OffsetDateTime,
        leaf: Option<&LeafData>,
        answer: Option<Answer<Agency>>,
    ) -> Result<Option<Answered<Agency>>, StoreError> {
        let write = Write::new(UpdateRows {
            id: id.clone(),
            update: update.clone(),
            now,
        })
        .claim(answer.map(|a| a.into_claim(now)))
        .leaf(leaf.cloned());
        match self.commit(write).await {
            Ok(done) => Ok(Some(done.map(|w| w.value))),
            Err(WriteError::Refused(NoSuchAgency)) => Ok(None),
            Err(e) => Err(match e.refusal() {
                Ok(NoSuchAgency) => StoreError::corrupt("agency", "refusal lost"),
                Err(e) => e,
            }),
        }
    }

    /// The ids of the suspended agencies (their calls are refused, whatever certificate or
    /// token they hold).
    pub async fn suspended_agencies(&self) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT agency_id FROM agencies WHERE state = $1 ORDER BY agency_id",
        )
        .bind(AgencyState::Suspended.as_str())
        .fetch_all(&self.read)
        .await?;
        Ok(ids)
    }
}

/// The rows of registering an agency.
#[derive(Debug, Clone)]
struct CreateRows {
    agency: NewAgency,
    now: OffsetDateTime,
}

impl Rows for CreateRows {
    type Value = Agency;
    /// [`StoreError::AlreadyExists`] when the id is taken.
    type Refusal = StoreError;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<Agency, WriteError<StoreError>> {
        let agency = &self.agency;
        let result = sqlx::query(
            "INSERT INTO agencies (agency_id, region_code, display_name, display_name_zh, state, \
             is_delta_member, is_province_authority, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(agency.agency_id.as_str())
        .bind(agency.agency_id.region().as_str())
        .bind(&agency.display_name)
        .bind(&agency.display_name_zh)
        .bind(AgencyState::Active.as_str())
        .bind(i64::from(agency.is_delta_member))
        .bind(i64::from(agency.is_province_authority))
        .bind(to_micros(self.now))
        .execute(&mut *conn)
        .await;
        refuse_existing(result, || format!("agency {}", agency.agency_id))?;
        Ok(fetch_agency(&mut *conn, &agency.agency_id)
            .await?
            .ok_or_else(|| StoreError::corrupt("agency", "vanished right after insert"))?)
    }
}

/// No agency has the id an update names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NoSuchAgency;

/// The rows of changing an agency.
#[derive(Debug, Clone)]
struct UpdateRows {
    id: AgencyId,
    update: AgencyUpdate,
    now: OffsetDateTime,
}

impl Rows for UpdateRows {
    type Value = Agency;
    type Refusal = NoSuchAgency;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<Agency, WriteError<NoSuchAgency>> {
        let update = &self.update;
        let changed = sqlx::query(
            "UPDATE agencies SET \
               display_name = COALESCE($1, display_name), \
               display_name_zh = COALESCE($2, display_name_zh), \
               state = COALESCE($3, state), \
               is_delta_member = COALESCE($4, is_delta_member), \
               is_province_authority = COALESCE($5, is_province_authority), \
               updated_at = $6 \
             WHERE agency_id = $7",
        )
        .bind(update.display_name.as_deref())
        .bind(update.display_name_zh.as_deref())
        .bind(update.state.map(AgencyState::as_str))
        .bind(update.is_delta_member.map(i64::from))
        .bind(update.is_province_authority.map(i64::from))
        .bind(to_micros(self.now))
        .bind(self.id.as_str())
        .execute(&mut *conn)
        .await?;
        if changed.rows_affected() == 0 {
            return Err(WriteError::Refused(NoSuchAgency));
        }
        if update.state.is_some() {
            // Suspending or resuming moves the same counter as a revocation, so every
            // replica's watcher reloads the suspended set and the change takes effect on
            // connections already open.
            crate::counters::next(conn, "revocation").await?;
        }
        Ok(fetch_agency(&mut *conn, &self.id)
            .await?
            .ok_or_else(|| StoreError::corrupt("agency", "vanished inside its update"))?)
    }
}
