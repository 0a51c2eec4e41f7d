//! The exchange log's keys (issue 16, item 5): receipts are signed by a key of their own,
//! published with `KEY_PURPOSE_RECEIPT`, so a partner that trusts a key only for its purpose
//! accepts them; the receipt and tree-head keys rotate with an overlap, and the retired ones
//! stay published with their window so that what they signed keeps verifying; and
//! `yrd audit verify --receipt` refuses a receipt signed by a key of another purpose or outside
//! its key's window.
//!
//! Each scenario runs on SQLite and on PostgreSQL, over real mTLS, under a manual clock (the
//! rotation is driven by moving it and restarting the server, which rotates a due key at start).

mod audit_support;

use std::path::Path;
use std::sync::Arc;

use audit_support::{audit, audit_ok, head_covering, path, wait_for};
use time::{Duration, OffsetDateTime};
use yrd_domain::Profile;
use yrd_domain::audit::receipt_signing_input;
use yrd_domain::clock::{Clock, ManualClock};
use yrd_e2e::{
    ANHUI, SHANGHAI, StoreKind, TestApp, agency_id, next_monday_morning, on_both_stores_with_clock,
};
use yrd_gateway::audit_check::{LogKeys, ReceiptFile, VerifiedHead, VerifyFailure};
use yrd_gateway::audit_cli::AuditCliError;
use yrd_pki::Es256Key;
use yrd_proto::v1::admin_service_client::AdminServiceClient;
use yrd_proto::v1::token_service_client::TokenServiceClient;
use yrd_proto::v1::{
    self as pb, GetJwksRequest, GetJwksResponse, IssueCertificateRequest, KeyPurpose, Receipt,
};
use yrd_store::KeyPurpose as StoredPurpose;

on_both_stores_with_clock!(
    receipts_are_signed_by_a_receipt_key,
    rotated_keys_stay_published_and_keep_verifying,
);

/// A server whose receipt and tree-head keys rotate every hour, under a clock moved by hand
/// (starting after the dev certificates it makes).
async fn spawn(kind: StoreKind) -> Option<(TestApp, Arc<ManualClock>)> {
    let clock = Arc::new(ManualClock::new(next_monday_morning()));
    let app = TestApp::spawn_with(
        kind,
        |settings| {
            settings.audit.receipt_key_rotation_hours = 1;
            settings.audit.tree_head_key_rotation_hours = 1;
        },
        clock.clone(),
    )
    .await?;
    Some((app, clock))
}

/// A write: Shanghai's admin issues a system certificate for Anhui; answers its receipt.
async fn write(app: &TestApp) -> Receipt {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let (_key, csr_pem) =
        yrd_pki::make_csr(&agency_id(ANHUI), Profile::System).expect("a CSR for Anhui");
    AdminServiceClient::new(admin.authed())
        .issue_certificate(IssueCertificateRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            agency: format!("agencies/{ANHUI}"),
            profile: pb::Profile::System as i32,
            csr_pem,
            validity: None,
        })
        .await
        .expect("the operator's admin issues a certificate")
        .into_inner()
        .receipt
        .expect("a write answers with a receipt")
}

async fn jwks(app: &TestApp) -> GetJwksResponse {
    let channel = app.channel(ANHUI, Profile::System).await;
    TokenServiceClient::new(channel)
        .get_jwks(GetJwksRequest {})
        .await
        .expect("the JWKS is public")
        .into_inner()
}

/// The published entries of `kid`.
fn entries<'a>(jwks: &'a GetJwksResponse, kid: &str) -> Vec<&'a pb::Jwk> {
    jwks.keys.iter().filter(|k| k.kid == kid).collect()
}

/// Writes the receipt file `yrd audit verify --receipt` reads.
fn receipt_file(dir: &Path, name: &str, receipt: &ReceiptFile) -> String {
    let file = dir.join(name);
    std::fs::write(&file, serde_json::to_string_pretty(receipt).expect("json")).expect("write");
    path(&file)
}

/// The private key of a stored log key, as only a test (or a thief) has it.
async fn stored_key(app: &TestApp, purpose: StoredPurpose, kid: &str) -> Es256Key {
    let record = app
        .store
        .all_signing_keys(purpose)
        .await
        .expect("signing keys")
        .into_iter()
        .find(|r| r.kid == kid)
        .expect("the key is stored");
    Es256Key::from_pkcs8_pem(&record.private_key_pem).expect("a P-256 key")
}

