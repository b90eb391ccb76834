-- Stage results hold the countersigned document and the signed receipt
-- (tens of KiB each, written once per declaration). PostgreSQL's default
-- TOAST compression, pglz, cost the pipeline benchmark about a third of
-- PostgreSQL's CPU; lz4 compresses better and about 3x faster (pgbench,
-- 45 KiB results: 1,426 vs 4,410 inserts/s). Only new values are affected.
-- A server built without lz4 keeps pglz: a notice, not a failed start.
DO $$
BEGIN
    ALTER TABLE stage_results ALTER COLUMN result SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR syntax_error THEN
    RAISE NOTICE 'lz4 compression unavailable (%); stage results stay pglz-compressed', SQLERRM;
END
$$;
