//! The exchange log in the store, on SQLite and PostgreSQL with the same test code.
//!
//! Each case plays the sequencer itself (load the frontier, take unsequenced leaves, append
//! them, commit with a dummy signature), then checks what auditors and partners rely on:
//! proofs that verify against the stored tree heads with nothing but the domain's verifier, a
//! database that refuses to change or drop what the log holds, queries and pagination, and the
//! PostgreSQL sequencer lock.

use std::time::Duration;

use sqlx::{AnyConnection, Connection};
use time::OffsetDateTime;
use yrd_domain::audit::{LEAF_VERSION, LeafData};
use yrd_domain::merkle::{
    Hash, MerkleError, nodes_needed_for_consistency, nodes_needed_for_inclusion, root_from_leaves,
    verify_consistency, verify_inclusion,
};
use yrd_store::testing::TestDatabase;
use yrd_store::{AuditError, Backend, LeafFilter, Store, StoreOptions, TreeHead};

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn sqlite() {
                    let db = yrd_store::testing::TestDatabase::sqlite();
                    let store = super::open(&db).await;
                    super::$case(store.clone(), &db.url).await;
                    store.close().await;
                }

                #[tokio::test]
                async fn postgres() {
                    let Some(db) = yrd_store::testing::TestDatabase::postgres().await else {
                        return;
                    };
                    let store = super::open(&db).await;
                    super::$case(store.clone(), &db.url).await;
                    store.close().await;
                }
            }
        )*
    };
}

on_both_backends!(
    sequenced_batches_give_verifiable_proofs,
    stored_leaves_round_trip,
    queries_filter_and_paginate,
    database_refuses_changes,
    conflicting_commit_rolls_back_whole,
    sequencer_lock_is_exclusive,
);

async fn open(db: &TestDatabase) -> Store {
    Store::open(&db.url, &StoreOptions::default())
        .await
        .expect("open test store")
}

const AGENCIES: [&str; 3] = ["310000-SAMR", "320000-AMR", "370000-AMR"];
const METHODS: [&str; 2] = [
    "/yrd.exchange.v1.SpotCheckService/PublishResult",
    "/yrd.exchange.v1.DisposalService/ReferCase",
];
const BASE_US: i64 = 1_700_000_000_000_000;

/// The `i`-th leaf of a test: agencies, methods, outcomes and resources rotate so every filter
/// selects a proper subset; two consecutive calls share a trace.
fn leaf(i: u64) -> LeafData {
    let n = i as usize;
    LeafData {
        v: LEAF_VERSION,
        time_us: BASE_US + i as i64 * 1_000_000,
        trace_id: format!("{:032x}", 0xabc0 + i / 2),
        span_id: format!("{:016x}", i + 1),
        agency: AGENCIES[n % 3].to_owned(),
        cert_fingerprint: format!("{:064x}", i + 7),
        profile: "system".to_owned(),
        officer: if i % 2 == 0 {
            "张三".to_owned()
        } else {
            String::new()
        },
        token_id: format!("jti-{i}"),
        method: METHODS[n % 2].to_owned(),
        resources: if i % 5 == 4 {
            Vec::new()
        } else {
            vec![
                format!("results/r{}", i % 4),
                format!("results/r{}/versions/1", i % 4),
            ]
        },
        code: if i % 4 == 3 { 7 } else { 0 },
        message: if i % 4 == 3 {
            "permission denied: \"quoted\" \\ reason".to_owned()
        } else {
            String::new()
        },
        request_sha256: format!("{:064x}", i * 31),
        duration_us: 100 + i as i64,
    }
}

/// Appends leaves `range` and answers their hashes, checking each against the domain's.
async fn append(store: &Store, range: std::ops::Range<u64>) -> Vec<Hash> {
    let mut hashes = Vec::new();
    for i in range {
        let data = leaf(i);
        let appended = store.append_leaf(&data).await.expect("append leaf");
        assert_eq!(appended.leaf_hash, data.leaf_hash(), "leaf {i}");
        hashes.push(appended.leaf_hash);
    }
    hashes
}

