//! What the run remembers: every write sent (with its answer, if any) and the tree heads the
//! auditor trusts, so that the checks after a restart compare the store with it.

use std::collections::BTreeMap;
use std::time::Duration;

use yrd_bench::connect::{Authed, failure};
use yrd_domain::merkle::Hash;
use yrd_proto::v1 as pb;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;

use crate::steps::{LicensingCall, LicensingStep, Owned, ReferralCall, ReferralRequest};

/// The longest any phase may take (load until the kill, a restart, the log catching up).
pub(crate) const PHASE_DEADLINE: Duration = Duration::from_secs(60);

/// What a write asked for, kept to send it again with the same `request_id`.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    Publish(pb::PublishResultRequest),
    Correct(pb::CorrectResultRequest),
    /// A referral step (or a referral opened by hand).
    Referral(ReferralCall),
    /// A licensing step (or an application submitted).
    Licensing(LicensingCall),
}

impl Request {
    pub(crate) fn id(&self) -> &str {
        match self {
            Request::Publish(r) => &r.request_id,
            Request::Correct(r) => &r.request_id,
            Request::Referral(c) => c.id(),
            Request::Licensing(c) => c.id(),
        }
    }

    /// The version an answer to a publication or correction must carry (`None` for the
    /// steps: their timeline entries are checked by [`crate::machines`]).
    pub(crate) fn expected_version(&self) -> Option<u32> {
        match self {
            Request::Publish(_) => Some(1),
            Request::Correct(r) => Some(r.base_version + 1),
            Request::Referral(_) | Request::Licensing(_) => None,
        }
    }

    /// The kind of write, as the report counts them.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Request::Publish(_) => "publish",
            Request::Correct(_) => "correct",
            Request::Referral(c) => match &c.request {
                ReferralRequest::Create(_) => "referral create",
                ReferralRequest::Objection(_) => "referral objection",
                ReferralRequest::Reinspection(_) => "referral reinspection",
                ReferralRequest::Return(_) => "referral return",
                ReferralRequest::Reroute(_) => "referral reroute",
                ReferralRequest::Reaction(_) => "referral reaction",
                _ => "referral step",
            },
            Request::Licensing(c) => match c.step {
                LicensingStep::Submitted => "licensing submit",
                _ => "licensing step",
            },
        }
    }

    /// The content it sent.
    pub(crate) fn content(&self) -> Option<&pb::SpotCheckResult> {
        match self {
            Request::Publish(r) => r.result.as_ref(),
            Request::Correct(r) => r.result.as_ref(),
            Request::Referral(_) | Request::Licensing(_) => None,
        }
    }

    /// Sends it and answers what it made: the result and version, or the referral or
    /// application and its timeline's length; the receipt; the referrals a publication opened.
    pub(crate) async fn send(&self, client: Authed) -> Result<Acked, String> {
        let mut spot = SpotCheckServiceClient::new(client.clone());
        let (result, receipt, opened) = match self {
            Request::Publish(r) => {
                let answer = spot
                    .publish_result(r.clone())
                    .await
                    .map_err(|s| failure(&s))?
                    .into_inner();
                (answer.result, answer.receipt, answer.opened_referrals)
            }
            Request::Correct(r) => {
                let answer = spot
                    .correct_result(r.clone())
                    .await
                    .map_err(|s| failure(&s))?
                    .into_inner();
                // A correction opens the referrals that are missing (docs/domain.md): the
                // result's referrals, old and new, are in its answer.
                let referrals = answer
                    .result
                    .as_ref()
                    .map(|r| r.referrals.clone())
                    .unwrap_or_default();
                (answer.result, answer.receipt, referrals)
            }
            Request::Referral(c) => return c.send(client).await,
            Request::Licensing(c) => return c.send(client).await,
        };
        match (result, receipt) {
            (Some(result), Some(receipt)) => Ok(Acked {
                name: result.name,
                version: result.version,
                receipt,
                opened,
            }),
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
    /// The referrals a publication opened automatically; for a correction, all the result's
    /// referrals (it opens those missing when the earlier ones are closed).
    pub(crate) opened: Vec<String>,
}

/// One write of the run.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    /// Index into [`yrd_bench::connect::AGENCIES`] of the writing agency.
    pub(crate) agency: usize,
    /// The writer (`{agency}-{index}`) that sent it: the owner of what it steps.
    pub(crate) writer: (usize, usize),
    pub(crate) request: Request,
    /// The answer; `None` while the write was sent but not answered (in flight at the kill).
    pub(crate) acked: Option<Acked>,
    /// Why it got no answer.
    pub(crate) error: Option<String>,
}

impl Attempt {
    /// Sends the write again as its agency, with its request id; the error says `what` the
    /// sending was for.
    pub(crate) async fn send_again(&self, clients: &[Authed], what: &str) -> anyhow::Result<Acked> {
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
    /// The referrals and applications `writer` owns, with the last step it took on each.
    pub(crate) fn owned(&self, writer: (usize, usize)) -> Owned {
        let mut owned = Owned::default();
        for a in self.attempts.iter().filter(|a| a.writer == writer) {
            if let Some(acked) = &a.acked {
                owned.took(&a.request, acked);
            }
        }
        owned
    }

    /// Acknowledged writes by kind (`publish`, `referral step`, …).
    pub(crate) fn acked_by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut kinds = BTreeMap::new();
        for a in self.attempts.iter().filter(|a| a.acked.is_some()) {
            *kinds.entry(a.request.kind()).or_default() += 1;
        }
        kinds
    }

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
