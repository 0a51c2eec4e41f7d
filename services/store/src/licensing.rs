//! Production-licence applications and licences of Hu-Lu joint processing (沪鲁通办).
//!
//! Why it is shaped so:
//!
//! * **The store writes bytes, the service decides.** An application row carries the columns
//!   lists filter on, the state machine's data as JSON (`machine`) and the application as the
//!   contract shows it (`view`, an encoded message); each step appends its own encoded history
//!   entry. The rules live in `yrd_domain::licensing`, the wire shapes in the service crate.
//! * **One transaction per step.** [`Store::submit_application`] and [`Store::apply_step`]
//!   claim the request id, write the rows (the licence too, when the step issues or changes
//!   one), append the feed events and the call's audit leaf, and store the answer, all in one
//!   transaction, like the spot-check writes.
//! * **Optimistic concurrency, also between replicas.** A step names the `version` of the row
//!   it was computed from; the `UPDATE … WHERE version = $n` matches no row once another call
//!   (or another replica's scheduler) moved it on, and the step is refused as
//!   [`LicensingWriteError::Conflict`] with nothing written. The overdue scheduler relies on it:
//!   two replicas flagging the same deadline race on that update and only one commits its
//!   events.
//! * **Licence numbers never collide.** Serials come from a per-prefix counter advanced in its
//!   own committed transaction ([`Store::next_licence_serial`]; concurrent callers serialise on
//!   the counter row), and the number is the primary key of `licences`, so even a counter
//!   reset could not give one number twice. A step refused after taking a serial leaves a gap,
//!   never a duplicate.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;

use crate::error::is_unique_violation;
use crate::feed::NewFeedEvent;
use crate::time_codec::{from_micros, to_micros};
use crate::write::{Claim, IdempotencyKey, Rows, Write, WriteError, WriteOutcome};
use crate::{Backend, Store, StoreError};

/// Why a licensing write was refused.
#[derive(Debug, thiserror::Error)]
pub enum LicensingWriteError {
    /// The request id was used before by this agency for this method with another body.
    #[error("request id {request_id:?} was already used for a different request")]
    RequestIdReused {
        /// The request id.
        request_id: String,
    },
    /// The application moved on since the step was computed (another call or replica).
    #[error("application {id} changed since it was read")]
    Conflict {
        /// The application.
        id: String,
    },
    /// The licence number is taken (never expected: serials come from a counter).
    #[error("licence number {number} is already taken")]
    NumberTaken {
        /// The number.
        number: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for LicensingWriteError {
    fn from(e: sqlx::Error) -> Self {
        LicensingWriteError::Store(e.into())
    }
}

/// What a step changes on an application row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationColumns {
    /// The state's stored name.
    pub state: String,
    /// Whether a time limit passed unmet.
    pub overdue: bool,
    /// The earliest running time limit not yet flagged, `YYYY-MM-DD`.
    pub next_due: Option<String>,
    /// The state machine's data, JSON.
    pub machine: String,
    /// The application as shown, without history, encoded.
    pub view: Vec<u8>,
}

/// A new application.
#[derive(Debug, Clone)]
pub struct NewApplication {
    /// The request it answers.
    pub key: IdempotencyKey,
    /// The id the exchange assigned.
    pub id: String,
    /// The accepting province's agency.
    pub accepting_agency: AgencyId,
    /// The issuing province's agency.
    pub issuing_agency: AgencyId,
    /// The applicant's USCC.
    pub applicant_uscc: String,
    /// The catalogue code of the product.
    pub catalogue_code: String,
    /// State, data and view.
    pub columns: ApplicationColumns,
    /// The first history entry (seq 1), encoded.
    pub step: Vec<u8>,
    /// When.
    pub at: OffsetDateTime,
    /// Its feed events.
    pub events: Vec<NewFeedEvent>,
    /// The call's audit leaf.
    pub leaf: Option<LeafData>,
    /// The encoded answer, returned again to a retry.
    pub response: Vec<u8>,
}

/// A licence row to write with a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenceWrite {
    /// A newly issued licence.
    Issue {
        /// Its number (primary key).
        number: String,
        /// The holder's USCC.
        holder_uscc: String,
        /// The catalogue code.
        catalogue_code: String,
        /// The state's stored name.
        state: String,
        /// The licence, encoded.
        body: Vec<u8>,
    },
    /// A change of an issued licence (revocation, linked change).
    Update {
        /// Its number.
        number: String,
        /// The state's stored name.
        state: String,
        /// The licence, encoded.
        body: Vec<u8>,
    },
}

