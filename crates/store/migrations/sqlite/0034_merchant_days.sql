-- Each merchant's day (Asia/Shanghai, keyed by its first microsecond in UTC) as running
-- totals: the sales captured, and the refunds created that still count against the day
-- (held or paid: RefundStatus::counts_against_day). The refund rules read them in one row
-- instead of summing the day's payments and refunds, which grew with every sale and refund
-- of a busy merchant (issue 13). Written in the transaction of every payment, refund and
-- status change that moves them, always under the merchant's balance lock.
CREATE TABLE merchant_days (
    merchant_id   TEXT NOT NULL,
    day_start_us  INTEGER NOT NULL,
    sales_fen     INTEGER NOT NULL DEFAULT 0,
    refunds_fen   INTEGER NOT NULL DEFAULT 0,
    refunds_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, day_start_us)
);

-- The days so far. 28 800 000 000 µs is the 8 hours Asia/Shanghai is ahead of UTC, and
-- 86 400 000 000 µs a day: a day starts at 16:00 UTC of the day before.
INSERT INTO merchant_days (merchant_id, day_start_us, sales_fen, refunds_fen, refunds_count)
SELECT merchant_id, day_start_us, SUM(sales_fen), SUM(refunds_fen), SUM(refunds_count)
FROM (
    SELECT merchant_id,
           ((captured_at_us + 28800000000) / 86400000000) * 86400000000 - 28800000000 AS day_start_us,
           amount_fen AS sales_fen, 0 AS refunds_fen, 0 AS refunds_count
    FROM payments
    UNION ALL
    SELECT merchant_id,
           ((created_at_us + 28800000000) / 86400000000) * 86400000000 - 28800000000,
           0, amount_fen, 1
    FROM refunds
    WHERE status IN ('awaiting_return', 'pending_review', 'queued', 'processing', 'abnormal', 'succeeded')
) AS events
GROUP BY merchant_id, day_start_us;
