//! AdminService as the operator's admins use it (issue 3): registering, updating and reading
//! agencies, listing certificates by filter and page, and the CRL that lists what was revoked.
//! Each scenario runs on SQLite and on PostgreSQL.

use std::collections::BTreeSet;

use x509_parser::prelude::FromDer as _;
use yrd_domain::Profile;
use yrd_e2e::{
    ANHUI, JIANGSU, SHANGHAI, Session, TestApp, agency_id, call_path, on_both_stores,
    refused_within, violated_fields,
};
use yrd_gateway::client::ClientFiles;
use yrd_proto::v1::{
    Agency, AgencyState, Certificate, CertificateState, CreateAgencyRequest, GetAgencyRequest,
    GetCrlRequest, GetCrlResponse, IssueCertificateRequest, ListAgenciesRequest,
    ListCertificatesRequest, RevocationReason, RevokeCertificateRequest, RevokeCertificateResponse,
    UpdateAgencyRequest,
};

on_both_stores!(
    agencies_are_registered_listed_and_refused,
    a_suspended_agency_gets_no_token,
    certificates_are_filtered_and_paged,
    the_crl_lists_the_revoked_serial
);

/// Suzhou's market regulator: a valid id the seed does not register.
const SUZHOU: &str = "320500-AMR";
/// A method every `system` token may call (an empty search).
const PROBE: &str = "/yrd.exchange.v1.SpotCheckService/SearchResults";

fn new_agency(id: &str) -> CreateAgencyRequest {
    CreateAgencyRequest {
        request_id: format!("create {id}"),
        agency: Some(Agency {
            agency_id: id.to_owned(),
            display_name: "Suzhou Administration for Market Regulation".into(),
            display_name_zh: "苏州市市场监督管理局".into(),
            ..Default::default()
        }),
    }
}

async fn list_agency_ids(admin: &Session) -> BTreeSet<String> {
    admin
        .admin()
        .list_agencies(ListAgenciesRequest::default())
        .await
        .expect("list agencies")
        .into_inner()
        .agencies
        .into_iter()
        .map(|a| a.agency_id)
        .collect()
}

async fn agencies_are_registered_listed_and_refused(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    assert!(!list_agency_ids(&admin).await.contains(SUZHOU));

    let created = admin
        .admin()
        .create_agency(new_agency(SUZHOU))
        .await
        .expect("create")
        .into_inner()
        .agency
        .expect("the new agency");
    assert_eq!(created.name, format!("agencies/{SUZHOU}"));
    assert_eq!(created.region_code, "320500");
    assert_eq!(created.state(), AgencyState::Active);
    assert!(!created.operator);
    let listed = list_agency_ids(&admin).await;
    assert!(listed.contains(SUZHOU), "{listed:?}");
    assert_eq!(listed.len(), 6, "{listed:?}");

    // A retry of the same request (same request id, same body) gets the first answer,
    // receipt included, and registers nothing.
    let retried = admin
        .admin()
        .create_agency(new_agency(SUZHOU))
        .await
        .expect("a retry is answered")
        .into_inner();
    assert_eq!(retried.agency.as_ref(), Some(&created));
    assert_eq!(list_agency_ids(&admin).await.len(), 6);

    // The same agency under another request id is a second registration.
    let duplicate = admin
        .admin()
        .create_agency(CreateAgencyRequest {
            request_id: "create suzhou again".into(),
            ..new_agency(SUZHOU)
        })
        .await
        .expect_err("registered twice");
    assert_eq!(
        duplicate.code(),
        tonic::Code::AlreadyExists,
        "{duplicate:?}"
    );
    assert!(duplicate.message().contains(SUZHOU), "{duplicate:?}");

    // The same request id with another body is refused, naming the request id.
    let mut other_body = new_agency(SUZHOU);
    if let Some(agency) = other_body.agency.as_mut() {
        agency.display_name = "Suzhou AMR".into();
    }
    let reused = admin
        .admin()
        .create_agency(other_body)
        .await
        .expect_err("request id reused");
    assert_eq!(reused.code(), tonic::Code::AlreadyExists, "{reused:?}");
    assert!(reused.message().contains("create 320500-AMR"), "{reused:?}");

    // A write without a request id is refused with the field named, with the other faults.
    let unnamed = admin
        .admin()
        .create_agency(CreateAgencyRequest {
            request_id: String::new(),
            ..new_agency("suzhou")
        })
        .await
        .expect_err("no request id");
    assert_eq!(
        violated_fields(&unnamed),
        vec!["request_id", "agency.agency_id"]
    );

    let bad = admin
        .admin()
        .create_agency(new_agency("suzhou"))
        .await
        .expect_err("not an agency id");
    assert_eq!(violated_fields(&bad), vec!["agency.agency_id"]);

    let got = admin
        .admin()
        .get_agency(GetAgencyRequest {
            name: format!("agencies/{SUZHOU}"),
        })
        .await
        .expect("get")
        .into_inner()
        .agency
        .expect("agency");
    assert_eq!(got.display_name_zh, "苏州市市场监督管理局");
    let missing = admin
        .admin()
        .get_agency(GetAgencyRequest {
            name: "agencies/350000-AMR".into(),
        })
        .await
        .expect_err("not registered");
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    assert!(missing.message().contains("350000-AMR"), "{missing:?}");
}

