//! The `tree-head` workload: publishes on N connections (the load of `publish`) while an auditor
//! asks for the latest signed tree head every [`HEAD_POLL`]. Two rows: the publishes, and for
//! each publish acknowledged in the window the time from its answer (its leaf is durable) to the
//! first answer of `GetTreeHead` whose head covers that leaf (tree size above the leaf's index);
//! a head seen before the publish's answer counts as 0.
//!
//! The leaves' indexes are not in the receipts (a leaf is sequenced after the call answers):
//! they are read afterwards with `ListAuditEntries` (the run's `PublishResult` entries, matched
//! by leaf hash). A head is timed when its `GetTreeHead` answer arrives, so each latency is an
//! upper bound by at most the poll interval and one `GetTreeHead` call.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use yrd_proto::v1 as pb;
use yrd_proto::v1::audit_service_client::AuditServiceClient;

use super::{Context, ECHO, results};
use crate::connect::{AGENCIES, Authed};
use crate::load::{self, Measured};
use crate::report::Row;

/// How often the auditor asks for the latest tree head (the sequencer signs one every 200 ms
/// while there is traffic).
const HEAD_POLL: Duration = Duration::from_millis(10);

/// How long after the window the publishes' leaves may take to be listed and covered.
const COVER_GRACE: Duration = Duration::from_secs(10);

/// The full method path of a publish, as the exchange log names it.
const PUBLISH_METHOD: &str = "/yrd.exchange.v1.SpotCheckService/PublishResult";

/// Each tree size seen, with when it was first seen.
type Heads = Arc<Mutex<BTreeMap<u64, Instant>>>;

/// Each acknowledged publish: its leaf hash and when its answer arrived.
type Acked = Arc<Mutex<Vec<(Vec<u8>, Instant)>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the workload.
pub async fn run(cx: &Context) -> anyhow::Result<Vec<Row>> {
    let auditor = cx.yrd.session_as(AGENCIES[0].0, "auditor").await?;
    let heads = Heads::default();
    let stop = CancellationToken::new();
    let poller = tokio::spawn(poll_heads(auditor.clone(), heads.clone(), stop.clone()));
    // `ListAuditEntries` filters by the leaves' wall-clock time: this run's publishes only.
    let started = yrd_domain::clock::Clock::now(&yrd_domain::clock::SystemClock);

    let acked = Acked::default();
    let sessions = cx.yrd.sessions(cx.args.connections.max(1), |i| i).await?;
    let call = {
        let acked = acked.clone();
        results::publish_call(
            sessions,
            cx.corpus.clone(),
            cx.request_prefix("tree-head"),
            false,
            |conn| conn % AGENCIES.len(),
            move |answer, at| {
                let hash = answer
                    .receipt
                    .map(|r| r.leaf_hash)
                    .filter(|h| !h.is_empty())
                    .ok_or("a publish answered no receipt")?;
                lock(&acked).push((hash, at));
                Ok(())
            },
        )
    };
    let plan = cx.plan();
    let from = Instant::now() + plan.warmup;
    let until = from + plan.duration;
    let publishes = load::drive(plan, Some(cx.watch_yrd("tree-head")), call).await;

    let in_window: Vec<(Vec<u8>, Instant)> = lock(&acked)
        .iter()
        .filter(|(_, at)| *at >= from && *at <= until)
        .cloned()
        .collect();
    let deadline = Instant::now() + COVER_GRACE;
    let indexes = leaf_indexes(auditor, started, &in_window, deadline).await;
    // Every listed leaf's covering head must have been seen, or the grace must be over.
    let needed = indexes.values().max().map(|i| i + 1);
    while Instant::now() < deadline
        && needed.is_some_and(|n| lock(&heads).last_key_value().is_none_or(|(s, _)| *s < n))
    {
        tokio::time::sleep(HEAD_POLL).await;
    }
    stop.cancel();
    let _ = poller.await;

    let mut covered = Measured::empty(plan.duration);
    let heads = lock(&heads);
    for (hash, acked_at) in &in_window {
        let head = indexes
            .get(hash)
            .and_then(|index| first_cover(&heads, *index));
        match head {
            Some(seen) => covered.success(*acked_at, seen),
            None => covered.failure(|| {
                let what = if indexes.contains_key(hash) {
                    "not covered by a signed tree head"
                } else {
                    "not listed by ListAuditEntries"
                };
                format!("a publish's leaf was {what} within {COVER_GRACE:?} after the window")
            }),
        }
    }
    Ok(vec![
        cx.row("head-publish", ECHO, &publishes),
        Row::new(
            "leaf-to-head",
            cx.store,
            &format!("{} +auditor every {HEAD_POLL:?}", cx.load_label()),
            ECHO,
            &covered,
        ),
    ])
}

