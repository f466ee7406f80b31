-- Issue 16 (scheduled settlement, lists of statements and reconciliations, the exception
-- queue): the indexes their keyset pages walk. Lists go newest business date first, ties by
-- id (descending); a page starts after the (business_date, id) of its cursor row.
CREATE INDEX settlement_statements_by_date ON settlement_statements (business_date, id);
CREATE INDEX settlement_statements_by_merchant_date ON settlement_statements (merchant_id, business_date, id);
CREATE INDEX reconciliations_by_date ON reconciliations (business_date, id);
CREATE INDEX reconciliations_by_channel_date ON reconciliations (channel, business_date, id);
-- The scheduler's "dates with activity not yet settled": a walk of the distinct dates.
CREATE INDEX ledger_postings_by_date ON ledger_postings (business_date);
