//! Every write authmail makes, written once over [`Exec`]. Each flow runs
//! inside one transaction the backend opened for it: on PostgreSQL behind
//! advisory locks on the keys it decides, on SQLite inside the writer
//! thread's batch (one writer at a time, so the reads here see a stable state).

use super::exec::{args, Arg, Exec};
use super::*;

/// The address's failure record, if any: its lock's end, 0 when not locked.
const FAILURES: &str = "SELECT COALESCE(locked_until, 0) FROM failures WHERE email = $1";
const LAST_REQUEST: &str = "SELECT MAX(at) FROM code_requests WHERE email = $1 AND purpose = $2";
/// The `limit`-th newest request in the window, if there are that many.
const WINDOW_EMAIL: &str =
    "SELECT at FROM code_requests WHERE email = $1 AND at > $2 ORDER BY at DESC LIMIT 1 OFFSET $3";
const WINDOW_IP: &str =
    "SELECT at FROM code_requests WHERE ip = $1 AND at > $2 ORDER BY at DESC LIMIT 1 OFFSET $3";

/// What the failure record says: no record, one without a live lock, or
/// the seconds left on the lock.
enum Failures {
    None,
    Counted,
    Locked { retry_after: i64 },
}

async fn failures(db: &mut impl Exec, email: &str, now: i64) -> Result<Failures> {
    Ok(match db.int(FAILURES, args![email]).await? {
        None => Failures::None,
        Some(until) if until > now => Failures::Locked {
            retry_after: until - now,
        },
        Some(_) => Failures::Counted,
    })
}

/// Seconds until the `limit`-th newest request in the window leaves it, if
/// the window is full.
async fn window_full(
    db: &mut impl Exec,
    sql: &'static str,
    key: &str,
    limit: i64,
    now: i64,
) -> Result<Option<i64>> {
    if limit <= 0 {
        return Ok(None);
    }
    let at = db.int(sql, args![key, now - 3600, limit - 1]).await?;
    Ok(at.map(|at| at + 3600 - now))
}

pub(super) async fn request_code(
    db: &mut impl Exec,
    req: &CodeRequest,
) -> Result<CodeRequestOutcome> {
    let email = req.email.as_str();
    let purpose = req.purpose.as_str();
    if let Failures::Locked { retry_after } = failures(db, email, req.now).await? {
        return Ok(CodeRequestOutcome::Locked { retry_after });
    }
    let mut waits = Vec::new();
    if req.limits.cooldown_secs > 0 {
        let last = db.int(LAST_REQUEST, args![email, purpose]).await?;
        waits.extend(
            last.map(|at| at + req.limits.cooldown_secs - req.now)
                .filter(|w| *w > 0),
        );
    }
    let (per_email, per_ip) = (req.limits.per_email_per_hour, req.limits.per_ip_per_hour);
    waits.extend(window_full(db, WINDOW_EMAIL, email, per_email, req.now).await?);
    waits.extend(window_full(db, WINDOW_IP, &req.ip_key, per_ip, req.now).await?);
    if let Some(retry_after) = waits.into_iter().max() {
        return Ok(CodeRequestOutcome::RateLimited { retry_after });
    }
    db.execute(
        "INSERT INTO code_requests (email, purpose, ip, at) VALUES ($1, $2, $3, $4)",
        args![email, purpose, &req.ip_key, req.now],
    )
    .await?;
    let has_account = db
        .exists("SELECT 1 FROM users WHERE email = $1", args![email])
        .await?;
    // Where the code could not be used, the row holds the hash of no code and
    // the mail is a notice: guesses are then counted and answered just like
    // guesses against a mailed code, and nothing tells the two apart.
    let usable = has_account == req.purpose.needs_account();
    let (code_hash, mail) = match usable {
        true => (&req.code_hash, &req.mail),
        false => (&req.phantom_hash, &req.notice),
    };
    db.execute(
        "INSERT INTO codes (email, purpose, code_hash, expires_at, attempts, used) VALUES ($1, $2, $3, $4, 0, 0)
         ON CONFLICT (email, purpose) DO UPDATE SET code_hash = excluded.code_hash,
             expires_at = excluded.expires_at, attempts = 0, used = 0",
        args![email, purpose, &code_hash[..], req.code_expires_at],
    )
    .await?;
    insert_message(db, mail, req.now).await?;
    Ok(CodeRequestOutcome::Accepted)
}

