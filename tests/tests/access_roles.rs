//! Every cell of the roles table (issue 3): for each method of `METHOD_ROLES` and each
//! profile, a call with a sound token of that profile is `PERMISSION_DENIED` exactly when
//! `granted_roles` lacks the method's role, and gets past the gateway otherwise.
//!
//! "Gets past" means any code but `PERMISSION_DENIED` and `UNAUTHENTICATED`: services not
//! mounted yet answer `UNIMPLEMENTED`, and the mounted ones answer an empty message with their
//! own verdict (`INVALID_ARGUMENT`, `NOT_FOUND`, or `OK` for the listings). The calling rows are
//! the operator's (Shanghai, a pilot agency of LicensingService), so no service refuses them
//! for who they are. The calls carry empty messages, so they change nothing.

use std::collections::BTreeSet;

use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use yrd_domain::Profile;
use yrd_domain::roles::{METHOD_ROLES, PUBLIC_METHODS, Role, granted_roles};
use yrd_e2e::{SHANDONG, SHANGHAI, StoreKind, TestApp, call_path};
use yrd_proto::v1::token_service_client::TokenServiceClient;
use yrd_proto::v1::{GetJwksRequest, IssueTokenRequest};

async fn app() -> TestApp {
    TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite")
}

/// Who calls in one row of the matrix.
struct Caller {
    label: String,
    channel: tonic::transport::Channel,
    token: String,
    roles: Vec<Role>,
}

/// The calling rows: the three profiles of the operator (Shanghai), and the admin of a
/// non-operator agency (Shandong). The last cannot get a token (asserted); its row uses a
/// token signed with the exchange key carrying exactly what it is granted, i.e. no role.
async fn callers(app: &TestApp) -> Vec<Caller> {
    let mut rows = Vec::new();
    for profile in Profile::ALL {
        let session = app.session(SHANGHAI, profile).await;
        rows.push(Caller {
            label: format!("{SHANGHAI}/{profile}"),
            channel: session.channel,
            token: session.token,
            roles: granted_roles(profile, true),
        });
    }
    let channel = app.channel(SHANDONG, Profile::Admin).await;
    let refused = TestApp::token_over(&channel, None)
        .await
        .expect_err("a non-operator admin is granted no role, so gets no token");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    // Issue 16: "an admin certificate", not "a admin certificate".
    assert_eq!(
        refused.message(),
        format!(
            "an admin certificate of {SHANDONG} is granted no role at the exchange, so IssueToken \
             has no token to issue"
        )
    );
    let roles = granted_roles(Profile::Admin, false);
    assert!(roles.is_empty(), "{roles:?}");
    let token = app
        .exchange_key()
        .await
        .sign(&app.claims_for(SHANDONG, Profile::Admin));
    rows.push(Caller {
        label: format!("{SHANDONG}/admin (non-operator)"),
        channel,
        token,
        roles,
    });
    rows
}

#[tokio::test]
async fn every_role_and_method_cell() {
    let app = app().await;
    let rows = callers(&app).await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for row in &rows {
        for (path, role) in METHOD_ROLES {
            cells += 1;
            let outcome = call_path(&row.channel, Some(&row.token), path).await;
            let code = outcome.as_ref().err().map_or(tonic::Code::Ok, |s| s.code());
            let granted = row.roles.contains(role);
            let fine = if granted {
                !matches!(
                    code,
                    tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
                )
            } else {
                code == tonic::Code::PermissionDenied
                    && outcome.as_ref().err().is_some_and(|s| {
                        s.message()
                            .contains(&format!("needs the role {}", role.as_str()))
                    })
            };
            if !fine {
                failures.push(format!(
                    "{} → {path} (role {role}, {}): got {outcome:?}",
                    row.label,
                    if granted { "granted" } else { "not granted" },
                ));
            }
        }
    }
    assert_eq!(cells, rows.len() * METHOD_ROLES.len());
    assert!(
        failures.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The paths a caller is refused with `PERMISSION_DENIED`.
async fn denied_paths(channel: &tonic::transport::Channel, token: &str) -> BTreeSet<&'static str> {
    let mut denied = BTreeSet::new();
    for (path, _) in METHOD_ROLES {
        if let Err(status) = call_path(channel, Some(token), path).await {
            assert_ne!(
                status.code(),
                tonic::Code::Unauthenticated,
                "{path}: {status:?}"
            );
            if status.code() == tonic::Code::PermissionDenied {
                denied.insert(*path);
            }
        }
    }
    denied
}

#[tokio::test]
async fn auditors_reach_the_audit_service_only() {
    let app = app().await;
    let auditor = app.session(SHANGHAI, Profile::Auditor).await;
    let denied = denied_paths(&auditor.channel, &auditor.token).await;
    let allowed: BTreeSet<&str> = METHOD_ROLES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !denied.contains(p))
        .collect();
    let audit: BTreeSet<&str> = METHOD_ROLES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| p.starts_with("/yrd.exchange.v1.AuditService/"))
        .collect();
    assert!(!audit.is_empty());
    assert_eq!(allowed, audit);
}

