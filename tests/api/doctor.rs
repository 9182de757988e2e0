//! `authmail doctor` and `send-test` against real SMTP servers: a good
//! STARTTLS + AUTH server, implicit TLS, a 535, a closed port, a server that
//! never greets, a certificate for another name, and more; each diagnosis is
//! checked in both languages, with the exit code.

use std::time::Duration;

use crate::support::app::{bin, smtp_env};
use crate::support::smtp::{free_port, Certs, Mode, SmtpOptions, SmtpServer};

const USER: &str = "sender@authmail.test";
const PASSWORD: &str = "pw-Never-Printed-7431";
const WAIT: Duration = Duration::from_secs(20);

struct Run {
    code: i32,
    out: String,
}

/// Runs authmail to its end in a fresh directory (no stray `.env`).
async fn authmail(dir: &std::path::Path, args: &[&str], env: &[(String, String)]) -> Run {
    let child = tokio::process::Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("db.sqlite").display()),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), child)
        .await
        .unwrap_or_else(|_| panic!("authmail {args:?} did not exit within 30 s"))
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !out.contains(PASSWORD),
        "the password must never be printed:\n{out}"
    );
    Run {
        code: output.status.code().unwrap_or(-1),
        out,
    }
}

/// Runs doctor in zh-CN (the default) and en; returns both outputs.
async fn doctor_both(env: &[(String, String)]) -> (Run, Run) {
    let dir = tempfile::tempdir().unwrap();
    let zh = authmail(dir.path(), &["doctor"], env).await;
    let en = authmail(dir.path(), &["doctor", "--lang", "en"], env).await;
    (zh, en)
}

fn env(
    smtp_port: u16,
    certs: &Certs,
    security: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = vec![
        ("SMTP_SERVER".to_string(), "localhost".to_string()),
        ("SMTP_PORT".into(), smtp_port.to_string()),
        ("SMTP_SECURITY".into(), security.into()),
        ("SMTP_CA_FILE".into(), certs.ca().display().to_string()),
        ("SMTP_TIMEOUT_SECS".into(), "2".into()),
        ("SMTP_USER".into(), USER.into()),
        ("SMTP_PASSWORD".into(), PASSWORD.into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

fn assert_has(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(run.code, code, "exit code; output:\n{}", run.out);
    for n in needles {
        assert!(run.out.contains(n), "{n:?} missing from:\n{}", run.out);
    }
}

#[tokio::test]
async fn good_starttls_server_passes_every_step() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(
        &certs,
        SmtpOptions::new(Mode::StartTls).auth(USER, PASSWORD),
    );
    let (zh, en) = doctor_both(&env(smtp.port, &certs, "starttls", &[])).await;
    for step in [
        "DNS",
        "TCP",
        "EHLO",
        "STARTTLS",
        "AUTH",
        "MAIL FROM",
        "RCPT TO",
        "QUIT",
    ] {
        assert!(
            en.out.lines().any(|l| l.starts_with(&format!("✓ {step}"))),
            "no ✓ line for {step}:\n{}",
            en.out
        );
    }
    assert_has(
        &en,
        0,
        &[
            "SMTP_PASSWORD set (21 characters)",
            "issuer",
            "235",
            "all steps passed",
        ],
    );
    assert_has(&zh, 0, &["已设置（21 个字符）", "签发者", "全部通过"]);
    assert!(!en.out.contains('✗'), "{}", en.out);
    assert!(smtp.messages().is_empty(), "doctor must not send mail");
}

#[tokio::test]
async fn good_implicit_tls_server_shows_the_certificate() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(&certs, SmtpOptions::new(Mode::Tls).auth(USER, PASSWORD));
    let (zh, en) = doctor_both(&env(smtp.port, &certs, "tls", &[])).await;
    assert_has(&en, 0, &["✓ TLS", "names localhost", "expires", "✓ AUTH"]);
    assert_has(&zh, 0, &["✓ TLS", "到期", "全部通过"]);
}

#[tokio::test]
async fn auth_failure_with_qq_asks_for_the_authorisation_code() {
    let certs = Certs::generate();
    let mut options = SmtpOptions::new(Mode::Tls);
    options.auth_fail = true;
    let smtp = SmtpServer::start(&certs, options);
    let (zh, en) = doctor_both(&env(smtp.port, &certs, "tls", &[("SMTP_PROVIDER", "qq")])).await;
    assert_has(
        &zh,
        1,
        &["✗ AUTH", "535", "授权码", "设置 → 账户", "生成授权码"],
    );
    assert_has(
        &en,
        1,
        &["✗ AUTH", "535", "authorisation code", "POP3/SMTP"],
    );

    // Without a provider: check user and password; Gmail: an app password.
    let (zh, en) = doctor_both(&env(smtp.port, &certs, "tls", &[])).await;
    assert_has(&zh, 1, &["SMTP_USER", "SMTP_PASSWORD", "开启 SMTP"]);
    assert_has(&en, 1, &["check SMTP_USER and SMTP_PASSWORD"]);
    let (_, en) = doctor_both(&env(
        smtp.port,
        &certs,
        "tls",
        &[("SMTP_PROVIDER", "gmail")],
    ))
    .await;
    assert_has(&en, 1, &["app password"]);
}

#[tokio::test]
async fn closed_port_is_refused_and_the_other_port_suggested() {
    let certs = Certs::generate();
    let port = free_port();
    let (zh, en) = doctor_both(&env(port, &certs, "starttls", &[])).await;
    assert_has(
        &en,
        1,
        &["✗ TCP", "refused", "SMTP_PORT=465", "SMTP_SECURITY=tls"],
    );
    assert_has(&zh, 1, &["✗ TCP", "被拒绝", "SMTP_PORT=465"]);
}

#[tokio::test]
async fn silent_server_greeting_never_came() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(&certs, SmtpOptions::new(Mode::Silent));
    let (zh, en) = doctor_both(&env(smtp.port, &certs, "starttls", &[])).await;
    assert_has(
        &en,
        1,
        &[
            "✓ TCP",
            "✗ EHLO",
            "timed out",
            "sent no greeting within 2 s",
            "SMTP_SECURITY=tls",
        ],
    );
    assert_has(&zh, 1, &["没有发来问候"]);
}

