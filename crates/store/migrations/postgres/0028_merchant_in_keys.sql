-- Issue 13 item 6 (docs/scaling.md): every key of a table that is spread over database nodes
-- by merchant (Citus, distribution column merchant_id) includes merchant_id, so the schema
-- can be distributed as it stands. Keys keep their columns and gain merchant_id last, so
-- every lookup by id alone is still served by the key's index; foreign keys between such
-- tables name merchant_id on both sides (a refund's merchant is its payment's, a posting's
-- entries share its merchant: the keys now say so). The two wrong-facts counters gain the
-- merchant of their refund or payment. Constraint names stay those PostgreSQL gave.

-- Foreign keys on the keys that change go first.
ALTER TABLE refunds DROP CONSTRAINT refunds_payment_id_fkey;
ALTER TABLE cases DROP CONSTRAINT cases_refund_id_fkey;
ALTER TABLE feedback DROP CONSTRAINT feedback_refund_id_fkey;
ALTER TABLE public_lookup_failures DROP CONSTRAINT public_lookup_failures_refund_id_fkey;
ALTER TABLE public_request_failures DROP CONSTRAINT public_request_failures_payment_id_fkey;
ALTER TABLE refund_arrival_answers DROP CONSTRAINT refund_arrival_answers_refund_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_posting_id_fkey;

-- The counters of wrong facts: the merchant of their refund or payment.
ALTER TABLE public_lookup_failures ADD COLUMN merchant_id TEXT NOT NULL DEFAULT '';
UPDATE public_lookup_failures SET merchant_id =
    (SELECT r.merchant_id FROM refunds r WHERE r.id = public_lookup_failures.refund_id);
ALTER TABLE public_lookup_failures ALTER COLUMN merchant_id DROP DEFAULT;
ALTER TABLE public_request_failures ADD COLUMN merchant_id TEXT NOT NULL DEFAULT '';
UPDATE public_request_failures SET merchant_id =
    (SELECT p.merchant_id FROM payments p WHERE p.id = public_request_failures.payment_id);
ALTER TABLE public_request_failures ALTER COLUMN merchant_id DROP DEFAULT;

-- Primary keys.
ALTER TABLE payments DROP CONSTRAINT payments_pkey;
ALTER TABLE payments ADD CONSTRAINT payments_pkey PRIMARY KEY (id, merchant_id);
ALTER TABLE refunds DROP CONSTRAINT refunds_pkey;
ALTER TABLE refunds ADD CONSTRAINT refunds_pkey PRIMARY KEY (id, merchant_id);
ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_pkey;
ALTER TABLE webhook_outbox ADD CONSTRAINT webhook_outbox_pkey PRIMARY KEY (id, merchant_id);
ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_pkey;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_pkey PRIMARY KEY (id, merchant_id);
ALTER TABLE cases DROP CONSTRAINT cases_pkey;
ALTER TABLE cases ADD CONSTRAINT cases_pkey PRIMARY KEY (id, merchant_id);
ALTER TABLE feedback DROP CONSTRAINT feedback_pkey;
ALTER TABLE feedback ADD CONSTRAINT feedback_pkey PRIMARY KEY (refund_id, merchant_id);
ALTER TABLE public_lookup_failures DROP CONSTRAINT public_lookup_failures_pkey;
ALTER TABLE public_lookup_failures ADD CONSTRAINT public_lookup_failures_pkey
    PRIMARY KEY (refund_id, merchant_id);
ALTER TABLE public_request_failures DROP CONSTRAINT public_request_failures_pkey;
ALTER TABLE public_request_failures ADD CONSTRAINT public_request_failures_pkey
    PRIMARY KEY (payment_id, merchant_id);
ALTER TABLE refund_arrival_answers DROP CONSTRAINT refund_arrival_answers_pkey;
ALTER TABLE refund_arrival_answers ADD CONSTRAINT refund_arrival_answers_pkey
    PRIMARY KEY (refund_id, merchant_id);
ALTER TABLE ledger_postings DROP CONSTRAINT ledger_postings_pkey;
ALTER TABLE ledger_postings ADD CONSTRAINT ledger_postings_pkey PRIMARY KEY (id, merchant_id);
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_pkey;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_pkey
    PRIMARY KEY (posting_id, line_no, merchant_id);
ALTER TABLE settlement_statements DROP CONSTRAINT settlement_statements_pkey;
ALTER TABLE settlement_statements ADD CONSTRAINT settlement_statements_pkey
    PRIMARY KEY (id, merchant_id);
ALTER TABLE bank_statement_imports DROP CONSTRAINT bank_statement_imports_pkey;
ALTER TABLE bank_statement_imports ADD CONSTRAINT bank_statement_imports_pkey
    PRIMARY KEY (id, merchant_id);
ALTER TABLE pos_journal DROP CONSTRAINT pos_journal_pkey;
ALTER TABLE pos_journal ADD CONSTRAINT pos_journal_pkey
    PRIMARY KEY (terminal_ref, batch_no, trace_no, mti, merchant_id);

-- Unique keys.
ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_refund_id_kind_key;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_refund_id_kind_key
    UNIQUE (refund_id, kind, merchant_id);
DROP INDEX cases_one_open_per_refund_kind;
CREATE UNIQUE INDEX cases_one_open_per_refund_kind ON cases (refund_id, kind, merchant_id)
    WHERE status = 'open';

-- Foreign keys, with the merchant on both sides.
ALTER TABLE refunds ADD CONSTRAINT refunds_payment_id_fkey
    FOREIGN KEY (payment_id, merchant_id) REFERENCES payments (id, merchant_id);
ALTER TABLE cases ADD CONSTRAINT cases_refund_id_fkey
    FOREIGN KEY (refund_id, merchant_id) REFERENCES refunds (id, merchant_id);
ALTER TABLE feedback ADD CONSTRAINT feedback_refund_id_fkey
    FOREIGN KEY (refund_id, merchant_id) REFERENCES refunds (id, merchant_id);
ALTER TABLE public_lookup_failures ADD CONSTRAINT public_lookup_failures_refund_id_fkey
    FOREIGN KEY (refund_id, merchant_id) REFERENCES refunds (id, merchant_id);
ALTER TABLE public_request_failures ADD CONSTRAINT public_request_failures_payment_id_fkey
    FOREIGN KEY (payment_id, merchant_id) REFERENCES payments (id, merchant_id);
ALTER TABLE refund_arrival_answers ADD CONSTRAINT refund_arrival_answers_refund_id_fkey
    FOREIGN KEY (refund_id, merchant_id) REFERENCES refunds (id, merchant_id);
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_posting_id_fkey
    FOREIGN KEY (posting_id, merchant_id) REFERENCES ledger_postings (id, merchant_id);
