//! The grep gate: a whole flow over real SMTP with a distinctive SMTP password,
//! then every output an operator can see (the logs of every run at debug level,
//! `outbox` and `outbox --json`, `doctor`, `send-test`, the admin API, the
//! service endpoints) is searched for the SMTP password, the session tokens,
//! the users' passwords and the codes: 0 occurrences of each.

use std::time::Duration;

use crate::support::app::{smtp_env, TestApp, ADMIN_TOKEN};
use crate::support::smtp::{Certs, Mode, SmtpOptions, SmtpServer};

const SMTP_USER: &str = "gate@authmail.test";
const SMTP_PASSWORD: &str = "Gate-7f3Qx-授权码-Zz91";
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn no_secret_reaches_any_output() {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(
        &certs,
        SmtpOptions::new(Mode::StartTls).auth(SMTP_USER, SMTP_PASSWORD),
    );
    let mut app = TestApp::builder()
        .process()
        .smtp(&smtp)
        .admin()
        .env("RUST_LOG", "debug")
        .start()
        .await;
    // The CLI commands run with the app's settings.
    let mut env = smtp_env(&smtp, "starttls", Some((SMTP_USER, SMTP_PASSWORD)));
    env.push(("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()));

    let user = "leaky@example.com";
    let (pw1, pw2) = ("first-Pw-8c1e5d", "second-Pw-4a7b2f");
    let mut codes = Vec::new();
    let mut tokens = Vec::new();

    assert_eq!(app.send_code(user, "register").await.status, 202);
    codes.push(smtp.wait_for_nth(user, 1, WAIT).await.code());
    let r = app.register(user, pw1, &codes[0]).await;
    assert_eq!(r.status, 201, "{}", r.raw);
    tokens.push(r.body["token"].as_str().unwrap().to_string());

    let r = app.login(user, pw1).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    tokens.push(r.body["token"].as_str().unwrap().to_string());
    assert_eq!(app.login(user, "a wrong password").await.status, 401);

    assert_eq!(app.send_code(user, "login").await.status, 202);
    codes.push(smtp.wait_for_nth(user, 2, WAIT).await.code());
    assert_eq!(app.login_code(user, "000000").await.status, 400);
    let r = app.login_code(user, &codes[1]).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    tokens.push(r.body["token"].as_str().unwrap().to_string());
    assert_eq!(app.me(&tokens[2]).await.status, 200);
    assert_eq!(app.logout(&tokens[2]).await.status, 204);
    assert_eq!(app.me(&tokens[2]).await.status, 401);

    // The cooldown is per purpose: reset_password may be asked for now.
    assert_eq!(app.send_code(user, "reset_password").await.status, 202);
    codes.push(smtp.wait_for_nth(user, 3, WAIT).await.code());
    let r = app.reset_password(user, &codes[2], pw2).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    tokens.push(r.body["token"].as_str().unwrap().to_string());
    let r = app.jwt(&tokens[3]).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let jwt = r.body["jwt"].as_str().unwrap().to_string();
    smtp.wait_for_nth(user, 4, WAIT).await; // the password-changed notice
    app.wait_outbox(user, |m| m["status"] == "sent", WAIT).await;

    let mut seen = String::new();
    for path in [
        "/api/admin/outbox?limit=500",
        "/api/admin/outbox?status=sent",
        "/api/admin/stats",
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/openapi.json",
    ] {
        let r = app.admin(path).await;
        if path.starts_with("/api/admin") {
            assert_eq!(r.status, 200, "{path}: {}", r.raw);
        }
        seen.push_str(&r.raw);
    }
    let outbox_json = app.cli(&env, &["outbox", "--json"]);
    assert!(
        outbox_json.contains(user),
        "outbox --json lists the mail: {outbox_json}"
    );
    seen.push_str(&outbox_json);
    seen.push_str(&app.cli(&env, &["outbox"]));
    seen.push_str(&app.cli(&env, &["doctor", "--lang", "en"]));
    seen.push_str(&app.cli(&env, &["send-test", "--to", "ops@example.com"]));
    assert!(app.terminate().success());
    let logs = app.logs();
    assert!(
        logs.contains("delivery"),
        "the logs were captured: {}",
        &logs[..logs.len().min(500)]
    );
    seen.push_str(&logs);

    let mut secrets: Vec<(&str, String)> = vec![
        ("the SMTP password", SMTP_PASSWORD.to_string()),
        ("part of the SMTP password", "7f3Qx".to_string()),
        ("a user's password", pw1.to_string()),
        ("a user's new password", pw2.to_string()),
    ];
    secrets.extend(tokens.iter().map(|t| ("a session token", t.clone())));
    secrets.extend(codes.iter().map(|c| ("a code", c.clone())));
    // Its signature part: the header and claims are the same for every token.
    let signature = jwt.rsplit('.').next().unwrap().to_string();
    secrets.push(("a JWT's signature", signature));
    let mut found = Vec::new();
    for (what, secret) in &secrets {
        let n = occurrences(&seen, secret);
        if n > 0 {
            found.push(format!("{what} ({secret}) x{n}"));
        }
    }
    println!(
        "grep gate: {} bytes of output searched for {} secrets; occurrences: {}",
        seen.len(),
        secrets.len(),
        if found.is_empty() {
            "0".to_string()
        } else {
            found.join(", ")
        }
    );
    assert!(found.is_empty(), "leaked: {found:?}");
}

/// How often `needle` occurs; a code (all digits) counts only where no other
/// digit touches it, so a timestamp that happens to contain it is no leak.
fn occurrences(haystack: &str, needle: &str) -> usize {
    let digits = needle.bytes().all(|b| b.is_ascii_digit());
    haystack
        .match_indices(needle)
        .filter(|(i, _)| {
            let bytes = haystack.as_bytes();
            let before = i.checked_sub(1).map(|j| bytes[j]);
            let after = bytes.get(i + needle.len()).copied();
            !digits
                || !(before.is_some_and(|b| b.is_ascii_digit())
                    || after.is_some_and(|b| b.is_ascii_digit()))
        })
        .count()
}
