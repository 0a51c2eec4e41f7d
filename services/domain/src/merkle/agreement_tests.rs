//! Property test: our hand-written RFC 6962 code agrees with an independent implementation,
//! `ct-merkle`, on roots, inclusion proofs and consistency proofs of random trees. The
//! published vectors in `tests.rs` pin eight leaves; this reaches every shape up to the
//! largest size generated, so an off-by-one in the split or the ragged edge cannot hide.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof};
use proptest::prelude::*;
use sha2::Sha256;

use super::*;

/// The proof hashes as one byte string, the form `ct-merkle` keeps a proof in.
fn concat(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|hash| hash.0).collect()
}

fn theirs_and_ours(data: &[Vec<u8>]) -> (MemoryBackedTree<Sha256, Vec<u8>>, MemoryTree) {
    let mut theirs = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    let mut ours = MemoryTree::new();
    for leaf in data {
        theirs.push(leaf.clone());
        ours.push(leaf_hash(leaf));
    }
    (theirs, ours)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn roots_and_proofs_agree_with_ct_merkle(
        data in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 1..80)
    ) {
        let size = data.len() as u64;
        let (theirs, ours) = theirs_and_ours(&data);
        let their_root = theirs.root();
        let our_root = root_at(size, &ours).expect("a stored tree has a root");
        prop_assert_eq!(their_root.as_bytes().to_vec(), our_root.0.to_vec());
        let leaves: Vec<Hash> = data.iter().map(|leaf| leaf_hash(leaf)).collect();
        prop_assert_eq!(root_from_leaves(&leaves), our_root);

        for (index, leaf) in data.iter().enumerate() {
            let ours_proof = inclusion_proof(index as u64, size, &ours).expect("index in range");
            let their_proof = theirs.prove_inclusion(index);
            prop_assert_eq!(their_proof.as_bytes().to_vec(), concat(&ours_proof));
            // Each side accepts the other's proof.
            let from_ours = InclusionProof::<Sha256>::from_bytes(concat(&ours_proof));
            prop_assert!(their_root.verify_inclusion(leaf, index as u64, &from_ours).is_ok());
            prop_assert!(
                verify_inclusion(&leaves[index], index as u64, size, &ours_proof, &our_root).is_ok()
            );
        }

        for old_size in 1..size {
            let old_root = root_at(old_size, &ours).expect("a prefix has a root");
            let ours_proof = consistency_proof(old_size, size, &ours).expect("sizes in order");
            let additions = usize::try_from(size - old_size).expect("small tree");
            let their_proof = theirs.prove_consistency(additions);
            prop_assert_eq!(their_proof.as_bytes().to_vec(), concat(&ours_proof));
            let (old_theirs, _) = theirs_and_ours(&data[..old_size as usize]);
            prop_assert_eq!(old_theirs.root().as_bytes().to_vec(), old_root.0.to_vec());
            let from_ours = ConsistencyProof::<Sha256>::try_from_bytes(concat(&ours_proof))
                .expect("whole hashes");
            prop_assert!(their_root.verify_consistency(&old_theirs.root(), &from_ours).is_ok());
            prop_assert!(
                verify_consistency(old_size, size, &old_root, &our_root, &ours_proof).is_ok()
            );
        }
    }
}
