//! The store's error type. It separates what the caller can act on (a row that conflicts, a
//! value the database holds that no longer parses) from the database failing underneath.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no backend this build supports.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// A store option is out of its range (what is wrong, and the range).
    #[error("invalid store options: {0}")]
    InvalidOptions(String),
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The SQLite database file exists but cannot be opened for writing: the file, or the file
    /// system it is on, is read-only (docs/reliability.md, "Read-only database").
    #[error(
        "the database file {path} is read-only; the exchange writes every call to its \
         log and cannot serve from a database it cannot write: make the file and its file system \
         writable"
    )]
    ReadOnly {
        /// The database file.
        path: String,
        /// Why it could not be opened for writing.
        source: std::io::Error,
    },
    /// The schema migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value no longer parses as its domain type: the database was changed behind the
    /// exchange's back.
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why it does not parse.
        detail: String,
    },
    /// A unique key is already taken.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What kind of row, and its key.
        what: String,
    },
    /// The request id was used before by the same agency for the same method with another
    /// body.
    #[error("request id {request_id:?} was already used for a different request")]
    RequestIdReused {
        /// The request id.
        request_id: String,
    },
}

/// A write that cannot be refused fails only with the store
/// (`WriteError::into_store`).
impl From<std::convert::Infallible> for StoreError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> Self {
        StoreError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

/// Implements `From<sqlx::Error>` for operation errors that have a `Store(StoreError)`
/// variant, so that `?` on a query reports the database failing underneath.
macro_rules! store_failure {
    ($($error:ty),+ $(,)?) => {$(
        impl From<sqlx::Error> for $error {
            fn from(e: sqlx::Error) -> Self {
                Self::Store(e.into())
            }
        }
    )+};
}
pub(crate) use store_failure;

/// `result` of a statement, with a unique-key violation answered as `duplicate()` (what a
/// write refuses when its key is taken) and any other failure as the database's.
pub(crate) fn refuse_duplicate<T, E: From<sqlx::Error>>(
    result: Result<T, sqlx::Error>,
    duplicate: impl FnOnce() -> E,
) -> Result<T, E> {
    result.map_err(|e| {
        if is_unique_violation(&e) {
            duplicate()
        } else {
            e.into()
        }
    })
}

/// True when the database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}