/// `receipt` re-signed by `key` at `timestamp_ms` (a forgery with a real exchange key).
fn resigned(receipt: &ReceiptFile, key: &Es256Key, timestamp_ms: u64) -> ReceiptFile {
    let signature = key.sign_der(&receipt_signing_input(
        &receipt.leaf_hash,
        timestamp_ms,
        receipt.max_merge_delay_ms,
    ));
    ReceiptFile {
        timestamp_ms,
        signature: hex::encode(signature),
        key_id: key.kid().to_owned(),
        ..receipt.clone()
    }
}

fn refusal(outcome: Result<String, AuditCliError>) -> VerifyFailure {
    match outcome {
        Err(AuditCliError::Verify(failure)) => *failure,
        other => panic!("expected a verification failure, got {other:?}"),
    }
}

/// A tree head that covers the receipt's leaf (the calls before the write have leaves too, so
/// the leaf's index is looked up rather than assumed).
async fn head_covering_leaf(app: &TestApp, receipt: &ReceiptFile) -> VerifiedHead {
    let index = wait_for("the receipt's leaf to be sequenced", || async {
        app.store
            .leaf_index_by_hash(&receipt.leaf_hash)
            .await
            .expect("the store answers")
    })
    .await;
    head_covering(app, index + 1).await
}

fn ms(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("after 1970")
}

async fn receipts_are_signed_by_a_receipt_key(app: TestApp, _clock: Arc<ManualClock>) {
    let receipt = write(&app).await;
    let file = ReceiptFile::from_pb(&receipt).expect("a receipt");
    let signed = file.signed().expect("signed");
    let published = jwks(&app).await;

    // The receipt names a key published once, for receipts, with an open window that began
    // no later than the receipt.
    let named = entries(&published, &receipt.key_id);
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(named[0].purpose, KeyPurpose::Receipt as i32);
    let start = named[0].not_before.expect("a window start");
    assert!(start.seconds * 1_000 <= i64::try_from(file.timestamp_ms).expect("small"));
    assert!(named[0].not_after.is_none() && !named[0].retired);
    // Tree heads have their own key; the JSON set lists every key once, standard members only.
    let heads: Vec<_> = published
        .keys
        .iter()
        .filter(|k| k.purpose == KeyPurpose::TreeHead as i32)
        .collect();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert_ne!(
        heads[0].kid, receipt.key_id,
        "receipts and heads have different keys"
    );
    assert!(published.jwks_json.contains(&receipt.key_id));
    assert!(!published.jwks_json.contains("purpose"));

    // A verifier following the contract accepts it with the receipt keys; one holding only the
    // tree-head keys refuses it.
    let keys = LogKeys::from_jwks(&published);
    keys.only(KeyPurpose::Receipt)
        .verify_receipt(&signed)
        .expect("a receipt key vouches for the receipt");
    assert!(matches!(
        keys.only(KeyPurpose::TreeHead).verify_receipt(&signed),
        Err(VerifyFailure::UnknownKey { .. })
    ));

    // The auditor's tool: the receipt verifies and is proven in a tree head ...
    let dir = tempfile::tempdir().expect("a folder for receipts");
    head_covering_leaf(&app, &file).await;
    let printed = audit_ok(
        &app,
        &format!(
            "audit verify --receipt {}",
            receipt_file(dir.path(), "r.json", &file)
        ),
    )
    .await;
    assert!(
        printed.contains("(KEY_PURPOSE_RECEIPT, inside its window)")
            && printed.contains("inclusion    the receipt's leaf is entry"),
        "{printed}"
    );
    // ... but the same receipt signed with the exchange's tree-head key is refused: that key
    // is trusted for tree heads only.
    let head_key = stored_key(&app, StoredPurpose::TreeHead, &heads[0].kid).await;
    let wrong = resigned(&file, &head_key, file.timestamp_ms);
    let failure = refusal(
        audit(
            &app,
            &format!(
                "audit verify --receipt {}",
                receipt_file(dir.path(), "w.json", &wrong)
            ),
        )
        .await,
    );
    assert!(
        matches!(&failure, VerifyFailure::WrongPurpose { key_id, expected: "KEY_PURPOSE_RECEIPT", .. }
            if *key_id == heads[0].kid),
        "{failure:?}"
    );
    assert!(
        failure
            .to_string()
            .contains("is published as a KEY_PURPOSE_TREE_HEAD key; a receipt must be signed by a KEY_PURPOSE_RECEIPT key"),
        "{failure}"
    );
}

