-- Receipts and tree heads get keys of their own (issue 16, item 5): the purposes 'receipt'
-- and 'tree_head' join 'access_token' and the legacy 'log' (the one key that signed both
-- until now; it stays, retired, so that what it signed stays verifiable). Log keys are
-- never deleted: their retires_at closes their validity window, it does not end publication.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt.
CREATE TABLE signing_keys_new (
    kid             TEXT PRIMARY KEY NOT NULL,
    purpose         TEXT NOT NULL
                    CHECK (purpose IN ('access_token', 'log', 'receipt', 'tree_head')),
    private_key_pem TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    activates_at    BIGINT NOT NULL,
    retires_at      BIGINT
);
INSERT INTO signing_keys_new (kid, purpose, private_key_pem, created_at, activates_at, retires_at)
    SELECT kid, purpose, private_key_pem, created_at, activates_at, retires_at FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;
CREATE INDEX signing_keys_by_purpose ON signing_keys (purpose, activates_at);
