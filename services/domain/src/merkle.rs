//! RFC 6962 / RFC 9162 Merkle tree of the exchange's audit log: hashing, appends, proofs from
//! stored subtrees, and verification.
//!
//! # Why it is shaped so
//!
//! The audit log is append-only and must be provably so: auditors and partners holding a receipt
//! check *inclusion* proofs (this leaf is in the tree of size `n` with root `r`) and
//! *consistency* proofs (the tree of size `m` is a prefix of the tree of size `n`) without
//! trusting the server. Both are the RFC 9162 §2.1.3 / §2.1.4 proofs, byte for byte, so any
//! RFC 6962 verifier (the transparency-dev Go code, `ct-merkle`) accepts them too. Note that
//! RFC 6962 hashing — leaf prefix `0x00`, node prefix `0x01`, left subtree the largest power of
//! two *smaller* than the size — is not what Bitcoin-style Merkle crates do; the test vectors
//! at the bottom of this file pin it.
//!
//! The log may hold millions of leaves, so nothing here rehashes it. The store keeps the leaves
//! and the hashes of **complete subtrees** — the node at level `l` and index `k` covers leaves
//! `[k·2^l, (k+1)·2^l)` — and never changes them once written, since a complete subtree of an
//! append-only log never changes. Then:
//!
//! * [`Frontier`] (a *compact range*) holds the roots of the perfect subtrees of the current
//!   tree, at most `log2(n) + 1` hashes. [`Frontier::append`] returns every subtree the new leaf
//!   completes ([`NodeWrite`]) for the store to persist in the same transaction as the leaf, and
//!   [`Frontier::root`] is the root of the current size. After a restart
//!   [`Frontier::from_nodes`] rebuilds it from `popcount(n)` stored nodes.
//! * Every hash in an RFC proof is the hash of an *aligned* range of leaves: either a complete
//!   subtree (one stored node) or, at most once per proof, the ragged right edge `[s, n)` of the
//!   tree, which [`subtree_hash`] rebuilds from the `popcount(n - s)` complete subtrees that
//!   compose it. So a proof reads O(log n) nodes through [`NodeSource`]; the
//!   `nodes_needed_for_*` functions list exactly which, so a store can fetch them in one query
//!   into a map (which implements [`NodeSource`]) before calling [`inclusion_proof`] or
//!   [`consistency_proof`].
//! * Verification ([`verify_inclusion`], [`verify_consistency`]) follows the RFC 9162
//!   §2.1.3.2 / §2.1.4.2 algorithms and needs nothing but the proof and the tree heads.
//! * [`root_from_leaves`] is the RFC's recursive definition, kept as the reference that tests
//!   and offline checks of an exported range compare against.
//! * [`check_export`] / [`first_divergence`] find the **first leaf** of an exported list that
//!   the log does not hold (an altered, deleted or reordered leaf), by a binary search over
//!   prefixes that asks the log only for ordinary consistency proofs — see [`check_export`].
//!
//! The module is pure: no I/O and no async. A store reads nodes however it likes and hands them
//! in through [`NodeSource`].

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Length in bytes of a SHA-256 hash.
pub const HASH_LEN: usize = 32;

/// A SHA-256 hash: a leaf hash, a subtree hash or a tree root.
///
/// Any 32 bytes are a valid hash, so the bytes are public. It displays, parses and serialises
/// as 64 lower-case hex digits, the form tree heads, receipts and exports carry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }
}

impl From<[u8; HASH_LEN]> for Hash {
    fn from(bytes: [u8; HASH_LEN]) -> Self {
        Hash(bytes)
    }
}

impl TryFrom<&[u8]> for Hash {
    type Error = MerkleError;

