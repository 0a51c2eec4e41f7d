//! Two replicas on one PostgreSQL: a revocation made through one is enforced by the other
//! within a second, and a token issued by one is accepted by the other (shared signing keys).

use std::time::{Duration, Instant};

use yrd_domain::Profile;
use yrd_e2e::{SHANGHAI, StoreKind, TestApp, ZHEJIANG};
use yrd_proto::v1::token_service_client::TokenServiceClient;
use yrd_proto::v1::{GetJwksRequest, ListCertificatesRequest, RevokeCertificateRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_on_one_replica_is_enforced_by_the_other_within_a_second() {
    let Some(a) = TestApp::spawn(StoreKind::Postgres).await else {
        return;
    };
    let b = a.spawn_replica().await;

    // A token from replica A works on a connection to replica B with the same certificate.
    let on_a = a.channel(ZHEJIANG, Profile::System).await;
    let token = TestApp::token_over(&on_a, None)
        .await
        .expect("token from A");
    let session_b = yrd_e2e::Session {
        channel: b.channel(ZHEJIANG, Profile::System).await,
        token,
    };
    let mut grpc = tonic::client::Grpc::new(session_b.authed());
    grpc.ready().await.expect("ready");
    grpc.unary::<(), (), _>(
        tonic::Request::new(()),
        http::uri::PathAndQuery::from_static("/yrd.exchange.v1.FeedService/GetFeedPosition"),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .expect("replica B accepts replica A's token");

    // Revoke Zhejiang's system certificate through replica A.
    let admin = a.session(SHANGHAI, Profile::Admin).await;
    let cert = admin
        .admin()
        .list_certificates(ListCertificatesRequest {
            agency: format!("agencies/{ZHEJIANG}"),
            profile: yrd_proto::v1::Profile::System as i32,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .certificates
        .remove(0);
    let mut on_b = TokenServiceClient::new(b.channel(ZHEJIANG, Profile::System).await);
    on_b.get_jwks(GetJwksRequest {})
        .await
        .expect("served before");
    admin
        .admin()
        .revoke_certificate(RevokeCertificateRequest {
            request_id: "revoke-zj".into(),
            name: cert.name,
            reason: yrd_proto::v1::RevocationReason::KeyCompromise as i32,
            note: String::new(),
        })
        .await
        .expect("revoke through A");
    let started = Instant::now();
    loop {
        match on_b.get_jwks(GetJwksRequest {}).await {
            Err(s) if s.code() == tonic::Code::Unauthenticated => {
                assert!(s.message().contains("revoked"), "{s:?}");
                break;
            }
            _ if started.elapsed() > Duration::from_secs(1) => {
                panic!("replica B still serves the revoked certificate after 1 s")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    eprintln!(
        "replica B refused the revoked certificate after {:?}",
        started.elapsed()
    );
    b.shutdown().await.expect("replica B stops");
}
