//! The test data and the waits every suite needs, written once.
//!
//! Suites used to carry their own copies (a USCC generator in five files, `next_event` in three
//! with different timeouts, the same hand-made feed event twice, the same poll of the exchange
//! log twice). A copy that drifts tests something else than its neighbour; so the suites take
//! these instead, and a suite's own file holds only its scenario.
//!
//! Waits synchronise on what the server makes observable (a feed event, a sequenced leaf) with
//! a deadline that only fails a hung test; none of them sleeps to let time pass.

use std::time::{Duration, Instant};

use prost::Message as _;
use tonic::codec::Streaming;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_domain::uscc::check_character;
use yrd_proto::v1::{self as pb, subscribe_response};
use yrd_store::{LeafFilter, NewFeedEvent, StoredLeaf};

use crate::{SHANGHAI, TestApp, agency_id};

/// A valid unified social credit code (GB 32100) of an enterprise (`91`) registered in
/// `region` (six digits), distinct per `serial`, with its check character.
pub fn uscc(region: &str, serial: u32) -> String {
    let body = format!("91{region}{serial:09}");
    format!(
        "{body}{}",
        check_character(&body).expect("a valid USCC body in the test")
    )
}

/// The next event of a feed stream, skipping heartbeats; panics when none comes within
/// `within` or the stream fails or ends.
pub async fn next_event(
    stream: &mut Streaming<pb::SubscribeResponse>,
    within: Duration,
) -> pb::FeedEvent {
    next_event_where(stream, within, |_| true).await
}

/// The next event of a feed stream for which `wanted` holds, skipping heartbeats and the other
/// events; panics when none comes within `within` (each message's wait) or the stream fails or
/// ends.
pub async fn next_event_where(
    stream: &mut Streaming<pb::SubscribeResponse>,
    within: Duration,
    wanted: impl Fn(&pb::FeedEvent) -> bool,
) -> pb::FeedEvent {
    loop {
        let message = tokio::time::timeout(within, stream.message())
            .await
            .unwrap_or_else(|_| panic!("an event within {within:?}"))
            .expect("the stream is healthy")
            .expect("the stream is open");
        match message.kind {
            Some(subscribe_response::Kind::Event(event)) if wanted(&event) => return event,
            Some(subscribe_response::Kind::Event(_)) => continue,
            Some(subscribe_response::Kind::Heartbeat(_)) => continue,
            None => panic!("a message with neither an event nor a heartbeat"),
        }
    }
}

/// A published result addressed to `to` as the store's feed holds it (written behind the
/// server's back, so a feed test needs no spot-check call): event `event_id` about
/// `results/<result_id>`, padded with `padding` bytes of withdrawal reason (to fill
/// flow-control windows).
pub fn result_event(to: &str, event_id: &str, result_id: &str, padding: usize) -> NewFeedEvent {
    let resource_name = format!("results/{result_id}");
    let now = SystemClock.now();
    let payload = pb::FeedEvent {
        cursor: 0,
        event_id: event_id.to_owned(),
        event_type: pb::EventType::ResultPublished as i32,
        resource_name: resource_name.clone(),
        resource_version: 1,
        event_time: Some(yrd_call::timestamp(now)),
        actor_agency: format!("agencies/{SHANGHAI}"),
        trace_id: "0".repeat(32),
        resource: Some(pb::feed_event::Resource::Result(pb::SpotCheckResult {
            name: resource_name.clone(),
            id: result_id.to_owned(),
            version: 1,
            version_name: format!("{resource_name}/versions/1"),
            withdrawal_reason: "x".repeat(padding),
            ..pb::SpotCheckResult::default()
        })),
        ..pb::FeedEvent::default()
    };
    NewFeedEvent {
        recipient: agency_id(to),
        event_id: event_id.to_owned(),
        event_type: "EVENT_TYPE_RESULT_PUBLISHED".into(),
        resource_name,
        resource_version: 1,
        event_time: now,
        actor_agency: format!("agencies/{SHANGHAI}"),
        trace_id: "0".repeat(32),
        needs_disposal: false,
        payload: payload.encode_to_vec(),
    }
}