/// One sequencer step of at most `limit` leaves; `None` when nothing was waiting.
async fn sequence(store: &Store, limit: u32) -> Option<TreeHead> {
    let (mut frontier, size) = store.load_frontier().await.expect("load frontier");
    assert_eq!(frontier.size(), size);
    let pending = store.unsequenced_leaves(limit).await.expect("unsequenced");
    if pending.is_empty() {
        return None;
    }
    let mut assignments = Vec::new();
    let mut nodes = Vec::new();
    for (id, hash) in pending {
        assignments.push((id, frontier.size()));
        nodes.extend(frontier.append(hash));
    }
    let head = TreeHead {
        tree_size: frontier.size(),
        root: frontier.root(),
        timestamp: OffsetDateTime::from_unix_timestamp(1_700_000_000 + size as i64)
            .expect("valid time"),
        signature: vec![0xab; 64],
        key_id: "test-log-key".to_owned(),
    };
    store
        .commit_sequence(&assignments, &nodes, &head)
        .await
        .expect("commit sequence");
    Some(head)
}

/// `2·log2(n) + 2`: the most nodes any RFC proof in a tree of `n` leaves needs.
fn node_bound(n: u64) -> usize {
    2 * n.max(1).ilog2() as usize + 2
}

async fn sequenced_batches_give_verifiable_proofs(store: Store, _url: &str) {
    assert!(store.latest_tree_head().await.expect("head").is_none());
    assert!(
        sequence(&store, 10).await.is_none(),
        "nothing to sequence yet"
    );

    let mut hashes = Vec::new();
    let mut heads = Vec::new();
    // Batches of odd sizes so heads fall on and off powers of two.
    for (count, limit) in [(1, 1), (2, 8), (5, 3), (9, 100), (16, 16), (4, 100)] {
        let start = hashes.len() as u64;
        hashes.extend(append(&store, start..start + count).await);
        while let Some(head) = sequence(&store, limit).await {
            assert_eq!(
                head.root,
                root_from_leaves(&hashes[..head.tree_size as usize]),
                "root of size {}",
                head.tree_size
            );
            heads.push(head);
        }
    }
    let n = hashes.len() as u64;
    assert_eq!(n, 37);
    assert_eq!(store.sequenced_size().await.expect("size"), n);
    let latest = store.latest_tree_head().await.expect("head").expect("some");
    assert_eq!(latest.tree_size, n);
    assert_eq!(&latest, heads.last().expect("heads"));
    assert_eq!(
        store.tree_head_at(heads[2].tree_size).await.expect("head"),
        Some(heads[2].clone())
    );
    assert_eq!(store.tree_head_at(n + 1).await.expect("head"), None);

    // A restarted sequencer finds the same frontier.
    let (frontier, size) = store.load_frontier().await.expect("frontier");
    assert_eq!((frontier.size(), frontier.root()), (n, latest.root));
    assert_eq!(size, n);

    for head in &heads {
        let size = head.tree_size;
        assert_eq!(store.root_at(size).await.expect("root"), head.root);
        for index in 0..size {
            let needed = nodes_needed_for_inclusion(index, size).expect("needed");
            assert!(needed.len() <= node_bound(size), "{index} of {size}");
            assert_eq!(
                store.audit_nodes(&needed).await.expect("nodes").len(),
                needed.len(),
                "every needed node is stored, and only those are read"
            );
            let proof = store.inclusion_proof(index, size).await.expect("proof");
            verify_inclusion(&hashes[index as usize], index, size, &proof, &head.root)
                .expect("inclusion verifies");
            let other = hashes[(index as usize + 1) % hashes.len()];
            assert!(verify_inclusion(&other, index, size, &proof, &head.root).is_err());
        }
    }
    for (i, old) in heads.iter().enumerate() {
        for new in &heads[i..] {
            let needed =
                nodes_needed_for_consistency(old.tree_size, new.tree_size).expect("needed");
            assert!(needed.len() <= node_bound(new.tree_size));
            let proof = store
                .consistency_proof(old.tree_size, new.tree_size)
                .await
                .expect("proof");
            verify_consistency(old.tree_size, new.tree_size, &old.root, &new.root, &proof)
                .expect("consistency verifies");
        }
    }
    // A forged old root does not pass.
    let proof = store.consistency_proof(3, n).await.expect("proof");
    assert!(verify_consistency(3, n, &heads[0].root, &latest.root, &proof).is_err());

    // Arguments outside the log are named.
    assert!(matches!(
        store.inclusion_proof(n, n).await,
        Err(AuditError::Merkle(MerkleError::IndexOutOfRange { index, tree_size }))
            if index == n && tree_size == n
    ));
    assert!(matches!(
        store.inclusion_proof(0, n + 5).await,
        Err(AuditError::BeyondLog { requested, sequenced }) if requested == n + 5 && sequenced == n
    ));
    assert!(matches!(
        store.consistency_proof(4, n + 1).await,
        Err(AuditError::BeyondLog { .. })
    ));
    assert!(matches!(
        store.consistency_proof(9, 4).await,
        Err(AuditError::Merkle(MerkleError::OldLargerThanNew { .. }))
    ));
    assert!(matches!(
        store.root_at(n + 1).await,
        Err(AuditError::BeyondLog { .. })
    ));

    // Heads page by size.
    let first = store.list_tree_heads(None, 3).await.expect("list");
    assert_eq!(first, heads[..3].to_vec());
    let rest = store
        .list_tree_heads(Some(first[2].tree_size), 100)
        .await
        .expect("list");
    assert_eq!(rest, heads[3..].to_vec());
}