#[tokio::test]
async fn certificate_for_another_name_names_it_and_its_issuer() {
    let certs = Certs::generate();
    let mut options = SmtpOptions::new(Mode::Tls).auth(USER, PASSWORD);
    options.use_other_cert = true;
    let smtp = SmtpServer::start(&certs, options);
    let (zh, en) = doctor_both(&env(smtp.port, &certs, "tls", &[])).await;
    assert_has(
        &en,
        1,
        &[
            "✗ TLS",
            "certificate",
            "wrong.example",
            "issuer",
            "Testing CA",
            "SMTP_CA_FILE",
        ],
    );
    assert_has(&zh, 1, &["证书", "wrong.example", "签发者", "SMTP_CA_FILE"]);

    // The same over STARTTLS.
    let mut options = SmtpOptions::new(Mode::StartTls).auth(USER, PASSWORD);
    options.use_other_cert = true;
    let smtp = SmtpServer::start(&certs, options);
    let (_, en) = doctor_both(&env(smtp.port, &certs, "starttls", &[])).await;
    assert_has(&en, 1, &["✗ STARTTLS", "wrong.example", "SMTP_CA_FILE"]);
}

#[tokio::test]
async fn tls_on_a_starttls_port_is_a_security_mismatch() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(
        &certs,
        SmtpOptions::new(Mode::StartTls).auth(USER, PASSWORD),
    );
    let (zh, en) = doctor_both(&env(smtp.port, &certs, "tls", &[])).await;
    assert_has(
        &en,
        1,
        &["✗ TLS", "does not match the port", "SMTP_SECURITY=starttls"],
    );
    assert_has(&zh, 1, &["不匹配"]);
}

#[tokio::test]
async fn starttls_not_offered_and_auth_only_after_tls() {
    let certs = Certs::generate();
    let plain = SmtpServer::start(&certs, SmtpOptions::new(Mode::Plain).auth(USER, PASSWORD));
    let (zh, en) = doctor_both(&env(plain.port, &certs, "starttls", &[])).await;
    assert_has(&en, 1, &["✗ STARTTLS", "does not offer STARTTLS", "465"]);
    assert_has(&zh, 1, &["不提供 STARTTLS"]);

    let starttls = SmtpServer::start(
        &certs,
        SmtpOptions::new(Mode::StartTls).auth(USER, PASSWORD),
    );
    let (zh, en) = doctor_both(&env(starttls.port, &certs, "none", &[])).await;
    assert_has(
        &en,
        1,
        &["✗ AUTH", "only after TLS", "SMTP_SECURITY=starttls"],
    );
    assert_has(&zh, 1, &["TLS 加密之后"]);
}