    /// Takes exactly 32 bytes, e.g. a `BLOB`/`bytea` column read back from the store.
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        <[u8; HASH_LEN]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| MerkleError::HashByteLength {
                actual: bytes.len(),
            })
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = MerkleError;

    /// Parses 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.as_bytes();
        if digits.len() != 2 * HASH_LEN {
            return Err(MerkleError::HashHexLength {
                actual: s.chars().count(),
            });
        }
        let mut bytes = [0u8; HASH_LEN];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            let high = hex_value(pair[0]).ok_or(MerkleError::HashHexDigit { position: 2 * i })?;
            let low = hex_value(pair[1]).ok_or(MerkleError::HashHexDigit {
                position: 2 * i + 1,
            })?;
            bytes[i] = (high << 4) | low;
        }
        Ok(Hash(bytes))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What is wrong with a proof, a tree head, a node source or a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// An inclusion proof was asked for or checked against a tree with no leaves.
    #[error("the tree is empty (size 0): it holds no leaf to prove")]
    EmptyTree,
    /// The leaf index is not below the tree size.
    #[error(
        "leaf index {index} is not in a tree of size {tree_size} (an index must be below the size)"
    )]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size it was asked against.
        tree_size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    OldLargerThanNew {
        /// The size of the older tree head.
        old_size: u64,
        /// The size of the newer tree head.
        new_size: u64,
    },
    /// The proof has fewer hashes than the RFC proof for these sizes.
    #[error("proof too short: {actual} hashes where the sizes require {expected}")]
    ProofTooShort {
        /// How many hashes the proof must have.
        expected: usize,
        /// How many it has.
        actual: usize,
    },
    /// The proof has more hashes than the RFC proof for these sizes.
    #[error("proof too long: {actual} hashes where the sizes require {expected}")]
    ProofTooLong {
        /// How many hashes the proof must have.
        expected: usize,
        /// How many it has.
        actual: usize,
    },
    /// The root computed from the proof is not the root of the tree head.
    #[error(
        "root mismatch for tree size {tree_size}: the proof gives {computed}, the tree head says {expected}"
    )]
    RootMismatch {
        /// The size of the tree whose root does not match.
        tree_size: u64,
        /// The root of the tree head.
        expected: Hash,
        /// The root the proof (or the leaves) lead to.
        computed: Hash,
    },
    /// Two tree heads of the same size disagree: one of them is forged or the log forked.
    #[error("two tree heads of size {tree_size} have different roots {old_root} and {new_root}")]
    SameSizeRootsDiffer {
        /// The common size.
        tree_size: u64,
        /// The root of the head given as old.
        old_root: Hash,
        /// The root of the head given as new.
        new_root: Hash,
    },
    /// The node source lacks a complete subtree the computation needs.
    #[error("the node source has no complete subtree at level {level}, index {index}")]
    MissingNode {
        /// Level of the node (0 = leaf).
        level: u32,
        /// Index of the node within its level.
        index: u64,
    },
    /// A leaf range that is empty or does not split into aligned complete subtrees.
    #[error("leaf range [{start}, {end}) is empty or not aligned to its largest complete subtree")]
    UnalignedRange {
        /// First leaf of the range.
        start: u64,
        /// One past the last leaf.
        end: u64,
    },
    /// A hash given as bytes is not 32 bytes long.
    #[error("a SHA-256 hash is 32 bytes, got {actual}")]
    HashByteLength {
        /// The length received.
        actual: usize,
    },
    /// A hash given as hex is not 64 characters long.
    #[error("a SHA-256 hash is 64 hex digits, got {actual} characters")]
    HashHexLength {
        /// The number of characters received.
        actual: usize,
    },
    /// A hash given as hex has a character that is not a hex digit.
    #[error("character {position} of the hash is not a hex digit (0-9, a-f)")]
    HashHexDigit {
        /// Zero-based position of the bad character.
        position: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Hashing (RFC 9162 §2.1.1)
// ---------------------------------------------------------------------------------------------

/// The hash of a leaf: `SHA-256(0x00 || data)`. The prefix keeps a leaf from passing for a node.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    Hash(hasher.finalize().into())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left.0);
    hasher.update(right.0);
    Hash(hasher.finalize().into())
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// The root of a tree over `leaves` (leaf hashes), by the RFC 9162 §2.1.1 recursive definition.
///
/// O(n) hashes: the reference for tests and for checking a whole exported range offline.
pub fn root_from_leaves(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            let k = split_point(leaves.len() as u64) as usize;
            node_hash(
                &root_from_leaves(&leaves[..k]),
                &root_from_leaves(&leaves[k..]),
            )
        }
    }
}

