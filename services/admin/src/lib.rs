//! AdminService (agencies, certificates) and TokenService (certificate-bound access tokens).
//!
//! # Layout
//!
//! * [`token`] — ES256 access tokens bound to the client certificate (RFC 8705), signing keys,
//!   JWKS, and the verification the gateway's token layer runs on every call.
//! * [`keyring`] — the signing keys as every replica shares them through the store, rotated on
//!   a schedule with an overlap.
//! * [`token_service`] — the `TokenService` handler.
//! * [`admin`] — the `AdminService` handler.
//! * [`error`] — why a call of either service failed.
//! * [`enforcement`] — the hook through which a revocation or suspension is put in force on
//!   this replica before the handler answers.

#![forbid(unsafe_code)]

pub mod admin;
pub mod enforcement;
pub mod error;
pub mod keyring;
pub mod token;
pub mod token_service;

pub use admin::AdminHandler;
pub use enforcement::{ApplyError, ApplyRevocations};
pub use error::AdminError;
pub use keyring::TokenKeys;
pub use token_service::TokenHandler;
