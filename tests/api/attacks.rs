//! Attacks, with figures: brute force over a simulated day, enumeration by
//! timing, and attempts to slip past the send limits. Each test prints what it
//! measured (run with `--nocapture` to see it) and asserts the bound.

use std::time::Duration;

use crate::support::db::TestDb;
use crate::support::wait::eventually;
use crate::support::{api::Reply, app::TestApp};
use rand::Rng;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// Polls until the dev mailbox holds `n` mails to `to`; returns the newest code.
async fn nth_dev_code(app: &TestApp, db: &TestDb, to: &str, n: i64) -> String {
    let sql = format!("SELECT COUNT(*) FROM dev_mailbox WHERE recipient = '{to}'");
    eventually(WAIT, || async {
        match db.int(&sql).await >= n {
            true => Ok(()),
            false => Err(format!("mail #{n} to {to} never came")),
        }
    })
    .await;
    app.dev_code(to, WAIT).await
}

/// A 6-digit guess that is not `right` (so no guess can win by luck and the
/// count of evaluated guesses is exact).
fn wrong_guess(right: &str) -> String {
    loop {
        let g = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000));
        if g != right {
            return g;
        }
    }
}

struct Day {
    accepted_sends: usize,
    locked_sends: usize,
    guesses_sent: usize,
    invalid_answers: usize,
    /// Wrong guesses compared against a live code, per code.
    evaluated_per_code: Vec<i64>,
    first_lock_after: Option<i64>,
}

impl Day {
    fn evaluated(&self) -> i64 {
        self.evaluated_per_code.iter().sum()
    }

    /// The chance that an attacker guessing distinct values wins at least once.
    fn success_probability(&self) -> f64 {
        let space = 1e6;
        1.0 - self
            .evaluated_per_code
            .iter()
            .map(|&k| 1.0 - k as f64 / space)
            .product::<f64>()
    }
}

/// 120 slots of 12 simulated minutes: each asks for a login code (the per-address
/// limit allows 5 an hour) and guesses until the service stops evaluating.
async fn attack_for_a_day(app: &TestApp, victim: &str) -> Day {
    let mut day = Day {
        accepted_sends: 0,
        locked_sends: 0,
        guesses_sent: 0,
        invalid_answers: 0,
        evaluated_per_code: Vec::new(),
        first_lock_after: None,
    };
    let db = &app.db;
    let mut mails = 1; // the registration code
    let failures_sql = format!("SELECT count FROM failures WHERE email = '{victim}'");
    let locked_sql = format!(
        "SELECT COUNT(*) FROM failures WHERE email = '{victim}' AND locked_until IS NOT NULL"
    );
    for _slot in 0..120 {
        let r = app.send_code(victim, "login").await;
        match (r.status, r.error_code()) {
            (202, _) => {
                day.accepted_sends += 1;
                mails += 1;
                let right = nth_dev_code(app, db, victim, mails).await;
                let before = db.int(&failures_sql).await;
                for _ in 0..10 {
                    day.guesses_sent += 1;
                    let g = app.login_code(victim, &wrong_guess(&right)).await;
                    match (g.status, g.error_code()) {
                        (400, "invalid_code") => day.invalid_answers += 1,
                        (429, "too_many_attempts") => break,
                        other => panic!("guess answered {other:?}: {}", g.raw),
                    }
                }
                let after = db.int(&failures_sql).await;
                day.evaluated_per_code.push(after - before);
                if day.first_lock_after.is_none() && db.int(&locked_sql).await > 0 {
                    day.first_lock_after = Some(after);
                }
            }
            (429, "too_many_attempts") => {
                day.locked_sends += 1;
                assert!(
                    r.retry_after().is_some_and(|s| s > 0),
                    "Retry-After on a lock"
                );
                // Guessing on is refused too, and nothing is compared.
                let g = app.login_code(victim, "123456").await;
                assert_eq!((g.status, g.error_code()), (429, "too_many_attempts"));
            }
            (429, "rate_limited") => {}
            other => panic!("send-code answered {other:?}: {}", r.raw),
        }
        app.clock().advance(720);
    }
    day
}

fn print_day(label: &str, day: &Day) {
    println!(
        "brute force [{label}]: {} codes issued, {} sends refused by the lock, {} guesses sent, \
         {} wrong guesses evaluated (invalid_code answers {}), lock after {:?}; \
         attacker's success probability over the day = {:.3e}",
        day.accepted_sends,
        day.locked_sends,
        day.guesses_sent,
        day.evaluated(),
        day.invalid_answers,
        day.first_lock_after,
        day.success_probability()
    );
}

