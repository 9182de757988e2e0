//! The SMTP fault matrix: every way a server can fail, each classified right
//! (retried or failed at once), the reply kept, and the other messages still
//! flowing through the same pool.

use std::time::Duration;

use crate::support::app::{Builder, TestApp};
use crate::support::smtp::{free_port, Certs, Mode, SmtpOptions, SmtpServer};
use crate::support::wait::eventually;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// An app that mails through the server at `smtp_port`.
fn app_for(smtp_port: u16, certs: &Certs, security: &str, timeout: &str) -> Builder {
    TestApp::builder().admin().no_limits().envs(&[
        ("SMTP_SERVER", "localhost"),
        ("SMTP_PORT", &smtp_port.to_string()),
        ("SMTP_SECURITY", security),
        ("SMTP_CA_FILE", &certs.ca().display().to_string()),
        ("SMTP_FROM", "noreply@authmail.test"),
        ("SMTP_TIMEOUT_SECS", timeout),
    ])
}

async fn outbox(app: &TestApp) -> Vec<Value> {
    let r = app.admin("/api/admin/outbox?limit=500").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    r.body["messages"].as_array().unwrap().clone()
}

/// (recipient, fault, expected final status, text the kept reply must contain)
const MATRIX: &[(&str, &str, &str, &str)] = &[
    (
        "t421@example.com",
        "t421:rcpt:1:421 4.7.0 Try again later",
        "sent",
        "421",
    ),
    (
        "t450@example.com",
        "t450:rcpt:1:450 4.2.1 Mailbox busy",
        "sent",
        "450",
    ),
    (
        "t451@example.com",
        "t451:data:1:451 4.3.0 Local problem",
        "sent",
        "451",
    ),
    (
        "t452@example.com",
        "t452:rcpt:1:452 4.2.2 Mailbox full",
        "sent",
        "452",
    ),
    ("tmid@example.com", "tmid:drop-mid:1:", "sent", ""),
    ("tdot@example.com", "tdot:drop-data:1:", "sent", ""),
    (
        "p550@example.com",
        "p550:rcpt:0:550 5.1.1 No such user here",
        "failed",
        "550 5.1.1 No such user here",
    ),
    (
        "p554@example.com",
        "p554:data:0:554 DT:SPM content rejected",
        "failed",
        "554 DT:SPM content rejected",
    ),
    (
        "p553@example.com",
        "p553:rcpt:0:553 5.7.1 Sender not allowed",
        "failed",
        "553",
    ),
];

#[tokio::test]
async fn every_reply_is_classified_and_other_mail_keeps_flowing() {
    let certs = Certs::generate();
    let mut options = SmtpOptions::new(Mode::StartTls);
    options.faults = MATRIX.iter().map(|m| m.1.to_string()).collect();
    let smtp = SmtpServer::start(&certs, options);
    let app = app_for(smtp.port, &certs, "starttls", "3").start().await;

    let fine: Vec<String> = (0..MATRIX.len())
        .map(|i| format!("fine{i}@example.com"))
        .collect();
    for ((to, ..), ok) in MATRIX.iter().zip(&fine) {
        assert_eq!(app.send_code(to, "register").await.status, 202);
        assert_eq!(app.send_code(ok, "register").await.status, 202);
    }
    let messages = eventually(WAIT, || async {
        let messages = outbox(&app).await;
        let fin = |m: &Value| m["status"] == "sent" || m["status"] == "failed";
        match messages.iter().all(fin) {
            true => Ok(messages),
            false => Err(format!("not every message is final: {messages:#?}")),
        }
    })
    .await;
    let by_to = |to: &str| -> Value {
        messages
            .iter()
            .find(|m| m["to"] == to)
            .cloned()
            .unwrap_or_else(|| panic!("no message to {to}"))
    };
    for (to, fault, status, reply) in MATRIX {
        let m = by_to(to);
        let attempts = m["attempts"].as_i64().unwrap();
        let last_error = m["last_error"].as_str().unwrap_or("");
        let at_server = smtp.mails_to(to).len();
        println!(
            "fault {fault:<45} -> {:<6} attempts {attempts} mails at the server {at_server} last_error {last_error:?}",
            m["status"].as_str().unwrap()
        );
        assert_eq!(m["status"], *status, "{fault}: {m}");
        assert!(!last_error.is_empty(), "{fault}: the reply is kept: {m}");
        assert!(last_error.contains(reply), "{fault}: {last_error}");
        if *status == "failed" {
            assert_eq!(attempts, 1, "{fault}: a permanent failure is not retried");
            assert_eq!(at_server, 0);
        } else {
            assert_eq!(attempts, 2, "{fault}: one retry, then sent");
            // Dropped after the final dot: the server had it, so the retry is
            // the one allowed duplicate; every other fault delivers once.
            let expected = if to.starts_with("tdot") { 2 } else { 1 };
            assert_eq!(at_server, expected, "{fault}");
        }
    }
    for to in &fine {
        let m = by_to(to);
        assert_eq!(m["status"], "sent", "{m}");
        assert_eq!(m["attempts"], 1, "a healthy message is never held up: {m}");
        assert_eq!(smtp.mails_to(to).len(), 1, "{to}");
    }
}