/// One step on an application: its new row, history entries, licence write and events.
#[derive(Debug, Clone)]
pub struct ApplicationStepWrite {
    /// The request it answers; `None` for the exchange's own steps (the scheduler).
    pub key: Option<IdempotencyKey>,
    /// The application.
    pub id: String,
    /// The row version the step was computed from.
    pub expected_version: i64,
    /// The new state, data and view.
    pub columns: ApplicationColumns,
    /// New history entries `(seq, encoded step)`.
    pub steps: Vec<(u32, Vec<u8>)>,
    /// The licence row to write, if the step issues or changes one.
    pub licence: Option<LicenceWrite>,
    /// When.
    pub at: OffsetDateTime,
    /// Its feed events.
    pub events: Vec<NewFeedEvent>,
    /// The call's audit leaf.
    pub leaf: Option<LeafData>,
    /// The encoded answer (empty for the scheduler).
    pub response: Vec<u8>,
}

/// An application as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApplication {
    /// Its id.
    pub id: String,
    /// The accepting province's agency.
    pub accepting_agency: AgencyId,
    /// The issuing province's agency.
    pub issuing_agency: AgencyId,
    /// The state's stored name.
    pub state: String,
    /// The row version (grows by one per write).
    pub version: i64,
    /// The state machine's data, JSON.
    pub machine: String,
    /// The view without history, encoded.
    pub view: Vec<u8>,
    /// History entries, oldest first, encoded (empty when read by a list).
    pub steps: Vec<Vec<u8>>,
    /// When it was submitted.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl StoredApplication {
    fn from_row(row: &AnyRow) -> Result<StoredApplication, StoreError> {
        let agency = |name: &str| -> Result<AgencyId, StoreError> {
            AgencyId::parse(&row.try_get::<String, _>(name)?)
                .map_err(|e| StoreError::corrupt("application agency", e))
        };
        Ok(StoredApplication {
            id: row.try_get("id")?,
            accepting_agency: agency("accepting_agency")?,
            issuing_agency: agency("issuing_agency")?,
            state: row.try_get("state")?,
            version: row.try_get("version")?,
            machine: row.try_get("machine")?,
            view: row.try_get("view")?,
            steps: Vec::new(),
            created_at: from_micros(row.try_get("created_at")?)?,
            updated_at: from_micros(row.try_get("updated_at")?)?,
        })
    }

    /// The cursor continuing a list after this application.
    pub fn cursor(&self) -> PageCursor {
        PageCursor {
            created_at_us: to_micros(self.created_at),
            key: self.id.clone(),
        }
    }
}

/// A licence as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLicence {
    /// Its number.
    pub number: String,
    /// The application it was issued on.
    pub application_id: String,
    /// The accepting province's agency of that application.
    pub accepting_agency: AgencyId,
    /// The issuing agency.
    pub issuing_agency: AgencyId,
    /// The state's stored name.
    pub state: String,
    /// The licence, encoded.
    pub body: Vec<u8>,
    /// When it was issued.
    pub created_at: OffsetDateTime,
}

impl StoredLicence {
    fn from_row(row: &AnyRow) -> Result<StoredLicence, StoreError> {
        let agency = |name: &str| -> Result<AgencyId, StoreError> {
            AgencyId::parse(&row.try_get::<String, _>(name)?)
                .map_err(|e| StoreError::corrupt("licence agency", e))
        };
        Ok(StoredLicence {
            number: row.try_get("number")?,
            application_id: row.try_get("application_id")?,
            accepting_agency: agency("accepting_agency")?,
            issuing_agency: agency("issuing_agency")?,
            state: row.try_get("state")?,
            body: row.try_get("body")?,
            created_at: from_micros(row.try_get("created_at")?)?,
        })
    }

    /// The cursor continuing a list after this licence.
    pub fn cursor(&self) -> PageCursor {
        PageCursor {
            created_at_us: to_micros(self.created_at),
            key: self.number.clone(),
        }
    }
}

/// Where a page ends: the last row's creation time and key; the next page holds the rows
/// strictly older in `(created_at, key)` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    /// Creation time, Unix microseconds.
    pub created_at_us: i64,
    /// Application id or licence number.
    pub key: String,
}

/// The caller's province role in an application, for lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvinceRole {
    /// The accepting province (受理地).
    Accepting,
    /// The issuing province (发证地).
    Issuing,
}

