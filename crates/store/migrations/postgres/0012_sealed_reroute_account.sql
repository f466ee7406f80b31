-- The full account number of a reroute, sealed (AES-256-GCM under the account key, the
-- refund id as associated data): `v1:` and hex. Only the dispatch worker opens it, to send
-- the channel the number; it is set back to NULL when the refund leaves dispatch
-- (succeeded, failed, abnormal again, or rerouted again). `reroute_account` stays masked.
ALTER TABLE refunds ADD COLUMN reroute_account_sealed TEXT;
