//! Delivery over real SMTP servers: STARTTLS with AUTH, implicit TLS, a 535,
//! a 451 that clears, a crash with the server down, and line-end hygiene.

use std::time::Duration;

use authmail::mail::outbox::Outcome;
use serde_json::json;

use crate::support::app::TestApp;
use crate::support::smtp::{Certs, Mode, SmtpOptions, SmtpServer};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn starttls_with_auth_delivers_a_multipart_code_mail() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(
        &certs,
        SmtpOptions::new(Mode::StartTls).auth("sender@authmail.test", "s3cret-pw"),
    );
    let app = TestApp::builder().smtp(&smtp).admin().start().await;

    let r = app.send_code("Alice@Example.COM", "register").await;
    assert_eq!(r.status, 202, "{}", r.raw);

    let mail = smtp.wait_for_mail("alice@example.com", WAIT).await;
    assert_eq!(mail.mail_from, "noreply@authmail.test");
    let code = mail.code();
    assert_eq!(code.len(), 6);
    assert!(
        mail.html.contains(&code),
        "the code must be in the HTML part too"
    );
    assert!(mail.header("message-id").is_some_and(|id| id.contains('@')));
    assert!(mail.header("date").is_some());
    assert!(mail
        .header("content-type")
        .unwrap()
        .starts_with("multipart/alternative"));
    assert!(!mail.bare_lf, "every line must end in CRLF");
    // Default language is zh-CN.
    assert!(mail.subject.contains("验证码"), "subject: {}", mail.subject);

    let m = app
        .wait_outbox("alice@example.com", |m| m["status"] == "sent", WAIT)
        .await;
    assert_eq!(m["attempts"], 1);
    assert!(m["sent_at"].is_string());
    assert!(m["last_error"].is_null());

    let r = app
        .register("alice@example.com", "correct horse", &code)
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
}

#[tokio::test]
async fn implicit_tls_delivers_in_english() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(
        &certs,
        SmtpOptions::new(Mode::Tls).auth("u@authmail.test", "pw-tls"),
    );
    let app = TestApp::builder().smtp(&smtp).admin().start().await;

    let r = app
        .request(
            "POST",
            "/api/auth/send-code",
            Some(&serde_json::json!({"email": "bob@example.com", "purpose": "register"})),
            &[("accept-language", "en-US,en;q=0.9")],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.raw);
    let mail = smtp.wait_for_mail("bob@example.com", WAIT).await;
    assert!(
        mail.subject.to_lowercase().contains("code"),
        "subject: {}",
        mail.subject
    );
    assert!(mail.text.contains(&mail.code()));
}

#[tokio::test]
async fn a_535_fails_at_once_with_the_reply_kept() {
    let certs = Certs::generate();
    let mut options = SmtpOptions::new(Mode::StartTls);
    options.auth_fail = true;
    let smtp = SmtpServer::start(&certs, options);
    let app = TestApp::builder()
        .smtp_as(&smtp, "starttls", Some(("u@authmail.test", "wrong-pw")))
        .admin()
        .start()
        .await;

    assert_eq!(
        app.send_code("carol@example.com", "register").await.status,
        202
    );
    let m = app
        .wait_outbox("carol@example.com", |m| m["status"] == "failed", WAIT)
        .await;
    assert_eq!(m["attempts"], 1, "a permanent failure must not be retried");
    let err = m["last_error"].as_str().unwrap();
    assert!(err.contains("535"), "last_error: {err}");
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn a_451_is_retried_and_then_sent() {
    let certs = Certs::generate();
    let mut options = SmtpOptions::new(Mode::StartTls);
    options.tempfail = 1;
    let smtp = SmtpServer::start(&certs, options);
    // The worker stepped by hand on a still clock: each try is one step.
    let app = TestApp::builder()
        .smtp(&smtp)
        .admin()
        .manual_clock()
        .stepped_worker()
        .start()
        .await;

    assert_eq!(
        app.send_code("dave@example.com", "register").await.status,
        202
    );
    assert_eq!(app.deliver_due().await, Outcome::Delivered(1));
    let m = app.wait_outbox("dave@example.com", |_| true, WAIT).await;
    assert_eq!(
        (&m["status"], &m["attempts"]),
        (&json!("queued"), &json!(1))
    );
    assert!(m["last_error"].as_str().unwrap().contains("451"), "{m}");
    // Not before its backoff (RETRY_BASE_SECS=1 with jitter, at most 2 s)...
    assert_eq!(app.deliver_due().await, Outcome::Idle);
    app.clock().advance(2);
    // ...and then it goes.
    assert_eq!(app.deliver_due().await, Outcome::Delivered(1));
    let m = app.wait_outbox("dave@example.com", |_| true, WAIT).await;
    assert_eq!((&m["status"], &m["attempts"]), (&json!("sent"), &json!(2)));
    let mail = smtp.wait_for_mail("dave@example.com", WAIT).await;
    assert_eq!(mail.code().len(), 6);
}

#[tokio::test]
async fn a_message_accepted_before_kill_9_is_delivered_after_restart() {
    let certs = Certs::generate();
    let port = crate::support::smtp::free_port();
    // Nothing listens on `port` yet: the first tries fail to connect.
    let ca = certs.ca().display().to_string();
    let mut app = TestApp::builder()
        .process()
        .admin()
        .envs(&[
            ("SMTP_SERVER", "localhost"),
            ("SMTP_PORT", &port.to_string()),
            ("SMTP_SECURITY", "starttls"),
            ("SMTP_CA_FILE", &ca),
            ("SMTP_FROM", "noreply@authmail.test"),
            ("SMTP_TIMEOUT_SECS", "2"),
        ])
        .start()
        .await;

    assert_eq!(
        app.send_code("erin@example.com", "register").await.status,
        202
    );
    app.kill9();

    let smtp = SmtpServer::start_on_port(&certs, SmtpOptions::new(Mode::StartTls), port);
    app.restart().await;
    let mail = smtp.wait_for_mail("erin@example.com", WAIT).await;
    let r = app
        .register("erin@example.com", "password-after-crash", &mail.code())
        .await;
    assert_eq!(
        r.status, 201,
        "the code mailed after the crash must work: {}",
        r.raw
    );
    assert_eq!(smtp.mails_to("erin@example.com").len(), 1);
}

#[tokio::test]
async fn a_template_with_bare_lf_and_a_lone_dot_goes_out_whole() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(&certs, SmtpOptions::new(Mode::StartTls));
    let templates = tempfile::tempdir().unwrap();
    let dir = templates.path().join("en");
    std::fs::create_dir_all(&dir).unwrap();
    // A lone "." on a bare-LF line would end DATA early if it reached the
    // server unstuffed: the rest would be a smuggled second message.
    std::fs::write(
        dir.join("code.txt"),
        "Your code: {{ code }}\n.\nMAIL FROM:<evil@x>\nafter the dot\n",
    )
    .unwrap();
    let app = TestApp::builder()
        .smtp(&smtp)
        .admin()
        .env("TEMPLATES_DIR", &templates.path().display().to_string())
        .env("MAIL_LANG", "en")
        .start()
        .await;

    assert_eq!(
        app.send_code("frank@example.com", "register").await.status,
        202
    );
    let mail = smtp.wait_for_mail("frank@example.com", WAIT).await;
    assert!(
        !mail.bare_lf,
        "a bare LF reached the server:\n{:?}",
        mail.data
    );
    assert!(
        mail.text.contains("\n.\n") || mail.text.contains("\r\n.\r\n"),
        "the dot line is kept: {:?}",
        mail.text
    );
    assert!(
        mail.text.contains("after the dot"),
        "the text after the dot is part of the same message"
    );
    assert_eq!(
        smtp.messages().len(),
        1,
        "exactly one message, nothing smuggled"
    );
}

