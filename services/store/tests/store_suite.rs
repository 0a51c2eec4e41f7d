//! The store suite: the same test code runs against SQLite and PostgreSQL.
//!
//! Each case is a function taking a fresh [`Store`]; the `on_both_backends!` macro turns it into
//! a `sqlite` and a `postgres` test. The PostgreSQL one says it was skipped when no server is
//! configured (see `yrd_store::testing`).

use time::OffsetDateTime;
use yrd_domain::{AgencyId, Profile};
use yrd_store::testing::TestDatabase;
use yrd_store::{
    Agency, Answer, Answered, CertificateRecord, CertificateState, IdempotencyKey, NewAgency,
    Store, StoreError,
};

yrd_store::on_both_backends!(
    agencies_round_trip,
    duplicate_agency_is_refused,
    certificates_round_trip,
    answered_writes_replay_refuse_reuse_and_prune,
);

/// Opening a database a second time runs the migrator again; it must find nothing to do and
/// keep the rows.
async fn reopen_keeps_schema_and_rows(db: &TestDatabase) {
    let first = open(db).await;
    first
        .create_agency(&shandong(), at(1_700_000_000), None)
        .await
        .expect("create");
    first.close().await;
    let second = open(db).await;
    second.ping().await.expect("ping");
    assert_eq!(second.list_agencies().await.expect("list").len(), 1);
    second.close().await;
}

#[tokio::test]
async fn reopen_sqlite() {
    reopen_keeps_schema_and_rows(&TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn reopen_postgres() {
    if let Some(db) = TestDatabase::postgres().await {
        reopen_keeps_schema_and_rows(&db).await;
    }
}

use yrd_store::testing::open;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).expect("valid time")
}

fn shandong() -> NewAgency {
    NewAgency {
        agency_id: AgencyId::parse("370000-AMR").expect("valid id"),
        display_name: "Shandong Administration for Market Regulation".into(),
        display_name_zh: "山东省市场监督管理局".into(),
        is_delta_member: true,
        is_province_authority: true,
    }
}

async fn agencies_round_trip(store: Store) {
    let created = store
        .create_agency(&shandong(), at(1_700_000_000), None)
        .await
        .expect("create");
    assert_eq!(created.agency_id.as_str(), "370000-AMR");
    assert!(created.is_province_authority);
    assert_eq!(created.created_at, at(1_700_000_000));
    let listed = store.list_agencies().await.expect("list");
    assert_eq!(listed, vec![created.clone()]);
    let missing = AgencyId::parse("320000-AMR").expect("valid id");
    assert_eq!(store.get_agency(&missing).await.expect("get"), None);
    assert!(
        !store
            .ensure_agency(&shandong(), at(1_800_000_000))
            .await
            .expect("ensure")
    );
}

async fn duplicate_agency_is_refused(store: Store) {
    store
        .create_agency(&shandong(), at(1_700_000_000), None)
        .await
        .expect("first");
    let second = store
        .create_agency(&shandong(), at(1_700_000_001), None)
        .await;
    assert!(
        matches!(&second, Err(StoreError::AlreadyExists { what }) if what.contains("370000-AMR")),
        "{second:?}"
    );
}

async fn certificates_round_trip(store: Store) {
    store
        .create_agency(&shandong(), at(1_700_000_000), None)
        .await
        .expect("agency");
    let cert = CertificateRecord {
        serial: "0a1b".into(),
        agency_id: shandong().agency_id,
        profile: Profile::System,
        fingerprint: "ab".repeat(32),
        subject: "CN=370000-AMR/system".into(),
        not_before: at(1_700_000_000),
        not_after: at(1_700_086_400),
        certificate_pem: "-----BEGIN CERTIFICATE-----\n...".into(),
        issued_at: at(1_700_000_000),
        revoked_at: None,
        revocation_reason: None,
    };
    store.insert_certificate(&cert, None).await.expect("insert");
    let found = store
        .certificate_by_fingerprint(&cert.fingerprint)
        .await
        .expect("by fingerprint");
    assert_eq!(found.as_ref(), Some(&cert));
    assert_eq!(cert.state_at(at(1_700_000_100)), CertificateState::Active);
    assert_eq!(cert.state_at(at(1_800_000_000)), CertificateState::Expired);
    let again = store.insert_certificate(&cert, None).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
    let of_agency = store
        .certificates_of(&shandong().agency_id)
        .await
        .expect("of agency");
    assert_eq!(of_agency, vec![cert]);
}

/// An answered write records its answer with the write: the same request replays it without
/// writing, another body under the same request id is refused, and once pruned the request id
/// is forgotten (the write then runs again and meets the agency it created).
async fn answered_writes_replay_refuse_reuse_and_prune(store: Store) {
    let key = IdempotencyKey {
        agency: AgencyId::parse("310000-SAMR").expect("valid id"),
        method: "/yrd.exchange.v1.AdminService/CreateAgency".into(),
        request_id: "create shandong".into(),
        request_digest: "d1".into(),
    };
    let answer_to = |key: &IdempotencyKey| Answer {
        key: key.clone(),
        encode: Box::new(|a: &Agency| format!("created {}", a.agency_id).into_bytes()),
    };
    let first = store
        .create_agency_answered(&shandong(), at(1_700_000_000), None, Some(answer_to(&key)))
        .await
        .expect("first");
    assert!(matches!(first, Answered::Written(ref a) if a.agency_id.as_str() == "370000-AMR"));

    let again = store
        .create_agency_answered(&shandong(), at(1_700_000_010), None, Some(answer_to(&key)))
        .await
        .expect("retry");
    assert_eq!(again, Answered::Replayed(b"created 370000-AMR".to_vec()));

    let other = IdempotencyKey {
        request_digest: "d2".into(),
        ..key.clone()
    };
    let reused = store
        .create_agency_answered(
            &shandong(),
            at(1_700_000_020),
            None,
            Some(answer_to(&other)),
        )
        .await
        .expect_err("another body under the same request id");
    assert!(
        matches!(reused, StoreError::RequestIdReused { ref request_id } if request_id == "create shandong"),
        "{reused:?}"
    );

    // Records made before the cut-off go; later ones stay.
    assert_eq!(
        store.prune_answers(at(1_700_000_000)).await.expect("prune"),
        0
    );
    assert_eq!(
        store.prune_answers(at(1_700_000_001)).await.expect("prune"),
        1
    );
    let forgotten = store
        .create_agency_answered(&shandong(), at(1_700_000_030), None, Some(answer_to(&key)))
        .await
        .expect_err("a forgotten request id runs the write again");
    assert!(
        matches!(forgotten, StoreError::AlreadyExists { .. }),
        "{forgotten:?}"
    );
}