/// When a head covering leaf `index` was first seen: the earliest of the sizes above it (polls
/// may answer out of order, so a larger size can have been seen before a smaller one).
fn first_cover(heads: &BTreeMap<u64, Instant>, index: u64) -> Option<Instant> {
    heads.range(index + 1..).map(|(_, at)| *at).min()
}

/// Asks for the latest signed tree head every [`HEAD_POLL`] until `stop` (each call on its own,
/// so a slow answer delays no later poll), noting when each tree size was first seen.
async fn poll_heads(client: Authed, heads: Heads, stop: CancellationToken) {
    let mut tick = tokio::time::interval(HEAD_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A few polls in flight at most: a stalled server must not pile them up.
    let permits = Arc::new(tokio::sync::Semaphore::new(4));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let mut audit = AuditServiceClient::new(client.clone());
        let heads = heads.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let answer = audit
                .get_tree_head(pb::GetTreeHeadRequest { tree_size: None })
                .await;
            let at = Instant::now();
            if let Some(head) = answer.ok().and_then(|a| a.into_inner().tree_head) {
                lock(&heads)
                    .entry(head.tree_size)
                    .and_modify(|first| *first = (*first).min(at))
                    .or_insert(at);
            }
        });
    }
}

/// The log index of each of `wanted`'s leaves, from the `PublishResult` entries logged since
/// `since`; listed again until every one is found (sequenced) or `deadline` passes.
async fn leaf_indexes(
    auditor: Authed,
    since: time::OffsetDateTime,
    wanted: &[(Vec<u8>, Instant)],
    deadline: Instant,
) -> HashMap<Vec<u8>, u64> {
    let mut audit = AuditServiceClient::new(auditor);
    let mut found: HashMap<Vec<u8>, u64> = HashMap::new();
    let missing =
        |found: &HashMap<Vec<u8>, u64>| wanted.iter().any(|(h, _)| !found.contains_key(h));
    loop {
        let mut page_token = String::new();
        loop {
            let mut request = pb::ListAuditEntriesRequest {
                method: PUBLISH_METHOD.to_owned(),
                page_size: 1000,
                page_token: page_token.clone(),
                ..Default::default()
            };
            let start = request.start_time.get_or_insert_with(Default::default);
            start.seconds = since.unix_timestamp();
            let Ok(page) = audit.list_audit_entries(request).await else {
                break;
            };
            let page = page.into_inner();
            for entry in page.entries {
                found.insert(entry.leaf_hash, entry.index);
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        if !missing(&found) || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaf_is_covered_by_the_first_head_seen_above_its_index() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Size 9 answered (20 ms) before size 5 (30 ms).
        let heads: BTreeMap<u64, Instant> = [(3, at(10)), (5, at(30)), (9, at(20))]
            .into_iter()
            .collect();
        assert_eq!(first_cover(&heads, 0), Some(at(10)));
        assert_eq!(
            first_cover(&heads, 2),
            Some(at(10)),
            "size 3 covers index 2"
        );
        assert_eq!(
            first_cover(&heads, 3),
            Some(at(20)),
            "size 9 was seen before size 5"
        );
        assert_eq!(first_cover(&heads, 8), Some(at(20)));
        assert_eq!(first_cover(&heads, 9), None, "no head covers index 9");
    }
}
