//! The writes of sessions, over [`Exec`]: a new one (by itself, or inside
//! a sign-in by code or a password reset) and logout. Reads are in
//! `queries.rs` (`live_session`).

use super::exec::{args, Exec};
use super::*;

/// The new session's id.
pub(super) async fn create(db: &mut impl Exec, user_id: i64, session: &NewSession) -> Result<i64> {
    let id = db
        .int(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)
             RETURNING id",
            args![&session.token_hash[..], user_id, session.created_at, session.expires_at],
        )
        .await?;
    id.ok_or_else(|| StorageError::Other("a new session has no id".into()))
}

pub(super) async fn delete(db: &mut impl Exec, token_hash: &[u8]) -> Result<bool> {
    let deleted = db
        .execute(
            "DELETE FROM sessions WHERE token_hash = $1",
            args![token_hash],
        )
        .await?;
    Ok(deleted > 0)
}
