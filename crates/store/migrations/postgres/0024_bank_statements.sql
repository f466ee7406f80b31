-- Merchants' bank statements (银行对账单) imported to check settlement payouts against the
-- credits the bank booked (issue 15 item 4). The whole report is kept as JSON beside the
-- counts; the same file of the same merchant is one import.
CREATE TABLE bank_statement_imports (
    id               TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants(id),
    file_sha256      TEXT NOT NULL,
    first_date       TEXT NOT NULL,
    last_date        TEXT NOT NULL,
    lines            BIGINT NOT NULL,
    paid             BIGINT NOT NULL,
    different_amount BIGINT NOT NULL,
    missing          BIGINT NOT NULL,
    pending          BIGINT NOT NULL,
    unexplained      BIGINT NOT NULL,
    report           TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at_us    BIGINT NOT NULL,
    UNIQUE (merchant_id, file_sha256)
);
CREATE INDEX bank_statement_imports_by_merchant
    ON bank_statement_imports (merchant_id, created_at_us);

-- The payouts a statement's days cover are found by payout date.
CREATE INDEX settlement_statements_by_payout
    ON settlement_statements (merchant_id, payout_date);
