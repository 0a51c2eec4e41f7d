//! The call path every service crate shares at the wire edge: the helpers that turn our values
//! into the contract's (times, receipts) and a request's bad fields into the one shape of
//! `INVALID_ARGUMENT` the contract promises.
//!
//! They live here rather than in `yrd-proto` so that the contract crate stays the generated
//! code and nothing else, depending on no crate of ours (a receipt is signed by `yrd-pki`), and
//! rather than in each service so that no service keeps a copy of its own.
//!
//! # Layout
//!
//! * [`timestamp`]: instants to and from `google.protobuf.Timestamp`.
//! * [`receipt`]: the wire form of a signed receipt.
//! * [`digest`]: the request digest of a call's audit leaf.
//! * [`field`]: one bad field, [`FieldErrors`] (every bad field of a request) and the
//!   `BadRequest` it becomes.
//! * [`resource`]: ids inside resource names (`agencies/{id}`).
//! * [`request_id`]: a write's client-chosen idempotency key.
//! * [`page`]: a page's requested size and token, where it ends, and the token of the next.
//! * [`call`]: the context of one call, taken once from the request, and the answer that
//!   carries what the handler reports for the exchange log.
//! * [`error`]: the one error core every service's errors map into, and their gRPC status.
//! * [`periodic`]: the one "every period until stopped" loop of the background tasks.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod call;
pub mod digest;
pub mod error;
pub mod field;
pub mod page;
pub mod periodic;
pub mod receipt;
pub mod request_id;
pub mod resource;
pub mod timestamp;

pub use call::{Call, Outcome, leaf_written, reported_note};
pub use digest::request_sha256;
pub use error::{CallError, Kind, STORE_UNAVAILABLE, cause_chain, into_status};
pub use field::{FieldErrors, FieldViolation, bad_request, optional_uscc, violation};
pub use page::{next_page_token, page_after, page_size};
pub use receipt::receipt;
pub use request_id::{MAX_REQUEST_ID_CHARS, request_id};
pub use resource::resource_id;
pub use timestamp::{from_timestamp, timestamp};

/// What [`serve_rpcs!`] expands to names tonic through this path, so that a service crate
/// needs no extra import for it.
#[doc(hidden)]
pub use tonic as __tonic;
