//! The token refusal matrix, rotation and JWKS, against a manual clock.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};
use yrd_domain::roles::{Role, granted_roles};
use yrd_domain::{AgencyId, AgencyIdentity, Profile};

use super::*;

/// 2025-06-15T14:13:20Z, an arbitrary fixed "now".
pub(super) const T0: i64 = 1_750_000_000;

pub(super) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).expect("time in range")
}

/// The hex SHA-256 of a stand-in certificate, as the identity layer would give it.
pub(super) fn fingerprint(cert: &str) -> String {
    hex::encode(Sha256::digest(cert.as_bytes()))
}

pub(super) struct Fixture {
    pub(super) settings: TokenSettings,
    pub(super) ring: KeyRing,
    pub(super) identity: AgencyIdentity,
}

impl Fixture {
    pub(super) fn new() -> Self {
        Fixture {
            settings: TokenSettings::default(),
            ring: KeyRing::generate(at(T0 - 3600)).expect("key generation"),
            identity: AgencyIdentity {
                agency: AgencyId::parse("370000-AMR").expect("agency id"),
                profile: Profile::System,
                cert_fingerprint: fingerprint("certificate A"),
            },
        }
    }

    pub(super) fn issue_at(&self, now: OffsetDateTime) -> IssuedToken {
        TokenIssuer::new(&self.settings, &self.ring)
            .issue(
                &self.identity,
                &granted_roles(Profile::System, false),
                Some("SD-ZF-0042"),
                now,
                MAX_TOKEN_LIFETIME,
            )
            .expect("token issued")
    }

    fn verify_at(&self, token: &str, now: OffsetDateTime) -> Result<VerifiedToken, TokenRefusal> {
        TokenVerifier::new(&self.settings, &self.ring).verify(
            token,
            &self.identity.cert_fingerprint,
            now,
        )
    }

    /// Why `token` is refused at `T0`, or `None` when it is accepted.
    fn refusal(&self, token: &str) -> Option<TokenRefusal> {
        self.verify_at(token, at(T0)).err()
    }

    /// A token issued at `T0` under `settings` (another issuer or audience than the
    /// verifier's), with the `ReadResults` role and no officer.
    fn issue_under(&self, settings: &TokenSettings) -> IssuedToken {
        TokenIssuer::new(settings, &self.ring)
            .issue(
                &self.identity,
                &[Role::ReadResults],
                None,
                at(T0),
                MAX_TOKEN_LIFETIME,
            )
            .expect("issued")
    }

    /// Claims of a good token issued at `T0`, as JSON to tamper with.
    fn claims_json(&self) -> serde_json::Value {
        json!({
            "iss": DEFAULT_ISSUER,
            "sub": "spiffe://yrd-exchange/agency/370000-AMR/system",
            "aud": DEFAULT_AUDIENCE,
            "exp": T0 + 600,
            "iat": T0,
            "nbf": T0,
            "jti": "6f1c1b3e-5d0a-4c39-9a55-0d6d0c3f3f10",
            "roles": ["results:read"],
            "cnf": { "x5t#S256": x5t_s256_from_hex(&self.identity.cert_fingerprint).expect("fp") },
            "agency": "370000-AMR",
            "profile": "system",
        })
    }

    /// `claims` signed with the ring's current key (ES256, right kid).
    fn sign(&self, claims: &serde_json::Value) -> String {
        self.ring
            .signing_key(at(T0))
            .expect("active key")
            .sign(claims)
            .expect("signed")
    }
}

fn b64_json(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

// --- the accepted case -------------------------------------------------------------------

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
    let issued = TokenIssuer::new(&f.settings, &f.ring)
        .issue(
            &f.identity,
            &[Role::ReadFeed],
            None,
            at(T0),
            MAX_TOKEN_LIFETIME,
        )
        .expect("issued");
    let verified = f.verify_at(&issued.token, at(T0)).expect("accepted");
    assert_eq!(verified.officer, None);
    assert_eq!(verified.claims.act, None);
    assert_eq!(verified.roles, vec![Role::ReadFeed]);
}

// --- one test per refusal ----------------------------------------------------------------

#[test]
fn refuses_no_token() {
    let f = Fixture::new();
    assert_eq!(
        f.verify_at("", at(T0)),
        Err(TokenRefusal::Malformed("no token"))
    );
}

