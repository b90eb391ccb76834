-- Tamga 0001: stage results (effects once) and the append-only, hash-chained audit trail.
--
-- Applied by tamga-store at start (embedded with include_str!), inside one transaction
-- under an advisory lock, as the connecting (admin) user; recorded in
-- tamga_schema_migrations. Never edit an applied migration: add 0002_….sql instead
-- (the store refuses to start when an applied migration's SHA-256 differs).

-- The application role: may only SELECT and INSERT. Roles are cluster-wide, so create it
-- idempotently (another database of the same cluster may be creating it right now).
DO $$
BEGIN
    CREATE ROLE tamga_app NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- A non-superuser admin must be a member of tamga_app to SET ROLE to it.
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'tamga_app', 'MEMBER') THEN
        EXECUTE format('GRANT tamga_app TO %I', current_user);
    END IF;
END
$$;

-- One row per (declaration, stage): the stored result a redelivery re-emits.
-- append_once() keeps its markers here too (stage 'audit_once', declaration_id = key).
CREATE TABLE stage_results (
    declaration_id TEXT        NOT NULL,
    stage          TEXT        NOT NULL,
    result         BYTEA       NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (declaration_id, stage)
);

-- The audit trail: one hash chain per writer. chain is byte-ordered (COLLATE "C") so that
-- verification pages in the same order on every backend, using the primary key.
CREATE TABLE audit_events (
    chain          TEXT COLLATE "C" NOT NULL,
    seq            BIGINT NOT NULL CHECK (seq >= 1),
    prev_hash      TEXT   NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash           TEXT   NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    at_ms          BIGINT NOT NULL,
    stage          TEXT   NOT NULL,
    worker         TEXT   NOT NULL,
    declaration_id TEXT   NOT NULL,
    origin         TEXT   NOT NULL,
    destination    TEXT   NOT NULL,
    outcome        TEXT   NOT NULL,
    sub_indication TEXT,
    reason         TEXT,
    digest         TEXT   NOT NULL,
    detail         TEXT,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_events_declaration ON audit_events (declaration_id);
CREATE INDEX audit_events_stage ON audit_events (stage);

-- Append-only: refuse UPDATE, DELETE (per row) and TRUNCATE (per statement).
-- SQLSTATE 23001 restrict_violation: the store reports it as StoreError::Integrity.
CREATE FUNCTION tamga_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'the audit trail can only be appended to';
END
$$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION tamga_audit_append_only();

CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION tamga_audit_append_only();

-- Privileges: the application may read and append, nothing else (no sequences are used).
REVOKE ALL ON stage_results, audit_events FROM PUBLIC;
GRANT SELECT, INSERT ON stage_results TO tamga_app;
GRANT SELECT, INSERT ON audit_events TO tamga_app;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO tamga_app', current_schema());
END
$$;
