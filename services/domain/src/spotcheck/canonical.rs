//! The stable bytes a store hashes to tell a retry from a conflicting reuse of a request id:
//! a versioned prefix and the compact JSON of the parsed value (dates, regions and URLs in
//! their contract form, as `model.rs` serialises them).

use super::SpotCheckResult;

/// Prefix of [`SpotCheckResult::canonical_digest_input`], so these bytes can never collide
/// with the hash input of another kind of body, and a future format gets a new version.
pub const CANONICAL_PREFIX: &[u8] = b"yrd-exchange/spot-check-result/v1\n";

impl SpotCheckResult {
    /// The bytes a store hashes to recognise the same body again: [`CANONICAL_PREFIX`]
    /// followed by the compact JSON of the parsed value (fields in declaration order, no maps,
    /// so equal values give equal bytes). Serialising this type cannot fail in practice; the
    /// `Result` is serde_json's signature.
    pub fn canonical_digest_input(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = CANONICAL_PREFIX.to_vec();
        serde_json::to_writer(&mut bytes, self)?;
        Ok(bytes)
    }
}
