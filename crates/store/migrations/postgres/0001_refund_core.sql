-- The refund core (PostgreSQL twin of the SQLite migration): merchants and their API keys, payments, refunds, the audit chain.
-- Amounts are BIGINT fen; instants are BIGINT microseconds since the Unix epoch (UTC),
-- the same representation as on PostgreSQL so both backends answer identically.
-- Every table carries merchant_id (merchants are the unit of sharding).

CREATE TABLE merchants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    settings      TEXT NOT NULL,            -- JSON, always complete (defaults applied)
    created_at_us BIGINT NOT NULL
);

-- Keys are stored as SHA-256 of the key: they are long random secrets, so a slow hash adds
-- nothing; the key itself is shown once.
CREATE TABLE api_keys (
    key_hash      TEXT PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    merchant_id   TEXT NOT NULL REFERENCES merchants(id),
    role          TEXT NOT NULL CHECK (role IN ('supervisor', 'staff')),
    created_at_us BIGINT NOT NULL
);

CREATE TABLE payments (
    id                   TEXT PRIMARY KEY,
    merchant_id          TEXT NOT NULL REFERENCES merchants(id),
    terminal_id          TEXT,
    channel              TEXT NOT NULL,
    amount_fen           BIGINT NOT NULL CHECK (amount_fen > 0),
    currency             TEXT NOT NULL,
    fee_fen              BIGINT NOT NULL CHECK (fee_fen >= 0),
    kind                 TEXT NOT NULL,
    member               BOOLEAN NOT NULL,
    payer_account        TEXT,              -- masked: '**** 0403' or a masked wallet account
    payer_bank           TEXT,
    batch_no             TEXT,
    trace_no             TEXT,
    rrn                  TEXT,
    order_no             TEXT,
    shipping_status      TEXT,
    phone                TEXT,
    captured_at_us       BIGINT NOT NULL,
    created_at_us        BIGINT NOT NULL,
    -- Counters kept in the same transaction as every refund change; the checks are the
    -- last line of defence of the refund cap.
    amount_refunded_fen  BIGINT NOT NULL DEFAULT 0,
    amount_in_flight_fen BIGINT NOT NULL DEFAULT 0,
    fee_returned_fen     BIGINT NOT NULL DEFAULT 0,
    refund_count         BIGINT NOT NULL DEFAULT 0,
    voided               BOOLEAN NOT NULL DEFAULT FALSE,
    CHECK (amount_refunded_fen >= 0 AND amount_in_flight_fen >= 0
           AND amount_refunded_fen + amount_in_flight_fen <= amount_fen),
    CHECK (fee_returned_fen >= 0 AND fee_returned_fen <= fee_fen)
);
CREATE INDEX payments_by_merchant ON payments (merchant_id, id);
CREATE INDEX payments_by_merchant_capture ON payments (merchant_id, captured_at_us);

CREATE TABLE refunds (
    id                    TEXT PRIMARY KEY,
    merchant_id           TEXT NOT NULL REFERENCES merchants(id),
    payment_id            TEXT NOT NULL REFERENCES payments(id),
    merchant_refund_no    TEXT NOT NULL,
    channel               TEXT NOT NULL,
    type                  TEXT NOT NULL,
    status                TEXT NOT NULL,
    amount_fen            BIGINT NOT NULL CHECK (amount_fen > 0),
    fee_refunded_fen      BIGINT NOT NULL CHECK (fee_refunded_fen >= 0),
    reason                TEXT NOT NULL,
    note                  TEXT,
    requested_by_role     TEXT NOT NULL,
    requested_by_name     TEXT,
    review_reasons        TEXT NOT NULL,     -- comma-separated reason codes, '' for none
    required_reviewer     TEXT,
    review_note           TEXT,
    reviewed_by           TEXT,
    tracking_no           TEXT,
    failure_reason        TEXT,
    expected_arrival_by_us BIGINT,
    created_at_us         BIGINT NOT NULL,
    updated_at_us         BIGINT NOT NULL,
    UNIQUE (merchant_id, merchant_refund_no)
);
CREATE INDEX refunds_by_merchant ON refunds (merchant_id, id);
CREATE INDEX refunds_by_payment ON refunds (payment_id, id);
CREATE INDEX refunds_by_merchant_created ON refunds (merchant_id, created_at_us);
CREATE INDEX refunds_by_status ON refunds (status, id);

-- Settlement runs per business date (filled by settlement; read by the void rule).
CREATE TABLE settlement_runs (
    business_date TEXT PRIMARY KEY,          -- YYYY-MM-DD, Asia/Shanghai
    ran_at_us     BIGINT NOT NULL
);

-- Append-only, one chain per merchant plus 'system'. The head row is the lock that orders
-- appends and the record that makes a removed tail visible.
CREATE TABLE audit_log (
    chain      TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    at_us      BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    data       TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_by_subject ON audit_log (subject_id, at_us);

CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY,
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
