//! The `feed` workload: Shanghai publishes Delta joint results (addressed to every agency) on N
//! connections while K subscribers of the other four agencies read their feeds. Two rows: the
//! publishes, and the deliveries with their latency from the publish's acknowledgement (its
//! answer at the publisher) to the event's arrival at a subscriber; an event that arrives before
//! its publish was acknowledged counts as 0.
//!
//! Subscriptions start at the feed's latest cursor, so earlier workloads' events are not
//! replayed. Every publish acknowledged in the window must reach every subscriber; one that has
//! not arrived some seconds after the window counts as a failed delivery.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use yrd_proto::v1 as pb;
use yrd_proto::v1::feed_service_client::FeedServiceClient;

use super::{Context, ECHO, results};
use crate::connect::{AGENCIES, Authed};
use crate::load::{self, Measured};
use crate::report::Row;

/// How long after the window deliveries may still arrive.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

/// When each result's event arrived, by result name (also read by the replica suite,
/// `gateway/tests/replicas/`).
pub type Times = Arc<Mutex<HashMap<String, Instant>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the workload.
pub async fn run(cx: &Context) -> anyhow::Result<Vec<Row>> {
    let k = cx.args.subscribers.max(1);
    let stop = CancellationToken::new();
    // Subscriber i is of agency 1 + i mod 4: every agency but the publisher (Shanghai).
    let mut arrivals: Vec<Times> = Vec::new();
    let mut readers = Vec::new();
    for i in 0..k {
        let session = cx.yrd.session(AGENCIES[1 + i % 4].0).await?;
        let times = Times::default();
        arrivals.push(times.clone());
        let stream = subscribe(session).await?;
        readers.push(tokio::spawn(read(stream, times, stop.clone())));
    }

    let acked = Times::default();
    let sessions = cx.yrd.sessions(cx.args.connections.max(1), |_| 0).await?;
    let call = {
        let acked = acked.clone();
        results::publish_call(
            sessions,
            cx.corpus.clone(),
            cx.request_prefix("feed"),
            true,
            |_| 0,
            move |answer, at| {
                if let Some(r) = answer.result {
                    lock(&acked).insert(r.name, at);
                }
                Ok(())
            },
        )
    };
    let plan = cx.plan();
    let from = Instant::now() + plan.warmup;
    let until = from + plan.duration;
    let publishes = load::drive(plan, Some(cx.watch_yrd("feed")), call).await;

    // The publishes acknowledged in the window, and when.
    let in_window: Vec<(String, Instant)> = lock(&acked)
        .iter()
        .filter(|(_, at)| **at >= from && **at <= until)
        .map(|(name, at)| (name.clone(), *at))
        .collect();
    let expected = in_window.len() * k;
    let deadline = Instant::now() + DELIVERY_GRACE;
    while Instant::now() < deadline && delivered(&arrivals, &in_window) < expected {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    for reader in readers {
        if let Ok(Err(e)) = reader.await {
            anyhow::bail!("a feed subscriber failed: {e}");
        }
    }

    let mut deliveries = Measured::empty(plan.duration);
    for times in &arrivals {
        let times = lock(times);
        for (name, acked_at) in &in_window {
            match times.get(name) {
                Some(arrived) => deliveries.success(*acked_at, *arrived),
                None => deliveries.failure(|| {
                    format!("{name} not delivered within {DELIVERY_GRACE:?} after the window")
                }),
            }
        }
    }
    Ok(vec![
        cx.row("feed-publish", ECHO, &publishes),
        Row::new(
            "feed-delivery",
            cx.store,
            &format!("{} +{k} subscribers", cx.load_label()),
            ECHO,
            &deliveries,
        ),
    ])
}

fn delivered(arrivals: &[Times], wanted: &[(String, Instant)]) -> usize {
    arrivals
        .iter()
        .map(|times| {
            let times = lock(times);
            wanted.iter().filter(|(n, _)| times.contains_key(n)).count()
        })
        .sum()
}

/// Subscribes from the latest cursor of the session's feed.
pub async fn subscribe(session: Authed) -> anyhow::Result<tonic::Streaming<pb::SubscribeResponse>> {
    Ok(subscribe_after(session, None).await?.0)
}

/// Subscribes to the session's feed after `from` (`None`: after its latest cursor); answers the
/// stream, the cursor it starts after, and the feed's latest cursor when it subscribed.
pub async fn subscribe_after(
    session: Authed,
    from: Option<u64>,
) -> anyhow::Result<(tonic::Streaming<pb::SubscribeResponse>, u64, u64)> {
    let mut feed = FeedServiceClient::new(session);
    let latest = feed
        .get_feed_position(pb::GetFeedPositionRequest {})
        .await?
        .into_inner()
        .latest_cursor;
    let from = from.unwrap_or(latest);
    let stream = feed
        .subscribe(pb::SubscribeRequest {
            from_cursor: Some(from),
        })
        .await?
        .into_inner();
    Ok((stream, from, latest))
}

/// Notes when each published result's event arrives, until `stop`.
pub async fn read(
    mut stream: tonic::Streaming<pb::SubscribeResponse>,
    times: Times,
    stop: CancellationToken,
) -> Result<(), String> {
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            message = stream.message() => message,
        };
        match message {
            Ok(Some(pb::SubscribeResponse {
                kind: Some(pb::subscribe_response::Kind::Event(event)),
            })) => {
                if event.event_type() == pb::EventType::ResultPublished {
                    lock(&times)
                        .entry(event.resource_name)
                        .or_insert_with(Instant::now);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err("the feed stream ended".to_owned()),
            Err(status) => return Err(crate::connect::failure(&status)),
        }
    }
}
