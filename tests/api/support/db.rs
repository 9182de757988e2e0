//! `TestDb`: the database a test app runs on, and a connection pool to read or
//! change its rows behind authmail's back (to make time pass for a row, say).

use std::path::Path;

use tokio::sync::OnceCell;

use super::smtp::free_port;

pub struct TestDb {
    url: String,
    pool: OnceCell<Pool>,
}

enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl TestDb {
    /// The backend the test command chose: the SQLite file `dir/file` unless
    /// it set `AUTHMAIL_TEST_DB=postgres` (then `AUTHMAIL_TEST_PG` must name
    /// the throwaway server it started: a missing server fails loudly).
    pub async fn chosen(dir: &Path, file: &str) -> TestDb {
        match std::env::var("AUTHMAIL_TEST_DB").as_deref() {
            Ok("postgres") => TestDb::postgres().await,
            Ok("sqlite") | Err(_) => TestDb::sqlite(&dir.join(file)),
            Ok(other) => panic!("AUTHMAIL_TEST_DB={other}: expected sqlite or postgres"),
        }
    }

    pub fn sqlite(path: &Path) -> TestDb {
        TestDb::at(&format!("sqlite://{}", path.display()))
    }

    /// A database that exists already (one several instances share).
    pub fn at(url: &str) -> TestDb {
        TestDb {
            url: url.to_string(),
            pool: OnceCell::new(),
        }
    }

    /// A new, empty database on the test PostgreSQL server.
    pub async fn postgres() -> TestDb {
        use sqlx::Connection;
        let admin = std::env::var("AUTHMAIL_TEST_PG").expect(
            "AUTHMAIL_TEST_PG must name the test PostgreSQL server (scripts/test starts it)",
        );
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The port makes the name unique across runs that reuse a process id.
        let name = format!("t{}_{}_{}", std::process::id(), n, free_port());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to AUTHMAIL_TEST_PG");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        let base = admin.rsplit_once('/').expect("a database URL").0;
        TestDb::at(&format!("{base}/{name}"))
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }

    /// Connects on first use: by then the app has created the database.
    async fn pool(&self) -> &Pool {
        self.pool
            .get_or_init(|| async {
                if self.is_postgres() {
                    Pool::Postgres(sqlx::PgPool::connect(&self.url).await.expect("connect"))
                } else {
                    let options = self
                        .url
                        .parse::<sqlx::sqlite::SqliteConnectOptions>()
                        .expect("sqlite url")
                        .busy_timeout(std::time::Duration::from_secs(10));
                    let pool = sqlx::SqlitePool::connect_with(options).await;
                    Pool::Sqlite(pool.expect("connect"))
                }
            })
            .await
    }

    pub async fn exec(&self, sql: &str) {
        match self.pool().await {
            Pool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(drop),
            Pool::Postgres(p) => sqlx::query(sql).execute(p).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of the first row as an integer; 0 when there is no row
    /// or it is NULL.
    pub async fn int(&self, sql: &str) -> i64 {
        let sql = format!("SELECT CAST(({sql}) AS BIGINT)");
        let v: Option<Option<i64>> = match self.pool().await {
            Pool::Sqlite(p) => sqlx::query_scalar(&sql).fetch_optional(p).await,
            Pool::Postgres(p) => sqlx::query_scalar(&sql).fetch_optional(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        v.flatten().unwrap_or(0)
    }

    /// The first column of every row, as text.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        match self.pool().await {
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
            Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column of every row, as bytes.
    pub async fn blobs(&self, sql: &str) -> Vec<Vec<u8>> {
        match self.pool().await {
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
            Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}
