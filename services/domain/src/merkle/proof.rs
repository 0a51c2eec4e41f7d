//! Building RFC 9162 proofs (§2.1.3.1 PATH and §2.1.4.1 SUBPROOF) from stored subtrees: each
//! proof hash is an aligned leaf range, listed first so a store can fetch exactly those nodes.

use super::hash::split_point;
use super::{Hash, MerkleError, NodeId, NodeSource, decompose_range, subtree_hash};

/// The leaf ranges whose hashes form PATH(index, D[0:tree_size]), leaf side first.
///
/// Walking down from the root, the sibling of the half that holds the leaf joins the path; the
/// RFC lists them bottom-up. Once the walk turns left the remaining ranges are perfect
/// subtrees, so at most one range (the first right sibling) is ragged.
pub(super) fn inclusion_ranges(index: u64, tree_size: u64) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let (mut start, mut end) = (0, tree_size);
    while end - start > 1 {
        let k = split_point(end - start);
        if index < start + k {
            ranges.push((start + k, end));
            end = start + k;
        } else {
            ranges.push((start, start + k));
            start += k;
        }
    }
    ranges.reverse();
    ranges
}

/// The leaf ranges whose hashes form PROOF(old_size, D[0:new_size]) for `0 < old < new`,
/// in the RFC's order (deepest first).
pub(super) fn consistency_ranges(old_size: u64, new_size: u64) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let (mut start, mut end) = (0, new_size);
    // The RFC's `b`: whether the current subtree is still the left spine of the old tree, whose
    // hash the verifier already has as the old root.
    let mut on_old_spine = true;
    loop {
        let (n, m) = (end - start, old_size - start);
        if m == n {
            if !on_old_spine {
                ranges.push((start, end));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            ranges.push((start + k, end));
            end = start + k;
        } else {
            ranges.push((start, start + k));
            start += k;
            on_old_spine = false;
        }
    }
    ranges.reverse();
    ranges
}

pub(super) fn check_inclusion_args(index: u64, tree_size: u64) -> Result<(), MerkleError> {
    if tree_size == 0 {
        return Err(MerkleError::EmptyTree);
    }
    if index >= tree_size {
        return Err(MerkleError::IndexOutOfRange { index, tree_size });
    }
    Ok(())
}

/// Whether a consistency proof between these sizes is non-trivial (`0 < old < new`).
pub(super) fn consistency_is_trivial(old_size: u64, new_size: u64) -> Result<bool, MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::OldLargerThanNew { old_size, new_size });
    }
    Ok(old_size == 0 || old_size == new_size)
}

fn nodes_of(ranges: &[(u64, u64)]) -> Result<Vec<NodeId>, MerkleError> {
    let mut nodes = Vec::new();
    for &(start, end) in ranges {
        nodes.extend(decompose_range(start, end)?);
    }
    Ok(nodes)
}

fn hashes_of(ranges: &[(u64, u64)], source: &dyn NodeSource) -> Result<Vec<Hash>, MerkleError> {
    ranges
        .iter()
        .map(|&(start, end)| subtree_hash(start, end, source))
        .collect()
}

/// Exactly the nodes [`inclusion_proof`] reads for these arguments, in read order: a store can
/// fetch them in one query. At most `ceil(log2 n) + popcount(n)` of them.
pub fn nodes_needed_for_inclusion(index: u64, tree_size: u64) -> Result<Vec<NodeId>, MerkleError> {
    check_inclusion_args(index, tree_size)?;
    nodes_of(&inclusion_ranges(index, tree_size))
}

/// Exactly the nodes [`consistency_proof`] reads for these arguments, in read order.
pub fn nodes_needed_for_consistency(
    old_size: u64,
    new_size: u64,
) -> Result<Vec<NodeId>, MerkleError> {
    if consistency_is_trivial(old_size, new_size)? {
        return Ok(Vec::new());
    }
    nodes_of(&consistency_ranges(old_size, new_size))
}

/// The RFC 9162 §2.1.3.1 inclusion proof (audit path) of leaf `index` in the tree of size
/// `tree_size`, leaf side first, from stored complete subtrees.
pub fn inclusion_proof(
    index: u64,
    tree_size: u64,
    source: &dyn NodeSource,
) -> Result<Vec<Hash>, MerkleError> {
    check_inclusion_args(index, tree_size)?;
    hashes_of(&inclusion_ranges(index, tree_size), source)
}

/// The RFC 9162 §2.1.4.1 consistency proof from the tree of size `old_size` to the tree of
/// size `new_size`, from stored complete subtrees. Empty when `old_size` is 0 or equals
/// `new_size` (nothing to prove).
pub fn consistency_proof(
    old_size: u64,
    new_size: u64,
    source: &dyn NodeSource,
) -> Result<Vec<Hash>, MerkleError> {
    if consistency_is_trivial(old_size, new_size)? {
        return Ok(Vec::new());
    }
    hashes_of(&consistency_ranges(old_size, new_size), source)
}

// ---------------------------------------------------------------------------------------------