/// The largest power of two strictly smaller than `n` (`n ≥ 2`): where the RFC splits a tree.
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

// ---------------------------------------------------------------------------------------------
// Stored nodes
// ---------------------------------------------------------------------------------------------

/// The address of a complete subtree: level `l`, index `k` covers leaves `[k·2^l, (k+1)·2^l)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 = the leaf itself).
    pub level: u32,
    /// Position within the level, from the left.
    pub index: u64,
}

/// A newly completed subtree that the store must persist (with the leaf, in one transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeWrite {
    /// Height above the leaves (0 = the leaf hash itself).
    pub level: u32,
    /// Position within the level.
    pub index: u64,
    /// The subtree's hash.
    pub hash: Hash,
}

impl NodeWrite {
    /// The node's address.
    pub fn id(&self) -> NodeId {
        NodeId {
            level: self.level,
            index: self.index,
        }
    }
}

/// Where proofs read complete-subtree hashes from (the store, or a map preloaded from it).
///
/// Only complete subtrees are ever asked for. `None` means the source does not have the node;
/// the computation then fails with [`MerkleError::MissingNode`].
pub trait NodeSource {
    /// The hash of the complete subtree at `level`, `index`, if the source holds it.
    fn node(&self, level: u32, index: u64) -> Option<Hash>;
}

impl<S: std::hash::BuildHasher> NodeSource for HashMap<NodeId, Hash, S> {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.get(&NodeId { level, index }).copied()
    }
}

impl NodeSource for BTreeMap<NodeId, Hash> {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.get(&NodeId { level, index }).copied()
    }
}

/// A [`NodeSource`] wrapper that counts reads, to check that proofs stay O(log n).
pub struct CountingSource<'a> {
    inner: &'a dyn NodeSource,
    /// A `Cell` because [`NodeSource::node`] takes `&self`; the wrapper is single-threaded.
    reads: Cell<u64>,
}

impl<'a> CountingSource<'a> {
    /// Wraps `inner` with a read counter at zero.
    pub fn new(inner: &'a dyn NodeSource) -> Self {
        CountingSource {
            inner,
            reads: Cell::new(0),
        }
    }

    /// How many nodes were read so far.
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }
}

impl NodeSource for CountingSource<'_> {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.reads.set(self.reads.get() + 1);
        self.inner.node(level, index)
    }
}

/// The complete subtrees that compose the aligned leaf range `[start, end)`, left to right.
///
/// The range must be non-empty and `start` a multiple of the largest power of two not above
/// `end - start`; then its RFC hash is the right fold of these subtrees' hashes. Every range a
/// proof or a root needs is of this kind.
pub fn decompose_range(start: u64, end: u64) -> Result<Vec<NodeId>, MerkleError> {
    let unaligned = MerkleError::UnalignedRange { start, end };
    if start >= end {
        return Err(unaligned);
    }
    let len = end - start;
    let top = 63 - len.leading_zeros();
    if start & ((1u64 << top) - 1) != 0 {
        return Err(unaligned);
    }
    let mut nodes = Vec::with_capacity(len.count_ones() as usize);
    let mut first = start;
    for level in (0..=top).rev() {
        if (len >> level) & 1 == 1 {
            nodes.push(NodeId {
                level,
                index: first >> level,
            });
            first += 1 << level;
        }
    }
    Ok(nodes)
}

/// The RFC hash of the aligned leaf range `[start, end)` (see [`decompose_range`]), read from
/// `popcount(end - start)` stored complete subtrees.
pub fn subtree_hash(start: u64, end: u64, source: &dyn NodeSource) -> Result<Hash, MerkleError> {
    let hashes = read_nodes(&decompose_range(start, end)?, source)?;
    Ok(fold_right(&hashes).unwrap_or_else(empty_root))
}

