//! The web pages over plain HTTP: headers, redirects, cookies, CSRF and the
//! language order, checked exactly. (The journeys themselves run in a real
//! browser: browser.rs.)

use std::time::Duration;

use crate::support::app::TestApp;
use crate::support::browser::{Browser, Page};
use crate::support::smtp::free_port;
use reqwest::header::ACCEPT_LANGUAGE;

/// Registers through the JSON API and returns the account's address.
async fn api_account(app: &TestApp, email: &str, password: &str) {
    assert_eq!(app.send_code(email, "register").await.status, 202);
    let code = app.dev_code(email, Duration::from_secs(10)).await;
    let r = app.register(email, password, &code).await;
    assert_eq!(r.status, 201, "{}", r.raw);
}

#[tokio::test]
async fn account_without_a_session_redirects_to_login() {
    let app = TestApp::builder().start().await;
    let mut b = Browser::new(&app);
    let page = b.get("/account", &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/login");
    // A cookie holding a token that is not (or no longer) a session: the same.
    b.jar.insert("authmail_session".into(), "0".repeat(64));
    let page = b.get("/account", &[]).await;
    assert_eq!((page.status, page.location()), (303, "/login"));
    assert!(
        !b.jar.contains_key("authmail_session"),
        "stale cookie cleared"
    );
    b.jar.insert("authmail_session".into(), "0".repeat(64));
    let login = b.get("/login", &[]).await;
    assert_eq!(
        login.status, 200,
        "a stale cookie still gets the sign-in form"
    );
    let root = b.get("/", &[]).await;
    assert_eq!((root.status, root.location()), (303, "/account"));
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = TestApp::builder().start().await;
    let mut b = Browser::new(&app);
    for path in [
        "/register",
        "/login",
        "/login?mode=code",
        "/forgot-password",
        "/account",
    ] {
        let page = b.get(path, &[]).await;
        let h = |name: &str| {
            page.headers
                .get(name)
                .map_or(String::new(), |v| v.to_str().unwrap().to_string())
        };
        let csp = h("content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        // Nothing to other sites; our own origin on our own posts (v2.1).
        assert_eq!(h("referrer-policy"), "same-origin", "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("cache-control"), "no-store", "{path}");
        if page.status == 200 {
            assert!(!page.body.contains("<script>"), "{path}: inline script");
            assert!(!page.body.contains(" style="), "{path}: inline style");
            assert!(
                page.body.contains("href=\"/dev/mailbox\""),
                "{path}: dev link"
            );
        }
    }
    let js = b.get("/static/app.js", &[]).await;
    assert_eq!(js.status, 200);
    assert!(js.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.body.contains("data") && js.body.contains("countdown"));
    let css = b.get("/static/app.css", &[]).await;
    assert!(css.body.contains("\"Noto Sans CJK SC\""), "CJK font stack");
}

#[tokio::test]
async fn cookies_are_http_only_and_lax() {
    let app = TestApp::builder().start().await;
    let mut b = Browser::new(&app);
    let page = b.get("/login?lang=en", &[]).await;
    for name in ["authmail_csrf", "authmail_lang"] {
        let cookie = page
            .set_cookie(name)
            .unwrap_or_else(|| panic!("{name} set"));
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(
            !cookie.contains("Secure"),
            "plain-http PUBLIC_URL: {cookie}"
        );
    }
}

#[tokio::test]
async fn the_session_cookie_holds_an_api_token() {
    let app = TestApp::builder().start().await;
    api_account(&app, "cookie@example.com", "a fine password").await;
    let mut b = Browser::new(&app);
    let csrf = b.get("/login", &[]).await.csrf();
    let page = b
        .login(&csrf, "Cookie@Example.com", "a fine password", &[])
        .await;
    assert_eq!((page.status, page.location()), (303, "/account"));
    let cookie = page.set_cookie("authmail_session").expect("session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Max-Age=2592000"), "{cookie}");
    let token = b.jar["authmail_session"].clone();
    let me = app.me(&token).await;
    assert_eq!(me.status, 200, "{}", me.raw);
    assert_eq!(me.body["email"], "cookie@example.com");

    let account = b.get("/account", &[]).await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("cookie@example.com"));
    for signed_in in ["/login", "/login?mode=code"] {
        let page = b.get(signed_in, &[]).await;
        assert_eq!(
            (page.status, page.location()),
            (303, "/account"),
            "{signed_in}"
        );
    }
    let page = b.post("/logout", &[("csrf", &csrf)], &[]).await;
    assert_eq!((page.status, page.location()), (303, "/login?signed_out=1"));
    assert_eq!(app.me(&token).await.status, 401, "sign-out ends the token");
    assert!(!b.jar.contains_key("authmail_session"));
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let app = TestApp::builder().start().await;
    api_account(&app, "csrf@example.com", "a fine password").await;
    let mut b = Browser::new(&app);
    let good = b.get("/login?lang=en", &[]).await.csrf();
    let (email, password) = ("csrf@example.com", "a fine password");
    // Wrong token, missing token.
    for bad in ["0000", ""] {
        let page = b.login(bad, email, password, &[]).await;
        assert_eq!(page.status, 403, "token {bad:?}");
        assert!(page.body.contains("This form had expired"), "{}", page.body);
        assert!(page.set_cookie("authmail_session").is_none());
    }
    // The right token from another browser (another csrf cookie).
    let mut other = Browser::new(&app);
    let foreign = other.get("/login", &[]).await.csrf();
    assert_ne!(foreign, good);
    assert_eq!(b.login(&foreign, email, password, &[]).await.status, 403);
    // A refused form comes back with a new CSRF cookie and token, so the
    // one read before is stale: read the right one again.
    let good = b.get("/login?lang=en", &[]).await.csrf();
    // The right token, but posted from another site.
    let cross_site = [("sec-fetch-site", "cross-site")];
    let page = b.login(&good, email, password, &cross_site).await;
    assert_eq!(page.status, 403);
    // A refused send-code form sends nothing.
    let page = b.send_code("/register", "bad", "x@example.com", "").await;
    assert_eq!(page.status, 403);
    let mailbox = app.get("/dev/mailbox.json").await;
    assert!(!mailbox.raw.contains("x@example.com"), "{}", mailbox.raw);
    // The refused page's fresh form works. Sign-out too: a forged one leaves
    // the session alone.
    let page = b.login(&page.csrf(), email, password, &[]).await;
    assert_eq!(page.status, 303);
    let token = b.jar["authmail_session"].clone();
    let page = b.post("/logout", &[("csrf", "forged")], &[]).await;
    assert_eq!((page.status, page.location()), (303, "/account"));
    assert_eq!(app.me(&token).await.status, 200);
}

#[tokio::test]
async fn language_is_query_then_cookie_then_accept_language_then_mail_lang() {
    let app = TestApp::builder().env("MAIL_LANG", "en").start().await;
    let mut b = Browser::new(&app);
    assert_eq!(b.get("/login", &[]).await.html_lang(), "en", "MAIL_LANG");
    let zh = [(ACCEPT_LANGUAGE.as_str(), "zh-CN,zh;q=0.9")];
    assert_eq!(b.get("/login", &zh).await.html_lang(), "zh-CN");
    let page = b.get("/login?lang=en", &zh).await;
    assert_eq!(page.html_lang(), "en", "?lang= over Accept-Language");
    assert!(page
        .set_cookie("authmail_lang")
        .unwrap()
        .starts_with("authmail_lang=en;"));
    assert_eq!(b.get("/register", &zh).await.html_lang(), "en", "cookie");
    assert_eq!(
        b.get("/register?lang=fr", &zh).await.html_lang(),
        "en",
        "an unknown ?lang= is ignored"
    );
    let page = b.get("/register?lang=zh-CN", &[]).await;
    assert_eq!(page.html_lang(), "zh-CN");
    assert!(page.body.contains("注册账号"));
    assert!(page.body.contains("href=\"&#x2f;register?lang=en\""));
}

#[tokio::test]
async fn send_code_from_a_page_mails_in_the_page_language() {
    let app = TestApp::builder().start().await;
    api_account(&app, "lang@example.com", "a fine password").await;
    let mut b = Browser::new(&app);
    let csrf = b.get("/forgot-password?lang=en", &[]).await.csrf();
    let page = b
        .send_code("/forgot-password", &csrf, "lang@example.com", "")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"code\""), "step 2 shown");
    assert!(page.body.contains("data-countdown=\"60\""));
    // The registration mail was the first; the reset mail is the second.
    let reset = nth_mail(&app, "lang@example.com", 2).await;
    let subject = reset["subject"].as_str().unwrap();
    assert!(subject.is_ascii(), "an English subject: {reset}");

    // Again at once: the cooldown, with the wait in seconds, by the address.
    let page = b
        .send_code("/forgot-password", &csrf, "lang@example.com", "0")
        .await;
    assert_eq!(page.status, 429);
    let error = page
        .body
        .split("id=\"email-error\">")
        .nth(1)
        .expect("an error by the address field");
    assert!(
        error.starts_with("Too many code requests. Try again in ") && error.contains(" seconds."),
        "{error}"
    );
}

