-- Push notifications of the gateway on the embedded default: the same as
-- infra/postgres/migrations/0004_gateway_callbacks.sql. Idempotent; run at every open.

CREATE TABLE IF NOT EXISTS gateway_callbacks (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    broker        TEXT    NOT NULL,
    url           TEXT,
    secret        TEXT,
    start_after   INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    CHECK ((url IS NULL) = (secret IS NULL))
);
CREATE INDEX IF NOT EXISTS gateway_callbacks_broker ON gateway_callbacks (broker, seq);

CREATE TABLE IF NOT EXISTS gateway_callback_attempts (
    attempt      INTEGER PRIMARY KEY AUTOINCREMENT,
    callback_seq INTEGER NOT NULL REFERENCES gateway_callbacks (seq),
    first_seq    INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL,
    at_ms        INTEGER NOT NULL,
    delivered    INTEGER NOT NULL,
    http_status  INTEGER,
    error        TEXT
);
-- The latest delivered attempt, the failures after it, and the latest attempt of a callback.
CREATE INDEX IF NOT EXISTS gateway_callback_attempts_cursor ON gateway_callback_attempts (callback_seq, delivered, attempt);
CREATE INDEX IF NOT EXISTS gateway_callback_attempts_latest ON gateway_callback_attempts (callback_seq, attempt);

INSERT OR IGNORE INTO tamga_schema_migrations (version, name) VALUES (4, 'sqlite_0004_gateway_callbacks');
