-- Issue 14, session 3: pre-authorisation and crash-safe journal claims.
-- preauth_state: for a 'preauth' row, NULL while open, 'voided' or 'completed' once closed;
-- closed_by_rrn: the RRN of the pre-auth void or completion that closed it (a retry of the
-- same closer finds it closed by itself; a void of the completion reopens it).
-- claimed_at_us: when the handler claimed the row; a row still unanswered a lease after it
-- was claimed belongs to a host that died, and a repeat takes it over.
ALTER TABLE pos_journal ADD COLUMN preauth_state TEXT;
ALTER TABLE pos_journal ADD COLUMN closed_by_rrn TEXT;
ALTER TABLE pos_journal ADD COLUMN claimed_at_us BIGINT NOT NULL DEFAULT 0;
CREATE INDEX pos_journal_by_auth_code ON pos_journal (merchant_id, auth_code);
CREATE INDEX pos_journal_by_closer ON pos_journal (merchant_id, closed_by_rrn);
