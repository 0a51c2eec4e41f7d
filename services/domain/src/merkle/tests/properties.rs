//! Property-style loops against the RFC's recursive definitions, and the cost of proofs in a
//! large log.

use super::*;

/// Every size up to 64, then a spread of sizes up to 300 around powers of two.
fn sizes() -> Vec<u64> {
    let mut sizes: Vec<u64> = (1..=64).collect();
    sizes.extend([
        65, 96, 100, 127, 128, 129, 170, 191, 200, 255, 256, 257, 299, 300,
    ]);
    sizes
}

#[test]
fn every_inclusion_proof_is_the_rfc_path_verifies_and_tampering_fails() {
    let all = leaves(300);
    let store = frontier_store(&all);
    for size in sizes() {
        let d = &all[..size as usize];
        let root = root_from_leaves(d);
        for index in 0..size {
            let leaf = d[index as usize];
            let counted = CountingSource::new(&store);
            let proof = inclusion_proof(index, size, &counted).unwrap();
            let needed = nodes_needed_for_inclusion(index, size).unwrap();
            assert_eq!(counted.reads(), needed.len() as u64);
            assert_eq!(proof, ref_path(index as usize, d), "{index} of {size}");
            verify_inclusion(&leaf, index, size, &proof, &root).unwrap();

            assert!(verify_inclusion(&flip(&leaf), index, size, &proof, &root).is_err());
            assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&root)).is_err());
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i] = flip(&bad[i]);
                assert!(matches!(
                    verify_inclusion(&leaf, index, size, &bad, &root),
                    Err(MerkleError::RootMismatch { .. })
                ));
            }
            if index + 1 < size {
                // The neighbour's leaf does not pass for this one.
                let other = d[index as usize + 1];
                assert!(verify_inclusion(&other, index, size, &proof, &root).is_err());
            }
            if let Some((_, short)) = proof.split_last() {
                assert!(matches!(
                    verify_inclusion(&leaf, index, size, short, &root),
                    Err(MerkleError::ProofTooShort { .. })
                ));
            }
            let long = [&proof[..], &[root]].concat();
            assert!(matches!(
                verify_inclusion(&leaf, index, size, &long, &root),
                Err(MerkleError::ProofTooLong { .. })
            ));
        }
    }
}

#[test]
fn every_consistency_proof_is_the_rfc_subproof_verifies_and_tampering_fails() {
    let all = leaves(300);
    let store = frontier_store(&all);
    let roots: Vec<Hash> = (0..=300).map(|n| root_from_leaves(&all[..n])).collect();
    for new in sizes() {
        let d = &all[..new as usize];
        let new_root = roots[new as usize];
        for old in 0..=new {
            let old_root = roots[old as usize];
            let counted = CountingSource::new(&store);
            let proof = consistency_proof(old, new, &counted).unwrap();
            let needed = nodes_needed_for_consistency(old, new).unwrap();
            assert_eq!(counted.reads(), needed.len() as u64);
            if old == 0 || old == new {
                assert!(proof.is_empty());
            } else {
                assert_eq!(proof, ref_subproof(old as usize, d, true), "{old} -> {new}");
            }
            verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();

            if old == 0 {
                continue;
            }
            assert!(verify_consistency(old, new, &flip(&old_root), &new_root, &proof).is_err());
            assert!(verify_consistency(old, new, &old_root, &flip(&new_root), &proof).is_err());
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i] = flip(&bad[i]);
                assert!(verify_consistency(old, new, &old_root, &new_root, &bad).is_err());
            }
            if old < new {
                // The old tree head with its last leaf swapped for another is not a prefix.
                let mut forged = d[..old as usize].to_vec();
                forged[old as usize - 1] = leaf_hash(b"forged");
                let forged_root = root_from_leaves(&forged);
                assert!(matches!(
                    verify_consistency(old, new, &forged_root, &new_root, &proof),
                    Err(MerkleError::RootMismatch { .. })
                ));
            }
        }
    }
}

#[test]
fn proofs_of_a_million_leaves_read_o_log_n_nodes() {
    const N: u64 = 1_000_000;
    let mut tree = MemoryTree::new();
    for i in 0..N {
        tree.push(leaf_hash(&i.to_be_bytes()));
    }
    let root = tree.root();
    // 2·log2(n) + 2, with log2 rounded down: 40 reads.
    let bound = 2 * u64::from(N.ilog2()) + 2;
    let mut rng = Rng(42);
    let mut indices: Vec<u64> = (0..300).map(|_| rng.below(N)).collect();
    indices.extend([0, 1, N / 2, 524_287, 524_288, N - 2, N - 1]);
    for index in indices {
        let counted = CountingSource::new(&tree);
        let proof = inclusion_proof(index, N, &counted).unwrap();
        assert!(
            counted.reads() <= bound,
            "inclusion of {index}: {} reads",
            counted.reads()
        );
        let leaf = tree.node(0, index).unwrap();
        verify_inclusion(&leaf, index, N, &proof, &root).unwrap();
    }
    let mut olds: Vec<u64> = (0..300).map(|_| 1 + rng.below(N - 1)).collect();
    olds.extend([1, 2, 3, 524_287, 524_288, 524_289, N - 1]);
    for old in olds {
        let counted = CountingSource::new(&tree);
        let proof = consistency_proof(old, N, &counted).unwrap();
        assert!(
            counted.reads() <= bound,
            "consistency from {old}: {} reads",
            counted.reads()
        );
        let old_root = root_at(old, &tree).unwrap();
        verify_consistency(old, N, &old_root, &root, &proof).unwrap();
    }
    // And from an older tree head to a newer one, both inside the log.
    let counted = CountingSource::new(&tree);
    let proof = consistency_proof(333_333, 777_777, &counted).unwrap();
    assert!(counted.reads() <= 2 * u64::from(777_777u64.ilog2()) + 2);
    let (r1, r2) = (
        root_at(333_333, &tree).unwrap(),
        root_at(777_777, &tree).unwrap(),
    );
    verify_consistency(333_333, 777_777, &r1, &r2, &proof).unwrap();
}
