-- Hu-Lu joint processing (沪鲁通办) of production-licence applications (工业产品生产许可证).
--
-- `licence_applications` holds one row per application: the columns lists filter on, the
-- state machine's data (`machine`, JSON of yrd_domain::licensing::Application) and the
-- application as the contract shows it without its history (`view`, an encoded
-- LicenceApplication). `version` grows by one with every write: a step updates the row only
-- while it is still at the version the step was computed from, so two replicas (or two calls)
-- never both apply a step to the same state. `next_due` is the earliest running time limit not
-- yet flagged, `YYYY-MM-DD`, which the overdue scheduler reads by index.
CREATE TABLE licence_applications (
    id                 TEXT PRIMARY KEY NOT NULL,
    accepting_agency   TEXT NOT NULL,
    issuing_agency     TEXT NOT NULL,
    state              TEXT NOT NULL,
    applicant_uscc     TEXT NOT NULL,
    catalogue_code     TEXT NOT NULL,
    overdue            BIGINT NOT NULL,
    next_due           TEXT,
    version            BIGINT NOT NULL,
    machine            TEXT NOT NULL,
    view               BYTEA NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

CREATE INDEX licence_applications_by_accepting ON licence_applications (accepting_agency, created_at, id);
CREATE INDEX licence_applications_by_issuing ON licence_applications (issuing_agency, created_at, id);
CREATE INDEX licence_applications_next_due ON licence_applications (next_due);

-- Every step of an application, oldest first: an encoded ApplicationStep.
CREATE TABLE licence_application_steps (
    application_id     TEXT NOT NULL REFERENCES licence_applications (id),
    seq                BIGINT NOT NULL,
    body               BYTEA NOT NULL,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (application_id, seq)
);

-- Issued licences. The number is the primary key: two issues can never share one.
CREATE TABLE licences (
    number             TEXT PRIMARY KEY NOT NULL,
    application_id     TEXT NOT NULL UNIQUE REFERENCES licence_applications (id),
    accepting_agency   TEXT NOT NULL,
    issuing_agency     TEXT NOT NULL,
    holder_uscc        TEXT NOT NULL,
    catalogue_code     TEXT NOT NULL,
    state              TEXT NOT NULL,
    body               BYTEA NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

CREATE INDEX licences_by_issuing ON licences (issuing_agency, created_at, number);
CREATE INDEX licences_by_accepting ON licences (accepting_agency, created_at, number);

-- The last enterprise serial handed out per licence-number prefix
-- (province abbreviation, industry, product), advanced in its own committed transaction.
CREATE TABLE licence_serials (
    prefix             TEXT PRIMARY KEY NOT NULL,
    last_serial        BIGINT NOT NULL
);
