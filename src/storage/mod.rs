//! The only place with SQL. `Storage` is the interface the rest of authmail
//! sees; each backend module holds that backend's queries. Every operation that
//! must be atomic (limits, attempts, single use, outbox claims) is atomic here.

mod exec;
mod passwords;
mod postgres;
mod queries;
mod sqlite;
mod writer;
mod writes;

use std::time::Duration;

use crate::domain::{EmailAddress, Lang, Purpose};

pub use passwords::{PasswordGate, PasswordLimits, PasswordTry};
pub use writes::{Finished, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached or is too busy: the API answers 503.
    #[error("database unavailable: {0}")]
    Unavailable(BoxError),
    #[error("database error: {0}")]
    Other(BoxError),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl StorageError {
    /// The same failure again, for each request of a batch that failed as one.
    fn shared(&self) -> Self {
        match self {
            Self::Unavailable(e) => Self::Unavailable(e.to_string().into()),
            Self::Other(e) => Self::Other(e.to_string().into()),
        }
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::WorkerCrashed => {
                Self::Unavailable(Box::new(e))
            }
            E::Database(d)
                if d.code()
                    .is_some_and(|c| is_transient_code(&c) || is_pg_unavailable(&c)) =>
            {
                Self::Unavailable(Box::new(e))
            }
            _ => Self::Other(Box::new(e)),
        }
    }
}

/// SQLite's BUSY, LOCKED, IOERR, FULL and CANTOPEN (primary codes, any extended
/// variant): faults of the storage, not of the request, that clear without a restart.
fn is_transient_code(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14))
}

/// PostgreSQL SQLSTATEs of a server that is down, restarting, overloaded or
/// too slow: connection exceptions (08), insufficient resources (53),
/// operator intervention (57: shutdown, statement timeout) and lock timeouts.
fn is_pg_unavailable(code: &str) -> bool {
    code.len() == 5
        && (code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57")
            || code == "55P03")
}

/// Pool size and the longest wait for a connection, a lock or a statement.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub timeout: Duration,
}

async fn run_migrations<'a, A>(migrator: &sqlx::migrate::Migrator, pool: A) -> Result<()>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    migrator.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => StorageError::from(e),
        other => StorageError::Other(Box::new(other)),
    })
}

pub type Result<T> = std::result::Result<T, StorageError>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
}

/// What kind of mail an outbox row is; decides template and retry horizon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    Code(Purpose),
    /// The answer to a register request for an address that has an account:
    /// sign in or reset the password. No code.
    AccountExists,
    /// The answer to a login or reset request for an address without an
    /// account: register. No code.
    NoAccount,
    PasswordChanged,
    Test,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code(p) => p.as_str(),
            Self::AccountExists => "account_exists",
            Self::NoAccount => "no_account",
            Self::PasswordChanged => "password_changed",
            Self::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "account_exists" => Some(Self::AccountExists),
            "no_account" => Some(Self::NoAccount),
            "password_changed" => Some(Self::PasswordChanged),
            "test" => Some(Self::Test),
            other => Purpose::parse(other).map(Self::Code),
        }
    }
}

/// A message to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub message_id: String,
    pub to: EmailAddress,
    pub kind: MailKind,
    pub lang: Lang,
    /// Template data (the code); cleared once the message is final.
    pub payload: Option<String>,
    /// A code mail stops trying when its code expires; other mail after 24 hours.
    pub expires_at: i64,
}

/// A claimed outbox message, ready to render and send.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: i64,
    pub message_id: String,
    pub recipient: String,
    pub kind: String,
    pub lang: String,
    pub payload: Option<String>,
    /// Tries so far, this one included.
    pub attempts: i64,
    pub expires_at: i64,
    pub last_error: Option<String>,
}

