-- Confirmation queries that failed in a row (timeouts, unreadable answers) since the channel
-- last answered: after `query_errors_max` of them the refund ends `abnormal` for an operator,
-- instead of being queried forever.
ALTER TABLE refunds ADD COLUMN query_errors BIGINT NOT NULL DEFAULT 0;
