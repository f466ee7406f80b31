-- Distributes a yuanlu PostgreSQL database over a Citus cluster (docs/scaling.md).
--
-- Run on the coordinator, after `yuanlu migrate` created the schema there (migration 0028
-- or later: every key of a distributed table includes merchant_id), with yuanlu stopped:
--
--     psql -v ON_ERROR_STOP=1 -d yuanlu -f docs/citus/distribute.sql
--
-- The placements are those of crates/store/src/distribution.rs (PLAN), which
-- crates/store/tests/distributable.rs checks against the migrations. Order matters: a
-- table is distributed after the tables it refers to (reference tables first, then the
-- co-location leader `payments`, then each table after its parent). Existing rows move to
-- the shards as each table is distributed. Each call commits on its own: after a failure,
-- run the lines from the failed one on.

CREATE EXTENSION IF NOT EXISTS citus;

-- The workers (edit the host names). Skip if the cluster already has them.
-- SELECT citus_set_coordinator_host('coordinator', 5432);
-- SELECT citus_add_node('worker-1', 5432);
-- SELECT citus_add_node('worker-2', 5432);

-- Reference tables: one copy on every node.
SELECT create_reference_table('merchants');
SELECT create_reference_table('api_keys');
SELECT create_reference_table('settlement_runs');
SELECT create_reference_table('staff_users');
SELECT create_reference_table('staff_sessions');
SELECT create_reference_table('pos_terminals');
SELECT create_reference_table('reconciliations');
SELECT create_reference_table('recon_exceptions');

-- The co-location leader: a merchant's shard is where its payments hash.
SELECT create_distributed_table('payments', 'merchant_id');

-- Everything of a merchant on the same shard.
SELECT create_distributed_table('refunds', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('merchant_balances', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('merchant_days', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('merchant_webhooks', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('merchant_settings_versions', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('webhook_outbox', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('sms_outbox', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('cases', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('feedback', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('refund_arrival_answers', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('public_lookup_failures', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('public_request_failures', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('ledger_postings', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('ledger_entries', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('settlement_statements', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('bank_statement_imports', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('evidence', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('evidence_holds', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('refund_deductions', 'merchant_id', colocate_with => 'payments');
SELECT create_distributed_table('pos_journal', 'merchant_id', colocate_with => 'payments');

-- The audit chains: the chain's name is the merchant id (TEXT, the same hash), so a
-- merchant's chain lives with its rows; the 'system' chain is one more chain.
SELECT create_distributed_table('audit_heads', 'chain', colocate_with => 'payments');
SELECT create_distributed_table('audit_log', 'chain', colocate_with => 'payments');

-- What went where (compare with docs/scaling.md, "The plan").
SELECT table_name, citus_table_type, distribution_column, colocation_id
FROM citus_tables ORDER BY citus_table_type, table_name;