/// The `n`-th mail to `to` in the dev mailbox, once it is there.
async fn nth_mail(app: &TestApp, to: &str, n: usize) -> serde_json::Value {
    app.wait_dev_mails(to, n).await.swap_remove(n - 1)
}

/// The text of the error shown under field `id`.
pub fn field_error<'a>(page: &'a Page, id: &str) -> &'a str {
    let marker = format!("id=\"{id}-error\">");
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no error by {id}: {}", page.body))
        + marker.len();
    let end = page.body[start..].find('<').unwrap();
    &page.body[start..start + end]
}

#[tokio::test]
async fn too_many_wrong_codes_show_by_the_code_field() {
    let app = TestApp::builder()
        .env("CODE_MAX_ATTEMPTS", "1")
        .start()
        .await;
    let email = "guess@example.com";
    api_account(&app, email, "a fine password").await;
    let mut b = Browser::new(&app);
    let csrf = b.get("/login?mode=code&lang=en", &[]).await.csrf();
    assert_eq!(b.send_code("/login", &csrf, email, "").await.status, 200);
    let mail = nth_mail(&app, email, 2).await;
    let code = crate::support::smtp::find_code(mail["text"].as_str().unwrap()).unwrap();
    let wrong: String = code
        .chars()
        .map(|c| if c == '9' { '0' } else { '9' })
        .collect();
    let invalid = "This code is wrong, expired or already used.";
    // A malformed code uses up no guess.
    let page = b.login_code(&csrf, email, "12").await;
    assert_eq!((page.status, field_error(&page, "code")), (400, invalid));
    // The one allowed wrong guess is "wrong code"; after it the code is void,
    // the right one too.
    let page = b.login_code(&csrf, email, &wrong).await;
    assert_eq!((page.status, field_error(&page, "code")), (400, invalid));
    let page = b.login_code(&csrf, email, &code).await;
    assert_eq!(page.status, 429);
    assert_eq!(
        field_error(&page, "code"),
        "Too many wrong codes. Try again in 60 seconds."
    );
}

