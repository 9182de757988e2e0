//! The reads both backends share, written once. SQL here is
//! the common dialect of SQLite and PostgreSQL (`$n` parameters,
//! `ON CONFLICT`, `RETURNING`); what differs (opening, locking, the outbox
//! claim) lives in each backend module, which expands this macro with its
//! database type.

macro_rules! shared_queries {
    ($db:ty) => {
        pub async fn ping(pool: &sqlx::Pool<$db>) -> Result<()> {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        }

        /// The stored key, after storing `candidate` if there was none: the
        /// first instance to start decides, every later one reads the same.
        pub async fn secret_key(pool: &sqlx::Pool<$db>, candidate: &str) -> Result<String> {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ('secret_key', $1) ON CONFLICT (key) DO NOTHING",
            )
            .bind(candidate)
            .execute(pool)
            .await?;
            Ok(
                sqlx::query_scalar("SELECT value FROM settings WHERE key = 'secret_key'")
                    .fetch_one(pool)
                    .await?,
            )
        }

        pub async fn find_user(pool: &sqlx::Pool<$db>, email: &EmailAddress) -> Result<Option<User>> {
            Ok(
                sqlx::query_as("SELECT id, email, password_hash, created_at FROM users WHERE email = $1")
                    .bind(email.as_str())
                    .fetch_optional(pool)
                    .await?,
            )
        }

        pub async fn live_session(pool: &sqlx::Pool<$db>, token_hash: &[u8], now: i64) -> Result<Option<LiveSession>> {
            Ok(sqlx::query_as(
                "SELECT s.id AS session_id, u.id, u.email, u.password_hash, u.created_at
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?)
        }

        pub async fn current_jwt_key(pool: &sqlx::Pool<$db>) -> Result<Option<StoredJwtKey>> {
            Ok(sqlx::query_as(
                "SELECT kid, public_key, private_key FROM jwt_keys WHERE retired_at IS NULL",
            )
            .fetch_optional(pool)
            .await?)
        }

        pub async fn published_jwt_keys(pool: &sqlx::Pool<$db>, retired_after: i64) -> Result<Vec<PublishedJwtKey>> {
            Ok(sqlx::query_as(
                "SELECT kid, public_key FROM jwt_keys WHERE retired_at IS NULL OR retired_at > $1
                 ORDER BY retired_at IS NULL DESC, retired_at DESC",
            )
            .bind(retired_after)
            .fetch_all(pool)
            .await?)
        }

        /// When the channel's next row falls due (or a lease runs out).
        pub async fn next_due_at(pool: &sqlx::Pool<$db>, channel: Channel) -> Result<Option<i64>> {
            Ok(sqlx::query_scalar(
                "SELECT MIN(t) FROM (
                     SELECT MIN(next_attempt_at) AS t FROM outbox WHERE channel = $1 AND status = 'queued'
                     UNION ALL SELECT MIN(lease_until) FROM outbox WHERE channel = $1 AND status = 'sending') AS due",
            )
            .bind(channel.as_str())
            .fetch_one(pool)
            .await?)
        }

        pub async fn list_outbox(
            pool: &sqlx::Pool<$db>,
            status: Option<&str>,
            limit: i64,
        ) -> Result<Vec<OutboxEntry>> {
            Ok(sqlx::query_as(
                "SELECT id, recipient, kind, status, attempts, last_error, created_at, sent_at FROM outbox
                 WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) ORDER BY id DESC LIMIT $2",
            )
            .bind(status)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        }

        /// Mail's numbers (webhook events never count toward the failure
        /// rate), and the webhook events waiting.
        pub async fn outbox_stats(pool: &sqlx::Pool<$db>, since: i64) -> Result<OutboxStats> {
            Ok(sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE sent_at > $1 AND dev = 0 AND channel = 'mail') AS sent,
                        (SELECT COUNT(*) FROM outbox WHERE failed_at > $1 AND channel = 'mail') AS failed,
                        (SELECT COUNT(*) FROM outbox WHERE channel = 'mail' AND status IN ('queued', 'sending')) AS queued,
                        (SELECT COUNT(*) FROM outbox WHERE channel = 'webhook' AND status IN ('queued', 'sending')) AS webhooks_queued",
            )
            .bind(since)
            .fetch_one(pool)
            .await?)
        }

        pub async fn dev_mailbox(pool: &sqlx::Pool<$db>, limit: i64) -> Result<Vec<DevMail>> {
            Ok(sqlx::query_as(
                "SELECT recipient, subject, text, code, created_at FROM dev_mailbox ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?)
        }

    };
}

pub(super) use shared_queries;
