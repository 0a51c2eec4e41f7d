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
//! in `tests/vectors.rs` pin it.
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
//!
//! # Layout
//!
//! * `hash.rs` — the [`Hash`] type, [`MerkleError`] and the RFC 9162 §2.1.1 leaf and node
//!   hashing.
//! * `tree.rs` — stored subtrees, [`NodeSource`], [`Frontier`] and [`MemoryTree`].
//! * `proof.rs` — building inclusion and consistency proofs from stored subtrees.
//! * `verify.rs` — checking proofs against tree heads.
//! * `export.rs` — finding the first bad leaf of an exported range.
//! * `tests/` — the published vectors and a module of tests per topic; `agreement_tests.rs` —
//!   a property test against the independent `ct-merkle` crate on random trees.
//!
//! Files depend on each other in that order only (no cycle); everything public is re-exported
//! here so callers keep writing `merkle::Hash`, `merkle::inclusion_proof` and so on.

mod export;
mod hash;
mod proof;
mod tree;
mod verify;

#[cfg(test)]
mod agreement_tests;
#[cfg(test)]
mod tests;

pub use export::*;
pub use hash::*;
pub use proof::*;
pub use tree::*;
pub use verify::*;
