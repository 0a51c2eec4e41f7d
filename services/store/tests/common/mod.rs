//! What the store suites (and the publish bench) share: agency ids, request keys, feed events,
//! a USCC generator, a valid spot-check result, and a feed read.
//!
//! Each file under `tests/` is its own crate, so the suites used to copy these (the USCC
//! generator and the result builder twice, `agency` four times); a `mod common;` keeps one
//! copy. The store cannot use the e2e harness's fixtures (that crate depends on this one), so
//! this is the store side's single set. A suite uses only some of these, hence the
//! `dead_code` allowance.

#![allow(dead_code)]

use time::{Date, OffsetDateTime};
use yrd_domain::AgencyId;
use yrd_domain::spotcheck::{
    CampaignInput, ItemVerdict, ProducerInput, ProductInput, ResultInput, SamplingWay, SellerInput,
    SpotCheckResult, TestItemInput, Verdict,
};
use yrd_domain::uscc::check_character;
use yrd_store::{FeedEventRecord, IdempotencyKey, NewFeedEvent, Store};

/// Shanghai's market-regulation agency, the publisher of most stories.
pub const SH: &str = "310000-SAMR";
/// Shandong's.
pub const SD: &str = "370000-AMR";
/// Jiangsu's.
pub const JS: &str = "320000-AMR";
/// Zhejiang's.
pub const ZJ: &str = "330000-AMR";

/// An agency id the test names; panics on a typo.
pub fn agency(id: &str) -> AgencyId {
    AgencyId::parse(id).expect("valid id")
}

/// An instant in mid-2024 that the result stories start from.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_720_000_000).expect("time")
}

/// Request `request_id` of [`SH`] to `method`, with body digest `digest`.
pub fn key(method: &str, request_id: &str, digest: &str) -> IdempotencyKey {
    IdempotencyKey {
        agency: agency(SH),
        method: method.into(),
        request_id: request_id.into(),
        request_digest: digest.into(),
    }
}

/// The event `event_id` telling `to` that [`SH`] published result `result_id` at `at`.
pub fn published_event(
    to: &str,
    event_id: String,
    result_id: &str,
    at: OffsetDateTime,
) -> NewFeedEvent {
    NewFeedEvent {
        recipient: agency(to),
        event_id,
        event_type: "EVENT_TYPE_RESULT_PUBLISHED".into(),
        resource_name: format!("results/{result_id}"),
        resource_version: 1,
        event_time: at,
        actor_agency: SH.into(),
        trace_id: "0".repeat(32),
        needs_disposal: true,
        payload: vec![1, 2, 3],
    }
}

/// The whole feed of agency `to` (the suites' feeds hold far fewer than 10,000 events).
pub async fn feed(store: &Store, to: &str) -> Vec<FeedEventRecord> {
    store
        .feed_events_after(&agency(to), 0, 10_000)
        .await
        .expect("feed")
}

/// A valid unified social credit code of an enterprise (`91`) registered in `region`,
/// distinct per `serial`, with its check character.
pub fn uscc(region: &str, serial: u32) -> String {
    let body = format!("91{region}{serial:09}");
    format!("{body}{}", check_character(&body).expect("check character"))
}

/// The input of a valid online-purchase result: product `name`, producer in
/// `producer_region`, seller (on 淘宝) in `seller_region`, one safety item with `verdict`, in a
/// Delta joint campaign.
pub fn result_input(
    name: &str,
    producer_region: &str,
    seller_region: &str,
    verdict: Verdict,
) -> ResultInput {
    let item_verdict = match verdict {
        Verdict::Conforming => ItemVerdict::Conforming,
        Verdict::NonConforming => ItemVerdict::NonConforming,
    };
    ResultInput {
        product: Some(ProductInput {
            name: name.into(),
            ..Default::default()
        }),
        producer: Some(ProducerInput {
            name: "某玩具厂".into(),
            address: "某路1号".into(),
            uscc: uscc(producer_region, 1),
            region_code: producer_region.into(),
        }),
        seller: Some(SellerInput {
            name: "某网店".into(),
            uscc: uscc(seller_region, 2),
            region_code: seller_region.into(),
            platform: "淘宝".into(),
            shop_name: "某店".into(),
            shop_url: "https://shop.example.com/".into(),
            ..Default::default()
        }),
        sampling_way: SamplingWay::OnlinePurchase.wire(),
        sampling_date: "2024-05-01".into(),
        inspection_body: "某检验院".into(),
        report_number: "R-1".into(),
        report_date: "2024-05-20".into(),
        standards: vec!["GB 6675.1-2014".into()],
        test_items: vec![TestItemInput {
            name: "增塑剂".into(),
            requirement: "≤ 0.1 %".into(),
            measured_value: "0.3 %".into(),
            verdict: item_verdict.wire(),
            is_safety_item: true,
            ..Default::default()
        }],
        verdict: verdict.wire(),
        failed_items: match verdict {
            Verdict::NonConforming => vec!["增塑剂".into()],
            Verdict::Conforming => vec![],
        },
        campaign: Some(CampaignInput {
            code: "YRD-2024-01".into(),
            name: "长三角联合抽查".into(),
            kind: yrd_domain::spotcheck::CampaignKind::DeltaJoint.wire(),
            product_kind: "儿童玩具".into(),
        }),
        attachments: vec![],
    }
}

/// That result, parsed as of `today`.
pub fn result(
    name: &str,
    producer_region: &str,
    seller_region: &str,
    verdict: Verdict,
    today: Date,
) -> SpotCheckResult {
    SpotCheckResult::parse(
        result_input(name, producer_region, seller_region, verdict),
        today,
    )
    .expect("valid result")
}
