//! `TestApp`: the real `authmail` binary on a free port with its own database
//! and working directory, and one helper per endpoint so tests read as stories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::smtp::{free_port, Certs, SmtpServer};

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    env: Vec<(String, String)>,
    child: Option<Child>,
    runs: usize,
    client: reqwest::Client,
}

/// One HTTP answer, as the tests look at it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Reply {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.headers.get("retry-after")?.to_str().ok()?.parse().ok()
    }
}

/// Settings that point authmail at a test SMTP server started by the test.
pub fn smtp_env(
    smtp: &SmtpServer,
    certs: &Certs,
    security: &str,
    auth: Option<(&str, &str)>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("SMTP_SERVER".into(), "localhost".into()),
        ("SMTP_PORT".into(), smtp.port.to_string()),
        ("SMTP_SECURITY".into(), security.into()),
        ("SMTP_CA_FILE".into(), certs.ca().display().to_string()),
        ("SMTP_FROM".into(), "noreply@authmail.test".into()),
        ("SMTP_TIMEOUT_SECS".into(), "3".into()),
    ];
    if let Some((user, password)) = auth {
        env.push(("SMTP_USER".into(), user.into()));
        env.push(("SMTP_PASSWORD".into(), password.into()));
    }
    env
}

/// Which database the integration tests run on: SQLite unless the test
/// command set `AUTHMAIL_TEST_DB=postgres` (then `AUTHMAIL_TEST_PG` must name
/// the throwaway server it started: a missing server fails loudly).
pub enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin: String, url: String },
}

impl TestDb {
    fn create(dir: &Path) -> TestDb {
        match std::env::var("AUTHMAIL_TEST_DB").as_deref() {
            Ok("postgres") => TestDb::postgres(),
            Ok("sqlite") | Err(_) => TestDb::Sqlite(dir.join("authmail.db")),
            Ok(other) => panic!("AUTHMAIL_TEST_DB={other}: expected sqlite or postgres"),
        }
    }

    /// A new, empty database on the test PostgreSQL server.
    pub fn postgres() -> TestDb {
        let admin = std::env::var("AUTHMAIL_TEST_PG").expect(
            "AUTHMAIL_TEST_PG must name the test PostgreSQL server (scripts/test starts it)",
        );
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("t{}_{}_{}", std::process::id(), n, free_port());
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').expect("a database URL").0;
        TestDb::Postgres {
            url: format!("{base}/{name}"),
            admin,
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite(path) => format!("sqlite://{}", path.display()),
            TestDb::Postgres { url, .. } => url.clone(),
        }
    }

    /// Runs one SQL statement straight against the database, behind
    /// authmail's back (to make time pass for a row, say).
    pub fn exec(&self, sql: &str) {
        self.query(sql);
    }

    /// The first column of the first row of `sql`, as text.
    pub fn query(&self, sql: &str) -> String {
        match self {
            TestDb::Sqlite(path) => {
                let out = Command::new("python3")
                    .args([
                        "-c",
                        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchone(); c.commit(); print('' if r is None else r[0])",
                    ])
                    .arg(path)
                    .arg(sql)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{sql}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            }
            TestDb::Postgres { url, .. } => psql(url, sql),
        }
    }
}

pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("psql must be installed (scripts/test installs PostgreSQL)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_authmail")
}

