//! `yrd cert …` and `yrd agency …` against a real server, each command built exactly as a user
//! types it (`Cli::try_parse_from`) and run in-process; and the README's admin and partner
//! workflows, whose commands must parse and whose roles table must be the code's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use serde_json::Value;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::ReasonCode;
use yrd_domain::Profile;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_e2e::{ANHUI, JIANGSU, SHANDONG, StoreKind, TestApp, agency_id};
use yrd_gateway::cert_cli::{self, CliError};
use yrd_gateway::cli::{Cli, Command};
use yrd_gateway::client::ClientFiles;
use yrd_gateway::session::{ConnectTarget, Session};

/// Parses `line` (what follows `yrd` on a shell line) exactly as the shell and `yrd` would.
fn parse(line: &str) -> Result<Command, clap::Error> {
    let words = std::iter::once("yrd".to_owned()).chain(shell_words(line));
    Cli::try_parse_from(words).map(|c| c.command)
}

/// Runs a parsed `cert` or `agency` command and returns what it printed.
async fn run(command: Command) -> Result<String, CliError> {
    let mut out = Vec::new();
    match command {
        Command::Cert(c) => cert_cli::run(c, &mut out).await?,
        Command::Agency(c) => yrd_gateway::cli::agency::run_agency(c, &mut out).await?,
        other => panic!("not a client command: {other:?}"),
    }
    Ok(String::from_utf8(out).expect("UTF-8 output"))
}

/// Runs a command line as given: offline ones (`cert init-ca`, `cert request`), or one that
/// names its own connection.
async fn yrd(line: &str) -> Result<String, CliError> {
    run(parse(line).unwrap_or_else(|e| panic!("yrd {line}: {e}"))).await
}

/// Runs a command line that calls `app` with the operator's dev admin certificate, as
/// `yrd … --server ADDR --data-dir DIR` (the dev PKI of the test server).
async fn call(app: &TestApp, line: &str) -> Result<String, CliError> {
    let data_dir = app.pki_dir.parent().expect("pki under the data folder");
    yrd(&format!(
        "{line} --server {} --data-dir {}",
        app.addr,
        path(data_dir)
    ))
    .await
}

/// [`call`], which must succeed.
async fn ok(app: &TestApp, line: &str) -> String {
    call(app, line)
        .await
        .unwrap_or_else(|e| panic!("yrd {line}: {e:#}"))
}

/// A path as a shell word (the temporary folders have no spaces or quotes).
fn path(p: &Path) -> String {
    let text = p.to_str().expect("UTF-8 path");
    assert!(!text.contains([' ', '"', '\'']), "{text}");
    text.to_owned()
}

/// The value after `label` on the line of `text` that starts (after indentation) with it.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
        .trim()
        .to_owned()
}

fn json_list(text: &str) -> Vec<Value> {
    match serde_json::from_str(text) {
        Ok(Value::Array(items)) => items,
        other => panic!("not a JSON array: {other:?}\n{text}"),
    }
}

/// The files a partner presents, from its own folder and the exchange CA.
fn partner_target(app: &TestApp, dir: &Path, stem: &str) -> ConnectTarget {
    ConnectTarget {
        server: app.addr.to_string(),
        tls_name: "localhost".to_owned(),
        files: ClientFiles {
            ca: app.pki_dir.join("ca.pem"),
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
        },
        officer: Some("SZ-ZF-0042".to_owned()),
    }
}

