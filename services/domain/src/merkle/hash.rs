//! The 32-byte hash and the RFC 9162 §2.1.1 hashing rules (leaf and node prefixes, the split
//! point). Everything else in the Merkle module builds on these few functions, so they stand
//! alone with no dependency on trees or proofs. [`MerkleError`], the one error type of the whole
//! module, lives here too: parsing a hash returns it and its variants carry hashes, so apart
//! the two files would import each other.

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
pub(super) fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}
