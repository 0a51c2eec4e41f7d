-- The tamper-evident exchange log: leaves, the complete subtrees of its RFC 6962 Merkle tree,
-- and the signed tree heads.
--
-- Append-only is enforced here, not only in code: no row of these tables is ever deleted, and
-- the one update allowed is the sequencer giving an unsequenced leaf its Merkle index, once.
-- Every refusal's message starts with 'append-only:'.
--
-- SQLite's REPLACE conflict resolution deletes the conflicting row *without* firing delete
-- triggers (unless recursive_triggers is on), so `INSERT OR REPLACE` / `UPDATE OR REPLACE`
-- would slip past a plain BEFORE DELETE trigger: the BEFORE INSERT guards below refuse any
-- insert that would collide with a stored row, and the update guard refuses an index that
-- another leaf already holds.

CREATE TABLE audit_leaves (
    -- Insertion order; never reused (AUTOINCREMENT).
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The Merkle leaf index, assigned by the sequencer; NULL until then.
    leaf_index       BIGINT UNIQUE CHECK (leaf_index >= 0),
    leaf_version     BIGINT NOT NULL,
    time_us          BIGINT NOT NULL,
    trace_id         TEXT NOT NULL,
    span_id          TEXT NOT NULL,
    agency           TEXT NOT NULL,
    cert_fingerprint TEXT NOT NULL,
    profile          TEXT NOT NULL,
    officer          TEXT NOT NULL,
    token_id         TEXT NOT NULL,
    method           TEXT NOT NULL,
    -- JSON array of the resource names, in the order the handler reported them.
    resources        TEXT NOT NULL,
    code             BIGINT NOT NULL,
    message          TEXT NOT NULL,
    request_sha256   TEXT NOT NULL,
    duration_us      BIGINT NOT NULL,
    -- The canonical text the leaf hash covers (yrd_domain::audit::LeafData::leaf_input).
    leaf_input       TEXT NOT NULL,
    leaf_hash        TEXT NOT NULL CHECK (length(leaf_hash) = 64)
);

-- What the sequencer has still to do, in insertion order.
CREATE INDEX audit_leaves_unsequenced ON audit_leaves (id) WHERE leaf_index IS NULL;
-- Auditor queries: each filter, then keyset pagination on the index.
CREATE INDEX audit_leaves_by_time ON audit_leaves (time_us);
-- Receipts name a leaf by its hash; partners look it up to get an inclusion proof.
CREATE INDEX audit_leaves_by_hash ON audit_leaves (leaf_hash);
CREATE INDEX audit_leaves_by_agency ON audit_leaves (agency, leaf_index);
CREATE INDEX audit_leaves_by_method ON audit_leaves (method, leaf_index);
CREATE INDEX audit_leaves_by_code ON audit_leaves (code, leaf_index);
CREATE INDEX audit_leaves_by_trace ON audit_leaves (trace_id);

-- One row per resource name of a leaf, so "every call that touched results/r1" is an index
-- lookup rather than a scan of JSON text.
CREATE TABLE audit_leaf_resources (
    leaf_id  BIGINT NOT NULL REFERENCES audit_leaves (id),
    position BIGINT NOT NULL,
    resource TEXT NOT NULL,
    PRIMARY KEY (leaf_id, position)
);
CREATE INDEX audit_leaf_resources_by_name ON audit_leaf_resources (resource, leaf_id);

-- Complete subtrees: level l, index k covers leaves [k·2^l, (k+1)·2^l); level 0 is the leaf
-- hashes. A complete subtree of an append-only log never changes.
CREATE TABLE audit_nodes (
    level BIGINT NOT NULL CHECK (level >= 0 AND level < 64),
    idx   BIGINT NOT NULL CHECK (idx >= 0),
    hash  TEXT NOT NULL CHECK (length(hash) = 64),
    PRIMARY KEY (level, idx)
);

-- Signed tree heads, one per published size.
CREATE TABLE tree_heads (
    tree_size    BIGINT PRIMARY KEY NOT NULL CHECK (tree_size > 0),
    root_hash    TEXT NOT NULL CHECK (length(root_hash) = 64),
    timestamp_us BIGINT NOT NULL,
    signature    BLOB NOT NULL,
    key_id       TEXT NOT NULL
);

-- Leaves ----------------------------------------------------------------------------------------

