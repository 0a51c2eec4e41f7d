//! The token half of the negative matrix (issue 3): every defect of a bearer token is refused
//! with `UNAUTHENTICATED` and a reason that names the defect without echoing the token.
//!
//! Each case calls a business method the caller's role allows (`SearchResults`, role
//! `results:read`, granted to every `system` certificate). A call that passes the token layer
//! reaches the handler and is answered by it, not by the token layer: the control case proves
//! that a sound token does pass, so every refusal below is the token layer's doing. Crafted
//! tokens are signed with the exchange's real key (read from the store) and differ from a real
//! token in one defect only.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::Duration;
use yrd_domain::Profile;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_e2e::{
    SHANDONG, SHANGHAI, StoreKind, TestApp, ZHEJIANG, call_path, call_path_with_header,
    on_both_stores, passed, refused_within,
};
use yrd_proto::v1::RevokeCertificateRequest;

/// A method every `system` token may call (an empty search).
const PROBE: &str = "/yrd.exchange.v1.SpotCheckService/SearchResults";

async fn app() -> TestApp {
    TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite")
}

/// Asserts that a Shanghai system token whose claims differ from a real one by `change`
/// alone, signed with the exchange's key, is refused for `reason` on its own connection.
async fn refused_with_claims(change: impl FnOnce(&mut yrd_admin::token::Claims), reason: &str) {
    let app = app().await;
    let session = app.session(SHANGHAI, Profile::System).await;
    let mut claims = app.claims_for(SHANGHAI, Profile::System);
    change(&mut claims);
    let token = app.exchange_key().await.sign(&claims);
    refused(
        call_path(&session.channel, Some(&token), PROBE).await,
        reason,
        &token,
    );
}

/// Asserts `outcome` is `UNAUTHENTICATED` with `reason` in its message, and that the message
/// does not repeat the token (or any part of it longer than a few characters).
fn refused(outcome: Result<(), tonic::Status>, reason: &str, token: &str) {
    let status = outcome.expect_err("the token layer must refuse this call");
    assert_eq!(
        status.code(),
        tonic::Code::Unauthenticated,
        "expected UNAUTHENTICATED ({reason}), got {status:?}"
    );
    assert!(
        status.message().contains(reason),
        "the message should say {reason:?}: {:?}",
        status.message()
    );
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(
            !status.message().contains(part),
            "the refusal leaks the token: {:?}",
            status.message()
        );
    }
}

#[tokio::test]
async fn control_a_sound_token_passes_the_token_layer() {
    let app = app().await;
    let session = app.session(SHANGHAI, Profile::System).await;
    passed(call_path(&session.channel, Some(&session.token), PROBE).await);
    // A token crafted with the exchange key and the claims the exchange issues passes too,
    // so the crafted defects below differ from a sound token in their one defect only.
    let crafted = app
        .exchange_key()
        .await
        .sign(&app.claims_for(SHANGHAI, Profile::System));
    passed(call_path(&session.channel, Some(&crafted), PROBE).await);
}

#[tokio::test]
async fn no_token() {
    let app = app().await;
    let channel = app.channel(SHANGHAI, Profile::System).await;
    refused(
        call_path(&channel, None, PROBE).await,
        "missing access token",
        "",
    );
}

#[tokio::test]
async fn authorization_without_bearer() {
    let app = app().await;
    let session = app.session(SHANGHAI, Profile::System).await;
    for header in [
        session.token.clone(),
        format!("Basic {}", session.token),
        format!("Token {}", session.token),
        "Bearer".to_owned(),
    ] {
        refused(
            call_path_with_header(&session.channel, Some(&header), PROBE).await,
            "must be `Bearer <token>`",
            &session.token,
        );
    }
}

#[tokio::test]
async fn garbage_token() {
    let app = app().await;
    let channel = app.channel(SHANGHAI, Profile::System).await;
    for garbage in ["garbage", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9"] {
        refused(
            call_path(&channel, Some(garbage), PROBE).await,
            "access token is malformed",
            "",
        );
    }
}