#[tokio::test]
async fn brute_force_for_a_simulated_day_with_the_defaults() {
    let app = TestApp::builder().manual_clock().start().await;
    let victim = "victim@example.com";
    app.register_via_dev_mailbox(victim, "the right password")
        .await;
    let day = attack_for_a_day(&app, victim).await;
    print_day("defaults", &day);
    assert_eq!(
        day.evaluated(),
        100,
        "CODE_MAX_FAILURES (100) ends the attack"
    );
    assert_eq!(day.first_lock_after, Some(100));
    assert_eq!(day.invalid_answers, 100);
    assert_eq!(day.accepted_sends, 20, "no codes after the lock");
    assert!(
        day.locked_sends >= 90,
        "the lock holds for the rest of the day"
    );
    assert!(day.success_probability() < 1.01e-4);
    // The account owner is not locked out of the password login.
    assert_eq!(app.login(victim, "the right password").await.status, 200);
}

#[tokio::test]
async fn brute_force_without_the_failure_lock_is_held_to_600_guesses_a_day() {
    let app = TestApp::builder()
        .manual_clock()
        .env("CODE_MAX_FAILURES", "0")
        .start()
        .await;
    let victim = "victim@example.com";
    app.register_via_dev_mailbox(victim, "the right password")
        .await;
    let day = attack_for_a_day(&app, victim).await;
    print_day("CODE_MAX_FAILURES=0", &day);
    assert!(day.evaluated() <= 600, "{} evaluated", day.evaluated());
    assert!(
        day.evaluated_per_code.iter().all(|&k| k <= 5),
        "CODE_MAX_ATTEMPTS: {:?}",
        day.evaluated_per_code
    );
    assert!(
        day.accepted_sends >= 115,
        "the simulated day really ran: {} codes",
        day.accepted_sends
    );
    assert!(day.success_probability() < 6.01e-4);
}

async fn send_with(app: &TestApp, body: &Value, headers: &[(&str, &str)]) -> Reply {
    app.request("POST", "/api/auth/send-code", Some(body), headers)
        .await
}

#[tokio::test]
async fn look_alike_addresses_share_one_limit() {
    // The cooldown off, so the per-address hour (5) is the limit under attack.
    let app = TestApp::builder()
        .env("RESEND_COOLDOWN_SECS", "0")
        .start()
        .await;
    let canonical = "victim@bank.example";
    let variants = [
        "victim@bank.example",
        "VICTIM@BANK.EXAMPLE",
        "Victim@Bank.Example",
        "victim@bank.example.",
        "victim@ｂａｎｋ.example",     // full-width letters
        "victim@bank。example",        // ideographic full stop
        "victim@ban\u{212A}.example",  // KELVIN SIGN for k
        "victim@ba\u{00AD}nk.example", // soft hyphen
        "victim@bank\u{200B}.example", // zero-width space
        "victim@BANK.ＥＸＡＭＰＬＥ",  // full-width upper case
        "ｖictim@bank.example",        // full-width local part: refused
        "victim\u{200B}@bank.example", // zero-width space in the local part
        " victim@bank.example",        // padding
        "victim@bank.example ",
        "victim@bank.example\u{0000}",
        "\"victim\"@bank.example", // quoted local part
        "victim@[127.0.0.1]",
        "victim@xn--bank-.example",
    ];
    let mut accepted = Vec::new();
    for round in 0..3 {
        for v in variants {
            let r = app.send_code(v, "register").await;
            match (r.status, r.error_code()) {
                (202, _) => accepted.push((round, v)),
                (429, "rate_limited") | (400, "invalid_email") => {}
                other => panic!("{v:?} answered {other:?}: {}", r.raw),
            }
        }
    }
    let db = &app.db;
    let to_victim = db
        .int(&format!(
            "SELECT COUNT(*) FROM outbox WHERE recipient = '{canonical}'"
        ))
        .await;
    let all = db.int("SELECT COUNT(*) FROM outbox").await;
    let requests = db.int("SELECT COUNT(*) FROM code_requests").await;
    let recipients = db.int("SELECT COUNT(DISTINCT recipient) FROM outbox").await;
    let bypasses = (to_victim - 5).max(0) + (all - to_victim);
    println!(
        "look-alikes: {} spellings x 3 rounds, {} accepted, {to_victim} mails to {canonical}, \
         {all} mails in all ({recipients} distinct recipients), bypasses {bypasses}",
        variants.len(),
        accepted.len()
    );
    assert_eq!(accepted.len(), 5, "accepted: {accepted:?}");
    assert_eq!(requests, 5);
    assert_eq!(to_victim, 5);
    assert_eq!(bypasses, 0);
}

#[tokio::test]
async fn forwarded_for_rotation_gains_nothing() {
    // The peer (127.0.0.1) is not trusted: X-Forwarded-For is not believed at all.
    let app = TestApp::builder().start().await;
    let mut accepted = 0;
    for i in 0..45 {
        let xff = format!("198.51.100.{i}, 203.0.{i}.9");
        let body = json!({"email": format!("rot{i}@example.com"), "purpose": "register"});
        let r = send_with(&app, &body, &[("x-forwarded-for", &xff)]).await;
        match r.status {
            202 => accepted += 1,
            429 => assert_eq!(r.error_code(), "rate_limited"),
            s => panic!("{s} {}", r.raw),
        }
    }
    println!("untrusted X-Forwarded-For rotation: 45 requests, {accepted} accepted (limit 30), bypasses {}", accepted - 30);
    assert_eq!(accepted, 30, "RATE_IP_PER_HOUR holds");
}

