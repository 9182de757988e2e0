//! Code rules under concurrency: one winner, an exact attempt counter, the
//! per-address failure lock, expiry. Codes come from the dev mailbox.

use std::time::Duration;

use crate::support::app::TestApp;
use crate::support::wait::eventually;
use futures_util::future::join_all;

const WAIT: Duration = Duration::from_secs(10);

/// A wrong code of the right shape, never equal to `right`.
fn wrong(right: &str, i: usize) -> String {
    let n: u64 = right.parse().unwrap();
    let modulus = 10u64.pow(right.len() as u32);
    format!(
        "{:0width$}",
        (n + 1 + i as u64) % modulus,
        width = right.len()
    )
}

#[tokio::test]
async fn ten_parallel_right_codes_one_success() {
    let app = TestApp::builder().no_limits().start().await;
    assert_eq!(
        app.send_code("one@example.com", "register").await.status,
        202
    );
    let code = app.dev_code("one@example.com", WAIT).await;

    let replies = join_all((0..10).map(|i| {
        let (app, code) = (&app, &code);
        async move {
            app.register("one@example.com", &format!("password number {i}"), code)
                .await
        }
    }))
    .await;
    let winners = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        winners,
        1,
        "{:?}",
        replies.iter().map(|r| &r.raw).collect::<Vec<_>>()
    );
    losers_are_guesses_against_a_used_code(&replies, 201);
}

/// Once the right code is used, every other try is a guess with no live code
/// (v2.1): the first CODE_MAX_ATTEMPTS (5) answer 400 `invalid_code`, later
/// ones 429 `too_many_attempts`, as against any code.
fn losers_are_guesses_against_a_used_code(replies: &[crate::support::api::Reply], won: u16) {
    let losers: Vec<(u16, &str)> = replies
        .iter()
        .filter(|r| r.status != won)
        .map(|r| (r.status, r.error_code()))
        .collect();
    let invalid = losers
        .iter()
        .filter(|l| **l == (400, "invalid_code"))
        .count();
    let exhausted = losers
        .iter()
        .filter(|l| **l == (429, "too_many_attempts"))
        .count();
    assert_eq!((invalid, exhausted), (5, 4), "{losers:?}");
}

#[tokio::test]
async fn ten_parallel_login_codes_one_session() {
    let app = TestApp::builder().no_limits().start().await;
    app.send_code("two@example.com", "register").await;
    let code = app.dev_code("two@example.com", WAIT).await;
    assert_eq!(
        app.register("two@example.com", "password two", &code)
            .await
            .status,
        201
    );
    app.send_code("two@example.com", "login").await;
    mailbox_len_at_least(&app, 2).await;
    let login_code = app.dev_code("two@example.com", WAIT).await;
    let replies = join_all((0..10).map(|_| app.login_code("two@example.com", &login_code))).await;
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 1);
    losers_are_guesses_against_a_used_code(&replies, 200);
}

#[tokio::test]
async fn thirty_parallel_wrong_guesses_void_the_code() {
    let app = TestApp::builder().no_limits().start().await;
    app.send_code("three@example.com", "register").await;
    let code = app.dev_code("three@example.com", WAIT).await;

    let replies = join_all((0..30).map(|i| {
        let (app, code) = (&app, &code);
        async move {
            app.register("three@example.com", "password three", &wrong(code, i))
                .await
        }
    }))
    .await;
    let invalid = replies
        .iter()
        .filter(|r| r.error_code() == "invalid_code")
        .count();
    let locked = replies
        .iter()
        .filter(|r| r.error_code() == "too_many_attempts")
        .count();
    assert_eq!(
        invalid, 5,
        "exactly CODE_MAX_ATTEMPTS guesses are evaluated"
    );
    assert_eq!(locked, 25);
    assert!(replies
        .iter()
        .filter(|r| r.status == 429)
        .all(|r| r.retry_after().is_some()));

    let right = app
        .register("three@example.com", "password three", &code)
        .await;
    assert_eq!(
        (right.status, right.error_code()),
        (429, "too_many_attempts"),
        "{}",
        right.raw
    );

    // A new code starts over.
    app.send_code("three@example.com", "register").await;
    mailbox_len_at_least(&app, 2).await;
    let fresh = app.dev_code("three@example.com", WAIT).await;
    assert_eq!(
        app.register("three@example.com", "password three", &fresh)
            .await
            .status,
        201
    );
}