/// Polls until the message to `to` has a kept error; it must still be queued.
async fn wait_retrying(app: &TestApp, to: &str) -> Value {
    let m = app
        .wait_outbox(to, |m| m["last_error"].is_string(), WAIT)
        .await;
    assert_eq!(m["status"], "queued", "retried, not failed: {m}");
    m
}

#[tokio::test]
async fn connection_faults_are_retried_with_the_reason_kept() {
    let certs = Certs::generate();
    let silent = SmtpServer::start(&certs, SmtpOptions::new(Mode::Silent));
    let plain = SmtpServer::start(&certs, SmtpOptions::new(Mode::Plain));
    let tls = SmtpServer::start(&certs, SmtpOptions::new(Mode::Tls));
    let mut other = SmtpOptions::new(Mode::StartTls);
    other.use_other_cert = true;
    let wrong_name = SmtpServer::start(&certs, other);
    let refused = free_port();
    let cases: [(&str, u16, &str, &[&str]); 5] = [
        ("connection refused", refused, "starttls", &["refused"]),
        (
            "greeting never sent",
            silent.port,
            "starttls",
            &["timed out", "timeout"],
        ),
        (
            "TLS handshake with a clear-text server",
            plain.port,
            "tls",
            &[
                "corrupt message",
                "InvalidContentType",
                "handshake",
                "wrong version",
            ],
        ),
        (
            "STARTTLS against implicit TLS",
            tls.port,
            "starttls",
            &["timed out", "timeout", "response", "connection", "parse"],
        ),
        (
            "certificate for another name",
            wrong_name.port,
            "starttls",
            &["certificate", "Certificate", "name", "NotValidForName"],
        ),
    ];
    for (label, port, security, words) in cases {
        let app = app_for(port, &certs, security, "1").start().await;
        assert_eq!(app.send_code("x@example.com", "register").await.status, 202);
        let m = wait_retrying(&app, "x@example.com").await;
        let err = m["last_error"].as_str().unwrap();
        println!("{label:<40} -> queued for retry, last_error {err:?}");
        assert!(
            words.iter().any(|w| err.contains(w)),
            "{label}: the reason is named: {err}"
        );
    }
}

#[tokio::test]
async fn a_server_closing_idle_pooled_connections_stops_nothing() {
    let certs = Certs::generate();
    let mut options = SmtpOptions::new(Mode::StartTls);
    options.idle_timeout = Some(1.5);
    let smtp = SmtpServer::start(&certs, options);
    let app = app_for(smtp.port, &certs, "starttls", "3").start().await;

    for round in 0..3 {
        let to = format!("idle{round}@example.com");
        assert_eq!(app.send_code(&to, "register").await.status, 202);
        smtp.wait_for_mail(&to, WAIT).await;
        let m = app.wait_outbox(&to, |m| m["status"] == "sent", WAIT).await;
        assert_eq!(
            m["attempts"], 1,
            "the closed pooled connection cost no retry: {m}"
        );
        // The server now drops the idle pooled connection.
        eventually(WAIT, || async {
            match smtp.events().len() > round {
                true => Ok(()),
                false => Err("the server never closed the idle connection"),
            }
        })
        .await;
    }
    println!(
        "idle pooled connections closed by the server: {}, mails delivered at the first try: 3",
        smtp.events().len()
    );
}
