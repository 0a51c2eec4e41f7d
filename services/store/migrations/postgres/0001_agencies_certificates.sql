-- Agencies known to the exchange and the certificates issued to them.
-- Times are Unix microseconds (BIGINT) on both backends, so one query text serves both.
CREATE TABLE agencies (
    agency_id             TEXT PRIMARY KEY NOT NULL,
    region_code           TEXT NOT NULL,
    display_name          TEXT NOT NULL,
    display_name_zh       TEXT NOT NULL,
    state                 TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended')),
    is_delta_member       BIGINT NOT NULL DEFAULT 0 CHECK (is_delta_member IN (0, 1)),
    is_province_authority BIGINT NOT NULL DEFAULT 0 CHECK (is_province_authority IN (0, 1)),
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE certificates (
    serial            TEXT PRIMARY KEY NOT NULL,
    agency_id         TEXT NOT NULL REFERENCES agencies (agency_id),
    profile           TEXT NOT NULL CHECK (profile IN ('system', 'admin', 'auditor')),
    fingerprint       TEXT NOT NULL UNIQUE,
    subject           TEXT NOT NULL,
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    certificate_pem   TEXT NOT NULL,
    issued_at         BIGINT NOT NULL,
    revoked_at        BIGINT,
    revocation_reason TEXT
);

CREATE INDEX certificates_by_agency ON certificates (agency_id, profile, not_after);
