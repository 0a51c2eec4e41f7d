//! The exchange-log sequencer across replicas: one replica holds it (the PostgreSQL advisory
//! lock, `services/store/src/audit/lock.rs`), and when that process dies another takes over.
//! Who holds it is read from the replicas' logs, the line the sequencer writes when it takes
//! the lock.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use yrd_bench::connect::{AGENCIES, failure};
use yrd_domain::merkle::verify_consistency;
use yrd_proto::v1 as pb;
use yrd_proto::v1::audit_service_client::AuditServiceClient;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;

use crate::cluster::{Cluster, publication};
use crate::log::{hashes, included, log_keys, verify_head};

/// What the sequencer logs when its replica takes the lock (`services/audit/src/sequencer.rs`).
pub(crate) const ACQUIRED: &str = "this replica now sequences the exchange log";

/// Another replica must have taken over this soon after the SIGKILL (issue 20).
const TAKEOVER_LIMIT: Duration = Duration::from_secs(5);

/// How often the logs and the log's head are looked at while waiting.
const POLL: Duration = Duration::from_millis(10);

/// How many times each replica has taken the sequencer lock, by its log.
pub(crate) fn acquisitions(cluster: &Cluster) -> Vec<usize> {
    (0..cluster.replicas.len())
        .map(|i| cluster.log(i).matches(ACQUIRED).count())
        .collect()
}

/// Fails unless the sequencer lock was taken, across all logs, as often as `expected` says per
/// replica.
pub(crate) fn expect_acquisitions(cluster: &Cluster, expected: &[usize]) -> anyhow::Result<()> {
    let counts = acquisitions(cluster);
    ensure!(
        counts == expected,
        "the sequencer lock was taken {counts:?} times per replica, expected {expected:?}"
    );
    Ok(())
}

/// Scenario 1: within a few sequencer ticks of the start one replica has taken the lock, and
/// after more ticks still only that one.
pub(crate) async fn runs_on_exactly_one_replica(cluster: &mut Cluster) -> anyhow::Result<()> {
    let started = Instant::now();
    while acquisitions(cluster).iter().sum::<usize>() == 0 {
        if started.elapsed() > TAKEOVER_LIMIT {
            bail!("no replica logged {ACQUIRED:?} within {TAKEOVER_LIMIT:?} of the start");
        }
        tokio::time::sleep(POLL).await;
    }
    // Five ticks of 200 ms: every replica has tried the lock several times meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = acquisitions(cluster);
    ensure!(
        counts.iter().sum::<usize>() == 1,
        "the sequencer lock was taken {counts:?} times per replica, expected once in all"
    );
    let leader = counts.iter().position(|&c| c == 1).unwrap_or(0);
    cluster.sequencer = Some(leader);
    eprintln!("sequencer: replica #{leader} alone holds the lock (per replica {counts:?})");
    Ok(())
}

