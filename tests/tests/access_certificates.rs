//! Certificate states and the certificate lifecycle (issue 3): revoked mid-connection, expired
//! on an open connection, the wrong profile, the CSR round trip in which the partner's key never
//! leaves the partner, the refusals of `IssueCertificate`, and the rotation of the server
//! certificate without a restart.
//!
//! (A certificate from another CA and one already expired at the handshake are refused by the
//! handshake itself: `handshake.rs` proves those.)

use std::time::Duration as StdDuration;

use prost::Message as _;
use rustls::AlertDescription;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::version::TLS13;
use time::Duration;
use tonic_types::StatusExt as _;
use x509_parser::prelude::FromDer as _;
use yrd_domain::Profile;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_e2e::raw_tls::{Outcome, attempt, server_certificate};
use yrd_e2e::{
    ANHUI, JIANGSU, SHANDONG, SHANGHAI, Session, StoreKind, TestApp, agency_id, call_path,
    on_both_stores, passed, refused_within,
};
use yrd_gateway::client::ClientFiles;
use yrd_pki::Validity;
use yrd_proto::v1::{
    Certificate, CertificateState, IssueCertificateRequest, Profile as PbProfile, RevocationReason,
};

/// A method every `system` token may call (an empty search).
const PROBE: &str = "/yrd.exchange.v1.SpotCheckService/SearchResults";
/// A public method: only the identity layer stands in front of it.
const JWKS: &str = "/yrd.exchange.v1.TokenService/GetJwks";

/// Revocation must cut open connections within this long (issue 3, "Done when").
const REVOCATION_BOUND: StdDuration = StdDuration::from_secs(1);

async fn revoke(admin: &Session, name: &str) -> Certificate {
    admin
        .revoke(name, RevocationReason::KeyCompromise)
        .await
        .certificate
        .expect("the revoked certificate")
}

on_both_stores!(
    revoked_mid_connection,
    csr_round_trip_the_key_never_leaves_the_partner
);

