-- Notifications (merchant webhooks, consumer SMS), cases (工单) and consumer feedback.
-- (PostgreSQL twin of the SQLite migration.) Amounts are BIGINT fen; instants are BIGINT microseconds since the Unix epoch (UTC).
-- Every table carries merchant_id (merchants are the unit of sharding).

-- One webhook endpoint per merchant. The secret is stored as is: it is needed to sign.
CREATE TABLE merchant_webhooks (
    merchant_id   TEXT PRIMARY KEY REFERENCES merchants(id),
    url           TEXT NOT NULL,
    secret        TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);

-- Webhook events, written in the same transaction as the refund change they announce and
-- delivered at least once by a worker. A worker leases a row by moving next_attempt_at_us
-- forward (lease_owner names it), so a dead worker's rows come due again.
CREATE TABLE webhook_outbox (
    id                 TEXT PRIMARY KEY,          -- evt_…, also the event's id
    merchant_id        TEXT NOT NULL REFERENCES merchants(id),
    event_type         TEXT NOT NULL,
    refund_id          TEXT NOT NULL,
    payload            TEXT NOT NULL,             -- the JSON body, sent byte for byte
    status             TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'given_up')),
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_us BIGINT,                   -- NULL once delivered or given up
    lease_owner        TEXT,
    last_error         TEXT,
    created_at_us      BIGINT NOT NULL,
    delivered_at_us    BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at_us) WHERE status = 'pending';
CREATE INDEX webhook_outbox_by_merchant ON webhook_outbox (merchant_id, id);
CREATE INDEX webhook_outbox_by_refund ON webhook_outbox (refund_id, id);

-- SMS to the consumer, written in the same transaction as the refund change, one per
-- (refund, kind); a relay hands them to the configured SMS gateway.
CREATE TABLE sms_outbox (
    id                 TEXT PRIMARY KEY,          -- sms_…
    merchant_id        TEXT NOT NULL REFERENCES merchants(id),
    refund_id          TEXT NOT NULL,
    phone_masked       TEXT NOT NULL,             -- 138****0403, what the API shows
    phone              TEXT NOT NULL,             -- needed by a real gateway; never shown
    text               TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('accepted', 'arrived')),
    status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'given_up')),
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_us BIGINT,
    lease_owner        TEXT,
    last_error         TEXT,
    created_at_us      BIGINT NOT NULL,
    sent_at_us         BIGINT,
    UNIQUE (refund_id, kind)
);
CREATE INDEX sms_outbox_due ON sms_outbox (next_attempt_at_us) WHERE status = 'pending';
CREATE INDEX sms_outbox_by_merchant ON sms_outbox (merchant_id, id);
CREATE INDEX sms_outbox_by_refund ON sms_outbox (refund_id, id);

-- Cases (工单) about a refund. At most one open case per (refund, kind); the case's history
-- is in the audit log (subject_id = the case id).
CREATE TABLE cases (
    id             TEXT PRIMARY KEY,              -- case_…
    merchant_id    TEXT NOT NULL REFERENCES merchants(id),
    refund_id      TEXT NOT NULL REFERENCES refunds(id),
    kind           TEXT NOT NULL CHECK (kind IN ('not_arrived', 'wrong_amount', 'other')),
    description    TEXT NOT NULL,
    contact        TEXT,
    status         TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    owner          TEXT,
    resolution     TEXT,
    opened_by      TEXT NOT NULL CHECK (opened_by IN ('merchant', 'acquirer', 'consumer', 'system')),
    created_at_us  BIGINT NOT NULL,
    resolved_at_us BIGINT
);
CREATE UNIQUE INDEX cases_one_open_per_refund_kind ON cases (refund_id, kind) WHERE status = 'open';
CREATE INDEX cases_by_merchant ON cases (merchant_id, id);
CREATE INDEX cases_by_status ON cases (status, id);
CREATE INDEX cases_by_merchant_created ON cases (merchant_id, created_at_us);

-- The consumer's rating of an ended refund, once per refund.
CREATE TABLE feedback (
    refund_id     TEXT PRIMARY KEY REFERENCES refunds(id),
    merchant_id   TEXT NOT NULL REFERENCES merchants(id),
    rating        BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment       TEXT,
    created_at_us BIGINT NOT NULL
);
CREATE INDEX feedback_by_merchant_created ON feedback (merchant_id, created_at_us);
