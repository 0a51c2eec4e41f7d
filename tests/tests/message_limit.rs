//! Oversized request messages (issue 16, item 4): a message one byte over
//! `limits.max_message_bytes` is answered `RESOURCE_EXHAUSTED` naming its size and the limit,
//! and logged with that outcome; one exactly at the limit is served; and a handler's own
//! `OUT_OF_RANGE` (a feed cursor beyond the latest) stays `OUT_OF_RANGE`.
//!
//! The messages go to `TokenService/GetJwks` (public, its request has no fields) padded with an
//! unknown field, which protobuf decoding skips: so the size is the only thing that differs
//! between the served call and the refused one.
//!
//! Meanwhile (issue 21, "Slow and abusive peers") another agency's paced ordinary calls are
//! timed before and during a stream of oversized messages from two tasks, each of which must
//! be refused the same way.

use std::time::{Duration, Instant};

use tonic::Code;
use yrd_domain::Profile;
use yrd_e2e::calm::{CalmAgency, report};
use yrd_e2e::{JIANGSU, SHANDONG, TestApp, on_both_stores};
use yrd_gateway::config::Settings;
use yrd_proto::v1::AckRequest;
use yrd_proto::v1::feed_service_client::FeedServiceClient;

const JWKS: &str = "/yrd.exchange.v1.TokenService/GetJwks";

/// A request message of any size: one bytes field under a tag no request of the contract uses.
#[derive(Clone, PartialEq, prost::Message)]
struct Padded {
    #[prost(bytes = "vec", tag = "1000")]
    padding: Vec<u8>,
}

/// A `Padded` whose encoding is exactly `size` bytes.
fn padded(size: usize) -> Padded {
    use prost::Message as _;
    let mut message = Padded {
        padding: vec![0x5a; size.saturating_sub(6)],
    };
    while message.encoded_len() > size {
        message.padding.pop();
    }
    while message.encoded_len() < size {
        message.padding.push(0x5a);
    }
    assert_eq!(
        message.encoded_len(),
        size,
        "a padding that encodes to {size}"
    );
    message
}

/// Sends `message` to `JWKS` over `channel`.
async fn send(channel: &tonic::transport::Channel, message: Padded) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    grpc.unary::<Padded, (), _>(
        tonic::Request::new(message),
        http::uri::PathAndQuery::from_static(JWKS),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(|_| ())
}

on_both_stores!(an_oversized_message_is_resource_exhausted_naming_the_limit);

async fn an_oversized_message_is_resource_exhausted_naming_the_limit(app: TestApp) {
    let limit = Settings::default().limits.max_message_bytes;
    let channel = app.channel(SHANDONG, Profile::System).await;

    send(&channel, padded(limit))
        .await
        .expect("a message exactly at the limit is served");

    let status = send(&channel, padded(limit + 1))
        .await
        .expect_err("a message one byte over the limit is refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let expected = format!(
        "the request message is {} bytes; the limit is {limit} bytes (limits.max_message_bytes)",
        limit + 1
    );
    assert_eq!(status.message(), expected);

    // The connection is still good for the next call.
    send(&channel, padded(10))
        .await
        .expect("a small message after the refusal");

    // Oversized messages back to back from two tasks for 1.5 s, while another agency's paced
    // calls are timed: each is refused the same way, and the other agency is served.
    let mut calm = CalmAgency::new(&app, JIANGSU).await;
    let before = calm.paced("before", 20, Duration::from_millis(50)).await;
    let during = calm.spawn_paced("during", 30, Duration::from_millis(50));
    let started = Instant::now();
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let (channel, expected) = (channel.clone(), expected.clone());
            tokio::spawn(async move {
                let mut refused = 0usize;
                while started.elapsed() < Duration::from_millis(1500) {
                    let status = send(&channel, padded(limit + 1))
                        .await
                        .expect_err("an oversized message is refused");
                    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                    assert_eq!(status.message(), expected);
                    refused += 1;
                }
                refused
            })
        })
        .collect();
    let mut refused = 0;
    for sender in senders {
        refused += sender.await.expect("oversized sender");
    }
    let during = during.await.expect("the calm agency's calls");
    println!(
        "oversized messages: {refused} of {} bytes refused in {:?}",
        limit + 1,
        started.elapsed()
    );
    report("oversized messages", &before, &during);

    // The refused call has its leaf, with the answer the partner got.
    let filter = yrd_store::LeafFilter {
        method: Some(JWKS.to_owned()),
        code: Some(Code::ResourceExhausted as i32),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let leaf = loop {
        let leaves = app
            .store
            .query_leaves(&filter, None, 10)
            .await
            .expect("leaves");
        if let Some(stored) = leaves.into_iter().next() {
            break stored.leaf;
        }
        assert!(
            Instant::now() < deadline,
            "no RESOURCE_EXHAUSTED leaf for {JWKS}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(leaf.agency, SHANDONG);
    assert_eq!(leaf.message, expected);

    // A handler's own OUT_OF_RANGE, for a small message, is left alone.
    let session = app.session(SHANDONG, Profile::System).await;
    let refused = FeedServiceClient::new(session.authed())
        .ack(AckRequest { cursor: 1 })
        .await
        .expect_err("the feed is empty");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
}
