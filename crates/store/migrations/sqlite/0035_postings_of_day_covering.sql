-- Settlement reads each merchant's postings of a day in time order (`postings_of_day`).
-- With the index on (merchant_id, business_date) alone, each posting was a lookup in the
-- table, where a merchant's rows lie scattered among every other merchant's of the day,
-- and then a sort: half of the time of settling a day (issue 13, BENCHMARKS.md). This
-- index holds the read's columns in its order, so the read is one scan of the index.
DROP INDEX ledger_postings_by_merchant_date;
CREATE INDEX ledger_postings_by_merchant_date ON ledger_postings
    (merchant_id, business_date, at_us, id, event, reference, payment_id, channel, amount_fen, fee_fen);
