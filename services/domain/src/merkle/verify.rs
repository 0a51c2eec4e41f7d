//! Checking proofs against tree heads (RFC 9162 §2.1.3.2 and §2.1.4.2). Needs nothing but the
//! proof and the heads, so a partner or auditor can run it without the log.

use super::proof::{
    check_inclusion_args, consistency_is_trivial, consistency_ranges, inclusion_ranges,
};
use super::{Hash, MerkleError, empty_root, node_hash};

fn check_length(expected: usize, actual: usize) -> Result<(), MerkleError> {
    match actual.cmp(&expected) {
        std::cmp::Ordering::Less => Err(MerkleError::ProofTooShort { expected, actual }),
        std::cmp::Ordering::Greater => Err(MerkleError::ProofTooLong { expected, actual }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Right-shifts both counters until `fn_` has its low bit set or is zero (the RFC's inner step).
fn shift_to_set_bit(fn_: &mut u64, sn: &mut u64) {
    while *fn_ & 1 == 0 && *fn_ != 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

/// Checks that `leaf` (a [`leaf_hash`]) is leaf `index` of the tree of size `tree_size` whose
/// root is `root`, by the RFC 9162 §2.1.3.2 algorithm. Uses nothing from the server but the
/// proof, so a partner can check its receipt against any tree head it trusts.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    check_inclusion_args(index, tree_size)?;
    let expected = inclusion_ranges(index, tree_size).len();
    check_length(expected, proof.len())?;
    let too_long = MerkleError::ProofTooLong {
        expected,
        actual: proof.len(),
    };
    let (mut fn_, mut sn) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(too_long);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                shift_to_set_bit(&mut fn_, &mut sn);
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(MerkleError::ProofTooShort {
            expected,
            actual: proof.len(),
        });
    }
    if r != *root {
        return Err(MerkleError::RootMismatch {
            tree_size,
            expected: *root,
            computed: r,
        });
    }
    Ok(())
}

/// Checks that the tree of size `old_size` and root `old_root` is a prefix of the tree of size
/// `new_size` and root `new_root`, by the RFC 9162 §2.1.4.2 algorithm.
///
/// Trivial cases: equal sizes need an empty proof and equal roots; an old size of 0 needs an
/// empty proof and `old_root` equal to [`empty_root`] (the empty tree is a prefix of every tree).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if consistency_is_trivial(old_size, new_size)? {
        check_length(0, proof.len())?;
        if old_size == 0 && *old_root != empty_root() {
            return Err(MerkleError::RootMismatch {
                tree_size: 0,
                expected: *old_root,
                computed: empty_root(),
            });
        }
        if old_size == new_size && old_root != new_root {
            return Err(MerkleError::SameSizeRootsDiffer {
                tree_size: old_size,
                old_root: *old_root,
                new_root: *new_root,
            });
        }
        return Ok(());
    }
    let expected = consistency_ranges(old_size, new_size).len();
    check_length(expected, proof.len())?;
    let too_long = MerkleError::ProofTooLong {
        expected,
        actual: proof.len(),
    };

    // Step 2: when the old tree is perfect its root is the first node of the path.
    let mut path = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(MerkleError::ProofTooShort {
            expected,
            actual: proof.len(),
        });
    };

    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(too_long);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                shift_to_set_bit(&mut fn_, &mut sn);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(MerkleError::ProofTooShort {
            expected,
            actual: proof.len(),
        });
    }
    if fr != *old_root {
        return Err(MerkleError::RootMismatch {
            tree_size: old_size,
            expected: *old_root,
            computed: fr,
        });
    }
    if sr != *new_root {
        return Err(MerkleError::RootMismatch {
            tree_size: new_size,
            expected: *new_root,
            computed: sr,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
