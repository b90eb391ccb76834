-- The gateway's tables on the embedded default: the same as
-- infra/postgres/migrations/0003_gateway.sql. Idempotent; run at every open.

CREATE TABLE IF NOT EXISTS gateway_tokens (
    token_sha256  TEXT    PRIMARY KEY CHECK (length(token_sha256) = 64),
    broker        TEXT    NOT NULL,
    country       TEXT,
    created_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS gateway_tokens_broker ON gateway_tokens (broker);

CREATE TABLE IF NOT EXISTS gateway_token_revocations (
    token_sha256  TEXT    PRIMARY KEY REFERENCES gateway_tokens (token_sha256),
    revoked_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS gateway_submissions (
    broker          TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    id              TEXT    NOT NULL UNIQUE,
    body_sha256     TEXT    NOT NULL,
    origin          TEXT    NOT NULL,
    destination     TEXT    NOT NULL,
    lrn             TEXT,
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (broker, idempotency_key)
) STRICT;
CREATE INDEX IF NOT EXISTS gateway_submissions_list ON gateway_submissions (broker, created_at_ms, id);
CREATE INDEX IF NOT EXISTS gateway_submissions_digest ON gateway_submissions (body_sha256);

CREATE TABLE IF NOT EXISTS gateway_notifications (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    broker  TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    at_ms   INTEGER NOT NULL,
    UNIQUE (id, status)
);
CREATE INDEX IF NOT EXISTS gateway_notifications_broker ON gateway_notifications (broker, seq);

-- 0010: the notifier's sweep reads submissions by time (0010_gateway_notifier.sql).
CREATE INDEX IF NOT EXISTS gateway_submissions_created ON gateway_submissions (created_at_ms, id);

INSERT OR IGNORE INTO tamga_schema_migrations (version, name) VALUES (3, 'sqlite_0003_gateway');
INSERT OR IGNORE INTO tamga_schema_migrations (version, name) VALUES (10, 'sqlite_0010_gateway_notifier');
