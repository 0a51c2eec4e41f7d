-- Referrals of non-conforming results (不合格产品联动处置,移送/协查): one row per referral with
-- the columns lists and the deadline scheduler are driven by, the referral's state machine
-- (JSON of the domain's `Referral`) and the referral as partners read it (an encoded
-- `yrd.exchange.v1.Referral` with its full timeline and reactions).
--
-- Every write is a conditional update on `revision` (the machine's step count), so two
-- replicas (or a scheduler and a handler) that act on the same referral at once never both
-- succeed: the loser's transaction, with its feed events, rolls back.
CREATE TABLE referrals (
    id                    TEXT PRIMARY KEY NOT NULL,
    result_id             TEXT NOT NULL REFERENCES results (id),
    result_version        BIGINT NOT NULL,
    sampling_agency       TEXT NOT NULL,
    handling_agency       TEXT NOT NULL,
    -- The domain state's stored name (opened, delivered, …, closed).
    state                 TEXT NOT NULL,
    -- 1 until the referral is closed.
    is_open               BIGINT NOT NULL CHECK (is_open IN (0, 1)),
    -- The product name lower-cased (Unicode), for case-insensitive substring filters.
    product_name_fold     TEXT NOT NULL,
    producer_uscc         TEXT NOT NULL,
    -- 1 while a deadline is flagged overdue.
    overdue               BIGINT NOT NULL CHECK (overdue IN (0, 1)),
    -- 1 once the referral is flagged for the announcement (逾期不改正公告).
    announcement_required BIGINT NOT NULL CHECK (announcement_required IN (0, 1)),
    -- When the next unflagged deadline becomes overdue (the start of the day after it, China
    -- Standard Time), Unix microseconds; NULL when no deadline runs (closed, paused, met).
    next_due_at           BIGINT,
    revision              BIGINT NOT NULL,
    machine               TEXT NOT NULL,
    body                  BLOB NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

-- One open referral per result and handling agency: the database refuses a second one even
-- when two calls race past the handler's check.
CREATE UNIQUE INDEX referrals_one_open ON referrals (result_id, handling_agency) WHERE is_open = 1;
-- The scheduler reads the referrals whose next deadline has passed, earliest first.
CREATE INDEX referrals_due ON referrals (next_due_at) WHERE next_due_at IS NOT NULL;
-- Lists are newest first per party, keyset-paged on (created_at, id).
CREATE INDEX referrals_by_sampling ON referrals (sampling_agency, created_at, id);
CREATE INDEX referrals_by_handling ON referrals (handling_agency, created_at, id);
CREATE INDEX referrals_by_result ON referrals (result_id);

-- Agencies that reacted to a referral (EU Safety Gate style); they receive later steps' events
-- and list the referrals they reacted to.
CREATE TABLE referral_reactors (
    referral_id           TEXT NOT NULL REFERENCES referrals (id),
    agency                TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    PRIMARY KEY (referral_id, agency)
);
CREATE INDEX referral_reactors_by_agency ON referral_reactors (agency, referral_id);
