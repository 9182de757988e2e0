//! The writes of codes, accounts and sessions (the outbox's are in
//! `outbox.rs`, passwords' in `passwords.rs`), written once over [`Exec`]. Each flow runs
//! inside one transaction the backend opened for it: on PostgreSQL behind
//! advisory locks on the keys it decides, on SQLite inside the writer
//! thread's batch (one writer at a time, so the reads here see a stable state).

use super::exec::{args, Exec};
use super::outbox::{insert_message, insert_webhook};
use super::*;
use crate::webhooks::UserEvent;

/// The address's failure record, if any: its lock's end, 0 when not locked.
const FAILURES: &str = "SELECT COALESCE(locked_until, 0) FROM failures WHERE email = $1";
const LAST_REQUEST: &str = "SELECT MAX(at) FROM code_requests WHERE mailbox = $1 AND purpose = $2";
/// The `limit`-th newest request in the window, if there are that many.
const WINDOW_MAILBOX: &str = "SELECT at FROM code_requests WHERE mailbox = $1 AND purpose = $2
     AND at > $3 ORDER BY at DESC LIMIT 1 OFFSET $4";
const WINDOW_IP: &str =
    "SELECT at FROM code_requests WHERE ip = $1 AND at > $2 ORDER BY at DESC LIMIT 1 OFFSET $3";
const WINDOW_NETWORK: &str =
    "SELECT at FROM code_requests WHERE network = $1 AND at > $2 ORDER BY at DESC LIMIT 1 OFFSET $3";
/// Accepted requests in the hour, counted up to `$2` at most.
const RECENT_ALL: &str =
    "SELECT COUNT(*) FROM (SELECT 1 FROM code_requests WHERE at > $1 LIMIT $2) AS recent";
const WINDOW_ALL: &str =
    "SELECT at FROM code_requests WHERE at > $1 ORDER BY at DESC LIMIT 1 OFFSET $2";

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

/// Which requests of the last hour a limit counts.
enum Window<'a> {
    Mailbox(&'a str, &'a str),
    Ip(&'a str),
    Network(&'a str),
    All,
}

/// Seconds until the `limit`-th newest request in the window leaves it, if
/// the window is full.
async fn window_full(
    db: &mut impl Exec,
    window: Window<'_>,
    limit: i64,
    now: i64,
) -> Result<Option<i64>> {
    if limit <= 0 {
        return Ok(None);
    }
    let (since, offset) = (now - 3600, limit - 1);
    let at = match window {
        Window::Mailbox(mailbox, purpose) => {
            db.int(WINDOW_MAILBOX, args![mailbox, purpose, since, offset])
                .await?
        }
        Window::Ip(ip) => db.int(WINDOW_IP, args![ip, since, offset]).await?,
        Window::Network(net) => db.int(WINDOW_NETWORK, args![net, since, offset]).await?,
        Window::All => db.int(WINDOW_ALL, args![since, offset]).await?,
    };
    Ok(at.map(|at| at + 3600 - now))
}

pub(super) async fn request_code(
    db: &mut impl Exec,
    req: &CodeRequest,
) -> Result<CodeRequestOutcome> {
    let (email, mailbox) = (req.email.as_str(), req.mailbox.as_str());
    let purpose = req.purpose.as_str();
    if let Failures::Locked { retry_after } = failures(db, email, req.now).await? {
        return Ok(CodeRequestOutcome::Locked { retry_after });
    }
    // The global count, read once: the cap, its crossing and `auto`'s half
    // all follow from it (up to the cap, which is all any of them needs).
    let cap = req.limits.global_per_hour;
    let recent = match cap > 0 {
        true => db
            .int(RECENT_ALL, args![req.now - 3600, cap])
            .await?
            .unwrap_or(0),
        false => 0,
    };
    if !req.solved && challenge_required(db, req, recent).await? {
        return Ok(CodeRequestOutcome::ChallengeRequired);
    }
    let mut waits = Vec::new();
    if req.limits.cooldown_secs > 0 {
        let last = db.int(LAST_REQUEST, args![mailbox, purpose]).await?;
        waits.extend(
            last.map(|at| at + req.limits.cooldown_secs - req.now)
                .filter(|w| *w > 0),
        );
    }
    let limits = &req.limits;
    let mailbox_window = Window::Mailbox(mailbox, purpose);
    waits.extend(window_full(db, mailbox_window, limits.per_email_per_hour, req.now).await?);
    waits.extend(window_full(db, Window::Ip(&req.ip_key), limits.per_ip_per_hour, req.now).await?);
    if cap > 0 && recent >= cap {
        // Full: the wait is until the oldest counted request leaves the hour.
        waits.extend(window_full(db, Window::All, cap, req.now).await?);
    }
    if let Some(retry_after) = waits.into_iter().max() {
        return Ok(CodeRequestOutcome::RateLimited { retry_after });
    }
    db.execute(
        "INSERT INTO code_requests (mailbox, purpose, ip, network, at) VALUES ($1, $2, $3, $4, $5)",
        args![mailbox, purpose, &req.ip_key, &req.network, req.now],
    )
    .await?;
    write_code_and_mail(db, req).await?;
    // Full now, and was not before this request: the one crossing.
    Ok(CodeRequestOutcome::Accepted {
        filled_cap: cap > 0 && recent + 1 == cap,
    })
}

/// Whether this request must carry a solved challenge: always, or in `auto`
/// once its network has had its allowance this hour or while the global count
/// is over half its cap.
async fn challenge_required(db: &mut impl Exec, req: &CodeRequest, recent: i64) -> Result<bool> {
    let after = match req.challenge {
        ChallengeRule::Never => return Ok(false),
        ChallengeRule::Always => return Ok(true),
        ChallengeRule::Auto { after } => after,
    };
    let (now, cap) = (req.now, req.limits.global_per_hour);
    if after == 0
        || window_full(db, Window::Network(&req.network), after, now)
            .await?
            .is_some()
    {
        return Ok(true);
    }
    Ok(cap > 0 && recent > cap / 2)
}

/// The code and its mail where the code can be used; elsewhere the hash of
/// no code and a notice.
async fn write_code_and_mail(db: &mut impl Exec, req: &CodeRequest) -> Result<()> {
    let email = req.email.as_str();
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
        args![email, req.purpose.as_str(), &code_hash[..], req.code_expires_at],
    )
    .await?;
    insert_message(db, mail, req.now).await?;
    Ok(())
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
) -> Result<(CodeCheck, Option<LiveSession>)> {
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
    let Some(user) = user else {
        return Ok((check, None));
    };
    let session_id = super::sessions::create(db, user.id, session).await?;
    super::passwords::clear(db, guess.email.as_str()).await?;
    Ok((check, Some(LiveSession { session_id, user })))
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
    hooks: &Webhooks,
) -> Result<Option<User>> {
    let user = db
        .user(
            "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (email) DO NOTHING
             RETURNING id, email, password_hash, created_at",
            args![email, password_hash, now],
        )
        .await?;
    if let Some(user) = &user {
        // Wrong passwords tried before the account existed lock out nobody.
        super::passwords::clear(db, email).await?;
        user_event(db, hooks, UserEvent::Created, user.id, email, now).await?;
    }
    Ok(user)
}

