//! How a refused call and a failed connection are reported.

use std::fmt;
use std::path::PathBuf;

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// Why a client could not be set up or connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A certificate, key or CA file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server address is not a URI.
    #[error("bad server address {0:?}: expected host:port or https://host:port")]
    Address(String),
    /// The connection or TLS setup failed.
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
}

/// A refused gRPC call: which method, and the status the exchange answered.
///
/// Its `Display` is what a command line prints: the method, the canonical code name
/// (`NOT_FOUND`), the message, then each `google.rpc.BadRequest` field violation on its own
/// line, indented.
#[derive(Debug)]
pub struct RpcError {
    /// The method called, e.g. `AdminService.RevokeCertificate`.
    pub method: &'static str,
    /// What the exchange answered.
    pub status: Status,
}

impl RpcError {
    /// The error of `method` answered with `status`.
    pub fn new(method: &'static str, status: Status) -> Self {
        RpcError { method, status }
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.status.code()
    }

    /// The `google.rpc.BadRequest` field violations as `(field, description)`, if any.
    pub fn field_violations(&self) -> Vec<(String, String)> {
        self.status
            .get_error_details()
            .bad_request()
            .map(|b| {
                b.field_violations
                    .iter()
                    .map(|v| (v.field.clone(), v.description.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: {}: {}",
            self.method,
            code_name(self.status.code()),
            self.status.message()
        )?;
        for (field, description) in self.field_violations() {
            write!(f, "\n  {field}: {description}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// The canonical upper-case name of a gRPC status code, e.g. `INVALID_ARGUMENT` (also the
/// `code` label of the gateway's metrics).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Every item of a paged `List…`/`Search…` method: asks `page` for one page after another,
/// each request carrying the previous answer's `next_page_token`, until the exchange answers an
/// empty one.
///
/// `page` makes one call and returns the page's items with its `next_page_token`;
/// `set_token` puts a token into the request. A refusal is reported as an [`RpcError`] of
/// `method`.
pub async fn list_all<Req, Item, Fut>(
    method: &'static str,
    mut request: Req,
    set_token: impl Fn(&mut Req, String),
    mut page: impl FnMut(Req) -> Fut,
) -> Result<Vec<Item>, RpcError>
where
    Req: Clone,
    Fut: Future<Output = Result<(Vec<Item>, String), Status>>,
{
    let mut items = Vec::new();
    loop {
        let (found, next) = page(request.clone())
            .await
            .map_err(|s| RpcError::new(method, s))?;
        items.extend(found);
        if next.is_empty() {
            return Ok(items);
        }
        set_token(&mut request, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation};

    #[test]
    fn an_rpc_error_names_code_message_and_each_violation() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "the request has 2 invalid fields",
            ErrorDetails::with_bad_request(vec![
                FieldViolation::new("csr_pem", "is required"),
                FieldViolation::new("validity", "must be at most 90 days"),
            ]),
        );
        let text = RpcError::new("AdminService.IssueCertificate", status).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "AdminService.IssueCertificate failed: INVALID_ARGUMENT: the request has 2 invalid fields"
        );
        assert_eq!(lines[1], "  csr_pem: is required");
        assert_eq!(lines[2], "  validity: must be at most 90 days");
        assert_eq!(lines.len(), 3);

        let text = RpcError::new("X.Y", Status::not_found("certificates/ab not found")).to_string();
        assert_eq!(text, "X.Y failed: NOT_FOUND: certificates/ab not found");
    }

    #[tokio::test]
    async fn list_all_follows_page_tokens_until_an_empty_one() {
        let pages = [(vec![1, 2], "a"), (vec![3], "b"), (vec![], "")];
        let items = list_all(
            "X.List",
            String::new(),
            |req, token| *req = token,
            |req: String| {
                let index = match req.as_str() {
                    "" => 0,
                    "a" => 1,
                    _ => 2,
                };
                let (items, next) = pages[index].clone();
                async move { Ok((items, next.to_owned())) }
            },
        )
        .await
        .expect("three pages");
        assert_eq!(items, vec![1, 2, 3]);
    }
}
