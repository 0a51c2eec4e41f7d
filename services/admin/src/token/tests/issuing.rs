//! Issuing: the lifetime cap, bad requests, and the roles a token grants.

use super::*;

#[test]
fn lifetime_is_capped_at_ten_minutes() {
    let f = Fixture::new();
    let issued = f.issue_without_officer(&[Role::ReadFeed], Duration::hours(24));
    assert_eq!(issued.expires_at, at(T0 + 600));
    let short = f.issue_without_officer(&[Role::ReadFeed], Duration::seconds(90));
    assert_eq!(short.expires_at, at(T0 + 90));
}

#[test]
fn issue_refuses_bad_requests() {
    let f = Fixture::new();
    let issuer = TokenIssuer::new(&f.settings, &f.ring);
    let roles = [Role::ReadFeed];
    assert!(matches!(
        issuer.issue(&f.identity, &roles, None, at(T0), Duration::ZERO),
        Err(IssueError::NonPositiveLifetime(_))
    ));
    assert!(matches!(
        issuer.issue(
            &f.identity,
            &roles,
            None,
            at(T0),
            Duration::milliseconds(900)
        ),
        Err(IssueError::NonPositiveLifetime(_))
    ));
    let admin = AgencyIdentity {
        agency: AgencyId::parse("320000-AMR").expect("agency"),
        profile: Profile::Admin,
        cert_fingerprint: fingerprint("admin cert"),
    };
    assert_eq!(
        issuer.issue(
            &admin,
            &granted_roles(Profile::Admin, false),
            None,
            at(T0),
            MAX_TOKEN_LIFETIME
        ),
        Err(IssueError::NoRoles("admin", "320000-AMR".into()))
    );
    assert_eq!(
        issuer.issue(&f.identity, &roles, Some(""), at(T0), MAX_TOKEN_LIFETIME),
        Err(IssueError::Claim(ClaimError::OfficerEmpty))
    );
    assert_eq!(
        issuer.issue(
            &f.identity,
            &roles,
            Some(&"9".repeat(65)),
            at(T0),
            MAX_TOKEN_LIFETIME
        ),
        Err(IssueError::Claim(ClaimError::OfficerTooLong(65)))
    );
    assert!(matches!(
        issuer.issue(
            &f.identity,
            &roles,
            Some("a\u{7}b"),
            at(T0),
            MAX_TOKEN_LIFETIME
        ),
        Err(IssueError::Claim(
            ClaimError::OfficerControlCharacter { .. }
        ))
    ));
    let bad_fp = AgencyIdentity {
        cert_fingerprint: "not-hex".into(),
        ..f.identity.clone()
    };
    assert_eq!(
        issuer.issue(&bad_fp, &roles, None, at(T0), MAX_TOKEN_LIFETIME),
        Err(IssueError::Claim(ClaimError::Fingerprint(7)))
    );
    // No key is active before the ring's first activation.
    assert!(matches!(
        issuer.issue(&f.identity, &roles, None, at(T0 - 7200), MAX_TOKEN_LIFETIME),
        Err(IssueError::Key(KeyError::NoActiveKey(_)))
    ));
}

#[test]
fn issued_roles_are_deduplicated_in_order() {
    let f = Fixture::new();
    let issued = f.issue_without_officer(
        &[Role::ReadFeed, Role::ReadResults, Role::ReadFeed],
        MAX_TOKEN_LIFETIME,
    );
    assert_eq!(issued.roles, vec![Role::ReadFeed, Role::ReadResults]);
    let verified = f.verify_at(&issued.token, at(T0)).expect("accepted");
    assert_eq!(verified.claims.roles, vec!["feed:read", "results:read"]);
}

#[test]
fn unknown_role_names_in_a_token_grant_nothing() {
    let f = Fixture::new();
    let mut claims = f.claims_json();
    claims["roles"] = json!(["results:read", "root:everything"]);
    let token = f.sign(&claims);
    let verified = f.verify_at(&token, at(T0)).expect("accepted");
    assert_eq!(verified.roles, vec![Role::ReadResults]);
}