pub(super) async fn check_code(db: &mut impl Exec, guess: &CodeGuess) -> Result<CodeCheck> {
    let (email, purpose, now) = (guess.email.as_str(), guess.purpose.as_str(), guess.now);
    let record = failures(db, email, now).await?;
    if let Failures::Locked { retry_after } = record {
        return Ok(CodeCheck::Locked { retry_after });
    }
    // No live code (none sent, or expired, used or voided): one nobody knows
    // takes its place, so this guess and the next are counted and answered as
    // if a code had been mailed. A live row is left as it is.
    db.execute(
        "INSERT INTO codes (email, purpose, code_hash, expires_at, attempts, used) VALUES ($1, $2, $3, $4, 0, 0)
         ON CONFLICT (email, purpose) DO UPDATE SET code_hash = excluded.code_hash,
             expires_at = excluded.expires_at, attempts = 0, used = 0
         WHERE codes.used <> 0 OR codes.expires_at <= $5",
        args![email, purpose, &guess.phantom_hash[..], guess.phantom_expires_at, now],
    )
    .await?;
    // The guess is counted before it is compared, so no number of parallel
    // guesses can get more than `max_attempts` comparisons.
    let counted = db
        .blob(
            "UPDATE codes SET attempts = attempts + 1
             WHERE email = $1 AND purpose = $2 AND used = 0 AND expires_at > $3 AND attempts < $4
             RETURNING code_hash",
            args![email, purpose, now, guess.limits.max_attempts],
        )
        .await?;
    let Some(stored) = counted else {
        return Ok(CodeCheck::Exhausted);
    };
    if !guess.matches(&stored) {
        record_failure(db, email, now, guess.limits).await?;
        return Ok(CodeCheck::Invalid);
    }
    db.execute(
        "UPDATE codes SET used = 1 WHERE email = $1 AND purpose = $2",
        args![email, purpose],
    )
    .await?;
    if !matches!(record, Failures::None) {
        clear_failures(db, email).await?;
    }
    Ok(CodeCheck::Valid)
}

pub(super) async fn login_with_code(
    db: &mut impl Exec,
    guess: &CodeGuess,
    session: &NewSession,
) -> Result<(CodeCheck, Option<User>)> {
    let check = check_code(db, guess).await?;
    if check != CodeCheck::Valid {
        return Ok((check, None));
    }
    let user = db
        .user(
            "SELECT id, email, password_hash, created_at FROM users WHERE email = $1",
            args![guess.email.as_str()],
        )
        .await?;
    if let Some(user) = &user {
        create_session(db, user.id, session).await?;
        super::passwords::clear(db, guess.email.as_str()).await?;
    }
    Ok((check, user))
}

/// One more consecutive wrong guess; reaching `max_failures` locks the address.
async fn record_failure(
    db: &mut impl Exec,
    email: &str,
    now: i64,
    limits: GuessLimits,
) -> Result<()> {
    // A lock that has run out starts a fresh count.
    let previous = db
        .int(
            "SELECT CASE WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN 0 ELSE count END
             FROM failures WHERE email = $2",
            args![now, email],
        )
        .await?
        .unwrap_or(0);
    let count = previous + 1;
    let locked_until =
        (limits.max_failures > 0 && count >= limits.max_failures).then_some(now + limits.lock_secs);
    db.execute(
        "INSERT INTO failures (email, count, locked_until) VALUES ($1, $2, $3)
         ON CONFLICT (email) DO UPDATE SET count = excluded.count, locked_until = excluded.locked_until",
        args![email, count, locked_until],
    )
    .await?;
    Ok(())
}

pub(super) async fn clear_failures(db: &mut impl Exec, email: &str) -> Result<()> {
    db.execute("DELETE FROM failures WHERE email = $1", args![email])
        .await?;
    Ok(())
}

pub(super) async fn create_user(
    db: &mut impl Exec,
    email: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<User>> {
    let user = db
        .user(
            "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (email) DO NOTHING
             RETURNING id, email, password_hash, created_at",
            args![email, password_hash, now],
        )
        .await?;
    if user.is_some() {
        // Wrong passwords tried before the account existed lock out nobody.
        super::passwords::clear(db, email).await?;
    }
    Ok(user)
}

pub(super) async fn reset_password(
    db: &mut impl Exec,
    user_id: i64,
    password_hash: &str,
    notice: &NewMessage,
    now: i64,
) -> Result<()> {
    db.execute(
        "UPDATE users SET password_hash = $1 WHERE id = $2",
        args![password_hash, user_id],
    )
    .await?;
    db.execute("DELETE FROM sessions WHERE user_id = $1", args![user_id])
        .await?;
    super::passwords::clear(db, notice.to.as_str()).await?;
    insert_message(db, notice, now).await?;
    Ok(())
}

pub(super) async fn create_session(
    db: &mut impl Exec,
    user_id: i64,
    session: &NewSession,
) -> Result<()> {
    db.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        args![&session.token_hash[..], user_id, session.created_at, session.expires_at],
    )
    .await?;
    Ok(())
}

