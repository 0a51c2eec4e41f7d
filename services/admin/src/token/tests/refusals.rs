//! One test per refusal, and refusal messages that leak nothing.

use super::*;

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

/// The refusal of a token issued under `other` settings by the fixture's key.
fn refusal_of_one_issued_under(other: TokenSettings) -> Option<TokenRefusal> {
    let f = Fixture::new();
    let issued = f.issue_under(&other);
    f.refusal(&issued.token)
}

#[test]
fn refuses_a_wrong_issuer() {
    let other = TokenSettings {
        issuer: "someone-else".into(),
        ..TokenSettings::default()
    };
    assert_eq!(
        refusal_of_one_issued_under(other),
        Some(TokenRefusal::WrongIssuer)
    );
}

#[test]
fn refuses_a_wrong_audience() {
    let other = TokenSettings {
        audience: "another-service".into(),
        ..TokenSettings::default()
    };
    assert_eq!(
        refusal_of_one_issued_under(other),
        Some(TokenRefusal::WrongAudience)
    );
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