/// Queues the webhook event that reports a change to a user, in the
/// transaction that makes the change: it commits with the change or not at
/// all, and the request never waits for the receiver. Every write flow that
/// creates, deletes or changes the email or password of a user calls it
/// (changing the address or deleting an account: `UserEvent::EmailChanged`
/// with the new address, `UserEvent::Deleted` with the last one). Nothing is
/// queued when webhooks are off.
pub(super) async fn user_event(
    db: &mut impl Exec,
    hooks: &Webhooks,
    kind: UserEvent,
    user_id: i64,
    email: &str,
    now: i64,
) -> Result<()> {
    match hooks.user_event(kind, user_id, email, now) {
        Some(event) => insert_webhook(db, &event, now).await,
        None => Ok(()),
    }
}

/// The new password, every older session ended, the notice and the event
/// queued and the new session opened; the new session's id.
pub(super) async fn reset_password(
    db: &mut impl Exec,
    user_id: i64,
    password_hash: &str,
    notice: &NewMessage,
    session: &NewSession,
    now: i64,
    hooks: &Webhooks,
) -> Result<i64> {
    db.execute(
        "UPDATE users SET password_hash = $1 WHERE id = $2",
        args![password_hash, user_id],
    )
    .await?;
    db.execute("DELETE FROM sessions WHERE user_id = $1", args![user_id])
        .await?;
    super::passwords::clear(db, notice.to.as_str()).await?;
    insert_message(db, notice, now).await?;
    let email = notice.to.as_str();
    user_event(db, hooks, UserEvent::PasswordChanged, user_id, email, now).await?;
    super::sessions::create(db, user_id, session).await
}

/// Deletes what no rule can need any more: old requests, dead codes and
/// sessions, and finished mail older than `retention_secs`.
pub(super) async fn prune(db: &mut impl Exec, now: i64, retention_secs: i64) -> Result<()> {
    // Requests only matter for the rolling hour and the cooldown (at most a day).
    let deletes: [(&'static str, i64); 9] = [
        ("DELETE FROM code_requests WHERE at < $1", now - 86_400),
        ("DELETE FROM challenges WHERE expires_at < $1", now),
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
        // Webhook events left queued since webhooks were turned off: no
        // worker claims them to fail them once they expire.
        (
            "DELETE FROM outbox WHERE channel = 'webhook' AND status = 'queued' AND expires_at < $1",
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
    for (sql, age) in super::passwords::PRUNE
        .into_iter()
        .chain(super::jwt_keys::PRUNE)
    {
        db.execute(sql, args![now - age]).await?;
    }
    Ok(())
}