/// A live connection is cut within a second of the revocation, and the certificate's next
/// handshake is refused with the `certificate_revoked` alert; nobody else is affected.
async fn revoked_mid_connection(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let victim = app.session(SHANDONG, Profile::System).await;
    let victim_cert = app.client_cert(SHANDONG, Profile::System);
    let bystander = app.session(JIANGSU, Profile::System).await;
    passed(call_path(&victim.channel, Some(&victim.token), PROBE).await);
    assert_eq!(
        attempt(app.addr, &app.ca_pem(), Some(&victim_cert), &[&TLS13]).await,
        Outcome::Accepted
    );

    let revoked = revoke(&admin, &app.certificate_name(SHANDONG, Profile::System)).await;
    assert_eq!(revoked.state(), CertificateState::Revoked);

    let (status, after) = refused_within(
        "a call on the revoked certificate's open connection",
        REVOCATION_BOUND,
        tonic::Code::Unauthenticated,
        || call_path(&victim.channel, Some(&victim.token), PROBE),
    )
    .await;
    assert!(status.message().contains("revoked"), "{status:?}");
    println!("open connection refused {after:?} after the revocation");

    // The next handshake: the CRL in the acceptor is rebuilt in the same refresh.
    let started = std::time::Instant::now();
    loop {
        let outcome = attempt(app.addr, &app.ca_pem(), Some(&victim_cert), &[&TLS13]).await;
        if outcome
            == Outcome::Refused(rustls::Error::AlertReceived(
                AlertDescription::CertificateRevoked,
            ))
        {
            break;
        }
        assert!(
            started.elapsed() < REVOCATION_BOUND,
            "a new handshake with the revoked certificate: {outcome:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }

    // Everyone else carries on, on open and on new connections.
    passed(call_path(&bystander.channel, Some(&bystander.token), PROBE).await);
    assert_eq!(
        attempt(
            app.addr,
            &app.ca_pem(),
            Some(&app.client_cert(SHANDONG, Profile::Auditor)),
            &[&TLS13]
        )
        .await,
        Outcome::Accepted
    );
}

#[tokio::test]
async fn expired_on_an_open_connection() {
    let start = SystemClock.now();
    let (app, clock) = TestApp::spawn_with_manual_clock(StoreKind::Sqlite, start)
        .await
        .expect("sqlite");
    // A certificate valid for one more hour, in a partner's folder.
    let issued = app
        .ca()
        .issue_agency(
            &agency_id(ANHUI),
            Profile::System,
            Validity::new(start - Duration::minutes(5), start + Duration::hours(1))
                .expect("validity"),
        )
        .expect("a short certificate");
    let dir = tempfile::tempdir().expect("temp");
    let files = ClientFiles {
        ca: app.pki_dir.join("ca.pem"),
        cert: dir.path().join("system.pem"),
        key: dir.path().join("system.key"),
    };
    std::fs::write(&files.cert, &issued.cert_pem).expect("write cert");
    std::fs::write(&files.key, &issued.key_pem).expect("write key");
    let channel = app.channel_with(&files).await;
    let token = TestApp::token_over(&channel, None).await.expect("token");
    call_path(&channel, None, JWKS).await.expect("valid now");
    passed(call_path(&channel, Some(&token), PROBE).await);

    // The server's clock passes the certificate's not_after; the connection stays open.
    clock.set(issued.not_after + Duration::seconds(1));
    for (path, token) in [(JWKS, None), (PROBE, Some(token.as_str()))] {
        let status = call_path(&channel, token, path)
            .await
            .expect_err("an expired certificate gets nothing");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
        assert!(
            status.message().contains("client certificate has expired"),
            "{path}: {:?}",
            status.message()
        );
    }
}

#[tokio::test]
async fn wrong_profile_auditor_calls_admin_service() {
    let app = TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite");
    let auditor = app.session(SHANGHAI, Profile::Auditor).await;
    let status = auditor
        .admin()
        .list_certificates(yrd_proto::v1::ListCertificatesRequest::default())
        .await
        .expect_err("an auditor does not administer");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("exchange:admin"),
        "{:?}",
        status.message()
    );
    // The operator's admin certificate is allowed (the control).
    app.session(SHANGHAI, Profile::Admin)
        .await
        .admin()
        .list_certificates(yrd_proto::v1::ListCertificatesRequest::default())
        .await
        .expect("the operator admin lists certificates");
}

fn validity(days: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: days * 86_400,
        nanos: 0,
    })
}

/// The SubjectPublicKeyInfo (DER) of a PEM certificate.
fn certificate_spki(cert_pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("PEM");
    let cert = pem.parse_x509().expect("X.509");
    cert.public_key().raw.to_vec()
}

/// The SubjectPublicKeyInfo (DER) a PEM CSR asks to certify.
fn csr_spki(csr_pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes()).expect("PEM");
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
            .expect("PKCS#10");
    csr.certification_request_info.subject_pki.raw.to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The partner makes its key and CSR; the admin issues from the CSR alone; the partner connects