pub(super) async fn delete_session(db: &mut impl Exec, token_hash: &[u8]) -> Result<bool> {
    let deleted = db
        .execute(
            "DELETE FROM sessions WHERE token_hash = $1",
            args![token_hash],
        )
        .await?;
    Ok(deleted > 0)
}

pub(super) async fn insert_message(db: &mut impl Exec, msg: &NewMessage, now: i64) -> Result<i64> {
    let id = db
        .int(
            "INSERT INTO outbox (message_id, recipient, kind, lang, payload, next_attempt_at, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            args![
                &msg.message_id,
                msg.to.as_str(),
                msg.kind.as_str(),
                msg.lang.as_str(),
                &msg.payload,
                now,
                msg.expires_at,
                now
            ],
        )
        .await?;
    Ok(id.unwrap_or_default())
}

/// `claim_sql` is the backend's claim (how it keeps two claimers apart differs).
pub(super) async fn claim_due_messages(
    db: &mut impl Exec,
    claim_sql: &'static str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<OutboxMessage>> {
    db.messages(claim_sql, args![lease_until, now, limit]).await
}

/// The end of one delivery try.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        reply: String,
    },
    Retry {
        error: String,
        next_attempt_at: i64,
    },
    Failed {
        error: String,
    },
    /// Claimed but never tried (the worker is stopping): due again at once.
    Unclaimed,
}

/// A delivery try's end, to record.
#[derive(Debug, Clone)]
pub struct Finished {
    pub id: i64,
    /// The claim that made the try (the message's `attempts` it set): an
    /// outcome is recorded only while no later claim has taken the message.
    pub attempt: i64,
    pub outcome: Outcome,
    /// When it ended.
    pub at: i64,
}

impl Finished {
    pub fn unclaimed(msg: &OutboxMessage, at: i64) -> Self {
        Self {
            id: msg.id,
            attempt: msg.attempts,
            outcome: Outcome::Unclaimed,
            at,
        }
    }

    /// Whether the message is final (sent or failed).
    pub fn ends(&self) -> bool {
        matches!(self.outcome, Outcome::Sent { .. } | Outcome::Failed { .. })
    }
}

/// Sent messages go in statements of `SENT_CHUNK` rows each (on PostgreSQL
/// every statement is a round trip, one per mail before); the rest row by row.
pub(super) async fn record_outcomes(db: &mut impl Exec, finished: &[Finished]) -> Result<()> {
    let (sent, others): (Vec<&Finished>, Vec<&Finished>) = finished
        .iter()
        .partition(|f| matches!(f.outcome, Outcome::Sent { .. }));
    let mut chunks = sent.chunks_exact(SENT_CHUNK);
    for chunk in &mut chunks {
        let mut args = Vec::with_capacity(4 * SENT_CHUNK);
        for f in chunk {
            if let Outcome::Sent { reply } = &f.outcome {
                args.extend([
                    Arg::Int(f.id),
                    Arg::Int(f.attempt),
                    Arg::Text(reply),
                    Arg::Int(f.at),
                ]);
            }
        }
        db.execute(sent_chunk_sql(), &args).await?;
    }
    for f in chunks.remainder().iter().chain(&others) {
        record_outcome(db, f).await?;
    }
    Ok(())
}

const SENT_CHUNK: usize = 32;

/// `SENT_CHUNK` sent messages in one UPDATE … FROM (VALUES …), which both
/// databases take (SQLite since 3.33); the casts tell PostgreSQL the types.
fn sent_chunk_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let rows: Vec<String> = (0..SENT_CHUNK)
            .map(|i| {
                let n = 4 * i;
                format!(
                    "(CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS BIGINT))",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4
                )
            })
            .collect();
        format!(
            "WITH done (id, attempt, reply, sent) AS (VALUES {})
             UPDATE outbox SET status = 'sent', sent_at = done.sent, last_reply = done.reply,
                 payload = NULL, lease_until = NULL
             FROM done WHERE outbox.id = done.id AND outbox.attempts = done.attempt
                 AND outbox.status = 'sending'",
            rows.join(", ")
        )
    })
}

