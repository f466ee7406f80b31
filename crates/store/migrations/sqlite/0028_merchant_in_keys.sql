-- Issue 13 item 6 (docs/scaling.md): the keys of the tables PostgreSQL can spread over
-- database nodes by merchant include merchant_id (see the PostgreSQL migration). SQLite is
-- one file and is never distributed, and it cannot change a table's keys without rebuilding
-- it, so the single-column keys stay (they are only stricter: an id is one merchant's, and
-- a refund's merchant is its payment's). What the queries rely on is the same on both: the
-- wrong-facts counters carry the merchant of their refund or payment, and each ON CONFLICT
-- target of the store has a unique index with merchant_id, as on PostgreSQL.
ALTER TABLE public_lookup_failures ADD COLUMN merchant_id TEXT NOT NULL DEFAULT '';
UPDATE public_lookup_failures SET merchant_id =
    (SELECT r.merchant_id FROM refunds r WHERE r.id = public_lookup_failures.refund_id);
ALTER TABLE public_request_failures ADD COLUMN merchant_id TEXT NOT NULL DEFAULT '';
UPDATE public_request_failures SET merchant_id =
    (SELECT p.merchant_id FROM payments p WHERE p.id = public_request_failures.payment_id);

CREATE UNIQUE INDEX public_lookup_failures_key ON public_lookup_failures (refund_id, merchant_id);
CREATE UNIQUE INDEX public_request_failures_key ON public_request_failures (payment_id, merchant_id);
CREATE UNIQUE INDEX feedback_key ON feedback (refund_id, merchant_id);
CREATE UNIQUE INDEX refund_arrival_answers_key ON refund_arrival_answers (refund_id, merchant_id);
CREATE UNIQUE INDEX sms_outbox_refund_kind_key ON sms_outbox (refund_id, kind, merchant_id);
CREATE UNIQUE INDEX pos_journal_key
    ON pos_journal (terminal_ref, batch_no, trace_no, mti, merchant_id);
