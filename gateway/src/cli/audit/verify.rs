//! `yrd audit verify`: the checks an auditor runs without taking the server's word.
//!
//! The latest signed tree head is always checked against the published log key; each option
//! adds a check against it — consistency from an earlier head (`--from-size`, or the head kept
//! in `--state`, which then moves on), inclusion of one leaf (`--index`, `--leaf-hash`,
//! `--receipt`), or a whole exported file (`--file`), offline when the root is given. The
//! first failure ends the command with [`VerifyFailure`], after what passed was printed.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tonic::Code;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_domain::merkle::{
    ExportSearch, ExportVerdict, Hash, MerkleError, check_export, verify_consistency,
    verify_inclusion,
};
use yrd_proto::v1::{self as pb, GetAuditEntryRequest, GetInclusionProofRequest};

use crate::cli::audit::check::{ExportFile, FileSummary, ReceiptFile};
use crate::cli::audit::command::VerifyArgs;
use crate::cli::audit::entry::{EntryView, micros_rfc3339};
use crate::cli::audit::error::AuditCliError;
use crate::cli::audit::keys::LogKeys;
use crate::cli::audit::read::check_entry_inclusion;
use crate::cli::audit::session::{Auditor, hashes, missing, root_of, same_head};
use crate::cli::audit::verdict::{VerifiedHead, VerifyFailure};
use yrd_client::RpcError;