/// The root of the tree of size `tree_size` from stored nodes (`popcount(tree_size)` reads).
pub fn root_at(tree_size: u64, source: &dyn NodeSource) -> Result<Hash, MerkleError> {
    if tree_size == 0 {
        return Ok(empty_root());
    }
    subtree_hash(0, tree_size, source)
}

fn read_nodes(ids: &[NodeId], source: &dyn NodeSource) -> Result<Vec<Hash>, MerkleError> {
    ids.iter()
        .map(|id| {
            source
                .node(id.level, id.index)
                .ok_or(MerkleError::MissingNode {
                    level: id.level,
                    index: id.index,
                })
        })
        .collect()
}

/// `H(h0, H(h1, … H(h_{n-2}, h_{n-1})))`: joins perfect subtrees of decreasing size as the RFC
/// does. `None` for no hashes.
fn fold_right(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(
        rest.iter()
            .rev()
            .fold(*last, |right, left| node_hash(left, &right)),
    )
}

// ---------------------------------------------------------------------------------------------
// Appending: the frontier (compact range)
// ---------------------------------------------------------------------------------------------

/// The roots of the perfect subtrees of the current tree, largest (leftmost) first: all the
/// sequencer needs in memory to append leaves and compute roots.
///
/// For size `n` there is one root per set bit of `n`, so at most `log2(n) + 1` hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Invariant: `roots.len() == size.count_ones()`, root `i` covering the `i`-th set bit of
    /// `size` from the top.
    roots: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// Rebuilds the frontier of the tree of size `size` from stored complete subtrees (after a
    /// restart), reading `popcount(size)` nodes.
    pub fn from_nodes(size: u64, source: &dyn NodeSource) -> Result<Self, MerkleError> {
        let roots = if size == 0 {
            Vec::new()
        } else {
            read_nodes(&decompose_range(0, size)?, source)?
        };
        Ok(Frontier { size, roots })
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest first.
    pub fn roots(&self) -> &[Hash] {
        &self.roots
    }

    /// Appends a leaf (its [`leaf_hash`]) and returns every subtree it completes, the leaf
    /// itself (level 0) first, then upwards. The store persists all of them.
    pub fn append(&mut self, leaf: Hash) -> Vec<NodeWrite> {
        let index = self.size;
        // Each trailing one bit of the old size is a perfect subtree of the same height as the
        // one being built, which the new leaf completes into one twice as tall.
        let merges = index.trailing_ones();
        let mut writes = Vec::with_capacity(merges as usize + 1);
        writes.push(NodeWrite {
            level: 0,
            index,
            hash: leaf,
        });
        let mut hash = leaf;
        for level in 1..=merges {
            let Some(left) = self.roots.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            writes.push(NodeWrite {
                level,
                index: index >> level,
                hash,
            });
        }
        self.roots.push(hash);
        self.size += 1;
        writes
    }

    /// The RFC 6962 root of the current tree ([`empty_root`] when empty).
    pub fn root(&self) -> Hash {
        fold_right(&self.roots).unwrap_or_else(empty_root)
    }
}

/// A whole tree in memory, every complete subtree kept level by level.
///
/// A [`NodeSource`] for tests and for offline checks of an exported range; the store is the
/// durable equivalent. Built through a [`Frontier`], so it holds exactly the nodes the store
/// would.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    frontier: Frontier,
    /// `levels[l][k]` is the node at level `l`, index `k`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        MemoryTree::default()
    }

    /// The tree over `leaves` (leaf hashes), in order.
    pub fn from_leaves(leaves: &[Hash]) -> Self {
        let mut tree = MemoryTree::new();
        for leaf in leaves {
            tree.push(*leaf);
        }
        tree
    }

    /// Appends a leaf hash; returns the nodes it completed, as [`Frontier::append`] does.
    pub fn push(&mut self, leaf: Hash) -> Vec<NodeWrite> {
        let writes = self.frontier.append(leaf);
        for write in &writes {
            let level = write.level as usize;
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            // The frontier completes nodes of a level strictly left to right, so the write's
            // index is always the next free slot of its level.
            self.levels[level].push(write.hash);
        }
        writes
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

impl NodeSource for MemoryTree {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        let level = self.levels.get(usize::try_from(level).ok()?)?;
        level.get(usize::try_from(index).ok()?).copied()
    }
}