/// Every statement is fenced by the claim (`attempts`) and `sending`: a try
/// whose lease ran out and whose message another claim took changes nothing.
/// Returns whether the outcome was recorded.
async fn record_outcome(db: &mut impl Exec, f: &Finished) -> Result<bool> {
    let (id, attempt, now) = (f.id, f.attempt, f.at);
    let changed = match &f.outcome {
        Outcome::Sent { reply } => db.execute(
            "UPDATE outbox SET status = 'sent', sent_at = $1, last_reply = $2, payload = NULL, lease_until = NULL
             WHERE id = $3 AND attempts = $4 AND status = 'sending'",
            args![now, reply, id, attempt],
        )
        .await?,
        Outcome::Retry { error, next_attempt_at } => db.execute(
            "UPDATE outbox SET status = 'queued', last_error = $1, next_attempt_at = $2, lease_until = NULL
             WHERE id = $3 AND attempts = $4 AND status = 'sending'",
            args![error, *next_attempt_at, id, attempt],
        )
        .await?,
        Outcome::Failed { error } => db.execute(
            "UPDATE outbox SET status = 'failed', last_error = $1, failed_at = $2, payload = NULL, lease_until = NULL
             WHERE id = $3 AND attempts = $4 AND status = 'sending'",
            args![error, now, id, attempt],
        )
        .await?,
        Outcome::Unclaimed => db.execute(
            "UPDATE outbox SET status = 'queued', attempts = attempts - 1, next_attempt_at = $1, lease_until = NULL
             WHERE id = $2 AND attempts = $3 AND status = 'sending'",
            args![now, id, attempt],
        )
        .await?,
    };
    Ok(changed > 0)
}

/// Marks the message delivered to the dev mailbox (`dev`, so it never counts
/// as sent by SMTP) and stores it there, only for the claim that holds it.
pub(super) async fn deliver_to_dev_mailbox(
    db: &mut impl Exec,
    id: i64,
    attempt: i64,
    mail: &DevMail,
) -> Result<()> {
    let fenced = db
        .execute(
            "UPDATE outbox SET status = 'sent', sent_at = $1, last_reply = 'dev mailbox', dev = 1,
                 payload = NULL, lease_until = NULL
             WHERE id = $2 AND attempts = $3 AND status = 'sending'",
            args![mail.created_at, id, attempt],
        )
        .await?;
    if fenced > 0 {
        db.execute(
            "INSERT INTO dev_mailbox (recipient, subject, text, code, created_at) VALUES ($1, $2, $3, $4, $5)",
            args![&mail.to, &mail.subject, &mail.text, &mail.code, mail.created_at],
        )
        .await?;
    }
    Ok(())
}

