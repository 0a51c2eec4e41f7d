//! The exchange log end to end (issue 4), from the auditors' and the partners' side: calls
//! from three agencies (one refused for want of a token) are listed by their W3C trace id,
//! proven included and consistent through `yrd audit` exactly as an auditor types it; an
//! admin write's receipt is checked by the partner on its own; and only auditors read the log.
//! The tamper tests are in `audit_cli.rs`.

mod audit_support;

use std::time::Duration;

use audit_support::{audit, audit_ok, entries_with_trace, new_trace, traced, wait_for};
use tonic::Code;
use yrd_domain::Profile;
use yrd_domain::audit::tree_head_signing_input;
use yrd_domain::merkle::{Hash, verify_inclusion};
use yrd_e2e::{ANHUI, JIANGSU, SHANDONG, SHANGHAI, TestApp, agency_id, on_both_stores};
use yrd_gateway::audit_check::{ReceiptFile, VerifiedHead, VerifyFailure};
use yrd_pki::{SignedReceipt, verify_es256};
use yrd_proto::v1::admin_service_client::AdminServiceClient;
use yrd_proto::v1::audit_service_client::AuditServiceClient;
use yrd_proto::v1::token_service_client::TokenServiceClient;
use yrd_proto::v1::{
    self as pb, CreateAgencyRequest, GetConsistencyProofRequest, GetInclusionProofRequest,
    GetJwksRequest, GetTreeHeadRequest, IssueCertificateRequest, IssueTokenRequest, KeyPurpose,
    ListAgenciesRequest, ListAuditEntriesRequest, Receipt, RevokeCertificateRequest,
};

on_both_stores!(
    calls_from_three_agencies_are_listed_by_trace_and_proven,
    a_receipt_is_proven_by_the_partner_on_its_own,
    only_auditors_read_the_log,
    entries_name_their_caller_as_the_contract_does,
    a_write_its_retry_and_its_refusal_log_one_leaf_each,
);

/// Shanghai's admin issues a system certificate for Anhui from a fresh CSR, carrying
/// `traceparent` when given; answers the certificate's name and the receipt.
async fn issue_certificate(app: &TestApp, trace: Option<&str>) -> (String, Receipt) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let (_key, csr_pem) =
        yrd_pki::make_csr(&agency_id(ANHUI), Profile::System).expect("a CSR for Anhui");
    let request = traced(
        IssueCertificateRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            agency: format!("agencies/{ANHUI}"),
            profile: pb::Profile::System as i32,
            csr_pem,
            validity: None,
        },
        trace,
    );
    let mut client = AdminServiceClient::new(admin.authed());
    let issued = client
        .issue_certificate(request)
        .await
        .expect("the operator's admin issues a certificate")
        .into_inner();
    let certificate = issued.certificate.expect("the issued certificate");
    let receipt = issued.receipt.expect("a write answers with a receipt");
    (format!("certificates/{}", certificate.serial), receipt)
}