#[tokio::test]
async fn bad_signature() {
    let app = app().await;
    let session = app.session(SHANGHAI, Profile::System).await;
    let (signed, signature) = session.token.rsplit_once('.').expect("a JWS");
    // Flip one character well inside the signature (the last one carries padding bits).
    let mut chars: Vec<char> = signature.chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{signed}.{}", chars.into_iter().collect::<String>());
    refused(
        call_path(&session.channel, Some(&tampered), PROBE).await,
        "signature does not verify",
        &tampered,
    );
    // A claim changed under the original signature is refused the same way.
    let mut parts = session.token.split('.');
    let (header, claims, signature) = (
        parts.next().expect("header"),
        parts.next().expect("claims"),
        parts.next().expect("signature"),
    );
    let mut json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).expect("base64url claims"))
            .expect("JSON claims");
    json["exp"] = serde_json::json!(json["exp"].as_i64().expect("exp") + 3600);
    let forged = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(json.to_string())
    );
    refused(
        call_path(&session.channel, Some(&forged), PROBE).await,
        "signature does not verify",
        &forged,
    );
}

#[tokio::test]
async fn alg_none() {
    let app = app().await;
    let session = app.session(SHANGHAI, Profile::System).await;
    let claims = session.token.split('.').nth(1).expect("claims part");
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None","typ":"JWT"}"#,
    ] {
        let unsigned = format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(header));
        refused(
            call_path(&session.channel, Some(&unsigned), PROBE).await,
            "must be signed with ES256",
            &unsigned,
        );
    }
}