/// with the certificate and its own key, gets a token, calls; the admin revokes; the live
/// connection is cut within a second.
async fn csr_round_trip_the_key_never_leaves_the_partner(app: TestApp) {
    // Partner side: the key stays in these two variables and the partner's own folder.
    let (partner_key_pem, partner_csr_pem) =
        yrd_pki::make_csr(&agency_id(ANHUI), Profile::System).expect("CSR");
    let partner_key_der = PrivateKeyDer::from_pem_slice(partner_key_pem.as_bytes())
        .expect("partner key")
        .secret_der()
        .to_vec();

    // Exchange side: the admin sends the CSR, and only the CSR.
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let request = IssueCertificateRequest {
        request_id: "issue-anhui-system".into(),
        agency: format!("agencies/{ANHUI}"),
        profile: yrd_proto::v1::Profile::System as i32,
        csr_pem: partner_csr_pem.clone(),
        validity: validity(30),
    };
    let wire = request.encode_to_vec();
    assert!(!contains(&wire, partner_key_pem.as_bytes()), "key PEM sent");
    assert!(!contains(&wire, &partner_key_der), "key DER sent");
    assert!(!contains(&wire, b"PRIVATE KEY"), "a private key sent");
    let issued = admin
        .admin()
        .issue_certificate(request)
        .await
        .expect("issued from the CSR")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(issued.state(), CertificateState::Active);
    assert_eq!(issued.agency, format!("agencies/{ANHUI}"));
    assert_eq!(
        issued.uri_san,
        format!("spiffe://yrd-exchange/agency/{ANHUI}/system")
    );
    let (not_before, not_after) = (
        issued.not_before.expect("not_before").seconds,
        issued.not_after.expect("not_after").seconds,
    );
    assert_eq!(not_after - not_before, 30 * 86_400);
    // The certificate certifies the partner's key: the one in the CSR.
    let partner_public = rcgen::PublicKeyData::subject_public_key_info(
        &rcgen::KeyPair::from_pem(&partner_key_pem).expect("partner key"),
    );
    assert_eq!(certificate_spki(&issued.certificate_pem), partner_public);
    assert_eq!(csr_spki(&partner_csr_pem), partner_public);
    // Nothing the exchange wrote holds the key.
    for file in files_under(&app.pki_dir) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !contains(&bytes, partner_key_pem.as_bytes()) && !contains(&bytes, &partner_key_der),
            "{} holds the partner's key",
            file.display()
        );
    }

    // Partner side again: the issued certificate and its own key, in its own folder.
    let dir = tempfile::tempdir().expect("temp");
    let files = ClientFiles {
        ca: app.pki_dir.join("ca.pem"),
        cert: dir.path().join("system.pem"),
        key: dir.path().join("system.key"),
    };
    std::fs::write(&files.cert, &issued.certificate_pem).expect("write cert");
    std::fs::write(&files.key, &partner_key_pem).expect("write key");
    let channel = app.channel_with(&files).await;
    let token = TestApp::token_over(&channel, Some("AH-ZF-0001"))
        .await
        .expect("a token for the issued certificate");
    passed(call_path(&channel, Some(&token), PROBE).await);
    // The token is bound to this certificate, not to Anhui's dev system certificate.
    let dev = app.channel(ANHUI, Profile::System).await;
    let status = call_path(&dev, Some(&token), PROBE)
        .await
        .expect_err("bound to the issued certificate");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");

    // The admin revokes; the live connection is cut within a second.
    revoke(&admin, &issued.name).await;
    let (status, after) = refused_within(
        "the partner's live connection after revocation",
        REVOCATION_BOUND,
        tonic::Code::Unauthenticated,
        || call_path(&channel, Some(&token), PROBE),
    )
    .await;
    assert!(status.message().contains("revoked"), "{status:?}");
    println!("partner connection refused {after:?} after the revocation");
    // The dev certificate of the same agency and profile is untouched.
    call_path(&dev, None, JWKS)
        .await
        .expect("the other Anhui system certificate still works");
}

/// Calls IssueCertificate and answers the `BadRequest` violations of the refusal.
/// Asks a fresh exchange to issue a certificate for the agency `agency` (its id) and `profile`
/// from `csr_pem`, valid `days`; the request must be refused as `INVALID_ARGUMENT`, and its
/// `BadRequest` field violations are returned as `(field, description)`.
async fn refused_issue(
    agency: &str,
    profile: PbProfile,
    csr_pem: impl Into<String>,
    days: i64,
) -> Vec<(String, String)> {
    let app = TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite");
    let request = IssueCertificateRequest {
        request_id: "r".into(),
        agency: format!("agencies/{agency}"),
        profile: profile as i32,
        csr_pem: csr_pem.into(),
        validity: validity(days),
    };
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let status = admin
        .admin()
        .issue_certificate(request)
        .await
        .expect_err("the request must be refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest detail: {status:?}"));
    bad.field_violations
        .iter()
        .map(|v| (v.field.clone(), v.description.clone()))
        .collect()
}