/// Each call is one leaf, whoever writes it: a write's own (committed with the write, the
/// handler's answer marked written), a retry's and a refusal's (the audit layer's, carrying
/// the resources the handler reported with its error). A marker the handler forgot would log
/// the write twice; a note lost on the error path would log the refusal without its resource.
async fn a_write_its_retry_and_its_refusal_log_one_leaf_each(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let create = |request_id: &str| CreateAgencyRequest {
        request_id: request_id.to_owned(),
        agency: Some(pb::Agency {
            agency_id: "320500-AMR".to_owned(),
            display_name: "Suzhou Administration for Market Regulation".into(),
            display_name_zh: "苏州市市场监督管理局".into(),
            ..Default::default()
        }),
    };
    let mut outcomes = Vec::new();
    for request_id in ["first", "first", "second"] {
        let trace = new_trace();
        let outcome = admin
            .admin()
            .create_agency(traced(create(request_id), Some(&trace)))
            .await
            .map(|_| ())
            .map_err(|status| status.code());
        outcomes.push((trace, outcome));
    }
    let codes: Vec<_> = outcomes.iter().map(|(_, o)| *o).collect();
    assert_eq!(
        codes,
        vec![Ok(()), Ok(()), Err(Code::AlreadyExists)],
        "created, replayed, refused"
    );
    // Every leaf of those calls was appended before its answer came back, and the sequencer
    // takes appended leaves in order: once a later call's leaf is in the log, a second leaf of
    // any of them would be there too.
    let marker = new_trace();
    admin
        .admin()
        .list_agencies(traced(ListAgenciesRequest::default(), Some(&marker)))
        .await
        .expect("a later call");
    let (app_ref, marker_ref) = (&app, marker.as_str());
    wait_for("the later call's leaf in the log", || async move {
        let entries = entries_with_trace(app_ref, marker_ref).await;
        (!entries.is_empty()).then_some(entries)
    })
    .await;
    for (trace, outcome) in &outcomes {
        let entries = entries_with_trace(&app, trace).await;
        assert_eq!(entries.len(), 1, "one leaf for {outcome:?}: {entries:#?}");
        assert_eq!(
            entries[0]["resources"],
            serde_json::json!(["agencies/320500-AMR"]),
            "the resource of {outcome:?}"
        );
        let code = outcome.err().map_or(0, |c| c as i32);
        assert_eq!(entries[0]["code"], code);
    }
}