async fn stored_leaves_round_trip(store: Store, _url: &str) {
    let hashes = append(&store, 0..6).await;
    sequence(&store, 100).await.expect("sequenced");
    // One more, not yet sequenced: invisible to auditors' reads.
    append(&store, 6..7).await;

    for i in 0..6u64 {
        let stored = store
            .leaf_by_index(i)
            .await
            .expect("read")
            .expect("present");
        assert_eq!(stored.index, i);
        assert_eq!(stored.leaf, leaf(i), "columns decode to the leaf");
        assert_eq!(stored.leaf_input.as_bytes(), leaf(i).leaf_input());
        assert_eq!(stored.leaf_hash, hashes[i as usize]);
        assert_eq!(
            LeafData::from_leaf_input(stored.leaf_input.as_bytes()),
            Ok(leaf(i))
        );
    }
    assert_eq!(store.leaf_by_index(6).await.expect("read"), None);

    let range = store.leaves_range(2, 5).await.expect("range");
    assert_eq!(range.iter().map(|l| l.index).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(range[1].leaf, leaf(3));
    let tail = store.leaves_range(4, 100).await.expect("range");
    assert_eq!(tail.iter().map(|l| l.index).collect::<Vec<_>>(), [4, 5]);
    assert!(store.leaves_range(5, 5).await.expect("range").is_empty());

    let pending = store.unsequenced_leaves(10).await.expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1, leaf(6).leaf_hash());
}

