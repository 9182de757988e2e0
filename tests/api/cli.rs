//! The command line: bad settings stop start-up with one line naming the
//! setting, the env file, migrate, SIGTERM, dev mode.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::app::{bin, TestApp};
use crate::support::wait::{eventually, output_within};

/// Runs authmail to completion; one that is still running after 20 s (a
/// `serve` that should have refused to start) is killed and fails the test.
fn run(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run authmail");
    output_within(child, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("authmail {args:?} with {env:?} did not exit"))
}

#[test]
fn every_bad_setting_is_exit_2_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("pw");
    std::fs::write(&password_file, "from-file\n").unwrap();
    let pw = password_file.to_str().unwrap();
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("SMTP_PORT", &[("SMTP_PORT", "70000")]),
        ("SMTP_PORT", &[("SMTP_PORT", "abc")]),
        ("SMTP_SECURITY", &[("SMTP_SECURITY", "ssl3")]),
        ("SMTP_PROVIDER", &[("SMTP_PROVIDER", "aol")]),
        ("SMTP_TIMEOUT_SECS", &[("SMTP_TIMEOUT_SECS", "0")]),
        ("SMTP_TIMEOUT_SECS", &[("SMTP_TIMEOUT_SECS", "301")]),
        ("SMTP_POOL_SIZE", &[("SMTP_POOL_SIZE", "0")]),
        ("SMTP_CA_FILE", &[("SMTP_CA_FILE", "/no/such/ca.pem")]),
        (
            "SMTP_PASSWORD_FILE",
            &[("SMTP_PASSWORD_FILE", "/no/such/file")],
        ),
        (
            "SMTP_PASSWORD",
            &[
                ("SMTP_SERVER", "smtp.example.com"),
                ("SMTP_USER", "u@example.com"),
                ("SMTP_PASSWORD", "x"),
                ("SMTP_PASSWORD_FILE", pw),
            ],
        ),
        (
            "SMTP_SECURITY",
            &[
                ("SMTP_SERVER", "smtp.example.com"),
                ("SMTP_SECURITY", "none"),
                ("SMTP_USER", "u@example.com"),
                ("SMTP_PASSWORD", "x"),
            ],
        ),
        ("SMTP_FROM", &[("SMTP_SERVER", "smtp.example.com")]),
        (
            "SMTP_FROM",
            &[
                ("SMTP_SERVER", "smtp.example.com"),
                ("SMTP_FROM", "not an address"),
            ],
        ),
        (
            "SMTP_SERVER",
            &[
                ("SMTP_SERVER", "smtp://smtp.example.com:587"),
                ("SMTP_FROM", "a@example.com"),
            ],
        ),
        ("DATABASE_URL", &[("DATABASE_URL", "mysql://localhost/x")]),
        ("DATABASE_URL", &[("DATABASE_URL", "sqlite::memory:")]),
        ("BIND", &[("BIND", "localhost")]),
        ("PUBLIC_URL", &[("PUBLIC_URL", "not a url")]),
        ("SECRET_KEY", &[("SECRET_KEY", "short")]),
        ("CODE_TTL_SECS", &[("CODE_TTL_SECS", "29")]),
        ("CODE_TTL_SECS", &[("CODE_TTL_SECS", "86401")]),
        ("CODE_LENGTH", &[("CODE_LENGTH", "3")]),
        ("CODE_LENGTH", &[("CODE_LENGTH", "11")]),
        ("CODE_MAX_ATTEMPTS", &[("CODE_MAX_ATTEMPTS", "0")]),
        ("CODE_MAX_ATTEMPTS", &[("CODE_MAX_ATTEMPTS", "21")]),
        ("CODE_MAX_FAILURES", &[("CODE_MAX_FAILURES", "-1")]),
        ("RESEND_COOLDOWN_SECS", &[("RESEND_COOLDOWN_SECS", "soon")]),
        ("RATE_EMAIL_PER_HOUR", &[("RATE_EMAIL_PER_HOUR", "1.5")]),
        ("RATE_IP_PER_HOUR", &[("RATE_IP_PER_HOUR", "-3")]),
        ("TRUSTED_PROXIES", &[("TRUSTED_PROXIES", "10.0.0.0/33")]),
        ("SESSION_TTL_SECS", &[("SESSION_TTL_SECS", "0")]),
        ("JWT_TTL_SECS", &[("JWT_TTL_SECS", "59")]),
        ("JWT_TTL_SECS", &[("JWT_TTL_SECS", "86401")]),
        ("JWT_TTL_SECS", &[("JWT_TTL_SECS", "ten minutes")]),
        ("MAIL_LANG", &[("MAIL_LANG", "fr")]),
        ("TEMPLATES_DIR", &[("TEMPLATES_DIR", "/no/such/dir")]),
        ("RETRY_BASE_SECS", &[("RETRY_BASE_SECS", "0")]),
        (
            "RETRY_MAX_SECS",
            &[("RETRY_BASE_SECS", "10"), ("RETRY_MAX_SECS", "5")],
        ),
        ("ALERT_WEBHOOK_URL", &[("ALERT_WEBHOOK_URL", "ftp://x")]),
        ("ALERT_FAILURE_RATE", &[("ALERT_FAILURE_RATE", "1.5")]),
        ("ALERT_WINDOW_SECS", &[("ALERT_WINDOW_SECS", "0")]),
        ("ALERT_MIN_SAMPLES", &[("ALERT_MIN_SAMPLES", "many")]),
        ("LOG_FORMAT", &[("LOG_FORMAT", "xml")]),
        ("ADMIN_TOKEN", &[("ADMIN_TOKEN", "a")]),
        ("DEV_MAILBOX", &[("DEV_MAILBOX", "yes")]),
        ("CORS_ORIGINS", &[("CORS_ORIGINS", "*")]),
        (
            "CORS_ORIGINS",
            &[("CORS_ORIGINS", "https://app.example.com/app")],
        ),
        (
            "RETURN_TO_ORIGINS",
            &[("RETURN_TO_ORIGINS", "app.example.com")],
        ),
        // Dev mode on a public address would show every code to anyone.
        ("SMTP_SERVER", &[("BIND", "0.0.0.0:8080")]),
        ("SMTP_SERVER", &[("DEV_MAILBOX", "off")]),
        (
            "SMTP_PASSWORD",
            &[
                ("SMTP_SERVER", "smtp.example.com"),
                ("SMTP_USER", "u@example.com"),
            ],
        ),
    ];
    for (name, env) in cases {
        let out = run(dir.path(), &["serve"], env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{env:?} should stop start-up; stderr: {stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{env:?}: one line, got: {stderr}"
        );
        assert!(
            stderr.contains(name),
            "{env:?}: the line must name {name}: {stderr}"
        );
        assert!(!stderr.contains("from-file"), "never print a password");
    }
    assert!(
        !dir.path().join("authmail.db").exists(),
        "a bad setting touches nothing"
    );
}

