-- Settlement reads each merchant's postings of a day in time order (`postings_of_day`).
-- With the index on (merchant_id, business_date) alone, each posting was a fetch from the
-- heap, where a merchant's rows lie scattered among every other merchant's of the day,
-- and then a sort (issue 13, BENCHMARKS.md). This index is in the read's order and
-- includes its columns, so the read is an index-only scan once the table is vacuumed.
DROP INDEX ledger_postings_by_merchant_date;
CREATE INDEX ledger_postings_by_merchant_date ON ledger_postings
    (merchant_id, business_date, at_us, id)
    INCLUDE (event, reference, payment_id, channel, amount_fen, fee_fen);
