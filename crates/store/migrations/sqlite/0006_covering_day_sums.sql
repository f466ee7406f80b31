-- The funding and review rules sum a merchant's sales and live refunds of the day on every
-- refund created. With the summed columns in the index, both sums read the index alone
-- (no row lookups), however many payments and refunds the merchant has.
DROP INDEX payments_by_merchant_capture;
CREATE INDEX payments_by_merchant_capture ON payments (merchant_id, captured_at_us, amount_fen);
DROP INDEX refunds_by_merchant_created;
CREATE INDEX refunds_by_merchant_created ON refunds (merchant_id, created_at_us, status, amount_fen);
