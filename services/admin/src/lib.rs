//! AdminService (agencies, certificates) and TokenService (certificate-bound access tokens).
//!
//! # Layout
//!
//! * [`token`] — ES256 access tokens bound to the client certificate (RFC 8705), signing keys,
//!   JWKS, and the verification the gateway's token layer runs on every call.
//! * [`keyring`] — the signing keys as every replica shares them through the store, rotated on
//!   a schedule with an overlap.
//! * [`token_service`] — the `TokenService` handler.
//! * [`admin_service`] — the `AdminService` handler.
//! * [`enforcement`] — the hook through which a revocation or suspension is put in force on
//!   this replica before the handler answers.

#![forbid(unsafe_code)]

pub mod admin_service;
pub mod enforcement;
pub mod keyring;
mod status;
pub mod token;
pub mod token_service;

pub use admin_service::AdminHandler;
pub use enforcement::{ApplyError, ApplyRevocations};
pub use keyring::TokenKeys;
pub use token_service::TokenHandler;
