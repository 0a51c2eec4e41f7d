//! `AuditService`: what auditors read — entries by filter, single entries with their inclusion
//! proof, signed tree heads, inclusion and consistency proofs, and exports. Callable only with
//! an `auditor` certificate (the gateway's policy enforces the `audit:read` role).
//!
//! Every answer is checkable without trusting the server: entries carry their canonical leaf
//! input, heads their signature, proofs the RFC 9162 hashes.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tonic::{Request, Response, Status};
use yrd_call::{bad_request, from_timestamp, timestamp, violation};
use yrd_domain::AgencyId;
use yrd_domain::merkle::Hash;
use yrd_proto::v1::audit_service_server::AuditService;
use yrd_proto::v1::{
    self as pb, AuditEntry, ConsistencyProof, ExportAuditEntriesRequest,
    ExportAuditEntriesResponse, GetAuditEntryRequest, GetAuditEntryResponse,
    GetConsistencyProofRequest, GetConsistencyProofResponse, GetInclusionProofRequest,
    GetInclusionProofResponse, GetTreeHeadRequest, GetTreeHeadResponse, InclusionProof,
    ListAuditEntriesRequest, ListAuditEntriesResponse, ListTreeHeadsRequest, ListTreeHeadsResponse,
    SignedTreeHead,
};
use yrd_store::Store;
use yrd_store::audit::{AuditError, LeafFilter, StoredLeaf, TreeHead};

/// Default page size of the listings.
const DEFAULT_PAGE: u32 = 100;
/// Largest page size of the listings and export batches.
const MAX_PAGE: u32 = 1_000;
/// How often a following export looks for newly sequenced entries.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// The `AuditService` handler.
#[derive(Debug, Clone)]
pub struct AuditHandler {
    store: Store,
}

impl AuditHandler {
    /// A handler reading `store`.
    pub fn new(store: Store) -> Self {
        AuditHandler { store }
    }

    async fn head(&self, size: Option<u64>) -> Result<TreeHead, Status> {
        let head = match size {
            Some(size) => self.store.tree_head_at(size).await,
            None => self.store.latest_tree_head().await,
        }
        .map_err(|e| store_failure(&e.into()))?;
        head.ok_or_else(|| match size {
            Some(size) => Status::not_found(format!("no signed tree head of size {size}")),
            None => Status::not_found("the log has no signed tree head yet"),
        })
    }
}

fn store_failure(e: &AuditError) -> Status {
    match e {
        AuditError::Merkle(m) => Status::invalid_argument(m.to_string()),
        AuditError::BeyondLog { .. } => Status::out_of_range(e.to_string()),
        other => {
            tracing::error!(error = %other, "audit store failure");
            Status::unavailable("the exchange log is unavailable; retry later")
        }
    }
}

fn page_size(requested: i32) -> Result<u32, Status> {
    match requested {
        0 => Ok(DEFAULT_PAGE),
        n if n < 0 => Err(bad_request(&[violation(
            "page_size",
            "must not be negative",
        )])),
        n => Ok(u32::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE)),
    }
}

fn page_token(token: &str) -> Result<Option<u64>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    token.parse().map(Some).map_err(|_| {
        bad_request(&[violation(
            "page_token",
            "is not a token this listing returned",
        )])
    })
}

fn hashes(list: &[Hash]) -> Vec<Vec<u8>> {
    list.iter().map(|h| h.as_bytes().to_vec()).collect()
}

fn profile(name: &str) -> i32 {
    match name {
        "system" => pb::Profile::System as i32,
        "admin" => pb::Profile::Admin as i32,
        "auditor" => pb::Profile::Auditor as i32,
        _ => pb::Profile::Unspecified as i32,
    }
}

/// The contract's form of a leaf's caller: `agencies/{agency}`, empty when the call named no
/// agency. The leaf itself keeps the bare id it was hashed with, so that every leaf sequenced
/// before the contract and the server agreed keeps verifying: the name is formed here, at the
/// edge, and `yrd audit verify` strips it again to recompute the leaf.
pub fn caller_agency_name(leaf_agency: &str) -> String {
    if leaf_agency.is_empty() {
        String::new()
    } else {
        format!("{}/{leaf_agency}", AgencyId::COLLECTION)
    }
}

/// The `caller_agency` filter of a listing: `agencies/{agency}` as the contract writes it, or the
/// bare id as officers type it; empty means any agency.
fn caller_agency_filter(value: &str) -> Result<Option<String>, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    AgencyId::parse_name_or_id(value)
        .map(|agency| Some(agency.as_str().to_owned()))
        .map_err(|e| {
            bad_request(&[violation(
                "caller_agency",
                format!("must be agencies/{{agency}} or an agency id, got {value:?}: {e}"),
            )])
        })
}

