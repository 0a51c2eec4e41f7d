//! Tests of the Merkle module: the published RFC 6962 vectors of transparency-dev/merkle,
//! exhaustive checks against the RFC's recursive definitions, and the export search.

use std::collections::HashMap;

use super::*;

// -----------------------------------------------------------------------------------------
// Published vectors. Source: github.com/transparency-dev/merkle — `testonly/constants.go`
// (LeafInputs, NodeHashes, RootHashes, CompactTrees, EmptyRootHash) and
// `proof/verify_test.go` (inclusionProofs, consistencyProofs, and the corruption probes
// of corruptInclusionProof / corruptConsistencyProof). These are the RFC 6962 reference
// vectors also used by certificate-transparency-go.
// -----------------------------------------------------------------------------------------

/// `LeafInputs()`, hex.
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `NodeHashes()`: `[level][index]` of every complete subtree of the 8-leaf tree.
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// `RootHashes()`: the root of the tree of size `i`, `i` in 0..=8.
const ROOT_HASHES: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `CompactTrees()`: the frontier of each size as `(level, index)` into `NODE_HASHES`.
const COMPACT_TREES: [&[(usize, usize)]; 9] = [
    &[],
    &[(0, 0)],
    &[(1, 0)],
    &[(1, 0), (0, 2)],
    &[(2, 0)],
    &[(2, 0), (0, 4)],
    &[(2, 0), (1, 2)],
    &[(2, 0), (1, 2), (0, 6)],
    &[(3, 0)],
];

/// `inclusionProofs` (the Go table numbers leaves from 1; here they are 0-based indices):
/// `(index, tree_size, proof)`.
const INCLUSION_PROOFS: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// `consistencyProofs`: `(old_size, new_size, proof)`.
const CONSISTENCY_PROOFS: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// `sha256SomeHash` of verify_test.go: a hash that is nobody's root.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

fn h(hex: &str) -> Hash {
    hex.parse().unwrap()
}

fn hashes(hexes: &[&str]) -> Vec<Hash> {
    hexes.iter().map(|x| h(x)).collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn vector_leaves() -> Vec<Hash> {
    LEAF_INPUTS.iter().map(|x| leaf_hash(&unhex(x))).collect()
}

/// A log of `n` leaves with distinct, deterministic contents.
fn leaves(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

/// The node store as the sequencer would fill it: every write of every append, in a map.
fn frontier_store(leaves: &[Hash]) -> HashMap<NodeId, Hash> {
    let mut frontier = Frontier::new();
    let mut store = HashMap::new();
    for leaf in leaves {
        for write in frontier.append(*leaf) {
            assert!(
                store.insert(write.id(), write.hash).is_none(),
                "node {:?} written twice",
                write.id()
            );
        }
    }
    store
}

/// splitmix64: a deterministic PRNG for sampling.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn flip(hash: &Hash) -> Hash {
    let mut bytes = hash.0;
    bytes[0] ^= 8;
    Hash(bytes)
}

// --- Reference definitions straight from RFC 9162 §2.1.3.1 and §2.1.4.1, over leaves. ---

fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        return Vec::new();
    }
    let k = split_point(n as u64) as usize;
    if m < k {
        let mut p = ref_path(m, &d[..k]);
        p.push(root_from_leaves(&d[k..]));
        p
    } else {
        let mut p = ref_path(m - k, &d[k..]);
        p.push(root_from_leaves(&d[..k]));
        p
    }
}

fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b {
            Vec::new()
        } else {
            vec![root_from_leaves(d)]
        };
    }
    let k = split_point(n as u64) as usize;
    if m <= k {
        let mut p = ref_subproof(m, &d[..k], b);
        p.push(root_from_leaves(&d[k..]));
        p
    } else {
        let mut p = ref_subproof(m - k, &d[k..], false);
        p.push(root_from_leaves(&d[..k]));
        p
    }
}

// --- Vectors ---

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

// --- Appending ---

#[test]
fn append_writes_exactly_the_newly_completed_subtrees() {
    let leaves = leaves(300);
    let mut frontier = Frontier::new();
    for (i, leaf) in leaves.iter().enumerate() {
        let size = i as u64 + 1;
        let writes = frontier.append(*leaf);
        // A node (l, k) is completed by the append that makes the size (k + 1)·2^l.
        let mut want = Vec::new();
        for level in 0..=size.trailing_zeros() {
            let index = (size >> level) - 1;
            let start = (index << level) as usize;
            let end = ((index + 1) << level) as usize;
            want.push(NodeWrite {
                level,
                index,
                hash: root_from_leaves(&leaves[start..end]),
            });
        }
        assert_eq!(writes, want, "append of leaf {i}");
        assert_eq!(frontier.size(), size);
        assert_eq!(frontier.roots().len(), size.count_ones() as usize);
        assert_eq!(frontier.root(), root_from_leaves(&leaves[..=i]));
    }
}

#[test]
fn frontier_rebuilt_from_stored_nodes_equals_the_live_one() {
    let leaves = leaves(300);
    let store = frontier_store(&leaves);
    let mut live = Frontier::new();
    for size in 0..=300u64 {
        let rebuilt = Frontier::from_nodes(size, &store).unwrap();
        assert_eq!(rebuilt, live, "size {size}");
        let counted = CountingSource::new(&store);
        Frontier::from_nodes(size, &counted).unwrap();
        assert_eq!(counted.reads(), u64::from(size.count_ones()));
        if size < 300 {
            live.append(leaves[size as usize]);
        }
    }
    // Appending to a rebuilt frontier continues the same tree.
    let mut rebuilt = Frontier::from_nodes(100, &store).unwrap();
    for leaf in &leaves[100..] {
        rebuilt.append(*leaf);
    }
    assert_eq!(rebuilt.root(), root_from_leaves(&leaves));
}

#[test]
fn rebuilding_from_a_store_missing_a_node_names_it() {
    let mut store = frontier_store(&leaves(6));
    store.remove(&NodeId { level: 1, index: 2 });
    assert_eq!(
        Frontier::from_nodes(6, &store),
        Err(MerkleError::MissingNode { level: 1, index: 2 })
    );
    assert_eq!(
        inclusion_proof(0, 6, &store),
        Err(MerkleError::MissingNode { level: 1, index: 2 })
    );
    assert_eq!(
        consistency_proof(3, 6, &store),
        Err(MerkleError::MissingNode { level: 1, index: 2 })
    );
}

// --- Property-style loops ---

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

// --- Argument errors ---

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

// --- First divergence of an export ---

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