#[test]
fn refuses_a_garbled_token() {
    let f = Fixture::new();
    for garbled in [
        "Bearer",
        "not-a-token",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        &format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("[1,2]")),
    ] {
        assert!(
            matches!(
                f.verify_at(garbled, at(T0)),
                Err(TokenRefusal::Malformed(_))
            ),
            "{garbled}"
        );
    }
}

#[test]
fn refuses_a_signed_payload_that_is_not_exchange_claims() {
    let f = Fixture::new();
    let token = f.sign(&json!("just a string"));
    assert_eq!(
        f.verify_at(&token, at(T0)),
        Err(TokenRefusal::Malformed(
            "claims are not those of an exchange token"
        ))
    );
    let mut claims = f.claims_json();
    claims["agency"] = json!("not an agency");
    assert_eq!(
        f.verify_at(&f.sign(&claims), at(T0)),
        Err(TokenRefusal::Malformed(
            "claims are not those of an exchange token"
        ))
    );
}

#[test]
fn refuses_a_bad_signature() {
    let f = Fixture::new();
    let issued = f.issue_at(at(T0));
    let (message, signature) = issued.token.rsplit_once('.').expect("three parts");
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("signature b64");
    bytes[10] ^= 0x01;
    let forged = format!("{message}.{}", URL_SAFE_NO_PAD.encode(bytes));
    assert_eq!(f.refusal(&forged), Some(TokenRefusal::BadSignature));
}

#[test]
fn refuses_a_changed_payload_under_the_old_signature() {
    let f = Fixture::new();
    let issued = f.issue_at(at(T0));
    let parts: Vec<&str> = issued.token.split('.').collect();
    let mut claims = f.claims_json();
    claims["roles"] = json!(["exchange:admin"]);
    let forged = format!("{}.{}.{}", parts[0], b64_json(&claims), parts[2]);
    assert_eq!(f.refusal(&forged), Some(TokenRefusal::BadSignature));
}

#[test]
fn refuses_alg_none() {
    let f = Fixture::new();
    let header = json!({"alg": "none", "typ": "JWT"});
    let token = format!("{}.{}.", b64_json(&header), b64_json(&f.claims_json()));
    assert_eq!(f.refusal(&token), Some(TokenRefusal::WrongAlgorithm));
}

#[test]
fn refuses_alg_none_even_naming_a_real_kid() {
    let f = Fixture::new();
    let kid = f.ring.keys()[0].kid();
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    let token = format!("{}.{}.", b64_json(&header), b64_json(&f.claims_json()));
    assert_eq!(f.refusal(&token), Some(TokenRefusal::WrongAlgorithm));
}

#[test]
fn refuses_hs256_signed_with_the_public_key_as_secret() {
    let f = Fixture::new();
    let key = &f.ring.keys()[0];
    let jwk = key.jwk();
    let mut point = vec![0x04];
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.x).expect("x"));
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.y).expect("y"));
    let jwks_json = f.ring.jwks_json().expect("jwks");
    let jwk_json = serde_json::to_string(jwk).expect("jwk");
    // The classic confusion attack: a verifier that lets the token pick the algorithm would
    // use the public key bytes it holds as the HMAC secret.
    for secret in [point.as_slice(), jwks_json.as_bytes(), jwk_json.as_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid().to_owned());
        let token =
            jsonwebtoken::encode(&header, &f.claims_json(), &EncodingKey::from_secret(secret))
                .expect("hs256 token");
        assert_eq!(f.refusal(&token), Some(TokenRefusal::WrongAlgorithm));
    }
}

