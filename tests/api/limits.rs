//! Send limits: cooldown, per-address and per-IP rolling hours, Retry-After,
//! and whose `X-Forwarded-For` is believed.

use crate::support::api::Reply;
use crate::support::app::TestApp;
use serde_json::json;

async fn send_from(app: &TestApp, email: &str, xff: Option<&str>) -> Reply {
    let body = json!({"email": email, "purpose": "register"});
    let headers: Vec<(&str, &str)> = xff.map(|v| ("x-forwarded-for", v)).into_iter().collect();
    app.request("POST", "/api/auth/send-code", Some(&body), &headers)
        .await
}

fn assert_limited(r: &Reply, max_wait: u64) {
    assert_eq!(
        (r.status, r.error_code()),
        (429, "rate_limited"),
        "{}",
        r.raw
    );
    let wait = r.retry_after().expect("Retry-After on a 429");
    assert!(
        (1..=max_wait).contains(&wait),
        "Retry-After {wait} not in 1..={max_wait}"
    );
}

#[tokio::test]
async fn cooldown_then_per_address_hour() {
    let app = TestApp::builder()
        .manual_clock()
        .envs(&[("RESEND_COOLDOWN_SECS", "60"), ("RATE_EMAIL_PER_HOUR", "2")])
        .start()
        .await;
    let first = app.send_code("kim@example.com", "register").await;
    assert_eq!(first.status, 202);
    assert_eq!(first.body, json!({"expires_in": 300, "resend_after": 60}));

    let r = app.send_code("KIM@example.com", "register").await;
    assert_limited(&r, 60);
    assert_eq!(r.retry_after(), Some(60), "the cooldown");
    // Both limits count per purpose: another purpose goes at once.
    assert_eq!(app.send_code("kim@example.com", "login").await.status, 202);
    app.clock().advance(60);
    assert_eq!(
        app.send_code("kim@example.com", "register").await.status,
        202
    );
    app.clock().advance(60);
    let r = app.send_code("kim@example.com", "register").await;
    assert_limited(&r, 3600);
    assert_eq!(
        r.retry_after(),
        Some(3600 - 120),
        "the hourly window, not the cooldown: until the first leaves it"
    );
    // 429s do not count: another address is unaffected and this one stays at 2.
    assert_eq!(
        app.send_code("lee@example.com", "register").await.status,
        202
    );
    app.clock().advance(3600 - 120);
    assert_eq!(
        app.send_code("kim@example.com", "register").await.status,
        202
    );
}

#[tokio::test]
async fn per_ip_hour_ignores_forwarded_for_from_untrusted_peers() {
    let app = TestApp::builder()
        .env("RATE_IP_PER_HOUR", "3")
        .start()
        .await;
    for i in 0..3 {
        // A rotating X-Forwarded-For from a peer nobody trusts changes nothing.
        let r = send_from(
            &app,
            &format!("ip{i}@example.com"),
            Some(&format!("203.0.113.{i}")),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.raw);
    }
    let r = send_from(&app, "ip9@example.com", Some("198.51.100.77")).await;
    assert_limited(&r, 3600);
}

#[tokio::test]
async fn trusted_proxies_pass_on_the_right_most_untrusted_hop() {
    let app = TestApp::builder()
        .envs(&[
            ("RATE_IP_PER_HOUR", "2"),
            ("TRUSTED_PROXIES", "127.0.0.0/8, 10.0.0.0/8"),
        ])
        .start()
        .await;
    // Client 203.0.113.5 via an inner proxy 10.1.2.3; a spoofed left-most hop is ignored.
    for (i, xff) in ["1.1.1.1, 203.0.113.5, 10.1.2.3", "2.2.2.2, 203.0.113.5"]
        .iter()
        .enumerate()
    {
        let r = send_from(&app, &format!("px{i}@example.com"), Some(xff)).await;
        assert_eq!(r.status, 202, "{}", r.raw);
    }
    let r = send_from(&app, "px3@example.com", Some("9.9.9.9, 203.0.113.5")).await;
    assert_limited(&r, 3600);
    // A different client behind the same proxy has its own budget.
    assert_eq!(
        send_from(&app, "px4@example.com", Some("203.0.113.6"))
            .await
            .status,
        202
    );
}

#[tokio::test]
async fn zero_disables_a_limit() {
    let app = TestApp::builder().no_limits().start().await;
    for _ in 0..40 {
        let r = app.send_code("zed@example.com", "register").await;
        assert_eq!(r.status, 202, "{}", r.raw);
        assert_eq!(r.body["resend_after"], 0);
    }
}
