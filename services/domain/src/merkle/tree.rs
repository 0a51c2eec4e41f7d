//! The stored shape of the tree: complete subtrees addressed by [`NodeId`], the [`NodeSource`]
//! a store hands in, the [`Frontier`] that appends leaves, and the in-memory [`MemoryTree`].
//! Proofs and verification read trees only through these types, so they live apart.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

use super::{Hash, MerkleError, empty_root, node_hash};

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
