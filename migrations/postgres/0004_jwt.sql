-- Sessions get an id of their own, which JWTs name (`sid`): the token is a
-- secret and is never stored, its hash never leaves the database.
ALTER TABLE sessions ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE;

-- The Ed25519 keys JWTs are signed with, shared by every instance.
-- `private_key` is the key's seed sealed with ChaCha20-Poly1305 under a key
-- derived from SECRET_KEY (nonce first, the kid as associated data): with
-- SECRET_KEY set outside the database, a copy of the database cannot sign.
-- `retired_at` is NULL for the one key that signs now; a retired key stays
-- published until the tokens it signed have expired.
CREATE TABLE jwt_keys (
    kid         TEXT PRIMARY KEY,
    public_key  BYTEA NOT NULL,
    private_key BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
-- At most one key signs at a time, whatever races.
CREATE UNIQUE INDEX jwt_keys_current ON jwt_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
