-- The consumer lookup (GET /v1/public/refunds/{merchant_refund_no}?phone_last4=) finds the
-- refunds with a receipt number across all merchants: an index, not a scan of every refund.
-- `id` in the index serves the lookup's ORDER BY.
CREATE INDEX refunds_by_merchant_refund_no ON refunds (merchant_refund_no, id);

-- Wrong facts given for a refund in the public lookup, per fixed window (an hour from the
-- first failure). Reaching the limit locks the refund's public lookup until the window
-- ends, for every client and every server sharing the database.
CREATE TABLE public_lookup_failures (
    refund_id       TEXT PRIMARY KEY REFERENCES refunds(id),
    window_start_us BIGINT NOT NULL,
    failures        BIGINT NOT NULL
);
