-- Tamga 0008: login roles, so that the workers' privileges are a boundary and not a
-- `SET ROLE` that any session can `RESET`.
--
-- * tamga_worker — the workers and the gateway log in as it ([database] url). A member of
--   tamga_app (INHERIT), so it has exactly tamga_app's SELECT and INSERT — also on the
--   tables later migrations grant to tamga_app — and nothing else: no UPDATE, DELETE or
--   TRUNCATE anywhere, no ownership (so no ALTER TABLE … DISABLE TRIGGER, no DDL), no
--   membership in any role with more. `RESET ROLE` returns it to itself.
-- * tamga_reader — dashboards and audit tools: SELECT on the audit trail, its
--   checkpoints and the submissions' index; not on stage_results (declarations and
--   receipts), tokens or callback secrets.
--
-- Both are created without a password (`ALTER ROLE tamga_worker PASSWORD '…'` once, or
-- a pg_hba rule of your choosing), NOSUPERUSER and without CREATEROLE, CREATEDB,
-- REPLICATION or BYPASSRLS. Roles are cluster-wide: created idempotently, tolerating
-- another database of the same cluster creating them at the same moment. A role of that
-- name that already exists is left as it is — the workers refuse to start when their
-- login can change the trail (tamga_store::PgStore's boundary check).
-- Migrations are applied by the owner (`tamga migrate`, [database] migrate_url).
DO $$
BEGIN
    CREATE ROLE tamga_worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
BEGIN
    CREATE ROLE tamga_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- Membership is cluster-wide too: two databases granting it at once collide on
-- pg_auth_members' unique index (the second waits for the first, then 23505).
DO $$
BEGIN
    IF NOT pg_has_role('tamga_worker', 'tamga_app', 'MEMBER') THEN
        GRANT tamga_app TO tamga_worker;
    END IF;
EXCEPTION
    WHEN unique_violation OR duplicate_object THEN NULL;
END
$$;

-- No DDL for anyone but the owner in this schema (PostgreSQL 15's default for new
-- databases; older clusters granted CREATE on public to PUBLIC). A REVOKE the owner
-- may not make is a warning, not an error.
DO $$
BEGIN
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO tamga_worker, tamga_reader', current_schema());
END
$$;

-- The workers check at start that the schema is current (tamga_worker through tamga_app,
-- which its pooled connections SET ROLE to by default).
GRANT SELECT ON tamga_schema_migrations TO tamga_app, tamga_reader;

GRANT SELECT ON audit_events, audit_checkpoints, gateway_submissions, gateway_notifications
    TO tamga_reader;
