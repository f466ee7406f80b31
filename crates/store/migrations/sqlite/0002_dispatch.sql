-- Dispatch to channels: leases that let any number of processes share the work without
-- sending one refund twice at a time, and what the channel said.
ALTER TABLE refunds ADD COLUMN dispatch_attempts INTEGER NOT NULL DEFAULT 0;
-- When a worker should next look at the refund (send, query); NULL: nothing to do.
ALTER TABLE refunds ADD COLUMN next_attempt_at_us INTEGER;
-- The worker holding the refund, until when. An expired lease is taken over.
ALTER TABLE refunds ADD COLUMN lease_owner TEXT;
ALTER TABLE refunds ADD COLUMN lease_until_us INTEGER;
-- 'not_sent': never sent; 'sent': a request may have reached the channel, so the next step
-- is a query by refund id; 'accepted': the channel acknowledged it.
ALTER TABLE refunds ADD COLUMN send_state TEXT NOT NULL DEFAULT 'not_sent';
ALTER TABLE refunds ADD COLUMN dispatched_at_us INTEGER;
ALTER TABLE refunds ADD COLUMN channel_refund_id TEXT;
ALTER TABLE refunds ADD COLUMN received_account TEXT;
ALTER TABLE refunds ADD COLUMN succeeded_at_us INTEGER;
-- Set by an operator for an abnormal refund: the bank account given by the consumer.
ALTER TABLE refunds ADD COLUMN reroute_account TEXT;
ALTER TABLE refunds ADD COLUMN last_error TEXT;

CREATE INDEX refunds_due ON refunds (next_attempt_at_us) WHERE next_attempt_at_us IS NOT NULL;