async fn queries_filter_and_paginate(store: Store, _url: &str) {
    const N: u64 = 24;
    append(&store, 0..N).await;
    sequence(&store, 1000).await.expect("sequenced");
    // Unsequenced leaves never show up in queries.
    append(&store, N..N + 3).await;

    let all: Vec<LeafData> = (0..N).map(leaf).collect();
    let matching = |pred: &dyn Fn(&LeafData) -> bool| -> Vec<u64> {
        all.iter()
            .enumerate()
            .filter(|(_, l)| pred(l))
            .map(|(i, _)| i as u64)
            .collect()
    };
    let cases: Vec<(LeafFilter, Vec<u64>)> = vec![
        (LeafFilter::default(), matching(&|_| true)),
        (
            LeafFilter {
                agency: Some(AGENCIES[1].to_owned()),
                ..LeafFilter::default()
            },
            matching(&|l| l.agency == AGENCIES[1]),
        ),
        (
            LeafFilter {
                method: Some(METHODS[0].to_owned()),
                ..LeafFilter::default()
            },
            matching(&|l| l.method == METHODS[0]),
        ),
        (
            LeafFilter {
                code: Some(7),
                ..LeafFilter::default()
            },
            matching(&|l| l.code == 7),
        ),
        (
            LeafFilter {
                resource: Some("results/r2".to_owned()),
                ..LeafFilter::default()
            },
            matching(&|l| l.resources.iter().any(|r| r == "results/r2")),
        ),
        (
            LeafFilter {
                trace_id: Some(leaf(10).trace_id),
                ..LeafFilter::default()
            },
            vec![10, 11],
        ),
        (
            LeafFilter {
                from_us: Some(BASE_US + 5_000_000),
                to_us: Some(BASE_US + 12_000_000),
                ..LeafFilter::default()
            },
            (5..12).collect(),
        ),
        (
            LeafFilter {
                agency: Some(AGENCIES[0].to_owned()),
                method: Some(METHODS[1].to_owned()),
                code: Some(7),
                ..LeafFilter::default()
            },
            matching(&|l| l.agency == AGENCIES[0] && l.method == METHODS[1] && l.code == 7),
        ),
        (
            LeafFilter {
                agency: Some("999999-NONE".to_owned()),
                ..LeafFilter::default()
            },
            Vec::new(),
        ),
    ];
    for (filter, expected) in cases {
        let one_page = store
            .query_leaves(&filter, None, 1000)
            .await
            .expect("query");
        assert_eq!(
            one_page.iter().map(|l| l.index).collect::<Vec<_>>(),
            expected,
            "{filter:?}"
        );
        for stored in &one_page {
            assert_eq!(stored.leaf, all[stored.index as usize]);
        }
        // The same, three at a time, following the keyset cursor.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store.query_leaves(&filter, after, 3).await.expect("page");
            assert!(page.len() <= 3);
            let Some(last) = page.last() else { break };
            after = Some(last.index);
            paged.extend(page.iter().map(|l| l.index));
        }
        assert_eq!(paged, expected, "paged {filter:?}");
    }
    assert!(
        store
            .query_leaves(&LeafFilter::default(), Some(u64::MAX), 10)
            .await
            .expect("query")
            .is_empty()
    );
}

/// Runs each of `statements` on `conn` (a connection of its own) and asserts that the
/// database refused every one through an append-only guard.
async fn assert_refused(conn: &mut AnyConnection, statements: &[&str]) {
    for sql in statements {
        match sqlx::query(sql).execute(&mut *conn).await {
            Ok(done) => panic!(
                "the database accepted {sql:?} ({} rows)",
                done.rows_affected()
            ),
            Err(e) => assert!(
                e.to_string().contains("append-only:"),
                "{sql:?} failed, but not by the append-only guard: {e}"
            ),
        }
    }
}