#[test]
fn settings_errors_speak_the_cli_language_and_say_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = |args: &[&str], env: &[(&str, &str)]| {
        let out = run(dir.path(), args, env);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };
    let port = [("SMTP_PORT", "70000")];
    assert_eq!(
        stderr(&["--lang", "en", "migrate"], &port),
        "authmail: SMTP_PORT: 70000 is out of range (1–65535)"
    );
    // MAIL_LANG's default is zh-CN, and --lang wins over MAIL_LANG.
    assert_eq!(
        stderr(&["migrate"], &port),
        "authmail: SMTP_PORT: 70000 超出范围（1–65535）"
    );
    assert!(stderr(&["migrate"], &[("MAIL_LANG", "en"), port[0]]).contains("out of range"));
    assert!(stderr(
        &["migrate", "--lang", "zh-CN"],
        &[("MAIL_LANG", "en"), port[0]]
    )
    .contains("超出范围"));
}

#[test]
fn an_unknown_name_in_the_env_file_is_exit_2_with_the_nearest_setting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "SMTP_PROVIDR=qq
SMTP_USER=a@qq.com
",
    )
    .unwrap();
    let out = run(dir.path(), &["--lang", "en", "serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "authmail: SMTP_PROVIDR: not a setting (did you mean SMTP_PROVIDER?)"
    );
    assert!(!dir.path().join("authmail.db").exists());
}

