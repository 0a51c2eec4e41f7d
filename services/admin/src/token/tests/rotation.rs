//! Key rotation: the overlap, a successor published before it signs, a key held twice.

use super::*;

#[test]
fn rotation_overlaps_then_retires_the_old_key() {
    let mut f = Fixture::new();
    let old_kid = f.ring.keys()[0].kid().to_owned();
    let before = f.issue_at(at(T0));
    assert_eq!(before.kid, old_kid);

    let rotated_at = T0 + 120;
    let new_kid = f
        .ring
        .rotate(at(rotated_at))
        .expect("rotated")
        .kid()
        .to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        f.ring.keys()[0].retire_after(),
        Some(at(rotated_at + 600)),
        "old key retires at the successor's activation + max lifetime"
    );

    // The new key signs from its activation on.
    let after = f.issue_at(at(rotated_at));
    assert_eq!(after.kid, new_kid);
    assert!(f.verify_at(&after.token, at(rotated_at + 1)).is_ok());

    // During the overlap, the old key's token still verifies and both keys are published.
    assert!(f.verify_at(&before.token, at(rotated_at + 1)).is_ok());
    let kids: Vec<String> = f.ring.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, vec![old_kid.clone(), new_kid.clone()]);

    // A token signed by the old key just before the rotation lives past it...
    let last_old = f.issue_at(at(rotated_at - 1));
    assert_eq!(last_old.kid, old_kid);
    assert!(f.verify_at(&last_old.token, at(rotated_at + 598)).is_ok());
    // ...and from retire_after on, the old key is refused as such (not merely as expired).
    assert_eq!(
        f.verify_at(&last_old.token, at(rotated_at + 600)),
        Err(TokenRefusal::UnknownKey)
    );

    // Pruning drops it from the ring and the JWKS; the new key stays.
    f.ring.prune(at(rotated_at + 600));
    let kids: Vec<String> = f.ring.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, vec![new_kid]);
}

#[test]
fn a_successor_activated_later_is_published_before_it_signs() {
    let mut f = Fixture::new();
    let old_kid = f.ring.keys()[0].kid().to_owned();
    let successor = SigningKey::generate(at(T0 + 300)).expect("key");
    let new_kid = successor.kid().to_owned();
    f.ring.rotate_to(successor, at(T0)).expect("rotated");
    assert_eq!(f.ring.jwks().keys.len(), 2);
    assert_eq!(f.issue_at(at(T0 + 299)).kid, old_kid);
    assert_eq!(f.issue_at(at(T0 + 300)).kid, new_kid);
    assert_eq!(f.ring.keys()[0].retire_after(), Some(at(T0 + 900)));
}

#[test]
fn rotating_to_a_key_already_held_is_refused() {
    let mut f = Fixture::new();
    let same = f.ring.keys()[0].clone();
    assert!(matches!(
        f.ring.rotate_to(same, at(T0)),
        Err(KeyError::DuplicateKid(_))
    ));
}
