//! A client session with a running exchange: an mTLS channel plus an access token bound to its
//! certificate, for the `yrd` subcommands that call business or admin methods.
//!
//! The handshake alone authorizes nothing: every call but `TokenService`'s needs
//! `authorization: Bearer <token>`, and the token is only good on a connection that presents
//! the certificate it was issued for (RFC 8705). So every client subcommand does the same three
//! steps — connect, `TokenService.IssueToken` over that connection, then call with the token —
//! and this module does them once, for `yrd cert`, `yrd agency` and whatever subcommand comes
//! next. It also owns [`RpcError`], the one way the command line reports a refused call: the
//! gRPC code, the message and every `google.rpc.BadRequest` field violation on its own line.

use std::fmt;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use yrd_proto::v1::IssueTokenRequest;
use yrd_proto::v1::admin_service_client::AdminServiceClient;
use yrd_proto::v1::token_service_client::TokenServiceClient;

use crate::cli::client::{ClientError, ClientFiles, connect};

/// Where to connect and as whom: the exchange's address, the name its certificate must carry,
/// the client's certificate files, and the officer to name in the token.
#[derive(Debug, Clone)]
pub struct ConnectTarget {
    /// `host:port` or `https://host:port`.
    pub server: String,
    /// The name the server certificate must carry.
    pub tls_name: String,
    /// The exchange CA and the client certificate and key.
    pub files: ClientFiles,
    /// The acting officer (token `act`), recorded in the audit log of every call.
    pub officer: Option<String>,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The mTLS connection could not be made.
    #[error("cannot connect to {server}")]
    Connect {
        /// The address tried.
        server: String,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// The exchange refused to issue a token for this certificate.
    #[error(transparent)]
    Token(RpcError),
    /// The token the exchange returned cannot be sent as gRPC metadata.
    #[error("the access token the exchange returned is not printable ASCII")]
    TokenNotAscii,
}

/// A refused gRPC call: which method, and the status the exchange answered.
///
/// Its `Display` is what the command line prints: the method, the canonical code name
/// (`NOT_FOUND`), the message, then each `BadRequest` field violation on its own line.
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

/// Every item of a paged list method: asks `page` for one page after another, each request
/// carrying the previous answer's `next_page_token`, until the exchange answers an empty one.
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

/// The canonical upper-case name of a gRPC status code, e.g. `INVALID_ARGUMENT`.
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

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl fmt::Debug for Bearer {
    /// Never the token: it is a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer(…)")
    }
}

impl Bearer {
    /// The interceptor for `token`; `None` when the token is not printable ASCII.
    pub fn new(token: &str) -> Option<Bearer> {
        format!("Bearer {token}").parse().ok().map(Bearer)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel whose calls carry the bearer token; hand it to any generated client's `new`.
pub type Authed = InterceptedService<Channel, Bearer>;

/// An open mTLS connection and an access token bound to its certificate.
#[derive(Clone)]
pub struct Session {
    channel: Channel,
    bearer: Bearer,
    token: String,
    roles: Vec<String>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects to `target` and obtains a token for its certificate (`TokenService.IssueToken`,
    /// naming the officer when one is given).
    pub async fn open(target: &ConnectTarget) -> Result<Session, SessionError> {
        let channel = connect(&target.server, &target.tls_name, &target.files)
            .await
            .map_err(|source| SessionError::Connect {
                server: target.server.clone(),
                source,
            })?;
        let issued = TokenServiceClient::new(channel.clone())
            .issue_token(IssueTokenRequest {
                officer: target.officer.clone().unwrap_or_default(),
                audience: String::new(),
            })
            .await
            .map_err(|s| SessionError::Token(RpcError::new("TokenService.IssueToken", s)))?
            .into_inner();
        let bearer = Bearer::new(&issued.access_token).ok_or(SessionError::TokenNotAscii)?;
        Ok(Session {
            channel,
            bearer,
            token: issued.access_token,
            roles: issued.roles,
        })
    }

    /// The mTLS channel, without the token (for `TokenService` and health checks).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The access token, bound to this connection's certificate.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The roles the token grants (its `roles` claim), e.g. `exchange:admin`.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The channel with the bearer interceptor.
    pub fn authed(&self) -> Authed {
        InterceptedService::new(self.channel.clone(), self.bearer.clone())
    }

    /// An `AdminService` client sending the token.
    pub fn admin(&self) -> AdminServiceClient<Authed> {
        AdminServiceClient::new(self.authed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrd_call::{bad_request, violation};

    #[test]
    fn an_rpc_error_names_code_message_and_each_violation() {
        let status = bad_request(&[
            violation("csr_pem", "is required"),
            violation("validity", "must be at most 90 days"),
        ]);
        let text = RpcError::new("AdminService.IssueCertificate", status).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("AdminService.IssueCertificate failed: INVALID_ARGUMENT: "),
            "{text}"
        );
        assert_eq!(lines[1], "  csr_pem: is required");
        assert_eq!(lines[2], "  validity: must be at most 90 days");
        assert_eq!(lines.len(), 3);

        let text = RpcError::new("X.Y", Status::not_found("certificates/ab not found")).to_string();
        assert_eq!(text, "X.Y failed: NOT_FOUND: certificates/ab not found");
    }

    #[test]
    fn a_bearer_never_prints_its_token() {
        let bearer = Bearer::new("secret.jwt.value").expect("ascii");
        assert!(!format!("{bearer:?}").contains("secret"));
        assert!(Bearer::new("bad\ntoken").is_none());
    }
}
