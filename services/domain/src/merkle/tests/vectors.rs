//! The published RFC 6962 vectors of transparency-dev/merkle: hashes, roots, stored nodes,
//! and inclusion and consistency proofs with the corruptions that must fail.

use super::*;

#[test]
fn hashing_matches_the_published_leaf_and_empty_hashes() {
    assert_eq!(empty_root(), h(ROOT_HASHES[0]));
    assert_eq!(vector_leaves(), hashes(NODE_HASHES[0]));
    assert_eq!(
        node_hash(&vector_leaves()[0], &vector_leaves()[1]),
        h(NODE_HASHES[1][0])
    );
}

#[test]
fn roots_of_sizes_0_to_8_match_the_vectors_by_every_route() {
    let leaves = vector_leaves();
    let full = MemoryTree::from_leaves(&leaves);
    let mut frontier = Frontier::new();
    for size in 0..=8usize {
        let want = h(ROOT_HASHES[size]);
        assert_eq!(
            root_from_leaves(&leaves[..size]),
            want,
            "reference, size {size}"
        );
        assert_eq!(frontier.root(), want, "frontier, size {size}");
        assert_eq!(
            root_at(size as u64, &full).unwrap(),
            want,
            "stored, size {size}"
        );
        let compact: Vec<Hash> = COMPACT_TREES[size]
            .iter()
            .map(|&(l, k)| h(NODE_HASHES[l][k]))
            .collect();
        assert_eq!(
            frontier.roots(),
            compact.as_slice(),
            "compact tree, size {size}"
        );
        if size < 8 {
            frontier.append(leaves[size]);
        }
    }
}

#[test]
fn stored_nodes_match_the_published_node_hashes() {
    let store = frontier_store(&vector_leaves());
    assert_eq!(store.len(), 8 + 4 + 2 + 1);
    for (level, row) in NODE_HASHES.iter().enumerate() {
        for (index, hex) in row.iter().enumerate() {
            assert_eq!(store.node(level as u32, index as u64), Some(h(hex)));
        }
    }
}