#[tokio::test]
async fn a_password_lock_shows_by_the_password_field() {
    let app = TestApp::builder()
        .env("PASSWORD_MAX_FAILURES", "2")
        .start()
        .await;
    let email = "locked@example.com";
    api_account(&app, email, "a fine password").await;
    let mut b = Browser::new(&app);
    let csrf = b.get("/login?lang=en", &[]).await.csrf();
    for _ in 0..2 {
        let page = b.login(&csrf, email, "a wrong password", &[]).await;
        assert_eq!(page.status, 401);
    }
    let page = b.login(&csrf, email, "a fine password", &[]).await;
    assert_eq!(page.status, 429);
    assert_eq!(
        field_error(&page, "password"),
        "Too many wrong passwords for this address. Try again in 15 minutes, or sign in with a code."
    );
}

#[tokio::test]
async fn no_dev_mailbox_link_when_smtp_is_configured() {
    let port = free_port().to_string();
    let app = TestApp::builder()
        .envs(&[
            ("SMTP_SERVER", "127.0.0.1"),
            ("SMTP_PORT", &port),
            ("SMTP_SECURITY", "none"),
            ("SMTP_FROM", "noreply@example.com"),
        ])
        .start()
        .await;
    let mut b = Browser::new(&app);
    let page = b.get("/register", &[]).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("/dev/mailbox"), "{}", page.body);
}

