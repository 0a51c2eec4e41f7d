//! The request digest every audit leaf records: computed from the request message as it was
//! encoded, so an auditor holding the request can recompute it whatever service took the call.

/// SHA-256 of a request message as its protobuf encoding, lowercase hex: the request digest of
/// the call's audit leaf.
pub fn request_sha256<M: prost::Message>(message: &M) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(message.encode_to_vec()))
}