fn assert_names(violations: &[(String, String)], field: &str, fragment: &str) {
    assert!(
        violations
            .iter()
            .any(|(f, d)| f == field && d.contains(fragment)),
        "expected a violation of {field} saying {fragment:?}: {violations:?}"
    );
}

fn csr(agency: &str, profile: Profile) -> String {
    yrd_pki::make_csr(&agency_id(agency), profile)
        .expect("CSR")
        .1
}

#[tokio::test]
async fn issue_refused_for_an_unknown_agency() {
    // Fujian (35) is a real province but not registered with this exchange.
    let csr_pem = csr("350000-AMR", Profile::System);
    let violations = refused_issue("350000-AMR", PbProfile::System, csr_pem, 30).await;
    assert_names(&violations, "agency", "not registered");
}

#[tokio::test]
async fn issue_refused_for_a_csr_naming_another_agency() {
    let csr_pem = csr(JIANGSU, Profile::System);
    let violations = refused_issue(ANHUI, PbProfile::System, csr_pem, 30).await;
    assert_names(&violations, "csr_pem", JIANGSU);
}

#[tokio::test]
async fn issue_refused_for_a_csr_of_another_profile() {
    let csr_pem = csr(ANHUI, Profile::System);
    let violations = refused_issue(ANHUI, PbProfile::Admin, csr_pem, 30).await;
    assert_names(&violations, "csr_pem", "profile");
}

#[tokio::test]
async fn issue_refused_beyond_ninety_days() {
    let csr_pem = csr(ANHUI, Profile::System);
    let violations = refused_issue(ANHUI, PbProfile::System, csr_pem, 91).await;
    assert_names(&violations, "validity", "90 days");
}

#[tokio::test]
async fn issue_refused_for_a_garbage_csr() {
    for garbage in [
        "-----BEGIN CERTIFICATE REQUEST-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE REQUEST-----\n",
        "not a CSR at all",
    ] {
        let violations = refused_issue(ANHUI, PbProfile::System, garbage, 30).await;
        assert_names(&violations, "csr_pem", "");
    }
}

#[tokio::test]
async fn server_certificate_rotates_without_restart() {
    let app = TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite");
    let client = app.client_cert(SHANGHAI, Profile::System);
    let before = server_certificate(app.addr, &app.ca_pem(), &client)
        .await
        .expect("the server certificate before");
    // A connection opened before the rotation.
    let old = app.session(SHANGHAI, Profile::System).await;

    let pki = yrd_pki::DevPki::at(&app.pki_dir);
    let fresh = app
        .ca()
        .issue_server(
            &[],
            Validity::starting(SystemClock.now(), Duration::days(30)).expect("validity"),
        )
        .expect("a new server certificate");
    assert_ne!(fresh.cert_der.as_ref(), before.as_slice());
    // Written beside and renamed over, as an operator's deploy would, key first.
    for (target, content) in [
        (pki.server_key(), &fresh.key_pem),
        (pki.server_cert(), &fresh.cert_pem),
    ] {
        let staging = target.with_extension("new");
        std::fs::write(&staging, content).expect("write");
        std::fs::rename(&staging, &target).expect("rename");
    }

    let started = std::time::Instant::now();
    loop {
        let now = server_certificate(app.addr, &app.ca_pem(), &client)
            .await
            .expect("a handshake during rotation");
        if now == fresh.cert_der.as_ref() {
            break;
        }
        assert_eq!(now, before, "neither the old nor the new certificate");
        assert!(
            started.elapsed() < StdDuration::from_secs(6),
            "the new server certificate was not picked up within 6 s"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    println!(
        "new server certificate served after {:?}",
        started.elapsed()
    );
    // The connection opened before the rotation keeps working, and so do new ones.
    passed(call_path(&old.channel, Some(&old.token), PROBE).await);
    let new = app.session(SHANGHAI, Profile::System).await;
    passed(call_path(&new.channel, Some(&new.token), PROBE).await);
}