/// A newly registered agency gets a certificate from its own CSR and a token; once suspended
/// (update with a mask naming `state`), its system's IssueToken is refused.
async fn a_suspended_agency_gets_no_token(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    admin
        .admin()
        .create_agency(new_agency(SUZHOU))
        .await
        .expect("create");
    let (key_pem, csr_pem) = yrd_pki::make_csr(&agency_id(SUZHOU), Profile::System).expect("CSR");
    let issued = admin
        .admin()
        .issue_certificate(IssueCertificateRequest {
            request_id: "issue suzhou".into(),
            agency: format!("agencies/{SUZHOU}"),
            profile: yrd_proto::v1::Profile::System as i32,
            csr_pem,
            validity: None,
        })
        .await
        .expect("issue")
        .into_inner()
        .certificate
        .expect("certificate");
    let dir = tempfile::tempdir().expect("temp");
    let files = ClientFiles {
        ca: app.pki_dir.join("ca.pem"),
        cert: dir.path().join("system.pem"),
        key: dir.path().join("system.key"),
    };
    std::fs::write(&files.cert, &issued.certificate_pem).expect("cert");
    std::fs::write(&files.key, &key_pem).expect("key");
    let channel = app.channel_with(&files).await;
    let token = TestApp::token_over(&channel, None)
        .await
        .expect("an active agency gets a token");
    call_path(&channel, Some(&token), PROBE)
        .await
        .expect("an active agency is served");

    let updated = admin
        .admin()
        .update_agency(UpdateAgencyRequest {
            request_id: "suspend suzhou".into(),
            agency: Some(Agency {
                name: format!("agencies/{SUZHOU}"),
                state: AgencyState::Suspended as i32,
                // Not in the mask, so not changed.
                display_name: "ignored".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["state".into()],
            }),
        })
        .await
        .expect("suspend")
        .into_inner()
        .agency
        .expect("agency");
    assert_eq!(updated.state(), AgencyState::Suspended);
    assert_eq!(
        updated.display_name,
        "Suzhou Administration for Market Regulation"
    );

    let refused = TestApp::token_over(&channel, None)
        .await
        .expect_err("a suspended agency gets no token");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("suspended"), "{refused:?}");
    // The token it got before the suspension stops working too, on the connection already
    // open, without waiting for the token to expire.
    let (refused, _) = refused_within(
        "a suspended agency's earlier token",
        std::time::Duration::from_secs(1),
        tonic::Code::PermissionDenied,
        || call_path(&channel, Some(&token), PROBE),
    )
    .await;
    assert!(refused.message().contains("suspended"), "{refused:?}");

    // Resumed, it is served again.
    set_state(&admin, SUZHOU, AgencyState::Active)
        .await
        .expect("resume");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match call_path(&channel, Some(&token), PROBE).await {
            Ok(()) => break,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("a resumed agency is still refused: {e:?}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }

    // The operator cannot be suspended.
    let operator = set_state(&admin, SHANGHAI, AgencyState::Suspended)
        .await
        .expect_err("the operator stays");
    assert_eq!(
        operator.code(),
        tonic::Code::InvalidArgument,
        "{operator:?}"
    );
}

/// Sets the state of `agency` (the update mask names only `state`).
async fn set_state(
    admin: &Session,
    agency: &str,
    state: AgencyState,
) -> Result<tonic::Response<yrd_proto::v1::UpdateAgencyResponse>, tonic::Status> {
    let request_id = format!("set {agency} {state:?}");
    admin.set_agency_state(agency, state, request_id).await
}

/// The certificates in `state` (all of them: the suites make fewer than a page).
async fn in_state(admin: &Session, state: CertificateState) -> Vec<Certificate> {
    admin
        .admin()
        .list_certificates(ListCertificatesRequest {
            state: state as i32,
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("certificates by state")
        .into_inner()
        .certificates
}

/// The exchange's current CRL.
async fn current_crl(admin: &Session) -> GetCrlResponse {
    admin
        .admin()
        .get_crl(GetCrlRequest {})
        .await
        .expect("CRL")
        .into_inner()
}

async fn revoke(admin: &Session, name: &str) -> RevokeCertificateResponse {
    admin.revoke(name, RevocationReason::Superseded).await
}

async fn certificates_are_filtered_and_paged(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let all: Vec<String> = admin
        .admin()
        .list_certificates(ListCertificatesRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("list all")
        .into_inner()
        .certificates
        .into_iter()
        .map(|c| c.name)
        .collect();
    // The dev PKI: five agencies × three profiles.
    assert_eq!(all.len(), 15, "{all:?}");

    // Page size 2 walks every certificate exactly once.
    let mut walked = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = admin
            .admin()
            .list_certificates(ListCertificatesRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.certificates.len() <= 2, "page {pages}");
        walked.extend(page.certificates.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(pages < 20, "the listing does not end");
    }
    assert_eq!(pages, 8);
    let unique: BTreeSet<&String> = walked.iter().collect();
    assert_eq!(
        unique.len(),
        walked.len(),
        "a certificate listed twice: {walked:?}"
    );
    assert_eq!(unique, all.iter().collect::<BTreeSet<_>>());

    // By agency.
    let jiangsu = admin
        .admin()
        .list_certificates(ListCertificatesRequest {
            agency: format!("agencies/{JIANGSU}"),
            ..Default::default()
        })
        .await
        .expect("by agency")
        .into_inner()
        .certificates;
    assert_eq!(jiangsu.len(), 3);
    assert!(
        jiangsu
            .iter()
            .all(|c| c.agency == format!("agencies/{JIANGSU}"))
    );

    // By state: only the revoked one.
    let victim = app.certificate_name(ANHUI, Profile::Auditor);
    let none_revoked = in_state(&admin, CertificateState::Revoked).await;
    assert!(none_revoked.is_empty(), "{none_revoked:?}");
    let first = revoke(&admin, &victim).await;
    // A retry of the same revocation gets the first answer (receipt included), although the
    // certificate is revoked by now; a new request to revoke it again is refused.
    assert_eq!(revoke(&admin, &victim).await, first);
    let again = admin
        .admin()
        .revoke_certificate(RevokeCertificateRequest {
            request_id: "revoke it once more".into(),
            name: victim.clone(),
            reason: RevocationReason::Superseded as i32,
            note: String::new(),
        })
        .await
        .expect_err("already revoked");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "{again:?}");
    let revoked = in_state(&admin, CertificateState::Revoked).await;
    assert_eq!(
        revoked.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        vec![victim.as_str()]
    );
    assert_eq!(
        revoked[0].revocation_reason,
        RevocationReason::Superseded as i32
    );
    let active = in_state(&admin, CertificateState::Active).await;
    assert_eq!(active.len(), 14);
    assert!(active.iter().all(|c| c.name != victim));
}

async fn the_crl_lists_the_revoked_serial(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let before = current_crl(&admin).await;
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&before.crl_der)
            .expect("a DER CRL");
    assert_eq!(crl.iter_revoked_certificates().count(), 0);

    let serial = app.cert_info(JIANGSU, Profile::System).serial_hex;
    revoke(&admin, &format!("certificates/{serial}")).await;

    let after = current_crl(&admin).await;
    assert!(
        after.crl_number > before.crl_number,
        "the CRL number must grow: {} then {}",
        before.crl_number,
        after.crl_number
    );
    assert_eq!(
        after.crl_number,
        u64::try_from(app.store.revocation_seq().await.expect("seq")).expect("non-negative")
    );
    assert!(
        after.crl_pem.starts_with("-----BEGIN X509 CRL-----"),
        "{}",
        after.crl_pem
    );
    let (rest, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&after.crl_der)
            .expect("a DER CRL");
    assert!(rest.is_empty());
    assert_eq!(
        crl.crl_number().map(ToString::to_string),
        Some(after.crl_number.to_string())
    );
    let listed: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| {
            r.user_certificate
                .to_bytes_be()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect();
    assert_eq!(listed, vec![serial]);
    // Signed by the exchange CA.
    let ca_der = app.ca().cert_der().to_vec();
    let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&ca_der).expect("CA");
    crl.verify_signature(ca.public_key())
        .expect("the CRL is signed by the exchange CA");
}