async fn calls_from_three_agencies_are_listed_by_trace_and_proven(app: TestApp) {
    let trace = new_trace();

    // 1. Jiangsu's system gets a token (accepted), continuing the partner's trace.
    let jiangsu = app.channel(JIANGSU, Profile::System).await;
    let answer = TokenServiceClient::new(jiangsu.clone())
        .issue_token(traced(IssueTokenRequest::default(), Some(&trace)))
        .await
        .expect("Jiangsu gets a token");
    assert_eq!(
        answer
            .metadata()
            .get("x-trace-id")
            .and_then(|v| v.to_str().ok()),
        Some(trace.as_str()),
        "the exchange continues the partner's trace"
    );

    // 2. Shandong's system calls without a token: refused, and logged all the same.
    let shandong = app.channel(SHANDONG, Profile::System).await;
    let refused = AdminServiceClient::new(shandong)
        .list_agencies(traced(ListAgenciesRequest::default(), Some(&trace)))
        .await
        .expect_err("no token, no call");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // 3. Shanghai's admin writes: a certificate for Anhui, with a receipt.
    let (certificate, receipt) = issue_certificate(&app, Some(&trace)).await;

    // The auditor lists the trace's calls as soon as they are sequenced.
    let (app_ref, trace_ref) = (&app, trace.as_str());
    let entries = wait_for("the trace's three calls in the log", || async move {
        let entries = entries_with_trace(app_ref, trace_ref).await;
        (entries.len() >= 3).then_some(entries)
    })
    .await;
    assert_eq!(entries.len(), 3, "exactly the trace's calls: {entries:#?}");
    let by_agency = |agency: &str| {
        entries
            .iter()
            .find(|e| e["agency"] == agency)
            .unwrap_or_else(|| panic!("no entry of {agency}: {entries:#?}"))
    };
    let accepted = by_agency(JIANGSU);
    assert_eq!(
        accepted["method"],
        "/yrd.exchange.v1.TokenService/IssueToken"
    );
    assert_eq!(accepted["code"], 0);
    assert_eq!(accepted["profile"], "system");

    let refused_entry = by_agency(SHANDONG);
    assert_eq!(
        refused_entry["method"],
        "/yrd.exchange.v1.AdminService/ListAgencies"
    );
    assert_eq!(refused_entry["code"], Code::Unauthenticated as i32);
    assert_eq!(
        refused_entry["message"],
        refused.message(),
        "the refusal's own message"
    );
    assert_eq!(refused_entry["token_id"], "", "it carried no token");

    let write = by_agency(SHANGHAI);
    assert_eq!(
        write["method"],
        "/yrd.exchange.v1.AdminService/IssueCertificate"
    );
    assert_eq!(write["code"], 0);
    assert_eq!(write["profile"], "admin");
    assert!(
        write["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|n| *n == certificate.as_str())),
        "the write names the certificate it made: {write}"
    );
    assert_eq!(
        write["leaf_hash"],
        hex::encode(&receipt.leaf_hash),
        "the receipt promises exactly the write's leaf"
    );

    // The table an auditor reads names the refusal and its code.
    let table = audit_ok(&app, &format!("audit query --trace-id {trace}")).await;
    assert!(
        table.contains("UNAUTHENTICATED") && table.contains("3 entries"),
        "{table}"
    );
    let refused_only = audit_ok(
        &app,
        &format!(
            "audit query --trace-id {trace} --code UNAUTHENTICATED --agency {SHANDONG} --json"
        ),
    )
    .await;
    assert_eq!(
        audit_support::json_array(&refused_only).len(),
        1,
        "{refused_only}"
    );

    // Inclusion of the refused call, proven through the CLI (`yrd audit verify --index`).
    let index = refused_entry["index"].as_u64().expect("an index");
    let proven = audit_ok(&app, &format!("audit verify --index {index}")).await;
    assert!(proven.contains("signature verified"), "{proven}");
    assert!(
        proven.contains(&format!("inclusion    entry {index} ")) && proven.contains(": verified"),
        "{proven}"
    );
    let shown = audit_ok(&app, &format!("audit show {index}")).await;
    assert!(
        shown.contains("UNAUTHENTICATED") && shown.trim_end().ends_with("verified"),
        "{shown}"
    );

    // Consistency: the first run saves the head it trusts, a later one proves the log grew
    // from it without rewriting it.
    let dir = tempfile::tempdir().expect("a folder for the auditor's state");
    let state = dir.path().join("head.json");
    let state_arg = audit_support::path(&state);
    let first = audit_ok(&app, &format!("audit verify --state {state_arg}")).await;
    assert!(first.contains("held no tree head"), "{first}");
    let saved = VerifiedHead::load(&state)
        .expect("readable")
        .expect("saved");
    let grown = audit_support::head_covering(&app, saved.tree_size + 1).await;
    let second = audit_ok(&app, &format!("audit verify --state {state_arg}")).await;
    assert!(
        second.contains(&format!(
            "consistency  from the saved head of size {} (root {}) to size ",
            saved.tree_size, saved.root
        )) && second.contains(": verified"),
        "{second}"
    );
    let newer = VerifiedHead::load(&state)
        .expect("readable")
        .expect("saved");
    assert!(newer.tree_size >= grown.tree_size, "the state moved on");
    let from_size = audit_ok(
        &app,
        &format!("audit verify --from-size {}", saved.tree_size),
    )
    .await;
    assert!(
        from_size.contains("consistency  from the tree head size"),
        "{from_size}"
    );

    // A saved head the log does not extend (a forked or rewritten log) fails, and says why.
    let forged = VerifiedHead {
        root: Hash([7; 32]),
        ..saved.clone()
    };
    std::fs::write(&state, serde_json::to_string(&forged).expect("json")).expect("write state");
    let err = audit(&app, &format!("audit verify --state {state_arg}"))
        .await
        .expect_err("a forged saved head is not a prefix");
    assert!(
        matches!(err.failure(), Some(VerifyFailure::Consistency { old_size, .. }) if *old_size == saved.tree_size),
        "{err:?}"
    );
    assert_eq!(
        VerifiedHead::load(&state).expect("readable"),
        Some(forged),
        "a failed check keeps the head it could not prove"
    );

    // `tail` follows new entries as partners keep calling: they call until it has printed its
    // three, whenever it started following.
    let calls = async {
        let mut pace = tokio::time::interval(Duration::from_millis(50));
        loop {
            pace.tick().await;
            TokenServiceClient::new(jiangsu.clone())
                .get_jwks(traced(GetJwksRequest {}, Some(&trace)))
                .await
                .expect("a call to follow");
        }
    };
    let followed = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::select! {
            followed = audit_ok(&app, "audit tail --count 3") => followed,
            _ = calls => unreachable!("the partners call until the tail has followed"),
        }
    })
    .await;
    let followed = followed.expect("three new entries within 20 s");
    let lines: Vec<&str> = followed.lines().collect();
    assert_eq!(lines.len(), 3, "{followed}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('#') && l.contains(" trace=")),
        "{followed}"
    );
}

