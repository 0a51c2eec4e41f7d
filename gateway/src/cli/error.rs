//! The error of the `yrd cert` and `yrd agency` commands and the admin session they open:
//! below both command modules, so neither depends on the other.

use std::io;
use std::path::PathBuf;

use yrd_client::RpcError;
use yrd_domain::Profile;
use yrd_pki::PkiError;

use crate::cli::connect::ConnectArgs;
use crate::cli::session::{Session, SessionError};

/// Why a `yrd cert` or `yrd agency` command failed. Messages name the file, the call or the
/// value at fault; the cause follows in the error chain.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file the command would write is already there; nothing was replaced.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file or folder could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Standard output (or the caller's writer) failed.
    #[error("cannot write the output")]
    Output(#[from] io::Error),
    /// A key, CSR or CA could not be made.
    #[error("cannot {action}")]
    Pki {
        /// What was being done, e.g. "make the CA".
        action: &'static str,
        /// Why.
        #[source]
        source: PkiError,
    },
    /// No session with the exchange (connection or token).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The exchange refused a call.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The exchange's answer lacks a field the contract promises.
    #[error("the exchange answered {method} without {field}")]
    Incomplete {
        /// The method.
        method: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// The CRL the exchange returned does not parse.
    #[error("the CRL the exchange returned does not parse: {0}")]
    CrlMalformed(String),
    /// JSON output could not be encoded.
    #[error("cannot encode JSON")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    /// The refused call's error, when the exchange refused one (token issuance included).
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            CliError::Rpc(e) | CliError::Session(SessionError::Token(e)) => Some(e),
            _ => None,
        }
    }
}

/// Opens an admin session: the operator's admin certificate unless told otherwise.
pub(crate) async fn admin_session(connect: &ConnectArgs) -> Result<Session, CliError> {
    Ok(Session::open(&connect.target(Profile::Admin)).await?)
}
