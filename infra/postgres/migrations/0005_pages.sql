-- Tamga 0005: the pages (services/gateway/src/pages): tokens of officers, auditors and
-- analysts (separate from the brokers' API tokens: a broker token never opens a page, a
-- page token never submits), and the dashboard's index.

CREATE TABLE page_tokens (
    token_sha256  TEXT   PRIMARY KEY CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    holder        TEXT   NOT NULL,
    role          TEXT   NOT NULL CHECK (role IN ('officer', 'auditor', 'analyst')),
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX page_tokens_holder ON page_tokens (holder);

CREATE TABLE page_token_revocations (
    token_sha256  TEXT   PRIMARY KEY REFERENCES page_tokens (token_sha256),
    revoked_at_ms BIGINT NOT NULL
);

-- The dashboard reads the stages it counts over a time range: an index-only scan.
CREATE INDEX audit_events_dashboard ON audit_events (stage, at_ms)
    INCLUDE (origin, destination, reason, sub_indication, declaration_id);

-- The checkpoint finds a declaration by its LRN.
CREATE INDEX gateway_submissions_lrn ON gateway_submissions (lrn);

REVOKE ALL ON page_tokens, page_token_revocations FROM PUBLIC;
GRANT SELECT, INSERT ON page_tokens, page_token_revocations TO tamga_app;
