-- Tamga 0003: the broker gateway (services/gateway): API tokens, idempotency keys.
-- Insert-only like the rest: revoking a token inserts a revocation row, a submission is
-- claimed once per (broker, Idempotency-Key) with INSERT … ON CONFLICT DO NOTHING.

-- API tokens, stored as the SHA-256 of the token (the token itself is shown once).
CREATE TABLE gateway_tokens (
    token_sha256  TEXT   PRIMARY KEY CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    broker        TEXT   NOT NULL,
    country       TEXT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX gateway_tokens_broker ON gateway_tokens (broker);

CREATE TABLE gateway_token_revocations (
    token_sha256  TEXT   PRIMARY KEY REFERENCES gateway_tokens (token_sha256),
    revoked_at_ms BIGINT NOT NULL
);

-- One row per (broker, Idempotency-Key): the declaration id it was given and the SHA-256
-- of the bytes, so that a retry with the same key gets the same answer.
CREATE TABLE gateway_submissions (
    broker          TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    id              TEXT   NOT NULL UNIQUE,
    body_sha256     TEXT   NOT NULL,
    origin          TEXT   NOT NULL,
    destination     TEXT   NOT NULL,
    lrn             TEXT,
    created_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (broker, idempotency_key)
);
CREATE INDEX gateway_submissions_list ON gateway_submissions (broker, created_at_ms, id);
CREATE INDEX gateway_submissions_digest ON gateway_submissions (body_sha256);

-- Status changes of each broker's declarations, for GET /v1/notifications?after=SEQ (kept:
-- never deleted). One row per (declaration, status); seq orders them for the cursor.
CREATE TABLE gateway_notifications (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    broker  TEXT   NOT NULL,
    id      TEXT   NOT NULL,
    status  TEXT   NOT NULL,
    at_ms   BIGINT NOT NULL,
    UNIQUE (id, status)
);
CREATE INDEX gateway_notifications_broker ON gateway_notifications (broker, seq);

REVOKE ALL ON gateway_tokens, gateway_token_revocations, gateway_submissions,
    gateway_notifications FROM PUBLIC;
GRANT SELECT, INSERT ON gateway_tokens, gateway_token_revocations, gateway_submissions,
    gateway_notifications TO tamga_app;
