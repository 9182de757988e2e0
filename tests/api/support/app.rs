//! `TestApp`: authmail on a port of its own with its own database, started by
//! `TestApp::builder()`. By default the app is built in this process
//! (`in_process.rs`), with a clock and a worker the test may drive; `.process()`
//! starts the real binary instead (`process.rs`) for tests whose subject is the
//! process. Tests talk to either over HTTP (`app.base` and the helpers in
//! `api.rs`).

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use authmail::clock::Clock;
use authmail::mail::outbox::Outcome;

use super::db::TestDb;
use super::in_process::InProcess;
use super::process::Process;
use super::turns::Turn;
use super::wait::eventually;

pub use super::builder::{smtp_env, Builder, ADMIN_TOKEN};
pub use super::process::bin;

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub db: TestDb,
    pub(super) client: reqwest::Client,
    admin_token: Option<&'static str>,
    // Before `dir`: the app stops before its directory goes.
    runner: Runner,
    dir: tempfile::TempDir,
    _turn: Turn,
}

pub(super) enum Runner {
    InProcess(InProcess),
    Process(Process),
}

impl TestApp {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts `runner` and waits until `/readyz` answers 200.
    pub(super) async fn start(
        db: TestDb,
        dir: tempfile::TempDir,
        runner: Runner,
        admin_token: Option<&'static str>,
        turn: Turn,
    ) -> TestApp {
        let mut app = TestApp {
            base: String::new(),
            port: 0,
            db,
            // No idle connections kept: a test of HTTP_MAX_CONNECTIONS must
            // know every connection the server holds.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            admin_token,
            runner,
            dir,
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

    /// Starts the app (again, on the same port once it has one).
    async fn run(&mut self) {
        self.port = match &mut self.runner {
            Runner::InProcess(app) => {
                let addr = ([127, 0, 0, 1], self.port).into();
                app.start(addr).await.port()
            }
            Runner::Process(process) => {
                // The binary binds `BIND` itself: it needs a port named up front.
                let port = match self.port {
                    0 => super::smtp::free_port(),
                    port => port,
                };
                process.start(port);
                port
            }
        };
        self.base = format!("http://127.0.0.1:{}", self.port);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let url = format!("{}/readyz", self.base);
        // Behind a lock while polling, so that the check can borrow it.
        let (client, runner) = (&self.client, Mutex::new(&mut self.runner));
        eventually(Duration::from_secs(30), || async {
            if let Ok(r) = client.get(&url).send().await {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            match &mut **runner.lock().unwrap() {
                Runner::Process(p) => {
                    if let Some(status) = p.exited() {
                        panic!(
                            "authmail exited with {status} before it was ready:\n{}",
                            p.logs()
                        );
                    }
                    Err(format!("authmail not ready:\n{}", p.logs()))
                }
                Runner::InProcess(_) => Err("authmail not ready".to_string()),
            }
        })
        .await;
    }

    /// Stops the app and starts it again on the same port and database: a
    /// crash (`kill -9`) for the process, a graceful stop in-process.
    pub async fn restart(&mut self) {
        match &mut self.runner {
            Runner::InProcess(app) => app.stop(),
            Runner::Process(process) => process.kill9(),
        }
        self.run().await;
    }

    /// Runs an `authmail` command (`outbox`, `doctor`, …) on the app's
    /// database with `env`, at debug level; stdout and stderr.
    pub fn cli(&self, env: &[(String, String)], args: &[&str]) -> String {
        let out = std::process::Command::new(bin())
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("DATABASE_URL", self.db.url())
            .env("RUST_LOG", "debug")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run authmail");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// The app's working directory (the binary's current directory).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn in_process(&self) -> &InProcess {
        match &self.runner {
            Runner::InProcess(app) => app,
            Runner::Process(_) => panic!("a clock or worker to drive needs the in-process app"),
        }
    }

    fn process(&mut self) -> &mut Process {
        match &mut self.runner {
            Runner::Process(process) => process,
            Runner::InProcess(_) => {
                panic!("this test's subject is the process: start it with .process()")
            }
        }
    }

    /// The app's clock, manual when started with `.manual_clock()`.
    pub fn clock(&self) -> &Clock {
        &self.in_process().clock
    }

    /// One step of the outbox worker (with `.stepped_worker()`, the only one).
    pub async fn deliver_due(&self) -> Outcome {
        let worker = self.in_process().worker();
        worker.deliver_due().await.expect("a worker step")
    }

    /// One step of the webhook worker (with `.stepped_worker()`, the only one).
    pub async fn deliver_webhooks(&self) -> Outcome {
        let worker = self.in_process().webhook_worker();
        worker.deliver_due().await.expect("a webhook worker step")
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        self.process().kill9();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.process().terminate()
    }

    /// Everything every run of this app has printed.
    pub fn logs(&self) -> String {
        match &self.runner {
            Runner::Process(process) => process.logs(),
            Runner::InProcess(_) => {
                panic!("this test reads the process's logs: start it with .process()")
            }
        }
    }

    /// The running server's process id (for its memory and open files).
    pub fn pid(&self) -> u32 {
        match &self.runner {
            Runner::Process(process) => process.pid(),
            Runner::InProcess(_) => panic!("start the app with .process() to watch its process"),
        }
    }
}
