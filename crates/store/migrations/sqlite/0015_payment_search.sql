-- Payment search (GET /v1/payments filters, issue 11 item 2): an index per filter a cashier
-- finds a sale by. Each leads with the filtered value, then the merchant: a merchant's
-- search matches both columns (so the planner prefers it to reading the merchant's
-- payments in id order), the acquirer's the first. A date range is served by
-- payments_by_merchant_capture (merchant_id, captured_at_us, amount_fen) and
-- payments_by_capture (captured_at_us). The last four digits are matched on the expression
-- the store's query uses (queries_search.rs): the masked payer account (`**** 1234`,
-- `138****5678`) and the phone, kept whole, end with them.
CREATE INDEX payments_by_rrn ON payments (rrn, merchant_id);
CREATE INDEX payments_by_trace_no ON payments (trace_no, merchant_id);
CREATE INDEX payments_by_terminal ON payments (terminal_id, merchant_id, captured_at_us);
CREATE INDEX payments_by_order_no ON payments (order_no, merchant_id);
CREATE INDEX payments_by_amount ON payments (amount_fen, merchant_id);
CREATE INDEX payments_by_account_last4
    ON payments ((substr(payer_account, length(payer_account) - 3)), merchant_id);
CREATE INDEX payments_by_phone_last4
    ON payments ((substr(phone, length(phone) - 3)), merchant_id);
