//! Password guessing (contract v2.1): the per-address lock with its doubling,
//! identical for unknown addresses, cleared by a sign-in by code or a reset;
//! the per-IP limit; and the bounded hash queue under a flood.

use std::time::{Duration, Instant};

use crate::support::wait::eventually;
use crate::support::{api::Reply, app::TestApp};
use futures_util::future::join_all;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn answer(r: &Reply) -> (u16, &str) {
    (r.status, r.error_code())
}

#[tokio::test]
async fn ten_wrong_passwords_lock_known_and_unknown_addresses_alike() {
    // A still clock: the two answers compared byte for byte are not a second apart.
    let app = TestApp::builder().manual_clock().no_limits().start().await;
    let (known, unknown) = ("known@example.com", "nobody@example.com");
    app.register_via_dev_mailbox(known, "the right password")
        .await;
    for i in 1..=10 {
        let k = app.login(known, "a wrong password").await;
        let u = app.login(unknown, "a wrong password").await;
        assert_eq!(
            answer(&k),
            (401, "invalid_credentials"),
            "wrong password {i}"
        );
        assert_eq!((k.status, &k.raw), (u.status, &u.raw), "wrong password {i}");
    }
    let k = app.login(known, "a wrong password").await;
    let u = app.login(unknown, "a wrong password").await;
    let right = app.login(known, "the right password").await;
    let u_right = app.login(unknown, "the right password").await;
    for r in [&k, &u, &right, &u_right] {
        assert_eq!(answer(r), (429, "too_many_attempts"), "{}", r.raw);
        assert_eq!(r.retry_after(), Some(900), "the whole lock: {}", r.raw);
    }
    assert_eq!(k.raw, u.raw, "the lock tells nothing about the account");
    println!(
        "password lock: the 11th try (right password too) answers 429 with Retry-After {} s, \
         known and unknown alike",
        k.retry_after().unwrap()
    );
}

#[tokio::test]
async fn parallel_wrong_passwords_cannot_pass_the_limit() {
    let app = TestApp::builder().no_limits().start().await;
    app.register_via_dev_mailbox("par@example.com", "the right password")
        .await;
    let replies = join_all((0..30).map(|_| app.login("par@example.com", "a wrong password"))).await;
    let count = |status| replies.iter().filter(|r| r.status == status).count();
    // Counted before the hash, in one transaction per try: exactly the limit is checked.
    assert_eq!((count(401), count(429)), (10, 20));
}

/// Wrong passwords until the answer is not 401; returns it and how many 401s came first.
async fn wrong_until_refused(app: &TestApp, email: &str) -> (Reply, usize) {
    for n in 0..1000 {
        let r = app.login(email, "a wrong password").await;
        if r.status != 401 {
            return (r, n);
        }
    }
    panic!("1000 wrong passwords and no lock");
}

#[tokio::test]
async fn locks_double_and_a_code_sign_in_or_a_reset_clears_them() {
    let app = TestApp::builder()
        .manual_clock()
        .no_limits()
        .envs(&[("PASSWORD_MAX_FAILURES", "3"), ("PASSWORD_LOCK_SECS", "2")])
        .start()
        .await;
    let email = "pat@example.com";
    app.register_via_dev_mailbox(email, "the right password")
        .await;
    let (first, wrong) = wrong_until_refused(&app, email).await;
    assert_eq!((answer(&first), wrong), ((429, "too_many_attempts"), 3));
    let first_secs = first.retry_after().unwrap();
    assert_eq!(first_secs, 2, "first lock");
    // Each try during the lock is refused and not counted, up to its end.
    app.clock().advance(1);
    let r = app.login(email, "the right password").await;
    assert_eq!(
        (answer(&r), r.retry_after()),
        ((429, "too_many_attempts"), Some(1))
    );
    app.clock().advance(1);
    let unlocked = app.login(email, "a wrong password").await;
    assert_eq!(answer(&unlocked), (401, "invalid_credentials"));
    let (second, wrong) = wrong_until_refused(&app, email).await;
    assert_eq!(
        wrong, 2,
        "a fresh count: the 401 after the lock was the first of three"
    );
    let second_secs = second.retry_after().unwrap();
    assert_eq!(second_secs, 4, "the second lock doubles");
    println!("password lock doubling: first Retry-After {first_secs} s, second {second_secs} s (PASSWORD_LOCK_SECS=2)");

    // Sign-in by code still works during the lock, and ends it.
    assert_eq!(app.send_code(email, "login").await.status, 202);
    let code = next_code(&app, email, 2).await;
    let r = app.login_code(email, &code).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(app.login(email, "the right password").await.status, 200);

    // A reset ends a lock too.
    let (locked, _) = wrong_until_refused(&app, email).await;
    assert_eq!(locked.status, 429);
    assert_eq!(app.send_code(email, "reset_password").await.status, 202);
    let code = next_code(&app, email, 3).await;
    let r = app.reset_password(email, &code, "a newer password").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = app.login(email, "a newer password").await;
    assert_eq!(r.status, 200, "{}", r.raw);
}

