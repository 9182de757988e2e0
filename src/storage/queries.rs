//! The queries both backends share, written once. SQL here is the common
//! dialect of SQLite and PostgreSQL (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`); what differs (opening, locking, the outbox claim) lives in
//! each backend module, which expands this macro with its database type.

macro_rules! shared_queries {
    ($db:ty) => {
        type Tx<'c> = sqlx::Transaction<'c, $db>;

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

        async fn lock_retry_after(tx: &mut Tx<'_>, email: &str, now: i64) -> Result<Option<i64>> {
            let until: Option<i64> = sqlx::query_scalar(
                "SELECT locked_until FROM failures WHERE email = $1 AND locked_until > $2",
            )
            .bind(email)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?
            .flatten();
            Ok(until.map(|u| u - now))
        }

        /// Seconds until the `limit`-th newest request in the window leaves it, if the
        /// window is full. `column` is a fixed column name, never user input.
        async fn window_full(
            tx: &mut Tx<'_>,
            column: &str,
            key: &str,
            limit: i64,
            now: i64,
        ) -> Result<Option<i64>> {
            if limit <= 0 {
                return Ok(None);
            }
            let sql = format!("SELECT at FROM code_requests WHERE {column} = $1 AND at > $2 ORDER BY at DESC LIMIT 1 OFFSET $3");
            let at: Option<i64> = sqlx::query_scalar(&sql)
                .bind(key)
                .bind(now - 3600)
                .bind(limit - 1)
                .fetch_optional(&mut **tx)
                .await?;
            Ok(at.map(|at| at + 3600 - now))
        }

        pub async fn request_code(pool: &sqlx::Pool<$db>, req: CodeRequest<'_>) -> Result<CodeRequestOutcome> {
            let email = req.email.as_str();
            let mut tx = begin_locked(pool, &[email, req.ip_key]).await?;
            if let Some(retry_after) = lock_retry_after(&mut tx, email, req.now).await? {
                return Ok(CodeRequestOutcome::Locked { retry_after });
            }
            let mut waits = Vec::new();
            if req.limits.cooldown_secs > 0 {
                let last: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(at) FROM code_requests WHERE email = $1 AND purpose = $2")
                        .bind(email)
                        .bind(req.purpose.as_str())
                        .fetch_one(&mut *tx)
                        .await?;
                waits.extend(
                    last.map(|at| at + req.limits.cooldown_secs - req.now)
                        .filter(|w| *w > 0),
                );
            }
            waits.extend(
                window_full(
                    &mut tx,
                    "email",
                    email,
                    req.limits.per_email_per_hour,
                    req.now,
                )
                .await?,
            );
            waits.extend(
                window_full(
                    &mut tx,
                    "ip",
                    req.ip_key,
                    req.limits.per_ip_per_hour,
                    req.now,
                )
                .await?,
            );
            if let Some(retry_after) = waits.into_iter().max() {
                return Ok(CodeRequestOutcome::RateLimited { retry_after });
            }
            sqlx::query("INSERT INTO code_requests (email, purpose, ip, at) VALUES ($1, $2, $3, $4)")
                .bind(email)
                .bind(req.purpose.as_str())
                .bind(req.ip_key)
                .bind(req.now)
                .execute(&mut *tx)
                .await?;
            let has_account = sqlx::query("SELECT 1 FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            let mailed = has_account == req.purpose.needs_account();
            if mailed {
                sqlx::query(
                    "INSERT INTO codes (email, purpose, code_hash, expires_at, attempts, used) VALUES ($1, $2, $3, $4, 0, 0)
                     ON CONFLICT (email, purpose) DO UPDATE SET code_hash = excluded.code_hash,
                         expires_at = excluded.expires_at, attempts = 0, used = 0",
                )
                .bind(email)
                .bind(req.purpose.as_str())
                .bind(req.code_hash)
                .bind(req.code_expires_at)
                .execute(&mut *tx)
                .await?;
                insert_message(&mut tx, &req.mail, req.now).await?;
            }
            tx.commit().await?;
            Ok(CodeRequestOutcome::Accepted { mailed })
        }

        pub async fn check_code(
            pool: &sqlx::Pool<$db>,
            email: &EmailAddress,
            purpose: Purpose,
            now: i64,
            limits: GuessLimits,
            matches: impl FnOnce(&[u8]) -> bool + Send,
        ) -> Result<CodeCheck> {
            let email = email.as_str();
            let mut tx = begin_locked(pool, &[email]).await?;
            if let Some(retry_after) = lock_retry_after(&mut tx, email, now).await? {
                return Ok(CodeCheck::Locked { retry_after });
            }
            // The guess is counted before it is compared, so no number of parallel
            // guesses can get more than `max_attempts` comparisons.
            let counted: Option<Vec<u8>> = sqlx::query_scalar(
                "UPDATE codes SET attempts = attempts + 1
                 WHERE email = $1 AND purpose = $2 AND used = 0 AND expires_at > $3 AND attempts < $4
                 RETURNING code_hash",
            )
            .bind(email)
            .bind(purpose.as_str())
            .bind(now)
            .bind(limits.max_attempts)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(stored) = counted else {
                let exhausted = sqlx::query(
                    "SELECT 1 FROM codes WHERE email = $1 AND purpose = $2 AND used = 0 AND expires_at > $3",
                )
                .bind(email)
                .bind(purpose.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
                return Ok(if exhausted {
                    CodeCheck::Exhausted
                } else {
                    CodeCheck::Invalid
                });
            };
            let valid = matches(&stored);
            if valid {
                sqlx::query("UPDATE codes SET used = 1 WHERE email = $1 AND purpose = $2")
                    .bind(email)
                    .bind(purpose.as_str())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM failures WHERE email = $1")
                    .bind(email)
                    .execute(&mut *tx)
                    .await?;
            } else {
                record_failure(&mut tx, email, now, limits).await?;
            }
            tx.commit().await?;
            Ok(if valid {
                CodeCheck::Valid
            } else {
                CodeCheck::Invalid
            })
        }

        /// One more consecutive wrong guess; reaching `max_failures` locks the address.
        async fn record_failure(tx: &mut Tx<'_>, email: &str, now: i64, limits: GuessLimits) -> Result<()> {
            // A lock that has run out starts a fresh count.
            let previous: i64 = sqlx::query_scalar(
                "SELECT CASE WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN 0 ELSE count END
                 FROM failures WHERE email = $2",
            )
            .bind(now)
            .bind(email)
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or(0);
            let count = previous + 1;
            let locked_until =
                (limits.max_failures > 0 && count >= limits.max_failures).then_some(now + limits.lock_secs);
            sqlx::query(
                "INSERT INTO failures (email, count, locked_until) VALUES ($1, $2, $3)
                 ON CONFLICT (email) DO UPDATE SET count = excluded.count, locked_until = excluded.locked_until",
            )
            .bind(email)
            .bind(count)
            .bind(locked_until)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        pub async fn clear_failures(pool: &sqlx::Pool<$db>, email: &EmailAddress) -> Result<()> {
            sqlx::query("DELETE FROM failures WHERE email = $1")
                .bind(email.as_str())
                .execute(pool)
                .await?;
            Ok(())
        }

        pub async fn create_user(
            pool: &sqlx::Pool<$db>,
            email: &EmailAddress,
            password_hash: &str,
            now: i64,
        ) -> Result<Option<User>> {
            Ok(sqlx::query_as(
                "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (email) DO NOTHING
                 RETURNING id, email, password_hash, created_at",
            )
            .bind(email.as_str())
            .bind(password_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?)
        }

        pub async fn find_user(pool: &sqlx::Pool<$db>, email: &EmailAddress) -> Result<Option<User>> {
            Ok(
                sqlx::query_as("SELECT id, email, password_hash, created_at FROM users WHERE email = $1")
                    .bind(email.as_str())
                    .fetch_optional(pool)
                    .await?,
            )
        }

        pub async fn reset_password(
            pool: &sqlx::Pool<$db>,
            user_id: i64,
            password_hash: &str,
            notice: NewMessage,
            now: i64,
        ) -> Result<()> {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            insert_message(&mut tx, &notice, now).await?;
            tx.commit().await?;
            Ok(())
        }

        pub async fn create_session(
            pool: &sqlx::Pool<$db>,
            token_hash: &[u8],
            user_id: i64,
            now: i64,
            expires_at: i64,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub async fn session_user(pool: &sqlx::Pool<$db>, token_hash: &[u8], now: i64) -> Result<Option<User>> {
            Ok(sqlx::query_as(
                "SELECT u.id, u.email, u.password_hash, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?)
        }

        pub async fn delete_session(pool: &sqlx::Pool<$db>, token_hash: &[u8]) -> Result<bool> {
            let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        async fn insert_message(tx: &mut Tx<'_>, msg: &NewMessage, now: i64) -> Result<i64> {
            let id = sqlx::query_scalar(
                "INSERT INTO outbox (message_id, recipient, kind, lang, payload, next_attempt_at, expires_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(&msg.message_id)
            .bind(msg.to.as_str())
            .bind(msg.kind.as_str())
            .bind(msg.lang.as_str())
            .bind(&msg.payload)
            .bind(now)
            .bind(msg.expires_at)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            Ok(id)
        }

        pub async fn enqueue(pool: &sqlx::Pool<$db>, msg: NewMessage, now: i64) -> Result<i64> {
            let mut tx = pool.begin().await?;
            let id = insert_message(&mut tx, &msg, now).await?;
            tx.commit().await?;
            Ok(id)
        }

        pub async fn claim_due_messages(
            pool: &sqlx::Pool<$db>,
            now: i64,
            lease_until: i64,
            limit: i64,
        ) -> Result<Vec<OutboxMessage>> {
            Ok(sqlx::query_as(CLAIM_DUE)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?)
        }

        pub async fn mark_sent(pool: &sqlx::Pool<$db>, id: i64, reply: &str, now: i64) -> Result<()> {
            sqlx::query(
                "UPDATE outbox SET status = 'sent', sent_at = $1, last_reply = $2, payload = NULL, lease_until = NULL WHERE id = $3",
            )
            .bind(now)
            .bind(reply)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub async fn mark_retry(
            pool: &sqlx::Pool<$db>,
            id: i64,
            error: &str,
            next_attempt_at: i64,
        ) -> Result<()> {
            sqlx::query(
                "UPDATE outbox SET status = 'queued', last_error = $1, next_attempt_at = $2, lease_until = NULL
                 WHERE id = $3 AND status = 'sending'",
            )
            .bind(error)
            .bind(next_attempt_at)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub async fn mark_failed(pool: &sqlx::Pool<$db>, id: i64, error: &str, now: i64) -> Result<()> {
            sqlx::query(
                "UPDATE outbox SET status = 'failed', last_error = $1, failed_at = $2, payload = NULL, lease_until = NULL
                 WHERE id = $3 AND status <> 'sent'",
            )
            .bind(error)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub async fn next_due_at(pool: &sqlx::Pool<$db>) -> Result<Option<i64>> {
            Ok(sqlx::query_scalar(
                "SELECT MIN(t) FROM (
                     SELECT MIN(next_attempt_at) AS t FROM outbox WHERE status = 'queued'
                     UNION ALL SELECT MIN(lease_until) FROM outbox WHERE status = 'sending') AS due",
            )
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

        pub async fn outbox_stats(pool: &sqlx::Pool<$db>, since: i64) -> Result<OutboxStats> {
            Ok(sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE sent_at > $1) AS sent,
                        (SELECT COUNT(*) FROM outbox WHERE failed_at > $1) AS failed,
                        (SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')) AS queued",
            )
            .bind(since)
            .fetch_one(pool)
            .await?)
        }

        pub async fn deliver_to_dev_mailbox(pool: &sqlx::Pool<$db>, id: i64, mail: DevMail) -> Result<()> {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO dev_mailbox (recipient, subject, text, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&mail.to)
            .bind(&mail.subject)
            .bind(&mail.text)
            .bind(mail.created_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE outbox SET status = 'sent', sent_at = $1, last_reply = 'dev mailbox', payload = NULL, lease_until = NULL
                 WHERE id = $2",
            )
            .bind(mail.created_at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        pub async fn dev_mailbox(pool: &sqlx::Pool<$db>, limit: i64) -> Result<Vec<DevMail>> {
            Ok(sqlx::query_as(
                "SELECT recipient, subject, text, created_at FROM dev_mailbox ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?)
        }

        /// Deletes what no rule can need any more: old requests, dead codes and
        /// sessions, and finished mail older than `retention_secs`.
        pub async fn prune(pool: &sqlx::Pool<$db>, now: i64, retention_secs: i64) -> Result<()> {
            // Requests only matter for the rolling hour and the cooldown (at most a day).
            let deletes: [(&str, i64); 7] = [
                ("DELETE FROM code_requests WHERE at < $1", now - 86_400),
                ("DELETE FROM codes WHERE expires_at < $1", now - 3600),
                ("DELETE FROM sessions WHERE expires_at < $1", now),
                ("DELETE FROM failures WHERE locked_until IS NOT NULL AND locked_until < $1", now),
                ("DELETE FROM outbox WHERE status = 'sent' AND sent_at < $1", now - retention_secs),
                ("DELETE FROM outbox WHERE status = 'failed' AND failed_at < $1", now - retention_secs),
                ("DELETE FROM dev_mailbox WHERE created_at < $1", now - retention_secs),
            ];
            for (sql, before) in deletes {
                sqlx::query(sql).bind(before).execute(pool).await?;
            }
            Ok(())
        }

    };
}

pub(super) use shared_queries;
