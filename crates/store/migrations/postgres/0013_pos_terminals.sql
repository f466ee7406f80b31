-- POS terminals speaking ISO 8583 (CUP) to the POS host, and the journal of what they sent.
-- A terminal is field 41 (terminal_id, an8) with field 42 (merchant_no, ans15); its master
-- key (TMK) and its current working MAK are sealed under the account key (AES-256-GCM, the
-- terminal's row id and the key's name as associated data), never stored in clear.
CREATE TABLE pos_terminals (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    terminal_id     TEXT NOT NULL,
    merchant_no     TEXT NOT NULL,
    tmk_sealed      TEXT NOT NULL,
    mak_sealed      TEXT,
    batch_no        TEXT,
    signed_on_at_us BIGINT,
    created_at_us   BIGINT NOT NULL,
    UNIQUE (terminal_id, merchant_no)
);
CREATE INDEX pos_terminals_by_merchant ON pos_terminals (merchant_id, id);

-- One row per request a terminal sent, keyed as the terminal keys it: batch and trace (STAN)
-- and the MTI (a reversal keeps its original's trace). A repeat gets answer_hex again
-- (the answer without its MAC, signed anew with the current MAK). response_code is NULL
-- while the request is being handled.
CREATE TABLE pos_journal (
    terminal_ref      TEXT NOT NULL REFERENCES pos_terminals(id),
    batch_no          TEXT NOT NULL,
    trace_no          TEXT NOT NULL,
    mti               TEXT NOT NULL,
    kind              TEXT NOT NULL,
    merchant_id       TEXT NOT NULL,
    amount_fen        BIGINT NOT NULL DEFAULT 0,
    card_masked       TEXT,
    rrn               TEXT,
    auth_code         TEXT,
    response_code     TEXT,
    answer_hex        TEXT,
    payment_id        TEXT,
    refund_id         TEXT,
    original_rrn      TEXT,
    original_trace_no TEXT,
    reversed          BOOLEAN NOT NULL DEFAULT FALSE,
    business_date     TEXT NOT NULL,
    created_at_us     BIGINT NOT NULL,
    PRIMARY KEY (terminal_ref, batch_no, trace_no, mti)
);
CREATE INDEX pos_journal_by_rrn ON pos_journal (merchant_id, rrn);
