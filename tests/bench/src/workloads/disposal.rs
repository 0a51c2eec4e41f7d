//! The `disposal` workload: one referral step per call. Each connection's agency handles a set
//! of referrals (opened by publishing results against producers in its province, then
//! acknowledged and taken into handling); the calls record a "stop sales" measure on them in
//! turn (`RecordMeasure`, a step that is legal any number of times while in progress).
//!
//! Each referral's timeline grows by one step per call, so a long run reads and writes longer
//! referrals than a short one; with four referrals per call in flight it grows by about
//! `calls / (4 × N × M)` steps.

use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt as _;
use yrd_proto::v1 as pb;
use yrd_proto::v1::disposal_service_client::DisposalServiceClient;

use super::{Context, ECHO, results};
use crate::connect::{AGENCIES, failure};
use crate::load::{self, CallFn, Slot};
use crate::report::Row;

/// Referrals per call in flight on a connection: enough that two calls in flight rarely step
/// the same referral.
const REFERRALS_PER_SLOT: usize = 4;

/// How often a call retries a step refused `ABORTED` because another step of its referral
/// was written meanwhile.
const MAX_RETRIES: u32 = 3;

/// Runs the workload.
pub async fn run(cx: &Context) -> anyhow::Result<Vec<Row>> {
    let connections = cx.args.connections.max(1);
    let per_connection = cx.args.in_flight.max(1) * REFERRALS_PER_SLOT;
    let handlers = cx.yrd.sessions(connections, |i| i).await?;
    // The publisher of connection c's referrals: the agency before c's, whose results name
    // producers in c's province.
    let publishers = cx
        .yrd
        .sessions(connections, |i| i + AGENCIES.len() - 1)
        .await?;
    let run = cx.request_prefix("disposal");
    let mut referrals: Vec<Vec<String>> = Vec::with_capacity(connections);
    for c in 0..connections {
        let publisher = (c + AGENCIES.len() - 1) % AGENCIES.len();
        let mut mine = Vec::with_capacity(per_connection);
        for n in 0..per_connection {
            let seq = u64::try_from(c * per_connection + n).unwrap_or(0);
            let published = results::publish(
                publishers[c].clone(),
                &format!("{run}-open"),
                publisher,
                seq,
                false,
                &cx.corpus,
            )
            .await
            .map_err(anyhow::Error::msg)
            .context("publishing a result to open a referral")?;
            let name = published.opened_referrals[0].clone();
            let mut disposal = DisposalServiceClient::new(handlers[c].clone());
            disposal
                .acknowledge_referral(pb::AcknowledgeReferralRequest {
                    request_id: format!("{run}-ack-{seq}"),
                    name: name.clone(),
                    note: "案件登记号 BENCH".into(),
                })
                .await
                .context("acknowledging a referral")?;
            disposal
                .start_handling(pb::StartHandlingRequest {
                    request_id: format!("{run}-start-{seq}"),
                    name: name.clone(),
                    note: String::new(),
                })
                .await
                .context("starting to handle a referral")?;
            mine.push(name);
        }
        referrals.push(mine);
    }

    let referrals = Arc::new(referrals);
    let run = Arc::new(run);
    let call: CallFn = Arc::new(move |slot: Slot| {
        let mut disposal = DisposalServiceClient::new(handlers[slot.conn].clone());
        let mine = &referrals[slot.conn];
        let at = usize::try_from(slot.seq / connections as u64).unwrap_or(0) % mine.len();
        let request = pb::RecordMeasureRequest {
            request_id: format!("{run}-measure-{}", slot.seq),
            name: mine[at].clone(),
            measure: Some(pb::Measure {
                kind: pb::MeasureKind::StopSales as i32,
                occur_time: Some(yrd_call::timestamp(yrd_domain::clock::Clock::now(
                    &yrd_domain::clock::SystemClock,
                ))),
                officers: vec![pb::Officer {
                    id: "BENCH0001".into(),
                    display_name: "张三".into(),
                }],
                detail: "责令停止销售".into(),
                ..Default::default()
            }),
            note: String::new(),
        };
        async move {
            // Two calls in flight may still meet on one referral after a slow call; the later
            // step is then refused `ABORTED` ("read it again and retry"), nothing of it written.
            // A partner retries such a step, and so does the bench; the call's latency counts
            // its retries.
            let mut retries = 0;
            loop {
                match disposal.record_measure(request.clone()).await {
                    Ok(_) => return Ok(()),
                    Err(s) if s.code() == tonic::Code::Aborted && retries < MAX_RETRIES => {
                        retries += 1;
                    }
                    Err(s) => return Err(failure(&s)),
                }
            }
        }
        .boxed()
    });
    let m = load::drive(cx.plan(), Some(cx.watch_yrd("disposal")), call).await;
    Ok(vec![cx.row("disposal", ECHO, &m)])
}
