-- Tamga 0006: the checkpoint's checks (issue 17). A check is a `checked` audit event
-- (detail: checkId, checkpoint, officer, device, bundleVersion, result, offline, …) whose
-- signed check record is a stage result (`check_record`). The repeat rule reads the earlier
-- checks of one declaration (by document digest); the dashboard's checkpoint panels read
-- the checks of a time range. Both read only `checked` events: partial indexes.

CREATE INDEX audit_events_checked_digest ON audit_events (digest, at_ms)
    WHERE stage = 'checked';
CREATE INDEX audit_events_checked_at ON audit_events (at_ms)
    WHERE stage = 'checked';
