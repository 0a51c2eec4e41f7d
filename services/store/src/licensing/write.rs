//! The licensing writes: a new application, a step on one (with its licence row), and the
//! next serial of a licence number, each one [`crate::Write`].

use sqlx::AnyConnection;

use super::{ApplicationStepWrite, LicenceWrite, LicensingWriteError, NewApplication};
use crate::error::refuse_duplicate;
use crate::time_codec::to_micros;
use crate::write::{Rows, Write, WriteError, WriteOutcome};
use crate::{Store, StoreError};

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

/// The rows of a licensing write.
#[derive(Debug, Clone)]
enum ApplicationRows {
    /// A new application: its row and first history entry.
    Submit(NewApplication),
    /// One step: the guarded row update, history entries, the licence row.
    Step(ApplicationStepWrite),
}

impl Rows for ApplicationRows {
    type Value = ();
    type Refusal = LicensingWriteError;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<(), WriteError<LicensingWriteError>> {
        match self {
            ApplicationRows::Submit(a) => submit_in(conn, a).await,
            ApplicationRows::Step(s) => step_in(conn, s).await,
        }
    }
}

/// Inserts application `a` with its first history entry.
async fn submit_in(
    conn: &mut AnyConnection,
    a: &NewApplication,
) -> Result<(), WriteError<LicensingWriteError>> {
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
    insert_steps(conn, &a.id, &[(1, a.step.clone())], at).await?;
    Ok(())
}

/// Applies step `s`: the row update guarded by its version, the history entries, the licence.
async fn step_in(
    conn: &mut AnyConnection,
    s: &ApplicationStepWrite,
) -> Result<(), WriteError<LicensingWriteError>> {
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
    insert_steps(conn, &s.id, &s.steps, at).await?;
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
            refuse_duplicate(inserted, || {
                WriteError::Refused(LicensingWriteError::NumberTaken {
                    number: number.clone(),
                })
            })?;
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

/// Appends history entries `(seq, encoded step)` of application `id`, made at `at`.
async fn insert_steps(
    conn: &mut AnyConnection,
    id: &str,
    steps: &[(u32, Vec<u8>)],
    at: i64,
) -> Result<(), sqlx::Error> {
    for (seq, body) in steps {
        sqlx::query(
            "INSERT INTO licence_application_steps (application_id, seq, body, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(i64::from(*seq))
        .bind(body)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
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
        let write = Write::new(ApplicationRows::Submit(a.clone()))
            .claim_ready(Some(&a.key), &a.response, a.at)
            .events(a.events.clone())
            .leaf(a.leaf.clone());
        self.commit_call(write).await.map_err(licensing_error)
    }

    /// Applies one step: updates the row while it is still at `expected_version`, appends the
    /// history entries, writes the licence row, the feed events and the audit leaf, in one
    /// write. [`LicensingWriteError::Conflict`] (nothing written) when the row moved on.
    pub async fn apply_step(
        &self,
        s: &ApplicationStepWrite,
    ) -> Result<WriteOutcome, LicensingWriteError> {
        let write = Write::new(ApplicationRows::Step(s.clone()))
            .claim_ready(s.key.as_ref(), &s.response, s.at)
            .events(s.events.clone())
            .leaf(s.leaf.clone());
        self.commit_call(write).await.map_err(licensing_error)
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
}
