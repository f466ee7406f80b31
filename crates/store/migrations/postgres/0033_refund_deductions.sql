-- Deductions agreed with the consumer (扣除手续费或税费, issue 15 item 2): a handling fee, a
-- restocking charge, tax, each with its reason. The merchant keeps them; the consumer gets
-- the refund's amount less their sum, which is what the channel is sent.
CREATE TABLE refund_deductions (
    refund_id   TEXT NOT NULL,
    -- 1-based, in the order the request gave them.
    line_no     BIGINT NOT NULL,
    merchant_id TEXT NOT NULL,
    -- handling_fee, restocking, tax, other
    kind        TEXT NOT NULL,
    amount_fen  BIGINT NOT NULL CHECK (amount_fen > 0),
    reason      TEXT NOT NULL,
    -- The merchant is in every key, so the table can be distributed by it (docs/scaling.md).
    PRIMARY KEY (refund_id, line_no, merchant_id),
    FOREIGN KEY (refund_id, merchant_id) REFERENCES refunds (id, merchant_id)
);

-- Their sum on the refund itself, so that dispatch, the ledger and every view know the
-- consumer's amount (`amount_fen - deducted_fen`) from the row they already read.
ALTER TABLE refunds ADD COLUMN deducted_fen BIGINT NOT NULL DEFAULT 0;