/// An entry as auditors receive it: the decoded fields and the stored canonical input.
pub fn entry(stored: &StoredLeaf) -> AuditEntry {
    let leaf = &stored.leaf;
    AuditEntry {
        index: stored.index,
        leaf_hash: stored.leaf_hash.as_bytes().to_vec(),
        leaf_input: stored.leaf_input.clone().into_bytes(),
        time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(leaf.time_us) * 1_000)
            .ok()
            .map(timestamp),
        trace_id: leaf.trace_id.clone(),
        span_id: leaf.span_id.clone(),
        caller_agency: caller_agency_name(&leaf.agency),
        certificate_fingerprint_sha256: leaf.cert_fingerprint.clone(),
        profile: profile(&leaf.profile),
        officer: leaf.officer.clone(),
        token_id: leaf.token_id.clone(),
        method: leaf.method.clone(),
        resource_names: leaf.resources.clone(),
        outcome_code: leaf.code,
        outcome_message: leaf.message.clone(),
        request_sha256: hex::decode(&leaf.request_sha256).unwrap_or_default(),
        duration: Some(prost_types::Duration {
            seconds: leaf.duration_us / 1_000_000,
            nanos: i32::try_from((leaf.duration_us % 1_000_000) * 1_000).unwrap_or(0),
        }),
    }
}

/// A signed tree head as auditors receive it.
pub fn signed_head(head: &TreeHead) -> SignedTreeHead {
    SignedTreeHead {
        tree_size: head.tree_size,
        root_hash: head.root.as_bytes().to_vec(),
        timestamp: Some(timestamp(head.timestamp)),
        signature: head.signature.clone(),
        key_id: head.key_id.clone(),
    }
}

type ExportStream =
    Pin<Box<dyn Stream<Item = Result<ExportAuditEntriesResponse, Status>> + Send + 'static>>;

