-- Issue 16 item 3: a merchant's settings change over time (PATCH /v1/merchants/{id}).
-- `merchants.settings` keeps the current settings; each change also writes the settings it
-- made as a new version, effective from the change. The first change also writes the
-- settings in force before it (version 1, effective from the merchant's creation), so the
-- fee terms of any payment are found by the version in force when it was recorded
-- (`effective_from_us <= payments.created_at_us`, the latest such, ties to the higher version).
CREATE TABLE merchant_settings_versions (
    merchant_id       TEXT NOT NULL REFERENCES merchants(id),
    version           BIGINT NOT NULL,
    effective_from_us BIGINT NOT NULL,
    settings          TEXT NOT NULL,
    changed_by        TEXT NOT NULL,
    PRIMARY KEY (merchant_id, version)
);

-- Issue 16 item 5: wrong facts (payment reference with the wrong last four digits) given in
-- a consumer's refund request, per payment and fixed window, as public_lookup_failures does
-- for refunds: reaching the limit locks requests for that payment until the window ends.
CREATE TABLE public_request_failures (
    payment_id      TEXT PRIMARY KEY REFERENCES payments(id),
    window_start_us BIGINT NOT NULL,
    failures        BIGINT NOT NULL
);