// ---------------------------------------------------------------------------------------------
// Proofs (RFC 9162 §2.1.3.1 PATH and §2.1.4.1 SUBPROOF)
// ---------------------------------------------------------------------------------------------

/// The leaf ranges whose hashes form PATH(index, D[0:tree_size]), leaf side first.
///
/// Walking down from the root, the sibling of the half that holds the leaf joins the path; the
/// RFC lists them bottom-up. Once the walk turns left the remaining ranges are perfect
/// subtrees, so at most one range (the first right sibling) is ragged.
fn inclusion_ranges(index: u64, tree_size: u64) -> Vec<(u64, u64)> {
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
fn consistency_ranges(old_size: u64, new_size: u64) -> Vec<(u64, u64)> {
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

fn check_inclusion_args(index: u64, tree_size: u64) -> Result<(), MerkleError> {
    if tree_size == 0 {
        return Err(MerkleError::EmptyTree);
    }
    if index >= tree_size {
        return Err(MerkleError::IndexOutOfRange { index, tree_size });
    }
    Ok(())
}

/// Whether a consistency proof between these sizes is non-trivial (`0 < old < new`).
fn consistency_is_trivial(old_size: u64, new_size: u64) -> Result<bool, MerkleError> {
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
// Verification (RFC 9162 §2.1.3.2 and §2.1.4.2)
// ---------------------------------------------------------------------------------------------

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
// Locating the first bad leaf of an export
// ---------------------------------------------------------------------------------------------

/// The outcome of checking an exported list of leaves against a tree head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportVerdict {
    /// The first `tree_size` exported leaves are exactly the log's. Leaves exported beyond
    /// the tree head's size are not covered by it.
    Consistent,
    /// Leaves `[0, index)` are the log's; the exported leaf at `index` is not (altered,
    /// reordered or — when `index` equals the export's length — missing).
    FirstBadIndex(u64),
}

/// A step of [`check_export`]: either a consistency proof to fetch, or the verdict.
#[derive(Debug)]
pub enum ExportSearch {
    /// Fetch the consistency proof from [`PendingProof::old_size`] to
    /// [`PendingProof::new_size`] and pass it to [`PendingProof::answer`].
    NeedProof(PendingProof),
    /// The search is over.
    Done(ExportVerdict),
}

/// A search of [`check_export`] waiting for one consistency proof from the log.
#[derive(Debug)]
pub struct PendingProof {
    /// The exported leaves as a tree, so any prefix's root is `popcount` reads away.
    local: MemoryTree,
    tree_size: u64,
    root: Hash,
    /// Longest prefix known to be the log's.
    good: u64,
    /// Shortest prefix known not to be (or the export's length + 1 when the export is shorter
    /// than the tree head: a prefix the export cannot have).
    bad: u64,
    /// The prefix length being asked about, strictly between `good` and `bad`.
    asking: u64,
}

impl PendingProof {
    /// The old size of the consistency proof to fetch (the prefix length being tested).
    pub fn old_size(&self) -> u64 {
        self.asking
    }

    /// The new size of the consistency proof to fetch (the tree head's size).
    pub fn new_size(&self) -> u64 {
        self.tree_size
    }

    /// Feeds the log's consistency proof for ([`Self::old_size`], [`Self::new_size`]).
    ///
    /// A proof that leads to the wrong root marks the prefix as not the log's; a proof of the
    /// wrong length is an error of the log's answer, not evidence about the export, and is
    /// returned as such.
    pub fn answer(mut self, proof: &[Hash]) -> Result<ExportSearch, MerkleError> {
        let prefix_root = root_at(self.asking, &self.local)?;
        match verify_consistency(self.asking, self.tree_size, &prefix_root, &self.root, proof) {
            Ok(()) => self.good = self.asking,
            Err(MerkleError::RootMismatch { .. }) => self.bad = self.asking,
            Err(other) => return Err(other),
        }
        Ok(self.next())
    }

    fn next(mut self) -> ExportSearch {
        if self.bad - self.good <= 1 {
            return ExportSearch::Done(ExportVerdict::FirstBadIndex(self.good));
        }
        self.asking = self.good + (self.bad - self.good) / 2;
        ExportSearch::NeedProof(self)
    }
}

/// Starts checking an exported, ordered list of leaf hashes (claimed to be leaves `0..`) against
/// a tree head (`tree_size`, `root`), naming the first bad index if any.
///
/// # Approach
///
/// If the export holds at least `tree_size` leaves and their root is `root`, it is consistent
/// and no proof is needed. Otherwise the search looks for the longest prefix of the export that
/// the log holds. "The first `m` exported leaves are the log's" is checked with an ordinary
/// consistency proof from `m` to `tree_size`, verified against the root computed locally from
/// those `m` leaves and the trusted `root`; it is monotone in `m` (a genuine prefix has genuine
/// prefixes), so a binary search finds the longest genuine prefix `m` with about
/// `log2(tree_size)` proofs of O(log n) hashes each, and leaf `m` is the first bad one. A
/// deleted leaf shifts every later one, so it is reported at its own index; two swapped leaves
/// are reported at the first of them.
///
/// The server cannot make an altered prefix pass (that would need a SHA-256 collision); a
/// broken or lying server can only make the search report an index too early, and verification
/// fails either way. The search is a state machine so that async callers (the `yrd audit`
/// CLI over gRPC) fetch each proof however they like; [`first_divergence`] drives it with a
/// closure.
///
/// Fails only when `tree_size` is 0 and `root` is not [`empty_root`] (a bogus tree head).
pub fn check_export(
    leaves: &[Hash],
    tree_size: u64,
    root: Hash,
) -> Result<ExportSearch, MerkleError> {
    let local = MemoryTree::from_leaves(leaves);
    let exported = local.size();
    if exported >= tree_size {
        let computed = root_at(tree_size, &local)?;
        if computed == root {
            return Ok(ExportSearch::Done(ExportVerdict::Consistent));
        }
        if tree_size == 0 {
            return Err(MerkleError::RootMismatch {
                tree_size,
                expected: root,
                computed,
            });
        }
    }
    let bad = if exported >= tree_size {
        tree_size
    } else {
        exported + 1
    };
    let pending = PendingProof {
        local,
        tree_size,
        root,
        good: 0,
        bad,
        asking: 0,
    };
    Ok(pending.next())
}

/// [`check_export`] driven to the end with `prove(old_size, new_size)` fetching consistency
/// proofs: `None` when the export matches the tree head, else the first bad index.
pub fn first_divergence(
    leaves: &[Hash],
    tree_size: u64,
    root: Hash,
    prove: &mut dyn FnMut(u64, u64) -> Result<Vec<Hash>, MerkleError>,
) -> Result<Option<u64>, MerkleError> {
    let mut search = check_export(leaves, tree_size, root)?;
    loop {
        match search {
            ExportSearch::Done(ExportVerdict::Consistent) => return Ok(None),
            ExportSearch::Done(ExportVerdict::FirstBadIndex(index)) => return Ok(Some(index)),
            ExportSearch::NeedProof(pending) => {
                let proof = prove(pending.old_size(), pending.new_size())?;
                search = pending.answer(&proof)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let ExportSearch::NeedProof(pending) = check_export(&export, 20, store.root()).unwrap()
        else {
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
}