#[tokio::test]
async fn an_unknown_name_in_the_environment_is_a_warning_at_start() {
    let app = TestApp::builder()
        .process()
        .envs(&[("SMTP_PROVIDR", "qq"), ("MAIL_LANG", "en")])
        .start()
        .await;
    let logs = app.logs();
    assert!(
        logs.contains("SMTP_PROVIDR: not a setting (did you mean SMTP_PROVIDER?)"),
        "{logs}"
    );
}

#[test]
fn outbox_on_a_database_that_does_not_exist_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["--lang", "en", "outbox"],
        &[("DATABASE_URL", "sqlite://typo.db")],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("typo.db does not exist"), "{stderr}");
    assert!(!dir.path().join("typo.db").exists(), "nothing created");
}

/// `serve` on a port of its own with `env`, for the tests that need a BIND
/// other than TestApp's; killed when dropped.
struct Served {
    child: std::process::Child,
    base: String,
    log: std::path::PathBuf,
}

impl Served {
    async fn start(dir: &std::path::Path, bind_ip: &str, env: &[(&str, &str)]) -> Served {
        let port = std::net::TcpListener::bind((bind_ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("serve.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin())
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("BIND", format!("{bind_ip}:{port}"))
            .envs(env.iter().copied())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        // In a mutex while polling, so that the check can ask whether it exited.
        let served = std::sync::Mutex::new(Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        });
        eventually(Duration::from_secs(30), || async {
            let base = served.lock().unwrap().base.clone();
            if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            let mut s = served.lock().unwrap();
            assert!(
                s.child.try_wait().unwrap().is_none(),
                "exited: {}",
                s.logs()
            );
            Err(format!("not ready: {}", s.logs()))
        })
        .await;
        served.into_inner().unwrap()
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn status(&self, path: &str) -> u16 {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn dev_mailbox_on_is_dev_mode_everywhere_with_a_warning_off_the_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let on = [("DEV_MAILBOX", "on"), ("MAIL_LANG", "en")];
    let public = Served::start(dir.path(), "0.0.0.0", &on).await;
    assert_eq!(public.status("/dev/mailbox.json").await, 200);
    assert!(
        public
            .logs()
            .contains("DEV_MAILBOX: on while the service is reachable"),
        "{}",
        public.logs()
    );
    drop(public);
    // With an SMTP server configured, `on` still never sends.
    let dir = tempfile::tempdir().unwrap();
    let mut env = on.to_vec();
    env.extend([
        ("SMTP_SERVER", "127.0.0.1"),
        ("SMTP_PORT", "9"),
        ("SMTP_FROM", "a@example.com"),
    ]);
    let local = Served::start(dir.path(), "127.0.0.1", &env).await;
    assert_eq!(local.status("/dev/mailbox.json").await, 200);
    assert!(
        local.logs().contains("mail is in dev mode"),
        "{}",
        local.logs()
    );
    assert!(
        !local.logs().contains("DEV_MAILBOX: on while"),
        "no warning on loopback"
    );
}

#[tokio::test]
async fn start_up_lines_name_the_bound_address_the_public_url_and_the_smtp_user() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        dir.path(),
        "127.0.0.1",
        &[
            ("PUBLIC_URL", "https://auth.example.com"),
            ("SMTP_SERVER", "127.0.0.1"),
            ("SMTP_PORT", "9"),
            ("SMTP_USER", "sender@example.com"),
            ("SMTP_PASSWORD", "start-up-secret"),
            ("MAIL_LANG", "en"),
        ],
    )
    .await;
    let logs = served.logs();
    let bound = served.base.trim_start_matches("http://");
    assert!(
        logs.contains(&format!(
            "authmail listening on {bound}, public address https://auth.example.com"
        )),
        "{logs}"
    );
    assert!(logs.contains("user sender@example.com"), "{logs}");
    assert!(!logs.contains("Some("), "{logs}");
    assert!(!logs.contains("start-up-secret"), "{logs}");
}

#[tokio::test]
async fn sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    // Its own SQLite file whichever database the suite runs on: the subject is the file.
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        dir.path(),
        "127.0.0.1",
        &[("DATABASE_URL", "sqlite://perm.db")],
    )
    .await;
    assert_eq!(served.status("/readyz").await, 200);
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.path().join(format!("perm.db{suffix}"));
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
}

