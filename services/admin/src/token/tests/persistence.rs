//! The key ring through the store.

use super::*;

#[test]
fn the_ring_survives_a_store_round_trip() {
    let mut f = Fixture::new();
    let old_token = f.issue_at(at(T0));
    f.ring.rotate(at(T0 + 60)).expect("rotated");
    let stored = f.ring.to_stored().expect("stored");
    assert!(
        stored[0]
            .pkcs8_pem
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let json = serde_json::to_string(&stored).expect("persistable");
    let loaded: Vec<StoredSigningKey> = serde_json::from_str(&json).expect("loadable");
    let restored = Fixture {
        ring: KeyRing::from_stored(&loaded).expect("ring restored"),
        ..Fixture::new()
    };
    assert_eq!(restored.ring.jwks(), f.ring.jwks());
    assert_eq!(
        restored.ring.keys()[0].retire_after(),
        Some(at(T0 + 60 + 600))
    );
    assert!(restored.verify_at(&old_token.token, at(T0 + 61)).is_ok());
    let new_token = restored.issue_at(at(T0 + 61));
    assert!(f.verify_at(&new_token.token, at(T0 + 61)).is_ok());
}

#[test]
fn a_stored_key_whose_kid_lies_is_refused() {
    let f = Fixture::new();
    let mut stored = f.ring.to_stored().expect("stored");
    stored[0].kid = "forged-kid".into();
    assert!(matches!(
        KeyRing::from_stored(&stored),
        Err(KeyError::KidMismatch { .. })
    ));
    assert_eq!(KeyRing::from_stored(&[]).err(), Some(KeyError::EmptyRing));
    let twice = vec![f.ring.to_stored().expect("s").remove(0); 2];
    assert!(matches!(
        KeyRing::from_stored(&twice),
        Err(KeyError::DuplicateKid(_))
    ));
    let garbage = StoredSigningKey {
        pkcs8_pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
        ..stored[0].clone()
    };
    assert!(matches!(
        SigningKey::from_stored(&garbage),
        Err(KeyError::Pkcs8(_))
    ));
}

#[test]
fn debug_output_never_shows_the_private_key() {
    let f = Fixture::new();
    let stored = f.ring.to_stored().expect("stored");
    let secret_line = stored[0]
        .pkcs8_pem
        .lines()
        .nth(1)
        .expect("a base64 line")
        .to_owned();
    for text in [format!("{:?}", f.ring), format!("{:?}", stored)] {
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(!text.contains(&secret_line), "{text}");
        assert!(text.contains(f.ring.keys()[0].kid()));
    }
}
