//! The search for the first divergence of an export.

use super::*;

/// Runs the search against an honest log of `log` leaves, counting the proofs asked for.
fn divergence(log: &[Hash], export: &[Hash]) -> (Option<u64>, u32) {
    let store = MemoryTree::from_leaves(log);
    let mut asked = 0;
    let found = first_divergence(export, store.size(), store.root(), &mut |old, new| {
        asked += 1;
        consistency_proof(old, new, &store)
    })
    .unwrap();
    (found, asked)
}

#[test]
fn an_intact_export_is_consistent_without_asking_for_proofs() {
    for n in [0u64, 1, 2, 7, 64, 300] {
        let log = leaves(n);
        assert_eq!(divergence(&log, &log), (None, 0), "size {n}");
    }
    // Leaves exported after the tree head are not covered by it.
    let log = leaves(50);
    let store = MemoryTree::from_leaves(&log[..40]);
    let found = first_divergence(&log, 40, store.root(), &mut |_, _| unreachable!()).unwrap();
    assert_eq!(found, None);
}

#[test]
fn altering_deleting_or_reordering_names_the_first_bad_index() {
    for n in [1u64, 2, 3, 5, 8, 13, 64, 100, 257] {
        let log = leaves(n);
        for i in 0..n as usize {
            let mut altered = log.clone();
            altered[i] = leaf_hash(b"altered");
            let (found, asked) = divergence(&log, &altered);
            assert_eq!(found, Some(i as u64), "altered leaf {i} of {n}");
            assert!(asked <= n.ilog2() + 1, "{asked} proofs for {n} leaves");

            let mut deleted = log.clone();
            deleted.remove(i);
            assert_eq!(
                divergence(&log, &deleted).0,
                Some(i as u64),
                "deleted leaf {i} of {n}"
            );

            for j in [i + 1, i + 7, n as usize - 1] {
                if j > i && j < n as usize {
                    let mut swapped = log.clone();
                    swapped.swap(i, j);
                    assert_eq!(
                        divergence(&log, &swapped).0,
                        Some(i as u64),
                        "swapped {i} and {j} of {n}"
                    );
                }
            }
        }
        // An export cut short is missing the leaf at its own length.
        for len in 0..n as usize {
            assert_eq!(divergence(&log, &log[..len]).0, Some(len as u64));
        }
    }
}

#[test]
fn the_search_is_a_state_machine_and_rejects_malformed_answers() {
    let log = leaves(20);
    let store = MemoryTree::from_leaves(&log);
    let mut export = log.clone();
    export[11] = leaf_hash(b"altered");
    let mut search = check_export(&export, 20, store.root()).unwrap();
    let mut asked = Vec::new();
    let verdict = loop {
        match search {
            ExportSearch::Done(verdict) => break verdict,
            ExportSearch::NeedProof(pending) => {
                assert_eq!(pending.new_size(), 20);
                asked.push(pending.old_size());
                let proof = consistency_proof(pending.old_size(), 20, &store).unwrap();
                search = pending.answer(&proof).unwrap();
            }
        }
    };
    assert_eq!(verdict, ExportVerdict::FirstBadIndex(11));
    assert_eq!(asked, [10, 15, 12, 11]);

    // A proof of the wrong length is the log's fault and is reported, not taken as a
    // verdict on the export.
    let ExportSearch::NeedProof(pending) = check_export(&export, 20, store.root()).unwrap() else {
        panic!("expected a proof request");
    };
    assert!(matches!(
        pending.answer(&[]),
        Err(MerkleError::ProofTooShort { .. })
    ));

    // A tree head of size 0 must carry the empty root.
    assert!(matches!(
        check_export(&[], 0, h(SOME_HASH)),
        Err(MerkleError::RootMismatch { tree_size: 0, .. })
    ));
}