/// A corrupted inclusion check: what was changed, index, size, root, leaf, proof.
type InclusionProbe = (&'static str, u64, u64, Hash, Hash, Vec<Hash>);

/// The probes of `corruptInclusionProof` in verify_test.go; each must fail.
fn inclusion_probes(
    index: u64,
    size: u64,
    proof: &[Hash],
    root: Hash,
    leaf: Hash,
) -> Vec<InclusionProbe> {
    let some = h(SOME_HASH);
    let mut probes = vec![
        (
            "index - 1",
            index.wrapping_sub(1),
            size,
            root,
            leaf,
            proof.to_vec(),
        ),
        ("index + 1", index + 1, size, root, leaf, proof.to_vec()),
        ("index ^ 2", index ^ 2, size, root, leaf, proof.to_vec()),
        ("size * 2", index, size * 2, root, leaf, proof.to_vec()),
        ("size / 2", index, size / 2, root, leaf, proof.to_vec()),
        (
            "wrong leaf",
            index,
            size,
            root,
            leaf_hash(b"WrongLeaf"),
            proof.to_vec(),
        ),
        (
            "empty root",
            index,
            size,
            empty_root(),
            leaf,
            proof.to_vec(),
        ),
        ("random root", index, size, some, leaf, proof.to_vec()),
        (
            "trailing root",
            index,
            size,
            root,
            leaf,
            [proof, &[root]].concat(),
        ),
        (
            "preceding root",
            index,
            size,
            root,
            leaf,
            [&[root], proof].concat(),
        ),
    ];
    for i in 0..proof.len() {
        let mut bad = proof.to_vec();
        bad[i] = flip(&bad[i]);
        probes.push(("flipped bit", index, size, root, leaf, bad));
    }
    if let Some((_, rest)) = proof.split_last() {
        probes.push(("removed component", index, size, root, leaf, rest.to_vec()));
    }
    if proof.len() > 1 {
        let bad = [&[proof[0], some], &proof[1..]].concat();
        probes.push(("inserted component", index, size, root, leaf, bad));
    }
    probes
}

#[test]
fn inclusion_proofs_match_the_vectors_and_corruptions_fail() {
    let leaves = vector_leaves();
    let store = frontier_store(&leaves);
    for (index, size, want) in INCLUSION_PROOFS {
        let want = hashes(want);
        let root = h(ROOT_HASHES[size as usize]);
        let leaf = leaves[index as usize];
        assert_eq!(inclusion_proof(index, size, &store).unwrap(), want);
        verify_inclusion(&leaf, index, size, &want, &root).unwrap();
        for (what, i, s, r, l, p) in inclusion_probes(index, size, &want, root, leaf) {
            assert!(
                verify_inclusion(&l, i, s, &p, &r).is_err(),
                "probe '{what}' verified for leaf {index} of {size}"
            );
        }
    }
}

#[test]
fn consistency_proofs_match_the_vectors_and_corruptions_fail() {
    let store = frontier_store(&vector_leaves());
    let some = h(SOME_HASH);
    for (old, new, want) in CONSISTENCY_PROOFS {
        let want = hashes(want);
        let (r1, r2) = (h(ROOT_HASHES[old as usize]), h(ROOT_HASHES[new as usize]));
        assert_eq!(consistency_proof(old, new, &store).unwrap(), want);
        verify_consistency(old, new, &r1, &r2, &want).unwrap();
        if want.is_empty() {
            continue;
        }
        // The probes of `corruptConsistencyProof`.
        let p = want.clone();
        let mut probes = vec![
            ("old - 1", old - 1, new, r1, r2, p.clone()),
            ("old + 1", old + 1, new, r1, r2, p.clone()),
            ("old ^ 2", old ^ 2, new, r1, r2, p.clone()),
            ("new * 2", old, new * 2, r1, r2, p.clone()),
            ("new / 2", old, new / 2, r1, r2, p.clone()),
            ("wrong old root", old, new, some, r2, p.clone()),
            ("wrong new root", old, new, r1, some, p.clone()),
            ("swapped roots", old, new, r2, r1, p.clone()),
            ("empty proof", old, new, r1, r2, Vec::new()),
            (
                "trailing old root",
                old,
                new,
                r1,
                r2,
                [&p[..], &[r1]].concat(),
            ),
            (
                "trailing new root",
                old,
                new,
                r1,
                r2,
                [&p[..], &[r2]].concat(),
            ),
            (
                "preceding old root",
                old,
                new,
                r1,
                r2,
                [&[r1], &p[..]].concat(),
            ),
            (
                "preceding new root",
                old,
                new,
                r1,
                r2,
                [&[r2], &p[..]].concat(),
            ),
            (
                "preceding p[0]",
                old,
                new,
                r1,
                r2,
                [&[p[0]], &p[..]].concat(),
            ),
            ("truncated", old, new, r1, r2, p[..p.len() - 1].to_vec()),
        ];
        for i in 0..p.len() {
            let mut bad = p.clone();
            bad[i] = flip(&bad[i]);
            probes.push(("flipped bit", old, new, r1, r2, bad));
        }
        for (what, o, n, a, b, proof) in probes {
            assert!(
                verify_consistency(o, n, &a, &b, &proof).is_err(),
                "probe '{what}' verified for {old} -> {new}"
            );
        }
    }
}

#[test]
fn trivial_consistency_cases_follow_the_go_table() {
    let (a, b) = (h(SOME_HASH), empty_root());
    // Equal sizes: equal roots and an empty proof, nothing else.
    verify_consistency(1, 1, &a, &a, &[]).unwrap();
    assert_eq!(
        verify_consistency(1, 1, &a, &b, &[]),
        Err(MerkleError::SameSizeRootsDiffer {
            tree_size: 1,
            old_root: a,
            new_root: b
        })
    );
    assert_eq!(
        verify_consistency(1, 1, &b, &b, &[b]),
        Err(MerkleError::ProofTooLong {
            expected: 0,
            actual: 1
        })
    );
    // From the empty tree: an empty proof, and the old root must be the empty root.
    verify_consistency(0, 5, &b, &a, &[]).unwrap();
    verify_consistency(0, 0, &b, &b, &[]).unwrap();
    assert!(matches!(
        verify_consistency(0, 5, &a, &a, &[]),
        Err(MerkleError::RootMismatch { tree_size: 0, .. })
    ));
    assert!(verify_consistency(0, 1, &b, &b, &[b]).is_err());
    // Time travel.
    assert_eq!(
        verify_consistency(2, 1, &a, &b, &[]),
        Err(MerkleError::OldLargerThanNew {
            old_size: 2,
            new_size: 1
        })
    );
    // A non-trivial pair with an empty proof.
    assert_eq!(
        verify_consistency(1, 2, &a, &b, &[]),
        Err(MerkleError::ProofTooShort {
            expected: 1,
            actual: 0
        })
    );
}
