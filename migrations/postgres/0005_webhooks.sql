-- User-event webhooks share the outbox with mail, in a channel of their own:
-- mail and webhooks are claimed by separate workers, so a slow webhook
-- receiver never holds a connection a code mail is waiting for. For a
-- webhook row, `recipient` is the target URL (any password masked),
-- `message_id` the event's `webhook-id` and `payload` its JSON body.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'mail';

-- Each claim reads its own channel's due rows and expired leases in order.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (channel, status, next_attempt_at, id);
DROP INDEX outbox_lease;
CREATE INDEX outbox_lease ON outbox (channel, status, lease_until);
