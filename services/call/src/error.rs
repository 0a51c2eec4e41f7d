//! The one error core of every service: each service's per-operation error enum says what kind
//! of failure it is ([`CallError::kind`]), and [`into_status`] is the one place a failure
//! becomes a gRPC status. The caller's faults name what is wrong (bad fields become the
//! contract's `google.rpc.BadRequest`); the exchange's own failures are logged with their whole
//! cause chain and answered with a generic message, so a partner never sees internals
//! (docs/architecture.md, "The path of a call").

use tonic::{Code, Status};

use crate::field::{FieldErrors, fields_status};

/// What kind of failure a call had: the caller's fault, or ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request has bad fields (`INVALID_ARGUMENT`).
    InvalidArgument,
    /// The caller is not who it must be (`UNAUTHENTICATED`).
    Unauthenticated,
    /// The named thing does not exist (`NOT_FOUND`).
    NotFound,
    /// The caller may not do this (`PERMISSION_DENIED`).
    PermissionDenied,
    /// The state does not allow this (`FAILED_PRECONDITION`).
    FailedPrecondition,
    /// Lost a race with another write: read again and retry (`ABORTED`).
    Aborted,
    /// It exists already, or the request id was used before (`ALREADY_EXISTS`).
    AlreadyExists,
    /// A position past the end (`OUT_OF_RANGE`).
    OutOfRange,
    /// Ours: something inside the exchange is broken (`INTERNAL`).
    Internal,
    /// Ours: a dependency of the exchange is down; retry later (`UNAVAILABLE`).
    Unavailable,
}

impl Kind {
    /// True when the failure is the exchange's own, not the caller's.
    pub fn is_ours(self) -> bool {
        matches!(self, Kind::Internal | Kind::Unavailable)
    }

    /// The gRPC code of this kind.
    pub fn code(self) -> Code {
        match self {
            Kind::InvalidArgument => Code::InvalidArgument,
            Kind::Unauthenticated => Code::Unauthenticated,
            Kind::NotFound => Code::NotFound,
            Kind::PermissionDenied => Code::PermissionDenied,
            Kind::FailedPrecondition => Code::FailedPrecondition,
            Kind::Aborted => Code::Aborted,
            Kind::AlreadyExists => Code::AlreadyExists,
            Kind::OutOfRange => Code::OutOfRange,
            Kind::Internal => Code::Internal,
            Kind::Unavailable => Code::Unavailable,
        }
    }
}

/// The message a caller gets when the store failed.
pub const STORE_UNAVAILABLE: &str = "the exchange's store is unavailable; retry later";

/// The message a caller gets when the store's disk is full (`RESOURCE_EXHAUSTED`).
pub const STORE_DISK_FULL: &str =
    "the exchange's store is out of disk space; nothing was written; retry later";

/// True when `e` or a cause under it says the database's disk is full: SQLite's `SQLITE_FULL`
/// ("database or disk is full"), or the operating system's `ENOSPC` (an I/O error of kind
/// `StorageFull`, or its text, which PostgreSQL's "could not extend file" carries). The drivers'
/// error types are not seen from here, so their messages are what can be read.
pub fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    any_cause(e, std::io::ErrorKind::StorageFull, |text| {
        text.contains("database or disk is full") || text.contains("No space left on device")
    })
}