async fn a_receipt_is_proven_by_the_partner_on_its_own(app: TestApp) {
    let (certificate, issued) = issue_certificate(&app, None).await;
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let revoked = AdminServiceClient::new(admin.authed())
        .revoke_certificate(RevokeCertificateRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            name: certificate,
            reason: pb::RevocationReason::Superseded as i32,
            note: "receipt round trip".to_owned(),
        })
        .await
        .expect("revoke")
        .into_inner()
        .receipt
        .expect("a revocation answers with a receipt");

    // The partner's side, with nothing but the receipt, the JWKS and the auditor's reads.
    let jwks = TokenServiceClient::new(admin.channel.clone())
        .get_jwks(GetJwksRequest {})
        .await
        .expect("the JWKS is public")
        .into_inner();
    let auditor = app.session(SHANGHAI, Profile::Auditor).await;
    let log = AuditServiceClient::new(auditor.authed());
    for receipt in [&issued, &revoked] {
        let started = std::time::Instant::now();
        let key = jwks
            .keys
            .iter()
            .find(|k| k.kid == receipt.key_id)
            .expect("the receipt names a published key");
        assert_eq!(
            key.purpose,
            KeyPurpose::Receipt as i32,
            "receipts are signed by a key published for receipts"
        );
        let leaf_hash = Hash::try_from(receipt.leaf_hash.as_slice()).expect("32 bytes");
        let timestamp = receipt.timestamp.expect("a signed time");
        let delay = receipt.max_merge_delay.expect("a merge delay");
        let signed = SignedReceipt {
            leaf_hash,
            timestamp_ms: u64::try_from(
                timestamp.seconds * 1_000 + i64::from(timestamp.nanos / 1_000_000),
            )
            .expect("after 1970"),
            max_merge_delay_ms: u64::try_from(
                delay.seconds * 1_000 + i64::from(delay.nanos / 1_000_000),
            )
            .expect("positive"),
            signature: receipt.signature.clone(),
            key_id: receipt.key_id.clone(),
        };
        signed
            .verify(&key.x, &key.y)
            .expect("the receipt's signature verifies");
        let forged = SignedReceipt {
            leaf_hash: Hash([1; 32]),
            ..signed.clone()
        };
        assert!(
            forged.verify(&key.x, &key.y).is_err(),
            "a receipt for another leaf does not"
        );

        // Wait for a tree head that covers the leaf, then prove it is in there.
        let (head, proof) = wait_for("a tree head covering the receipt", || {
            let mut log = log.clone();
            async move {
                let head = log
                    .get_tree_head(GetTreeHeadRequest { tree_size: None })
                    .await
                    .ok()?
                    .into_inner()
                    .tree_head?;
                let proof = log
                    .get_inclusion_proof(GetInclusionProofRequest {
                        leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(
                            leaf_hash.as_bytes().to_vec(),
                        )),
                        tree_size: Some(head.tree_size),
                    })
                    .await;
                match proof {
                    Ok(p) => Some((head, p.into_inner().proof?)),
                    Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => None,
                    Err(s) => panic!("GetInclusionProof: {s:?}"),
                }
            }
        })
        .await;
        assert!(
            started.elapsed()
                < Duration::from_millis(signed.max_merge_delay_ms) + Duration::from_secs(1),
            "covered within the maximum merge delay"
        );
        let root = Hash::try_from(head.root_hash.as_slice()).expect("32 bytes");
        let ts = head.timestamp.expect("signed time");
        let head_ms =
            u64::try_from(ts.seconds * 1_000 + i64::from(ts.nanos / 1_000_000)).expect("ms");
        // Tree heads have their own key, published for tree heads only.
        let head_key = jwks
            .keys
            .iter()
            .find(|k| k.kid == head.key_id && k.purpose == KeyPurpose::TreeHead as i32)
            .expect("the head names a published tree-head key");
        assert_ne!(
            head_key.kid, key.kid,
            "receipts and heads have different keys"
        );
        verify_es256(
            &head_key.x,
            &head_key.y,
            &tree_head_signing_input(head.tree_size, &root, head_ms),
            &head.signature,
        )
        .expect("the tree head is signed by the tree-head key");
        let path: Vec<Hash> = proof
            .hashes
            .iter()
            .map(|h| Hash::try_from(h.as_slice()).expect("32 bytes"))
            .collect();
        verify_inclusion(&leaf_hash, proof.leaf_index, head.tree_size, &path, &root)
            .expect("the receipt's leaf is in the signed tree");
        assert!(
            verify_inclusion(
                &Hash([1; 32]),
                proof.leaf_index,
                head.tree_size,
                &path,
                &root
            )
            .is_err(),
            "the proof is for this leaf only"
        );
    }

    // The same with `yrd audit verify --receipt FILE`.
    let dir = tempfile::tempdir().expect("a folder for the receipt");
    let file = dir.path().join("receipt.json");
    let receipt = ReceiptFile::from_pb(&revoked).expect("a receipt");
    std::fs::write(&file, serde_json::to_string_pretty(&receipt).expect("json")).expect("write");
    let printed = audit_ok(
        &app,
        &format!("audit verify --receipt {}", audit_support::path(&file)),
    )
    .await;
    assert!(
        printed.contains("signature verified")
            && printed.contains("inclusion    the receipt's leaf is entry"),
        "{printed}"
    );
    let mut forged = receipt.clone();
    forged.timestamp_ms += 1;
    std::fs::write(&file, serde_json::to_string(&forged).expect("json")).expect("write");
    let err = audit(
        &app,
        &format!("audit verify --receipt {}", audit_support::path(&file)),
    )
    .await
    .expect_err("a receipt changed after signing");
    assert!(
        matches!(err.failure(), Some(VerifyFailure::ReceiptSignature { .. })),
        "{err:?}"
    );
}

