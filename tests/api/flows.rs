//! Every account flow end to end, with each code read out of the MIME message
//! a real SMTP server received.

use std::time::Duration;

use crate::support::api::SESSION_TTL_SECS;
use crate::support::app::TestApp;
use crate::support::smtp::{Certs, Mode, SmtpOptions, SmtpServer};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

async fn start() -> (Certs, SmtpServer, TestApp) {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(
        &certs,
        SmtpOptions::new(Mode::StartTls).auth("flows@authmail.test", "flows-pw"),
    );
    // Flows send several codes to one address in a row.
    let app = TestApp::builder().smtp(&smtp).no_limits().start().await;
    (certs, smtp, app)
}

/// Sends a code and returns it as read from the `n`-th mail to `email`.
async fn mailed_code(
    app: &TestApp,
    smtp: &SmtpServer,
    email: &str,
    purpose: &str,
    n: usize,
) -> String {
    let r = app.send_code(email, purpose).await;
    assert_eq!(r.status, 202, "{}", r.raw);
    smtp.wait_for_nth(email, n, WAIT).await.code()
}

async fn register(app: &TestApp, smtp: &SmtpServer, email: &str, password: &str) -> String {
    let code = mailed_code(app, smtp, email, "register", 1).await;
    let r = app.register(email, password, &code).await;
    assert_eq!(r.status, 201, "{}", r.raw);
    r.session_token(email, SESSION_TTL_SECS)
}

#[tokio::test]
async fn register_me_logout() {
    let (_certs, smtp, app) = start().await;
    let r = app.send_code("New.User@Example.com", "register").await;
    assert_eq!(r.status, 202, "{}", r.raw);
    let code = smtp
        .wait_for_mail("new.user@example.com", WAIT)
        .await
        .code();
    // The mail went to the canonical address; the account is keyed by it.
    let r = app
        .register("NEW.USER@example.COM", "a good password", &code)
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
    let token = &r.session_token("new.user@example.com", SESSION_TTL_SECS);

    let me = app.me(token).await;
    assert_eq!(me.status, 200, "{}", me.raw);
    assert_eq!(me.body["email"], "new.user@example.com");
    assert_eq!(me.body["id"], r.body["user"]["id"]);
    assert!(me.body["created_at"].as_str().unwrap().ends_with('Z'));

    // An address with an account answers like any wrong code (v2.1, no
    // oracle). That alone does not show the code is spent: see the end.
    let again = app
        .register("new.user@example.com", "a good password", &code)
        .await;
    assert_eq!(again.status, 400, "{}", again.raw);
    assert_eq!(again.error_code(), "invalid_code");

    assert_eq!(app.logout(token).await.status, 204);
    let me = app.me(token).await;
    assert_eq!(me.status, 401);
    assert_eq!(me.error_code(), "unauthorized");
    assert_eq!(app.logout(token).await.status, 401);

    // The code is single use: with the account removed behind authmail's
    // back, only the spent code stands between it and a second account.
    app.db
        .exec("DELETE FROM users WHERE email = 'new.user@example.com'")
        .await;
    let reused = app
        .register("new.user@example.com", "a good password", &code)
        .await;
    assert_eq!(reused.status, 400, "{}", reused.raw);
    assert_eq!(reused.error_code(), "invalid_code");
}

#[tokio::test]
async fn password_login_right_wrong_and_unknown() {
    let (_certs, smtp, app) = start().await;
    register(&app, &smtp, "pat@example.com", "pat's password").await;

    let ok = app.login("PAT@example.com", "pat's password").await;
    assert_eq!(ok.status, 200, "{}", ok.raw);
    let token = ok.session_token("pat@example.com", SESSION_TTL_SECS);
    assert_eq!(app.me(&token).await.status, 200);

    let wrong = app.login("pat@example.com", "not the password").await;
    let unknown = app.login("nobody@example.com", "pat's password").await;
    for r in [&wrong, &unknown] {
        assert_eq!(r.status, 401, "{}", r.raw);
        assert_eq!(r.error_code(), "invalid_credentials");
    }
    assert_eq!(
        wrong.raw, unknown.raw,
        "wrong password and unknown address answer alike"
    );
}

#[tokio::test]
async fn login_with_a_code() {
    let (_certs, smtp, app) = start().await;
    register(&app, &smtp, "quinn@example.com", "quinn password").await;
    let code = mailed_code(&app, &smtp, "quinn@example.com", "login", 2).await;
    let r = app.login_code("quinn@example.com", &code).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let token = r.session_token("quinn@example.com", SESSION_TTL_SECS);
    assert_eq!(app.me(&token).await.status, 200);
    // Used once, gone.
    let again = app.login_code("quinn@example.com", &code).await;
    assert_eq!((again.status, again.error_code()), (400, "invalid_code"));
}

