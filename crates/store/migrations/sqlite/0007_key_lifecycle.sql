-- API keys can be listed, revoked and rotated, and admin keys are stored beside merchant
-- keys (role 'admin', no merchant). SQLite cannot drop NOT NULL or change a CHECK in place:
-- the table is rebuilt (nothing references it).
CREATE TABLE api_keys_v7 (
    key_hash        TEXT PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    merchant_id     TEXT REFERENCES merchants(id),
    role            TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'staff')),
    created_at_us   INTEGER NOT NULL,
    -- The key's first characters, to recognise it in a list (NULL for keys made before 0007).
    prefix          TEXT,
    -- 'api', 'environment' (YUANLU_ADMIN_KEY) or 'file' (<data-dir>/admin.key).
    origin          TEXT,
    -- Set by a rotation: the key stops working at this instant (the grace period's end).
    expires_at_us   INTEGER,
    revoked_at_us   INTEGER,
    -- Written at most once a minute per key (see docs/decisions.md).
    last_used_at_us INTEGER,
    -- The key that replaced this one in a rotation.
    replaced_by     TEXT,
    CHECK ((role = 'admin') = (merchant_id IS NULL))
);
INSERT INTO api_keys_v7 (key_hash, id, merchant_id, role, created_at_us)
    SELECT key_hash, id, merchant_id, role, created_at_us FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_v7 RENAME TO api_keys;
CREATE INDEX api_keys_by_merchant ON api_keys (merchant_id, id);
