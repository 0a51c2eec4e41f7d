//! The log key ring against a real store (SQLite, and PostgreSQL when configured): first start,
//! rotation with an overlap, keys never pruned, and the legacy `log` key's hand-over.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use yrd_audit::log_key::{ACTIVATION_DELAY, LogKeyRotation, LogKeys, OVERLAP};
use yrd_domain::clock::{Clock, ManualClock};
use yrd_pki::{Es256Key, LogKeyPurpose};
use yrd_store::testing::{TestDatabase, open};
use yrd_store::{KeyPurpose, SigningKeyRecord, Store};

const DAY: Duration = Duration::days(1);

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time") + Duration::milliseconds(250)
}

async fn stores() -> Vec<(TestDatabase, Store)> {
    let mut all = Vec::new();
    let sqlite = TestDatabase::sqlite();
    let store = open(&sqlite).await;
    all.push((sqlite, store));
    if let Some(pg) = TestDatabase::postgres().await {
        let store = open(&pg).await;
        all.push((pg, store));
    }
    all
}

async fn load(store: &Store, clock: &Arc<ManualClock>) -> LogKeys {
    LogKeys::load_or_create(
        store.clone(),
        clock.clone(),
        LogKeyRotation {
            receipt: DAY,
            tree_head: 2 * DAY,
        },
    )
    .await
    .expect("log keys")
}

#[tokio::test]
async fn first_start_makes_one_key_per_purpose_and_rotation_keeps_every_key() {
    for (_db, store) in stores().await {
        let clock = Arc::new(ManualClock::new(start()));
        let keys = load(&store, &clock).await;
        let ring = keys.shared().ring();
        assert_eq!(ring.keys().len(), 2);
        let receipt = ring
            .signing_key(LogKeyPurpose::Receipt, clock.now())
            .clone();
        let head = ring
            .signing_key(LogKeyPurpose::TreeHead, clock.now())
            .clone();
        assert_ne!(receipt.kid(), head.kid(), "each purpose has its own key");
        assert_eq!(receipt.purposes(), &[LogKeyPurpose::Receipt]);
        // Windows start on the whole second, at or before the first signature.
        assert_eq!(
            receipt.not_before(),
            start().replace_nanosecond(0).expect("ns")
        );
        assert!(receipt.covers(clock.now()) && receipt.not_after().is_none());

        // A second replica loads the same keys and makes none.
        let replica = load(&store, &clock).await;
        assert_eq!(replica.shared().ring().keys().len(), 2);

        // A day later only the receipt key is due.
        clock.advance(DAY);
        assert_eq!(
            keys.rotate_if_due().await.expect("rotate"),
            vec![LogKeyPurpose::Receipt]
        );
        let ring = keys.shared().ring();
        assert_eq!(ring.keys().len(), 3);
        let successor = ring
            .newest(LogKeyPurpose::Receipt)
            .expect("successor")
            .clone();
        let activation = (start() + DAY).replace_nanosecond(0).expect("ns") + ACTIVATION_DELAY;
        assert_eq!(successor.not_before(), activation);
        let old = ring
            .keys()
            .iter()
            .find(|k| k.kid() == receipt.kid())
            .expect("the old key stays");
        assert_eq!(old.not_after(), Some(activation + OVERLAP));
        // The old key signs until the successor's activation, the successor from it on.
        assert_eq!(
            ring.signing_key(LogKeyPurpose::Receipt, clock.now()).kid(),
            receipt.kid()
        );
        assert_eq!(
            ring.signing_key(LogKeyPurpose::Receipt, activation).kid(),
            successor.kid()
        );
        // Not due again while the successor is young; the replica sees it after a reload.
        assert!(keys.rotate_if_due().await.expect("no-op").is_empty());
        replica.reload().await.expect("reload");
        assert_eq!(replica.shared().ring().keys().len(), 3);

        // Long after, the retired key is still in the ring (never pruned), retired.
        clock.advance(Duration::days(365));
        replica.reload().await.expect("reload");
        let ring = replica.shared().ring();
        let old = ring
            .keys()
            .iter()
            .find(|k| k.kid() == receipt.kid())
            .expect("never pruned");
        assert!(old.is_retired(clock.now()));
    }
}

#[tokio::test]
async fn the_legacy_log_key_is_kept_for_both_purposes_with_a_closed_window() {
    for (_db, store) in stores().await {
        let legacy = Es256Key::generate();
        let created = start() - Duration::days(100);
        store
            .add_signing_key(
                &SigningKeyRecord {
                    kid: legacy.kid().to_owned(),
                    purpose: KeyPurpose::Log,
                    private_key_pem: legacy.to_pkcs8_pem().expect("pem"),
                    created_at: created,
                    activates_at: created,
                    retires_at: None,
                },
                created,
            )
            .await
            .expect("the legacy key");
        let clock = Arc::new(ManualClock::new(start()));
        let keys = load(&store, &clock).await;
        let ring = keys.shared().ring();
        assert_eq!(ring.keys().len(), 3);
        let old = &ring.keys()[0];
        assert_eq!(old.kid(), legacy.kid());
        assert_eq!(
            old.purposes(),
            &[LogKeyPurpose::Receipt, LogKeyPurpose::TreeHead]
        );
        let end = start().replace_nanosecond(0).expect("ns") + OVERLAP;
        assert_eq!(old.not_after(), Some(end));
        // What it signed before the upgrade verifies; from now on the dedicated keys sign.
        assert!(old.covers(created + Duration::days(50)));
        for purpose in [LogKeyPurpose::Receipt, LogKeyPurpose::TreeHead] {
            assert_ne!(ring.signing_key(purpose, clock.now()).kid(), legacy.kid());
        }
        // A second start changes nothing.
        let again = load(&store, &clock).await;
        assert_eq!(again.shared().ring().keys().len(), 3);
        assert_eq!(again.shared().ring().keys()[0].not_after(), Some(end));
    }
}
