//! Bad arguments named, range decomposition, and the hash type's round trips.

use super::*;

#[test]
fn bad_arguments_are_named() {
    let store = frontier_store(&leaves(4));
    let root = h(SOME_HASH);
    assert_eq!(inclusion_proof(0, 0, &store), Err(MerkleError::EmptyTree));
    assert_eq!(
        inclusion_proof(4, 4, &store),
        Err(MerkleError::IndexOutOfRange {
            index: 4,
            tree_size: 4
        })
    );
    assert_eq!(
        verify_inclusion(&root, 0, 0, &[], &root),
        Err(MerkleError::EmptyTree)
    );
    assert_eq!(
        verify_inclusion(&root, 2, 1, &[], &root),
        Err(MerkleError::IndexOutOfRange {
            index: 2,
            tree_size: 1
        })
    );
    assert_eq!(
        consistency_proof(5, 4, &store),
        Err(MerkleError::OldLargerThanNew {
            old_size: 5,
            new_size: 4
        })
    );
    assert_eq!(
        nodes_needed_for_consistency(5, 4),
        Err(MerkleError::OldLargerThanNew {
            old_size: 5,
            new_size: 4
        })
    );
    // Asking beyond what the store holds names the first missing node.
    assert_eq!(
        inclusion_proof(0, 5, &store),
        Err(MerkleError::MissingNode { level: 0, index: 4 })
    );
    assert_eq!(
        MerkleError::MissingNode { level: 3, index: 7 }.to_string(),
        "the node source has no complete subtree at level 3, index 7"
    );
}

#[test]
fn ranges_decompose_into_aligned_subtrees_or_are_refused() {
    let id = |level, index| NodeId { level, index };
    assert_eq!(
        decompose_range(0, 7).unwrap(),
        [id(2, 0), id(1, 2), id(0, 6)]
    );
    assert_eq!(decompose_range(8, 13).unwrap(), [id(2, 2), id(0, 12)]);
    assert_eq!(decompose_range(16, 32).unwrap(), [id(4, 1)]);
    for (start, end) in [(3, 3), (5, 4), (2, 6), (1, 3)] {
        assert_eq!(
            decompose_range(start, end),
            Err(MerkleError::UnalignedRange { start, end })
        );
    }
    let all = leaves(13);
    let tree = MemoryTree::from_leaves(&all);
    assert_eq!(
        subtree_hash(8, 13, &tree).unwrap(),
        root_from_leaves(&all[8..13])
    );
}

// --- Hash type ---

#[test]
fn hashes_round_trip_through_hex_bytes_and_json() {
    let hash = h(ROOT_HASHES[3]);
    assert_eq!(hash.to_string(), ROOT_HASHES[3]);
    assert_eq!(ROOT_HASHES[3].to_uppercase().parse::<Hash>().unwrap(), hash);
    assert_eq!(Hash::try_from(&hash.as_bytes()[..]).unwrap(), hash);
    let json = serde_json::to_string(&hash).unwrap();
    assert_eq!(json, format!("\"{}\"", ROOT_HASHES[3]));
    assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), hash);

    assert_eq!(
        "abc".parse::<Hash>(),
        Err(MerkleError::HashHexLength { actual: 3 })
    );
    let mut bad = ROOT_HASHES[3].to_string();
    bad.replace_range(5..6, "g");
    assert_eq!(
        bad.parse::<Hash>(),
        Err(MerkleError::HashHexDigit { position: 5 })
    );
    assert_eq!(
        Hash::try_from(&[0u8; 31][..]),
        Err(MerkleError::HashByteLength { actual: 31 })
    );
    assert!(serde_json::from_str::<Hash>("\"00\"").is_err());
}
