-- Receipts and tree heads get keys of their own (issue 16, item 5): the purposes 'receipt'
-- and 'tree_head' join 'access_token' and the legacy 'log' (the one key that signed both
-- until now; it stays, retired, so that what it signed stays verifiable). Log keys are
-- never deleted: their retires_at closes their validity window, it does not end publication.
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_purpose_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_purpose_check
    CHECK (purpose IN ('access_token', 'log', 'receipt', 'tree_head'));
