//! User-event webhooks, checked from the receiving end: a local receiver
//! verifies every delivery with the `standardwebhooks` package (not
//! authmail's code), refuses the first ones, and the tests look at what it
//! got; a receiver that never answers holds up no code mail; bad settings
//! stop start-up; and the secret never shows anywhere an operator looks.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authmail::mail::outbox::Outcome;
use serde_json::{json, Value};

use crate::support::app::{bin, TestApp};
use crate::support::wait::output_within;
use crate::support::webhooks::{WebhookReceiver, SECRET};

const WAIT: Duration = Duration::from_secs(20);

fn with_webhook(builder: crate::support::app::Builder, url: &str) -> crate::support::app::Builder {
    builder.envs(&[("WEBHOOK_URL", url), ("WEBHOOK_SECRET", SECRET)])
}

/// Registers `email` with the mail worker stepped by hand; the new user.
async fn register_stepped(app: &TestApp, email: &str, password: &str) -> Value {
    assert_eq!(app.send_code(email, "register").await.status, 202);
    assert_eq!(app.deliver_due().await, Outcome::Delivered(1));
    let code = app.dev_code(email, WAIT).await;
    let r = app.register(email, password, &code).await;
    assert_eq!(r.status, 201, "{}", r.raw);
    r.body["user"].clone()
}

