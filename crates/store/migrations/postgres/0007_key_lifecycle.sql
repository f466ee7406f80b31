-- API keys can be listed, revoked and rotated, and admin keys are stored beside merchant
-- keys (role 'admin', no merchant).
ALTER TABLE api_keys ALTER COLUMN merchant_id DROP NOT NULL;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('admin', 'supervisor', 'staff'));
ALTER TABLE api_keys ADD CONSTRAINT api_keys_admin_has_no_merchant
    CHECK ((role = 'admin') = (merchant_id IS NULL));
-- The key's first characters, to recognise it in a list (NULL for keys made before 0007).
ALTER TABLE api_keys ADD COLUMN prefix TEXT;
-- 'api', 'environment' (YUANLU_ADMIN_KEY) or 'file' (<data-dir>/admin.key).
ALTER TABLE api_keys ADD COLUMN origin TEXT;
-- Set by a rotation: the key stops working at this instant (the grace period's end).
ALTER TABLE api_keys ADD COLUMN expires_at_us BIGINT;
ALTER TABLE api_keys ADD COLUMN revoked_at_us BIGINT;
-- Written at most once a minute per key (see docs/decisions.md).
ALTER TABLE api_keys ADD COLUMN last_used_at_us BIGINT;
-- The key that replaced this one in a rotation.
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;
CREATE INDEX api_keys_by_merchant ON api_keys (merchant_id, id);
