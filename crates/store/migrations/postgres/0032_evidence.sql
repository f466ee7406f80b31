-- Proof and identity (证明材料, 身份核实), issue 15 item 1. A refund or a case carries
-- evidence: files (the sale voucher, a receipt photo) stored outside the database under the
-- evidence directory, named by their SHA-256, and ID check results (who checked, which
-- document, its last four characters; never a whole ID number). The same evidence of the
-- same kind on the same subject is one row.
CREATE TABLE evidence (
    id            TEXT NOT NULL,
    merchant_id   TEXT NOT NULL REFERENCES merchants(id),
    -- `refund` or `case`, and the refund's (`rf_…`) or case's (`case_…`) id.
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    -- Of the file's bytes, or of the ID check's canonical text.
    sha256        TEXT NOT NULL,
    -- The type its content showed (`image/jpeg`, `image/png`, `application/pdf`); NULL for
    -- an ID check.
    content_type  TEXT,
    size_bytes    BIGINT NOT NULL,
    checked_by    TEXT,
    document_type TEXT,
    last_digits   TEXT,
    created_by    TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    -- The merchant is in every key, so the table can be distributed by it (docs/scaling.md).
    PRIMARY KEY (id, merchant_id),
    UNIQUE (subject_id, kind, sha256, merchant_id)
);
CREATE INDEX evidence_by_subject ON evidence (subject_id, created_at_us);

-- A refund that waits for evidence its merchant's settings require: what is required (kind
-- ids, comma-separated), and when it was all there.
CREATE TABLE evidence_holds (
    refund_id      TEXT NOT NULL,
    merchant_id    TEXT NOT NULL REFERENCES merchants(id),
    required       TEXT NOT NULL,
    created_at_us  BIGINT NOT NULL,
    released_at_us BIGINT,
    PRIMARY KEY (refund_id, merchant_id),
    FOREIGN KEY (refund_id, merchant_id) REFERENCES refunds (id, merchant_id)
);