#[tokio::test]
async fn spoofed_hops_behind_a_trusted_proxy_gain_nothing() {
    // The peer is a trusted proxy that appends the real client, as nginx's
    // $proxy_add_x_forwarded_for does; everything left of that is the client's.
    let app = TestApp::builder()
        .env("TRUSTED_PROXIES", "127.0.0.1/32")
        .start()
        .await;
    type Shape = fn(usize) -> Vec<String>;
    let shapes: [(&str, Shape); 5] = [
        ("rotating left-most hop", |i| {
            vec![format!("10.9.{}.{}, 203.0.113.7", i / 200, i % 200)]
        }),
        ("two headers, the spoof first", |i| {
            vec![format!("192.0.2.{i}"), "203.0.113.8".into()]
        }),
        ("IPv6 rotation inside one /64", |i| {
            vec![format!("2001:db8:1:2::{:x}", i + 1)]
        }),
        ("IPv4 and IPv4-mapped IPv6", |i| {
            vec![if i % 2 == 0 {
                "203.0.113.9".into()
            } else {
                "::ffff:203.0.113.9".into()
            }]
        }),
        ("garbage hop after the client", |i| {
            vec![format!("203.0.113.10, not-an-ip-{i}")]
        }),
    ];
    let mut total_bypass = 0;
    for (n, (label, shape)) in shapes.iter().enumerate() {
        let mut accepted = 0;
        for i in 0..40 {
            let body = json!({"email": format!("s{n}x{i}@example.com"), "purpose": "register"});
            let hops = shape(i);
            let headers: Vec<(&str, &str)> = hops
                .iter()
                .map(|h| ("x-forwarded-for", h.as_str()))
                .collect();
            let r = send_with(&app, &body, &headers).await;
            match r.status {
                202 => accepted += 1,
                429 => assert_eq!(r.error_code(), "rate_limited", "{label}"),
                s => panic!("{label}: {s} {}", r.raw),
            }
        }
        let bypass = accepted.max(30) - 30;
        total_bypass += bypass;
        println!("trusted proxy, {label}: 40 requests, {accepted} accepted (limit 30), bypasses {bypass}");
        // The garbage hop ends the chain at the proxy itself, which then
        // carries its own budget: still one budget, never a fresh one per try.
        assert!(accepted <= 30, "{label}: {accepted} accepted");
    }
    assert_eq!(total_bypass, 0);
}

#[tokio::test]
async fn json_tricks_are_refused_and_cost_nothing() {
    let app = TestApp::builder()
        .env("RESEND_COOLDOWN_SECS", "0")
        .start()
        .await;
    let bodies = [
        r#"{"email": ["v@example.com", "w@example.com"], "purpose": "register"}"#,
        r#"[{"email": "v@example.com", "purpose": "register"}, {"email": "w@example.com", "purpose": "register"}]"#,
        r#"{"email": "v@example.com", "purpose": "register", "email": "w@example.com"}"#,
        r#"{"email": "v@example.com", "purpose": "register", "purpose": "login"}"#,
        r#"{"email": {"email": "v@example.com"}, "purpose": "register"}"#,
        r#"{"email": null, "purpose": "register"}"#,
        r#"{"email": 42, "purpose": "register"}"#,
        r#"{"email": "v@example.com", "purpose": ["register", "login"]}"#,
        r#"{"email": "v@example.com,w@example.com", "purpose": "register"}"#,
        r#"{"email": "v@example.com;w@example.com", "purpose": "register"}"#,
        r#"{"email": "v@example.com\r\nRCPT TO:<w@example.com>", "purpose": "register"}"#,
        r#"{"email": "v@example.com", "purpose": "REGISTER"}"#,
        r#"{"email": "v@example.com", "purpose": "register"}{"email": "w@example.com", "purpose": "register"}"#,
        "{\"email\": \"v@example.com\", \"purpose\": \"register\"",
    ];
    let mut refused = 0;
    for body in bodies {
        let r = app
            .post_raw("/api/auth/send-code", Some("application/json"), body)
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.raw);
        assert!(
            matches!(
                r.error_code(),
                "invalid_request" | "invalid_email" | "invalid_purpose"
            ),
            "{body}: {}",
            r.raw
        );
        refused += 1;
    }
    let db = &app.db;
    let requests = db.int("SELECT COUNT(*) FROM code_requests").await;
    let mails = db.int("SELECT COUNT(*) FROM outbox").await;
    println!(
        "JSON tricks: {} bodies, {refused} refused with 400, {requests} counted, {mails} mails, bypasses {}",
        bodies.len(),
        requests + mails
    );
    assert_eq!((requests, mails), (0, 0), "a refused body costs nothing");
    // And the full budget is still there for the real address.
    for _ in 0..5 {
        assert_eq!(app.send_code("v@example.com", "register").await.status, 202);
    }
    assert_eq!(app.send_code("v@example.com", "register").await.status, 429);
}
