-- The consumer's answer to "has the money arrived?" (确认收款, issue 15 item 3), one row per
-- refund: the latest answer, when the consumer said "received" (final), and the
-- `not_arrived` case a "not received" opened.
CREATE TABLE refund_arrival_answers (
    refund_id      TEXT PRIMARY KEY REFERENCES refunds(id),
    merchant_id    TEXT NOT NULL,
    -- 1: received, 0: not received (the latest answer).
    received       BIGINT NOT NULL,
    answered_at_us BIGINT NOT NULL,
    received_at_us BIGINT,
    case_id        TEXT
);
CREATE INDEX refund_arrival_answers_by_merchant
    ON refund_arrival_answers (merchant_id, received_at_us);