/// Which applications a list asks for; `None` fields do not filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationFilter {
    /// The calling agency: only its applications are listed.
    pub viewer: AgencyId,
    /// Only where the viewer has this role.
    pub role: Option<ProvinceRole>,
    /// The state's stored name.
    pub state: Option<String>,
    /// The applicant's USCC.
    pub applicant_uscc: Option<String>,
    /// The catalogue code.
    pub catalogue_code: Option<String>,
    /// Overdue or not.
    pub overdue: Option<bool>,
}

/// Which licences a list asks for; `None` fields do not filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceFilter {
    /// The calling agency: only licences of its applications are listed.
    pub viewer: AgencyId,
    /// The holder's USCC.
    pub holder_uscc: Option<String>,
    /// The catalogue code.
    pub catalogue_code: Option<String>,
    /// The state's stored name.
    pub state: Option<String>,
    /// The issuing agency.
    pub issuing_agency: Option<AgencyId>,
}

/// A query text with its bound values, built condition by condition.
#[derive(Debug, Default)]
struct Query {
    conditions: Vec<String>,
    binds: Vec<Bind>,
}

#[derive(Debug)]
enum Bind {
    Text(String),
    Int(i64),
}

impl Query {
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn eq(&mut self, column: &str, value: Option<String>) {
        if let Some(value) = value {
            let p = self.bind(Bind::Text(value));
            self.conditions.push(format!("{column} = {p}"));
        }
    }

    fn page(&mut self, key_column: &str, after: Option<&PageCursor>) {
        if let Some(after) = after {
            let c = self.bind(Bind::Int(after.created_at_us));
            let k = self.bind(Bind::Text(after.key.clone()));
            self.conditions.push(format!(
                "created_at <= {c} AND (created_at < {c} OR {key_column} < {k})"
            ));
        }
    }

    fn sql(&mut self, select: &str, key_column: &str, limit: u32) -> String {
        let limit = self.bind(Bind::Int(i64::from(limit)));
        let filter = if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        };
        format!("{select}{filter} ORDER BY created_at DESC, {key_column} DESC LIMIT {limit}")
    }

    async fn fetch(&self, sql: &str, store: &Store) -> Result<Vec<AnyRow>, StoreError> {
        let mut query = sqlx::query(sql);
        for value in &self.binds {
            query = match value {
                Bind::Text(s) => query.bind(s.as_str()),
                Bind::Int(i) => query.bind(*i),
            };
        }
        Ok(query.fetch_all(&store.read).await?)
    }
}

const APPLICATION_COLUMNS: &str = "id, accepting_agency, issuing_agency, state, version, machine, \
                                   view, created_at, updated_at";
const LICENCE_COLUMNS: &str =
    "number, application_id, accepting_agency, issuing_agency, state, body, created_at";

/// A licensing write's error as the licensing API states it.
fn licensing_error(e: WriteError<LicensingWriteError>) -> LicensingWriteError {
    match e {
        WriteError::Refused(e) => e,
        WriteError::RequestIdReused { request_id } => {
            LicensingWriteError::RequestIdReused { request_id }
        }
        other => LicensingWriteError::Store(
            other
                .refusal()
                .err()
                .unwrap_or_else(|| StoreError::corrupt("licensing write", "refusal lost")),
        ),
    }
}

/// The rows of a new application: its row and first history entry.
#[derive(Debug, Clone)]
struct SubmitRows(NewApplication);

impl Rows for SubmitRows {
    type Value = ();
    type Refusal = LicensingWriteError;

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        _backend: Backend,
    ) -> Result<(), WriteError<LicensingWriteError>> {
        let a = &self.0;
        let at = to_micros(a.at);
        sqlx::query(
            "INSERT INTO licence_applications (id, accepting_agency, issuing_agency, state, \
             applicant_uscc, catalogue_code, overdue, next_due, version, machine, view, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $11, $11)",
        )
        .bind(&a.id)
        .bind(a.accepting_agency.as_str())
        .bind(a.issuing_agency.as_str())
        .bind(&a.columns.state)
        .bind(&a.applicant_uscc)
        .bind(&a.catalogue_code)
        .bind(i64::from(a.columns.overdue))
        .bind(a.columns.next_due.as_deref())
        .bind(&a.columns.machine)
        .bind(&a.columns.view)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO licence_application_steps (application_id, seq, body, created_at) \
             VALUES ($1, 1, $2, $3)",
        )
        .bind(&a.id)
        .bind(&a.step)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// The rows of one step: the guarded row update, history entries, the licence row.
#[derive(Debug, Clone)]
struct StepRows(ApplicationStepWrite);