/// The handlers; each answers through the [`Call`] the service dispatch takes.
impl AuditHandler {
    async fn list_audit_entries_call(
        &self,
        request: Request<ListAuditEntriesRequest>,
    ) -> Result<Response<ListAuditEntriesResponse>, Status> {
        let body = request.into_inner();
        let limit = page_size(body.page_size)?;
        let after = page_token(&body.page_token)?;
        let micros = |t: &Option<prost_types::Timestamp>, field: &str| match t {
            None => Ok(None),
            Some(t) => from_timestamp(t)
                .map(|t| Some(i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)))
                .ok_or_else(|| bad_request(&[violation(field, "out of range")])),
        };
        let text = |s: String| (!s.is_empty()).then_some(s);
        let filter = LeafFilter {
            from_us: micros(&body.start_time, "start_time")?,
            to_us: micros(&body.end_time, "end_time")?,
            agency: caller_agency_filter(&body.caller_agency)?,
            method: text(body.method),
            code: body.outcome_code,
            resource: text(body.resource_name),
            trace_id: text(body.trace_id.to_ascii_lowercase()),
        };
        let rows = self
            .store
            .query_leaves(&filter, after, limit)
            .await
            .map_err(|e| store_failure(&e.into()))?;
        let next_page_token = if rows.len() == limit as usize {
            rows.last().map(|r| r.index.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        // The officer is matched here rather than in SQL: pages may come back shorter than
        // asked, but the token still continues after the last entry examined.
        let entries = rows
            .iter()
            .filter(|r| body.officer.is_empty() || r.leaf.officer == body.officer)
            .map(entry)
            .collect();
        Ok(Response::new(ListAuditEntriesResponse {
            entries,
            next_page_token,
        }))
    }

    async fn get_audit_entry_call(
        &self,
        request: Request<GetAuditEntryRequest>,
    ) -> Result<Response<GetAuditEntryResponse>, Status> {
        let body = request.into_inner();
        let stored = self
            .store
            .leaf_by_index(body.index)
            .await
            .map_err(|e| store_failure(&e.into()))?
            .ok_or_else(|| Status::not_found(format!("no audit entry {}", body.index)))?;
        let (proof, tree_head) = if body.include_proof {
            let head = self.head(body.tree_size).await?;
            if body.index >= head.tree_size {
                return Err(Status::failed_precondition(format!(
                    "entry {} is not yet covered by a tree head of size {}",
                    body.index, head.tree_size
                )));
            }
            let path = self
                .store
                .inclusion_proof(body.index, head.tree_size)
                .await
                .map_err(|e| store_failure(&e))?;
            (
                Some(InclusionProof {
                    leaf_index: body.index,
                    tree_size: head.tree_size,
                    hashes: hashes(&path),
                }),
                Some(signed_head(&head)),
            )
        } else {
            (None, None)
        };
        Ok(Response::new(GetAuditEntryResponse {
            entry: Some(entry(&stored)),
            proof,
            tree_head,
        }))
    }

    async fn get_tree_head_call(
        &self,
        request: Request<GetTreeHeadRequest>,
    ) -> Result<Response<GetTreeHeadResponse>, Status> {
        let head = self.head(request.into_inner().tree_size).await?;
        Ok(Response::new(GetTreeHeadResponse {
            tree_head: Some(signed_head(&head)),
        }))
    }

    async fn list_tree_heads_call(
        &self,
        request: Request<ListTreeHeadsRequest>,
    ) -> Result<Response<ListTreeHeadsResponse>, Status> {
        let body = request.into_inner();
        let limit = page_size(body.page_size)?;
        let after = page_token(&body.page_token)?;
        let start = body.start_time.as_ref().and_then(from_timestamp);
        let end = body.end_time.as_ref().and_then(from_timestamp);
        let heads = self
            .store
            .list_tree_heads(after, limit)
            .await
            .map_err(|e| store_failure(&e.into()))?;
        let next_page_token = if heads.len() == limit as usize {
            heads
                .last()
                .map(|h| h.tree_size.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let tree_heads = heads
            .iter()
            .filter(|h| {
                start.is_none_or(|s| h.timestamp >= s) && end.is_none_or(|e| h.timestamp < e)
            })
            .map(signed_head)
            .collect();
        Ok(Response::new(ListTreeHeadsResponse {
            tree_heads,
            next_page_token,
        }))
    }

    async fn get_inclusion_proof_call(
        &self,
        request: Request<GetInclusionProofRequest>,
    ) -> Result<Response<GetInclusionProofResponse>, Status> {
        let body = request.into_inner();
        let head = self.head(body.tree_size).await?;
        let index = match body.leaf {
            Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(i)) => i,
            Some(pb::get_inclusion_proof_request::Leaf::LeafHash(h)) => {
                let hash = Hash::try_from(h.as_slice())
                    .map_err(|_| bad_request(&[violation("leaf_hash", "must be 32 bytes")]))?;
                self.store
                    .leaf_index_by_hash(&hash)
                    .await
                    .map_err(|e| store_failure(&e.into()))?
                    .ok_or_else(|| {
                        Status::not_found(format!("no sequenced leaf has hash {hash}"))
                    })?
            }
            None => {
                return Err(bad_request(&[violation(
                    "leaf",
                    "give leaf_index or leaf_hash",
                )]));
            }
        };
        if index >= head.tree_size {
            return Err(Status::failed_precondition(format!(
                "leaf {index} is not covered by the tree head of size {}",
                head.tree_size
            )));
        }
        let path = self
            .store
            .inclusion_proof(index, head.tree_size)
            .await
            .map_err(|e| store_failure(&e))?;
        Ok(Response::new(GetInclusionProofResponse {
            proof: Some(InclusionProof {
                leaf_index: index,
                tree_size: head.tree_size,
                hashes: hashes(&path),
            }),
            tree_head: Some(signed_head(&head)),
        }))
    }

    async fn get_consistency_proof_call(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<GetConsistencyProofResponse>, Status> {
        let body = request.into_inner();
        let second = self.head(body.second_tree_size).await?;
        if body.first_tree_size == 0 {
            return Err(bad_request(&[violation(
                "first_tree_size",
                "must be at least 1",
            )]));
        }
        if body.first_tree_size > second.tree_size {
            return Err(bad_request(&[violation(
                "first_tree_size",
                "must not exceed second_tree_size",
            )]));
        }
        // The earlier size need not be a published head (the contract sets
        // `first_tree_head` only "when one was published at it"): a verifier that holds the
        // leaves — `yrd audit verify --file` locating the first bad index of an export —
        // proves prefixes of any length.
        let first = self
            .store
            .tree_head_at(body.first_tree_size)
            .await
            .map_err(|e| store_failure(&e.into()))?;
        let path = self
            .store
            .consistency_proof(body.first_tree_size, second.tree_size)
            .await
            .map_err(|e| store_failure(&e))?;
        Ok(Response::new(GetConsistencyProofResponse {
            proof: Some(ConsistencyProof {
                first_tree_size: body.first_tree_size,
                second_tree_size: second.tree_size,
                hashes: hashes(&path),
            }),
            first_tree_head: first.as_ref().map(signed_head),
            second_tree_head: Some(signed_head(&second)),
        }))
    }

    async fn export_audit_entries_call(
        &self,
        request: Request<ExportAuditEntriesRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let body = request.into_inner();
        let store = self.store.clone();
        let start = match body.start {
            None => 0,
            Some(pb::export_audit_entries_request::Start::StartIndex(i)) => i,
            Some(pb::export_audit_entries_request::Start::StartTime(t)) => {
                let from = from_timestamp(&t)
                    .ok_or_else(|| bad_request(&[violation("start_time", "out of range")]))?;
                let filter = LeafFilter {
                    from_us: Some(
                        i64::try_from(from.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX),
                    ),
                    ..LeafFilter::default()
                };
                let first = store
                    .query_leaves(&filter, None, 1)
                    .await
                    .map_err(|e| store_failure(&e.into()))?;
                match first.first() {
                    Some(leaf) => leaf.index,
                    None => store
                        .sequenced_size()
                        .await
                        .map_err(|e| store_failure(&e.into()))?,
                }
            }
        };
        let end = body.end_index;
        let follow = body.follow;
        let stream = async_stream(store, start, end, follow);
        Ok(Response::new(Box::pin(stream)))
    }
}

yrd_call::serve_rpcs! {
    impl AuditService for AuditHandler {
        type ExportAuditEntriesStream = ExportStream;

        #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
        fn list_audit_entries(
            &self,
            _,
            request: ListAuditEntriesRequest,
        ) -> ListAuditEntriesResponse {
            self.list_audit_entries_call(request).await
        }

        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            index = request.get_ref().index,
        ))]
        fn get_audit_entry(&self, _, request: GetAuditEntryRequest) -> GetAuditEntryResponse {
            self.get_audit_entry_call(request).await
        }

        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            tree_size = ?request.get_ref().tree_size,
        ))]
        fn get_tree_head(&self, _, request: GetTreeHeadRequest) -> GetTreeHeadResponse {
            self.get_tree_head_call(request).await
        }

        #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
        fn list_tree_heads(&self, _, request: ListTreeHeadsRequest) -> ListTreeHeadsResponse {
            self.list_tree_heads_call(request).await
        }

        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            tree_size = ?request.get_ref().tree_size,
        ))]
        fn get_inclusion_proof(
            &self,
            _,
            request: GetInclusionProofRequest,
        ) -> GetInclusionProofResponse {
            self.get_inclusion_proof_call(request).await
        }

        #[tracing::instrument(skip_all, fields(
            agency = tracing::field::Empty,
            first_tree_size = request.get_ref().first_tree_size,
            second_tree_size = ?request.get_ref().second_tree_size,
        ))]
        fn get_consistency_proof(
            &self,
            _,
            request: GetConsistencyProofRequest,
        ) -> GetConsistencyProofResponse {
            self.get_consistency_proof_call(request).await
        }

        #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
        fn export_audit_entries(&self, _, request: ExportAuditEntriesRequest) -> ExportStream {
            self.export_audit_entries_call(request).await
        }
    }
}

