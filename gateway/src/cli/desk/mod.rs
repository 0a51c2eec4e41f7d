//! An officer's desk on the command line: `yrd feed tail`, `yrd referral …` and
//! `yrd application …`, the partner side of the exchange (README §"Disposal", §"Hu-Lu joint
//! processing").
//!
//! Like `yrd cert`, every command is a plain async function writing to a caller-supplied `out`,
//! calling the exchange through a [`Session`] with the caller's `system` certificate. A step
//! is sent as the API takes it and the exchange validates it: a refusal prints exactly what
//! the API answered (the code, the message, each `BadRequest` field violation), so the command
//! line and the API never disagree on what is valid.
//!
//! * [`command`] — the clap definitions of the three command families.
//! * [`feed`] — `yrd feed tail`, on [`yrd_client::feed::FeedConsumer`].
//! * [`referral`] — `yrd referral …` (DisposalService).
//! * [`application`] — `yrd application …` (LicensingService).
//! * [`format`] — what they print alike: times in China Standard Time, deadlines as
//!   "due in N days" / "overdue N days", states with their Chinese terms, enum arguments.

pub mod application;
pub mod command;
pub mod feed;
pub mod format;
pub mod referral;

use std::io;
use std::path::PathBuf;

use yrd_client::RpcError;
use yrd_domain::Profile;

use crate::cli::connect::ConnectArgs;
use crate::cli::session::{Session, SessionError};

/// Why a desk command failed. Messages name the call, the file or the value at fault.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// No session with the exchange (connection or token).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The exchange refused a call; printed with its field violations.
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
    /// A file named on the command line could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The feed consumer stopped (its cursor store, or a refusal a reconnect cannot mend).
    #[error("yrd feed tail stopped: {0}")]
    Feed(String),
    /// A command-line value the exchange cannot be asked with (e.g. a time that does not
    /// parse).
    #[error("{0}")]
    Argument(String),
    /// Standard output failed.
    #[error("cannot write the output")]
    Output(#[from] io::Error),
    /// JSON output could not be encoded.
    #[error("cannot encode JSON")]
    Json(#[from] serde_json::Error),
}

impl DeskError {
    /// The refused call's error, when the exchange refused one (token issuance included).
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            DeskError::Rpc(e) | DeskError::Session(SessionError::Token(e)) => Some(e),
            _ => None,
        }
    }
}

/// Opens a session with the caller's `system` certificate unless told otherwise.
pub(crate) async fn system_session(connect: &ConnectArgs) -> Result<Session, DeskError> {
    Ok(Session::open(&connect.target(Profile::System)).await?)
}

/// A fresh idempotency key for one step: the client library retries the call with the same
/// key, so a step is taken once however often it is sent.
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Files named on the command line as contract attachments: name, media type (from the
/// extension), SHA-256 and size. The exchange keeps digests, never the files.
pub(crate) fn attachments(paths: &[PathBuf]) -> Result<Vec<yrd_proto::v1::Attachment>, DeskError> {
    use sha2::{Digest as _, Sha256};
    paths
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).map_err(|source| DeskError::Read {
                path: path.clone(),
                source,
            })?;
            let extension = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let media_type = match extension.as_str() {
                "pdf" => "application/pdf",
                "jpg" | "jpeg" => "image/jpeg",
                "png" => "image/png",
                "txt" => "text/plain",
                "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                _ => "application/octet-stream",
            };
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(yrd_proto::v1::Attachment {
                description: path
                    .file_stem()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                file_name,
                media_type: media_type.to_owned(),
                sha256: hex::encode(Sha256::digest(&bytes)),
                size_bytes: bytes.len() as u64,
            })
        })
        .collect()
}