#[tokio::test]
async fn reset_password_ends_sessions_opens_a_new_one_and_mails_a_notice() {
    let (_certs, smtp, app) = start().await;
    let old_token = register(&app, &smtp, "rita@example.com", "old password").await;
    let other_token = app
        .login("rita@example.com", "old password")
        .await
        .session_token("rita@example.com", SESSION_TTL_SECS);

    let code = mailed_code(&app, &smtp, "rita@example.com", "reset_password", 2).await;
    let weak = app.reset_password("rita@example.com", &code, "short").await;
    assert_eq!((weak.status, weak.error_code()), (400, "weak_password"));
    let r = app
        .reset_password("rita@example.com", &code, "new password")
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let new_token = r.session_token("rita@example.com", SESSION_TTL_SECS);

    for token in [&old_token, &other_token] {
        let me = app.me(token).await;
        assert_eq!(
            (me.status, me.error_code()),
            (401, "unauthorized"),
            "reset ends every older session"
        );
    }
    let me = app.me(&new_token).await;
    assert_eq!(
        (me.status, &me.body["email"]),
        (200, &json!("rita@example.com")),
        "{}",
        me.raw
    );
    assert_eq!(
        app.login("rita@example.com", "old password").await.status,
        401
    );
    assert_eq!(
        app.login("rita@example.com", "new password").await.status,
        200
    );

    let notice = smtp.wait_for_nth("rita@example.com", 3, WAIT).await;
    assert!(
        notice.subject.contains("密码"),
        "password-changed notice in zh-CN: {}",
        notice.subject
    );
    assert!(!notice.html.is_empty());
}

#[tokio::test]
async fn every_202_mails_one_message_a_code_only_where_it_can_be_used() {
    let (_certs, smtp, app) = start().await;
    register(&app, &smtp, "sam@example.com", "sam password").await;

    let taken = app.send_code("sam@example.com", "register").await;
    let free = app.send_code("tess@example.com", "register").await;
    let unknown_login = app.send_code("uma@example.com", "login").await;
    let unknown_reset = app.send_code("uma@example.com", "reset_password").await;
    for r in [&taken, &unknown_login, &unknown_reset] {
        assert_eq!(r.status, 202);
        assert_eq!(r.raw, free.raw, "byte-identical answers");
    }
    // A code mail after the others: once it is in, the others would be too.
    smtp.wait_for_mail("tess@example.com", WAIT).await;
    let login_code = mailed_code(&app, &smtp, "sam@example.com", "login", 3).await;
    let sam = smtp.mails_to("sam@example.com");
    assert_eq!(sam.len(), 3, "one message per 202: code, notice, code");
    // The second is the notice: no code, links to sign in and to reset.
    let notice = &sam[1];
    assert_eq!(notice.subject, "该邮箱已注册");
    let base = format!("http://127.0.0.1:{}", app.port);
    for link in ["/login", "/forgot-password"] {
        assert!(
            notice.text.contains(&format!("{base}{link}")),
            "{}",
            notice.text
        );
    }
    assert!(!notice.text.contains(&login_code));
    let uma = smtp.wait_for_nth("uma@example.com", 2, WAIT).await;
    assert_eq!(uma.subject, "该邮箱尚未注册");
    assert!(
        uma.text.contains(&format!("{base}/register")),
        "{}",
        uma.text
    );
    assert_eq!(
        smtp.mails_to("uma@example.com").len(),
        2,
        "one notice per 202"
    );
    // Neither notice carries anything a code check accepts.
    let r = app.login_code("uma@example.com", &login_code).await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_code"));
}

#[tokio::test]
async fn a_newer_code_voids_the_older_one() {
    let (_certs, smtp, app) = start().await;
    let first = mailed_code(&app, &smtp, "vic@example.com", "register", 1).await;
    let second = mailed_code(&app, &smtp, "vic@example.com", "register", 2).await;
    if first != second {
        let r = app
            .register("vic@example.com", "vic password", &first)
            .await;
        assert_eq!((r.status, r.error_code()), (400, "invalid_code"));
    }
    let r = app
        .register("vic@example.com", "vic password", &second)
        .await;
    assert_eq!(r.status, 201, "{}", r.raw);
}
