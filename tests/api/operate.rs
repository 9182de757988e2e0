//! What an operator sees while `serve` runs: the admin API, `authmail outbox`,
//! `/metrics` and the failure-rate webhook, each checked against mail that
//! really went through (or bounced off) a real SMTP server.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::app::{bin, Builder, TestApp};
use crate::support::receiver::{wait_alerts, webhook_receiver};
use crate::support::smtp::{Certs, Mode, SmtpOptions, SmtpServer};

const WAIT: Duration = Duration::from_secs(20);

fn bouncing_server(certs: &Certs) -> SmtpServer {
    let mut options = SmtpOptions::new(Mode::StartTls).auth("u@authmail.test", "pw");
    options.reject_rcpt = Some("bounce".into());
    SmtpServer::start(certs, options)
}

/// An app that mails through `smtp`, always logging in (some servers here
/// answer every login with 535).
fn app_for(smtp: &SmtpServer) -> Builder {
    TestApp::builder()
        .smtp_as(smtp, "starttls", Some(("u@authmail.test", "pw")))
        .admin()
}

async fn wait_status(app: &TestApp, to: &str, status: &str) -> Value {
    app.wait_outbox(to, |m| m["status"] == status, WAIT).await
}

/// The value of one Prometheus sample line (`name{labels} value`).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.rsplit_once(' ').is_some_and(|(name, _)| name == series))
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
}

