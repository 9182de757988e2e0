//! `TestApp`: authmail on a port of its own with its own database, started by
//! `TestApp::builder()`. Tests talk to it over HTTP (`app.base` and the helpers
//! in `api.rs`); only tests whose subject is the process itself (exit codes,
//! `kill -9`, logs, open files) use the process methods below.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::db::TestDb;
use super::turns::Turn;
use super::wait::{eventually, eventually_blocking};

pub use super::builder::{smtp_env, Builder, ADMIN_TOKEN};

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub db: TestDb,
    pub(super) client: reqwest::Client,
    admin_token: Option<&'static str>,
    process: Process,
    _turn: Turn,
}

/// The `authmail serve` child process and what it needs to start again.
struct Process {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    child: Option<Child>,
    runs: usize,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_authmail")
}

impl TestApp {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Spawns the binary with `env` on top of test-friendly defaults and
    /// waits until `/readyz` answers 200.
    pub(super) async fn spawn(
        db: TestDb,
        dir: tempfile::TempDir,
        env: Vec<(String, String)>,
        admin_token: Option<&'static str>,
        turn: Turn,
    ) -> TestApp {
        let port = super::smtp::free_port();
        let mut app = TestApp {
            base: format!("http://127.0.0.1:{port}"),
            port,
            db,
            // No idle connections kept: a test of HTTP_MAX_CONNECTIONS must
            // know every connection the server holds.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            admin_token,
            process: Process {
                dir,
                env,
                child: None,
                runs: 0,
            },
            _turn: turn,
        };
        app.run().await;
        app
    }

    /// The `ADMIN_TOKEN` the app was started with (`.admin()`).
    pub fn admin_token(&self) -> &'static str {
        self.admin_token
            .expect("start the app with .admin() to use the admin API")
    }

    fn log_path(&self, run: usize) -> PathBuf {
        self.process.dir.path().join(format!("authmail-{run}.log"))
    }

    async fn run(&mut self) {
        self.process.runs += 1;
        let log = std::fs::File::create(self.log_path(self.process.runs)).unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .current_dir(self.process.dir.path())
            .env_clear()
            .env("BIND", format!("127.0.0.1:{}", self.port))
            .env("DATABASE_URL", self.db.url())
            .env("RETRY_BASE_SECS", "1")
            .env("RETRY_MAX_SECS", "2")
            .env("LOG_FORMAT", "json")
            .envs(self.process.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        self.process.child = Some(cmd.spawn().expect("start authmail"));
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let url = format!("{}/readyz", self.base);
        // Out of `self` while polling, so that the check can borrow `self`.
        let child = std::sync::Mutex::new(self.process.child.take().unwrap());
        let this = &*self;
        eventually(Duration::from_secs(30), || async {
            if let Ok(r) = this.client.get(&url).send().await {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            if let Some(status) = child.lock().unwrap().try_wait().unwrap() {
                panic!(
                    "authmail exited with {status} before it was ready:\n{}",
                    this.logs()
                );
            }
            Err(format!("authmail not ready:\n{}", this.logs()))
        })
        .await;
        self.process.child = Some(child.into_inner().unwrap());
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.process.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.process.child.take().expect("running");
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        eventually_blocking(Duration::from_secs(30), || {
            child
                .try_wait()
                .unwrap()
                .ok_or_else(|| "authmail did not exit after SIGTERM".to_string())
        })
    }

    pub async fn restart(&mut self) {
        self.kill9();
        self.run().await;
    }

    /// Everything every run of this app has printed.
    pub fn logs(&self) -> String {
        (1..=self.process.runs)
            .map(|run| std::fs::read_to_string(self.log_path(run)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The app's working directory.
    pub fn path(&self) -> &Path {
        self.process.dir.path()
    }

    /// The running server's process id (for its memory and open files).
    pub fn pid(&self) -> u32 {
        self.process.child.as_ref().expect("running").id()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill9();
    }
}
