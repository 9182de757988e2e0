//! Nobody can make authmail mail strangers without end: the global send cap
//! (and its alert), per-purpose buckets, and limits that count an inbox's
//! aliases as one mailbox. Each case comes with the one that must still pass.

use serde_json::json;

use crate::support::api::Reply;
use crate::support::app::TestApp;
use crate::support::db::TestDb;
use crate::support::receiver::{wait_alerts, webhook_receiver};

/// A send-code as if from `ip`, through the trusted proxy in front.
async fn send_from(app: &TestApp, email: &str, purpose: &str, ip: &str) -> Reply {
    let body = json!({"email": email, "purpose": purpose});
    let from = [("x-forwarded-for", ip)];
    app.request("POST", "/api/auth/send-code", Some(&body), &from)
        .await
}

fn answer(r: &Reply) -> (u16, &str) {
    (r.status, r.error_code())
}

#[tokio::test]
async fn the_global_cap_refuses_past_its_count_and_alerts_once_per_crossing() {
    let (hook, alerts) = webhook_receiver().await;
    let app = TestApp::builder()
        .manual_clock()
        .envs(&[
            ("RATE_GLOBAL_PER_HOUR", "5"),
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
            ("ALERT_WEBHOOK_URL", &hook),
        ])
        .start()
        .await;
    // Five strangers from five networks fill the cap; nothing else limits them.
    for i in 0..5 {
        let r = send_from(
            &app,
            &format!("s{i}@example.com"),
            "register",
            &format!("198.51.{i}.7"),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.raw);
    }
    let first = wait_alerts(&alerts, 1).await;
    assert_eq!(
        first[0],
        json!({"event": "send_rate_cap", "limit": 5, "window_secs": 3600})
    );
    // Past the cap: any address, any network, any purpose.
    for (i, purpose) in ["register", "login", "reset_password"].iter().enumerate() {
        let r = send_from(
            &app,
            &format!("t{i}@example.com"),
            purpose,
            &format!("203.0.{i}.9"),
        )
        .await;
        assert_eq!(answer(&r), (429, "rate_limited"), "{}", r.raw);
        assert_eq!(
            r.retry_after(),
            Some(3600),
            "until the oldest leaves the hour"
        );
    }
    assert_eq!(
        app.db.int("SELECT COUNT(*) FROM outbox").await,
        5,
        "a refused request mails nobody"
    );
    // An hour on, the window has emptied: five more, and a second crossing.
    app.clock().advance(3600);
    for i in 0..5 {
        let r = send_from(
            &app,
            &format!("u{i}@example.com"),
            "register",
            &format!("192.0.2.{i}"),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.raw);
    }
    let r = send_from(&app, "late@example.com", "register", "192.0.2.200").await;
    assert_eq!(answer(&r), (429, "rate_limited"));
    let both = wait_alerts(&alerts, 2).await;
    assert_eq!(
        both.len(),
        2,
        "one alert per crossing, not per refusal: {both:?}"
    );
}

/// Two instances on one PostgreSQL database: the cap is one count.
#[tokio::test]
async fn multi_instance_global_cap_holds_exactly_across_instances() {
    let db = TestDb::postgres().await;
    let (hook, alerts) = webhook_receiver().await;
    let instance = || {
        TestApp::builder()
            .db(TestDb::at(&db.url()))
            .envs(&[
                ("RATE_GLOBAL_PER_HOUR", "20"),
                ("TRUSTED_PROXIES", "127.0.0.1/32"),
                ("ALERT_WEBHOOK_URL", &hook),
            ])
            .start()
    };
    let (a, b) = (instance().await, instance().await);
    let sends = (0..60).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        async move {
            let (email, ip) = (format!("m{i}@example.com"), format!("10.{i}.0.1"));
            send_from(app, &email, "register", &ip).await
        }
    });
    let replies = futures_util::future::join_all(sends).await;
    let accepted = replies.iter().filter(|r| r.status == 202).count();
    let refused = replies
        .iter()
        .filter(|r| answer(r) == (429, "rate_limited"))
        .count();
    println!(
        "global cap across two instances: {accepted} accepted, {refused} refused of 60 (cap 20)"
    );
    assert_eq!((accepted, refused), (20, 40));
    assert_eq!(a.db.int("SELECT COUNT(*) FROM outbox").await, 20);
    let got = wait_alerts(&alerts, 1).await;
    assert_eq!(
        got.len(),
        1,
        "one crossing, one alert, whichever instance saw it"
    );
}

