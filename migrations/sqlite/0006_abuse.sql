-- The send limits count per mailbox (aliases folded) and per purpose, and the
-- global cap counts every accepted request: the column holds the mailbox key
-- (EmailAddress::mailbox), not the address as given.
ALTER TABLE code_requests RENAME COLUMN email TO mailbox;
DROP INDEX code_requests_email;
CREATE INDEX code_requests_mailbox ON code_requests (mailbox, purpose, at);

-- The client network (IPv4 /24, IPv6 /48) that CHALLENGE=auto counts.
ALTER TABLE code_requests ADD COLUMN network TEXT NOT NULL DEFAULT '';
CREATE INDEX code_requests_network ON code_requests (network, at);

-- Challenges handed out and not yet redeemed: redeeming deletes the row, so
-- each is used once, on whichever instance. `kind` is `work` (proof of work
-- of `bits` zero bits over a salt derived from the id) or `image` (the
-- keyed hash of the digits shown in `answer_hash`).
CREATE TABLE challenges (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    bits        INTEGER NOT NULL,
    answer_hash BLOB,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX challenges_expires ON challenges (expires_at);
