//! No account oracle (contract v2.1): an attacker who probes an address with
//! an account and one without gets the same answers, the same mails and the
//! same metrics. Timing is compared in timing.rs (an app that runs alone).

use std::time::Duration;

use crate::support::{api::Reply, app::TestApp};

const WAIT: Duration = Duration::from_secs(10);

async fn dev_app() -> TestApp {
    TestApp::builder()
        .process()
        .no_limits()
        .admin()
        .start()
        .await
}

/// Status, body and every header but `date`: what an attacker can compare.
fn seen(r: &Reply) -> (u16, String, Vec<(String, String)>) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_string()))
        .collect();
    headers.sort();
    (r.status, r.raw.clone(), headers)
}

async fn codes_issued(app: &TestApp) -> u64 {
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    r.raw
        .lines()
        .find_map(|l| l.strip_prefix("authmail_codes_issued_total "))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// A 6-digit code that is not `right`.
fn wrong(right: &str) -> String {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
    .to_string()
}

#[tokio::test]
async fn register_probes_answer_alike_for_known_and_unknown_addresses() {
    let app = dev_app().await;
    app.register_via_dev_mailbox("known@example.com", "the right password")
        .await;
    // Probing without any send-code, then after one (a notice for the known
    // address, a code for the unknown one): six guesses each.
    for with_send in [false, true] {
        let (known, unknown) = ("known@example.com", format!("free{with_send}@example.com"));
        let mut right = None;
        if with_send {
            assert_eq!(app.send_code(known, "register").await.status, 202);
            assert_eq!(app.send_code(&unknown, "register").await.status, 202);
            right = Some(app.dev_code(&unknown, WAIT).await);
        }
        let guess = wrong(right.as_deref().unwrap_or("000000"));
        for i in 1..=6 {
            let k = app.register(known, "a new password", &guess).await;
            let u = app.register(&unknown, "a new password", &guess).await;
            assert_eq!(
                seen(&k),
                seen(&u),
                "probe {i} (send-code first: {with_send})"
            );
            let expected = if i < 6 {
                (400, "invalid_code")
            } else {
                (429, "too_many_attempts")
            };
            assert_eq!((k.status, k.error_code()), expected, "probe {i}: {}", k.raw);
        }
    }
    println!(
        "register probes: 12 pairs, known and unknown answers identical (status, body, headers)"
    );
}

#[tokio::test]
async fn guesses_after_a_login_send_code_answer_alike_and_count_alike() {
    let app = dev_app().await;
    let (known, unknown) = ("known@example.com", "nobody@example.com");
    app.register_via_dev_mailbox(known, "the right password")
        .await;
    for purpose in ["login", "reset_password"] {
        for who in [known, unknown] {
            assert_eq!(app.send_code(who, purpose).await.status, 202);
        }
        let n = if purpose == "login" { 1 } else { 2 };
        let mails = app.wait_dev_mails(unknown, n).await;
        // The registration code came first.
        let code = app.wait_dev_mails(known, n + 1).await[n]["code"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            mails.last().unwrap()["code"].is_null(),
            "a notice to {unknown}"
        );
        let guess = wrong(&code);
        for i in 1..=6 {
            let (k, u) = if purpose == "login" {
                (
                    app.login_code(known, &guess).await,
                    app.login_code(unknown, &guess).await,
                )
            } else {
                (
                    app.reset_password(known, &guess, "a new password").await,
                    app.reset_password(unknown, &guess, "a new password").await,
                )
            };
            assert_eq!(seen(&k), seen(&u), "{purpose} guess {i}");
            let want = if i < 6 { 400 } else { 429 };
            assert_eq!(k.status, want, "{purpose} guess {i}: {}", k.raw);
        }
    }
    // Every evaluated wrong guess counts toward CODE_MAX_FAILURES alike.
    let count = |who: &str| format!("SELECT count FROM failures WHERE email = '{who}'");
    assert_eq!(app.db.int(&count(known)).await, 10);
    assert_eq!(app.db.int(&count(unknown)).await, 10);
}

#[tokio::test]
async fn every_202_mails_exactly_one_message_and_moves_the_metric() {
    let app = dev_app().await;
    let (known, unknown) = ("known@example.com", "nobody@example.com");
    app.register_via_dev_mailbox(known, "the right password")
        .await;
    let before = codes_issued(&app).await;
    // (address, purpose, a code expected, the notice's link)
    let cases = [
        (known, "register", false, "/forgot-password"),
        (unknown, "register", true, ""),
        (known, "login", true, ""),
        (unknown, "login", false, "/register"),
        (known, "reset_password", true, ""),
        (unknown, "reset_password", false, "/register"),
    ];
    let (mut k_mails, mut u_mails) = (1, 0); // the registration code
    let base = format!("http://127.0.0.1:{}", app.port);
    for (who, purpose, with_code, link) in cases {
        let r = app.send_code(who, purpose).await;
        assert_eq!(r.status, 202, "{}", r.raw);
        let n = if who == known {
            &mut k_mails
        } else {
            &mut u_mails
        };
        *n += 1;
        let mails = app.wait_dev_mails(who, *n).await;
        assert_eq!(
            mails.len(),
            *n,
            "exactly one message per 202 ({who} {purpose})"
        );
        let mail = mails.last().unwrap();
        assert_eq!(
            mail["code"].is_string(),
            with_code,
            "{who} {purpose}: {mail}"
        );
        if !with_code {
            let text = mail["text"].as_str().unwrap();
            assert!(text.contains(&format!("{base}{link}")), "{text}");
        }
    }
    let after = codes_issued(&app).await;
    println!(
        "authmail_codes_issued_total moved by {} for 6 accepted send-codes (3 codes, 3 notices)",
        after - before
    );
    assert_eq!(after - before, 6, "every 202 counts, code or notice");
}

#[tokio::test]
async fn a_right_code_whose_address_gained_an_account_is_409() {
    let app = dev_app().await;
    let email = "race@example.com";
    assert_eq!(app.send_code(email, "register").await.status, 202);
    let code = app.dev_code(email, WAIT).await;
    // The account appears after the code was mailed (another registration won).
    app.db
        .exec(&format!(
            "INSERT INTO users (email, password_hash, created_at) VALUES ('{email}', 'x', 0)"
        ))
        .await;
    let r = app.register(email, "a good password", &code).await;
    assert_eq!(
        (r.status, r.error_code()),
        (409, "email_taken"),
        "{}",
        r.raw
    );
}

#[tokio::test]
async fn tokens_and_me_are_never_cached_and_dev_mail_is_no_smtp_send() {
    let app = dev_app().await;
    let email = "cache@example.com";
    assert_eq!(app.send_code(email, "register").await.status, 202);
    let code = app.dev_code(email, WAIT).await;
    let r = app.register(email, "a good password", &code).await;
    assert_eq!(r.status, 201);
    let no_store = |r: &Reply| {
        r.headers
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(no_store(&r).as_deref(), Some("no-store"), "register");
    let login = app.login(email, "a good password").await;
    assert_eq!(no_store(&login).as_deref(), Some("no-store"), "login");
    let token = login.body["token"].as_str().unwrap();
    assert_eq!(
        no_store(&app.me(token).await).as_deref(),
        Some("no-store"),
        "me"
    );
    assert_eq!(app.send_code(email, "login").await.status, 202);
    app.wait_dev_mails(email, 2).await;
    let code = app.dev_code(email, WAIT).await;
    let r = app.login_code(email, &code).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(no_store(&r).as_deref(), Some("no-store"), "login-code");

    // The dev mailbox page has the pages' headers.
    let page = app.get("/dev/mailbox").await;
    assert_eq!(page.status, 200);
    for name in [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
    ] {
        assert!(page.headers.contains_key(name), "/dev/mailbox lacks {name}");
    }
    // Two mails went to the dev mailbox: none of them was sent by SMTP.
    let stats = app.admin("/api/admin/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.raw);
    assert_eq!(stats.body["sent"], 0, "{}", stats.raw);
    let metrics = app.get("/metrics").await.raw;
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("authmail_mail_sent_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
}
