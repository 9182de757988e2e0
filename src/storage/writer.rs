//! SQLite's single writer. SQLite lets one transaction write at a time, and
//! sqlx runs each statement on a connection thread of its own, so every write
//! request used to pay a thread hop per statement plus lock waits in SQLite's
//! busy handler (the profile of send-code was mostly futex waits and context
//! switches). Here one thread owns one connection: requests queue up, and
//! whatever has queued runs in one `BEGIN IMMEDIATE … COMMIT`, each request in
//! a savepoint of its own so a failing one leaves the others whole. Nobody is
//! answered before the commit that holds their write.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::exec::{run_now, Db, SyncConn};
use super::{Result, StorageError};

/// Most requests in one commit: bounds how long a batch holds the lock.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Envelope>,
    /// How long a request may wait for the writer before it answers 503.
    timeout: Duration,
}

struct Envelope {
    deadline: Instant,
    job: Box<dyn Job>,
}

trait Job: Send {
    /// Runs the work; false when it failed (its savepoint is rolled back).
    fn run(&mut self, conn: &mut Connection) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, committed: Result<()>);
}

struct Typed<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T: Send, F: AsyncFnOnce(&mut Db<'_>) -> Result<T> + Send> Job for Typed<T, F> {
    fn run(&mut self, conn: &mut Connection) -> bool {
        let work = self.work.take().expect("a job runs once");
        // A flow that panics fails its own request like any error (its
        // savepoint is rolled back); it must not take the writer thread along.
        let run = AssertUnwindSafe(|| run_now(work(&mut Db::Sqlite(SyncConn(conn)))));
        let result = std::panic::catch_unwind(run)
            .unwrap_or_else(|_| Err(StorageError::Other("a write flow panicked".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<()>) {
        let answer = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(busy()),
        };
        let _ = self.reply.send(answer);
    }
}

fn busy() -> StorageError {
    StorageError::Unavailable("the database stayed busy past DATABASE_TIMEOUT_SECS".into())
}

impl Writer {
    /// Opens the writer's own connection to the database file and starts its thread.
    pub fn start(path: &Path, timeout: Duration) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Same durability as the pool: WAL + NORMAL keeps every commit across kill -9.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )?;
        conn.busy_timeout(timeout)?;
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(conn, queue))
            .map_err(|e| StorageError::Other(Box::new(e)))?;
        Ok(Self { jobs, timeout })
    }

    /// Runs `work` in the next batch and returns its result after the commit.
    /// It may await only its connection (see [`run_now`]).
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: AsyncFnOnce(&mut Db<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let envelope = Envelope {
            deadline: Instant::now() + self.timeout,
            job: Box::new(Typed {
                work: Some(work),
                result: None,
                reply,
            }),
        };
        self.jobs
            .send(envelope)
            .map_err(|_| StorageError::Unavailable("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StorageError::Unavailable("the SQLite writer has stopped".into()))?
    }
}

fn serve(mut conn: Connection, mut queue: mpsc::UnboundedReceiver<Envelope>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, &mut batch);
    }
}

fn run_batch(conn: &mut Connection, batch: &mut Vec<Envelope>) {
    let committed = begin(conn).and_then(|()| {
        for envelope in batch.iter_mut() {
            // A request that waited out its deadline answers 503 unrun, so a
            // client never gets 503 for work that was in fact done.
            if Instant::now() > envelope.deadline {
                continue;
            }
            conn.execute_batch("SAVEPOINT job")?;
            if envelope.job.run(conn) {
                conn.execute_batch("RELEASE job")?;
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            }
        }
        Ok(conn.execute_batch("COMMIT")?)
    });
    if committed.is_err() && !conn.is_autocommit() {
        // SQLite rolls some failed commits back itself (a full disk); the rest we do.
        let _ = conn.execute_batch("ROLLBACK");
    }
    for envelope in batch.drain(..) {
        let outcome = match &committed {
            Ok(()) => Ok(()),
            Err(e) => Err(e.shared()),
        };
        envelope.job.finish(outcome);
    }
}

fn begin(conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::exec::{args, Exec};

    fn writer(dir: &tempfile::TempDir, timeout: Duration) -> Writer {
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .unwrap();
        Writer::start(&path, timeout).unwrap()
    }

    async fn insert(w: &Writer, v: i64) -> Result<u64> {
        w.run(async move |db| db.execute("INSERT INTO t (v) VALUES ($1)", args![v]).await)
            .await
    }

    async fn count(w: &Writer) -> i64 {
        w.run(async |db| db.int("SELECT COUNT(*) FROM t", args![]).await)
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn a_failing_request_leaves_the_rest_of_its_batch_whole() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir, Duration::from_secs(5));
        // Queued together, so they share batches: the duplicate fails alone.
        let results = futures_util::future::join_all([1, 2, 2, 3].map(|v| insert(&w, v))).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        assert_eq!(failed, 1, "{results:?}");
        assert_eq!(count(&w).await, 3);
    }

    /// Runs `broken` (which inserts 1, then goes wrong) queued together
    /// with a good insert, so they likely share a batch: it fails alone, its
    /// insert is rolled back, and the writer serves on.
    async fn fails_alone<F>(broken: F)
    where
        F: AsyncFnOnce(&mut Db<'_>) -> Result<()> + Send + 'static,
    {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir, Duration::from_secs(5));
        let (broken, fine) = tokio::join!(w.run(broken), insert(&w, 2));
        assert!(matches!(broken, Err(StorageError::Other(_))), "{broken:?}");
        fine.unwrap();
        insert(&w, 3).await.unwrap();
        assert_eq!(
            count(&w).await,
            2,
            "the broken flow's insert was rolled back"
        );
    }

    #[tokio::test]
    async fn a_flow_that_awaits_anything_else_fails_only_its_own_request() {
        fails_alone(async |db| {
            db.execute("INSERT INTO t (v) VALUES (1)", args![]).await?;
            // Never ready: on the writer thread nothing would ever wake it.
            std::future::pending::<()>().await;
            Ok(())
        })
        .await;
    }

    #[tokio::test]
    async fn a_flow_that_panics_fails_only_its_own_request() {
        fails_alone(async |db| {
            db.execute("INSERT INTO t (v) VALUES (1)", args![]).await?;
            panic!("a bug in a flow");
        })
        .await;
    }

    #[tokio::test]
    async fn a_request_that_waited_out_its_deadline_is_refused_unrun() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir, Duration::from_millis(200));
        // Another connection holds the write lock longer than the deadline.
        let other = Connection::open(dir.path().join("w.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let refused = insert(&w, 1).await;
        assert!(
            matches!(refused, Err(StorageError::Unavailable(_))),
            "{refused:?}"
        );
        other.execute_batch("ROLLBACK").unwrap();
        insert(&w, 2).await.unwrap();
        assert_eq!(count(&w).await, 1, "the refused insert never ran");
    }
}
