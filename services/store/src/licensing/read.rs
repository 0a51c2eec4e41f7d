//! The licensing reads: applications and licences as stored, by key and in lists (newest
//! first, keyset pages), and the applications whose time limit is due.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use yrd_domain::AgencyId;

use crate::conditions::Conditions;
use crate::decode::{self, FromRow};
use crate::time_codec::to_micros;
use crate::{Store, StoreError};

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

impl FromRow for StoredApplication {
    fn from_row(row: &AnyRow) -> Result<StoredApplication, StoreError> {
        Ok(StoredApplication {
            id: row.try_get("id")?,
            accepting_agency: decode::parsed(row, "accepting_agency", "application agency")?,
            issuing_agency: decode::parsed(row, "issuing_agency", "application agency")?,
            state: row.try_get("state")?,
            version: row.try_get("version")?,
            machine: row.try_get("machine")?,
            view: row.try_get("view")?,
            steps: Vec::new(),
            created_at: decode::time(row, "created_at")?,
            updated_at: decode::time(row, "updated_at")?,
        })
    }
}

impl StoredApplication {
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

impl FromRow for StoredLicence {
    fn from_row(row: &AnyRow) -> Result<StoredLicence, StoreError> {
        Ok(StoredLicence {
            number: row.try_get("number")?,
            application_id: row.try_get("application_id")?,
            accepting_agency: decode::parsed(row, "accepting_agency", "licence agency")?,
            issuing_agency: decode::parsed(row, "issuing_agency", "licence agency")?,
            state: row.try_get("state")?,
            body: row.try_get("body")?,
            created_at: decode::time(row, "created_at")?,
        })
    }
}

impl StoredLicence {
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

impl PageCursor {
    /// The cursor as [`Conditions::after`] takes it.
    fn position(&self) -> (i64, &str) {
        (self.created_at_us, &self.key)
    }
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

const APPLICATION_COLUMNS: &str = "id, accepting_agency, issuing_agency, state, version, machine, \
                                   view, created_at, updated_at";
const LICENCE_COLUMNS: &str =
    "number, application_id, accepting_agency, issuing_agency, state, body, created_at";

impl Store {
    /// Application `id` with its history, or `None`.
    pub async fn get_application(&self, id: &str) -> Result<Option<StoredApplication>, StoreError> {
        let sql = format!("SELECT {APPLICATION_COLUMNS} FROM licence_applications WHERE id = $1");
        let Some(mut application) =
            decode::optional::<StoredApplication, _>(sqlx::query(&sql).bind(id), &self.read)
                .await?
        else {
            return Ok(None);
        };
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
        let mut q = Conditions::default();
        let viewer = q.bind(filter.viewer.as_str());
        q.add(match filter.role {
            Some(ProvinceRole::Accepting) => format!("accepting_agency = {viewer}"),
            Some(ProvinceRole::Issuing) => format!("issuing_agency = {viewer}"),
            None => format!("(accepting_agency = {viewer} OR issuing_agency = {viewer})"),
        });
        q.when("state = ?", filter.state.as_deref());
        q.when("applicant_uscc = ?", filter.applicant_uscc.as_deref());
        q.when("catalogue_code = ?", filter.catalogue_code.as_deref());
        q.when("overdue = ?", filter.overdue);
        q.after("created_at", "id", after.map(PageCursor::position));
        let select = format!("SELECT {APPLICATION_COLUMNS} FROM licence_applications");
        let sql = q.newest_first(&select, "created_at", "id", limit);
        decode::all(q.query(&sql), &self.read).await
    }

    /// Up to `limit` applications with a running time limit due before `today`
    /// (`YYYY-MM-DD`), oldest deadline first, without their history.
    pub async fn applications_due_before(
        &self,
        today: &str,
        limit: u32,
    ) -> Result<Vec<StoredApplication>, StoreError> {
        let sql = format!(
            "SELECT {APPLICATION_COLUMNS} FROM licence_applications \
             WHERE next_due IS NOT NULL AND next_due < $1 ORDER BY next_due, id LIMIT $2"
        );
        let query = sqlx::query(&sql).bind(today).bind(i64::from(limit));
        decode::all(query, &self.read).await
    }

    /// Licence `number`, or `None`.
    pub async fn get_licence(&self, number: &str) -> Result<Option<StoredLicence>, StoreError> {
        let sql = format!("SELECT {LICENCE_COLUMNS} FROM licences WHERE number = $1");
        decode::optional(sqlx::query(&sql).bind(number), &self.read).await
    }

    /// Up to `limit` licences matching `filter`, newest first, strictly after `after`.
    pub async fn list_licences(
        &self,
        filter: &LicenceFilter,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<StoredLicence>, StoreError> {
        let mut q = Conditions::default();
        let viewer = q.bind(filter.viewer.as_str());
        q.add(format!(
            "(accepting_agency = {viewer} OR issuing_agency = {viewer})"
        ));
        q.when("holder_uscc = ?", filter.holder_uscc.as_deref());
        q.when("catalogue_code = ?", filter.catalogue_code.as_deref());
        q.when("state = ?", filter.state.as_deref());
        q.when(
            "issuing_agency = ?",
            filter.issuing_agency.as_ref().map(AgencyId::as_str),
        );
        q.after("created_at", "number", after.map(PageCursor::position));
        let select = format!("SELECT {LICENCE_COLUMNS} FROM licences");
        let sql = q.newest_first(&select, "created_at", "number", limit);
        decode::all(q.query(&sql), &self.read).await
    }
}