#[tokio::test]
async fn one_purpose_cannot_use_up_another() {
    let app = TestApp::builder()
        .envs(&[("RATE_EMAIL_PER_HOUR", "2"), ("RESEND_COOLDOWN_SECS", "60")])
        .start()
        .await;
    let victim = "victim@example.com";
    app.register_via_dev_mailbox(victim, "the right password")
        .await;
    // An attacker asks for login codes until refused...
    assert_eq!(app.send_code(victim, "login").await.status, 202);
    let r = app.send_code(victim, "login").await;
    assert_eq!(answer(&r), (429, "rate_limited"), "the login cooldown");
    // ...and the victim's reset still goes out.
    let r = app.send_code(victim, "reset_password").await;
    assert_eq!(r.status, 202, "{}", r.raw);
}

#[tokio::test]
async fn the_hourly_limit_counts_per_purpose() {
    let app = TestApp::builder()
        .envs(&[("RATE_EMAIL_PER_HOUR", "2"), ("RESEND_COOLDOWN_SECS", "0")])
        .start()
        .await;
    let who = "pat@example.com";
    for _ in 0..2 {
        assert_eq!(app.send_code(who, "login").await.status, 202);
    }
    assert_eq!(
        answer(&app.send_code(who, "login").await),
        (429, "rate_limited")
    );
    for _ in 0..2 {
        assert_eq!(app.send_code(who, "register").await.status, 202);
    }
    assert_eq!(
        answer(&app.send_code(who, "register").await),
        (429, "rate_limited")
    );
}

#[tokio::test]
async fn aliases_of_one_inbox_share_its_limit_and_other_inboxes_do_not() {
    let app = TestApp::builder()
        .envs(&[("RATE_EMAIL_PER_HOUR", "2"), ("RESEND_COOLDOWN_SECS", "0")])
        .start()
        .await;
    let send = |email: &'static str| app.send_code(email, "register");
    // Plus tags: one inbox.
    assert_eq!(send("ann+1@example.com").await.status, 202);
    assert_eq!(send("ann+2@example.com").await.status, 202);
    assert_eq!(
        answer(&send("ann+3@example.com").await),
        (429, "rate_limited")
    );
    assert_eq!(
        answer(&send("ann@example.com").await),
        (429, "rate_limited")
    );
    // Gmail: dots and googlemail.com fold too.
    assert_eq!(send("bo.b@gmail.com").await.status, 202);
    assert_eq!(send("bob@googlemail.com").await.status, 202);
    assert_eq!(
        answer(&send("b.o.b+x@gmail.com").await),
        (429, "rate_limited")
    );
    // Other inboxes keep their own allowance: dots count off Gmail.
    for other in [
        "a.nn@example.com",
        "anne@example.com",
        "ann@example.org",
        "bo.b@qq.com",
    ] {
        assert_eq!(send(other).await.status, 202, "{other}");
    }
    // Mail still goes to the address as typed.
    let mails = app.wait_dev_mails("ann+2@example.com", 1).await;
    assert_eq!(mails[0]["to"], "ann+2@example.com");
}

#[tokio::test]
async fn the_cooldown_covers_an_inboxs_aliases() {
    let app = TestApp::builder()
        .env("RESEND_COOLDOWN_SECS", "60")
        .start()
        .await;
    assert_eq!(
        app.send_code("cy+a@example.com", "register").await.status,
        202
    );
    let r = app.send_code("cy+b@example.com", "register").await;
    assert_eq!(answer(&r), (429, "rate_limited"));
    assert!(r.retry_after().is_some_and(|s| (59..=60).contains(&s)));
    assert_eq!(
        app.send_code("cyd@example.com", "register").await.status,
        202
    );
}
