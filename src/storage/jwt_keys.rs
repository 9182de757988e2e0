//! The writes of the JWT signing keys, written once over [`Exec`]. Both run
//! behind the same advisory lock on PostgreSQL (in the one writer on SQLite),
//! so instances starting at once, or a rotation racing a start, leave exactly
//! one key signing; the unique index on the current key holds that too.

use super::exec::{args, Exec};
use super::*;

/// The advisory lock both flows take (no address has this form).
pub(super) const LOCK: &str = "authmail:jwt_keys";

/// How long a retired key's row is kept: past the longest `JWT_TTL_SECS`
/// (a day), so no token it signed can still be live when it goes.
const KEEP_RETIRED_SECS: i64 = 2 * 86_400;

const CURRENT: &str = "SELECT 1 FROM jwt_keys WHERE retired_at IS NULL";

/// Stores `key` as the signing key unless there is one already; whether it did.
pub(super) async fn insert_first(db: &mut impl Exec, key: &StoredJwtKey, now: i64) -> Result<bool> {
    if db.exists(CURRENT, args![]).await? {
        return Ok(false);
    }
    insert(db, key, now).await?;
    Ok(true)
}

/// Retires the signing key, if there is one, and makes `key` the one that
/// signs; whether there was one to retire.
pub(super) async fn rotate(db: &mut impl Exec, key: &StoredJwtKey, now: i64) -> Result<bool> {
    let retired = db
        .execute(
            "UPDATE jwt_keys SET retired_at = $1 WHERE retired_at IS NULL",
            args![now],
        )
        .await?;
    insert(db, key, now).await?;
    Ok(retired > 0)
}

async fn insert(db: &mut impl Exec, key: &StoredJwtKey, now: i64) -> Result<()> {
    db.execute(
        "INSERT INTO jwt_keys (kid, public_key, private_key, created_at) VALUES ($1, $2, $3, $4)",
        args![&key.kid, &key.public_key[..], &key.private_key[..], now],
    )
    .await?;
    Ok(())
}

/// For the prune job: (statement, age of the rows it deletes).
pub(super) const PRUNE: [(&str, i64); 1] = [(
    "DELETE FROM jwt_keys WHERE retired_at < $1",
    KEEP_RETIRED_SECS,
)];
