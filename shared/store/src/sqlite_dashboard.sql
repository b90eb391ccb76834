-- The dashboard's hourly summary (infra/postgres/migrations/0009_dashboard_summary.sql):
-- the same two tables, kept by per-row triggers in the appending transaction, and
-- backfilled from audit_events. The store runs this file once, in its schema
-- transaction, when tamga_schema_migrations has no version 9.
--
-- SQLite's UNIQUE treats NULLs as distinct (a NULL reason would never conflict), so the
-- counts trigger updates the row it finds with IS (which matches NULL) and inserts only
-- when there is none.

CREATE TABLE IF NOT EXISTS dashboard_hourly (
    hour_ms        INTEGER NOT NULL CHECK (hour_ms >= 0 AND hour_ms % 3600000 = 0),
    origin         TEXT    NOT NULL,
    destination    TEXT    NOT NULL,
    stage          TEXT    NOT NULL,
    reason         TEXT,
    sub_indication TEXT,
    events         INTEGER NOT NULL CHECK (events > 0)
) STRICT;
CREATE INDEX IF NOT EXISTS dashboard_hourly_key ON dashboard_hourly
    (hour_ms, origin, destination, stage, reason, sub_indication);

CREATE TABLE IF NOT EXISTS dashboard_release_hourly (
    hour_ms      INTEGER NOT NULL CHECK (hour_ms >= 0 AND hour_ms % 3600000 = 0),
    origin       TEXT    NOT NULL,
    destination  TEXT    NOT NULL,
    release_ms   INTEGER NOT NULL,
    declarations INTEGER NOT NULL CHECK (declarations > 0),
    PRIMARY KEY (hour_ms, origin, destination, release_ms)
) STRICT;

CREATE TRIGGER IF NOT EXISTS audit_events_dashboard_count
    AFTER INSERT ON audit_events
    WHEN NEW.stage IN ('received', 'countersigned', 'rejected', 'dead_lettered')
         AND NEW.at_ms >= 0
BEGIN
    UPDATE dashboard_hourly SET events = events + 1
    WHERE hour_ms = (NEW.at_ms / 3600000) * 3600000 AND origin = NEW.origin
      AND destination = NEW.destination AND stage = NEW.stage
      AND reason IS NEW.reason AND sub_indication IS NEW.sub_indication;
    INSERT INTO dashboard_hourly
        (hour_ms, origin, destination, stage, reason, sub_indication, events)
    SELECT (NEW.at_ms / 3600000) * 3600000, NEW.origin, NEW.destination, NEW.stage,
           NEW.reason, NEW.sub_indication, 1
    WHERE NOT EXISTS (
        SELECT 1 FROM dashboard_hourly
        WHERE hour_ms = (NEW.at_ms / 3600000) * 3600000 AND origin = NEW.origin
          AND destination = NEW.destination AND stage = NEW.stage
          AND reason IS NEW.reason AND sub_indication IS NEW.sub_indication);
END;

CREATE TRIGGER IF NOT EXISTS audit_events_dashboard_release
    AFTER INSERT ON audit_events
    WHEN NEW.stage = 'forwarded'
         AND EXISTS (SELECT 1 FROM audit_events c
                     WHERE c.declaration_id = NEW.declaration_id AND c.stage = 'countersigned')
BEGIN
    INSERT INTO dashboard_release_hourly
        (hour_ms, origin, destination, release_ms, declarations)
    SELECT (r / 3600000) * 3600000, NEW.origin, NEW.destination, NEW.at_ms - r, 1
    FROM (SELECT min(at_ms) AS r FROM audit_events
          WHERE declaration_id = NEW.declaration_id AND stage = 'received')
    WHERE r >= 0
    ON CONFLICT (hour_ms, origin, destination, release_ms)
    DO UPDATE SET declarations = declarations + 1;
END;

-- The backfill (the same figures as PostgreSQL's tamga_dashboard_rebuild()).
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

INSERT OR IGNORE INTO tamga_schema_migrations (version, name)
    VALUES (9, 'sqlite_0009_dashboard_summary');
