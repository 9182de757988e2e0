-- All times are Unix seconds (UTC). Ids are integers, exposed as strings.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- One live code per address and purpose: a new code replaces (voids) the old one.
CREATE TABLE codes (
    email      TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    code_hash  BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    used       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (email, purpose)
);

-- Every accepted send-code request, whether or not a mail went out: the
-- cooldown and the rolling-hour limits count these, so they cannot reveal
-- which addresses have accounts.
CREATE TABLE code_requests (
    email   TEXT NOT NULL,
    purpose TEXT NOT NULL,
    ip      TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX code_requests_email ON code_requests (email, purpose, at);
CREATE INDEX code_requests_ip ON code_requests (ip, at);
CREATE INDEX code_requests_at ON code_requests (at);

-- Consecutive wrong guesses per address, across codes (CODE_MAX_FAILURES).
CREATE TABLE failures (
    email        TEXT PRIMARY KEY,
    count        BIGINT NOT NULL,
    locked_until BIGINT
);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- The durable outbox. `payload` holds what the template needs (the code) and
-- is wiped once the message is final. A claim is a lease (`lease_until`), so a
-- crashed worker's messages are taken again once it runs out.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    lang            TEXT NOT NULL,
    payload         TEXT,
    status          TEXT NOT NULL DEFAULT 'queued',
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_reply      TEXT,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    failed_at       BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_lease ON outbox (status, lease_until);
CREATE INDEX outbox_sent ON outbox (sent_at);
CREATE INDEX outbox_failed ON outbox (failed_at);

CREATE TABLE dev_mailbox (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