impl Rows for StepRows {
    type Value = ();
    type Refusal = LicensingWriteError;

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        _backend: Backend,
    ) -> Result<(), WriteError<LicensingWriteError>> {
        let s = &self.0;
        let at = to_micros(s.at);
        let updated = sqlx::query(
            "UPDATE licence_applications SET state = $1, overdue = $2, next_due = $3, \
             machine = $4, view = $5, updated_at = $6, version = version + 1 \
             WHERE id = $7 AND version = $8",
        )
        .bind(&s.columns.state)
        .bind(i64::from(s.columns.overdue))
        .bind(s.columns.next_due.as_deref())
        .bind(&s.columns.machine)
        .bind(&s.columns.view)
        .bind(at)
        .bind(&s.id)
        .bind(s.expected_version)
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(WriteError::Refused(LicensingWriteError::Conflict {
                id: s.id.clone(),
            }));
        }
        for (seq, body) in &s.steps {
            sqlx::query(
                "INSERT INTO licence_application_steps (application_id, seq, body, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&s.id)
            .bind(i64::from(*seq))
            .bind(body)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        match &s.licence {
            Some(LicenceWrite::Issue {
                number,
                holder_uscc,
                catalogue_code,
                state,
                body,
            }) => {
                let inserted = sqlx::query(
                    "INSERT INTO licences (number, application_id, accepting_agency, \
                     issuing_agency, holder_uscc, catalogue_code, state, body, created_at, \
                     updated_at) \
                     SELECT $1, id, accepting_agency, issuing_agency, $2, $3, $4, $5, $6, $6 \
                     FROM licence_applications WHERE id = $7",
                )
                .bind(number)
                .bind(holder_uscc)
                .bind(catalogue_code)
                .bind(state)
                .bind(body)
                .bind(at)
                .bind(&s.id)
                .execute(&mut *conn)
                .await;
                match inserted {
                    Err(e) if is_unique_violation(&e) => {
                        return Err(WriteError::Refused(LicensingWriteError::NumberTaken {
                            number: number.clone(),
                        }));
                    }
                    other => {
                        other?;
                    }
                }
            }
            Some(LicenceWrite::Update {
                number,
                state,
                body,
            }) => {
                sqlx::query(
                    "UPDATE licences SET state = $1, body = $2, updated_at = $3 \
                     WHERE number = $4 AND application_id = $5",
                )
                .bind(state)
                .bind(body)
                .bind(at)
                .bind(number)
                .bind(&s.id)
                .execute(&mut *conn)
                .await?;
            }
            None => {}
        }
        Ok(())
    }
}

/// The rows of taking the next serial of a licence-number prefix.
#[derive(Debug, Clone)]
struct SerialRows(String);

impl Rows for SerialRows {
    type Value = i64;
    type Refusal = std::convert::Infallible;

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        _backend: Backend,
    ) -> Result<i64, WriteError<std::convert::Infallible>> {
        sqlx::query(
            "INSERT INTO licence_serials (prefix, last_serial) VALUES ($1, 0) \
             ON CONFLICT (prefix) DO NOTHING",
        )
        .bind(&self.0)
        .execute(&mut *conn)
        .await?;
        Ok(sqlx::query_scalar(
            "UPDATE licence_serials SET last_serial = last_serial + 1 WHERE prefix = $1 \
             RETURNING last_serial",
        )
        .bind(&self.0)
        .fetch_one(&mut *conn)
        .await?)
    }
}

impl Store {
    /// Writes a new application with its first history entry, feed events and audit leaf in
    /// one write, then wakes the recipients' subscribers.
    pub async fn submit_application(
        &self,
        a: &NewApplication,
    ) -> Result<WriteOutcome, LicensingWriteError> {
        let write = Write::new(SubmitRows(a.clone()))
            .claim(Some(Claim::ready(a.key.clone(), a.response.clone(), a.at)))
            .events(a.events.clone())
            .leaf(a.leaf.clone());
        self.commit(write)
            .await
            .map(|done| done.map(|w| w.assigned))
            .map_err(licensing_error)
    }

    /// Applies one step: updates the row while it is still at `expected_version`, appends the
    /// history entries, writes the licence row, the feed events and the audit leaf, in one
    /// write. [`LicensingWriteError::Conflict`] (nothing written) when the row moved on.
    pub async fn apply_step(
        &self,
        s: &ApplicationStepWrite,
    ) -> Result<WriteOutcome, LicensingWriteError> {
        let claim = s
            .key
            .clone()
            .map(|key| Claim::ready(key, s.response.clone(), s.at));
        let write = Write::new(StepRows(s.clone()))
            .claim(claim)
            .events(s.events.clone())
            .leaf(s.leaf.clone());
        self.commit(write)
            .await
            .map(|done| done.map(|w| w.assigned))
            .map_err(licensing_error)
    }