async fn only_auditors_read_the_log(app: TestApp) {
    // Through the CLI with a system and an admin certificate: refused before any entry is read.
    for profile in ["system", "admin"] {
        let err = audit(
            &app,
            &format!("audit query --cert-profile {profile} --agency-cert {JIANGSU}"),
        )
        .await
        .expect_err("only auditors read the log");
        assert_eq!(
            err.rpc().map(|e| e.code()),
            Some(Code::PermissionDenied),
            "{profile}: {err:#?}"
        );
    }
    // By hand: partners may fetch proofs (hashes only, for their receipts) but no entry.
    let system = app.session(SHANDONG, Profile::System).await;
    let mut log = AuditServiceClient::new(system.authed());
    let proof = log
        .get_consistency_proof(GetConsistencyProofRequest {
            first_tree_size: 1,
            second_tree_size: None,
        })
        .await;
    assert!(
        !matches!(&proof, Err(s) if s.code() == Code::PermissionDenied),
        "a system certificate may fetch proofs: {proof:?}"
    );
    let denied = log
        .get_audit_entry(yrd_proto::v1::GetAuditEntryRequest {
            index: 0,
            include_proof: false,
            tree_size: None,
        })
        .await
        .expect_err("a system certificate cannot read an entry");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let denied = log
        .list_audit_entries(ListAuditEntriesRequest::default())
        .await
        .expect_err("a system certificate cannot read the log");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // The refusals are themselves in the log, for the auditors to see.
    let app_ref = &app;
    let refusals = wait_for("Shandong's refused log reads in the log", || async move {
        let printed = audit_ok(
            app_ref,
            &format!("audit query --agency {SHANDONG} --code PERMISSION_DENIED --json"),
        )
        .await;
        let entries = audit_support::json_array(&printed);
        (entries.len() >= 2).then_some(entries)
    })
    .await;
    assert!(
        refusals.iter().all(|e| e["method"]
            .as_str()
            .is_some_and(|m| m.starts_with("/yrd.exchange.v1.AuditService/"))),
        "{refusals:#?}"
    );

    // An auditor cannot write, even with a valid token.
    let auditor = app.session(SHANGHAI, Profile::Auditor).await;
    let refused = AdminServiceClient::new(auditor.authed())
        .list_agencies(ListAgenciesRequest::default())
        .await
        .expect_err("auditors read the log and nothing else");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
}

