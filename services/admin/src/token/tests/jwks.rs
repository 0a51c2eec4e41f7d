//! The JWKS: RFC 7638 thumbprints as kids, and offline verification with jsonwebtoken.

use super::*;

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
