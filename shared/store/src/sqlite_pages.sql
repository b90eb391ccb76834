-- The pages' tables and indexes (infra/postgres/migrations/0005_pages.sql). Idempotent.
CREATE TABLE IF NOT EXISTS page_tokens (
    token_sha256  TEXT    PRIMARY KEY CHECK (length(token_sha256) = 64),
    holder        TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('officer', 'auditor', 'analyst')),
    created_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS page_tokens_holder ON page_tokens (holder);
CREATE TABLE IF NOT EXISTS page_token_revocations (
    token_sha256  TEXT    PRIMARY KEY REFERENCES page_tokens (token_sha256),
    revoked_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS audit_events_dashboard ON audit_events
    (stage, at_ms, origin, destination, reason, sub_indication, declaration_id);
CREATE INDEX IF NOT EXISTS gateway_submissions_lrn ON gateway_submissions (lrn);