/// The export as a stream of batches: reads `[start, end)` in pages; with `follow`, keeps
/// polling for newly sequenced entries until the client goes away.
fn async_stream(
    store: Store,
    start: u64,
    end: Option<u64>,
    follow: bool,
) -> impl Stream<Item = Result<ExportAuditEntriesResponse, Status>> + Send + 'static {
    futures::stream::unfold(Some(start), move |next| {
        let store = store.clone();
        async move {
            let mut next = next?;
            loop {
                let size = match store.sequenced_size().await {
                    Ok(size) => size,
                    Err(e) => return Some((Err(store_failure(&e.into())), None)),
                };
                let stop = end.map_or(size, |e| e.min(size));
                if next < stop {
                    let batch_end = stop.min(next + u64::from(MAX_PAGE));
                    return match store.leaves_range(next, batch_end).await {
                        Ok(rows) => {
                            let entries: Vec<AuditEntry> = rows.iter().map(entry).collect();
                            next = batch_end;
                            Some((
                                Ok(ExportAuditEntriesResponse {
                                    entries,
                                    log_size: size,
                                }),
                                Some(next),
                            ))
                        }
                        Err(e) => Some((Err(store_failure(&e.into())), None)),
                    };
                }
                let finished = end.is_some_and(|e| next >= e) || !follow;
                if finished {
                    return None;
                }
                tokio::time::sleep(FOLLOW_POLL).await;
            }
        }
    })
}
