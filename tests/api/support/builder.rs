//! `TestApp::builder()`: the settings a test starts authmail with, named by
//! what they are for (`.admin()`, `.no_limits()`, `.smtp(&server)`) rather
//! than spelled out as environment variables in every file.

use std::collections::HashMap;
use std::path::PathBuf;

use authmail::clock::Clock;
use authmail::config::Settings;

use super::app::{Runner, TestApp};
use super::db::TestDb;
use super::in_process::{Adjust, InProcess};
use super::process::Process;
use super::smtp::SmtpServer;
use super::turns::Turn;

/// The one admin token of the suite (at least 32 characters, as authmail
/// requires).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef01";

#[derive(Default)]
pub struct Builder {
    env: Vec<(String, String)>,
    admin: bool,
    exclusive: bool,
    process: bool,
    manual_clock: bool,
    stepped_worker: bool,
    adjust: Option<Adjust>,
    db: Option<TestDb>,
    sqlite_file: Option<PathBuf>,
}

impl Builder {
    /// One setting; a later one of the same name wins.
    pub fn env(mut self, name: &str, value: &str) -> Builder {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn envs(mut self, pairs: &[(&str, &str)]) -> Builder {
        self.env
            .extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// The admin API on, with `ADMIN_TOKEN` (`app.admin_token()`).
    pub fn admin(mut self) -> Builder {
        self.admin = true;
        self.env("ADMIN_TOKEN", ADMIN_TOKEN)
    }

    /// No resend cooldown and no hourly send limits, for tests that send many
    /// codes and are not about the limits. `.env` after it sets one back.
    pub fn no_limits(self) -> Builder {
        self.envs(&[
            ("RESEND_COOLDOWN_SECS", "0"),
            ("RATE_EMAIL_PER_HOUR", "0"),
            ("RATE_IP_PER_HOUR", "0"),
            ("RATE_GLOBAL_PER_HOUR", "0"),
        ])
    }

    /// Mail goes to `server`, with the security and login it was started with.
    pub fn smtp(self, server: &SmtpServer) -> Builder {
        let auth = server.auth();
        let auth = auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        self.smtp_as(server, server.security(), auth)
    }

    /// Mail goes to `server`, with the security and login given here.
    pub fn smtp_as(
        mut self,
        server: &SmtpServer,
        security: &str,
        auth: Option<(&str, &str)>,
    ) -> Builder {
        self.env.extend(smtp_env(server, security, auth));
        self
    }

    /// The app runs alone: for tests that measure time, memory or open files
    /// (see `turns.rs`).
    pub fn exclusive(mut self) -> Builder {
        self.exclusive = true;
        self
    }

    /// The real `authmail serve` process instead of the app built in this
    /// one: for tests whose subject is the process (its logs, exit status,
    /// `kill -9`, open files, memory) or the process-wide `/metrics`.
    pub fn process(mut self) -> Builder {
        self.process = true;
        self
    }

    /// A clock that stands still until the test moves it (`app.clock()`):
    /// for expiry, lock windows and retention without waiting or rewriting
    /// timestamps. In-process only.
    pub fn manual_clock(mut self) -> Builder {
        self.manual_clock = true;
        self
    }

    /// No outbox worker in the background: the test steps it with
    /// `app.deliver_due()`, so nothing races it for the queue. In-process only.
    pub fn stepped_worker(mut self) -> Builder {
        self.stepped_worker = true;
        self
    }

    /// A change to the settings no environment variable can make (the idle
    /// keep-alive time, say). In-process only.
    pub fn adjust(mut self, f: impl Fn(&mut Settings) + Send + Sync + 'static) -> Builder {
        self.adjust = Some(Box::new(f));
        self
    }

    /// On this database instead of the one the test run chose (several
    /// instances sharing one PostgreSQL database, say).
    pub fn db(mut self, db: TestDb) -> Builder {
        self.db = Some(db);
        self
    }

    /// On SQLite in this file, whatever backend the test run chose.
    pub fn sqlite_file(mut self, path: PathBuf) -> Builder {
        self.sqlite_file = Some(path);
        self
    }

    pub async fn start(self) -> TestApp {
        let turn = Turn::take(self.exclusive).await;
        let dir = tempfile::tempdir().unwrap();
        let db = match self.db {
            Some(db) => db,
            None => match self.sqlite_file {
                Some(path) => TestDb::sqlite(&path),
                None => TestDb::chosen(dir.path(), "authmail.db").await,
            },
        };
        // Test-friendly defaults first: a later setting of the same name wins.
        // No challenge unless a test asks (`CHALLENGE`): most tests send more
        // codes from one address than `CHALLENGE=auto` lets through.
        let settings = [
            ("DATABASE_URL", db.url().as_str()),
            ("RETRY_BASE_SECS", "1"),
            ("RETRY_MAX_SECS", "2"),
            ("CHALLENGE", "off"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(self.env)
        .collect::<HashMap<_, _>>();
        let runner = if self.process {
            assert!(
                !self.manual_clock && !self.stepped_worker && self.adjust.is_none(),
                "a clock or worker to drive needs the in-process app"
            );
            Runner::Process(Process::new(settings, dir.path()))
        } else {
            let clock = match self.manual_clock {
                true => Clock::manual(Clock::system().now()),
                false => Clock::system(),
            };
            Runner::InProcess(InProcess::new(
                settings,
                self.adjust,
                clock,
                !self.stepped_worker,
            ))
        };
        let token = self.admin.then_some(ADMIN_TOKEN);
        TestApp::start(db, dir, runner, token, turn).await
    }
}

/// Settings that point authmail at a test SMTP server started by the test.
pub fn smtp_env(
    smtp: &SmtpServer,
    security: &str,
    auth: Option<(&str, &str)>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("SMTP_SERVER".into(), "localhost".into()),
        ("SMTP_PORT".into(), smtp.port.to_string()),
        ("SMTP_SECURITY".into(), security.into()),
        ("SMTP_CA_FILE".into(), smtp.ca().display().to_string()),
        ("SMTP_FROM".into(), "noreply@authmail.test".into()),
        ("SMTP_TIMEOUT_SECS".into(), "3".into()),
    ];
    if let Some((user, password)) = auth {
        env.push(("SMTP_USER".into(), user.into()));
        env.push(("SMTP_PASSWORD".into(), password.into()));
    }
    env
}