#[tokio::test]
async fn hs256_with_the_public_key_as_secret() {
    let app = app().await;
    let session = app.session(SHANGHAI, Profile::System).await;
    let key = app.exchange_key().await;
    let public_pem = rcgen::KeyPair::from_pem(&key.pkcs8_pem)
        .expect("exchange key")
        .public_key_pem();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let confused = jsonwebtoken::encode(
        &header,
        &app.claims_for(SHANGHAI, Profile::System),
        &jsonwebtoken::EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .expect("HS256 token");
    refused(
        call_path(&session.channel, Some(&confused), PROBE).await,
        "must be signed with ES256",
        &confused,
    );
}

#[tokio::test]
async fn signed_by_a_key_the_exchange_does_not_know() {
    let app = app().await;
    let session = app.session(SHANGHAI, Profile::System).await;
    let stranger = yrd_admin::token::SigningKey::generate(SystemClock.now())
        .expect("a key")
        .to_stored()
        .expect("stored form");
    let key = yrd_e2e::ExchangeKey {
        kid: stranger.kid,
        pkcs8_pem: stranger.pkcs8_pem,
    };
    let token = key.sign(&app.claims_for(SHANGHAI, Profile::System));
    refused(
        call_path(&session.channel, Some(&token), PROBE).await,
        "signed with a key the exchange does not accept",
        &token,
    );
}

#[tokio::test]
async fn wrong_issuer() {
    refused_with_claims(
        |claims| claims.iss = "another-exchange".to_owned(),
        "issued by another issuer",
    )
    .await;
}

#[tokio::test]
async fn wrong_audience() {
    refused_with_claims(
        |claims| claims.aud = "another-service".to_owned(),
        "meant for another audience",
    )
    .await;
}

#[tokio::test]
async fn expired() {
    // The dev certificates are issued on the system clock, to the second: start the server's
    // clock a little later so they are already valid by it.
    let (app, clock) = TestApp::spawn_with_manual_clock(
        StoreKind::Sqlite,
        SystemClock.now() + Duration::seconds(2),
    )
    .await
    .expect("sqlite");
    // A token the exchange really issued, ten minutes ago by the server's clock.
    let session = app.session(SHANGHAI, Profile::System).await;
    passed(call_path(&session.channel, Some(&session.token), PROBE).await);
    clock.advance(Duration::seconds(599));
    passed(call_path(&session.channel, Some(&session.token), PROBE).await);
    clock.advance(Duration::seconds(1));
    refused(
        call_path(&session.channel, Some(&session.token), PROBE).await,
        "access token has expired",
        &session.token,
    );
}

#[tokio::test]
async fn not_yet_valid() {
    let app = app().await;
    let session = app.session(SHANGHAI, Profile::System).await;
    let key = app.exchange_key().await;
    let base = app.claims_for(SHANGHAI, Profile::System);
    // Up to 30 s of clock skew is tolerated ...
    let mut skewed = base.clone();
    skewed.nbf += 20;
    skewed.iat += 20;
    passed(call_path(&session.channel, Some(&key.sign(&skewed)), PROBE).await);
    // ... beyond that, `nbf` or `iat` in the future is refused.
    let mut later = base.clone();
    later.nbf += 300;
    later.iat += 300;
    let token = key.sign(&later);
    refused(
        call_path(&session.channel, Some(&token), PROBE).await,
        "not valid yet",
        &token,
    );
    let mut nbf_only = base;
    nbf_only.nbf += 300;
    let token = key.sign(&nbf_only);
    refused(
        call_path(&session.channel, Some(&token), PROBE).await,
        "not valid yet",
        &token,
    );
}

#[tokio::test]
async fn token_without_certificate_binding() {
    refused_with_claims(
        |claims| claims.cnf = None,
        "not bound to a client certificate",
    )
    .await;
}

#[tokio::test]
async fn token_of_another_agency_certificate() {
    // A Shanghai system token, copied onto a Zhejiang system connection.
    let app = app().await;
    let shanghai = app.session(SHANGHAI, Profile::System).await;
    let zhejiang = app.channel(ZHEJIANG, Profile::System).await;
    refused(
        call_path(&zhejiang, Some(&shanghai.token), PROBE).await,
        "bound to another client certificate",
        &shanghai.token,
    );
    // Still good on its own connection.
    passed(call_path(&shanghai.channel, Some(&shanghai.token), PROBE).await);
}

#[tokio::test]
async fn token_of_the_same_agency_other_profile() {
    // The Shanghai system token on the Shanghai auditor's and admin's connections: same
    // agency, other certificate. The token would grant the role; the binding refuses it first.
    let app = app().await;
    let system = app.session(SHANGHAI, Profile::System).await;
    for profile in [Profile::Auditor, Profile::Admin] {
        let other = app.channel(SHANGHAI, profile).await;
        refused(
            call_path(&other, Some(&system.token), PROBE).await,
            "bound to another client certificate",
            &system.token,
        );
    }
    // And the reverse: the admin's token on the system connection, for an admin method.
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    refused(
        call_path(
            &system.channel,
            Some(&admin.token),
            "/yrd.exchange.v1.AdminService/ListAgencies",
        )
        .await,
        "bound to another client certificate",
        &admin.token,
    );
}

on_both_stores!(token_of_a_revoked_certificate);

/// A token issued before its certificate was revoked, used on that certificate's connection:
/// the identity layer refuses the call before the token is even read, and says why.
async fn token_of_a_revoked_certificate(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let victim = app.session(SHANDONG, Profile::System).await;
    passed(call_path(&victim.channel, Some(&victim.token), PROBE).await);
    admin
        .admin()
        .revoke_certificate(RevokeCertificateRequest {
            request_id: "revoke-token-test".into(),
            name: app.certificate_name(SHANDONG, Profile::System),
            reason: yrd_proto::v1::RevocationReason::KeyCompromise as i32,
            note: String::new(),
        })
        .await
        .expect("revoke");
    let (status, _) = refused_within(
        "a token of a revoked certificate",
        std::time::Duration::from_secs(1),
        tonic::Code::Unauthenticated,
        || call_path(&victim.channel, Some(&victim.token), PROBE),
    )
    .await;
    assert!(
        status.message().contains("revoked"),
        "the refusal should say the certificate is revoked: {:?}",
        status.message()
    );
    // Public methods are refused on that connection too: it is the certificate, not the token.
    let public = call_path(
        &victim.channel,
        None,
        "/yrd.exchange.v1.TokenService/GetJwks",
    )
    .await
    .expect_err("a revoked certificate gets nothing");
    assert_eq!(public.code(), tonic::Code::Unauthenticated, "{public:?}");
    assert!(public.message().contains("revoked"), "{public:?}");
}