/// `AuditEntry.caller_agency` is the resource name `agencies/{agency}` the contract documents,
/// while the hashed leaf keeps the bare id it always had (old leaves keep verifying); the
/// filter takes either form, and refuses anything else naming the field.
async fn entries_name_their_caller_as_the_contract_does(app: TestApp) {
    let trace = new_trace();
    let shandong = app.channel(SHANDONG, Profile::System).await;
    TokenServiceClient::new(shandong)
        .issue_token(traced(IssueTokenRequest::default(), Some(&trace)))
        .await
        .expect("Shandong gets a token");

    let auditor = app.session(SHANGHAI, Profile::Auditor).await;
    let mut log = AuditServiceClient::new(auditor.authed());
    let by = |caller_agency: String| ListAuditEntriesRequest {
        caller_agency,
        trace_id: trace.clone(),
        ..ListAuditEntriesRequest::default()
    };
    let named = format!("agencies/{SHANDONG}");
    let (log_ref, by_ref, named_ref) = (&log, &by, &named);
    let entries = wait_for("Shandong's token call in the log", || async move {
        let page = log_ref
            .clone()
            .list_audit_entries(by_ref(named_ref.clone()))
            .await
            .expect("an auditor lists by resource name")
            .into_inner();
        (!page.entries.is_empty()).then_some(page.entries)
    })
    .await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let entry = &entries[0];
    assert_eq!(
        entry.caller_agency, named,
        "the contract's resource-name form"
    );
    let leaf: serde_json::Value =
        serde_json::from_slice(&entry.leaf_input).expect("the leaf input is JSON");
    assert_eq!(
        leaf["agency"], SHANDONG,
        "the hashed leaf keeps the bare id: {leaf}"
    );
    assert_eq!(
        yrd_domain::merkle::leaf_hash(&entry.leaf_input)
            .as_bytes()
            .as_slice(),
        entry.leaf_hash.as_slice(),
        "the leaf hash is still the hash of the unchanged leaf input"
    );

    let bare = log
        .list_audit_entries(by(SHANDONG.to_owned()))
        .await
        .expect("an auditor lists by bare id")
        .into_inner();
    assert_eq!(bare.entries, entries, "both forms select the same entries");

    for bad in ["agencies/370000-amr", "results/370000-AMR", "agencies/"] {
        let refused = log
            .list_audit_entries(by(bad.to_owned()))
            .await
            .expect_err("a filter that names no agency");
        assert_eq!(refused.code(), Code::InvalidArgument, "{bad}: {refused:?}");
        assert!(
            refused.message().starts_with("caller_agency: "),
            "{bad}: the refusal names the field: {}",
            refused.message()
        );
    }

    // The CLI takes the form an entry shows, and `yrd audit verify` still proves the entry.
    let printed = audit_ok(
        &app,
        &format!("audit query --agency {named} --trace-id {trace} --json"),
    )
    .await;
    let listed = audit_support::json_array(&printed);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["index"], entry.index);
    let size = entry.index + 1;
    audit_support::head_covering(&app, size).await;
    audit_ok(&app, &format!("audit verify --index {}", entry.index)).await;
}

/// Every `yrd …` line of the README's "Auditor workflow" parses, and together they show every
/// `yrd audit` subcommand.
#[test]
fn every_auditor_workflow_command_in_the_readme_parses() {
    use clap::Parser;
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = text
        .find("## Auditor workflow")
        .expect("an Auditor workflow section");
    let end = start
        + text[start..]
            .find("## Configuration")
            .expect("a section after it");
    let mut in_code = false;
    let mut shown = std::collections::BTreeSet::new();
    for line in text[start..end].lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if in_code && line.starts_with("yrd ") {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Err(e) = yrd_gateway::cli::Cli::try_parse_from(&words) {
                panic!("README command does not parse: {line}\n{e}");
            }
            shown.insert(format!("{} {}", words[1], words[2]));
        }
    }
    let expected: std::collections::BTreeSet<String> = [
        "audit export",
        "audit query",
        "audit show",
        "audit tail",
        "audit verify",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(shown, expected);
}
