-- Tamga 0010: the gateway notifier's sweep reads submissions by time.
--
-- The notifier (services/gateway/src/api.rs, `notify_pending`) follows the submissions its
-- own process made in memory; a sweep of the table finds the others (made by a process
-- that stopped, retried by another one) once a minute, from a floor: the oldest
-- submission it found unsettled last time, or a minute before that sweep. Without an index
-- on the time, that floor was a scan of every submission ever made.
CREATE INDEX gateway_submissions_created ON gateway_submissions (created_at_ms, id);