/// Login CSRF from a sibling subdomain: the attacker plants its own CSRF
/// cookie in the victim's browser and posts its token with the attacker's
/// credentials. The token matches the cookie, so only the origin can tell.
#[tokio::test]
async fn a_same_site_post_with_a_planted_cookie_is_refused() {
    let app = TestApp::builder().start().await;
    api_account(&app, "attacker@example.com", "attacker password").await;
    let (email, password) = ("attacker@example.com", "attacker password");
    let mut attacker = Browser::new(&app);
    let token = attacker.get("/login", &[]).await.csrf();
    let mut victim = Browser::new(&app);
    let planted = attacker.jar["authmail_csrf"].clone();
    victim.jar.insert("authmail_csrf".into(), planted.clone());
    let sibling = [
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.localhost"),
        ("accept-language", "zh-CN"),
    ];
    let page = victim.login(&token, email, password, &sibling).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.set_cookie("authmail_session").is_none());
    assert!(page.body.contains("表单已过期"), "in the page's language");
    assert_ne!(victim.jar["authmail_csrf"], planted, "a new browser id");
    assert_ne!(page.csrf(), token, "a fresh form");
    // A foreign Origin alone (an old browser without Sec-Fetch-Site) too.
    let fresh = page.csrf();
    let foreign = [("origin", "http://evil.localhost")];
    let page = victim.login(&fresh, email, password, &foreign).await;
    assert_eq!(page.status, 403);
    assert!(page.set_cookie("authmail_session").is_none());
    // The pages' own post, as a browser sends it, works.
    let own = [("sec-fetch-site", "same-origin"), ("origin", &app.base)];
    let page = victim.login(&page.csrf(), email, password, &own).await;
    assert_eq!((page.status, page.location()), (303, "/account"));
    assert!(page.set_cookie("authmail_session").is_some());
}

#[tokio::test]
async fn cookies_are_host_prefixed_under_an_https_public_url() {
    let public = "https://auth.example.test";
    let app = TestApp::builder().env("PUBLIC_URL", public).start().await;
    api_account(&app, "https@example.com", "a fine password").await;
    let mut b = Browser::new(&app);
    // A cookie without the prefix (plantable from a sibling) is not read.
    b.jar.insert("authmail_csrf".into(), "a".repeat(64));
    let page = b.get("/login?lang=en", &[]).await;
    for name in ["__Host-authmail_csrf", "__Host-authmail_lang"] {
        let cookie = page.set_cookie(name).unwrap_or_else(|| panic!("{name}"));
        assert!(cookie.contains("; Path=/;"), "{cookie}");
        assert!(cookie.ends_with("; Secure"), "{cookie}");
        assert!(!cookie.to_lowercase().contains("domain="), "{cookie}");
    }
    b.jar.remove("authmail_csrf");
    let own = [("sec-fetch-site", "same-origin"), ("origin", public)];
    let page = b
        .login(&page.csrf(), "https@example.com", "a fine password", &own)
        .await;
    assert_eq!((page.status, page.location()), (303, "/account"));
    let cookie = page.set_cookie("__Host-authmail_session").expect("session");
    assert!(cookie.contains("; Path=/;") && cookie.ends_with("; Secure"));
    assert!(page.set_cookie("authmail_session").is_none());
    let account = b.get("/account", &[]).await;
    assert_eq!(account.status, 200, "the prefixed session cookie is read");
    assert!(account.body.contains("https@example.com"));
}

#[tokio::test]
async fn account_keeps_the_language_through_the_redirect_to_login() {
    let app = TestApp::builder().env("MAIL_LANG", "en").start().await;
    let mut b = Browser::new(&app);
    let page = b.get("/account?lang=zh-CN", &[]).await;
    assert_eq!((page.status, page.location()), (303, "/login?lang=zh-CN"));
    let login = b.get(page.location(), &[]).await;
    assert_eq!(login.html_lang(), "zh-CN");
    // A stale session cookie: the same redirect, language kept.
    b.jar.insert("authmail_session".into(), "0".repeat(64));
    let page = b.get("/account?lang=en", &[]).await;
    assert_eq!((page.status, page.location()), (303, "/login?lang=en"));
}
