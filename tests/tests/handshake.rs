//! The handshake matrix: TLS 1.3 only, a client certificate required and verified against the
//! exchange CA. Every refused case is its own test and asserts the alert the server sent.

use rustls::AlertDescription;
use rustls::version::{TLS12, TLS13};
use time::Duration;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use yrd_domain::Profile;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_e2e::raw_tls::{ClientCert, Outcome, attempt};
use yrd_e2e::{SHANDONG, SHANGHAI, StoreKind, TestApp, agency_id, on_both_stores};
use yrd_pki::{CertificateAuthority, Validity};

async fn app() -> TestApp {
    TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite")
}

fn dev_cert(app: &TestApp, agency: &str, profile: Profile) -> ClientCert {
    let files = app.client_files(agency, profile);
    ClientCert {
        cert_pem: std::fs::read(files.cert).expect("cert"),
        key_pem: std::fs::read(files.key).expect("key"),
    }
}

fn refused_with(outcome: Outcome, alert: AlertDescription) {
    assert_eq!(
        outcome,
        Outcome::Refused(rustls::Error::AlertReceived(alert)),
        "expected the server to refuse with {alert:?}"
    );
}

#[tokio::test]
async fn accepted_with_a_valid_agency_certificate() {
    let app = app().await;
    for profile in Profile::ALL {
        let cert = dev_cert(&app, SHANDONG, profile);
        assert_eq!(
            attempt(app.addr, &app.ca_pem(), Some(&cert), &[&TLS13]).await,
            Outcome::Accepted,
            "{profile}"
        );
    }
}

#[tokio::test]
async fn refused_without_a_client_certificate() {
    let app = app().await;
    let outcome = attempt(app.addr, &app.ca_pem(), None, &[&TLS13]).await;
    refused_with(outcome, AlertDescription::CertificateRequired);
}

#[tokio::test]
async fn refused_with_a_certificate_from_another_ca() {
    let app = app().await;
    let stranger = CertificateAuthority::create(
        "Not the exchange CA",
        Validity::starting(SystemClock.now(), Duration::days(1)).expect("validity"),
    )
    .expect("another CA");
    let issued = stranger
        .issue_agency(
            &agency_id(SHANGHAI),
            Profile::System,
            Validity::starting(SystemClock.now(), Duration::hours(1)).expect("validity"),
        )
        .expect("cert from another CA");
    let cert = ClientCert {
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    let outcome = attempt(app.addr, &app.ca_pem(), Some(&cert), &[&TLS13]).await;
    refused_with(outcome, AlertDescription::UnknownCA);
}

#[tokio::test]
async fn refused_with_an_expired_certificate() {
    let app = app().await;
    let now = SystemClock.now();
    let issued = app
        .ca()
        .issue_agency(
            &agency_id(SHANGHAI),
            Profile::System,
            Validity::new(now - Duration::days(30), now - Duration::days(1)).expect("validity"),
        )
        .expect("expired cert");
    let cert = ClientCert {
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    let outcome = attempt(app.addr, &app.ca_pem(), Some(&cert), &[&TLS13]).await;
    refused_with(outcome, AlertDescription::CertificateExpired);
}

#[tokio::test]
async fn refused_over_tls_1_2() {
    let app = app().await;
    let cert = dev_cert(&app, SHANGHAI, Profile::System);
    let outcome = attempt(app.addr, &app.ca_pem(), Some(&cert), &[&TLS12]).await;
    refused_with(outcome, AlertDescription::ProtocolVersion);
}

#[tokio::test]
async fn a_certificate_naming_no_agency_gets_no_service() {
    // Signed by the exchange CA, so the handshake passes, but it carries no
    // spiffe://yrd-exchange/agency/… identity: the identity layer refuses every call.
    let app = app().await;
    let ca_cert = std::fs::read_to_string(app.pki_dir.join("ca.pem")).expect("CA cert");
    let ca_key = std::fs::read_to_string(app.pki_dir.join("ca.key")).expect("CA key");
    let ca_key = rcgen::KeyPair::from_pem(&ca_key).expect("CA key");
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert, ca_key).expect("issuer");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(vec!["somebody.example".to_owned()]).expect("params");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).expect("signed");
    let dir = tempfile::tempdir().expect("temp");
    let files = yrd_gateway::client::ClientFiles {
        ca: app.pki_dir.join("ca.pem"),
        cert: dir.path().join("c.pem"),
        key: dir.path().join("c.key"),
    };
    std::fs::write(&files.cert, cert.pem()).expect("write cert");
    std::fs::write(&files.key, key.serialize_pem()).expect("write key");

    let mut health = HealthClient::new(app.channel_with(&files).await);
    let status = health
        .check(HealthCheckRequest::default())
        .await
        .expect_err("no identity, no service");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(
        status
            .message()
            .contains("no spiffe://yrd-exchange/agency/"),
        "{}",
        status.message()
    );
}

on_both_stores!(health_answers_serving_over_mtls);

async fn health_answers_serving_over_mtls(app: TestApp) {
    let mut health = HealthClient::new(app.channel(SHANGHAI, Profile::System).await);
    let response = health
        .check(HealthCheckRequest::default())
        .await
        .expect("health check");
    assert_eq!(response.into_inner().status(), ServingStatus::Serving);
}
