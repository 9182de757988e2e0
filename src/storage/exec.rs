//! One small statement interface over both ways authmail talks to a database:
//! an sqlx transaction (PostgreSQL) and a rusqlite connection inside the
//! SQLite writer thread. The write flows in `writes.rs` are written once
//! against it, so the two backends cannot drift apart.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::records::OutboxRow;
use super::{Result, StorageError, User};

/// A bound parameter. `$n` placeholders are numbered in order of first use,
/// which is also how SQLite numbers them.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Blob(&'a [u8]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Self::OptInt(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(v)
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(v)
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Self::OptText(v.as_deref())
    }
}
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Self::Blob(v)
    }
}

/// `args![a, b]`: the parameters of one statement.
macro_rules! args {
    ($($arg:expr),* $(,)?) => { &[$($crate::storage::exec::Arg::from($arg)),*] };
}
pub(super) use args;

/// The statements the write flows need. Every method runs one statement in
/// the current transaction. (The futures are `Send` wherever the connection
/// is, which [`Db`] relies on; the trait cannot say so.)
#[allow(async_fn_in_trait)]
pub(super) trait Exec {
    /// Rows changed.
    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64>;
    /// Whether the statement returns a row.
    async fn exists(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<bool>;
    /// The first column of the first row; `None` for no row or NULL.
    async fn int(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<i64>>;
    async fn blob(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<Vec<u8>>>;
    async fn user(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<User>>;
    async fn messages(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<OutboxRow>>;
}

/// The connection a write flow runs on, whichever the backend: one type, so a
/// flow is one closure that `Storage` hands to either.
pub(super) enum Db<'a> {
    /// Inside the SQLite writer's batch, on its thread.
    Sqlite(SyncConn<'a>),
    /// A PostgreSQL transaction behind the flow's advisory locks.
    Postgres(&'a mut PgTx),
}

pub(super) type PgTx = sqlx::Transaction<'static, sqlx::Postgres>;

impl Exec for Db<'_> {
    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64> {
        match self {
            Db::Sqlite(c) => c.execute(sql, args).await,
            Db::Postgres(tx) => tx.execute(sql, args).await,
        }
    }
    async fn exists(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<bool> {
        match self {
            Db::Sqlite(c) => c.exists(sql, args).await,
            Db::Postgres(tx) => tx.exists(sql, args).await,
        }
    }
    async fn int(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<i64>> {
        match self {
            Db::Sqlite(c) => c.int(sql, args).await,
            Db::Postgres(tx) => tx.int(sql, args).await,
        }
    }
    async fn blob(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<Vec<u8>>> {
        match self {
            Db::Sqlite(c) => c.blob(sql, args).await,
            Db::Postgres(tx) => tx.blob(sql, args).await,
        }
    }
    async fn user(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<User>> {
        match self {
            Db::Sqlite(c) => c.user(sql, args).await,
            Db::Postgres(tx) => tx.user(sql, args).await,
        }
    }
    async fn messages(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<OutboxRow>> {
        match self {
            Db::Sqlite(c) => c.messages(sql, args).await,
            Db::Postgres(tx) => tx.messages(sql, args).await,
        }
    }
}

/// The rusqlite side: statements run right here, on the writer thread. It
/// holds the connection mutably so that it is `Send`, as [`Db`] must be.
pub(super) struct SyncConn<'c>(pub &'c mut rusqlite::Connection);

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Int(v) => v.to_sql(),
            Arg::OptInt(v) => v.to_sql(),
            Arg::Text(v) => v.to_sql(),
            Arg::OptText(v) => v.to_sql(),
            Arg::Blob(v) => v.to_sql(),
        }
    }
}

impl SyncConn<'_> {
    fn prepare(&self, sql: &'static str) -> Result<rusqlite::CachedStatement<'_>> {
        let stmt = self.0.prepare_cached(sql)?;
        debug_assert!(
            (1..=stmt.parameter_count())
                .all(|i| stmt.parameter_name(i) == Some(format!("${i}").as_str())),
            "placeholders out of order in {sql}"
        );
        Ok(stmt)
    }

    fn first<T>(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
        read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let mut stmt = self.prepare(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        Ok(match rows.next()? {
            Some(row) => Some(read(row)?),
            None => None,
        })
    }
}

impl Exec for SyncConn<'_> {
    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64> {
        Ok(self
            .prepare(sql)?
            .execute(rusqlite::params_from_iter(args))? as u64)
    }
    async fn exists(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<bool> {
        let mut stmt = self.prepare(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        Ok(rows.next()?.is_some())
    }
    async fn int(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<i64>> {
        Ok(self.first(sql, args, |r| r.get(0))?.flatten())
    }
    async fn blob(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<Vec<u8>>> {
        Ok(self.first(sql, args, |r| r.get(0))?.flatten())
    }
    async fn user(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<User>> {
        self.first(sql, args, |r| {
            Ok(User {
                id: r.get("id")?,
                email: r.get("email")?,
                password_hash: r.get("password_hash")?,
                created_at: r.get("created_at")?,
            })
        })
    }
    async fn messages(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.prepare(sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok(OutboxRow {
                id: r.get("id")?,
                message_id: r.get("message_id")?,
                recipient: r.get("recipient")?,
                kind: r.get("kind")?,
                lang: r.get("lang")?,
                payload: r.get("payload")?,
                attempts: r.get("attempts")?,
                expires_at: r.get("expires_at")?,
                last_error: r.get("last_error")?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Runs a flow over a `SyncConn` to its end. Its statements never wait on
/// anything (they run in place), so the first poll finishes it, unless the
/// flow awaits something else (a timer, a channel): that one request fails,
/// loudly, and its savepoint is rolled back; the writer thread serves on.
pub(super) fn run_now<T>(flow: impl Future<Output = Result<T>>) -> Result<T> {
    match pin!(flow).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => {
            tracing::error!("a write flow awaited something besides its connection; refused");
            Err(StorageError::Other(
                "a write flow awaited something besides its connection".into(),
            ))
        }
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        let transient = e
            .sqlite_error()
            .is_some_and(|c| super::is_transient_code(&c.extended_code.to_string()));
        if transient {
            Self::Unavailable(Box::new(e))
        } else {
            Self::Other(Box::new(e))
        }
    }
}
