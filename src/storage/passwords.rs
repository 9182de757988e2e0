//! Password guessing, written once over [`Exec`]: consecutive wrong
//! passwords per canonical address (known or not, so the lock is no oracle)
//! with doubling locks, and failed logins per client network in a rolling hour.

use super::exec::{args, Exec};
use super::*;

/// The longest a password lock lasts, however often it doubled.
const MAX_LOCK_SECS: i64 = 24 * 3600;

/// The limits a password login is held to; zero disables one.
#[derive(Debug, Clone, Copy)]
pub struct PasswordLimits {
    pub max_failures: i64,
    pub lock_secs: i64,
    pub ip_per_hour: i64,
}

/// One password login about to be checked.
pub struct PasswordTry {
    pub email: EmailAddress,
    pub ip_key: String,
    pub now: i64,
    pub limits: PasswordLimits,
}

/// Whether the password may be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordGate {
    Open,
    /// The client network has failed `RATE_LOGIN_IP_PER_HOUR` times this hour.
    RateLimited {
        retry_after: i64,
    },
    /// The address is locked by `PASSWORD_MAX_FAILURES`.
    Locked {
        retry_after: i64,
    },
}

/// The `limit`-th newest failure of the network in the window, if there are that many.
const WINDOW_LOGIN_IP: &str =
    "SELECT at FROM login_failures WHERE ip = $1 AND at > $2 ORDER BY at DESC LIMIT 1 OFFSET $3";

pub(super) async fn begin_try(db: &mut impl Exec, t: &PasswordTry) -> Result<PasswordGate> {
    let (email, now, limits) = (t.email.as_str(), t.now, t.limits);
    if limits.ip_per_hour > 0 {
        let nth = db
            .int(
                WINDOW_LOGIN_IP,
                args![&t.ip_key, now - 3600, limits.ip_per_hour - 1],
            )
            .await?;
        if let Some(at) = nth {
            return Ok(PasswordGate::RateLimited {
                retry_after: at + 3600 - now,
            });
        }
    }
    if limits.max_failures <= 0 {
        return Ok(PasswordGate::Open);
    }
    let until = db
        .int(
            "SELECT COALESCE(locked_until, 0) FROM password_failures WHERE email = $1",
            args![email],
        )
        .await?;
    if let Some(until) = until.filter(|u| *u > now) {
        return Ok(PasswordGate::Locked {
            retry_after: until - now,
        });
    }
    // A lock that has run out starts a fresh count but is remembered in
    // `locks`, so the next one lasts twice as long.
    let count = db
        .int(
            "INSERT INTO password_failures (email, count, locks, locked_until, last_at) VALUES ($1, 1, 0, NULL, $2)
             ON CONFLICT (email) DO UPDATE SET
                 count = CASE WHEN password_failures.locked_until IS NULL THEN password_failures.count + 1 ELSE 1 END,
                 locked_until = NULL, last_at = excluded.last_at
             RETURNING count",
            args![email, now],
        )
        .await?
        .unwrap_or(1);
    if count >= limits.max_failures {
        lock(db, email, now, limits.lock_secs).await?;
    }
    Ok(PasswordGate::Open)
}

/// Locks the address for `lock_secs` doubled once per earlier lock, at most a day.
async fn lock(db: &mut impl Exec, email: &str, now: i64, lock_secs: i64) -> Result<()> {
    let locks = db
        .int(
            "SELECT locks FROM password_failures WHERE email = $1",
            args![email],
        )
        .await?
        .unwrap_or(0);
    let secs = lock_secs
        .saturating_mul(1_i64 << locks.clamp(0, 20))
        .min(MAX_LOCK_SECS);
    db.execute(
        "UPDATE password_failures SET count = 0, locks = locks + 1, locked_until = $1 WHERE email = $2",
        args![now + secs, email],
    )
    .await?;
    Ok(())
}

/// A right password: the address starts over, for passwords and for codes.
pub(super) async fn succeeded(db: &mut impl Exec, email: &str) -> Result<()> {
    clear(db, email).await?;
    super::writes::clear_failures(db, email).await
}

/// Forgets the address's wrong passwords and locks (a sign-in by code or a
/// reset proves the owner).
pub(super) async fn clear(db: &mut impl Exec, email: &str) -> Result<()> {
    db.execute(
        "DELETE FROM password_failures WHERE email = $1",
        args![email],
    )
    .await?;
    Ok(())
}

pub(super) async fn failed(db: &mut impl Exec, ip_key: &str, now: i64) -> Result<()> {
    db.execute(
        "INSERT INTO login_failures (ip, at) VALUES ($1, $2)",
        args![ip_key, now],
    )
    .await?;
    Ok(())
}

/// What the prune job deletes: failures outside the rolling hour, and
/// addresses unlocked and quiet for a day (their doubling is forgotten).
pub(super) const PRUNE: [(&str, i64); 2] = [
    ("DELETE FROM login_failures WHERE at < $1", 3600),
    (
        "DELETE FROM password_failures WHERE last_at < $1 AND (locked_until IS NULL OR locked_until < $1)",
        MAX_LOCK_SECS,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::exec::{run_now, SyncConn};

    fn db() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for sql in [
            include_str!("../../migrations/sqlite/0001_initial.sql"),
            include_str!("../../migrations/sqlite/0002_outbox_due_order.sql"),
            include_str!("../../migrations/sqlite/0003_password_guessing.sql"),
        ] {
            conn.execute_batch(sql).unwrap();
        }
        conn
    }

    fn attempt(now: i64) -> PasswordTry {
        PasswordTry {
            email: EmailAddress::parse("a@example.com").unwrap(),
            ip_key: "192.0.2.1".into(),
            now,
            limits: PasswordLimits {
                max_failures: 3,
                lock_secs: 10,
                ip_per_hour: 0,
            },
        }
    }

    #[test]
    fn the_limit_locks_and_each_lock_lasts_twice_the_one_before() {
        let mut conn = db();
        let mut go = |now| run_now(begin_try(&mut SyncConn(&mut conn), &attempt(now))).unwrap();
        for _ in 0..3 {
            assert_eq!(go(100), PasswordGate::Open);
        }
        assert_eq!(go(100), PasswordGate::Locked { retry_after: 10 });
        for _ in 0..3 {
            assert_eq!(go(110), PasswordGate::Open, "the lock ran out");
        }
        assert_eq!(go(111), PasswordGate::Locked { retry_after: 19 });
        for _ in 0..3 {
            assert_eq!(go(130), PasswordGate::Open);
        }
        assert_eq!(go(130), PasswordGate::Locked { retry_after: 40 });
    }
}