async fn rotated_keys_stay_published_and_keep_verifying(app: TestApp, clock: Arc<ManualClock>) {
    // Before the rotation: a receipt and a tree head covering it.
    let before = write(&app).await;
    let before_file = ReceiptFile::from_pb(&before).expect("a receipt");
    let head_before = head_covering_leaf(&app, &before_file).await;
    let first = jwks(&app).await;
    assert_eq!(
        first
            .keys
            .iter()
            .filter(|k| k.purpose == KeyPurpose::Receipt as i32)
            .count(),
        1
    );

    // An hour later the keys are due; the restarted server rotates them at start. The
    // successors are published before they sign, and the old keys' windows now have an end.
    clock.advance(Duration::hours(1));
    let app = app.restart().await;
    let rotated = jwks(&app).await;
    let receipt_keys: Vec<_> = rotated
        .keys
        .iter()
        .filter(|k| k.purpose == KeyPurpose::Receipt as i32)
        .collect();
    assert_eq!(receipt_keys.len(), 2, "{receipt_keys:?}");
    let successor_start = receipt_keys[1].not_before.expect("start");
    assert!(
        successor_start.seconds > clock.now().unix_timestamp(),
        "activates later"
    );
    assert_eq!(receipt_keys[0].kid, before.key_id);
    assert!(receipt_keys[0].not_after.is_some() && !receipt_keys[0].retired);

    // Past the activation and the overlap: new writes and heads use the new keys, on every
    // replica (a second one loads the ring from the shared store).
    clock.advance(yrd_audit::log_key::ACTIVATION_DELAY + yrd_audit::log_key::OVERLAP);
    let after = write(&app).await;
    assert_ne!(after.key_id, before.key_id, "a new receipt key signs");
    assert_eq!(after.key_id, receipt_keys[1].kid);
    let replica = app.spawn_replica().await;
    assert_eq!(
        write(&replica).await.key_id,
        after.key_id,
        "the replica signs with it too"
    );
    // A head covering the new write's leaf is signed after the activation (one of a larger
    // size may have been signed before it, with the old key, while the server restarted).
    let head_after =
        head_covering_leaf(&app, &ReceiptFile::from_pb(&after).expect("a receipt")).await;
    assert_ne!(
        head_after.key_id, head_before.key_id,
        "a new tree-head key signs"
    );

    // The old keys stay published, retired, with their windows; each only for its purpose.
    let published = jwks(&app).await;
    for (kid, purpose) in [
        (&before.key_id, KeyPurpose::Receipt),
        (&head_before.key_id, KeyPurpose::TreeHead),
    ] {
        let old = entries(&published, kid);
        assert_eq!(old.len(), 1, "{old:?}");
        assert_eq!(old[0].purpose, purpose as i32);
        assert!(old[0].retired, "{:?}", old[0]);
        let (start, end) = (
            old[0].not_before.expect("start"),
            old[0].not_after.expect("end"),
        );
        assert!(start.seconds < end.seconds);
        assert!(end.seconds <= clock.now().unix_timestamp());
        assert!(published.jwks_json.contains(kid.as_str()));
    }

    // The receipt and the tree head made before still verify: the receipt against the retired
    // receipt key, the old head as the start of a consistency proof to the latest head.
    let dir = tempfile::tempdir().expect("a folder for receipts");
    let printed = audit_ok(
        &app,
        &format!(
            "audit verify --receipt {} --from-size {}",
            receipt_file(dir.path(), "before.json", &before_file),
            head_before.tree_size
        ),
    )
    .await;
    assert!(
        printed.contains(&format!("signed by key {}", before.key_id))
            && printed.contains(&format!("by key {} to size", head_before.key_id))
            && printed.contains("inclusion    the receipt's leaf is entry"),
        "{printed}"
    );

    // A receipt signed now by the retired receipt key (a thief's forgery) lies outside its
    // window and is refused.
    let old_key = stored_key(&app, StoredPurpose::Receipt, &before.key_id).await;
    let late = resigned(&before_file, &old_key, ms(clock.now()));
    let failure = refusal(
        audit(
            &app,
            &format!(
                "audit verify --receipt {}",
                receipt_file(dir.path(), "late.json", &late)
            ),
        )
        .await,
    );
    assert!(
        matches!(&failure, VerifyFailure::OutsideWindow { purpose: "KEY_PURPOSE_RECEIPT", key_id, not_after: Some(_), .. }
            if *key_id == before.key_id),
        "{failure:?}"
    );
    assert!(
        failure
            .to_string()
            .starts_with("the receipt was signed at "),
        "{failure}"
    );
    // So is one dated before the new key's window.
    let new_key = stored_key(&app, StoredPurpose::Receipt, &after.key_id).await;
    let early = resigned(&before_file, &new_key, before_file.timestamp_ms);
    assert!(matches!(
        refusal(
            audit(
                &app,
                &format!(
                    "audit verify --receipt {}",
                    receipt_file(dir.path(), "early.json", &early)
                ),
            )
            .await
        ),
        VerifyFailure::OutsideWindow { .. }
    ));
}
