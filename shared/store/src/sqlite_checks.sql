-- The checkpoint's indexes (infra/postgres/migrations/0006_checks.sql). Idempotent.
CREATE INDEX IF NOT EXISTS audit_events_checked_digest ON audit_events (digest, at_ms)
    WHERE stage = 'checked';
CREATE INDEX IF NOT EXISTS audit_events_checked_at ON audit_events (at_ms)
    WHERE stage = 'checked';
