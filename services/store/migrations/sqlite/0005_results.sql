-- Spot-check results (监督抽查结果): one row per result with the search columns of its latest
-- version, every version's body, the places and name bigrams that drive region and product-name
-- searches, and the idempotency record of every write.
--
-- Searches are newest first with keyset pagination on (created_at DESC, id DESC): every index a
-- search can be driven by ends in (created_at, id), so a page is one index range read that stops
-- after page_size rows, however deep the page and however many results are stored.
CREATE TABLE results (
    id                 TEXT PRIMARY KEY NOT NULL,
    publisher          TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('published', 'withdrawn')),
    latest_version     BIGINT NOT NULL,
    -- Search columns, always those of the latest version.
    producer_uscc      TEXT NOT NULL,
    seller_uscc        TEXT,
    product_name       TEXT NOT NULL,
    -- The product name lower-cased (Unicode), for case-insensitive substring checks.
    product_name_fold  TEXT NOT NULL,
    platform           TEXT,
    producer_region    TEXT NOT NULL,
    producer_province  TEXT NOT NULL,
    seller_region      TEXT NOT NULL,
    seller_province    TEXT NOT NULL,
    verdict            TEXT NOT NULL,
    campaign_code      TEXT,
    campaign_kind      TEXT,
    -- YYYY-MM-DD: text order is date order.
    sampling_date      TEXT NOT NULL,
    -- Publication time of version 1, Unix microseconds; with id the page order.
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    withdrawn_at       BIGINT,
    withdrawal_reason  TEXT
);

CREATE INDEX results_newest ON results (created_at, id);
CREATE INDEX results_by_producer ON results (producer_uscc, created_at, id);
CREATE INDEX results_by_seller ON results (seller_uscc, created_at, id);
CREATE INDEX results_by_publisher ON results (publisher, created_at, id);
-- Two low-cardinality filters whose combination may be empty (an agency that never published a
-- non-conforming result) would otherwise walk the whole range of one of them.
CREATE INDEX results_by_publisher_verdict ON results (publisher, verdict, created_at, id);
CREATE INDEX results_by_verdict ON results (verdict, created_at, id);
CREATE INDEX results_by_campaign ON results (campaign_code, created_at, id);
CREATE INDEX results_by_campaign_kind ON results (campaign_kind, created_at, id);
CREATE INDEX results_by_platform ON results (platform, created_at, id);
CREATE INDEX results_by_state ON results (state, created_at, id);
CREATE INDEX results_by_sampling_date ON results (sampling_date, created_at, id);

CREATE TABLE result_versions (
    result_id          TEXT NOT NULL REFERENCES results (id),
    version            BIGINT NOT NULL,
    -- The encoded SpotCheckResult of this version (content fields only).
    body               BLOB NOT NULL,
    -- Why this version was made; NULL for version 1.
    reason             TEXT,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (result_id, version)
);

-- Every GB/T 2260 level (province, city, county) of the producer's and the seller's region, once
-- per result: a region filter is one equality on `place`, driven in page order. The verdict is
-- copied here so that "province + verdict" is one index range too, even where the province has
-- no result of that verdict.
CREATE TABLE result_places (
    place              TEXT NOT NULL,
    verdict            TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    result_id          TEXT NOT NULL REFERENCES results (id),
    PRIMARY KEY (place, created_at, result_id)
);
CREATE INDEX result_places_by_verdict ON result_places (place, verdict, created_at, result_id);
CREATE INDEX result_places_by_result ON result_places (result_id);

-- The distinct character bigrams of each result's folded product name: a product-name search
-- of two or more characters is driven by one of its bigrams in page order and checked against
-- the whole name, instead of scanning every result with LIKE '%x%'.
CREATE TABLE result_name_grams (
    gram               TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    result_id          TEXT NOT NULL REFERENCES results (id),
    PRIMARY KEY (gram, created_at, result_id)
);
CREATE INDEX result_name_grams_by_result ON result_name_grams (result_id);

-- Idempotency of writes: the first answer to (agency, method, request_id), and the digest of the
-- request it answered, so a retry gets the same answer and a different body is refused.
CREATE TABLE idempotency (
    agency             TEXT NOT NULL,
    method             TEXT NOT NULL,
    request_id         TEXT NOT NULL,
    request_digest     TEXT NOT NULL,
    response           BLOB NOT NULL,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (agency, method, request_id)
);
CREATE INDEX idempotency_by_age ON idempotency (created_at);