#[tokio::test]
async fn refused_sender_says_smtp_from_must_be_smtp_user() {
    let certs = Certs::generate();
    let mut options = SmtpOptions::new(Mode::StartTls).auth(USER, PASSWORD);
    options.reject_sender = Some("other@".into());
    let smtp = SmtpServer::start(&certs, options);
    let env = env(
        smtp.port,
        &certs,
        "starttls",
        &[("SMTP_FROM", "other@authmail.test")],
    );
    let (zh, en) = doctor_both(&env).await;
    assert_has(
        &en,
        1,
        &[
            "✓ AUTH",
            "✗ MAIL FROM",
            "553",
            "SMTP_FROM equal to SMTP_USER",
        ],
    );
    assert_has(&zh, 1, &["SMTP_FROM 等于 SMTP_USER"]);
}

#[tokio::test]
async fn env_file_readable_by_others_or_tracked_by_git_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let certs = Certs::generate();
    let smtp = SmtpServer::start(
        &certs,
        SmtpOptions::new(Mode::StartTls).auth(USER, PASSWORD),
    );
    let dir = tempfile::tempdir().unwrap();
    let env_text: String = env(smtp.port, &certs, "starttls", &[])
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    let path = dir.path().join(".env");
    std::fs::write(&path, env_text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = authmail(dir.path(), &["doctor", "--lang", "en"], &[]).await;
    assert_has(&run, 0, &["! .env is readable by other users", "chmod 600"]);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let run = authmail(dir.path(), &["doctor", "--lang", "en"], &[]).await;
    assert_has(&run, 0, &[]);
    assert!(
        !run.out.contains("! "),
        "no warning for a private file:\n{}",
        run.out
    );
    if git(&["init", "-q"]) && git(&["add", ".env"]) {
        let run = authmail(dir.path(), &["doctor"], &[]).await;
        assert_has(&run, 0, &["已被 git 跟踪", "git rm --cached"]);
    }
}

#[tokio::test]
async fn send_test_delivers_and_prints_the_final_reply() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(
        &certs,
        SmtpOptions::new(Mode::StartTls).auth(USER, PASSWORD),
    );
    let env = smtp_env(&smtp, "starttls", Some((USER, PASSWORD)));
    let dir = tempfile::tempdir().unwrap();
    let run = authmail(
        dir.path(),
        &["send-test", "--to", "Ops@Example.com", "--lang", "en"],
        &env,
    )
    .await;
    assert_has(&run, 0, &["✓ 250", "Message accepted for delivery"]);
    let mail = smtp.wait_for_mail("ops@example.com", WAIT).await;
    assert_eq!(mail.mail_from, "noreply@authmail.test");
    assert!(!mail.subject.is_empty());
}

#[tokio::test]
async fn send_test_failure_is_diagnosed_and_exit_1() {
    let certs = Certs::generate();
    let mut options = SmtpOptions::new(Mode::Tls);
    options.auth_fail = true;
    let smtp = SmtpServer::start(&certs, options);
    let env = env(smtp.port, &certs, "tls", &[("SMTP_PROVIDER", "163")]);
    let dir = tempfile::tempdir().unwrap();
    let zh = authmail(dir.path(), &["send-test", "--to", "a@example.com"], &env).await;
    assert_has(&zh, 1, &["✗ 535", "授权码", "163"]);
    let en = authmail(
        dir.path(),
        &["send-test", "--to", "a@example.com", "--lang", "en"],
        &env,
    )
    .await;
    assert_has(&en, 1, &["✗ 535", "authorisation code"]);
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn relay_without_login_passes_when_it_accepts_mail_from() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(&certs, SmtpOptions::new(Mode::StartTls));
    let mut env = env(
        smtp.port,
        &certs,
        "starttls",
        &[("SMTP_FROM", "relay@authmail.test")],
    );
    env.retain(|(k, _)| k != "SMTP_USER" && k != "SMTP_PASSWORD");
    let (zh, en) = doctor_both(&env).await;
    assert_has(
        &en,
        0,
        &[
            "✓ AUTH",
            "skipped",
            "✓ MAIL FROM <relay@authmail.test>: 250",
        ],
    );
    assert_has(&zh, 0, &["跳过", "全部通过"]);
}
