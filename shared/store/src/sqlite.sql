-- Tamga's embedded (SQLite) schema: the same tables as infra/postgres/migrations/0001_audit.sql.
-- Idempotent; run at every open.

CREATE TABLE IF NOT EXISTS tamga_schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE IF NOT EXISTS stage_results (
    declaration_id TEXT NOT NULL,
    stage          TEXT NOT NULL,
    result         BLOB NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (declaration_id, stage)
) STRICT;

CREATE TABLE IF NOT EXISTS audit_events (
    chain          TEXT    NOT NULL,
    seq            INTEGER NOT NULL CHECK (seq >= 1),
    prev_hash      TEXT    NOT NULL CHECK (length(prev_hash) = 64),
    hash           TEXT    NOT NULL CHECK (length(hash) = 64),
    at_ms          INTEGER NOT NULL,
    stage          TEXT    NOT NULL,
    worker         TEXT    NOT NULL,
    declaration_id TEXT    NOT NULL,
    origin         TEXT    NOT NULL,
    destination    TEXT    NOT NULL,
    outcome        TEXT    NOT NULL,
    sub_indication TEXT,
    reason         TEXT,
    digest         TEXT    NOT NULL,
    detail         TEXT,
    PRIMARY KEY (chain, seq)
) STRICT;
CREATE INDEX IF NOT EXISTS audit_events_declaration ON audit_events (declaration_id);
CREATE INDEX IF NOT EXISTS audit_events_stage ON audit_events (stage);

-- Append-only. SQLite has no TRUNCATE: `DELETE FROM audit_events` fires the delete trigger
-- (the truncate optimisation is off when a table has triggers).
CREATE TRIGGER IF NOT EXISTS audit_events_no_update
    BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;

CREATE TRIGGER IF NOT EXISTS audit_events_no_delete
    BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;

INSERT OR IGNORE INTO tamga_schema_migrations (version, name) VALUES (1, 'sqlite_0001_audit');