async fn database_refuses_changes(store: Store, url: &str) {
    let hashes = append(&store, 0..5).await;
    let head = sequence(&store, 100).await.expect("sequenced");
    append(&store, 5..6).await;
    let pending_id = store.unsequenced_leaves(1).await.expect("pending")[0].0;

    let mut conn = AnyConnection::connect(url).await.expect("raw connection");
    // A sequenced leaf's fields, its index (a second time), and the row itself.
    assert_refused(
        &mut conn,
        &[
            "UPDATE audit_leaves SET agency = '320000-AMR' WHERE leaf_index = 1",
            "UPDATE audit_leaves SET code = 0, leaf_input = leaf_input WHERE leaf_index = 3",
            "UPDATE audit_leaves SET leaf_index = 99 WHERE leaf_index = 1",
            "UPDATE audit_leaves SET leaf_index = NULL WHERE leaf_index = 1",
            "DELETE FROM audit_leaves WHERE leaf_index = 4",
            "DELETE FROM audit_leaves",
        ],
    )
    .await;
    // An unsequenced leaf's fields, and taking an index another leaf holds.
    assert_refused(
        &mut conn,
        &[&format!(
            "UPDATE audit_leaves SET method = 'x' WHERE id = {pending_id}"
        )],
    )
    .await;
    // (PostgreSQL lets the trigger pass this one — NULL to a value — and its unique key
    // refuses it; SQLite's update guard refuses it first, as REPLACE would otherwise delete.)
    let taken = format!("UPDATE audit_leaves SET leaf_index = 0 WHERE id = {pending_id}");
    match sqlx::query(&taken).execute(&mut conn).await {
        Ok(_) => panic!("the database accepted {taken:?}"),
        Err(sqlx::Error::Database(e)) => assert!(
            e.is_unique_violation() || e.message().contains("append-only:"),
            "{taken:?} failed for another reason: {e}"
        ),
        Err(e) => panic!("{taken:?} failed for another reason: {e}"),
    }
    // Resource rows, nodes and tree heads.
    assert_refused(
        &mut conn,
        &[
            "UPDATE audit_leaf_resources SET resource = 'results/x'",
            "DELETE FROM audit_leaf_resources",
            "UPDATE audit_nodes SET hash = upper(hash) WHERE level = 0 AND idx = 0",
            "DELETE FROM audit_nodes",
            "UPDATE tree_heads SET key_id = 'forged'",
            "DELETE FROM tree_heads",
        ],
    )
    .await;
    let zeros = "0".repeat(64);
    match store.backend() {
        Backend::Sqlite => {
            // REPLACE deletes the old row without firing delete triggers; the insert guards
            // stop it first.
            assert_refused(
                &mut conn,
                &[
                    &format!(
                        "INSERT OR REPLACE INTO audit_nodes (level, idx, hash) VALUES (0, 0, '{zeros}')"
                    ),
                    &format!(
                        "INSERT OR REPLACE INTO tree_heads (tree_size, root_hash, timestamp_us, signature, key_id) \
                         VALUES ({}, '{zeros}', 0, x'00', 'forged')",
                        head.tree_size
                    ),
                    &format!(
                        "INSERT OR REPLACE INTO audit_leaves SELECT * FROM audit_leaves WHERE id = {pending_id}"
                    ),
                    &format!(
                        "UPDATE OR REPLACE audit_leaves SET leaf_index = 2 WHERE id = {pending_id}"
                    ),
                ],
            )
            .await;
        }
        Backend::Postgres => {
            assert_refused(
                &mut conn,
                &[
                    &format!(
                        "INSERT INTO audit_nodes (level, idx, hash) VALUES (0, 0, '{zeros}') \
                         ON CONFLICT (level, idx) DO UPDATE SET hash = EXCLUDED.hash"
                    ),
                    "TRUNCATE audit_leaves CASCADE",
                    "TRUNCATE audit_nodes",
                    "TRUNCATE tree_heads",
                ],
            )
            .await;
        }
    }
    // A leaf is inserted unsequenced; resource rows only come with an unsequenced leaf.
    assert_refused(
        &mut conn,
        &[
            "INSERT INTO audit_leaf_resources (leaf_id, position, resource) \
             SELECT id, 9, 'results/x' FROM audit_leaves WHERE leaf_index = 0",
        ],
    )
    .await;
    conn.close().await.expect("close");

    // Nothing changed: the leaves read back and the proofs still verify.
    assert_eq!(store.sequenced_size().await.expect("size"), 5);
    for i in 0..5u64 {
        let stored = store
            .leaf_by_index(i)
            .await
            .expect("read")
            .expect("present");
        assert_eq!(stored.leaf, leaf(i));
        let proof = store.inclusion_proof(i, 5).await.expect("proof");
        verify_inclusion(&hashes[i as usize], i, 5, &proof, &head.root).expect("verifies");
    }
    assert_eq!(store.latest_tree_head().await.expect("head"), Some(head));
    assert_eq!(
        store
            .query_leaves(&LeafFilter::default(), None, 100)
            .await
            .expect("query")[1]
            .leaf,
        leaf(1)
    );
    // And the one permitted update still works.
    let next = sequence(&store, 10)
        .await
        .expect("sequenced the pending leaf");
    assert_eq!(next.tree_size, 6);
}