#[test]
fn a_missing_env_file_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--env-file", "missing.env", "migrate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.env"));
}

#[test]
fn the_env_file_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "CODE_LENGTH=99\n").unwrap();
    // The default .env is read: its bad value stops start-up...
    let out = run(dir.path(), &["migrate"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("CODE_LENGTH"));
    // ...unless the environment overrides it.
    let out = run(dir.path(), &["migrate"], &[("CODE_LENGTH", "6")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A named env file, after the command.
    std::fs::write(
        dir.path().join("other.env"),
        "DATABASE_URL=sqlite://other.db\n",
    )
    .unwrap();
    let out = run(dir.path(), &["migrate", "--env-file", "other.env"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("other.db").exists());
}

#[test]
fn migrate_twice_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = run(dir.path(), &["migrate"], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(dir.path().join("authmail.db").exists());
}

#[test]
fn doctor_and_send_test_without_smtp_say_smtp_server_is_not_set() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["doctor"][..], &["send-test", "--to", "a@example.com"][..]] {
        let out = run(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("SMTP_SERVER"), "{args:?}: {all}");
    }
}

#[test]
fn help_on_each_command() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["serve", "doctor", "send-test", "migrate", "outbox"] {
        let out = run(dir.path(), &[cmd, "--help"], &[]);
        assert!(out.status.success(), "{cmd} --help");
        assert!(!out.stdout.is_empty());
    }
    let out = run(dir.path(), &["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--version` prints the name and Cargo's version, and reads no settings:
/// it answers even beside an env file that would stop start-up.
#[test]
fn version_prints_the_cargo_version() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "SMTP_PROVIDR=qq\n").unwrap();
    let out = run(dir.path(), &["--version"], &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("authmail {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn dev_mode_says_where_the_mailbox_is_and_sigterm_exits_cleanly() {
    let mut app = TestApp::builder().process().start().await;
    assert!(
        app.logs().contains("/dev/mailbox"),
        "start-up line names the mailbox: {}",
        app.logs()
    );
    assert_eq!(app.get("/dev/mailbox").await.status, 200);
    app.send_code("term@example.com", "register").await;
    let code = app
        .dev_code("term@example.com", Duration::from_secs(10))
        .await;
    assert!(
        app.logs().contains(&code),
        "in dev mode the log prints each code"
    );
    let status = app.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
}

#[tokio::test]
async fn with_smtp_configured_the_dev_mailbox_is_gone() {
    let app = TestApp::builder()
        .process()
        .envs(&[
            ("SMTP_SERVER", "127.0.0.1"),
            ("SMTP_PORT", "9"),
            ("SMTP_FROM", "a@example.com"),
        ])
        .start()
        .await;
    for path in ["/dev/mailbox", "/dev/mailbox.json"] {
        let r = app.get(path).await;
        assert_eq!((r.status, r.error_code()), (404, "not_found"), "{path}");
    }
}

/// `authmail doctor | head -1`: the reader goes after one line, and doctor
/// ends quietly (by SIGPIPE, as other tools do) instead of panicking.
#[test]
fn a_closed_pipe_ends_doctor_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    // A server that takes the connection and never greets: doctor waits out
    // SMTP_TIMEOUT_SECS, so its next line comes well after the reader is gone.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let mut child = Command::new(bin())
        .arg("doctor")
        .current_dir(dir.path())
        .env_clear()
        .envs([
            ("SMTP_SERVER", "127.0.0.1"),
            ("SMTP_PORT", port.as_str()),
            ("SMTP_FROM", "a@example.com"),
            ("SMTP_SECURITY", "none"),
            ("SMTP_TIMEOUT_SECS", "1"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run authmail");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // The reader is gone now; the next line doctor prints hits the closed pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc_sigpipe()),
        "{:?}",
        out.status
    );
}

fn libc_sigpipe() -> i32 {
    13 // SIGPIPE on Linux
}