/// `authmail outbox` against the running app's database.
async fn outbox_cli(app: &TestApp, args: &[&str]) -> String {
    let db = app.db.url();
    let out = tokio::process::Command::new(bin())
        .arg("outbox")
        .args(args)
        .current_dir(app.path())
        .env_clear()
        .env("DATABASE_URL", db)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("outbox exits")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn admin_api_needs_the_token_and_is_absent_without_one() {
    let app = TestApp::builder().start().await;
    let x = [("authorization", "Bearer x")];
    let r = app.request("GET", "/api/admin/stats", None, &x).await;
    assert_eq!(r.status, 404);
    assert_eq!(app.get("/api/admin/outbox").await.status, 404);

    let app = TestApp::builder().admin().start().await;
    for path in ["/api/admin/outbox", "/api/admin/stats"] {
        let r = app.get(path).await;
        assert_eq!((r.status, r.error_code()), (401, "unauthorized"), "{path}");
        let wrong = [("authorization", "Bearer wrong-token")];
        let r = app.request("GET", path, None, &wrong).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(app.admin(path).await.status, 200, "{path}");
    }
    for bad in ["limit=0", "limit=501", "limit=x", "status=lost"] {
        let r = app.admin(&format!("/api/admin/outbox?{bad}")).await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "invalid_request"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn outbox_stats_cli_and_metrics_match_what_happened() {
    let certs = Certs::generate();
    let smtp = bouncing_server(&certs);
    let app = app_for(&smtp)
        .process()
        .env("MAIL_LANG", "en")
        .start()
        .await;

    assert_eq!(
        app.send_code("good@example.com", "register").await.status,
        202
    );
    assert_eq!(
        app.send_code("bounce@example.com", "register").await.status,
        202
    );
    smtp.wait_for_mail("good@example.com", WAIT).await;
    let sent = wait_status(&app, "good@example.com", "sent").await;
    let failed = wait_status(&app, "bounce@example.com", "failed").await;

    // Admin outbox: the contract's fields, and the reply explained.
    assert_eq!(sent["purpose"], "register");
    assert_eq!(sent["attempts"], 1);
    assert!(
        sent["id"].is_string() && sent["created_at"].is_string() && sent["sent_at"].is_string()
    );
    assert!(sent["last_error"].is_null());
    assert!(failed["sent_at"].is_null());
    let err = failed["last_error"].as_str().unwrap();
    assert!(err.starts_with("550"), "raw reply first: {err}");
    assert!(
        err.contains("refused the recipient"),
        "explained in MAIL_LANG: {err}"
    );
    let r = app.admin("/api/admin/outbox?status=failed&limit=5").await;
    let only: Vec<&Value> = r.body["messages"].as_array().unwrap().iter().collect();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["to"], "bounce@example.com");
    assert!(
        !r.raw.contains(&smtp.mails_to("good@example.com")[0].code()),
        "never a code"
    );

    // Stats over the window.
    let s = app.admin("/api/admin/stats").await.body;
    assert_eq!(s["sent"], 1);
    assert_eq!(s["failed"], 1);
    assert_eq!(s["queued"], 0);
    assert_eq!(s["failure_rate"], 0.5);
    assert_eq!(s["window_secs"], 300);

    // The CLI, while serve runs: a table, and JSON lines equal to the API's objects.
    let table = outbox_cli(&app, &[]).await;
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATUS") && header.contains("LAST ERROR"),
        "{table}"
    );
    let col = header.find("STATUS").unwrap();
    for line in lines.clone() {
        assert!(
            matches!(&line[col..col + 4], "sent" | "fail"),
            "aligned:\n{table}"
        );
    }
    assert_eq!(lines.count(), 2, "{table}");
    let json_lines = outbox_cli(&app, &["--json", "--status", "sent"]).await;
    let objects: Vec<Value> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects, vec![sent.clone()]);

    // Metrics agree.
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let m = &r.raw;
    assert_eq!(sample(m, "authmail_mail_sent_total"), Some(1.0), "{m}");
    assert_eq!(
        sample(m, "authmail_mail_failed_total{class=\"rejected\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(m, "authmail_mail_failed_total{class=\"auth\"}"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(sample(m, "authmail_codes_issued_total"), Some(2.0), "{m}");
    assert_eq!(sample(m, "authmail_outbox_queued"), Some(0.0), "{m}");
    assert_eq!(
        sample(m, "authmail_http_requests_total{method=\"POST\",path=\"/api/auth/send-code\",status=\"202\"}"),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        sample(m, "authmail_mail_send_seconds_count{outcome=\"sent\"}"),
        Some(1.0),
        "{m}"
    );
    assert!(
        m.contains("authmail_mail_send_seconds_bucket{outcome=\"failed\",le=\"0.05\"}"),
        "{m}"
    );
}

#[tokio::test]
async fn failed_try_logs_one_line_with_masked_recipient_and_diagnosis() {
    let certs = Certs::generate();
    let mut options = SmtpOptions::new(Mode::StartTls);
    options.auth_fail = true;
    let smtp = SmtpServer::start(&certs, options);
    let app = app_for(&smtp)
        .process()
        .env("SMTP_PROVIDER", "qq")
        .start()
        .await;
    assert_eq!(
        app.send_code("alice@example.com", "register").await.status,
        202
    );
    let m = wait_status(&app, "alice@example.com", "failed").await;
    let err = m["last_error"].as_str().unwrap();
    assert!(
        err.starts_with("535") && err.contains("授权码"),
        "zh-CN by default: {err}"
    );

    let line: Value = app
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "delivery")
        .expect("a delivery log line");
    let f = &line["fields"];
    assert_eq!(f["to"], "al***@example.com");
    assert_eq!(f["outcome"], "failed");
    assert_eq!(f["class"], "auth");
    assert_eq!(f["reply_code"], "535");
    assert_eq!(f["attempt"], 1);
    assert!(f["message_id"].as_str().unwrap().contains('@'));
    assert!(f["latency_ms"].is_u64());
    assert!(
        f["diagnosis"].as_str().unwrap().contains("授权码"),
        "{line}"
    );
    assert!(
        !app.logs().contains("alice@example.com"),
        "recipient masked everywhere"
    );
    assert!(!app.logs().contains("\"pw\""), "never the password");

    let metrics = app.get("/metrics").await.raw;
    assert_eq!(
        sample(&metrics, "authmail_mail_failed_total{class=\"auth\"}"),
        Some(1.0)
    );
}

#[tokio::test]
async fn webhook_fires_once_per_crossing() {
    let certs = Certs::generate();
    let smtp = bouncing_server(&certs);
    let (url, got) = webhook_receiver().await;
    let app = app_for(&smtp)
        .envs(&[
            ("ALERT_WEBHOOK_URL", &url),
            ("ALERT_FAILURE_RATE", "0.5"),
            ("ALERT_MIN_SAMPLES", "2"),
        ])
        .start()
        .await;
    let send_all = |names: &'static [&'static str], status: &'static str| {
        let app = &app;
        async move {
            for name in names {
                let to = format!("{name}@example.com");
                assert_eq!(app.send_code(&to, "register").await.status, 202);
            }
            for name in names {
                wait_status(app, &format!("{name}@example.com"), status).await;
            }
        }
    };

    // 2 of 2 failed: rate 1.0 over 2 samples crosses 0.5 — one alert.
    send_all(&["bounce1", "bounce2"], "failed").await;
    let alerts = wait_alerts(&got, 1).await;
    assert_eq!(
        alerts[0],
        serde_json::json!({"event": "mail_failure_rate", "failure_rate": 1.0, "failed": 2,
                           "sent": 0, "window_secs": 300, "threshold": 0.5})
    );
    // Still above: no second alert. Then 3 of 7 (0.43): below, re-armed.
    send_all(&["bounce3"], "failed").await;
    send_all(&["ok1", "ok2", "ok3", "ok4"], "sent").await;
    // 4 of 8 (0.5): at the threshold again — the second alert, and it is this one.
    send_all(&["bounce4"], "failed").await;
    let alerts = wait_alerts(&got, 2).await;
    assert_eq!(alerts[1]["failed"], 4, "{alerts:?}");
    assert_eq!(alerts[1]["sent"], 4, "{alerts:?}");
    assert_eq!(alerts[1]["failure_rate"], 0.5);
    let stats = app.admin("/api/admin/stats").await.body;
    assert_eq!(
        (stats["sent"].as_i64(), stats["failed"].as_i64()),
        (Some(4), Some(4))
    );
    assert_eq!(got.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn openapi_describes_the_api() {
    let app = TestApp::builder().start().await;
    let r = app.get("/api/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/api/auth/send-code",
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/login-code",
        "/api/auth/reset-password",
        "/api/auth/me",
        "/api/auth/logout",
        "/api/auth/jwt",
        "/.well-known/jwks.json",
        "/api/admin/outbox",
        "/api/admin/stats",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} missing: {:?}", paths.keys());
    }
    let schemas = r.body["components"]["schemas"].as_object().unwrap();
    assert!(
        schemas.contains_key("OutboxMessage"),
        "{:?}",
        schemas.keys()
    );
    assert!(schemas["SendCodeBody"]["properties"]["purpose"].is_object());
}

#[tokio::test]
async fn a_webhook_that_never_answers_does_not_hold_up_delivery() {
    let certs = Certs::generate();
    let smtp = bouncing_server(&certs);
    // Accepts connections, reads nothing, answers nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            let _ = seen_tx.send(());
        }
    });
    let app = app_for(&smtp)
        .envs(&[
            ("ALERT_WEBHOOK_URL", &url),
            ("ALERT_MIN_SAMPLES", "1"),
            // One send at a time: a POST awaited in the delivery path would stall the next mail.
            ("SMTP_POOL_SIZE", "1"),
        ])
        .start()
        .await;
    assert_eq!(
        app.send_code("bounce@example.com", "register").await.status,
        202
    );
    wait_status(&app, "bounce@example.com", "failed").await;
    tokio::time::timeout(WAIT, seen.recv())
        .await
        .expect("the webhook was called");

    // The POST is still hanging (its timeout is 10 s); mail goes on regardless.
    let started = Instant::now();
    assert_eq!(
        app.send_code("ok@example.com", "register").await.status,
        202
    );
    smtp.wait_for_mail("ok@example.com", Duration::from_secs(5))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
}
