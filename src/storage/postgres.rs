//! PostgreSQL backend, for several instances on one database. Read-then-write
//! transactions take transaction-scoped advisory locks on the keys they decide
//! (the address, the client IP), so two instances deciding the same limit or
//! the same code queue behind each other instead of both passing.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

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

type Tx<'c> = sqlx::Transaction<'c, sqlx::Postgres>;

pub(super) async fn begin_locked<'c>(pool: &'c PgPool, keys: &[&str]) -> Result<Tx<'c>> {
    let mut tx = pool.begin().await?;
    // Always in the same order, so two transactions cannot wait on each other.
    let mut keys = keys.to_vec();
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

/// Expired leases first, then the oldest due messages, each half in index
/// order up to the LIMIT. `SKIP LOCKED`: instances claiming at once take
/// disjoint messages.
pub(super) const CLAIM_DUE: &str =
    "UPDATE outbox SET status = 'sending', attempts = attempts + 1, lease_until = $1
     WHERE id IN (SELECT id FROM (
         SELECT id FROM (SELECT id FROM outbox WHERE status = 'sending' AND lease_until <= $2
                         ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED) AS expired
         UNION ALL
         SELECT id FROM (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $2
                         ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) AS due
     ) AS claimable LIMIT $3)
     RETURNING id, message_id, recipient, kind, lang, payload, attempts, expires_at, last_error";

shared_queries!(sqlx::Postgres);