async fn mailbox_len_at_least(app: &TestApp, n: usize) {
    eventually(WAIT, || async {
        let mailbox = app.get("/dev/mailbox.json").await;
        match mailbox.body["messages"].as_array().map_or(0, |m| m.len()) >= n {
            true => Ok(()),
            false => Err(format!("fewer than {n} mails in the dev mailbox")),
        }
    })
    .await;
}

#[tokio::test]
async fn malformed_codes_use_up_no_guess() {
    let app = TestApp::builder()
        .no_limits()
        .env("CODE_MAX_ATTEMPTS", "1")
        .start()
        .await;
    app.send_code("four@example.com", "register").await;
    let code = app.dev_code("four@example.com", WAIT).await;
    for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
        let r = app.register("four@example.com", "password four", bad).await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "invalid_code"),
            "{bad:?}: {}",
            r.raw
        );
    }
    let weak = app.register("four@example.com", "short", &code).await;
    assert_eq!(weak.error_code(), "weak_password");
    assert_eq!(
        app.register("four@example.com", "password four", &code)
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn the_failure_lock_covers_every_purpose() {
    let app = TestApp::builder()
        .no_limits()
        .envs(&[("CODE_MAX_FAILURES", "3"), ("CODE_MAX_ATTEMPTS", "20")])
        .start()
        .await;
    app.send_code("five@example.com", "register").await;
    let code = app.dev_code("five@example.com", WAIT).await;
    for i in 0..2 {
        let r = app
            .register("five@example.com", "password five", &wrong(&code, i))
            .await;
        assert_eq!(r.error_code(), "invalid_code");
    }
    // The guess that reaches the limit is still an invalid code...
    let r = app
        .register("five@example.com", "password five", &wrong(&code, 2))
        .await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_code"));
    // ...and from then on the address is locked, for every purpose.
    let r = app
        .register("five@example.com", "password five", &code)
        .await;
    assert_eq!((r.status, r.error_code()), (429, "too_many_attempts"));
    assert!(r.retry_after().unwrap() > 3600);
    let r = app.send_code("five@example.com", "login").await;
    assert_eq!((r.status, r.error_code()), (429, "too_many_attempts"));
    assert!(r.retry_after().is_some());
    // Other addresses are untouched.
    assert_eq!(
        app.send_code("six@example.com", "register").await.status,
        202
    );
}

#[tokio::test]
async fn a_successful_sign_in_clears_the_failure_count() {
    let app = TestApp::builder()
        .no_limits()
        .envs(&[("CODE_MAX_FAILURES", "3"), ("CODE_MAX_ATTEMPTS", "20")])
        .start()
        .await;
    app.send_code("eight@example.com", "register").await;
    let code = app.dev_code("eight@example.com", WAIT).await;
    assert_eq!(
        app.register("eight@example.com", "password eight", &code)
            .await
            .status,
        201
    );
    app.send_code("eight@example.com", "login").await;
    mailbox_len_at_least(&app, 2).await;
    let login = app.dev_code("eight@example.com", WAIT).await;
    for i in 0..2 {
        assert_eq!(
            app.login_code("eight@example.com", &wrong(&login, i))
                .await
                .error_code(),
            "invalid_code"
        );
    }
    assert_eq!(
        app.login("eight@example.com", "password eight")
            .await
            .status,
        200
    );
    // Two more wrong guesses: four in all, but only two since the sign-in.
    for i in 2..4 {
        assert_eq!(
            app.login_code("eight@example.com", &wrong(&login, i))
                .await
                .error_code(),
            "invalid_code"
        );
    }
    let r = app.login_code("eight@example.com", &login).await;
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[tokio::test]
async fn a_code_dies_with_its_ttl() {
    let app = TestApp::builder()
        .manual_clock()
        .no_limits()
        .env("CODE_TTL_SECS", "30")
        .start()
        .await;
    let (kept, late) = ("six@example.com", "seven@example.com");
    for email in [kept, late] {
        app.send_code(email, "register").await;
    }
    let (kept_code, late_code) = (
        app.dev_code(kept, WAIT).await,
        app.dev_code(late, WAIT).await,
    );
    // One second before the end of its life a code still works...
    app.clock().advance(29);
    let r = app.register(kept, "password six", &kept_code).await;
    assert_eq!(r.status, 201, "{}", r.raw);
    // ...and from its end on it does not.
    app.clock().advance(1);
    let r = app.register(late, "password seven", &late_code).await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "invalid_code"),
        "{}",
        r.raw
    );
}
