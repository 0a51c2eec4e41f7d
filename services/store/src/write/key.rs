//! The request a write answers, as its idempotency key: plain data, below the idempotency
//! checks and the write queue that both handle it.

use yrd_domain::AgencyId;

/// The request a write answers, for idempotency: the calling agency, the method, the
/// client's request id and a digest of what the request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The calling agency (request ids are per agency).
    pub agency: AgencyId,
    /// The full gRPC method path (request ids are per method).
    pub method: String,
    /// The client-chosen request id.
    pub request_id: String,
    /// Digest of the request's content, lowercase hex: equal digests mean the same request.
    pub request_digest: String,
}