/// The code of the `n`-th code mail to `email` (registration's is the first).
async fn next_code(app: &TestApp, email: &str, n: usize) -> String {
    eventually(WAIT, || async {
        let r = app.get("/dev/mailbox.json").await;
        let codes: Vec<String> = r.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["to"] == email)
            .filter_map(|m| m["code"].as_str().map(str::to_string))
            .collect();
        match codes.len() >= n {
            true => Ok(codes[0].clone()), // newest first
            false => Err(format!("code mail {n} never came")),
        }
    })
    .await
}

#[tokio::test]
async fn failed_logins_per_client_network_are_limited() {
    let app = TestApp::builder()
        .no_limits()
        .envs(&[
            ("RATE_LOGIN_IP_PER_HOUR", "5"),
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ])
        .start()
        .await;
    app.register_via_dev_mailbox("owner@example.com", "the right password")
        .await;
    // Five different addresses from one client: each a first failure.
    for i in 0..5 {
        let r = app
            .login(&format!("spray{i}@example.com"), "password1")
            .await;
        assert_eq!(answer(&r), (401, "invalid_credentials"));
    }
    let r = app.login("spray5@example.com", "password1").await;
    assert_eq!(answer(&r), (429, "rate_limited"), "{}", r.raw);
    let secs = r.retry_after().unwrap();
    assert!((3590..=3600).contains(&secs), "Retry-After {secs}");
    // Checked before any password: the right one is refused from here too.
    let r = app.login("owner@example.com", "the right password").await;
    assert_eq!(answer(&r), (429, "rate_limited"));
    // Another client (through the trusted proxy) is not held up.
    let body = json!({"email": "owner@example.com", "password": "the right password"});
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let r = app
        .request(
            "POST",
            "/api/auth/login",
            Some(&body),
            &from("198.51.100.7"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    // The same /64 is the same client.
    for i in 0..5 {
        let bad = json!({"email": format!("v6-{i}@example.com"), "password": "password1"});
        let r = app
            .request(
                "POST",
                "/api/auth/login",
                Some(&bad),
                &from("2001:db8:1:2::1"),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = app
        .request(
            "POST",
            "/api/auth/login",
            Some(&body),
            &from("2001:db8:1:2:ffff::9"),
        )
        .await;
    assert_eq!(answer(&r), (429, "rate_limited"), "{}", r.raw);
}

#[tokio::test]
async fn a_flood_of_logins_gets_503_instead_of_a_queue_and_delays_nobody_past_the_budget() {
    // The 2 s budget shortened to 300 ms: 400 hashes of even 3 ms on two
    // threads are 600 ms of work, so the flood overflows it on any machine.
    let budget = Duration::from_millis(300);
    let app = TestApp::builder()
        .exclusive()
        .no_limits()
        .envs(&[
            ("PASSWORD_MAX_FAILURES", "0"),
            ("RATE_LOGIN_IP_PER_HOUR", "0"),
        ])
        .adjust(move |s| s.passwords.hash_wait = budget)
        .start()
        .await;
    app.register_via_dev_mailbox("owner@example.com", "the right password")
        .await;
    // One undisturbed login for reference.
    let started = Instant::now();
    assert_eq!(
        app.login("owner@example.com", "the right password")
            .await
            .status,
        200
    );
    let alone = started.elapsed();
    let flood = join_all((0..400).map(|i| {
        let app = &app;
        async move {
            let started = Instant::now();
            let r = app
                .login(&format!("flood{i}@example.com"), "a wrong password")
                .await;
            (r, started.elapsed())
        }
    }));
    let owner = async {
        // In the middle of the flood.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let r = app.login("owner@example.com", "the right password").await;
        (r, started.elapsed())
    };
    let health = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let r = app.get("/healthz").await;
        (r.status, started.elapsed())
    };
    let (flood, (owner, owner_took), (health, health_took)) = tokio::join!(flood, owner, health);
    let refused: Vec<&(Reply, Duration)> = flood.iter().filter(|(r, _)| r.status == 503).collect();
    let checked: Vec<&(Reply, Duration)> = flood.iter().filter(|(r, _)| r.status == 401).collect();
    assert_eq!(refused.len() + checked.len(), 400, "only 401 and 503");
    assert!(
        !refused.is_empty(),
        "a flood of 400 must find the queue full"
    );
    for (r, _) in &refused {
        assert_eq!(r.error_code(), "unavailable");
        assert_eq!(r.retry_after(), Some(1));
    }
    let slowest = checked.iter().map(|(_, t)| *t).max().unwrap_or_default();
    let slowest_refusal = refused.iter().map(|(_, t)| *t).max().unwrap();
    println!(
        "hash queue flood: 400 concurrent logins, {} checked (slowest {:.0} ms), {} refused with 503 \
         (slowest refusal {:.0} ms); owner's login {} in {:.0} ms (alone {:.0} ms); /healthz {:.0} ms",
        checked.len(),
        slowest.as_secs_f64() * 1000.0,
        refused.len(),
        slowest_refusal.as_secs_f64() * 1000.0,
        owner.status,
        owner_took.as_secs_f64() * 1000.0,
        alone.as_secs_f64() * 1000.0,
        health_took.as_secs_f64() * 1000.0,
    );
    assert!(matches!(owner.status, 200 | 503), "{}", owner.raw);
    // The budget, plus a second of slack for a busy CI machine: without the
    // budget the last of 400 would wait for all the others' hashes.
    assert!(
        owner_took < budget + Duration::from_secs(1),
        "owner waited {owner_took:?}"
    );
    assert!(
        slowest < budget + Duration::from_millis(1500),
        "a checked login waited {slowest:?}"
    );
    assert_eq!(health, 200);
    assert!(
        health_took < Duration::from_secs(1),
        "/healthz took {health_took:?}"
    );
    // Once the flood is over, logins are served again.
    assert_eq!(
        app.login("owner@example.com", "the right password")
            .await
            .status,
        200
    );
}

/// With the defaults an attacker (from as many IPs as it likes) gets 10 wrong
/// passwords per lock, and the locks double from 15 minutes: the clock is
/// moved on past each lock as it starts.
#[tokio::test]
async fn password_guessing_for_a_simulated_day_with_the_defaults() {
    let app = TestApp::builder()
        .manual_clock()
        .no_limits()
        .env("RATE_LOGIN_IP_PER_HOUR", "0")
        .start()
        .await;
    let victim = "victim@example.com";
    app.register_via_dev_mailbox(victim, "the right password")
        .await;
    let (mut elapsed, mut evaluated, mut locks) = (0_u64, 0, Vec::new());
    while elapsed < 86_400 {
        let (lock, wrong) = wrong_until_refused(&app, victim).await;
        assert_eq!(answer(&lock), (429, "too_many_attempts"));
        evaluated += wrong;
        let secs = lock.retry_after().unwrap();
        locks.push(secs);
        elapsed += secs;
        app.clock().advance(secs as i64);
    }
    println!(
        "password guessing with the defaults: {evaluated} wrong passwords evaluated per account per day \
         (locks of {locks:?} s); chance to hit a password from a list of 10,000 = {:.1e}",
        evaluated as f64 / 10_000.0
    );
    assert_eq!(evaluated, 70, "7 locks of 10 guesses fill the day");
    // Each Retry-After is the lock's whole length: time moves only when told.
    assert_eq!(locks, [900, 1800, 3600, 7200, 14_400, 28_800, 57_600]);
    // The owner still signs in by code, which ends the lock.
    assert_eq!(app.send_code(victim, "login").await.status, 202);
    let code = next_code(&app, victim, 2).await;
    assert_eq!(app.login_code(victim, &code).await.status, 200);
    assert_eq!(app.login(victim, "the right password").await.status, 200);
}
