//! A replica killed with SIGKILL under publish load: everything it acknowledged is found
//! through the others. The load and the checks are the crash test's (`gateway/tests/crash/`):
//! writers of every agency publish and correct through the victim until it is killed; then,
//! through another replica, every acknowledged write reads back with its content, each
//! unanswered one sent again succeeds once, every acknowledged one sent again gets its first
//! answer, the search and the recipients' feeds hold each write exactly once, and the log's
//! head includes every acknowledged receipt, consistent with every head seen before the kill.

use anyhow::Context as _;
use rand::Rng as _;

use crate::cluster::Cluster;
use crate::ledger::Ledger;
use crate::load::load_and_kill;
use crate::sequencer::{acquisitions, expect_acquisitions};

/// The kill comes after this many writes were acknowledged since the auditor's first head.
const KILL_AFTER_ACKS: std::ops::RangeInclusive<u64> = 15..=60;

/// Scenario 3. The victim is a replica that does not sequence (the sequencer's death is
/// scenario 6), the checks run through the next one, and the victim is started again after.
pub(crate) async fn acknowledged_writes_survive_a_killed_replica(
    cluster: &mut Cluster,
) -> anyhow::Result<()> {
    let n = cluster.replicas.len();
    let sequencer = cluster
        .sequencer
        .context("scenario 1 names the sequencer's replica")?;
    let victim = (sequencer + 1) % n;
    let checker = (victim + 1) % n;
    let seed: u64 = rand::rng().random();
    let kill_after = rand::rng().random_range(KILL_AFTER_ACKS);
    let campaign = format!("REPLICAS-KILL-{seed}");
    let counts = acquisitions(cluster);

    let mut ledger = Ledger::default();
    let seen = load_and_kill(
        &mut cluster.replicas[victim],
        &mut ledger,
        &campaign,
        1,
        kill_after,
        seed,
    )
    .await
    .with_context(|| format!("the load on replica #{victim} (seed {seed})"))?;
    let acked = ledger.attempts.iter().filter(|a| a.acked.is_some()).count();
    let report = crate::check::check(&cluster.replicas[checker], &mut ledger, &campaign, 0, &seen)
        .await
        .with_context(|| {
            format!("checked through replica #{checker} after replica #{victim} was killed")
        })?;
    eprintln!(
        "killed mid-publish: replica #{victim} SIGKILLed after {acked} acknowledged writes \
         (seed {seed}); checked through replica #{checker}: {report}; acknowledged by kind: \
         {:?}",
        ledger.acked_by_kind()
    );

    cluster.replicas[victim]
        .restart()
        .await
        .with_context(|| format!("restarting replica #{victim}"))?;
    // A replica that does not sequence dying and coming back moves nothing (it tries the lock
    // every tick of 200 ms once started).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    expect_acquisitions(cluster, &counts)
}
