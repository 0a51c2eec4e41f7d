//! What the run remembers: every write sent (with its answer, if any) and the tree heads the
//! auditor trusts, so that the checks after a restart compare the store with it.

use std::collections::BTreeMap;
use std::time::Duration;

use yrd_bench::connect::{Authed, failure};
use yrd_domain::merkle::Hash;
use yrd_proto::v1 as pb;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;

/// The longest any phase may take (load until the kill, a restart, the log catching up).
pub(crate) const PHASE_DEADLINE: Duration = Duration::from_secs(60);

/// What a write asked for, kept to send it again with the same `request_id`.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    Publish(pb::PublishResultRequest),
    Correct(pb::CorrectResultRequest),
}

impl Request {
    pub(crate) fn id(&self) -> &str {
        match self {
            Request::Publish(r) => &r.request_id,
            Request::Correct(r) => &r.request_id,
        }
    }

    /// The version an answer to it must carry.
    pub(crate) fn expected_version(&self) -> u32 {
        match self {
            Request::Publish(_) => 1,
            Request::Correct(r) => r.base_version + 1,
        }
    }

    /// The content it sent.
    pub(crate) fn content(&self) -> Option<&pb::SpotCheckResult> {
        match self {
            Request::Publish(r) => r.result.as_ref(),
            Request::Correct(r) => r.result.as_ref(),
        }
    }

    /// Sends it and answers the result it returned and the receipt.
    pub(crate) async fn send(
        &self,
        client: Authed,
    ) -> Result<(pb::SpotCheckResult, pb::Receipt), String> {
        let mut spot = SpotCheckServiceClient::new(client);
        let (result, receipt) = match self {
            Request::Publish(r) => {
                let answer = spot
                    .publish_result(r.clone())
                    .await
                    .map_err(|s| failure(&s))?
                    .into_inner();
                (answer.result, answer.receipt)
            }
            Request::Correct(r) => {
                let answer = spot
                    .correct_result(r.clone())
                    .await
                    .map_err(|s| failure(&s))?
                    .into_inner();
                (answer.result, answer.receipt)
            }
        };
        match (result, receipt) {
            (Some(result), Some(receipt)) => Ok((result, receipt)),
            _ => Err(format!("{} answered no result or no receipt", self.id())),
        }
    }
}

/// An acknowledged write: the answer the caller got.
#[derive(Debug, Clone)]
pub(crate) struct Acked {
    pub(crate) name: String,
    pub(crate) version: u32,
    pub(crate) receipt: pb::Receipt,
}

/// One write of the run.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    /// Index into [`yrd_bench::connect::AGENCIES`] of the writing agency.
    pub(crate) agency: usize,
    pub(crate) request: Request,
    /// The answer; `None` while the write was sent but not answered (in flight at the kill).
    pub(crate) acked: Option<Acked>,
    /// Why it got no answer.
    pub(crate) error: Option<String>,
}

impl Attempt {
    /// Sends the write again as its agency, with its request id; the error says `what` the
    /// sending was for.
    pub(crate) async fn send_again(
        &self,
        clients: &[Authed],
        what: &str,
    ) -> anyhow::Result<(pb::SpotCheckResult, pb::Receipt)> {
        let id = self.request.id();
        self.request
            .send(clients[self.agency].clone())
            .await
            .map_err(|e| anyhow::anyhow!("{what} {id}: {e}"))
    }
}

/// A result a writer may correct: its name, latest acknowledged version and content.
#[derive(Debug, Clone)]
pub(crate) struct Own {
    pub(crate) name: String,
    pub(crate) version: u32,
    pub(crate) content: pb::SpotCheckResult,
}

/// Every write of the run and what the auditor trusts so far.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) attempts: Vec<Attempt>,
    /// The last tree head verified (consistent with everything seen before).
    pub(crate) trusted: Option<Head>,
}

impl Ledger {
    /// The results of `agency` with their latest acknowledged version.
    pub(crate) fn own(&self, agency: usize) -> Vec<Own> {
        let mut latest: BTreeMap<String, Own> = BTreeMap::new();
        for a in self.attempts.iter().filter(|a| a.agency == agency) {
            let (Some(acked), Some(content)) = (&a.acked, a.request.content()) else {
                continue;
            };
            let newer = latest
                .get(&acked.name)
                .is_none_or(|o| o.version < acked.version);
            if newer {
                latest.insert(
                    acked.name.clone(),
                    Own {
                        name: acked.name.clone(),
                        version: acked.version,
                        content: content.clone(),
                    },
                );
            }
        }
        latest.into_values().collect()
    }
}

/// A tree head whose signature verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) size: u64,
    pub(crate) root: Hash,
}