#[tokio::test]
async fn admins_cannot_publish_results() {
    let app = app().await;
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    for method in ["PublishResult", "CorrectResult", "WithdrawResult"] {
        let path = format!("/yrd.exchange.v1.SpotCheckService/{method}");
        assert!(
            METHOD_ROLES
                .iter()
                .any(|(p, r)| *p == path && *r == Role::PublishResults),
            "{path} is a publishing method of the table"
        );
        let status = call_path(&admin.channel, Some(&admin.token), &path)
            .await
            .expect_err("admins cannot publish");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
        assert!(
            status.message().contains("results:publish")
                && status.message().contains("an admin certificate of"),
            "{:?}",
            status.message()
        );
    }
    // The same admin administers (the control: its token is sound).
    call_path(
        &admin.channel,
        Some(&admin.token),
        "/yrd.exchange.v1.AdminService/ListAgencies",
    )
    .await
    .expect("operator admins list agencies");
}

#[tokio::test]
async fn public_methods_need_no_token() {
    let app = app().await;
    assert!(PUBLIC_METHODS.contains(&"/yrd.exchange.v1.TokenService/IssueToken"));
    for profile in Profile::ALL {
        let channel = app.channel(SHANGHAI, profile).await;
        let mut tokens = TokenServiceClient::new(channel.clone());
        tokens
            .get_jwks(GetJwksRequest {})
            .await
            .unwrap_or_else(|s| panic!("{profile}: GetJwks without a token: {s:?}"));
        tokens
            .issue_token(IssueTokenRequest::default())
            .await
            .unwrap_or_else(|s| panic!("{profile}: IssueToken without a token: {s:?}"));
        let mut health = HealthClient::new(channel.clone());
        health
            .check(HealthCheckRequest::default())
            .await
            .unwrap_or_else(|s| panic!("{profile}: Health/Check without a token: {s:?}"));
        let mut watch = health
            .watch(HealthCheckRequest::default())
            .await
            .unwrap_or_else(|s| panic!("{profile}: Health/Watch without a token: {s:?}"))
            .into_inner();
        watch
            .next()
            .await
            .expect("a first health status")
            .unwrap_or_else(|s| panic!("{profile}: Health/Watch stream: {s:?}"));
    }
    // Reflection, both versions: the contract is public to every certificate holder.
    let channel = app.channel(SHANDONG, Profile::Auditor).await;
    let mut v1 = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
        channel.clone(),
    );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut answers = v1
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1 without a token")
        .into_inner();
    answers
        .next()
        .await
        .expect("an answer")
        .expect("reflection v1 answers");
    let mut v1alpha =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            channel,
        );
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut answers = v1alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha without a token")
        .into_inner();
    answers
        .next()
        .await
        .expect("an answer")
        .expect("reflection v1alpha answers");
}

#[tokio::test]
async fn a_method_needing_a_role_needs_a_token() {
    // The other side of the public list: every method of the roles table refuses a call
    // without a token, for every profile, before any role is considered.
    let app = app().await;
    let mut failures = Vec::new();
    for profile in Profile::ALL {
        let channel = app.channel(SHANGHAI, profile).await;
        for (path, _) in METHOD_ROLES {
            match call_path(&channel, None, path).await {
                Err(s) if s.code() == tonic::Code::Unauthenticated => {}
                other => failures.push(format!("{profile} → {path}: {other:?}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
