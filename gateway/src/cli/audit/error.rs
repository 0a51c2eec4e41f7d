//! Why a `yrd audit` command failed.
//!
//! One enum shared by every audit command, in its own module so that the commands
//! (`read`, `verify`, `session`) and the dispatcher (`audit`) all use it without a cycle.

use std::io;
use std::path::PathBuf;

use crate::cli::audit::check::ReceiptError;
use crate::cli::audit::verdict::{FileError, VerifyFailure};
use yrd_client::RpcError;

use crate::cli::session::SessionError;

/// Why a `yrd audit` command failed. [`AuditCliError::Verify`] is the evidence of a bad log,
/// proof or file; the others say why the command could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditCliError {
    /// Verification failed (boxed: the evidence is larger than the other reasons).
    #[error("verification failed: {0}")]
    Verify(Box<VerifyFailure>),
    /// No session with the exchange (connection or token).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The exchange refused a call.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// A file to read is unusable.
    #[error(transparent)]
    File(#[from] FileError),
    /// A receipt file holds no valid receipt.
    #[error("{path}: {source}")]
    Receipt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ReceiptError,
    },
    /// A file the command would write is already there; nothing was replaced.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// A file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Standard output (or the caller's writer) failed.
    #[error("cannot write the output")]
    Output(#[from] io::Error),
    /// JSON output could not be encoded.
    #[error("cannot encode JSON")]
    Json(#[from] serde_json::Error),
    /// The exchange's answer lacks a field the contract promises, or has one of the wrong shape.
    #[error("the exchange answered {method} with a bad {field}: {detail}")]
    Malformed {
        /// The method.
        method: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// `--from-size` names a size at which no head was published, so its root is unknown.
    #[error(
        "no signed tree head was published at size {0}, so its root is unknown: prove from a \
         published size, or keep heads with --state"
    )]
    NoHeadAt(u64),
}

impl From<VerifyFailure> for AuditCliError {
    fn from(failure: VerifyFailure) -> Self {
        AuditCliError::Verify(Box::new(failure))
    }
}

impl AuditCliError {
    /// The refused call's error, when the exchange refused one (token issuance included).
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            AuditCliError::Rpc(e) | AuditCliError::Session(SessionError::Token(e)) => Some(e),
            _ => None,
        }
    }

    /// The verification failure, when verification failed.
    pub fn failure(&self) -> Option<&VerifyFailure> {
        match self {
            AuditCliError::Verify(f) => Some(f),
            _ => None,
        }
    }
}
