-- Consecutive wrong passwords per canonical address, known or not, so the
-- lock itself tells nobody whether an account exists (PASSWORD_MAX_FAILURES).
-- `locks` counts the locks so far (each lasts twice the one before);
-- `last_at` lets the prune job forget an address a day after its last failure.
CREATE TABLE password_failures (
    email        TEXT PRIMARY KEY,
    count        INTEGER NOT NULL,
    locks        INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    last_at      INTEGER NOT NULL
);
CREATE INDEX password_failures_last ON password_failures (last_at);

-- Failed password logins per client network, for RATE_LOGIN_IP_PER_HOUR.
CREATE TABLE login_failures (
    ip TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX login_failures_ip ON login_failures (ip, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- The code a dev-mailbox message carried (NULL for a notice), for
-- /dev/mailbox.json, and which outbox rows went to the dev mailbox rather
-- than an SMTP server: those never count as sent in the stats.
ALTER TABLE dev_mailbox ADD COLUMN code TEXT;
ALTER TABLE outbox ADD COLUMN dev INTEGER NOT NULL DEFAULT 0;
