//! Spot-check results as the workloads publish, read and search them, and the corpus of those
//! published in this run (what `get` and `search` read).

use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use time::Duration as Days;
use tokio::time::Instant;
use yrd_proto::v1 as pb;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;

use yrd_e2e::fixtures::{failed_plasticiser, uscc};

use crate::connect::{AGENCIES, Authed, failure};
use crate::load::{CallFn, Slot};

/// Products and their categories, one picked per result (`search` looks for the category's
/// keyword in the product name: the contract has no category filter).
pub const PRODUCTS: [(&str, &str, &str); 5] = [
    ("儿童塑料玩具车", "儿童玩具", "玩具"),
    ("学生文具套装", "学生用品", "文具"),
    ("电动自行车充电器", "电器附件", "充电器"),
    ("儿童针织服装", "纺织服装", "服装"),
    ("家用燃气灶具", "燃气具", "燃气灶"),
];

/// How many distinct producers each agency's results name (a USCC search finds about
/// `results / PRODUCERS` of them).
pub const PRODUCERS: u64 = 500;

/// Days back the sampling dates spread over.
pub const SAMPLING_DAYS: u64 = 60;

/// A result published in this run.
#[derive(Debug, Clone)]
pub struct Published {
    /// `results/{id}`.
    pub name: String,
    /// The producer's USCC.
    pub producer_uscc: String,
    /// How many days before today it was sampled.
    pub sampled_days_ago: u64,
}

/// Results published in this run, per publishing agency (index into [`AGENCIES`]).
#[derive(Debug, Clone, Default)]
pub struct Corpus(Arc<Mutex<Vec<Vec<Published>>>>);

impl Corpus {
    /// Adds a result `agency` published.
    pub fn add(&self, agency: usize, published: Published) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() < AGENCIES.len() {
            all.resize(AGENCIES.len(), Vec::new());
        }
        all[agency % AGENCIES.len()].push(published);
    }

    /// The `n`-th (modulo) result `agency` published, if it published any.
    pub fn pick(&self, agency: usize, n: u64) -> Option<Published> {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mine = all.get(agency % AGENCIES.len())?;
        if mine.is_empty() {
            return None;
        }
        let at = usize::try_from(n % mine.len() as u64).unwrap_or(0);
        Some(mine[at].clone())
    }

    /// Results `agency` published.
    pub fn count(&self, agency: usize) -> usize {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.get(agency % AGENCIES.len()).map_or(0, Vec::len)
    }
}

/// The producer (one of [`PRODUCERS`]) of the `seq`-th result.
fn producer(seq: u64) -> u32 {
    u32::try_from(seq % PRODUCERS).unwrap_or(0)
}

/// Today in China, the date the exchange judges sampling dates by.
pub fn today() -> time::Date {
    yrd_domain::calendar::china_date(yrd_domain::clock::Clock::now(
        &yrd_domain::clock::SystemClock,
    ))
}

fn date(days_ago: u64) -> String {
    let days = i64::try_from(days_ago).unwrap_or(0);
    yrd_domain::spotcheck::format_date(today() - Days::days(days))
}

/// Days before today the `seq`-th result was sampled: spread over [`SAMPLING_DAYS`], a week
/// back at least so that its report date (five days later) is not in the future either.
fn sampled_days_ago(seq: u64) -> u64 {
    7 + seq % SAMPLING_DAYS
}

/// The `seq`-th non-conforming online purchase published by agency `publisher` (index into
/// [`AGENCIES`]): made by a producer in the next agency's province and sold by a shop in the
/// publisher's own, so it opens exactly one referral, to the producer's province. A Delta
/// joint campaign (`delta_joint`) addresses it to every agency as well.
pub fn sample(publisher: usize, seq: u64, delta_joint: bool) -> pb::SpotCheckResult {
    let (_, own_region) = AGENCIES[publisher % AGENCIES.len()];
    let (_, producer_region) = AGENCIES[(publisher + 1) % AGENCIES.len()];
    let (product, category, _) = PRODUCTS[usize::try_from(seq % 5).unwrap_or(0)];
    let sampled = sampled_days_ago(seq);
    pb::SpotCheckResult {
        product: Some(pb::Product {
            name: product.into(),
            trademark: "/".into(),
            model: format!("XK-{}", seq % 97),
            production_date: date(sampled + 30),
            batch_number: format!("B{seq}"),
            category: category.into(),
        }),
        producer: Some(pb::Party {
            name: format!("某制造有限公司{}", seq % PRODUCERS),
            uscc: uscc(producer_region, producer(seq)),
            address: "某路1号".into(),
            region_code: producer_region.into(),
        }),
        seller: Some(pb::Seller {
            name: "某商贸有限公司".into(),
            uscc: uscc(own_region, 100_000 + producer(seq)),
            address: String::new(),
            region_code: own_region.into(),
            platform: "某电商平台".into(),
            shop_name: "某旗舰店".into(),
            shop_url: "https://shop.example.com/item?id=1".into(),
        }),
        sampling_way: pb::SamplingWay::OnlinePurchase as i32,
        sampling_date: date(sampled),
        inspection_body: "某质量监督检验技术研究院".into(),
        report_number: format!("BENCH-{seq}"),
        report_date: date(sampled - 5),
        standards: vec!["GB 6675.1-2014".into()],
        test_items: vec![failed_plasticiser()],
        verdict: pb::Verdict::NonConforming as i32,
        failed_items: vec!["增塑剂".into()],
        campaign: Some(pb::Campaign {
            code: "BENCH-2026".into(),
            name: "基准测试抽查".into(),
            kind: if delta_joint {
                pb::CampaignKind::DeltaJoint
            } else {
                pb::CampaignKind::Provincial
            } as i32,
            product_kind: category.into(),
        }),
        ..Default::default()
    }
}