async fn conflicting_commit_rolls_back_whole(store: Store, _url: &str) {
    append(&store, 0..4).await;
    let head = sequence(&store, 100).await.expect("sequenced");
    append(&store, 4..6).await;

    let (frontier, size) = store.load_frontier().await.expect("frontier");
    let pending = store.unsequenced_leaves(10).await.expect("pending");
    let mut next = frontier.clone();
    let mut nodes = Vec::new();
    let mut assignments = Vec::new();
    for &(id, hash) in &pending {
        assignments.push((id, next.size()));
        nodes.extend(next.append(hash));
    }
    let new_head = TreeHead {
        tree_size: next.size(),
        root: next.root(),
        timestamp: OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time"),
        signature: vec![1, 2, 3],
        key_id: "test-log-key".to_owned(),
    };

    // A node already stored (leaf 0) among the new ones: refused, and nothing of the step
    // remains — the leaves are still pending, no new head, no new node.
    let mut clashing = nodes.clone();
    clashing.push(yrd_domain::merkle::NodeWrite {
        level: 0,
        index: 0,
        hash: new_head.root,
    });
    assert!(matches!(
        store
            .commit_sequence(&assignments, &clashing, &new_head)
            .await,
        Err(AuditError::NodeExists { level: 0, index: 0 })
    ));
    // A step that does not start where the log ends.
    let shifted: Vec<(i64, u64)> = assignments.iter().map(|&(id, i)| (id, i + 1)).collect();
    assert!(matches!(
        store.commit_sequence(&shifted, &nodes, &new_head).await,
        Err(AuditError::NotContiguous { log_size: 4, .. })
    ));
    // A head whose size does not match the step.
    let mut wrong_size = new_head.clone();
    wrong_size.tree_size += 1;
    assert!(matches!(
        store
            .commit_sequence(&assignments, &nodes, &wrong_size)
            .await,
        Err(AuditError::NotContiguous { .. })
    ));
    // A leaf that is already sequenced, given the next index.
    let sequenced_id = store
        .leaf_by_index(0)
        .await
        .expect("read")
        .expect("leaf")
        .id;
    let mut reused = assignments.clone();
    reused[1].0 = sequenced_id;
    assert!(matches!(
        store.commit_sequence(&reused, &nodes, &new_head).await,
        Err(AuditError::LeafNotPending { id }) if id == sequenced_id
    ));

    assert_eq!(store.sequenced_size().await.expect("size"), size);
    assert_eq!(store.latest_tree_head().await.expect("head"), Some(head));
    assert_eq!(
        store.unsequenced_leaves(10).await.expect("pending"),
        pending
    );
    let stray = store
        .audit_nodes(&nodes.iter().map(|n| n.id()).collect::<Vec<_>>())
        .await
        .expect("nodes");
    assert!(
        stray.is_empty(),
        "no node of the failed steps is stored: {stray:?}"
    );

    // The correct step then goes through, and a replay of it is refused.
    store
        .commit_sequence(&assignments, &nodes, &new_head)
        .await
        .expect("commit");
    assert_eq!(store.sequenced_size().await.expect("size"), 6);
    assert!(
        store
            .commit_sequence(&assignments, &nodes, &new_head)
            .await
            .is_err()
    );
    let proof = store.consistency_proof(4, 6).await.expect("proof");
    let head4 = store.tree_head_at(4).await.expect("head").expect("some");
    verify_consistency(4, 6, &head4.root, &new_head.root, &proof).expect("consistent");
}

async fn sequencer_lock_is_exclusive(store: Store, _url: &str) {
    let mut first = store
        .try_sequencer_lock()
        .await
        .expect("lock")
        .expect("free");
    assert!(first.is_held().await.expect("held"));
    match store.backend() {
        Backend::Sqlite => {
            // One process owns the file: the guard always succeeds.
            let second = store.try_sequencer_lock().await.expect("lock");
            assert!(second.is_some());
        }
        Backend::Postgres => {
            assert!(
                store.try_sequencer_lock().await.expect("lock").is_none(),
                "a second guard must not get the lock while the first holds it"
            );
            assert!(first.is_held().await.expect("held"));
            drop(first);
            // The server frees the lock once it sees the dropped session close; wait for that
            // (bounded), then the lock is free again.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let mut second = loop {
                if let Some(lock) = store.try_sequencer_lock().await.expect("lock") {
                    break lock;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the lock was not released after its guard was dropped"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert!(second.is_held().await.expect("held"));
            assert!(store.try_sequencer_lock().await.expect("lock").is_none());
            // An explicit release frees it at once.
            second.release().await.expect("release");
            let third = store.try_sequencer_lock().await.expect("lock");
            assert!(third.is_some(), "released lock is free immediately");
        }
    }
}
