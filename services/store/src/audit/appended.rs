//! What appending a leaf to the exchange log answers: plain data, below the appends and the
//! write queue that both handle it.

use yrd_domain::merkle::Hash;

/// What appending a leaf stored (`Store::append_leaf`, or a write's batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedLeaf {
    /// Insertion id (not the Merkle index, which the sequencer assigns later).
    pub id: i64,
    /// The RFC 6962 leaf hash of the leaf's canonical input: what a receipt carries.
    pub leaf_hash: Hash,
}
