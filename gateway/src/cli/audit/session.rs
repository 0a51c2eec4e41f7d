//! The auditor's connection for `yrd audit`: a [`Session`] with the auditor certificate, its
//! `AuditService` client, and the few reads every command needs (the published log keys, tree
//! heads, consistency proofs), with answers of the wrong shape reported as such.

use time::OffsetDateTime;
use yrd_call::timestamp;
use yrd_domain::Profile;
use yrd_domain::merkle::Hash;
use yrd_proto::v1::audit_service_client::AuditServiceClient;
use yrd_proto::v1::{
    GetConsistencyProofRequest, GetConsistencyProofResponse, GetJwksRequest, GetTreeHeadRequest,
    ListAuditEntriesRequest, SignedTreeHead,
};

use crate::cli::audit::error::AuditCliError;
use crate::cli::audit::keys::LogKeys;
use crate::cli::audit::verdict::{VerifiedHead, VerifyFailure};
use crate::cli::connect::ConnectArgs;
use yrd_client::RpcError;

use crate::cli::session::{Authed, Session};

/// An auditor session: the `AuditService` client, and the session for `GetJwks`.
pub(crate) struct Auditor {
    session: Session,
    /// The `AuditService` client, sending the token.
    pub(crate) audit: AuditServiceClient<Authed>,
}

impl Auditor {
    /// Connects with the auditor certificate (unless told otherwise) and gets a token.
    pub(crate) async fn open(connect: &ConnectArgs) -> Result<Auditor, AuditCliError> {
        let session = Session::open(&connect.target(Profile::Auditor)).await?;
        let audit = session.client().audit();
        Ok(Auditor { session, audit })
    }

    /// The log keys the exchange publishes (`TokenService.GetJwks`).
    pub(crate) async fn log_keys(&self) -> Result<LogKeys, AuditCliError> {
        let jwks = self
            .session
            .client()
            .token_service()
            .get_jwks(GetJwksRequest {})
            .await
            .map_err(|s| RpcError::new("TokenService.GetJwks", s))?
            .into_inner();
        Ok(LogKeys::from_jwks(&jwks))
    }

    /// The signed tree head of `size`, or the latest.
    pub(crate) async fn tree_head(
        &mut self,
        size: Option<u64>,
    ) -> Result<SignedTreeHead, AuditCliError> {
        self.audit
            .get_tree_head(GetTreeHeadRequest { tree_size: size })
            .await
            .map_err(|s| RpcError::new("AuditService.GetTreeHead", s))?
            .into_inner()
            .tree_head
            .ok_or_else(|| missing("AuditService.GetTreeHead", "tree_head"))
    }

    /// The latest signed tree head, its signature checked.
    pub(crate) async fn verified_latest(
        &mut self,
        keys: &LogKeys,
    ) -> Result<VerifiedHead, AuditCliError> {
        let sth = self.tree_head(None).await?;
        Ok(keys.verify_tree_head(&sth)?)
    }

    /// The consistency proof from `old` to `new`.
    pub(crate) async fn consistency(
        &mut self,
        old: u64,
        new: u64,
    ) -> Result<(GetConsistencyProofResponse, Vec<Hash>), AuditCliError> {
        const METHOD: &str = "AuditService.GetConsistencyProof";
        let response = self
            .audit
            .get_consistency_proof(GetConsistencyProofRequest {
                first_tree_size: old,
                second_tree_size: Some(new),
            })
            .await
            .map_err(|s| RpcError::new(METHOD, s))?
            .into_inner();
        let proof = response
            .proof
            .as_ref()
            .ok_or_else(|| missing(METHOD, "proof"))?;
        let hashes = hashes(METHOD, &proof.hashes)?;
        Ok((response, hashes))
    }

    /// The index of the first entry at or after `t`, if any.
    pub(crate) async fn first_index_at(
        &mut self,
        t: OffsetDateTime,
    ) -> Result<Option<u64>, AuditCliError> {
        let page = self
            .audit
            .list_audit_entries(ListAuditEntriesRequest {
                start_time: Some(timestamp(t)),
                page_size: 1,
                ..Default::default()
            })
            .await
            .map_err(|s| RpcError::new("AuditService.ListAuditEntries", s))?
            .into_inner();
        Ok(page.entries.first().map(|e| e.index))
    }
}

pub(crate) fn missing(method: &'static str, field: &'static str) -> AuditCliError {
    AuditCliError::Malformed {
        method,
        field,
        detail: "missing".to_owned(),
    }
}

/// Proof hashes as sent, each of which must be 32 bytes.
pub(crate) fn hashes(method: &'static str, list: &[Vec<u8>]) -> Result<Vec<Hash>, AuditCliError> {
    list.iter()
        .map(|h| {
            Hash::try_from(h.as_slice()).map_err(|e| AuditCliError::Malformed {
                method,
                field: "proof hashes",
                detail: e.to_string(),
            })
        })
        .collect()
}

/// The root of a head the server sent beside a proof.
pub(crate) fn root_of(
    method: &'static str,
    sth: Option<&SignedTreeHead>,
) -> Result<Hash, AuditCliError> {
    let sth = sth.ok_or_else(|| missing(method, "tree head"))?;
    Hash::try_from(sth.root_hash.as_slice()).map_err(|e| AuditCliError::Malformed {
        method,
        field: "tree head root",
        detail: e.to_string(),
    })
}

/// The server's head beside a proof must be the head already verified.
pub(crate) fn same_head(head: &VerifiedHead, got: Hash) -> Result<(), VerifyFailure> {
    if got == head.root {
        Ok(())
    } else {
        Err(VerifyFailure::HeadChanged {
            tree_size: head.tree_size,
            expected: head.root,
            got,
        })
    }
}
