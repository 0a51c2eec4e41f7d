//! Putting a revocation or a suspension in force before its answer.
//!
//! `RevokeCertificate` and `UpdateAgency` (suspend, resume) commit the change to the shared
//! store, and every replica's gateway reloads its revoked and suspended sets (and its CRL)
//! within its poll. The replica that made the change must not answer before the change holds
//! on it: an admin who revoked a compromised certificate and got the answer may rely on the
//! certificate being refused on this replica from then on, even on a connection already open.
//! Those sets belong to the gateway, which this crate cannot depend on, so the handler is
//! given this small trait and awaits it before answering.

use std::future::Future;
use std::pin::Pin;

/// Applies the store's revocations and suspensions to this replica's serving state now.
pub trait ApplyRevocations: Send + Sync + std::fmt::Debug {
    /// Reloads the revoked and suspended sets (and the CRL) from the store; resolves once
    /// they are in force for every call and open stream on this replica.
    fn apply_now(&self) -> Pin<Box<dyn Future<Output = Result<(), ApplyError>> + Send + '_>>;
}

/// Why a change could not be put in force at once (the store could not be read, the CRL
/// could not be signed). The change itself is committed; the poll applies it later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);