/// An outbox row as the admin API and the `outbox` command show it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxEntry {
    pub id: i64,
    pub recipient: String,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxStats {
    pub sent: i64,
    pub failed: i64,
    pub queued: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DevMail {
    #[sqlx(rename = "recipient")]
    pub to: String,
    pub subject: String,
    pub text: String,
    /// The code the mail carried; `None` for a notice or other mail.
    pub code: Option<String>,
    pub created_at: i64,
}

/// The limits a send-code request is held to; zero disables one.
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    pub cooldown_secs: i64,
    pub per_email_per_hour: i64,
    pub per_ip_per_hour: i64,
}

/// One send-code request, decided and recorded in one transaction.
pub struct CodeRequest {
    pub email: EmailAddress,
    pub purpose: Purpose,
    pub ip_key: String,
    pub now: i64,
    pub limits: SendLimits,
    pub code_hash: [u8; 32],
    /// Stored instead of `code_hash` where the code could not be used: the
    /// hash of no code at all, so every guess against it is wrong.
    pub phantom_hash: [u8; 32],
    pub code_expires_at: i64,
    /// The code mail, sent where the code can be used.
    pub mail: NewMessage,
    /// The notice without a code, sent everywhere else.
    pub notice: NewMessage,
}

impl CodeRequest {
    /// What PostgreSQL locks for this request: the address, and the client's
    /// IP only when its limit is on. Otherwise every request from one IP (an
    /// app server calling the API, say) would queue behind one lock for nothing.
    fn lock_keys(&self) -> Vec<&str> {
        let mut keys = vec![self.email.as_str()];
        if self.limits.per_ip_per_hour > 0 {
            keys.push(&self.ip_key);
        }
        keys
    }
}

/// One submitted code, to be counted and compared in one transaction.
pub struct CodeGuess {
    pub email: EmailAddress,
    pub purpose: Purpose,
    pub now: i64,
    pub limits: GuessLimits,
    /// The submitted code's hash (`Keys::code_hash`).
    pub hash: [u8; 32],
    /// Where no live code exists, a row with this hash (of no code) and
    /// lifetime takes its place, so the guess is counted like any other.
    pub phantom_hash: [u8; 32],
    pub phantom_expires_at: i64,
}

impl CodeGuess {
    /// In constant time: a guess must not learn how much of a hash it matched.
    fn matches(&self, stored: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.hash.ct_eq(stored).into()
    }
}

/// A session to open, keyed by its token's hash.
pub struct NewSession {
    pub token_hash: [u8; 32],
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRequestOutcome {
    /// Accepted: a code or a notice was written to the outbox.
    Accepted,
    RateLimited {
        retry_after: i64,
    },
    Locked {
        retry_after: i64,
    },
}

/// How a submitted code fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Valid,
    /// Wrong, expired, used, voided or never sent: one answer for all.
    Invalid,
    /// The live code (or the stand-in for a missing one) has had
    /// `CODE_MAX_ATTEMPTS` guesses.
    Exhausted,
    Locked {
        retry_after: i64,
    },
}

/// The limits a code guess is held to.
#[derive(Debug, Clone, Copy)]
pub struct GuessLimits {
    pub max_attempts: i64,
    pub max_failures: i64,
    pub lock_secs: i64,
}

#[derive(Clone)]
pub struct Storage {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    /// Reads go to the pool; every write goes through the one writer thread.
    Sqlite {
        pool: sqlx::SqlitePool,
        writer: writer::Writer,
    },
    Postgres(sqlx::PgPool),
}

/// Dispatches a read to the backend module that owns the query.
macro_rules! dispatch {
    ($self:ident, $fn:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite { pool, .. } => sqlite::$fn(pool, $($arg),*).await,
            Backend::Postgres(pool) => postgres::$fn(pool, $($arg),*).await,
        }
    };
}

