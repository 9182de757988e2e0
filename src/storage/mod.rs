//! The only place with SQL. `Storage` is the interface the rest of authmail
//! sees; each backend module holds that backend's queries. Every operation that
//! must be atomic (limits, attempts, single use, outbox claims) is atomic here.

mod challenges;
mod code_records;
mod exec;
mod jwt_keys;
mod outbox;
mod passwords;
mod postgres;
mod queries;
mod records;
mod sessions;
mod sqlite;
mod writer;
mod writes;

use std::time::Duration;

use crate::domain::EmailAddress;
use crate::webhooks::Webhooks;
use exec::Db;

pub use challenges::NewChallenge;
pub use code_records::{
    ChallengeRule, CodeCheck, CodeGuess, CodeRequest, CodeRequestOutcome, GuessLimits, SendLimits,
};
pub use outbox::{Finished, Outcome};
pub use passwords::{PasswordGate, PasswordLimits, PasswordTry};
pub use records::{
    Channel, Claimed, DevMail, LiveSession, MailKind, NewMessage, NewSession, NewWebhook,
    OutboxEntry, OutboxMessage, OutboxStats, PublishedJwtKey, StoredJwtKey, User, WebhookMessage,
};

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

    /// Runs a write flow (`writes.rs`, `passwords.rs`) in one transaction: on
    /// SQLite in the writer's next batch (the flow owns what it uses, since it
    /// runs on the writer's thread), on PostgreSQL behind advisory locks on `keys`.
    async fn write<T, F>(&self, keys: &[String], flow: F) -> Result<T>
    where
        T: Send + 'static,
        F: AsyncFnOnce(&mut Db<'_>) -> Result<T> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite { writer, .. } => writer.run(flow).await,
            Backend::Postgres(pool) => postgres::write(pool, keys, flow).await,
        }
    }

    pub async fn migrate(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::migrate(pool).await,
            Backend::Postgres(pool) => postgres::migrate(pool).await,
        }
    }

    pub async fn ping(&self, timeout: Duration) -> bool {
        let ping = async {
            match &self.backend {
                Backend::Sqlite { pool, .. } => sqlite::ping(pool).await,
                Backend::Postgres(pool) => postgres::ping(pool).await,
            }
        };
        matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(())))
    }

    /// The stored secret key, storing `candidate` first if none exists yet.
    pub async fn secret_key(&self, candidate: &str) -> Result<String> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::secret_key(pool, candidate).await,
            Backend::Postgres(pool) => postgres::secret_key(pool, candidate).await,
        }
    }

    pub async fn request_code(&self, req: CodeRequest) -> Result<CodeRequestOutcome> {
        let keys = req.lock_keys();
        self.write(&keys, async move |db| writes::request_code(db, &req).await)
            .await
    }

    /// Counts the guess, then compares it with the stored hash; a match
    /// consumes the code. All in one transaction, so one right code wins once.
    pub async fn check_code(&self, guess: CodeGuess) -> Result<CodeCheck> {
        let keys = [guess.email.to_string()];
        self.write(&keys, async move |db| writes::check_code(db, &guess).await)
            .await
    }

    /// `check_code` for a login code and, when it is right, the account and a
    /// new session for it, in the same transaction.
    pub async fn login_with_code(
        &self,
        guess: CodeGuess,
        session: NewSession,
    ) -> Result<(CodeCheck, Option<LiveSession>)> {
        let keys = [guess.email.to_string()];
        self.write(&keys, async move |db| {
            writes::login_with_code(db, &guess, &session).await
        })
        .await
    }

    pub async fn clear_failures(&self, email: &EmailAddress) -> Result<()> {
        let email = email.clone();
        self.write(&[], async move |db| {
            writes::clear_failures(db, email.as_str()).await
        })
        .await
    }

    /// Decides whether a password may be checked now and, if so, counts it
    /// as a failure until `password_login_succeeded` says otherwise: counted
    /// before the hash, so parallel guesses cannot pass the limit.
    pub async fn begin_password_try(&self, attempt: PasswordTry) -> Result<PasswordGate> {
        let keys = [attempt.email.to_string()];
        self.write(&keys, async move |db| {
            passwords::begin_try(db, &attempt).await
        })
        .await
    }

    /// A right password: its address's password and code failures are forgotten.
    pub async fn password_login_succeeded(&self, email: &EmailAddress) -> Result<()> {
        let email = email.clone();
        let keys = [email.to_string()];
        self.write(&keys, async move |db| {
            passwords::succeeded(db, email.as_str()).await
        })
        .await
    }

    /// A wrong password (or an unknown address), for the per-IP limit.
    pub async fn password_login_failed(&self, ip_key: &str, now: i64) -> Result<()> {
        let ip_key = ip_key.to_string();
        self.write(&[], async move |db| {
            passwords::failed(db, &ip_key, now).await
        })
        .await
    }

    /// `None` when the address is taken. `user.created` is queued for the
    /// webhook in the same transaction.
    pub async fn create_user(
        &self,
        email: &EmailAddress,
        password_hash: &str,
        now: i64,
        hooks: &Webhooks,
    ) -> Result<Option<User>> {
        let (email, hash, hooks) = (email.clone(), password_hash.to_string(), hooks.clone());
        self.write(&[], async move |db| {
            writes::create_user(db, email.as_str(), &hash, now, &hooks).await
        })
        .await
    }

    pub async fn find_user(&self, email: &EmailAddress) -> Result<Option<User>> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::find_user(pool, email).await,
            Backend::Postgres(pool) => postgres::find_user(pool, email).await,
        }
    }

    /// Sets the password, ends every session, queues the notice and
    /// `user.password_changed`, and opens `session` in their place,
    /// atomically; the new session's id.
    pub async fn reset_password(
        &self,
        user_id: i64,
        password_hash: &str,
        notice: NewMessage,
        session: NewSession,
        now: i64,
        hooks: &Webhooks,
    ) -> Result<i64> {
        let (hash, hooks) = (password_hash.to_string(), hooks.clone());
        self.write(&[], async move |db| {
            writes::reset_password(db, user_id, &hash, &notice, &session, now, &hooks).await
        })
        .await
    }

    /// The new session's id.
    pub async fn create_session(&self, user_id: i64, session: NewSession) -> Result<i64> {
        self.write(&[], async move |db| {
            sessions::create(db, user_id, &session).await
        })
        .await
    }

    /// The session whose token has this hash, unless it ended or expired.
    pub async fn live_session(&self, token_hash: &[u8], now: i64) -> Result<Option<LiveSession>> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::live_session(pool, token_hash, now).await,
            Backend::Postgres(pool) => postgres::live_session(pool, token_hash, now).await,
        }
    }

    /// Stores `key` as the JWT signing key unless one exists; whether it did.
    /// Instances starting at once agree on one key.
    pub async fn insert_first_jwt_key(&self, key: StoredJwtKey, now: i64) -> Result<bool> {
        let lock = [jwt_keys::LOCK.to_string()];
        self.write(&lock, async move |db| {
            jwt_keys::insert_first(db, &key, now).await
        })
        .await
    }

    /// Retires the signing key (it stays published for a while) and makes
    /// `key` the one; whether there was a key to retire.
    pub async fn rotate_jwt_key(&self, key: StoredJwtKey, now: i64) -> Result<bool> {
        let lock = [jwt_keys::LOCK.to_string()];
        self.write(&lock, async move |db| jwt_keys::rotate(db, &key, now).await)
            .await
    }

    /// The key that signs now, if one has been made.
    pub async fn current_jwt_key(&self) -> Result<Option<StoredJwtKey>> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::current_jwt_key(pool).await,
            Backend::Postgres(pool) => postgres::current_jwt_key(pool).await,
        }
    }

    /// The keys to publish: the current one first, then those retired after
    /// `retired_after`, newest first. Only public halves are read.
    pub async fn published_jwt_keys(&self, retired_after: i64) -> Result<Vec<PublishedJwtKey>> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::published_jwt_keys(pool, retired_after).await,
            Backend::Postgres(pool) => postgres::published_jwt_keys(pool, retired_after).await,
        }
    }

    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<bool> {
        let token_hash = token_hash.to_vec();
        self.write(&[], async move |db| sessions::delete(db, &token_hash).await)
            .await
    }

    /// Deletes what no rule can need any more: old requests, dead codes and
    /// sessions, finished mail older than `retention_secs`.
    pub async fn prune(&self, now: i64, retention_secs: i64) -> Result<()> {
        self.write(&[], async move |db| {
            writes::prune(db, now, retention_secs).await
        })
        .await
    }
}
