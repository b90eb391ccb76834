-- Tamga 0007: signed checkpoints of the audit trail (shared/audit-log, in the manner of
-- Certificate Transparency's signed tree heads, RFC 9162).
--
-- Every event of audit_events is a leaf of one Merkle tree. Its order is fixed by the
-- checkpoints themselves: the leaves a checkpoint adds are, chain by chain in byte order
-- of the chain name, the events after the previous checkpoint's head of that chain up to
-- this checkpoint's head, in seq order. So the tree can be rebuilt from the database at
-- any time, and two checkpoints have a consistency proof.
--
-- `signed` is the checkpoint document signed by the authority's key, byte for byte as
-- written to the external checkpoint directory ([audit] checkpoint_dir); `heads` (JSON:
-- [{"chain","seq","hash"}], every chain) and `frontier` (JSON: the hex roots of the perfect
-- subtrees along the tree's right edge) let the next checkpoint extend the tree without
-- reading old events again. What is signed is checked against the external copies by
-- `tamga audit verify`; a rewrite of this table is as visible as one of audit_events.
CREATE TABLE audit_checkpoints (
    tree_size BIGINT PRIMARY KEY CHECK (tree_size >= 1),
    root      TEXT   NOT NULL CHECK (root ~ '^[0-9a-f]{64}$'),
    at_ms     BIGINT NOT NULL,
    heads     TEXT   NOT NULL,
    frontier  TEXT   NOT NULL,
    signed    BYTEA  NOT NULL
);

-- Append-only, like audit_events (0001's function names audit_events in its message).
CREATE FUNCTION tamga_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'the audit trail can only be appended to';
END
$$;

CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION tamga_append_only();

CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION tamga_append_only();

REVOKE ALL ON audit_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT ON audit_checkpoints TO tamga_app;