#[tokio::test]
async fn the_smtp_password_never_reaches_any_output() {
    const PASSWORD: &str = "Zq9-distinctive-授权码-pw";
    let certs = Certs::generate();
    let smtp = SmtpServer::start(
        &certs,
        SmtpOptions::new(Mode::StartTls).auth("pw@authmail.test", PASSWORD),
    );
    let mut app = TestApp::builder()
        .process()
        .smtp(&smtp)
        .admin()
        .start()
        .await;

    assert_eq!(
        app.send_code("gina@example.com", "register").await.status,
        202
    );
    smtp.wait_for_mail("gina@example.com", WAIT).await;
    let mut seen = String::new();
    for path in [
        "/api/admin/outbox",
        "/api/admin/stats",
        "/healthz",
        "/readyz",
    ] {
        seen.push_str(&app.admin(path).await.raw);
    }
    assert!(app.terminate().success());
    seen.push_str(&app.logs());
    assert!(!seen.is_empty());
    assert!(!seen.contains(PASSWORD), "the SMTP password leaked");
    assert!(
        !seen.contains("Zq9-distinctive"),
        "part of the SMTP password leaked"
    );
}

#[tokio::test]
async fn a_code_mail_stops_retrying_when_its_code_expires() {
    let certs = Certs::generate();
    let port = crate::support::smtp::free_port(); // nothing listens: every try fails to connect
    let ca = certs.ca().display().to_string();
    let app = TestApp::builder()
        .manual_clock()
        .admin()
        .envs(&[
            ("CODE_TTL_SECS", "60"),
            ("SMTP_SERVER", "localhost"),
            ("SMTP_SECURITY", "starttls"),
            ("SMTP_FROM", "noreply@authmail.test"),
            ("SMTP_TIMEOUT_SECS", "2"),
            ("SMTP_PORT", &port.to_string()),
            ("SMTP_CA_FILE", &ca),
        ])
        .start()
        .await;

    assert_eq!(
        app.send_code("hal@example.com", "register").await.status,
        202
    );
    let m = app
        .wait_outbox("hal@example.com", |m| m["last_error"].is_string(), WAIT)
        .await;
    assert_eq!(
        m["status"], "queued",
        "a refused connection is retried: {m}"
    );
    // Time passes: the code (and so its mail) expires.
    app.clock().advance(60);
    let m = app
        .wait_outbox("hal@example.com", |m| m["status"] == "failed", WAIT)
        .await;
    assert!(
        m["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "the last reply is kept: {m}"
    );
    assert!(m["attempts"].as_i64().unwrap() >= 1);
}

#[tokio::test]
async fn a_550_recipient_fails_and_other_mail_keeps_flowing() {
    let certs = Certs::generate();
    let mut options = SmtpOptions::new(Mode::StartTls);
    options.reject_rcpt = Some("bounce".into());
    let smtp = SmtpServer::start(&certs, options);
    let app = TestApp::builder().smtp(&smtp).admin().start().await;

    assert_eq!(
        app.send_code("bounce@example.com", "register").await.status,
        202
    );
    assert_eq!(
        app.send_code("fine@example.com", "register").await.status,
        202
    );
    let m = app
        .wait_outbox("bounce@example.com", |m| m["status"] == "failed", WAIT)
        .await;
    assert!(m["last_error"].as_str().unwrap().contains("550"), "{m}");
    assert_eq!(m["attempts"], 1);
    smtp.wait_for_mail("fine@example.com", WAIT).await;
}
