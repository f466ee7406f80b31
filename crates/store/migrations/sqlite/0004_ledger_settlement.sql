-- The double-entry ledger, merchant balances, and settlement statements.
-- A posting is one money event; its entries sum to zero (debit > 0, credit < 0).
CREATE TABLE ledger_postings (
    id            TEXT PRIMARY KEY,
    merchant_id   TEXT NOT NULL,
    -- payment_captured, void_completed, refund_queued, refund_released, refund_succeeded,
    -- settlement_payout, carry_forward, carry_applied
    event         TEXT NOT NULL,
    reference     TEXT NOT NULL,              -- the payment, refund or statement
    payment_id    TEXT,
    channel       TEXT,
    amount_fen    INTEGER NOT NULL,
    fee_fen       INTEGER NOT NULL,
    business_date TEXT NOT NULL,              -- Asia/Shanghai date of the event
    at_us         INTEGER NOT NULL
);
CREATE INDEX ledger_postings_by_merchant_date ON ledger_postings (merchant_id, business_date);

CREATE TABLE ledger_entries (
    posting_id  TEXT NOT NULL REFERENCES ledger_postings(id),
    line_no     INTEGER NOT NULL,
    merchant_id TEXT NOT NULL,
    account     TEXT NOT NULL,
    amount_fen  INTEGER NOT NULL,
    PRIMARY KEY (posting_id, line_no)
);
CREATE INDEX ledger_entries_by_account ON ledger_entries (account);

-- Each merchant's position, kept in the same transaction as every posting: the funding
-- rule reads it under a row lock instead of summing the ledger.
CREATE TABLE merchant_balances (
    merchant_id   TEXT PRIMARY KEY REFERENCES merchants(id),
    unsettled_fen INTEGER NOT NULL DEFAULT 0,  -- owed to the merchant, not yet paid out
    carried_fen   INTEGER NOT NULL DEFAULT 0,  -- debt carried from earlier settlements (<= 0)
    CHECK (carried_fen <= 0)
);

CREATE TABLE settlement_statements (
    id                  TEXT PRIMARY KEY,
    merchant_id         TEXT NOT NULL REFERENCES merchants(id),
    business_date       TEXT NOT NULL,
    payout_date         TEXT NOT NULL,
    payout_fen          INTEGER NOT NULL CHECK (payout_fen >= 0),
    closing_carried_fen INTEGER NOT NULL CHECK (closing_carried_fen <= 0),
    statement           TEXT NOT NULL,        -- the whole statement as JSON
    created_at_us       INTEGER NOT NULL,
    UNIQUE (merchant_id, business_date)
);
