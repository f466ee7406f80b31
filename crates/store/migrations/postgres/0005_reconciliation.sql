-- Reconciliation (对账): imported channel statements and the exceptions they opened.
-- (PostgreSQL twin of the SQLite migration.) Amounts are BIGINT fen; instants are BIGINT microseconds since the Unix epoch (UTC).
--
-- merchant_id: a channel statement covers the whole acquirer (every merchant on the
-- channel), so an import row belongs to no merchant and carries merchant_id = '' — the
-- acquirer's own shard, the same value an exception about an unknown statement line gets.
-- The column is NOT NULL with '' rather than nullable so that the sharding rule "every table
-- carries merchant_id" holds with one key type and equality lookups (NULL never equals).
-- Each exception carries the merchant of the payment or refund it is about.
CREATE TABLE reconciliations (
    id            TEXT PRIMARY KEY,            -- recon_…
    merchant_id   TEXT NOT NULL DEFAULT '',    -- '' : acquirer-wide (see above)
    channel       TEXT NOT NULL CHECK (channel IN ('wechat', 'alipay', 'card', 'yuanlu')),
    business_date TEXT NOT NULL,               -- YYYY-MM-DD, Asia/Shanghai
    file_sha256   TEXT NOT NULL,               -- hex SHA-256 of the file as uploaded
    lines         BIGINT NOT NULL,            -- statement lines read
    records       BIGINT NOT NULL,            -- our records matched against
    exceptions    BIGINT NOT NULL,            -- exceptions opened (one per item not matched)
    -- clean: nothing to resolve; open: exceptions still open; resolved: all resolved.
    status        TEXT NOT NULL CHECK (status IN ('clean', 'open', 'resolved')),
    report        TEXT NOT NULL,               -- JSON: counts and amounts per class
    created_by    TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    -- Re-importing the same file for the same channel and date finds this row.
    UNIQUE (channel, business_date, file_sha256)
);
CREATE INDEX reconciliations_by_file ON reconciliations (channel, file_sha256);

CREATE TABLE recon_exceptions (
    id                 TEXT PRIMARY KEY,       -- rex_…, in file order within an import
    reconciliation_id  TEXT NOT NULL REFERENCES reconciliations(id),
    merchant_id        TEXT NOT NULL,          -- '' for a line yuanlu has no record of
    class              TEXT NOT NULL CHECK (class IN ('amount_mismatch', 'missing_in_channel',
                           'unexpected_in_channel', 'duplicate_in_channel', 'status_mismatch',
                           'credited_after_refund')),
    kind               TEXT NOT NULL CHECK (kind IN ('payment', 'refund')),
    line_no            BIGINT,                -- the statement line, if the statement lists it
    our_ref            TEXT,                   -- pay_… or rf_…
    channel_txn_id     TEXT,
    our_amount_fen     BIGINT,
    channel_amount_fen BIGINT,
    detail             TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    resolution_note    TEXT,
    resolved_by        TEXT,
    resolved_at_us     BIGINT,
    created_at_us      BIGINT NOT NULL
);
CREATE INDEX recon_exceptions_by_reconciliation ON recon_exceptions (reconciliation_id, id);
CREATE INDEX recon_exceptions_by_merchant ON recon_exceptions (merchant_id, id);
CREATE INDEX recon_exceptions_by_status ON recon_exceptions (status, id);

-- Loading a day's records for an import without scanning every payment and refund.
-- Partial indexes, so refunds not yet sent or confirmed cost nothing at creation.
CREATE INDEX payments_by_capture ON payments (captured_at_us);
CREATE INDEX refunds_by_succeeded ON refunds (succeeded_at_us) WHERE succeeded_at_us IS NOT NULL;
CREATE INDEX refunds_by_dispatched_unconfirmed ON refunds (dispatched_at_us)
    WHERE succeeded_at_us IS NULL AND dispatched_at_us IS NOT NULL;
