-- Signed checkpoints of the audit trail on the embedded default: the same as
-- infra/postgres/migrations/0007_audit_checkpoints.sql. Idempotent; run at every open.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    tree_size INTEGER PRIMARY KEY CHECK (tree_size >= 1),
    root      TEXT    NOT NULL CHECK (length(root) = 64),
    at_ms     INTEGER NOT NULL,
    heads     TEXT    NOT NULL,
    frontier  TEXT    NOT NULL,
    signed    BLOB    NOT NULL
) STRICT;

CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update
    BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused');
END;

CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete
    BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused');
END;

INSERT OR IGNORE INTO tamga_schema_migrations (version, name) VALUES (7, 'sqlite_0007_audit_checkpoints');