/// Deletes what no rule can need any more: old requests, dead codes and
/// sessions, and finished mail older than `retention_secs`.
pub(super) async fn prune(db: &mut impl Exec, now: i64, retention_secs: i64) -> Result<()> {
    // Requests only matter for the rolling hour and the cooldown (at most a day).
    let deletes: [(&'static str, i64); 7] = [
        ("DELETE FROM code_requests WHERE at < $1", now - 86_400),
        ("DELETE FROM codes WHERE expires_at < $1", now - 3600),
        ("DELETE FROM sessions WHERE expires_at < $1", now),
        (
            "DELETE FROM failures WHERE locked_until IS NOT NULL AND locked_until < $1",
            now,
        ),
        (
            "DELETE FROM outbox WHERE status = 'sent' AND sent_at < $1",
            now - retention_secs,
        ),
        (
            "DELETE FROM outbox WHERE status = 'failed' AND failed_at < $1",
            now - retention_secs,
        ),
        (
            "DELETE FROM dev_mailbox WHERE created_at < $1",
            now - retention_secs,
        ),
    ];
    for (sql, before) in deletes {
        db.execute(sql, args![before]).await?;
    }
    for (sql, age) in super::passwords::PRUNE {
        db.execute(sql, args![now - age]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::exec::{run_now, SyncConn};

    fn outbox_db() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../migrations/sqlite/0001_initial.sql"))
            .unwrap();
        conn.execute_batch(include_str!(
            "../../migrations/sqlite/0002_outbox_due_order.sql"
        ))
        .unwrap();
        conn.execute_batch(include_str!(
            "../../migrations/sqlite/0003_password_guessing.sql"
        ))
        .unwrap();
        for i in 1..=40 {
            conn.execute(
                "INSERT INTO outbox (message_id, recipient, kind, lang, payload, status, attempts, next_attempt_at, expires_at, created_at)
                 VALUES (?1, 'a@example.com', 'register', 'en', '123456', 'sending', 1, 0, 9999, 0)",
                [format!("<{i}@test>")],
            )
            .unwrap();
        }
        conn
    }

    /// id, status, sent_at, last_reply, payload
    type Row = (i64, String, Option<i64>, Option<String>, Option<String>);

    #[test]
    fn outcomes_are_recorded_whole_in_chunks_and_row_by_row() {
        let conn = outbox_db();
        // 39 sent (one chunk of 32 and 7 left over) and one to retry.
        let mut finished: Vec<Finished> = (1..=39)
            .map(|id| Finished {
                id,
                attempt: 1,
                outcome: Outcome::Sent {
                    reply: format!("250 ok {id}"),
                },
                at: 1000 + id,
            })
            .collect();
        finished.push(Finished {
            id: 40,
            attempt: 1,
            outcome: Outcome::Retry {
                error: "451 later".into(),
                next_attempt_at: 5000,
            },
            at: 1040,
        });
        run_now(record_outcomes(&mut SyncConn(&conn), &finished)).unwrap();
        let rows: Vec<Row> = conn
            .prepare("SELECT id, status, sent_at, last_reply, payload FROM outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for (id, status, sent_at, reply, payload) in &rows[..39] {
            assert_eq!(status, "sent", "row {id}");
            assert_eq!(*sent_at, Some(1000 + id));
            assert_eq!(reply.as_deref(), Some(format!("250 ok {id}").as_str()));
            assert_eq!(*payload, None, "the code goes once the mail is final");
        }
        let (_, status, sent_at, _, payload) = &rows[39];
        assert_eq!((status.as_str(), *sent_at), ("queued", None));
        assert_eq!(payload.as_deref(), Some("123456"));
    }

    /// (status, attempts, next_attempt_at, last_error)
    fn state(conn: &rusqlite::Connection, id: i64) -> (String, i64, i64, Option<String>) {
        conn.query_row(
            "SELECT status, attempts, next_attempt_at, last_error FROM outbox WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_late_outcome_of_an_earlier_claim_changes_nothing() {
        let conn = outbox_db();
        // Rows 1..=33 were claimed again (attempt 2) after the first claim's lease ran out.
        conn.execute("UPDATE outbox SET attempts = 2 WHERE id <= 33", [])
            .unwrap();
        let late = |id, outcome| Finished {
            id,
            attempt: 1,
            outcome,
            at: 1000,
        };
        let mut finished: Vec<Finished> = (1..=32)
            .map(|id| {
                late(
                    id,
                    Outcome::Sent {
                        reply: "250".into(),
                    },
                )
            })
            .collect();
        finished.push(late(
            33,
            Outcome::Retry {
                error: "451".into(),
                next_attempt_at: 5000,
            },
        ));
        run_now(record_outcomes(&mut SyncConn(&conn), &finished)).unwrap();
        for kind in [
            Outcome::Failed {
                error: "550".into(),
            },
            Outcome::Unclaimed,
        ] {
            run_now(record_outcomes(&mut SyncConn(&conn), &[late(33, kind)])).unwrap();
        }
        for id in 1..=33 {
            assert_eq!(state(&conn, id), ("sending".into(), 2, 0, None), "row {id}");
        }
        // The claim that holds the message records its outcome.
        let current = Finished {
            attempt: 2,
            ..late(33, Outcome::Unclaimed)
        };
        run_now(record_outcomes(&mut SyncConn(&conn), &[current])).unwrap();
        assert_eq!(state(&conn, 33), ("queued".into(), 1, 1000, None));
        // The dev mailbox is fenced the same way.
        let mail = DevMail {
            to: "a@example.com".into(),
            subject: "s".into(),
            text: "t".into(),
            code: Some("123456".into()),
            created_at: 1000,
        };
        run_now(deliver_to_dev_mailbox(&mut SyncConn(&conn), 1, 1, &mail)).unwrap();
        assert_eq!(state(&conn, 1).0, "sending");
        run_now(deliver_to_dev_mailbox(&mut SyncConn(&conn), 1, 2, &mail)).unwrap();
        assert_eq!(state(&conn, 1).0, "sent");
        let stored: i64 = conn
            .query_row("SELECT COUNT(*) FROM dev_mailbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 1, "only the holding claim's copy lands");
    }
}