/// True when `e` or a cause under it is an I/O error of `kind`, or has a text `says` matches.
fn any_cause(
    e: &(dyn std::error::Error + 'static),
    kind: std::io::ErrorKind,
    says: impl Fn(&str) -> bool,
) -> bool {
    let mut next = Some(e);
    while let Some(cause) = next {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
            || says(&cause.to_string())
        {
            return true;
        }
        next = cause.source();
    }
    false
}

/// The message a caller gets when the store's database is read-only (`UNAVAILABLE`: an
/// operator makes it writable again, and a retry then succeeds; docs/reliability.md,
/// "Read-only database").
pub const STORE_READ_ONLY: &str =
    "the exchange's database is read-only; nothing was written; retry later";

/// True when `e` or a cause under it says the database refuses writes: SQLite's
/// `SQLITE_READONLY` ("attempt to write a readonly database"), the operating system's `EROFS`
/// ("Read-only file system"), or PostgreSQL's "read-only transaction" (a standby, or
/// `default_transaction_read_only`).
pub fn is_read_only(e: &(dyn std::error::Error + 'static)) -> bool {
    any_cause(e, std::io::ErrorKind::ReadOnlyFilesystem, read_only_text)
}

/// Whether an error's text is one of a read-only database's.
fn read_only_text(text: &str) -> bool {
    text.contains("attempt to write a readonly database")
        || text.contains("Read-only file system")
        || text.contains("in a read-only transaction")
}

/// A service's failure of one call.
pub trait CallError: std::error::Error {
    /// What kind of failure it is.
    fn kind(&self) -> Kind;

    /// The bad fields of a caller's fault (`INVALID_ARGUMENT`, `OUT_OF_RANGE`), answered with
    /// a `BadRequest`.
    fn bad_fields(&self) -> Option<&FieldErrors> {
        None
    }

    /// What the caller is told of a failure of ours (never its cause).
    fn public_message(&self) -> String {
        ours_message(self.kind(), "the call failed inside the exchange")
    }
}

/// What the caller is told of a failure of ours of `kind`: [`STORE_UNAVAILABLE`] when the
/// store is down, `internal` when something inside the exchange is broken.
pub fn ours_message(kind: Kind, internal: &str) -> String {
    match kind {
        Kind::Unavailable => STORE_UNAVAILABLE.to_owned(),
        _ => internal.to_owned(),
    }
}

/// Implements [`CallError`] for a service's error enum, so that each service writes only what
/// is its own: the kind of each variant (the arms of a `match self`), the variant that carries
/// the request's bad fields, and what the caller is told when something inside the exchange is
/// broken (a store failure is answered with [`STORE_UNAVAILABLE`], see [`ours_message`]).
///
/// ```ignore
/// yrd_call::call_error! {
///     CallError,
///     fields: Invalid,
///     internal: "reading a stored result failed inside the exchange",
///     kind: {
///         CallError::Invalid(_) => Kind::InvalidArgument,
///         CallError::Store(_) => Kind::Unavailable,
///         CallError::Corrupt { .. } => Kind::Internal,
///     }
/// }
/// ```
#[macro_export]
macro_rules! call_error {
    (
        $error:ident,
        fields: $fields:ident,
        internal: $internal:expr,
        kind: { $($pattern:pat => $kind:expr),+ $(,)? } $(,)?
    ) => {
        impl $crate::CallError for $error {
            fn kind(&self) -> $crate::Kind {
                match self {
                    $($pattern => $kind,)+
                }
            }

            fn bad_fields(&self) -> Option<&$crate::FieldErrors> {
                match self {
                    $error::$fields(fields) => Some(fields),
                    _ => None,
                }
            }

            fn public_message(&self) -> String {
                $crate::error::ours_message($crate::CallError::kind(self), $internal)
            }
        }
    };
}

/// The gRPC status of `e`: a caller's fault with its own words (bad fields as a `BadRequest`),
/// or a failure of ours logged with its cause chain and answered with
/// [`CallError::public_message`].
pub fn into_status<E: CallError + ?Sized>(e: &E) -> Status {
    let kind = e.kind();
    if kind.is_ours() {
        tracing::error!(error = %cause_chain(e), code = ?kind.code(), "call failed inside the exchange");
        if kind == Kind::Unavailable && disk_full_chain(e) {
            return Status::resource_exhausted(STORE_DISK_FULL);
        }
        if kind == Kind::Unavailable && read_only_chain(e) {
            return Status::unavailable(STORE_READ_ONLY);
        }
        return Status::new(kind.code(), e.public_message());
    }
    match e.bad_fields() {
        Some(fields) => fields_status(kind.code(), fields),
        None => Status::new(kind.code(), e.to_string()),
    }
}

/// [`is_disk_full`] of `e`'s causes (`e` itself may be unsized).
fn disk_full_chain<E: std::error::Error + ?Sized>(e: &E) -> bool {
    e.source().is_some_and(is_disk_full) || e.to_string().contains("database or disk is full")
}

/// [`is_read_only`] of `e`'s causes (`e` itself may be unsized).
fn read_only_chain<E: std::error::Error + ?Sized>(e: &E) -> bool {
    e.source().is_some_and(is_read_only) || read_only_text(&e.to_string())
}

/// `e` and every cause under it, joined by `": "`.
pub fn cause_chain<E: std::error::Error + ?Sized>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_resource_exhausted_naming_the_disk() {
        #[derive(Debug, thiserror::Error)]
        #[error("store failure")]
        struct Failed(#[source] std::io::Error);
        impl CallError for Failed {
            fn kind(&self) -> Kind {
                Kind::Unavailable
            }
        }
        let sqlite = Failed(std::io::Error::other("(code: 13) database or disk is full"));
        let status = into_status(&sqlite);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), STORE_DISK_FULL);
        let enospc = Failed(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(into_status(&enospc).code(), Code::ResourceExhausted);
        let down = Failed(std::io::Error::other("Connection refused"));
        let status = into_status(&down);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), STORE_UNAVAILABLE);
    }

    #[test]
    fn a_read_only_database_is_unavailable_naming_it() {
        #[derive(Debug, thiserror::Error)]
        #[error("store failure")]
        struct Failed(#[source] std::io::Error);
        impl CallError for Failed {
            fn kind(&self) -> Kind {
                Kind::Unavailable
            }
        }
        for cause in [
            std::io::Error::other("(code: 8) attempt to write a readonly database"),
            std::io::Error::from(std::io::ErrorKind::ReadOnlyFilesystem),
            std::io::Error::other("cannot execute INSERT in a read-only transaction"),
        ] {
            let status = into_status(&Failed(cause));
            assert_eq!(status.code(), Code::Unavailable);
            assert_eq!(status.message(), STORE_READ_ONLY);
        }
        let down = Failed(std::io::Error::other("Connection refused"));
        assert_eq!(into_status(&down).message(), STORE_UNAVAILABLE);
    }

    #[derive(Debug, thiserror::Error)]
    enum Failure {
        #[error("results/x does not exist")]
        Missing,
        #[error("{} bad field(s)", .0.len())]
        Invalid(FieldErrors),
        #[error("store failure: {0}")]
        Store(#[source] std::io::Error),
    }

    impl CallError for Failure {
        fn kind(&self) -> Kind {
            match self {
                Failure::Missing => Kind::NotFound,
                Failure::Invalid(_) => Kind::InvalidArgument,
                Failure::Store(_) => Kind::Unavailable,
            }
        }
        fn bad_fields(&self) -> Option<&FieldErrors> {
            match self {
                Failure::Invalid(fields) => Some(fields),
                _ => None,
            }
        }
    }

    /// A service's error written with [`call_error!`](crate::call_error).
    #[derive(Debug, thiserror::Error)]
    enum Service {
        #[error("{} bad field(s)", .0.len())]
        Invalid(FieldErrors),
        #[error("store failure: {0}")]
        Store(#[source] std::io::Error),
        #[error("stored {0} does not decode")]
        Corrupt(&'static str),
    }

    crate::call_error! {
        Service,
        fields: Invalid,
        internal: "reading a stored result failed inside the exchange",
        kind: {
            Service::Invalid(_) => Kind::InvalidArgument,
            Service::Store(_) => Kind::Unavailable,
            Service::Corrupt(_) => Kind::Internal,
        }
    }

    #[test]
    fn a_service_error_answers_by_its_kind() {
        let status = into_status(&Service::Invalid(FieldErrors::of("name", "is required")));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "name: is required");
        let status = into_status(&Service::Store(std::io::Error::other("disk full")));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), STORE_UNAVAILABLE);
        let status = into_status(&Service::Corrupt("answer"));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(
            status.message(),
            "reading a stored result failed inside the exchange"
        );
    }

    #[test]
    fn a_callers_fault_keeps_its_words() {
        let status = into_status(&Failure::Missing);
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "results/x does not exist");
        let status = into_status(&Failure::Invalid(FieldErrors::of("name", "is required")));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "name: is required");
    }

    #[test]
    fn our_failure_never_leaks_its_cause() {
        let e = Failure::Store(std::io::Error::other("password=secret at 10.0.0.7"));
        let status = into_status(&e);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), STORE_UNAVAILABLE);
        assert!(cause_chain(&e).contains("password=secret"));
    }
}
