//! A connection pool to a test app's database, for tests that read or change
//! rows in a tight loop (a `python3`/`psql` process per statement is too slow).

use super::app::TestDb;

pub enum FastDb {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl FastDb {
    pub async fn open(db: &TestDb) -> FastDb {
        let url = db.url();
        if url.starts_with("postgres") {
            FastDb::Postgres(sqlx::PgPool::connect(&url).await.expect("connect"))
        } else {
            let options = url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()
                .expect("sqlite url")
                .busy_timeout(std::time::Duration::from_secs(10));
            FastDb::Sqlite(
                sqlx::SqlitePool::connect_with(options)
                    .await
                    .expect("connect"),
            )
        }
    }

    pub async fn exec(&self, sql: &str) {
        match self {
            FastDb::Sqlite(p) => sqlx::query(sql).execute(p).await.map(drop),
            FastDb::Postgres(p) => sqlx::query(sql).execute(p).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of the first row as an integer; 0 when there is no row
    /// or it is NULL.
    pub async fn int(&self, sql: &str) -> i64 {
        let sql = format!("SELECT CAST(({sql}) AS BIGINT)");
        let v: Option<Option<i64>> = match self {
            FastDb::Sqlite(p) => sqlx::query_scalar(&sql).fetch_optional(p).await,
            FastDb::Postgres(p) => sqlx::query_scalar(&sql).fetch_optional(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        v.flatten().unwrap_or(0)
    }

    /// The first column of every row, as text.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        match self {
            FastDb::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
            FastDb::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}
