-- Sessions get an id of their own, which JWTs name (`sid`): the token is a
-- secret and is never stored, its hash never leaves the database. SQLite
-- cannot add a key column in place, so the table is built again.
CREATE TABLE sessions_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO sessions_new (token_hash, user_id, created_at, expires_at)
    SELECT token_hash, user_id, created_at, expires_at FROM sessions ORDER BY created_at;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- The Ed25519 keys JWTs are signed with, shared by every instance.
-- `private_key` is the key's seed sealed with ChaCha20-Poly1305 under a key
-- derived from SECRET_KEY (nonce first, the kid as associated data): with
-- SECRET_KEY set outside the database, a copy of the database cannot sign.
-- `retired_at` is NULL for the one key that signs now; a retired key stays
-- published until the tokens it signed have expired.
CREATE TABLE jwt_keys (
    kid         TEXT PRIMARY KEY,
    public_key  BLOB NOT NULL,
    private_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);
-- At most one key signs at a time, whatever races.
CREATE UNIQUE INDEX jwt_keys_current ON jwt_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
