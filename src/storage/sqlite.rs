//! SQLite backend: reads on an sqlx pool, every write through the single
//! writer thread (`writer.rs`), whose batches take the write lock up front
//! (`BEGIN IMMEDIATE`), so each write sees and changes a stable state.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqlitePool};

use super::queries::shared_queries;
use super::writer::Writer;
use super::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The pool (for reads and migrations) and the writer, both on the same file.
pub async fn connect(url: &str, options: &PoolSettings) -> Result<(SqlitePool, Writer)> {
    let connect =
        SqliteConnectOptions::from_str(url).map_err(|e| StorageError::Other(Box::new(e)))?;
    create_private(connect.get_filename())?;
    let connect = connect
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL in WAL mode keeps every commit across a process crash (kill -9);
        // only a power loss can drop the last commits.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(options.timeout)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.timeout)
        // A SQLite connection is a file in this process: no server can have
        // hung up on it, and the ping sqlx sends to test one is a round trip
        // to the connection's thread before every read.
        .test_before_acquire(false)
        .after_release(|conn, _| {
            Box::pin(async move {
                // A failed COMMIT (disk full) is rolled back by SQLite itself, so
                // the ROLLBACK sqlx queues for the dropped transaction fails and
                // sqlx goes on believing one is open: every later BEGIN on this
                // connection would be refused (500s until a restart). Flush the
                // queued rollback, and drop a connection that is still in one.
                // Only then: a connection in no transaction has nothing queued,
                // and a ping on every release cost every read a second trip to
                // the connection's thread.
                if conn.is_in_transaction() {
                    conn.ping().await?;
                }
                Ok(!conn.is_in_transaction())
            })
        })
        .connect_with(connect)
        .await?;
    let file: String =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&pool)
            .await?;
    if file.is_empty() {
        return Err(StorageError::Other(
            "DATABASE_URL: an in-memory SQLite database is not supported; name a file".into(),
        ));
    }
    let writer = Writer::start(Path::new(&file), options.timeout)?;
    Ok((pool, writer))
}

/// Creates the database file readable by its owner only: it holds password
/// hashes, sessions and codes in flight. SQLite gives the `-wal` and `-shm`
/// files it makes later the main file's mode. An existing file keeps its
/// mode (the operator may have reasons), but a loose one is warned about.
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777);
            if mode & 0o077 != 0 {
                let shown = path.display();
                tracing::warn!("{shown} is readable by other users (mode {mode:o}): run chmod 600 {shown} {shown}-wal {shown}-shm");
            }
            Ok(())
        }
        // Let SQLite report what is wrong with the path (a missing directory, say).
        Err(_) => Ok(()),
    }
}

pub async fn migrate(pool: &SqlitePool) -> Result<()> {
    run_migrations(&MIGRATOR, pool).await
}

/// Expired leases first, then the oldest due messages, of one channel ($3:
/// mail or webhook events, claimed by separate workers); each half reads its
/// own index in order and stops at the LIMIT, however long the queue. The
/// claim runs inside SQLite's single writer, so no row can be taken twice.
pub(super) const CLAIM_DUE: &str =
    "UPDATE outbox SET status = 'sending', attempts = attempts + 1, lease_until = $1
     WHERE id IN (SELECT id FROM (
         SELECT id FROM (SELECT id FROM outbox WHERE status = 'sending' AND lease_until <= $2 AND channel = $3
                         ORDER BY lease_until LIMIT $4)
         UNION ALL
         SELECT id FROM (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $2 AND channel = $3
                         ORDER BY next_attempt_at, id LIMIT $4)
     ) LIMIT $4)
     RETURNING id, message_id, recipient, kind, lang, payload, attempts, expires_at, last_error";

shared_queries!(sqlx::Sqlite);