/// Partner side: `cert request` in `partner`; admin side: the CSR arrives in `admin` and is
/// issued there (with `extra` flags); the certificate goes back to `partner`. Returns the
/// serial.
async fn request_and_issue(
    app: &TestApp,
    agency: &str,
    partner: &Path,
    admin: &Path,
    extra: &str,
) -> String {
    let stem = format!("{agency}-system");
    let printed = yrd(&format!(
        "cert request --agency {agency} --profile system --out {}",
        path(partner)
    ))
    .await
    .expect("cert request");
    assert!(printed.contains("send only"), "{printed}");
    std::fs::create_dir_all(admin).expect("admin folder");
    let csr = admin.join(format!("{stem}.csr"));
    std::fs::copy(partner.join(format!("{stem}.csr")), &csr).expect("the CSR is sent");
    let printed = ok(
        app,
        &format!(
            "cert issue --csr {} --agency {agency} --profile system {extra}",
            path(&csr)
        ),
    )
    .await;
    for ext in ["pem", "chain.pem"] {
        std::fs::copy(
            admin.join(format!("{stem}.{ext}")),
            partner.join(format!("{stem}.{ext}")),
        )
        .expect("the certificate is sent back");
    }
    field(&printed, "serial")
}

/// The serials of a `--json` listing.
fn serials(listing: &str) -> Vec<String> {
    json_list(listing)
        .iter()
        .map(|c| c["serial"].as_str().expect("a serial").to_owned())
        .collect()
}

#[tokio::test]
async fn init_ca_writes_a_usable_ca_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ca");
    let printed = yrd(&format!(
        "cert init-ca --out {} --common-name 'Test exchange CA' --days 30",
        path(&out)
    ))
    .await
    .expect("init-ca");
    assert!(printed.contains("fingerprint"), "{printed}");
    let cert_pem = std::fs::read_to_string(out.join("ca.pem")).expect("ca.pem");
    let key_pem = std::fs::read_to_string(out.join("ca.key")).expect("ca.key");
    assert_private(&out.join("ca.key"));

    // Usable: it loads as a CA whose key matches, and a client certificate it signs passes
    // the very verifier the exchange's TLS acceptor uses.
    let ca = yrd_pki::CertificateAuthority::from_pem(&cert_pem, &key_pem).expect("a CA");
    let info = yrd_pki::CertInfo::from_pem(&cert_pem).expect("readable");
    assert!(info.is_ca);
    assert!(
        info.subject.contains("Test exchange CA"),
        "{}",
        info.subject
    );
    assert_eq!(info.not_after - info.not_before, time::Duration::days(30));
    let (_, csr) = yrd_pki::make_csr(&agency_id(SHANDONG), Profile::System).expect("csr");
    let anyone = |_: &yrd_domain::AgencyId| true;
    let validity =
        yrd_pki::Validity::starting(SystemClock.now(), time::Duration::days(1)).expect("validity");
    let leaf = ca
        .sign_csr(&csr, yrd_pki::CsrPolicy::new(&anyone, validity))
        .expect("the new CA signs");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("pem"))
        .expect("a trust anchor");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("verifier");
    verifier
        .verify_client_cert(&leaf.cert_der, &[], UnixTime::now())
        .expect("a certificate of the new CA verifies");

    // A second run refuses, naming the file, and leaves both files as they were.
    let again = yrd(&format!("cert init-ca --out {}", path(&out))).await;
    let refused = match again {
        Err(e @ CliError::Exists(_)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        refused.to_string().contains("refusing to overwrite"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("ca.pem")).expect("pem"),
        cert_pem
    );
    assert_eq!(
        std::fs::read_to_string(out.join("ca.key")).expect("key"),
        key_pem
    );
}

/// The file is readable by its owner only.
fn assert_private(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{} is private", file.display());
    }
}