/// Runs a flow of `writes` in one transaction: on SQLite in the writer's next
/// batch (the flow owns what it uses, since it runs on the writer's thread),
/// on PostgreSQL behind advisory locks on `keys`.
macro_rules! write_tx {
    ($self:ident, keys $keys:expr, |$db:ident| $flow:expr) => {
        match &$self.backend {
            Backend::Sqlite { writer, .. } => writer.run(move |$db| exec::run_now($flow)).await,
            Backend::Postgres(pool) => {
                let mut tx = postgres::begin_locked(pool, $keys).await?;
                let $db = &mut tx;
                let out = $flow.await?;
                tx.commit().await?;
                Ok(out)
            }
        }
    };
}

impl Storage {
    /// Connects to `sqlite://…` or `postgres://…` (the URL was checked with the settings).
    pub async fn open(url: &str, pool: &PoolSettings) -> Result<Self> {
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres(postgres::connect(url, pool).await?)
        } else {
            let (pool, writer) = sqlite::connect(url, pool).await?;
            Backend::Sqlite { pool, writer }
        };
        Ok(Self { backend })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    pub async fn migrate(&self) -> Result<()> {
        dispatch!(self, migrate())
    }

    pub async fn ping(&self, timeout: Duration) -> bool {
        let ping = async { dispatch!(self, ping()) };
        matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(())))
    }

    /// The stored secret key, storing `candidate` first if none exists yet.
    pub async fn secret_key(&self, candidate: &str) -> Result<String> {
        dispatch!(self, secret_key(candidate))
    }

    pub async fn request_code(&self, req: CodeRequest) -> Result<CodeRequestOutcome> {
        write_tx!(self, keys & req.lock_keys(), |db| writes::request_code(
            db, &req
        ))
    }

    /// Counts the guess, then compares it with the stored hash; a match
    /// consumes the code. All in one transaction, so one right code wins once.
    pub async fn check_code(&self, guess: CodeGuess) -> Result<CodeCheck> {
        write_tx!(
            self,
            keys & [guess.email.as_str()],
            |db| writes::check_code(db, &guess)
        )
    }

    /// `check_code` for a login code and, when it is right, the account and a
    /// new session for it, in the same transaction.
    pub async fn login_with_code(
        &self,
        guess: CodeGuess,
        session: NewSession,
    ) -> Result<(CodeCheck, Option<User>)> {
        write_tx!(self, keys & [guess.email.as_str()], |db| {
            writes::login_with_code(db, &guess, &session)
        })
    }

    pub async fn clear_failures(&self, email: &EmailAddress) -> Result<()> {
        let email = email.clone();
        write_tx!(self, keys & [], |db| writes::clear_failures(
            db,
            email.as_str()
        ))
    }

    /// Decides whether a password may be checked now and, if so, counts it
    /// as a failure until `password_login_succeeded` says otherwise: counted
    /// before the hash, so parallel guesses cannot pass the limit.
    pub async fn begin_password_try(&self, attempt: PasswordTry) -> Result<PasswordGate> {
        write_tx!(self, keys & [attempt.email.as_str()], |db| {
            passwords::begin_try(db, &attempt)
        })
    }

    /// A right password: its address's password and code failures are forgotten.
    pub async fn password_login_succeeded(&self, email: &EmailAddress) -> Result<()> {
        let email = email.clone();
        write_tx!(self, keys & [email.as_str()], |db| passwords::succeeded(
            db,
            email.as_str()
        ))
    }

    /// A wrong password (or an unknown address), for the per-IP limit.
    pub async fn password_login_failed(&self, ip_key: &str, now: i64) -> Result<()> {
        let ip_key = ip_key.to_string();
        write_tx!(self, keys & [], |db| passwords::failed(db, &ip_key, now))
    }

    /// `None` when the address is taken.
    pub async fn create_user(
        &self,
        email: &EmailAddress,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<User>> {
        let (email, hash) = (email.clone(), password_hash.to_string());
        write_tx!(self, keys & [], |db| writes::create_user(
            db,
            email.as_str(),
            &hash,
            now
        ))
    }

    pub async fn find_user(&self, email: &EmailAddress) -> Result<Option<User>> {
        dispatch!(self, find_user(email))
    }

    /// Sets the password, ends every session and queues the notice, atomically.
    pub async fn reset_password(
        &self,
        user_id: i64,
        password_hash: &str,
        notice: NewMessage,
        now: i64,
    ) -> Result<()> {
        let hash = password_hash.to_string();
        write_tx!(self, keys & [], |db| writes::reset_password(
            db, user_id, &hash, &notice, now
        ))
    }

    pub async fn create_session(&self, user_id: i64, session: NewSession) -> Result<()> {
        write_tx!(self, keys & [], |db| writes::create_session(
            db, user_id, &session
        ))
    }

    pub async fn session_user(&self, token_hash: &[u8], now: i64) -> Result<Option<User>> {
        dispatch!(self, session_user(token_hash, now))
    }

    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<bool> {
        let token_hash = token_hash.to_vec();
        write_tx!(self, keys & [], |db| writes::delete_session(
            db,
            &token_hash
        ))
    }

    pub async fn enqueue(&self, msg: NewMessage, now: i64) -> Result<i64> {
        write_tx!(self, keys & [], |db| writes::insert_message(db, &msg, now))
    }

    /// Claims up to `limit` due messages (queued and due, or sending with an
    /// expired lease) until `lease_until`.
    pub async fn claim_due_messages(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let claim = match self.backend {
            Backend::Sqlite { .. } => sqlite::CLAIM_DUE,
            Backend::Postgres(_) => postgres::CLAIM_DUE,
        };
        write_tx!(self, keys & [], |db| writes::claim_due_messages(
            db,
            claim,
            now,
            lease_until,
            limit
        ))
    }

    /// Records how delivery tries ended, all in one transaction.
    pub async fn record_outcomes(&self, finished: Vec<Finished>) -> Result<()> {
        write_tx!(self, keys & [], |db| writes::record_outcomes(db, &finished))
    }

    /// When the next queued message falls due (or a lease runs out).
    pub async fn next_due_at(&self) -> Result<Option<i64>> {
        dispatch!(self, next_due_at())
    }

    pub async fn list_outbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<OutboxEntry>> {
        dispatch!(self, list_outbox(status, limit))
    }

    pub async fn outbox_stats(&self, since: i64) -> Result<OutboxStats> {
        dispatch!(self, outbox_stats(since))
    }

    /// Stores a message in the dev mailbox, for the claim (`attempt`) that holds it.
    pub async fn deliver_to_dev_mailbox(&self, id: i64, attempt: i64, mail: DevMail) -> Result<()> {
        write_tx!(self, keys & [], |db| writes::deliver_to_dev_mailbox(
            db, id, attempt, &mail
        ))
    }

    pub async fn dev_mailbox(&self, limit: i64) -> Result<Vec<DevMail>> {
        dispatch!(self, dev_mailbox(limit))
    }

    /// Deletes what no rule can need any more: old requests, dead codes and
    /// sessions, finished mail older than `retention_secs`.
    pub async fn prune(&self, now: i64, retention_secs: i64) -> Result<()> {
        write_tx!(self, keys & [], |db| writes::prune(db, now, retention_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guess_matches_only_its_whole_hash() {
        let guess = CodeGuess {
            email: EmailAddress::parse("a@example.com").unwrap(),
            purpose: Purpose::Login,
            now: 0,
            limits: GuessLimits {
                max_attempts: 5,
                max_failures: 0,
                lock_secs: 0,
            },
            hash: [7; 32],
            phantom_hash: [0; 32],
            phantom_expires_at: 0,
        };
        assert!(guess.matches(&[7; 32]));
        assert!(!guess.matches(&[7; 31]), "a prefix is not a match");
        assert!(!guess.matches(&[[7; 32].as_slice(), &[0]].concat()));
        let mut other = [7; 32];
        other[31] = 8;
        assert!(!guess.matches(&other));
    }
}