impl TestApp {
    /// Starts authmail with `env` on top of test-friendly defaults and waits
    /// until `/readyz` answers 200.
    pub async fn start(env: Vec<(String, String)>) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::create(dir.path());
        Self::start_on(db, dir, env).await
    }

    /// One of several instances sharing the PostgreSQL database at `url`.
    pub async fn start_shared(url: &str, env: Vec<(String, String)>) -> TestApp {
        let db = TestDb::Postgres {
            admin: String::new(),
            url: url.to_string(),
        };
        Self::start_on(db, tempfile::tempdir().unwrap(), env).await
    }

    async fn start_on(db: TestDb, dir: tempfile::TempDir, env: Vec<(String, String)>) -> TestApp {
        let port = free_port();
        let mut app = TestApp {
            base: format!("http://127.0.0.1:{port}"),
            port,
            db,
            dir,
            env,
            child: None,
            runs: 0,
            // No idle connections kept: a test of HTTP_MAX_CONNECTIONS must
            // know every connection the server holds.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        };
        app.spawn().await;
        app
    }

    pub fn with(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn log_path(&self, run: usize) -> PathBuf {
        self.dir.path().join(format!("authmail-{run}.log"))
    }

    async fn spawn(&mut self) {
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .current_dir(self.dir.path())
            .env_clear()
            .env("BIND", format!("127.0.0.1:{}", self.port))
            .env("DATABASE_URL", self.db.url())
            .env("RETRY_BASE_SECS", "1")
            .env("RETRY_MAX_SECS", "2")
            .env("LOG_FORMAT", "json")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        self.child = Some(cmd.spawn().expect("start authmail"));
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self
                .client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
            {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "authmail exited with {status} before it was ready:\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "authmail not ready within 30 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "authmail did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// Everything every run of this app has printed.
    pub fn logs(&self) -> String {
        (1..=self.runs)
            .map(|run| std::fs::read_to_string(self.log_path(run)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The running server's process id (for its memory and open files).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        into_reply(req.send().await.expect("request")).await
    }

    /// A raw body with a chosen content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        into_reply(req.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request("POST", path, Some(&body), &[]).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None, &[]).await
    }

    pub async fn send_code(&self, email: &str, purpose: &str) -> Reply {
        self.post(
            "/api/auth/send-code",
            json!({"email": email, "purpose": purpose}),
        )
        .await
    }

    pub async fn register(&self, email: &str, password: &str, code: &str) -> Reply {
        self.post(
            "/api/auth/register",
            json!({"email": email, "password": password, "code": code}),
        )
        .await
    }

    /// Registers `email` with `password`, reading the code from the dev mailbox.
    pub async fn register_via_dev_mailbox(&self, email: &str, password: &str) {
        assert_eq!(self.send_code(email, "register").await.status, 202);
        let code = self.dev_code(email, Duration::from_secs(10)).await;
        let r = self.register(email, password, &code).await;
        assert_eq!(r.status, 201, "{}", r.raw);
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn login_code(&self, email: &str, code: &str) -> Reply {
        self.post(
            "/api/auth/login-code",
            json!({"email": email, "code": code}),
        )
        .await
    }

    pub async fn reset_password(&self, email: &str, code: &str, new_password: &str) -> Reply {
        self.post(
            "/api/auth/reset-password",
            json!({"email": email, "code": code, "new_password": new_password}),
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Reply {
        self.request(
            "GET",
            "/api/auth/me",
            None,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    pub async fn logout(&self, token: &str) -> Reply {
        self.request(
            "POST",
            "/api/auth/logout",
            None,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    pub async fn admin(&self, path: &str, token: &str) -> Reply {
        self.request(
            "GET",
            path,
            None,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    /// Polls the admin outbox until `pred` holds for the message to `to`.
    pub async fn wait_outbox(
        &self,
        token: &str,
        to: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.admin("/api/admin/outbox?limit=500", token).await;
            assert_eq!(r.status, 200, "{}", r.raw);
            let found = r.body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["to"] == to && pred(m))
                .cloned();
            if let Some(m) = found {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "outbox never reached the state for {to}: {}",
                r.raw
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The newest code mailed to `to` in the dev mailbox.
    pub async fn dev_code(&self, to: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.get("/dev/mailbox.json").await;
            let code = r.body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["to"] == to)
                .find_map(|m| m["code"].as_str().map(str::to_string));
            if let Some(code) = code {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "no code for {to} in the dev mailbox: {}",
                r.raw
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

pub async fn into_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill9();
    }
}