#[tokio::test]
async fn onboard_request_issue_and_the_key_stays_with_the_partner() {
    let app = TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite");
    let suzhou = "320500-AMR";

    // Onboarding: the admin registers the agency; it lists as active.
    let printed = ok(
        &app,
        "agency create 320500-AMR --name 'Suzhou Administration for Market Regulation' \
         --name-zh 苏州市市场监督管理局",
    )
    .await;
    assert!(printed.contains(suzhou), "{printed}");
    let agencies = json_list(&ok(&app, "agency list --json").await);
    let entry = agencies
        .iter()
        .find(|a| a["agency_id"] == suzhou)
        .expect("the new agency is listed");
    assert_eq!(entry["state"], "active");
    assert_eq!(entry["display_name_zh"], "苏州市市场监督管理局");
    let table = ok(&app, "agency list").await;
    assert!(
        table.contains("苏州市市场监督管理局") && table.contains("310000-SAMR"),
        "{table}"
    );

    // The partner makes key and CSR; only the CSR reaches the admin, who issues.
    let dir = tempfile::tempdir().expect("tempdir");
    let partner = dir.path().join("partner");
    let admin = dir.path().join("admin");
    let serial = request_and_issue(&app, suzhou, &partner, &admin, "--days 30").await;
    let stem = format!("{suzhou}-system");

    // The key exists once, on the partner side, private; the admin side holds no key at all.
    let key_path = partner.join(format!("{stem}.key"));
    let key_pem = std::fs::read_to_string(&key_path).expect("the partner's key");
    assert!(key_pem.contains("PRIVATE KEY"));
    assert_private(&key_path);
    let mut admin_files: Vec<String> = std::fs::read_dir(&admin)
        .expect("admin folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    admin_files.sort();
    assert_eq!(
        admin_files,
        [
            format!("{stem}.chain.pem"),
            format!("{stem}.csr"),
            format!("{stem}.pem")
        ]
    );
    for name in &admin_files {
        let text = std::fs::read_to_string(admin.join(name)).expect("readable");
        assert!(!text.contains("PRIVATE KEY"), "{name} holds a key");
    }

    // What was issued: the approved identity, the asked validity, the printed serial.
    let cert_pem = std::fs::read_to_string(partner.join(format!("{stem}.pem"))).expect("cert");
    let info = yrd_pki::CertInfo::from_pem(&cert_pem).expect("a certificate");
    assert_eq!(info.serial_hex, serial);
    let spiffe = info.spiffe.expect("a SPIFFE identity");
    assert_eq!(
        (spiffe.agency.as_str(), spiffe.profile),
        (suzhou, Profile::System)
    );
    assert_eq!(info.not_after - info.not_before, time::Duration::days(30));
    let chain = std::fs::read_to_string(partner.join(format!("{stem}.chain.pem"))).expect("chain");
    assert!(
        chain.starts_with(&cert_pem),
        "the chain starts with the certificate"
    );
    assert!(chain.ends_with(&String::from_utf8(app.ca_pem()).expect("pem")));

    // The issued certificate with the partner's own key connects and gets a token.
    let session = Session::open(&partner_target(&app, &partner, &stem))
        .await
        .expect("the new certificate gets a token");
    assert!(
        session.roles().iter().any(|r| r == "results:publish"),
        "{:?}",
        session.roles()
    );
    // ... and it is a system certificate: admin commands are refused, with the code shown.
    let denied = yrd(&format!(
        "cert list --server {} --ca {} --cert {} --key {}",
        app.addr,
        path(&app.pki_dir.join("ca.pem")),
        path(&partner.join(format!("{stem}.pem"))),
        path(&key_path)
    ))
    .await;
    let denied = match denied {
        Err(e) => e,
        Ok(out) => panic!("a system certificate listed certificates:\n{out}"),
    };
    assert_eq!(
        denied.rpc().map(|r| r.code()),
        Some(tonic::Code::PermissionDenied)
    );
    assert!(denied.to_string().contains("PERMISSION_DENIED"), "{denied}");

    // The table shows it; JSON has the fields; filters and paging agree.
    let table = ok(&app, "cert list").await;
    assert!(table.contains(&serial), "{table}");
    let mine = json_list(
        &ok(
            &app,
            "cert list --agency 320500-AMR --profile system --json",
        )
        .await,
    );
    assert_eq!(mine.len(), 1, "{mine:?}");
    let c = &mine[0];
    assert_eq!(c["serial"], serial.as_str());
    assert_eq!(c["agency"], suzhou);
    assert_eq!(c["profile"], "system");
    assert_eq!(c["state"], "active");
    assert_eq!(
        c["fingerprint_sha256"],
        info.fingerprint_sha256_hex.as_str()
    );
    assert_eq!(
        c["uri_san"],
        "spiffe://yrd-exchange/agency/320500-AMR/system"
    );
    assert!(
        c["not_after"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{c}"
    );
    assert!(c["revoke_time"].is_null());

    let due_29 = serials(&ok(&app, "cert list --expiring-within 29 --json").await);
    assert!(!due_29.contains(&serial), "not due within 29 days");
    let due_31 = serials(&ok(&app, "cert list --expiring-within 31 --json").await);
    assert_eq!(
        due_31,
        vec![serial.clone()],
        "only it is due within 31 days"
    );

    let all = json_list(&ok(&app, "cert list --json").await);
    assert!(
        all.len() >= 16,
        "15 dev certificates and the new one: {}",
        all.len()
    );
    let paged = json_list(&ok(&app, "cert list --json --page-size 2").await);
    assert_eq!(paged, all, "every page is fetched");
}

#[tokio::test]
async fn rotate_revoke_and_the_crl() {
    let app = TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite");
    let dir = tempfile::tempdir().expect("tempdir");
    let stem = format!("{SHANDONG}-system");
    let (old_dir, new_dir) = (dir.path().join("old"), dir.path().join("rotation"));
    let old = request_and_issue(&app, SHANDONG, &old_dir, &dir.path().join("admin-old"), "").await;
    Session::open(&partner_target(&app, &old_dir, &stem))
        .await
        .expect("the old certificate works");

    // Rotate: a new key and certificate first, then the old one is revoked as superseded.
    let new = request_and_issue(&app, SHANDONG, &new_dir, &dir.path().join("admin-new"), "").await;
    assert_ne!(old, new);
    let printed = ok(&app, &format!("cert revoke {old} --reason superseded")).await;
    assert!(
        printed.contains(&old) && printed.contains("superseded"),
        "{printed}"
    );

    let revoked = json_list(&ok(&app, "cert list --state revoked --json").await);
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["serial"], old.as_str());
    assert_eq!(revoked[0]["state"], "revoked");
    assert_eq!(revoked[0]["revocation_reason"], "superseded");
    let table = ok(&app, "cert list --state revoked").await;
    assert!(table.contains(&old) && !table.contains(&new), "{table}");
    let active = ok(&app, "cert list --state active --agency 370000-AMR").await;
    assert!(active.contains(&new) && !active.contains(&old), "{active}");

    // The old certificate is cut off within a second; the new one keeps working.
    let started = Instant::now();
    while Session::open(&partner_target(&app, &old_dir, &stem))
        .await
        .is_ok()
    {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "revoked certificate still admitted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Session::open(&partner_target(&app, &new_dir, &stem))
        .await
        .expect("the new certificate works");

    // Revoke another with --json: a document with the reason.
    let dev = serials(
        &ok(
            &app,
            &format!("cert list --agency {ANHUI} --profile auditor --json"),
        )
        .await,
    );
    let dev_serial = dev[0].clone();
    let doc: Value = serde_json::from_str(
        &ok(
            &app,
            &format!("cert revoke {dev_serial} --reason key-compromise --json"),
        )
        .await,
    )
    .expect("JSON");
    assert_eq!(doc["state"], "revoked");
    assert_eq!(doc["revocation_reason"], "key-compromise");

    // The CRL lists both, with their reasons: PEM on stdout, PEM to a file, DER to a file.
    let expected = [
        (old.clone(), ReasonCode::Superseded),
        (dev_serial.clone(), ReasonCode::KeyCompromise),
    ];
    let stdout = ok(&app, "cert crl").await;
    assert!(stdout.starts_with("-----BEGIN X509 CRL-----"), "{stdout}");
    assert_crl_lists(&pem_crl(stdout.as_bytes()), &expected);
    let pem_path = dir.path().join("exchange.crl.pem");
    let printed = ok(&app, &format!("cert crl --out {}", path(&pem_path))).await;
    assert!(printed.contains("2 revoked"), "{printed}");
    assert_crl_lists(&pem_crl(&std::fs::read(&pem_path).expect("crl")), &expected);
    let der_path = dir.path().join("exchange.crl");
    ok(&app, &format!("cert crl --der --out {}", path(&der_path))).await;
    assert_crl_lists(&std::fs::read(&der_path).expect("crl"), &expected);
}

fn pem_crl(pem: &[u8]) -> Vec<u8> {
    CertificateRevocationListDer::from_pem_slice(pem)
        .expect("a PEM CRL")
        .to_vec()
}

fn assert_crl_lists(der: &[u8], expected: &[(String, ReasonCode)]) {
    let (rest, crl) = CertificateRevocationList::from_der(der).expect("a DER CRL");
    assert!(rest.is_empty());
    let listed: Vec<(String, Option<ReasonCode>)> = crl
        .iter_revoked_certificates()
        .map(|r| {
            let hex: String = r.raw_serial().iter().map(|b| format!("{b:02x}")).collect();
            let hex = hex.trim_start_matches("00").to_owned();
            (hex, r.reason_code().map(|(_, code)| code))
        })
        .collect();
    for (serial, reason) in expected {
        assert!(
            listed.contains(&(serial.clone(), Some(*reason))),
            "{serial} with {reason:?} not in {listed:?}"
        );
    }
}

#[tokio::test]
async fn refusals_are_clear() {
    let app = TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite");
    let code = |e: &CliError| e.rpc().map(|r| r.code());

    // A bad reason never reaches the server: the command line names the accepted ones.
    let bad = parse("cert revoke abcd --reason lost-it").expect_err("bad reason");
    let text = bad.to_string();
    assert!(
        text.contains("lost-it") && text.contains("key-compromise"),
        "{text}"
    );
    assert!(parse("cert revoke not-hex --reason superseded").is_err());
    assert!(parse("cert list --state sleeping").is_err());

    // An unknown serial: NOT_FOUND, naming it.
    let err = call(&app, "cert revoke 00ff00ff00ff --reason key-compromise")
        .await
        .expect_err("unknown serial");
    assert_eq!(code(&err), Some(tonic::Code::NotFound), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("AdminService.RevokeCertificate failed: NOT_FOUND")
            && text.contains("00ff00ff00ff"),
        "{text}"
    );

    // Revoking twice: FAILED_PRECONDITION.
    let dev = serials(
        &ok(
            &app,
            &format!("cert list --agency {JIANGSU} --profile auditor --json"),
        )
        .await,
    );
    ok(
        &app,
        &format!("cert revoke {} --reason cessation-of-operation", dev[0]),
    )
    .await;
    let err = call(&app, &format!("cert revoke {} --reason superseded", dev[0]))
        .await
        .expect_err("already revoked");
    assert_eq!(code(&err), Some(tonic::Code::FailedPrecondition), "{err}");

    // A CSR that is not one, and too long a validity: INVALID_ARGUMENT with the field on its
    // own line; nothing written.
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.csr");
    std::fs::write(&junk, "not a request").expect("write");
    let err = call(
        &app,
        &format!(
            "cert issue --csr {} --agency {SHANDONG} --profile system",
            path(&junk)
        ),
    )
    .await
    .expect_err("junk CSR");
    assert_eq!(code(&err), Some(tonic::Code::InvalidArgument), "{err}");
    assert!(err.to_string().contains("\n  csr_pem: "), "{err}");
    assert!(
        !dir.path().join("junk.pem").exists(),
        "nothing written on failure"
    );

    let partner = dir.path().join("partner");
    yrd(&format!(
        "cert request --agency {SHANDONG} --profile system --out {}",
        path(&partner)
    ))
    .await
    .expect("request");
    let csr = path(&partner.join(format!("{SHANDONG}-system.csr")));
    let issue = format!("cert issue --csr {csr} --agency {SHANDONG}");
    let err = call(&app, &format!("{issue} --profile system --days 91"))
        .await
        .expect_err("longer than the maximum");
    assert!(err.to_string().contains("\n  validity: "), "{err}");
    // The CSR asks for system; approving auditor is refused.
    let err = call(&app, &format!("{issue} --profile auditor"))
        .await
        .expect_err("profile mismatch");
    assert_eq!(code(&err), Some(tonic::Code::InvalidArgument), "{err}");

    // A suspended agency gets no certificate until it is resumed.
    let printed = ok(&app, &format!("agency suspend {SHANDONG}")).await;
    assert!(printed.contains("suspended"), "{printed}");
    let err = call(&app, &format!("{issue} --profile system"))
        .await
        .expect_err("suspended");
    assert_eq!(code(&err), Some(tonic::Code::FailedPrecondition), "{err}");
    ok(&app, &format!("agency resume {SHANDONG}")).await;
    ok(&app, &format!("{issue} --profile system")).await;

    // Issuing again to the same files is refused before the call, so nothing is issued.
    let listing = format!("cert list --agency {SHANDONG} --json");
    let before = serials(&ok(&app, &listing).await);
    let err = call(&app, &format!("{issue} --profile system"))
        .await
        .expect_err("would overwrite");
    assert!(matches!(err, CliError::Exists(_)), "{err}");
    assert_eq!(serials(&ok(&app, &listing).await), before);

    // Nobody listening: a connection error naming the address.
    let data_dir = path(app.pki_dir.parent().expect("data dir"));
    let err = yrd(&format!(
        "cert list --server 127.0.0.1:1 --data-dir {data_dir}"
    ))
    .await
    .expect_err("nothing there");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The README.

fn readme() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn readme_shows_the_current_roles_table() {
    let table = yrd_domain::roles::markdown_table();
    assert!(
        readme().contains(&table),
        "README.md's \"Roles\" section must contain exactly yrd_domain::roles::markdown_table():\n\n{table}"
    );
}

/// Splits a shell line into words: whitespace, double and single quotes, `\` continuations.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// Every `yrd …` line in the code blocks of the README's workflow sections.
fn readme_workflow_commands() -> Vec<Vec<String>> {
    let text = readme();
    let start = text
        .find("## Admin workflow")
        .expect("an Admin workflow section");
    let end = text.find("## Roles").expect("a Roles section");
    let mut commands = Vec::new();
    let mut in_code = false;
    for line in text[start..end].lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if in_code && line.starts_with("yrd ") {
            commands.push(shell_words(line));
        }
    }
    commands
}

#[test]
fn every_workflow_command_in_the_readme_parses() {
    let commands = readme_workflow_commands();
    let shown: std::collections::BTreeSet<String> = commands
        .iter()
        .map(|w| format!("{} {}", w[1], w[2]))
        .collect();
    // The subcommands the scenarios above run (and `results …`, which results_sheets.rs runs);
    // the README shows no other.
    let exercised = [
        "agency create",
        "agency list",
        "agency resume",
        "agency suspend",
        "cert crl",
        "cert init-ca",
        "cert issue",
        "cert list",
        "cert request",
        "cert revoke",
        "results export",
        "results import",
    ];
    assert_eq!(shown, exercised.iter().map(|s| (*s).to_owned()).collect());
    for words in &commands {
        assert!(
            Cli::try_parse_from(words).is_ok(),
            "README command does not parse: {}",
            words.join(" ")
        );
    }
}

#[test]
fn shell_words_splits_like_a_shell() {
    assert_eq!(
        shell_words(r#"yrd agency create 320500-AMR --name "Suzhou AMR" --name-zh 苏州 ''"#),
        [
            "yrd",
            "agency",
            "create",
            "320500-AMR",
            "--name",
            "Suzhou AMR",
            "--name-zh",
            "苏州",
            ""
        ]
    );
}
