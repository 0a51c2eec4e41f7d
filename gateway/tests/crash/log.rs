//! The exchange log as an auditor sees it: tree heads read and verified during the load, and
//! after the restart a new head consistent with every one seen and including every receipt.

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use yrd_bench::connect::{AGENCIES, Authed, Target, failure};
use yrd_domain::merkle::{Hash, verify_consistency, verify_inclusion};
use yrd_gateway::audit_check::ReceiptFile;
use yrd_gateway::audit_keys::LogKeys;
use yrd_proto::v1 as pb;
use yrd_proto::v1::audit_service_client::AuditServiceClient;
use yrd_proto::v1::token_service_client::TokenServiceClient;

use crate::ledger::{Head, Ledger, PHASE_DEADLINE};

/// How often the auditor asks for the latest tree head during the load.
pub(crate) const HEAD_POLL: Duration = Duration::from_millis(50);

/// The auditor: reads the latest signed tree head every [`HEAD_POLL`] until stopped, verifies
/// each signature, and answers every distinct head it saw, in order.
pub(crate) async fn watch_heads(
    client: Authed,
    keys: LogKeys,
    seen: watch::Sender<Vec<Head>>,
    stop: CancellationToken,
) -> anyhow::Result<Vec<Head>> {
    let mut audit = AuditServiceClient::new(client);
    let mut tick = tokio::time::interval(HEAD_POLL);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Ok(answer) = audit
            .get_tree_head(pb::GetTreeHeadRequest { tree_size: None })
            .await
        else {
            // Refused or unreachable: the server is being killed; what was seen stays.
            continue;
        };
        let Some(sth) = answer.into_inner().tree_head else {
            continue;
        };
        let head = verify_head(&keys, &sth)?;
        seen.send_modify(|heads| {
            if heads.last() != Some(&head) {
                heads.push(head);
            }
        });
    }
    let heads = seen.borrow().clone();
    Ok(heads)
}

/// The exchange's published keys, as an auditor reads them (`TokenService.GetJwks`).
pub(crate) async fn log_keys(target: &Target) -> anyhow::Result<LogKeys> {
    let jwks = TokenServiceClient::new(target.channel(AGENCIES[0].0).await?)
        .get_jwks(pb::GetJwksRequest::default())
        .await
        .context("GetJwks")?
        .into_inner();
    Ok(LogKeys::from_jwks(&jwks))
}

pub(crate) fn verify_head(keys: &LogKeys, sth: &pb::SignedTreeHead) -> anyhow::Result<Head> {
    let verified = keys
        .verify_tree_head(sth)
        .map_err(|e| anyhow::anyhow!("tree head of size {}: {e}", sth.tree_size))?;
    Ok(Head {
        size: verified.tree_size,
        root: verified.root,
    })
}

/// The log after the restart: a new signed head that is consistent with the trusted head of
/// the previous iteration and with every head seen before the kill, and that includes the leaf
/// of every acknowledged receipt of this iteration (each receipt's signature checked too).
/// Answers the new head.
pub(crate) async fn check_log(
    target: &Target,
    client: &Authed,
    ledger: &Ledger,
    first_new: usize,
    seen: &[Head],
) -> anyhow::Result<Head> {
    let keys = log_keys(target).await?;
    let mut leaves = Vec::new();
    for attempt in &ledger.attempts[first_new..] {
        let Some(acked) = &attempt.acked else {
            continue;
        };
        let receipt = ReceiptFile::from_pb(&acked.receipt)
            .and_then(|r| r.signed())
            .with_context(|| format!("the receipt of {}", attempt.request.id()))?;
        keys.verify_receipt(&receipt)
            .map_err(|e| anyhow::anyhow!("the receipt of {}: {e}", attempt.request.id()))?;
        leaves.push((attempt.request.id().to_owned(), receipt.leaf_hash));
    }
    let mut audit = AuditServiceClient::new(client.clone());
    let must_cover = seen.last().map_or(0, |h| h.size);
    let deadline = tokio::time::Instant::now() + PHASE_DEADLINE;
    let mut poll = tokio::time::interval(HEAD_POLL);
    // The receipts promise inclusion within the merge delay; wait for a head that has them.
    let head = loop {
        let sth = audit
            .get_tree_head(pb::GetTreeHeadRequest { tree_size: None })
            .await
            .map_err(|s| anyhow::anyhow!("GetTreeHead: {}", failure(&s)))?
            .into_inner()
            .tree_head
            .context("GetTreeHead answered no head")?;
        let head = verify_head(&keys, &sth)?;
        let mut pending = None;
        if head.size >= must_cover {
            for (id, leaf) in &leaves {
                if !included(&mut audit, leaf, head).await? {
                    pending = Some(id.clone());
                    break;
                }
            }
        } else {
            pending = Some(format!("a head of size {must_cover} at least"));
        }
        match pending {
            None => break head,
            Some(what) if tokio::time::Instant::now() > deadline => bail!(
                "the log's latest head (size {}) still lacks the leaf of {what} after \
                 {PHASE_DEADLINE:?}",
                head.size
            ),
            Some(_) => {
                poll.tick().await;
            }
        }
    };
    let mut chain: Vec<Head> = ledger.trusted.iter().copied().collect();
    chain.extend(seen.iter().copied());
    chain.push(head);
    for pair in chain.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        ensure!(
            new.size >= old.size,
            "the log shrank from a head of size {} to one of size {}",
            old.size,
            new.size
        );
        if old.size == 0 {
            continue;
        }
        let proof = audit
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                first_tree_size: old.size,
                second_tree_size: Some(new.size),
            })
            .await
            .map_err(|s| {
                anyhow::anyhow!(
                    "GetConsistencyProof {} → {}: {}",
                    old.size,
                    new.size,
                    failure(&s)
                )
            })?
            .into_inner()
            .proof
            .context("GetConsistencyProof answered no proof")?;
        let hashes = hashes(&proof.hashes)?;
        verify_consistency(old.size, new.size, &old.root, &new.root, &hashes).map_err(|e| {
            anyhow::anyhow!(
                "the head of size {} (root {}) is not consistent with the head of size {} \
                 (root {}): {e}",
                old.size,
                old.root,
                new.size,
                new.root
            )
        })?;
    }
    Ok(head)
}

/// Whether `leaf` is in the tree of `head`: its inclusion proof verified against the head's
/// root; `false` while the log has not sequenced it into that head yet.
pub(crate) async fn included(
    audit: &mut AuditServiceClient<Authed>,
    leaf: &Hash,
    head: Head,
) -> anyhow::Result<bool> {
    let answer = audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(
                leaf.as_bytes().to_vec(),
            )),
            tree_size: Some(head.size),
        })
        .await;
    let proof = match answer {
        Ok(answer) => answer
            .into_inner()
            .proof
            .context("GetInclusionProof answered no proof")?,
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::NotFound | tonic::Code::OutOfRange | tonic::Code::FailedPrecondition
            ) =>
        {
            return Ok(false);
        }
        Err(s) => bail!("GetInclusionProof of leaf {leaf}: {}", failure(&s)),
    };
    verify_inclusion(
        leaf,
        proof.leaf_index,
        head.size,
        &hashes(&proof.hashes)?,
        &head.root,
    )
    .map_err(|e| anyhow::anyhow!("the inclusion proof of leaf {leaf}: {e}"))?;
    Ok(true)
}

pub(crate) fn hashes(raw: &[Vec<u8>]) -> anyhow::Result<Vec<Hash>> {
    raw.iter()
        .map(|h| Hash::try_from(h.as_slice()).map_err(|e| anyhow::anyhow!("a proof hash: {e}")))
        .collect()
}