/// A Shandong fertilizer producer in Jinan (370102), ordinary route.
pub fn fertilizer(serial: u32) -> pb::LicenceApplication {
    pb::LicenceApplication {
        applicant: Some(pb::Enterprise {
            name: "山东某化肥有限公司".into(),
            uscc: uscc("370102", serial),
            residence: "山东省济南市历下区某路1号".into(),
            production_address: "山东省济南市历城区某工业园2号".into(),
            production_region_code: "370102".into(),
        }),
        product: Some(pb::LicensedProduct {
            catalogue_code: "13-001".into(),
            name: String::new(),
            units: vec![pb::ProductUnit {
                code: "13-001-01".into(),
                name: "复混肥料".into(),
                specifications: vec!["N-P2O5-K2O 15-15-15".into()],
            }],
        }),
        route: pb::LicensingRoute::Ordinary as i32,
        materials: vec![pdf("申请书.pdf", "申请书"), pdf("营业执照.pdf", "营业执照")],
        note: "沪鲁通办 窗口受理".into(),
        ..Default::default()
    }
}

/// Waits until the exchange log holds exactly `count` sequenced leaves matching `filter` (the
/// sequencer adds them within the merge delay the receipts promise), and answers them; panics
/// when more appear, or when `within` passes first.
pub async fn sequenced_leaves(
    app: &TestApp,
    filter: &LeafFilter,
    count: usize,
    within: Duration,
) -> Vec<StoredLeaf> {
    let deadline = Instant::now() + within;
    let limit = u32::try_from(count + 8).expect("a small count");
    loop {
        let leaves = app
            .store
            .query_leaves(filter, None, limit)
            .await
            .expect("leaves");
        if leaves.len() == count {
            return leaves;
        }
        assert!(
            leaves.len() < count && Instant::now() < deadline,
            "sequenced leaves (expected {count}): {leaves:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event in `agency`'s feed as the store holds it (the first thousand), decoded: what
/// its subscriber would receive, read without a subscription.
pub async fn stored_feed(app: &TestApp, agency: &str) -> Vec<pb::FeedEvent> {
    app.store
        .feed_events_after(&agency_id(agency), 0, 1000)
        .await
        .expect("feed")
        .into_iter()
        .map(|e| pb::FeedEvent::decode(e.event.payload.as_slice()).expect("an encoded FeedEvent"))
        .collect()
}

/// Asserts that `status` carries `code` and a message containing `contains`.
pub fn assert_refused(status: &tonic::Status, code: tonic::Code, contains: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(contains),
        "{:?} should mention {contains:?}",
        status.message()
    );
}

/// Asserts that a write answered with a signed receipt of its exchange-log leaf.
pub fn assert_receipt(receipt: Option<&pb::Receipt>) {
    let receipt = receipt.expect("a write answers with a receipt");
    assert_eq!(receipt.leaf_hash.len(), 32);
    assert!(!receipt.signature.is_empty());
}

/// A 1 KiB PDF attachment named `file_name`, described as `description`.
pub fn pdf(file_name: &str, description: &str) -> pb::Attachment {
    pb::Attachment {
        file_name: file_name.into(),
        media_type: "application/pdf".into(),
        sha256: "ab".repeat(32),
        size_bytes: 1024,
        description: description.into(),
    }
}

/// Waits until the exchange log holds the `count` leaves a scheduler wrote as `method` about
/// `resource` (within the merge delay the receipts promise), and asserts that each is a
/// success without an agency: a scheduler acts for no partner.
pub async fn scheduler_leaves(app: &TestApp, method: &str, resource: &str, count: usize) {
    let filter = LeafFilter {
        method: Some(method.into()),
        resource: Some(resource.into()),
        ..Default::default()
    };
    let leaves = sequenced_leaves(app, &filter, count, Duration::from_secs(15)).await;
    assert!(
        leaves
            .iter()
            .all(|l| l.leaf.agency.is_empty() && l.leaf.code == 0),
        "scheduler leaves: {leaves:?}"
    );
}

/// Implements `$trait`, a trait of one method `$field(self) -> $out`, for each response message
/// that carries its resource in an optional `$field`: a suite's steps then answer the resource
/// whatever the method (`yrd_e2e::carries!(Answer::referral -> pb::Referral; …)`).
#[macro_export]
macro_rules! carries {
    ($trait:ident::$field:ident -> $out:ty; $($response:ty),* $(,)?) => {
        $(impl $trait for $response {
            fn $field(self) -> $out {
                self.$field
                    .expect(concat!("the answer carries its ", stringify!($field)))
            }
        })*
    };
}

/// A seller on an e-commerce platform, registered in `region` (six digits) under
/// `uscc(region, 8)`, selling in the suites' toy shop.
pub fn online_seller(name: &str, region: &str) -> pb::Seller {
    pb::Seller {
        name: name.into(),
        uscc: uscc(region, 8),
        address: String::new(),
        region_code: region.into(),
        platform: "某电商平台".into(),
        shop_name: "某玩具旗舰店".into(),
        shop_url: "https://shop.example.com/toys?id=1".into(),
    }
}

/// The failed safety item of the suites' toy samples: plasticiser (增塑剂) measured at 0.35 %
/// against a limit of 0.1 %.
pub fn failed_plasticiser() -> pb::TestItem {
    pb::TestItem {
        name: "增塑剂".into(),
        requirement: "≤ 0.1 %".into(),
        measured_value: "0.35".into(),
        unit: "%".into(),
        verdict: pb::Verdict::NonConforming as i32,
        is_safety_item: true,
    }
}

/// What was wrong with the answer to an invalid request (`case`) that should have been refused
/// as INVALID_ARGUMENT naming `field` and nothing else; `None` when it was so refused. Table
/// tests collect these to report every wrong case at once.
pub fn refused_for_field<T>(
    case: &str,
    field: &str,
    outcome: Result<T, tonic::Status>,
) -> Option<String> {
    use tonic_types::StatusExt as _;
    let status = match outcome {
        Ok(_) => return Some(format!("{case}: accepted")),
        Err(status) => status,
    };
    let fields: Vec<String> = status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    (status.code() != tonic::Code::InvalidArgument || fields != [field]).then(|| {
        format!(
            "{case}: expected INVALID_ARGUMENT naming [{field}], got {:?} {fields:?}: {}",
            status.code(),
            status.message()
        )
    })
}

/// A non-conforming online purchase of a toy made in `producer_region`, sold by a shop in
/// `seller_region`, sampled and reported a few weeks before `day0`. Published by another
/// province's agency, it opens a referral to the producer's province.
pub fn non_conforming_toy(
    producer_region: &str,
    seller_region: &str,
    day0: time::OffsetDateTime,
) -> pb::SpotCheckResult {
    let day = |weeks: i64| {
        yrd_domain::spotcheck::format_date(
            yrd_domain::calendar::china_date(day0) - time::Duration::weeks(weeks),
        )
    };
    pb::SpotCheckResult {
        product: Some(pb::Product {
            name: "儿童塑料玩具车".into(),
            trademark: "/".into(),
            model: "XK-1".into(),
            production_date: day(10),
            batch_number: "B1".into(),
            category: "儿童玩具".into(),
        }),
        producer: Some(pb::Party {
            name: "某玩具有限公司".into(),
            uscc: uscc(producer_region, 7),
            address: "某路1号".into(),
            region_code: producer_region.into(),
        }),
        seller: Some(online_seller("某商贸有限公司", seller_region)),
        sampling_way: pb::SamplingWay::OnlinePurchase as i32,
        sampling_date: day(4),
        inspection_body: "上海市质量监督检验技术研究院".into(),
        report_number: "SQI-2024-00123".into(),
        report_date: day(2),
        standards: vec!["GB 6675.1-2014".into()],
        test_items: vec![failed_plasticiser()],
        verdict: pb::Verdict::NonConforming as i32,
        failed_items: vec!["增塑剂".into()],
        campaign: Some(pb::Campaign {
            code: "SH-2024-01".into(),
            name: "2024年儿童玩具网络销售抽查".into(),
            kind: pb::CampaignKind::Provincial as i32,
            product_kind: "儿童玩具".into(),
        }),
        ..Default::default()
    }
}