#[test]
fn refuses_other_asymmetric_algorithms() {
    let f = Fixture::new();
    let kid = f.ring.keys()[0].kid();
    for alg in ["ES384", "RS256", "PS256", "EdDSA", "es256", "ES256 "] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        let token = format!("{}.{}.AAAA", b64_json(&header), b64_json(&f.claims_json()));
        assert_eq!(
            f.refusal(&token),
            Some(TokenRefusal::WrongAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn refuses_a_wrong_issuer() {
    let f = Fixture::new();
    let other = TokenSettings {
        issuer: "someone-else".into(),
        ..TokenSettings::default()
    };
    let issued = f.issue_under(&other);
    assert_eq!(f.refusal(&issued.token), Some(TokenRefusal::WrongIssuer));
}

#[test]
fn refuses_a_wrong_audience() {
    let f = Fixture::new();
    let other = TokenSettings {
        audience: "another-service".into(),
        ..TokenSettings::default()
    };
    let issued = f.issue_under(&other);
    assert_eq!(f.refusal(&issued.token), Some(TokenRefusal::WrongAudience));
}

#[test]
fn refuses_an_expired_token_from_the_second_of_its_exp() {
    let f = Fixture::new();
    let issued = f.issue_at(at(T0));
    assert!(f.verify_at(&issued.token, at(T0 + 599)).is_ok());
    assert_eq!(
        f.verify_at(&issued.token, at(T0 + 600)),
        Err(TokenRefusal::Expired)
    );
    assert_eq!(
        f.verify_at(&issued.token, at(T0 + 3600)),
        Err(TokenRefusal::Expired)
    );
}

#[test]
fn refuses_a_token_not_yet_valid_beyond_the_skew_leeway() {
    let f = Fixture::new();
    let early = f.issue_at(at(T0 + 31));
    assert_eq!(f.refusal(&early.token), Some(TokenRefusal::NotYetValid));
    let skewed = f.issue_at(at(T0 + 30));
    assert!(f.verify_at(&skewed.token, at(T0)).is_ok());
}

#[test]
fn refuses_a_token_with_iat_in_the_future() {
    let f = Fixture::new();
    let mut claims = f.claims_json();
    claims["iat"] = json!(T0 + 300);
    let token = f.sign(&claims);
    assert_eq!(f.refusal(&token), Some(TokenRefusal::NotYetValid));
}

#[test]
fn refuses_a_token_bound_to_another_certificate() {
    let f = Fixture::new();
    let issued = f.issue_at(at(T0));
    let result = TokenVerifier::new(&f.settings, &f.ring).verify(
        &issued.token,
        &fingerprint("certificate B"),
        at(T0),
    );
    assert_eq!(result, Err(TokenRefusal::CertificateMismatch));
}

#[test]
fn refuses_when_the_connection_fingerprint_is_not_a_sha256() {
    let f = Fixture::new();
    let issued = f.issue_at(at(T0));
    let result = TokenVerifier::new(&f.settings, &f.ring).verify(&issued.token, "", at(T0));
    assert_eq!(result, Err(TokenRefusal::CertificateMismatch));
}

#[test]
fn refuses_a_token_without_cnf() {
    let f = Fixture::new();
    let mut claims = f.claims_json();
    claims
        .as_object_mut()
        .expect("object")
        .remove("cnf")
        .expect("had cnf");
    let token = f.sign(&claims);
    assert_eq!(f.refusal(&token), Some(TokenRefusal::MissingBinding));
}

#[test]
fn refuses_a_token_signed_by_an_unknown_key() {
    let f = Fixture::new();
    let stranger = Fixture {
        ring: KeyRing::generate(at(T0 - 3600)).expect("other ring"),
        ..Fixture::new()
    };
    let issued = stranger.issue_at(at(T0));
    assert_eq!(f.refusal(&issued.token), Some(TokenRefusal::UnknownKey));
}

#[test]
fn refuses_a_token_without_kid() {
    let f = Fixture::new();
    let header = json!({"alg": "ES256", "typ": "JWT"});
    let token = format!("{}.{}.AAAA", b64_json(&header), b64_json(&f.claims_json()));
    assert_eq!(
        f.verify_at(&token, at(T0)),
        Err(TokenRefusal::Malformed("header has no kid"))
    );
}

#[test]
fn refuses_a_sub_that_disagrees_with_agency_and_profile() {
    let f = Fixture::new();
    let mut claims = f.claims_json();
    claims["sub"] = json!("spiffe://yrd-exchange/agency/310000-SAMR/admin");
    let token = f.sign(&claims);
    assert!(matches!(
        f.verify_at(&token, at(T0)),
        Err(TokenRefusal::Malformed(_))
    ));
}

#[test]
fn refusal_messages_leak_nothing_of_the_token_or_keys() {
    let f = Fixture::new();
    let kid = f.ring.keys()[0].kid().to_owned();
    let refusals = [
        TokenRefusal::Malformed("no token"),
        TokenRefusal::UnknownKey,
        TokenRefusal::BadSignature,
        TokenRefusal::WrongAlgorithm,
        TokenRefusal::WrongIssuer,
        TokenRefusal::WrongAudience,
        TokenRefusal::Expired,
        TokenRefusal::NotYetValid,
        TokenRefusal::CertificateMismatch,
        TokenRefusal::MissingBinding,
    ];
    let codes: std::collections::BTreeSet<_> = refusals.iter().map(TokenRefusal::code).collect();
    assert_eq!(codes.len(), refusals.len(), "codes are distinct");
    for refusal in refusals {
        let message = refusal.to_string();
        assert!(!message.contains(&kid));
        assert!(!message.contains(DEFAULT_ISSUER));
        assert!(message.starts_with("access token"), "{message}");
    }
}

// --- issuing -----------------------------------------------------------------------------

#[test]
fn lifetime_is_capped_at_ten_minutes() {
    let f = Fixture::new();
    let issued = TokenIssuer::new(&f.settings, &f.ring)
        .issue(
            &f.identity,
            &[Role::ReadFeed],
            None,
            at(T0),
            Duration::hours(24),
        )
        .expect("issued");
    assert_eq!(issued.expires_at, at(T0 + 600));
    let short = TokenIssuer::new(&f.settings, &f.ring)
        .issue(
            &f.identity,
            &[Role::ReadFeed],
            None,
            at(T0),
            Duration::seconds(90),
        )
        .expect("issued");
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
    let issued = TokenIssuer::new(&f.settings, &f.ring)
        .issue(
            &f.identity,
            &[Role::ReadFeed, Role::ReadResults, Role::ReadFeed],
            None,
            at(T0),
            MAX_TOKEN_LIFETIME,
        )
        .expect("issued");
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

// --- rotation ----------------------------------------------------------------------------

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

// --- JWKS --------------------------------------------------------------------------------

#[test]
fn jwk_thumbprint_matches_rfc7638_for_an_ec_key() {
    // The P-256 public key of RFC 7517 Appendix A.1. The expected value was computed
    // independently as base64url(SHA-256(the exact UTF-8 string below)).
    let jwk = Jwk {
        kty: "EC".into(),
        crv: "P-256".into(),
        x: "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4".into(),
        y: "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM".into(),
        kid: String::new(),
        alg: "ES256".into(),
        key_use: "sig".into(),
    };
    let input = r#"{"crv":"P-256","kty":"EC","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}"#;
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes())),
        "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
    );
    assert_eq!(
        jwk.thumbprint(),
        "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
    );
}

#[test]
fn jwks_lists_every_verifying_key_with_thumbprint_kids() {
    let mut f = Fixture::new();
    f.ring.rotate(at(T0)).expect("rotated");
    let json = f.ring.jwks_json().expect("jwks json");
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    let keys = value["keys"].as_array().expect("keys array");
    assert_eq!(keys.len(), f.ring.keys().len());
    for (published, key) in keys.iter().zip(f.ring.keys()) {
        let mut members: Vec<&str> = published
            .as_object()
            .expect("jwk object")
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(published["kty"], "EC");
        assert_eq!(published["crv"], "P-256");
        assert_eq!(published["alg"], "ES256");
        assert_eq!(published["use"], "sig");
        assert_eq!(published["kid"], key.kid());
        for coordinate in ["x", "y"] {
            let text = published[coordinate].as_str().expect("coordinate");
            assert_eq!(URL_SAFE_NO_PAD.decode(text).expect("b64url").len(), 32);
        }
        // The kid is the thumbprint of exactly the published members.
        let input = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            published["x"].as_str().expect("x"),
            published["y"].as_str().expect("y")
        );
        assert_eq!(
            published["kid"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes()))
        );
    }
}

#[test]
fn jwks_works_with_jsonwebtoken_for_offline_verification() {
    let f = Fixture::new();
    let issued = f.issue_at(at(T0));
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&f.ring.jwks_json().expect("jwks")).expect("a JWK Set");
    let jwk = set.find(&issued.kid).expect("kid published");
    assert_eq!(
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256),
        issued.kid
    );
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.set_audience(&[DEFAULT_AUDIENCE]);
    let data = jsonwebtoken::decode::<Claims>(&issued.token, &key, &validation).expect("verifies");
    assert_eq!(data.claims.jti, issued.jti);
}

// --- persistence -------------------------------------------------------------------------

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
