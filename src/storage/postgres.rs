//! PostgreSQL backend, for several instances on one database. Read-then-write
//! transactions take transaction-scoped advisory locks on the keys they decide
//! (the address, the client IP), so two instances deciding the same limit or
//! the same code queue behind each other instead of both passing.

use std::str::FromStr;

use sqlx::postgres::PgArguments;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::query::Query;
use sqlx::{FromRow, PgPool, Postgres, Row};

use super::exec::{Arg, Db, Exec, PgTx};
use super::records::OutboxRow;

use super::queries::shared_queries;
use super::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub async fn connect(url: &str, options: &PoolSettings) -> Result<PgPool> {
    let timeout_ms = options.timeout.as_millis().to_string();
    let connect = PgConnectOptions::from_str(url)
        .map_err(|e| StorageError::Other(Box::new(e)))?
        // A statement that hangs (a lock held by a dead peer, a sick server)
        // ends as an error the API turns into 503, never a hung request.
        .options([("statement_timeout", timeout_ms.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.timeout)
        .connect_lazy_with(connect);
    Ok(pool)
}

pub async fn migrate(pool: &PgPool) -> Result<()> {
    run_migrations(&MIGRATOR, pool).await
}

/// Runs a write flow in one transaction, behind advisory locks on `keys`.
pub(super) async fn write<T>(
    pool: &PgPool,
    keys: &[String],
    flow: impl AsyncFnOnce(&mut Db<'_>) -> Result<T>,
) -> Result<T> {
    let mut tx = begin_locked(pool, keys).await?;
    let out = flow(&mut Db::Postgres(&mut tx)).await?;
    tx.commit().await?;
    Ok(out)
}

async fn begin_locked(pool: &PgPool, keys: &[String]) -> Result<PgTx> {
    let mut tx = pool.begin().await?;
    // Always in the same order, so two transactions cannot wait on each other.
    let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// One statement with its parameters bound in order.
fn query<'q>(sql: &'q str, args: &[Arg<'q>]) -> Query<'q, Postgres, PgArguments> {
    args.iter().fold(sqlx::query(sql), |q, arg| match *arg {
        Arg::Int(v) => q.bind(v),
        Arg::OptInt(v) => q.bind(v),
        Arg::Text(v) => q.bind(v),
        Arg::OptText(v) => q.bind(v),
        Arg::Blob(v) => q.bind(v),
    })
}

impl Exec for PgTx {
    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64> {
        Ok(query(sql, args).execute(&mut **self).await?.rows_affected())
    }
    async fn exists(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<bool> {
        Ok(query(sql, args)
            .fetch_optional(&mut **self)
            .await?
            .is_some())
    }
    async fn int(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<i64>> {
        let row = query(sql, args).fetch_optional(&mut **self).await?;
        Ok(row
            .map(|r| r.try_get::<Option<i64>, _>(0))
            .transpose()?
            .flatten())
    }
    async fn blob(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<Vec<u8>>> {
        let row = query(sql, args).fetch_optional(&mut **self).await?;
        Ok(row
            .map(|r| r.try_get::<Option<Vec<u8>>, _>(0))
            .transpose()?
            .flatten())
    }
    async fn user(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Option<User>> {
        let row = query(sql, args).fetch_optional(&mut **self).await?;
        Ok(row.map(|r| User::from_row(&r)).transpose()?)
    }
    async fn messages(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<OutboxRow>> {
        let rows = query(sql, args).fetch_all(&mut **self).await?;
        Ok(rows
            .iter()
            .map(OutboxRow::from_row)
            .collect::<sqlx::Result<_>>()?)
    }
}

/// Expired leases first, then the oldest due messages of one channel ($3),
/// each half in index order up to the LIMIT. `SKIP LOCKED`: instances claiming at once take
/// disjoint messages.
pub(super) const CLAIM_DUE: &str =
    "UPDATE outbox SET status = 'sending', attempts = attempts + 1, lease_until = $1
     WHERE id IN (SELECT id FROM (
         SELECT id FROM (SELECT id FROM outbox WHERE status = 'sending' AND lease_until <= $2 AND channel = $3
                         ORDER BY lease_until LIMIT $4 FOR UPDATE SKIP LOCKED) AS expired
         UNION ALL
         SELECT id FROM (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $2 AND channel = $3
                         ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) AS due
     ) AS claimable LIMIT $4)
     RETURNING id, message_id, recipient, kind, lang, payload, attempts, expires_at, last_error";

shared_queries!(sqlx::Postgres);
