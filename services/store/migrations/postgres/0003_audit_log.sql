-- The tamper-evident exchange log: leaves, the complete subtrees of its RFC 6962 Merkle tree,
-- and the signed tree heads.
--
-- Append-only is enforced here, not only in code: no row of these tables is ever deleted or
-- truncated, and the one update allowed is the sequencer giving an unsequenced leaf its Merkle
-- index, once. Every refusal's message starts with 'append-only:'. (`INSERT … ON CONFLICT DO
-- UPDATE` goes through the update triggers, so it is refused too.) A database superuser can
-- still disable triggers; production should run the exchange as a role that owns neither these
-- tables nor the trigger functions.

CREATE TABLE audit_leaves (
    -- Insertion order.
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    signature    BYTEA NOT NULL,
    key_id       TEXT NOT NULL
);

-- Leaves: inserted unsequenced; the only update sets leaf_index from NULL, every other column
-- unchanged (compared as a whole row, so a column added later is covered too).
CREATE FUNCTION audit_leaves_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.leaf_index IS NOT NULL THEN
            RAISE EXCEPTION 'append-only: an audit leaf is inserted unsequenced'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.leaf_index IS NULL AND NEW.leaf_index IS NOT NULL
           AND (to_jsonb(NEW) - 'leaf_index') = (to_jsonb(OLD) - 'leaf_index') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'append-only: an audit leaf never changes except its leaf_index being set once (leaf id %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    ELSE
        RAISE EXCEPTION 'append-only: audit_leaves refuses %', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
END;
$$;

CREATE TRIGGER audit_leaves_row_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_leaves
    FOR EACH ROW EXECUTE FUNCTION audit_leaves_guard();

-- Resource rows are written with their leaf, before it is sequenced.
CREATE FUNCTION audit_leaf_resources_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_leaves WHERE id = NEW.leaf_id AND leaf_index IS NOT NULL) THEN
        RAISE EXCEPTION 'append-only: resource names are written with their audit leaf, before it is sequenced (leaf id %)', NEW.leaf_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_leaf_resources_insert_guard BEFORE INSERT ON audit_leaf_resources
    FOR EACH ROW EXECUTE FUNCTION audit_leaf_resources_insert_guard();

-- Every other change of an append-only table.
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'append-only: % refuses %', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER audit_leaves_no_truncate BEFORE TRUNCATE ON audit_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_leaf_resources_no_change BEFORE UPDATE OR DELETE ON audit_leaf_resources
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_leaf_resources_no_truncate BEFORE TRUNCATE ON audit_leaf_resources
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_nodes_no_change BEFORE UPDATE OR DELETE ON audit_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER tree_heads_no_change BEFORE UPDATE OR DELETE ON tree_heads
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER tree_heads_no_truncate BEFORE TRUNCATE ON tree_heads
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
