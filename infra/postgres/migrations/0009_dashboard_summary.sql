-- Tamga 0009: the ministry dashboard's hourly summary (issue 9).
--
-- The dashboard used to aggregate audit_events on every request: 2.45 s for 30 days on
-- 1 M events. These two tables hold the same figures per UTC hour, kept by a trigger in
-- the transaction that appends the events (so every writer — one statement per event,
-- the group committer's one statement per batch, a restore — keeps them, and a rolled
-- back append leaves no trace). The dashboard reads whole hours from here and only the
-- partial hours at the edges of its range from audit_events.
--
-- Exact, not sampled: the counts are counts, and the release times are kept as a sparse
-- histogram with 1 ms buckets (one row per distinct release time per hour and corridor),
-- so the percentiles computed from it are the percentiles of the raw values.
--
-- Only events at or after the Unix epoch are summarised (hour_ms is at_ms rounded down,
-- and integer division rounds towards zero); the dashboard reads anything earlier from
-- audit_events.

-- Events per hour, corridor, stage, reason and sub-indication (the dashboard's stages).
CREATE TABLE dashboard_hourly (
    hour_ms        BIGINT NOT NULL CHECK (hour_ms >= 0 AND hour_ms % 3600000 = 0),
    origin         TEXT   NOT NULL,
    destination    TEXT   NOT NULL,
    stage          TEXT   NOT NULL,
    reason         TEXT,
    sub_indication TEXT,
    events         BIGINT NOT NULL CHECK (events > 0),
    CONSTRAINT dashboard_hourly_key
        UNIQUE NULLS NOT DISTINCT (hour_ms, origin, destination, stage, reason, sub_indication)
);

-- Release times (received → forwarded, ms) of accepted declarations, per hour of
-- reception and corridor: how many declarations took exactly release_ms.
CREATE TABLE dashboard_release_hourly (
    hour_ms      BIGINT NOT NULL CHECK (hour_ms >= 0 AND hour_ms % 3600000 = 0),
    origin       TEXT   NOT NULL,
    destination  TEXT   NOT NULL,
    release_ms   BIGINT NOT NULL,
    declarations BIGINT NOT NULL CHECK (declarations > 0),
    PRIMARY KEY (hour_ms, origin, destination, release_ms) INCLUDE (declarations)
);

-- What the events of one statement add. A release is counted when the declaration's
-- `forwarded` event is appended (once per declaration: the pipeline appends it with
-- append_once 'forwarded:<id>'): its `received` and `countersigned` events were committed
-- with the decision, before the forwarding. Rows are upserted in key order, counts before
-- releases, so two batches never wait for each other in a cycle.
CREATE FUNCTION tamga_dashboard_summarise() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO dashboard_hourly AS h
        (hour_ms, origin, destination, stage, reason, sub_indication, events)
    SELECT (at_ms / 3600000) * 3600000, origin, destination, stage, reason, sub_indication,
           count(*)
    FROM new_events
    WHERE stage IN ('received', 'countersigned', 'rejected', 'dead_lettered') AND at_ms >= 0
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT ON CONSTRAINT dashboard_hourly_key
    DO UPDATE SET events = h.events + EXCLUDED.events;

    INSERT INTO dashboard_release_hourly AS h
        (hour_ms, origin, destination, release_ms, declarations)
    SELECT (d.received / 3600000) * 3600000, f.origin, f.destination, f.at_ms - d.received,
           count(*)
    FROM new_events f
    -- One look-up by declaration_id (a handful of rows), whatever the statistics say.
    CROSS JOIN LATERAL (
        SELECT min(e.at_ms) FILTER (WHERE e.stage = 'received') AS received,
               bool_or(e.stage = 'countersigned') AS accepted
        FROM audit_events e WHERE e.declaration_id = f.declaration_id) d
    WHERE f.stage = 'forwarded' AND d.accepted AND d.received >= 0
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (hour_ms, origin, destination, release_ms)
    DO UPDATE SET declarations = h.declarations + EXCLUDED.declarations;
    RETURN NULL;
END
$$;

-- Recomputes both tables from audit_events (the backfill below; also for a restore that
-- loaded audit_events with triggers off). Run as the migrating user.
CREATE FUNCTION tamga_dashboard_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM dashboard_hourly;
    DELETE FROM dashboard_release_hourly;
    INSERT INTO dashboard_hourly
        (hour_ms, origin, destination, stage, reason, sub_indication, events)
    SELECT (at_ms / 3600000) * 3600000, origin, destination, stage, reason, sub_indication,
           count(*)
    FROM audit_events
    WHERE stage IN ('received', 'countersigned', 'rejected', 'dead_lettered') AND at_ms >= 0
    GROUP BY 1, 2, 3, 4, 5, 6;

    INSERT INTO dashboard_release_hourly
        (hour_ms, origin, destination, release_ms, declarations)
    SELECT (r.at_ms / 3600000) * 3600000, f.origin, f.destination, f.at_ms - r.at_ms, count(*)
    FROM audit_events f
    JOIN (SELECT declaration_id, min(at_ms) AS at_ms FROM audit_events
          WHERE stage = 'received' GROUP BY declaration_id) r
      ON r.declaration_id = f.declaration_id
    WHERE f.stage = 'forwarded' AND r.at_ms >= 0
      AND f.declaration_id IN (SELECT declaration_id FROM audit_events
                               WHERE stage = 'countersigned')
    GROUP BY 1, 2, 3, 4;
END
$$;

-- The summariser runs as its owner (the migrating user), so the application role keeps
-- its privileges (SELECT and INSERT, no UPDATE anywhere); its search_path is pinned, as a
-- SECURITY DEFINER function's must be.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION tamga_dashboard_summarise() SET search_path = %I, pg_temp',
                   current_schema());
END
$$;
REVOKE ALL ON FUNCTION tamga_dashboard_summarise(), tamga_dashboard_rebuild() FROM PUBLIC;

-- Created before the backfill: CREATE TRIGGER waits for the transactions appending right
-- now and holds off new ones until this migration commits, so no event is missed or
-- counted twice.
CREATE TRIGGER audit_events_dashboard_summary
    AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION tamga_dashboard_summarise();

SELECT tamga_dashboard_rebuild();

REVOKE ALL ON dashboard_hourly, dashboard_release_hourly FROM PUBLIC;
GRANT SELECT ON dashboard_hourly, dashboard_release_hourly TO tamga_app;
GRANT SELECT ON dashboard_hourly, dashboard_release_hourly TO tamga_reader;
