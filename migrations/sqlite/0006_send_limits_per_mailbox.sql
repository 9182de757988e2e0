-- The send limits count per mailbox (aliases folded) and per purpose, and the
-- global cap counts every accepted request: the column holds the mailbox key
-- (EmailAddress::mailbox), not the address as given.
ALTER TABLE code_requests RENAME COLUMN email TO mailbox;
DROP INDEX code_requests_email;
CREATE INDEX code_requests_mailbox ON code_requests (mailbox, purpose, at);
