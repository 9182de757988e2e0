-- The claim takes the oldest due messages first: with `id` in the index, it
-- reads them in order and stops at its LIMIT instead of sorting the whole
-- backlog on every claim (which made a 100,000-message queue drain slower
-- the longer it was).
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