    /// The next enterprise serial of licence-number `prefix`, from 1, committed at once so
    /// that concurrent issues on any replica get different serials.
    pub async fn next_licence_serial(&self, prefix: &str) -> Result<i64, StoreError> {
        let done = self
            .commit(Write::new(SerialRows(prefix.to_owned())))
            .await
            .map_err(WriteError::into_store)?;
        done.written()
            .map(|w| w.value)
            .ok_or_else(|| StoreError::corrupt("licence serial", "a serial write replayed"))
    }

    /// Application `id` with its history, or `None`.
    pub async fn get_application(&self, id: &str) -> Result<Option<StoredApplication>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {APPLICATION_COLUMNS} FROM licence_applications WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut application = StoredApplication::from_row(&row)?;
        application.steps = sqlx::query_scalar(
            "SELECT body FROM licence_application_steps WHERE application_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        Ok(Some(application))
    }

    /// Up to `limit` applications matching `filter`, newest first, strictly after `after`;
    /// without their history.
    pub async fn list_applications(
        &self,
        filter: &ApplicationFilter,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<StoredApplication>, StoreError> {
        let mut q = Query::default();
        let viewer = filter.viewer.as_str().to_owned();
        match filter.role {
            Some(ProvinceRole::Accepting) => q.eq("accepting_agency", Some(viewer)),
            Some(ProvinceRole::Issuing) => q.eq("issuing_agency", Some(viewer)),
            None => {
                let a = q.bind(Bind::Text(viewer.clone()));
                let b = q.bind(Bind::Text(viewer));
                q.conditions
                    .push(format!("(accepting_agency = {a} OR issuing_agency = {b})"));
            }
        }
        q.eq("state", filter.state.clone());
        q.eq("applicant_uscc", filter.applicant_uscc.clone());
        q.eq("catalogue_code", filter.catalogue_code.clone());
        if let Some(overdue) = filter.overdue {
            let p = q.bind(Bind::Int(i64::from(overdue)));
            q.conditions.push(format!("overdue = {p}"));
        }
        q.page("id", after);
        let sql = q.sql(
            &format!("SELECT {APPLICATION_COLUMNS} FROM licence_applications"),
            "id",
            limit,
        );
        q.fetch(&sql, self)
            .await?
            .iter()
            .map(StoredApplication::from_row)
            .collect()
    }

    /// Up to `limit` applications with a running time limit due before `today`
    /// (`YYYY-MM-DD`), oldest deadline first, without their history.
    pub async fn applications_due_before(
        &self,
        today: &str,
        limit: u32,
    ) -> Result<Vec<StoredApplication>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {APPLICATION_COLUMNS} FROM licence_applications \
             WHERE next_due IS NOT NULL AND next_due < $1 ORDER BY next_due, id LIMIT $2"
        ))
        .bind(today)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(StoredApplication::from_row).collect()
    }

    /// Licence `number`, or `None`.
    pub async fn get_licence(&self, number: &str) -> Result<Option<StoredLicence>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LICENCE_COLUMNS} FROM licences WHERE number = $1"
        ))
        .bind(number)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(StoredLicence::from_row).transpose()
    }

    /// Up to `limit` licences matching `filter`, newest first, strictly after `after`.
    pub async fn list_licences(
        &self,
        filter: &LicenceFilter,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<StoredLicence>, StoreError> {
        let mut q = Query::default();
        let viewer = filter.viewer.as_str().to_owned();
        let a = q.bind(Bind::Text(viewer.clone()));
        let b = q.bind(Bind::Text(viewer));
        q.conditions
            .push(format!("(accepting_agency = {a} OR issuing_agency = {b})"));
        q.eq("holder_uscc", filter.holder_uscc.clone());
        q.eq("catalogue_code", filter.catalogue_code.clone());
        q.eq("state", filter.state.clone());
        q.eq(
            "issuing_agency",
            filter
                .issuing_agency
                .as_ref()
                .map(|a| a.as_str().to_owned()),
        );
        q.page("number", after);
        let sql = q.sql(
            &format!("SELECT {LICENCE_COLUMNS} FROM licences"),
            "number",
            limit,
        );
        q.fetch(&sql, self)
            .await?
            .iter()
            .map(StoredLicence::from_row)
            .collect()
    }
}
