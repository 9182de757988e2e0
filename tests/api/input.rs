//! Hostile and malformed input: the contract's errors, no mail to an injected
//! address, and a server that keeps answering.

use std::time::Duration;

use crate::support::app::TestApp;
use crate::support::smtp::{Certs, Mode, SmtpOptions, SmtpServer};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_bad_input_batch() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(&certs, SmtpOptions::new(Mode::StartTls));
    let app = TestApp::builder().smtp(&smtp).start().await;

    let long = format!("{}@example.com", "a".repeat(255 - "@example.com".len()));
    assert_eq!(long.len(), 255);
    let bad_emails: Vec<Value> = vec![
        json!("victim@example.com\r\nBcc: evil@attacker.test"),
        json!("victim@example.com\nBcc: evil@attacker.test"),
        json!("victim@example.com,evil@attacker.test"),
        json!("Victim <victim@example.com>"),
        json!("evil@attacker.test\u{0}"),
        json!(long),
        json!(""),
        json!("no-at-sign"),
        json!("a@-bad-.example"),
        json!("ünicode@example.com"),
    ];
    for email in &bad_emails {
        let r = app
            .post(
                "/api/auth/send-code",
                json!({"email": email, "purpose": "register"}),
            )
            .await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "invalid_email"),
            "{email}: {}",
            r.raw
        );
    }

    let wrong_types = [
        json!({"email": ["victim@example.com", "evil@attacker.test"], "purpose": "register"}),
        json!({"email": {"address": "evil@attacker.test"}, "purpose": "register"}),
        json!({"email": 42, "purpose": "register"}),
        json!({"email": "victim@example.com", "purpose": 1}),
        json!({"purpose": "register"}),
        json!({"email": "victim@example.com"}),
        json!(["victim@example.com"]),
        json!("victim@example.com"),
        json!(null),
    ];
    for body in &wrong_types {
        let r = app.post("/api/auth/send-code", body.clone()).await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "invalid_request"),
            "{body}: {}",
            r.raw
        );
    }

    let r = app
        .post(
            "/api/auth/send-code",
            json!({"email": "x@example.com", "purpose": "admin"}),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_purpose"));
    let r = app
        .post(
            "/api/auth/send-code",
            json!({"email": "x@example.com", "purpose": "login", "lang": "fr"}),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_request"));

    let r = app
        .post_raw("/api/auth/send-code", Some("application/json"), "{not json")
        .await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_request"));
    let r = app
        .post_raw(
            "/api/auth/send-code",
            Some("text/plain"),
            r#"{"email":"x@example.com","purpose":"login"}"#,
        )
        .await;
    assert_eq!((r.status, r.error_code()), (415, "unsupported_media_type"));
    let r = app
        .post_raw(
            "/api/auth/send-code",
            None,
            r#"{"email":"x@example.com","purpose":"login"}"#,
        )
        .await;
    assert_eq!((r.status, r.error_code()), (415, "unsupported_media_type"));
    let big = format!(
        r#"{{"email":"x@example.com","purpose":"login","pad":"{}"}}"#,
        "x".repeat(65 * 1024)
    );
    let r = app
        .post_raw("/api/auth/send-code", Some("application/json"), big)
        .await;
    assert_eq!((r.status, r.error_code()), (413, "payload_too_large"));

    // Every error has the contract's shape.
    let r = app.get("/no/such/path").await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
    assert!(r.body["error"]["message"].is_string());
    let r = app.get("/api/auth/send-code").await;
    assert_eq!((r.status, r.error_code()), (405, "method_not_allowed"));
    let r = app
        .request(
            "GET",
            "/api/auth/me",
            None,
            &[("authorization", "Bearer nonsense")],
        )
        .await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    let r = app.get("/api/auth/me").await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));

    // Unknown fields are ignored; the server still answers and delivers.
    let r = app
        .post(
            "/api/auth/send-code",
            json!({"email": "marker@example.com", "purpose": "register", "extra": [1, 2]}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.raw);
    smtp.wait_for_mail("marker@example.com", WAIT).await;
    assert_eq!(
        smtp.rcpts(),
        vec!["marker@example.com".to_string()],
        "no mail to any injected address"
    );
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn an_internationalised_domain_is_stored_in_ascii() {
    let app = TestApp::builder().start().await;
    let r = app.send_code("User@Bücher.example", "register").await;
    assert_eq!(r.status, 202, "{}", r.raw);
    let code = app.dev_code("user@xn--bcher-kva.example", WAIT).await;
    let r = app
        .register("user@bücher.example", "password idn", &code)
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    assert_eq!(r.body["user"]["email"], "user@xn--bcher-kva.example");
}

#[tokio::test]
async fn other_endpoints_check_input_too() {
    let app = TestApp::builder().start().await;
    let cases = [
        (
            "/api/auth/register",
            json!({"email": "x@example.com", "password": "long enough", "code": 123456}),
        ),
        (
            "/api/auth/register",
            json!({"email": "x@example.com", "code": "123456"}),
        ),
        ("/api/auth/login", json!({"email": "x@example.com"})),
        (
            "/api/auth/login-code",
            json!({"email": "x@example.com", "code": null}),
        ),
        (
            "/api/auth/reset-password",
            json!({"email": "x@example.com", "code": "123456"}),
        ),
    ];
    for (path, body) in cases {
        let r = app.post(path, body.clone()).await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "invalid_request"),
            "{path} {body}: {}",
            r.raw
        );
    }
    let r = app
        .post(
            "/api/auth/register",
            json!({"email": "bad", "password": "long enough", "code": "123456"}),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_email"));
    let r = app
        .post(
            "/api/auth/login",
            json!({"email": "bad", "password": "long enough"}),
        )
        .await;
    assert_eq!(
        r.status, 401,
        "a malformed address cannot sign in: {}",
        r.raw
    );
    let r = app
        .post(
            "/api/auth/register",
            json!({"email": "x@example.com", "password": "x".repeat(1025), "code": "123456"}),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (400, "weak_password"));
}
