//! Appending: the subtrees each append completes, and the frontier rebuilt from the store.

use super::*;

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
