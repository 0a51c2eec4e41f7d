//! The accepted case: roles and officer carried into the verified token.

use super::*;

#[test]
fn a_good_token_is_accepted_with_its_roles_and_officer() {
    let f = Fixture::new();
    let issued = f.issue_at(at(T0));
    assert_eq!(issued.expires_in_seconds(), 600);
    assert_eq!(issued.kid, f.ring.keys()[0].kid());

    let verified = f.verify_at(&issued.token, at(T0 + 60)).expect("accepted");
    assert_eq!(verified.agency.as_str(), "370000-AMR");
    assert_eq!(verified.profile, Profile::System);
    assert_eq!(verified.roles, granted_roles(Profile::System, false));
    assert!(verified.has_role(Role::PublishResults));
    assert!(!verified.has_role(Role::Admin));
    assert_eq!(
        verified.officer.as_ref().map(OfficerId::as_str),
        Some("SD-ZF-0042")
    );
    assert_eq!(verified.kid, issued.kid);
    assert_eq!(verified.claims.jti, issued.jti);
    assert_eq!(
        verified.claims.sub,
        "spiffe://yrd-exchange/agency/370000-AMR/system"
    );
    assert_eq!((verified.claims.iat, verified.claims.nbf), (T0, T0));
    assert_eq!(verified.claims.exp, T0 + 600);
    assert_eq!(
        verified
            .claims
            .cnf
            .as_ref()
            .and_then(Confirmation::fingerprint_hex),
        Some(f.identity.cert_fingerprint.clone())
    );

    let header = jsonwebtoken::decode_header(&issued.token).expect("header");
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(issued.kid.as_str()));
    assert_eq!(header.typ.as_deref(), Some("JWT"));
}

#[test]
fn a_token_without_officer_has_no_act_claim() {
    let f = Fixture::new();
    let issued = f.issue_without_officer(&[Role::ReadFeed], MAX_TOKEN_LIFETIME);
    let verified = f.verify_at(&issued.token, at(T0)).expect("accepted");
    assert_eq!(verified.officer, None);
    assert_eq!(verified.claims.act, None);
    assert_eq!(verified.roles, vec![Role::ReadFeed]);
}
