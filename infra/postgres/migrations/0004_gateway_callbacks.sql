-- Tamga 0004: push notifications of the broker gateway (services/gateway/src/callback.rs).
-- Insert-only like the rest: setting or clearing a broker's callback inserts a row (the
-- broker's latest row is in force), and every delivery attempt inserts a row (the latest
-- delivered one is the cursor: notifications with a larger seq are still to deliver).

-- A broker's callback URL and HMAC secret (the secret signs each body: it is kept, not
-- hashed). url NULL: cleared. Notifications with seq > start_after are delivered.
CREATE TABLE gateway_callbacks (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    broker        TEXT   NOT NULL,
    url           TEXT,
    secret        TEXT,
    start_after   BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    CHECK ((url IS NULL) = (secret IS NULL))
);
CREATE INDEX gateway_callbacks_broker ON gateway_callbacks (broker, seq);

-- One row per POST to a callback: the notifications it carried (first_seq..last_seq),
-- and whether the receiver took them (2xx) or why not.
CREATE TABLE gateway_callback_attempts (
    attempt      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    callback_seq BIGINT  NOT NULL REFERENCES gateway_callbacks (seq),
    first_seq    BIGINT  NOT NULL,
    last_seq     BIGINT  NOT NULL,
    at_ms        BIGINT  NOT NULL,
    delivered    BOOLEAN NOT NULL,
    http_status  INTEGER,
    error        TEXT
);
-- The latest delivered attempt, the failures after it, and the latest attempt of a callback.
CREATE INDEX gateway_callback_attempts_cursor ON gateway_callback_attempts (callback_seq, delivered, attempt);
CREATE INDEX gateway_callback_attempts_latest ON gateway_callback_attempts (callback_seq, attempt);

REVOKE ALL ON gateway_callbacks, gateway_callback_attempts FROM PUBLIC;
GRANT SELECT, INSERT ON gateway_callbacks, gateway_callback_attempts TO tamga_app;