pub(crate) async fn verify(
    args: VerifyArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditCliError> {
    let offline_file = args.file.is_some() && args.root.is_some();
    let needs_server = !offline_file
        || args.from_size.is_some()
        || args.state.is_some()
        || args.index.is_some()
        || args.leaf_hash.is_some()
        || args.receipt.is_some();
    if !needs_server {
        return verify_file_offline(&args, out);
    }

    let mut auditor = Auditor::open(&args.connect).await?;
    let keys = auditor.log_keys().await?;
    let head = auditor.verified_latest(&keys).await?;
    writeln!(
        out,
        "tree head    {}: signature verified (KEY_PURPOSE_TREE_HEAD, inside its window)",
        head.describe()
    )?;

    // Consistency from an earlier head.
    let saved = match &args.state {
        Some(path) => VerifiedHead::load(path)?,
        None => None,
    };
    if let Some(old) = &saved {
        prove_consistency_from_saved(&mut auditor, old, &head, out).await?;
    } else if let Some(size) = args.from_size {
        prove_consistency_from_size(&mut auditor, &keys, size, &head, out).await?;
    }
    if let Some(path) = &args.state {
        if saved.is_none() {
            writeln!(
                out,
                "state        {} held no tree head: trusting this one from now on",
                path.display()
            )?;
        }
        save_head(path, &head)?;
        writeln!(
            out,
            "state        saved the tree head of size {} to {}",
            head.tree_size,
            path.display()
        )?;
    }

    // Inclusion of one leaf.
    if let Some(index) = args.index {
        prove_index(&mut auditor, index, &head, out).await?;
    }
    if let Some(leaf) = args.leaf_hash {
        let index = prove_leaf_hash(&mut auditor, leaf, &head).await?;
        writeln!(
            out,
            "inclusion    leaf {index} (hash {leaf}) in the tree of size {}: verified",
            head.tree_size
        )?;
    }
    if let Some(path) = &args.receipt {
        prove_receipt(&mut auditor, &keys, path, &head, out).await?;
    }

    // A whole exported file.
    if let (Some(path), Some(size)) = (&args.file, args.tree_size) {
        let file = ExportFile::read(path)?;
        let file_head = match args.root {
            Some(root) => given_head(size, root),
            None if size == head.tree_size => head.clone(),
            None => keys.verify_tree_head(&auditor.tree_head(Some(size)).await?)?,
        };
        if args.root.is_some() {
            report_file(out, &file, &file_head, file.check_offline(&file_head)?)?;
        } else {
            let summary = verify_file_online(&mut auditor, &file, &file_head).await?;
            report_file(out, &file, &file_head, summary)?;
        }
    }
    Ok(())
}

fn given_head(tree_size: u64, root: Hash) -> VerifiedHead {
    VerifiedHead {
        tree_size,
        root,
        timestamp_ms: 0,
        key_id: String::new(),
    }
}

fn verify_file_offline(
    args: &VerifyArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditCliError> {
    let (Some(path), Some(size), Some(root)) = (&args.file, args.tree_size, args.root) else {
        return Ok(());
    };
    let file = ExportFile::read(path)?;
    let head = given_head(size, root);
    let summary = file.check_offline(&head)?;
    report_file(out, &file, &head, summary)?;
    Ok(())
}

fn report_file(
    out: &mut (dyn Write + Send),
    file: &ExportFile,
    head: &VerifiedHead,
    summary: FileSummary,
) -> io::Result<()> {
    writeln!(
        out,
        "file         {}: {} entries, the first {} re-hashed and matching the root of the tree \
         head {}; every line matches its leaf input: verified",
        file.path.display(),
        summary.entries,
        summary.tree_size,
        head.describe()
    )
}

/// Checks the file against `head`; on a mismatch, finds the first bad index with the
/// server's consistency proofs.
pub(crate) async fn verify_file_online(
    auditor: &mut Auditor,
    file: &ExportFile,
    head: &VerifiedHead,
) -> Result<FileSummary, AuditCliError> {
    const METHOD: &str = "AuditService.GetConsistencyProof";
    let leaves = file.leaves();
    let first_problem = file.first_line_problem();
    let fail = |old_size: u64, source: MerkleError| VerifyFailure::Consistency {
        old_size,
        new_size: head.tree_size,
        source: Box::new(source),
    };
    let mut search = check_export(&leaves, head.tree_size, head.root).map_err(|e| fail(0, e))?;
    loop {
        match search {
            ExportSearch::Done(ExportVerdict::Consistent) => {
                return Ok(file.summary_or_bad_line(head, first_problem)?);
            }
            ExportSearch::Done(ExportVerdict::FirstBadIndex(index)) => {
                return Err(VerifyFailure::FirstBadIndex {
                    file: file.path.clone(),
                    index,
                    tree_size: head.tree_size,
                    first_line_problem: first_problem.map(|(i, _, p)| Box::new((i, p))),
                }
                .into());
            }
            ExportSearch::NeedProof(pending) => {
                let (old, new) = (pending.old_size(), pending.new_size());
                let (response, proof) = auditor.consistency(old, new).await?;
                same_head(head, root_of(METHOD, response.second_tree_head.as_ref())?)?;
                search = pending.answer(&proof).map_err(|e| fail(old, e))?;
            }
        }
    }
}

pub(crate) async fn prove_consistency_from_saved(
    auditor: &mut Auditor,
    old: &VerifiedHead,
    new: &VerifiedHead,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditCliError> {
    const METHOD: &str = "AuditService.GetConsistencyProof";
    let fail = |source| VerifyFailure::Consistency {
        old_size: old.tree_size,
        new_size: new.tree_size,
        source: Box::new(source),
    };
    let proof = if old.tree_size > new.tree_size {
        // The log shrank (or the server shows an older head): no proof can mend that.
        return Err(fail(MerkleError::OldLargerThanNew {
            old_size: old.tree_size,
            new_size: new.tree_size,
        })
        .into());
    } else if old.tree_size == new.tree_size || old.tree_size == 0 {
        Vec::new()
    } else {
        let (response, proof) = auditor.consistency(old.tree_size, new.tree_size).await?;
        same_head(new, root_of(METHOD, response.second_tree_head.as_ref())?)?;
        proof
    };
    verify_consistency(old.tree_size, new.tree_size, &old.root, &new.root, &proof).map_err(fail)?;
    writeln!(
        out,
        "consistency  from the saved head of size {} (root {}) to size {}: verified",
        old.tree_size, old.root, new.tree_size
    )?;
    Ok(())
}

async fn prove_consistency_from_size(
    auditor: &mut Auditor,
    keys: &LogKeys,
    size: u64,
    new: &VerifiedHead,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditCliError> {
    const METHOD: &str = "AuditService.GetConsistencyProof";
    let fail = |source| VerifyFailure::Consistency {
        old_size: size,
        new_size: new.tree_size,
        source: Box::new(source),
    };
    if size > new.tree_size {
        return Err(fail(MerkleError::OldLargerThanNew {
            old_size: size,
            new_size: new.tree_size,
        })
        .into());
    }
    let (response, proof) = auditor.consistency(size, new.tree_size).await?;
    same_head(new, root_of(METHOD, response.second_tree_head.as_ref())?)?;
    let old = match &response.first_tree_head {
        Some(sth) if sth.tree_size == size => keys.verify_tree_head(sth)?,
        _ => return Err(AuditCliError::NoHeadAt(size)),
    };
    verify_consistency(size, new.tree_size, &old.root, &new.root, &proof).map_err(fail)?;
    writeln!(
        out,
        "consistency  from the tree head {} to size {}: verified",
        old.describe(),
        new.tree_size
    )?;
    Ok(())
}

/// Writes the head to the state file, through a temporary file so a crash never leaves half
/// a head behind.
fn save_head(path: &Path, head: &VerifiedHead) -> Result<(), AuditCliError> {
    let write_error = |source| AuditCliError::Write {
        path: path.to_owned(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let mut text = serde_json::to_string_pretty(head)?;
    text.push('\n');
    std::fs::write(&temporary, text).map_err(write_error)?;
    std::fs::rename(&temporary, path).map_err(write_error)
}

async fn prove_index(
    auditor: &mut Auditor,
    index: u64,
    head: &VerifiedHead,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditCliError> {
    const METHOD: &str = "AuditService.GetAuditEntry";
    let response = auditor
        .audit
        .get_audit_entry(GetAuditEntryRequest {
            index,
            include_proof: true,
            tree_size: Some(head.tree_size),
        })
        .await
        .map_err(|s| RpcError::new(METHOD, s))?
        .into_inner();
    same_head(head, root_of(METHOD, response.tree_head.as_ref())?)?;
    let entry = EntryView::from_pb(
        response
            .entry
            .as_ref()
            .ok_or_else(|| missing(METHOD, "entry"))?,
    );
    let proof = response
        .proof
        .as_ref()
        .ok_or_else(|| missing(METHOD, "proof"))?;
    let path = hashes(METHOD, &proof.hashes)?;
    check_entry_inclusion(&entry, index, head, &path)?;
    writeln!(
        out,
        "inclusion    entry {index} (leaf hash {}, re-hashed here) in the tree of size {}: verified",
        entry.computed_hash(),
        head.tree_size
    )?;
    Ok(())
}

/// Proves the leaf with `leaf` hash is in `head`; answers its index.
async fn prove_leaf_hash(
    auditor: &mut Auditor,
    leaf: Hash,
    head: &VerifiedHead,
) -> Result<u64, AuditCliError> {
    const METHOD: &str = "AuditService.GetInclusionProof";
    let response = auditor
        .audit
        .get_inclusion_proof(GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(
                leaf.as_bytes().to_vec(),
            )),
            tree_size: Some(head.tree_size),
        })
        .await
        .map_err(|s| RpcError::new(METHOD, s))?
        .into_inner();
    same_head(head, root_of(METHOD, response.tree_head.as_ref())?)?;
    let proof = response
        .proof
        .as_ref()
        .ok_or_else(|| missing(METHOD, "proof"))?;
    let path = hashes(METHOD, &proof.hashes)?;
    verify_inclusion(&leaf, proof.leaf_index, head.tree_size, &path, &head.root).map_err(
        |source| VerifyFailure::Inclusion {
            index: proof.leaf_index,
            leaf_hash: leaf,
            tree_size: head.tree_size,
            source: Box::new(source),
        },
    )?;
    Ok(proof.leaf_index)
}

async fn prove_receipt(
    auditor: &mut Auditor,
    keys: &LogKeys,
    path: &Path,
    head: &VerifiedHead,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditCliError> {
    let file = ReceiptFile::load(path)?;
    let receipt = file.signed().map_err(|source| AuditCliError::Receipt {
        path: path.to_owned(),
        source,
    })?;
    keys.verify_receipt(&receipt)?;
    let promised_ms = receipt
        .timestamp_ms
        .saturating_add(receipt.max_merge_delay_ms);
    let promised_by = i64::try_from(promised_ms)
        .map(|ms| micros_rfc3339(ms.saturating_mul(1_000)))
        .unwrap_or_default();
    writeln!(
        out,
        "receipt      leaf {} signed by key {} (KEY_PURPOSE_RECEIPT, inside its window), promised in a tree head by {promised_by}: signature verified",
        receipt.leaf_hash, receipt.key_id
    )?;
    match prove_leaf_hash(auditor, receipt.leaf_hash, head).await {
        Ok(index) => {
            writeln!(
                out,
                "inclusion    the receipt's leaf is entry {index} of the tree of size {}: verified",
                head.tree_size
            )?;
            Ok(())
        }
        Err(AuditCliError::Rpc(e))
            if matches!(e.code(), Code::NotFound | Code::FailedPrecondition) =>
        {
            let now_ms =
                u64::try_from(SystemClock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            Err(VerifyFailure::ReceiptNotCovered {
                leaf_hash: receipt.leaf_hash,
                tree_size: head.tree_size,
                promised_by,
                overdue: now_ms > promised_ms,
            }
            .into())
        }
        Err(other) => Err(other),
    }
}