/// Publishes the `seq`-th result of `publisher` over `client`, adds it to `corpus`, and
/// answers the response (it must have opened a referral).
pub async fn publish(
    client: Authed,
    run: &str,
    publisher: usize,
    seq: u64,
    delta_joint: bool,
    corpus: &Corpus,
) -> Result<pb::PublishResultResponse, String> {
    let result = sample(publisher, seq, delta_joint);
    let producer_uscc = result
        .producer
        .as_ref()
        .map(|p| p.uscc.clone())
        .unwrap_or_default();
    let response = SpotCheckServiceClient::new(client)
        .publish_result(pb::PublishResultRequest {
            request_id: format!("bench-{run}-{seq}"),
            result: Some(result),
        })
        .await
        .map_err(|s| failure(&s))?
        .into_inner();
    let name = response
        .result
        .as_ref()
        .map(|r| r.name.clone())
        .ok_or("a publish answered no result")?;
    if response.opened_referrals.is_empty() {
        return Err(format!("publishing {name} opened no referral"));
    }
    corpus.add(
        publisher,
        Published {
            name,
            producer_uscc,
            sampled_days_ago: sampled_days_ago(seq),
        },
    );
    Ok(response)
}

/// The load call of the publishing workloads: slot `seq` publishes its result (see
/// [`publish`]) on connection `slot.conn` of `sessions` as agency `publisher(slot.conn)`, then
/// hands the answer and when it arrived to `record`.
pub fn publish_call(
    sessions: Vec<Authed>,
    corpus: Corpus,
    run: String,
    delta_joint: bool,
    publisher: fn(usize) -> usize,
    record: impl Fn(pb::PublishResultResponse, Instant) -> Result<(), String> + Send + Sync + 'static,
) -> CallFn {
    let run = Arc::new(run);
    let record = Arc::new(record);
    Arc::new(move |slot: Slot| {
        let client = sessions[slot.conn].clone();
        let corpus = corpus.clone();
        let run = run.clone();
        let record = record.clone();
        async move {
            let answer = publish(
                client,
                &run,
                publisher(slot.conn),
                slot.seq,
                delta_joint,
                &corpus,
            )
            .await?;
            record(answer, Instant::now())
        }
        .boxed()
    })
}

/// The three searches of the `search` workload.
#[derive(Debug, Clone, Copy)]
pub enum Search {
    /// By the producer's USCC.
    Uscc,
    /// By publishing agency and a ten-day sampling-date range ending on a day one of its
    /// results was sampled.
    AgencyRange,
    /// By product category (its keyword in the product name) and verdict.
    Category,
}

impl Search {
    /// Every search, in report order.
    pub const EVERY: [Search; 3] = [Search::Uscc, Search::AgencyRange, Search::Category];

    /// The report row's name.
    pub fn row(self) -> &'static str {
        match self {
            Search::Uscc => "search-uscc",
            Search::AgencyRange => "search-range",
            Search::Category => "search-category",
        }
    }

    /// The `seq`-th request of this search by `agency`, over what `corpus` holds.
    pub fn request(self, agency: usize, seq: u64, corpus: &Corpus) -> pb::SearchResultsRequest {
        let page = pb::SearchResultsRequest {
            page_size: 20,
            ..Default::default()
        };
        match self {
            Search::Uscc => pb::SearchResultsRequest {
                producer_uscc: corpus
                    .pick(agency, seq.wrapping_mul(7919))
                    .map(|p| p.producer_uscc)
                    .unwrap_or_default(),
                ..page
            },
            Search::AgencyRange => {
                let last = corpus
                    .pick(agency, seq.wrapping_mul(7919))
                    .map_or(7, |p| p.sampled_days_ago);
                pb::SearchResultsRequest {
                    publisher_agency: format!("agencies/{}", AGENCIES[agency % 5].0),
                    sampling_date: Some(pb::DateRange {
                        start_date: date(last + 9),
                        end_date: date(last),
                    }),
                    ..page
                }
            }
            Search::Category => pb::SearchResultsRequest {
                product_name_contains: PRODUCTS[usize::try_from(seq % 5).unwrap_or(0)].2.into(),
                verdict: pb::Verdict::NonConforming as i32,
                ..page
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_valid_and_spread() {
        let a = sample(0, 1, false);
        let b = sample(0, 2, false);
        assert_ne!(a.report_number, b.report_number);
        let producer = a.producer.expect("producer");
        assert!(producer.region_code.starts_with("32"), "next province");
        assert!(yrd_domain::uscc::check_character(&producer.uscc[..17]).is_ok());
        assert_eq!(
            producer.uscc.chars().last(),
            yrd_domain::uscc::check_character(&producer.uscc[..17]).ok()
        );
        assert_eq!(
            a.sampling_date,
            yrd_domain::spotcheck::format_date(today() - Days::days(8))
        );
    }

    #[test]
    fn the_corpus_picks_per_agency() {
        let corpus = Corpus::default();
        assert!(corpus.pick(1, 0).is_none());
        for i in 0..3 {
            corpus.add(
                1,
                Published {
                    name: format!("results/{i}"),
                    producer_uscc: String::new(),
                    sampled_days_ago: 7,
                },
            );
        }
        assert_eq!(corpus.count(1), 3);
        assert_eq!(corpus.pick(1, 4).map(|p| p.name), Some("results/1".into()));
        assert_eq!(corpus.count(0), 0);
    }
}
