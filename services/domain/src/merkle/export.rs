//! Locating the first leaf of an exported list that the log does not hold, by a binary search
//! over prefixes that asks the log only for ordinary consistency proofs. A state machine, so
//! the caller decides how each proof is fetched.

use super::{Hash, MemoryTree, MerkleError, root_at, verify_consistency};

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