CREATE TRIGGER audit_leaves_insert_guard BEFORE INSERT ON audit_leaves
WHEN NEW.leaf_index IS NOT NULL OR EXISTS (SELECT 1 FROM audit_leaves WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'append-only: an audit leaf is inserted unsequenced and never replaces another');
END;

CREATE TRIGGER audit_leaves_update_guard BEFORE UPDATE ON audit_leaves
WHEN NOT (
        OLD.leaf_index IS NULL AND NEW.leaf_index IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM audit_leaves WHERE leaf_index = NEW.leaf_index AND id <> OLD.id)
        AND NEW.id IS OLD.id
        AND NEW.leaf_version IS OLD.leaf_version
        AND NEW.time_us IS OLD.time_us
        AND NEW.trace_id IS OLD.trace_id
        AND NEW.span_id IS OLD.span_id
        AND NEW.agency IS OLD.agency
        AND NEW.cert_fingerprint IS OLD.cert_fingerprint
        AND NEW.profile IS OLD.profile
        AND NEW.officer IS OLD.officer
        AND NEW.token_id IS OLD.token_id
        AND NEW.method IS OLD.method
        AND NEW.resources IS OLD.resources
        AND NEW.code IS OLD.code
        AND NEW.message IS OLD.message
        AND NEW.request_sha256 IS OLD.request_sha256
        AND NEW.duration_us IS OLD.duration_us
        AND NEW.leaf_input IS OLD.leaf_input
        AND NEW.leaf_hash IS OLD.leaf_hash
    )
BEGIN
    SELECT RAISE(ABORT, 'append-only: an audit leaf never changes except its leaf_index being set once');
END;

CREATE TRIGGER audit_leaves_delete_guard BEFORE DELETE ON audit_leaves
BEGIN
    SELECT RAISE(ABORT, 'append-only: an audit leaf is never deleted');
END;

-- Resource rows: written with their leaf, before it is sequenced. -----------------------------

CREATE TRIGGER audit_leaf_resources_insert_guard BEFORE INSERT ON audit_leaf_resources
WHEN EXISTS (SELECT 1 FROM audit_leaf_resources WHERE leaf_id = NEW.leaf_id AND position = NEW.position)
  OR EXISTS (SELECT 1 FROM audit_leaves WHERE id = NEW.leaf_id AND leaf_index IS NOT NULL)
BEGIN
    SELECT RAISE(ABORT, 'append-only: resource names are written with their audit leaf, before it is sequenced, and never replaced');
END;

CREATE TRIGGER audit_leaf_resources_update_guard BEFORE UPDATE ON audit_leaf_resources
BEGIN
    SELECT RAISE(ABORT, 'append-only: audit leaf resource names never change');
END;

CREATE TRIGGER audit_leaf_resources_delete_guard BEFORE DELETE ON audit_leaf_resources
BEGIN
    SELECT RAISE(ABORT, 'append-only: audit leaf resource names are never deleted');
END;

-- Nodes -----------------------------------------------------------------------------------------

CREATE TRIGGER audit_nodes_insert_guard BEFORE INSERT ON audit_nodes
WHEN EXISTS (SELECT 1 FROM audit_nodes WHERE level = NEW.level AND idx = NEW.idx)
BEGIN
    SELECT RAISE(ABORT, 'append-only: this audit node is already stored and is never replaced');
END;

CREATE TRIGGER audit_nodes_update_guard BEFORE UPDATE ON audit_nodes
BEGIN
    SELECT RAISE(ABORT, 'append-only: an audit node never changes');
END;

CREATE TRIGGER audit_nodes_delete_guard BEFORE DELETE ON audit_nodes
BEGIN
    SELECT RAISE(ABORT, 'append-only: an audit node is never deleted');
END;

-- Tree heads ------------------------------------------------------------------------------------

CREATE TRIGGER tree_heads_insert_guard BEFORE INSERT ON tree_heads
WHEN EXISTS (SELECT 1 FROM tree_heads WHERE tree_size = NEW.tree_size)
BEGIN
    SELECT RAISE(ABORT, 'append-only: a tree head of this size is already stored and is never replaced');
END;

CREATE TRIGGER tree_heads_update_guard BEFORE UPDATE ON tree_heads
BEGIN
    SELECT RAISE(ABORT, 'append-only: a tree head never changes');
END;

CREATE TRIGGER tree_heads_delete_guard BEFORE DELETE ON tree_heads
BEGIN
    SELECT RAISE(ABORT, 'append-only: a tree head is never deleted');
END;