/// Scenario 6: the sequencer's replica is killed with SIGKILL right after a write was
/// acknowledged through another; one other replica logs that it took the lock within
/// [`TAKEOVER_LIMIT`], a signed head includes that write within the same limit, and that head
/// is consistent with the last head before the kill. The killed replica is started again and
/// must not take the lock from the new holder.
pub(crate) async fn another_replica_takes_over_after_sigkill(
    cluster: &mut Cluster,
) -> anyhow::Result<()> {
    let before_counts = acquisitions(cluster);
    let old = cluster
        .sequencer
        .context("scenario 1 names the sequencer's replica")?;
    let survivor = (old + 1) % cluster.replicas.len();
    let keys = log_keys(&cluster.replicas[survivor].target).await?;
    let publisher = cluster.session(survivor, 0).await?;
    let auditor = cluster.replicas[survivor]
        .target
        .session_as(AGENCIES[0].0, "auditor")
        .await?;
    let mut audit = AuditServiceClient::new(auditor);

    // The head before: one that includes a write made just now, so it is recent.
    let warm = SpotCheckServiceClient::new(publisher.clone())
        .publish_result(publication(0, 11, "replicas-takeover-before"))
        .await
        .map_err(|s| anyhow::anyhow!("publishing before the kill: {}", failure(&s)))?
        .into_inner();
    let warm_leaf = leaf_of(&warm)?;
    let before = wait_for_head_with(&mut audit, &keys, &warm_leaf, Duration::from_secs(10))
        .await
        .context("the head before the kill")?;

    let killed_at = Instant::now();
    cluster.replicas[old].crash()?;
    // A write acknowledged after the kill: only the new sequencer can sequence it.
    let after = SpotCheckServiceClient::new(publisher)
        .publish_result(publication(0, 12, "replicas-takeover-after"))
        .await
        .map_err(|s| anyhow::anyhow!("publishing after the kill: {}", failure(&s)))?
        .into_inner();
    let after_leaf = leaf_of(&after)?;

    let mut acquired = None;
    let mut sequenced = None;
    while acquired.is_none() || sequenced.is_none() {
        if killed_at.elapsed() > TAKEOVER_LIMIT {
            bail!(
                "after SIGKILL of replica #{old} (the sequencer), within {TAKEOVER_LIMIT:?}: \
                 lock taken by another after {acquired:?}, write sequenced after {sequenced:?} \
                 (per replica {:?}, before {before_counts:?})",
                acquisitions(cluster)
            );
        }
        if acquired.is_none() && acquisitions(cluster) != before_counts {
            acquired = Some(killed_at.elapsed());
        }
        if sequenced.is_none() {
            sequenced = head_including(&mut audit, &keys, &after_leaf)
                .await?
                .map(|head| (killed_at.elapsed(), head));
        }
        tokio::time::sleep(POLL).await;
    }
    let (Some(acquired), Some((sequenced, head_after))) = (acquired, sequenced) else {
        bail!("the wait ended without both");
    };
    // Exactly one other replica took the lock, once.
    let counts = acquisitions(cluster);
    let gained: Vec<usize> = (0..counts.len())
        .filter(|&i| counts[i] != before_counts[i])
        .collect();
    let new = match gained.as_slice() {
        [new] if *new != old && counts[*new] == before_counts[*new] + 1 => *new,
        _ => bail!(
            "after SIGKILL of replica #{old} the lock was taken {counts:?} times per replica,              {before_counts:?} before: expected one other replica to take it once"
        ),
    };
    cluster.sequencer = Some(new);

    // The heads before and after are one log: the AuditService's consistency proof verifies.
    let proof = audit
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_tree_size: before.size,
            second_tree_size: Some(head_after.size),
        })
        .await
        .map_err(|s| anyhow::anyhow!("GetConsistencyProof: {}", failure(&s)))?
        .into_inner()
        .proof
        .context("GetConsistencyProof answered no proof")?;
    verify_consistency(
        before.size,
        head_after.size,
        &before.root,
        &head_after.root,
        &hashes(&proof.hashes)?,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "the head of size {} before the kill is not consistent with the head of size {} \
             after it: {e}",
            before.size,
            head_after.size
        )
    })?;
    eprintln!(
        "sequencer takeover: replica #{old} killed with SIGKILL; replica #{new} took the lock \
         after {} ms, and a write acknowledged after the kill was in a signed head after {} ms \
         (limit {} ms); head {} → {} consistent",
        acquired.as_millis(),
        sequenced.as_millis(),
        TAKEOVER_LIMIT.as_millis(),
        before.size,
        head_after.size
    );

    // The killed replica comes back as a follower: the lock stays where it is.
    cluster.replicas[old]
        .restart()
        .await
        .with_context(|| format!("restarting replica #{old}"))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    expect_acquisitions(cluster, &counts)
        .with_context(|| format!("after replica #{old} restarted, the lock must stay with #{new}"))
}

/// The leaf hash of a publication's receipt.
fn leaf_of(answer: &pb::PublishResultResponse) -> anyhow::Result<yrd_domain::merkle::Hash> {
    let receipt = answer
        .receipt
        .as_ref()
        .context("a publish without receipt")?;
    yrd_domain::merkle::Hash::try_from(receipt.leaf_hash.as_slice())
        .map_err(|e| anyhow::anyhow!("the receipt's leaf hash: {e}"))
}

/// The latest signed head, verified; `None` while the log is empty or unreachable.
async fn latest_head(
    audit: &mut AuditServiceClient<yrd_bench::connect::Authed>,
    keys: &yrd_gateway::audit_keys::LogKeys,
) -> anyhow::Result<Option<crate::ledger::Head>> {
    let Ok(answer) = audit
        .get_tree_head(pb::GetTreeHeadRequest { tree_size: None })
        .await
    else {
        return Ok(None);
    };
    match answer.into_inner().tree_head {
        Some(sth) => Ok(Some(verify_head(keys, &sth)?)),
        None => Ok(None),
    }
}

/// The latest verified head if it includes `leaf`.
async fn head_including(
    audit: &mut AuditServiceClient<yrd_bench::connect::Authed>,
    keys: &yrd_gateway::audit_keys::LogKeys,
    leaf: &yrd_domain::merkle::Hash,
) -> anyhow::Result<Option<crate::ledger::Head>> {
    let Some(head) = latest_head(audit, keys).await? else {
        return Ok(None);
    };
    Ok(included(audit, leaf, head).await?.then_some(head))
}

/// The first verified head that includes `leaf`, waiting up to `within`.
async fn wait_for_head_with(
    audit: &mut AuditServiceClient<yrd_bench::connect::Authed>,
    keys: &yrd_gateway::audit_keys::LogKeys,
    leaf: &yrd_domain::merkle::Hash,
    within: Duration,
) -> anyhow::Result<crate::ledger::Head> {
    let started = Instant::now();
    loop {
        if let Some(head) = head_including(audit, keys, leaf).await? {
            return Ok(head);
        }
        if started.elapsed() > within {
            bail!("no signed head included leaf {leaf} within {within:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}