/// The webhook rows of the admin outbox, newest first.
async fn webhook_rows(app: &TestApp) -> Vec<Value> {
    let r = app.admin("/api/admin/outbox?limit=500").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let rows = r.body["messages"].as_array().unwrap().iter();
    rows.filter(|m| m["purpose"] == "webhook")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_refused_event_is_retried_with_the_same_id_until_the_receiver_takes_it() {
    let receiver = WebhookReceiver::start(SECRET, 2);
    let app = with_webhook(TestApp::builder(), &receiver.url())
        .admin()
        .manual_clock()
        .stepped_worker()
        .start()
        .await;
    let changed_at = authmail::clock::rfc3339(app.clock().now());
    let user = register_stepped(&app, "hana@example.com", "a good password").await;
    assert_eq!(user["email"], "hana@example.com");

    // The first try is refused: the event waits for its backoff, the reply kept.
    assert_eq!(app.deliver_webhooks().await, Outcome::Delivered(1));
    let rows = webhook_rows(&app).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["to"], receiver.url().as_str());
    assert_eq!(
        (&rows[0]["status"], &rows[0]["attempts"]),
        (&json!("queued"), &json!(1))
    );
    let error = rows[0]["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("HTTP 500") && error.contains("receiver down for the test"),
        "{error}"
    );
    assert_eq!(app.deliver_webhooks().await, Outcome::Idle, "not due yet");

    // Two more tries, each after its backoff (RETRY_MAX_SECS is 2 here).
    for _ in 0..2 {
        app.clock().advance(3);
        assert_eq!(app.deliver_webhooks().await, Outcome::Delivered(1));
    }
    let rows = webhook_rows(&app).await;
    assert_eq!(
        (&rows[0]["status"], &rows[0]["attempts"]),
        (&json!("sent"), &json!(3))
    );
    assert!(rows[0]["sent_at"].is_string());
    app.clock().advance(60);
    assert_eq!(app.deliver_webhooks().await, Outcome::Idle, "sent once");

    let got = receiver.deliveries();
    let answered: Vec<&Value> = got.iter().map(|d| &d["status"]).collect();
    assert_eq!(answered, [&json!(500), &json!(500), &json!(204)], "{got:?}");
    for d in &got {
        assert_eq!(d["verified"], true, "standardwebhooks rejected it: {d}");
        assert_eq!(d["id"], got[0]["id"], "one webhook-id across retries");
        assert_eq!(d["content_type"], "application/json");
        let body: Value = serde_json::from_str(d["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"type": "user.created", "timestamp": changed_at, "data": {"user": user}})
        );
    }
    assert!(got[0]["id"].as_str().unwrap().starts_with("msg_"));
    let stamps: Vec<i64> = (got.iter())
        .map(|d| d["timestamp"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        stamps[0] < stamps[1] && stamps[1] < stamps[2],
        "each try is signed at its own time: {stamps:?}"
    );

    // Events are not mail: the mail numbers never saw them.
    let stats = app.admin("/api/admin/stats").await.body;
    assert_eq!(
        (&stats["sent"], &stats["failed"], &stats["queued"]),
        (&json!(0), &json!(0), &json!(0))
    );
    // A register that changes nothing (the code is used up) reports nothing.
    let r = app
        .register("hana@example.com", "another password", "000000")
        .await;
    assert_eq!(r.status, 400, "{}", r.raw);
    assert_eq!(webhook_rows(&app).await.len(), 1);
}

#[tokio::test]
async fn a_password_reset_reports_password_changed_for_the_same_user() {
    let receiver = WebhookReceiver::start(SECRET, 0);
    let app = with_webhook(TestApp::builder(), &receiver.url())
        .admin()
        .no_limits()
        .start()
        .await;
    let email = "rei@example.com";
    app.register_via_dev_mailbox(email, "the first password")
        .await;
    let user = app.login(email, "the first password").await.body["user"].clone();
    assert_eq!(app.send_code(email, "reset_password").await.status, 202);
    let mails = app.wait_dev_mails(email, 2).await;
    let code = mails[1]["code"].as_str().unwrap();
    let r = app.reset_password(email, code, "the second password").await;
    assert_eq!(r.status, 200, "{}", r.raw);

    let got = receiver.wait_deliveries(2, WAIT).await;
    let mut events: Vec<Value> = (got.iter())
        .inspect(|d| assert_eq!(d["verified"], true, "{d}"))
        .map(|d| serde_json::from_str(d["body"].as_str().unwrap()).unwrap())
        .collect();
    // Events are not ordered (several are in flight at once); each has its time.
    events.sort_by_key(|e| e["type"].as_str().unwrap().to_string());
    let types: Vec<&Value> = events.iter().map(|e| &e["type"]).collect();
    assert_eq!(
        types,
        [&json!("user.created"), &json!("user.password_changed")]
    );
    for e in &events {
        assert_eq!(e["data"]["user"], user, "{e}");
    }
    assert_ne!(got[0]["id"], got[1]["id"], "one webhook-id per event");
    app.wait_outbox(&receiver.url(), |m| m["status"] == "sent", WAIT)
        .await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_holds_up_no_code_mail() {
    let receiver = WebhookReceiver::silent();
    let app = with_webhook(TestApp::builder(), &receiver.url())
        .admin()
        .no_limits()
        .start()
        .await;
    // More sign-ups than the webhook worker has connections: every one of
    // them hangs on the receiver for the whole try (10 s).
    let started = Instant::now();
    for i in 0..6 {
        let email = format!("user{i}@example.com");
        app.register_via_dev_mailbox(&email, "a good password")
            .await;
    }
    receiver.wait_deliveries(4, WAIT).await;
    // The code mails of the sign-ups and this one went out meanwhile.
    assert_eq!(app.send_code("late@example.com", "login").await.status, 202);
    app.wait_dev_mails("late@example.com", 1).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "mail waited for the webhook receiver: {took:?}"
    );

    // A try that gets no answer is retried like a refused one.
    let hung = app
        .wait_outbox(
            &receiver.url(),
            |m| {
                m["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("no answer within 10 s"))
            },
            WAIT,
        )
        .await;
    assert_ne!(hung["status"], "failed", "{hung}");
}

/// `authmail serve` with `env` only; it must refuse to start.
fn refused(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(bin())
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(child, WAIT).expect("authmail refused to start within 20 s");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{env:?}: one line: {stderr}"
    );
    assert!(!dir.path().join("authmail.db").exists(), "nothing touched");
    stderr
}

#[test]
fn a_missing_or_malformed_secret_stops_start_up_with_one_line_naming_it() {
    let url = ("WEBHOOK_URL", "https://hooks.example.com/authmail");
    let line = refused(&[url]);
    assert!(
        line.contains("WEBHOOK_SECRET") && line.contains("whsec_"),
        "{line}"
    );
    for malformed in [
        "whsec_dG9vLXNob3J0LWtleQ==",                     // 14 bytes
        "q8Tf2bq5W0NoZ1r3c4ux7lJ9mYkE6vH0sD2gA5pXc1o=",   // no whsec_
        "whsec_q8Tf2bq5W0NoZ1r3c4ux7lJ9mYkE6vH0sD2gA5p!", // not base64
    ] {
        let line = refused(&[url, ("WEBHOOK_SECRET", malformed)]);
        assert!(line.contains("WEBHOOK_SECRET"), "{line}");
        let body = malformed.trim_start_matches("whsec_");
        assert!(
            !line.contains(&body[..12]),
            "the secret is never repeated: {line}"
        );
    }
    let line = refused(&[
        ("WEBHOOK_URL", "ftp://hooks.example.com/x"),
        ("WEBHOOK_SECRET", SECRET),
    ]);
    assert!(line.contains("WEBHOOK_URL"), "{line}");
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    let line = metrics.lines().find(|l| l.starts_with(series))?;
    line.rsplit(' ').next()?.parse().ok()
}

/// An attacker with the operator's views (logs at debug, `outbox`, the
/// admin API, `/metrics`) finds neither the secret nor the URL's password,
/// and webhook tries count in their own metrics, not the mail's.
#[tokio::test]
async fn the_secret_never_reaches_any_output() {
    const URL_PASSWORD: &str = "Hook-pw-9x7Q";
    let receiver = WebhookReceiver::start(SECRET, 1);
    let url = receiver
        .url()
        .replace("http://", &format!("http://hooks:{URL_PASSWORD}@"));
    let shown = receiver.url().replace("http://", "http://hooks:***@");
    let mut app = with_webhook(TestApp::builder(), &url)
        .process()
        .admin()
        .env("RUST_LOG", "debug")
        .start()
        .await;
    app.register_via_dev_mailbox("kai@example.com", "a good password")
        .await;
    let got = receiver.wait_deliveries(2, WAIT).await;
    assert!(got.iter().all(|d| d["verified"] == true), "{got:?}");
    // The URL's user and password go as HTTP Basic authentication.
    assert!(got[0]["authorization"]
        .as_str()
        .unwrap()
        .starts_with("Basic "));
    let row = app
        .wait_outbox(&shown, |m| m["status"] == "sent", WAIT)
        .await;
    assert_eq!(row["attempts"], 2, "{row}");

    let mut seen = String::new();
    for path in [
        "/api/admin/outbox?limit=500",
        "/api/admin/stats",
        "/metrics",
    ] {
        let r = app.admin(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.raw);
        seen.push_str(&r.raw);
    }
    let metrics = app.get("/metrics").await.raw;
    let tries = "authmail_webhook_tries_total{outcome=";
    assert_eq!(
        sample(&metrics, &format!("{tries}\"failed\"}}")),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, &format!("{tries}\"sent\"}}")),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "authmail_webhooks_queued"), Some(0.0));
    assert_eq!(sample(&metrics, "authmail_mail_sent_total"), Some(0.0));
    assert!(
        !metrics.contains("authmail_mail_failed_total{class=\"rejected\"} 1"),
        "a refused event is no failed mail: {metrics}"
    );
    let env = [("WEBHOOK_URL", url.as_str()), ("WEBHOOK_SECRET", SECRET)]
        .map(|(k, v)| (k.to_string(), v.to_string()));
    let table = app.cli(&env, &["outbox"]);
    assert!(
        table.contains("webhook") && table.contains(&shown),
        "{table}"
    );
    seen.push_str(&table);
    let lines = app.cli(&env, &["outbox", "--json"]);
    assert!(lines.contains(r#""purpose":"webhook""#), "{lines}");
    seen.push_str(&lines);
    assert!(app.terminate().success());
    let logs = app.logs();
    assert!(
        logs.contains("\"webhook\""),
        "the tries were logged: {logs}"
    );
    seen.push_str(&logs);

    let key = SECRET.trim_start_matches("whsec_");
    let mut secrets = vec![
        ("the secret", SECRET.to_string()),
        ("part of the secret", key[..16].to_string()),
        ("the URL's password", URL_PASSWORD.to_string()),
    ];
    secrets.extend(got.iter().map(|d| {
        (
            "a signature",
            d["signature"].as_str().unwrap()[3..].to_string(),
        )
    }));
    let found: Vec<String> = (secrets.iter())
        .filter(|(_, s)| seen.contains(s.as_str()))
        .map(|(what, s)| format!("{what} ({s})"))
        .collect();
    assert!(found.is_empty(), "leaked: {found:?}");
}
