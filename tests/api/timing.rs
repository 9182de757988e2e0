//! Enumeration by timing: send-code and login for registered and unknown
//! addresses, interleaved, compared by median. The app runs alone
//! (`.exclusive()`): no other test's app competes for the CPU meanwhile.

use std::time::Instant;

use crate::support::app::TestApp;
use rand::seq::SliceRandom;
use serde_json::{json, Value};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Sends `pairs` pairs of requests, one for a registered and one for an unknown
/// address, in random order within each pair (so background work such as the
/// worker's dev-mailbox writes after one kind of request cannot land on the
/// other kind only); returns the medians in milliseconds.
async fn timed_pairs(
    app: &TestApp,
    pairs: usize,
    known: &[String],
    unknown: &[String],
    request: impl Fn(&str) -> (String, Value),
) -> (f64, f64) {
    let (mut k, mut u) = (Vec::new(), Vec::new());
    for i in 0..pairs {
        let mut order = [true, false];
        order.shuffle(&mut rand::thread_rng());
        for is_known in order {
            let email = if is_known {
                &known[i % known.len()]
            } else {
                &unknown[i % unknown.len()]
            };
            let (path, body) = request(email);
            let started = Instant::now();
            let r = app.post(&path, body).await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            assert!(
                matches!(r.status, 202 | 400 | 401 | 429),
                "{path}: {} {}",
                r.status,
                r.raw
            );
            if is_known { &mut k } else { &mut u }.push(ms);
        }
    }
    (median(&mut k), median(&mut u))
}

/// Up to three rounds: a real leak shows in every round, noise on a shared
/// machine rarely does. Returns the round that came closest.
async fn best_of_three(
    label: &str,
    app: &TestApp,
    pairs: usize,
    known: &[String],
    unknown: &[String],
    request: impl Fn(&str) -> (String, Value) + Copy,
    within: impl Fn(f64, f64) -> bool,
) -> (f64, f64) {
    let mut best: Option<(f64, f64)> = None;
    for round in 1..=3 {
        let (k, u) = timed_pairs(app, pairs, known, unknown, request).await;
        println!(
            "timing [{label}] round {round}: {pairs} pairs, median registered {k:.3} ms, \
             unknown {u:.3} ms, difference {:.3} ms ({:.1} %)",
            (k - u).abs(),
            (k - u).abs() / k.min(u) * 100.0
        );
        let closer = best.is_none_or(|(bk, bu)| (k - u).abs() < (bk - bu).abs());
        if closer {
            best = Some((k, u));
        }
        if within(k, u) {
            break;
        }
    }
    best.unwrap()
}

#[tokio::test]
async fn enumeration_by_timing_is_not_possible() {
    let app = TestApp::builder()
        .exclusive()
        .no_limits()
        // The limits stay on (their bookkeeping is part of what is timed)
        // but far off: this test is about time, not about the lock.
        .envs(&[
            ("PASSWORD_MAX_FAILURES", "1000000"),
            ("RATE_LOGIN_IP_PER_HOUR", "1000000"),
            ("CODE_MAX_FAILURES", "0"),
            ("CODE_MAX_ATTEMPTS", "20"),
        ])
        .start()
        .await;
    let known: Vec<String> = (0..4).map(|i| format!("known{i}@example.com")).collect();
    let unknown: Vec<String> = (0..4).map(|i| format!("nobody{i}@example.com")).collect();
    for email in &known {
        app.register_via_dev_mailbox(email, "the right password")
            .await;
    }

    let send = |purpose: &'static str| {
        move |email: &str| {
            (
                "/api/auth/send-code".to_string(),
                json!({"email": email, "purpose": purpose}),
            )
        }
    };
    // Warm-up: connections, caches, the first prepared statements.
    timed_pairs(&app, 20, &known, &unknown, send("login")).await;
    for purpose in ["login", "register"] {
        let (k, u) = best_of_three(
            &format!("send-code {purpose}"),
            &app,
            250,
            &known,
            &unknown,
            send(purpose),
            |k, u| (k - u).abs() < 2.0,
        )
        .await;
        assert!(
            (k - u).abs() < 2.0,
            "send-code {purpose}: medians {k:.3} ms vs {u:.3} ms"
        );
    }

    // Register probes (no code was mailed to either address) and code
    // guesses: the same work whether or not an account exists.
    let probe = |email: &str| {
        (
            "/api/auth/register".to_string(),
            json!({"email": email, "password": "a new password", "code": "000000"}),
        )
    };
    let guess = |email: &str| {
        (
            "/api/auth/login-code".to_string(),
            json!({"email": email, "code": "000000"}),
        )
    };
    for (label, request) in [
        ("register probe", &probe as &dyn Fn(&str) -> (String, Value)),
        ("login-code guess", &guess),
    ] {
        timed_pairs(&app, 5, &known, &unknown, request).await;
        let (k, u) = best_of_three(label, &app, 200, &known, &unknown, request, |k, u| {
            (k - u).abs() / k.min(u) < 0.05
        })
        .await;
        assert!(
            (k - u).abs() / k.min(u) < 0.05,
            "{label}: medians {k:.3} ms vs {u:.3} ms"
        );
    }

    let login = |email: &str| {
        (
            "/api/auth/login".to_string(),
            json!({"email": email, "password": "a wrong password"}),
        )
    };
    timed_pairs(&app, 5, &known, &unknown, login).await;
    let (k, u) = best_of_three("login", &app, 250, &known, &unknown, login, |k, u| {
        (k - u).abs() / k.min(u) < 0.05
    })
    .await;
    assert!(
        (k - u).abs() / k.min(u) < 0.05,
        "login: medians {k:.3} ms vs {u:.3} ms"
    );
}
