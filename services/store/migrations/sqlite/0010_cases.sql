-- Cases (串案, docs/cases.md): the non-conforming results of several agencies that concern the
-- same product. `case_findings` holds every published non-conforming result that names a model,
-- keyed by its normalised product, so that a publish or a correction finds the candidates of
-- its product in one index range; `cases` and `case_results` hold the links (a result is in at
-- most one case); `case_unlinks` the links an officer undid (never made again).
CREATE TABLE cases (
    id                 TEXT PRIMARY KEY NOT NULL,
    producer_uscc      TEXT NOT NULL,
    -- The normalised model the results share.
    model              TEXT NOT NULL,
    -- The province authority of the producer's province; NULL when none is registered.
    handling_agency    TEXT,
    state              TEXT NOT NULL CHECK (state IN ('open', 'dissolved')),
    -- YYYY-MM-DD: text order is date order.
    first_finding      TEXT NOT NULL,
    last_finding       TEXT NOT NULL,
    -- W3C trace id of the call that formed the case.
    trace_id           TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX cases_newest ON cases (created_at, id);
CREATE INDEX cases_by_producer ON cases (producer_uscc, created_at, id);

CREATE TABLE case_results (
    result_id          TEXT PRIMARY KEY NOT NULL REFERENCES results (id),
    case_id            TEXT NOT NULL REFERENCES cases (id),
    publisher          TEXT NOT NULL,
    finding_date       TEXT NOT NULL,
    linked_at          BIGINT NOT NULL
);
CREATE INDEX case_results_by_case ON case_results (case_id);
CREATE INDEX case_results_by_publisher ON case_results (publisher, case_id);

CREATE TABLE case_findings (
    result_id          TEXT PRIMARY KEY NOT NULL REFERENCES results (id),
    publisher          TEXT NOT NULL,
    producer_uscc      TEXT NOT NULL,
    model              TEXT NOT NULL,
    batch              TEXT,
    trademark          TEXT,
    finding_date       TEXT NOT NULL
);
CREATE INDEX case_findings_by_product ON case_findings (producer_uscc, model);

CREATE TABLE case_unlinks (
    case_id            TEXT NOT NULL REFERENCES cases (id),
    result_id          TEXT NOT NULL REFERENCES results (id),
    agency             TEXT NOT NULL,
    officer            TEXT NOT NULL,
    reason             TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (case_id, result_id)
);

-- One row per product that ever had a finding: a link locks its product's row first, so two
-- writes of the same product (on two PostgreSQL connections) take turns and the second sees
-- the first's finding.
CREATE TABLE case_product_locks (
    producer_uscc      TEXT NOT NULL,
    model              TEXT NOT NULL,
    PRIMARY KEY (producer_uscc, model)
);
