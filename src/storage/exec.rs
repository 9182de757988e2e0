//! One small statement interface over both ways authmail talks to a database:
//! an sqlx transaction (PostgreSQL) and a rusqlite connection inside the
//! SQLite writer thread. The write flows in `writes.rs` are written once
//! against it, so the two backends cannot drift apart.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::{OutboxMessage, Result, StorageError, User};

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
/// the current transaction. (No `Send` bound here: the rusqlite side is not
/// `Send`; the sqlx side's futures are, and callers see the concrete types.)
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
    async fn messages(&mut self, sql: &'static str, args: &[Arg<'_>])
        -> Result<Vec<OutboxMessage>>;
}

/// The sqlx side, for a transaction of either database.
macro_rules! sqlx_exec {
    ($db:ty) => {
        impl $crate::storage::exec::Exec for sqlx::Transaction<'_, $db> {
            async fn execute(
                &mut self,
                sql: &'static str,
                args: &[$crate::storage::exec::Arg<'_>],
            ) -> Result<u64> {
                let q = super::exec::sqlx_exec!(@bind sqlx::query(sql), args);
                Ok(q.execute(&mut **self).await?.rows_affected())
            }
            async fn exists(
                &mut self,
                sql: &'static str,
                args: &[$crate::storage::exec::Arg<'_>],
            ) -> Result<bool> {
                let q = super::exec::sqlx_exec!(@bind sqlx::query(sql), args);
                Ok(q.fetch_optional(&mut **self).await?.is_some())
            }
            async fn int(
                &mut self,
                sql: &'static str,
                args: &[$crate::storage::exec::Arg<'_>],
            ) -> Result<Option<i64>> {
                let q = super::exec::sqlx_exec!(@bind sqlx::query_scalar::<_, Option<i64>>(sql), args);
                Ok(q.fetch_optional(&mut **self).await?.flatten())
            }
            async fn blob(
                &mut self,
                sql: &'static str,
                args: &[$crate::storage::exec::Arg<'_>],
            ) -> Result<Option<Vec<u8>>> {
                let q = super::exec::sqlx_exec!(@bind sqlx::query_scalar::<_, Option<Vec<u8>>>(sql), args);
                Ok(q.fetch_optional(&mut **self).await?.flatten())
            }
            async fn user(
                &mut self,
                sql: &'static str,
                args: &[$crate::storage::exec::Arg<'_>],
            ) -> Result<Option<User>> {
                let q = super::exec::sqlx_exec!(@bind sqlx::query_as(sql), args);
                Ok(q.fetch_optional(&mut **self).await?)
            }
            async fn messages(
                &mut self,
                sql: &'static str,
                args: &[$crate::storage::exec::Arg<'_>],
            ) -> Result<Vec<OutboxMessage>> {
                let q = super::exec::sqlx_exec!(@bind sqlx::query_as(sql), args);
                Ok(q.fetch_all(&mut **self).await?)
            }
        }
    };
    (@bind $q:expr, $args:expr) => {{
        use $crate::storage::exec::Arg;
        let mut q = $q;
        for arg in $args {
            q = match *arg {
                Arg::Int(v) => q.bind(v),
                Arg::OptInt(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::OptText(v) => q.bind(v),
                Arg::Blob(v) => q.bind(v),
            };
        }
        q
    }};
}
pub(super) use sqlx_exec;

/// The rusqlite side: statements run right here, on the writer thread.
pub(super) struct SyncConn<'c>(pub &'c rusqlite::Connection);

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
                id: r.get(0)?,
                email: r.get(1)?,
                password_hash: r.get(2)?,
                created_at: r.get(3)?,
            })
        })
    }
    async fn messages(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<OutboxMessage>> {
        let mut stmt = self.prepare(sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok(OutboxMessage {
                id: r.get(0)?,
                message_id: r.get(1)?,
                recipient: r.get(2)?,
                kind: r.get(3)?,
                lang: r.get(4)?,
                payload: r.get(5)?,
                attempts: r.get(6)?,
                expires_at: r.get(7)?,
                last_error: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Runs a flow over a `SyncConn` to its end. Its statements never wait on
/// anything (they run in place), so the first poll always finishes it.
pub(super) fn run_now<T>(flow: impl Future<Output = T>) -> T {
    match pin!(flow).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("a SyncConn flow never waits"),
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
