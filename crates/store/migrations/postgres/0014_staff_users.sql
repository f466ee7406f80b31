-- Staff accounts of the pages (merchant cashiers and supervisors, acquirer reviewers and
-- admins) and their signed-in sessions. Passwords are Argon2id PHC strings; a session's
-- token is stored as its SHA-256 only, so a copy of the database signs no one in.
CREATE TABLE staff_users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('cashier', 'supervisor', 'reviewer', 'admin')),
    merchant_id    TEXT REFERENCES merchants(id),
    password_hash  TEXT NOT NULL,
    created_at_us  BIGINT NOT NULL,
    disabled_at_us BIGINT,
    CHECK ((role IN ('cashier', 'supervisor')) = (merchant_id IS NOT NULL))
);
CREATE INDEX staff_users_by_merchant ON staff_users (merchant_id, username);

CREATE TABLE staff_sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES staff_users(id),
    csrf_token    TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL
);
CREATE INDEX staff_sessions_by_user ON staff_sessions (user_id);
