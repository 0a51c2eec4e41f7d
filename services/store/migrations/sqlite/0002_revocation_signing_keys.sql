-- Revocation order and the exchange's signing keys.

-- Monotonic counters (the CRL number is the revocation counter), updated with
-- UPDATE … RETURNING inside the transaction that needs the next value.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('revocation', 0);

-- The revocation counter value at which a certificate was revoked: every replica polls the
-- maximum to learn, within a fraction of a second, that the CRL must be rebuilt.
ALTER TABLE certificates ADD COLUMN revocation_seq BIGINT;
CREATE UNIQUE INDEX certificates_by_revocation ON certificates (revocation_seq);

-- Signing keys (ES256) shared by every replica: access tokens now, the log later.
-- A key signs from activates_at; once a successor exists it keeps verifying until retires_at.
CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY NOT NULL,
    purpose         TEXT NOT NULL CHECK (purpose IN ('access_token', 'log')),
    private_key_pem TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    activates_at    BIGINT NOT NULL,
    retires_at      BIGINT
);
CREATE INDEX signing_keys_by_purpose ON signing_keys (purpose, activates_at);
