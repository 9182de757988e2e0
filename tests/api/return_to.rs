//! `?return_to=` on `/login`, `/register` and `/forgot-password`: after
//! signing in the browser goes there when its origin is `PUBLIC_URL`'s or
//! listed in `RETURN_TO_ORIGINS`, else to `/account`. The parameter rides
//! along every link and form of the pages, each step of each flow followed
//! here as a browser follows it (the links and form actions the pages give).

use crate::support::app::TestApp;
use crate::support::browser::{encode, Browser, Page};

const APP: &str = "https://app.example.test";
const PASSWORD: &str = "a fine password";

async fn app() -> TestApp {
    TestApp::builder()
        .env(
            "RETURN_TO_ORIGINS",
            &format!("{APP}, http://localhost:5173"),
        )
        .no_limits()
        .start()
        .await
}

/// Where the app wants its users back.
fn welcome() -> String {
    format!("{APP}/welcome?from=authmail&n=1#top")
}

fn with_return_to(path: &str, to: &str) -> String {
    format!("{path}?return_to={}", encode(to))
}

/// The `return_to` a link or form action of the pages carries, decoded.
fn carried(href: &str) -> Option<String> {
    let query = href.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
}

fn csp(page: &Page) -> &str {
    page.headers["content-security-policy"].to_str().unwrap()
}

/// Every id'd link and form action on `page` carries `to`.
fn assert_carried(page: &Page, ids: &[(&str, &str)], to: &str) {
    for (id, attr) in ids {
        let href = page.attr(id, attr);
        assert_eq!(carried(&href).as_deref(), Some(to), "#{id} {attr}={href}");
    }
}

async fn api_account(app: &TestApp, email: &str) {
    app.register_via_dev_mailbox(email, PASSWORD).await;
}

/// The newest code mailed to `email`, once the `n`-th mail is there.
async fn code(app: &TestApp, email: &str, n: usize) -> String {
    let mails = app.wait_dev_mails(email, n).await;
    mails[n - 1]["code"].as_str().expect("a code").to_string()
}

#[tokio::test]
async fn password_sign_in_returns_to_a_listed_origin() {
    let app = app().await;
    api_account(&app, "back@example.com").await;
    let to = welcome();
    let mut b = Browser::new(&app);
    let page = b.get(&with_return_to("/login", &to), &[]).await;
    assert_eq!(page.status, 200);
    let every_link = [
        ("login-form", "action"),
        ("with-code", "href"),
        ("to-forgot", "href"),
        ("to-register", "href"),
        ("switch-lang", "href"),
    ];
    assert_carried(&page, &every_link, &to);
    // The sign-in's redirect ends a form's navigation, which browsers hold to
    // `form-action`: the page lets its forms lead to that origin, and only it.
    assert!(
        csp(&page).contains(&format!("form-action 'self' {APP};")),
        "{}",
        csp(&page)
    );

    // A mistake: the form comes back, still carrying it.
    let action = page.attr("login-form", "action");
    let csrf = page.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("email", "back@example.com"),
        ("password", "not the password"),
    ];
    let page = b.post(&action, &form, &[]).await;
    assert_eq!(page.status, 401);
    assert_carried(&page, &every_link, &to);
    // A refused (CSRF) form too.
    let forged = [("csrf", "forged"), form[1], form[2]];
    let page = b.post(&action, &forged, &[]).await;
    assert_eq!(page.status, 403);
    assert_carried(&page, &every_link, &to);

    let action = page.attr("login-form", "action");
    let page = sign_in(&mut b, &action, &page.csrf(), "back@example.com").await;
    assert_eq!((page.status, page.location()), (303, to.as_str()));
    assert!(page.set_cookie("authmail_session").is_some(), "signed in");

    // Signed in already: the sign-in page sends the browser straight back.
    let page = b.get(&with_return_to("/login", &to), &[]).await;
    assert_eq!((page.status, page.location()), (303, to.as_str()));
    let page = b.get("/login", &[]).await;
    assert_eq!((page.status, page.location()), (303, "/account"));
}

/// A password sign-in posted to `action`: a page's own form action, or one
/// an attacker wrote.
async fn sign_in(b: &mut Browser, action: &str, csrf: &str, email: &str) -> Page {
    let form = [("csrf", csrf), ("email", email), ("password", PASSWORD)];
    b.post(action, &form, &[]).await
}

/// Step 1 of a code flow from `page`: the address, through the form's own action.
async fn send_step(b: &mut Browser, page: &Page, email: &str) -> Page {
    let action = page.attr("send-form", "action");
    let csrf = page.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("mode", "code"),
        ("action", "send"),
        ("email", email),
    ];
    let page = b.post(&action, &form, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

/// Step 2: the code (and a password), through the finish form's own action.
async fn finish_step(b: &mut Browser, page: &Page, email: &str, code: &str) -> Page {
    let action = page.attr("finish-form", "action");
    let csrf = page.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("mode", "code"),
        ("action", "finish"),
        ("email", email),
        ("code", code),
        ("password", PASSWORD),
        ("sent_at", "0"),
    ];
    b.post(&action, &form, &[]).await
}

/// The links and forms of step 2 of a code flow.
const STEP_2: [(&str, &str); 4] = [
    ("finish-form", "action"),
    ("resend-form", "action"),
    ("other-address", "href"),
    ("switch-lang", "href"),
];

#[tokio::test]
async fn registering_returns_to_a_listed_origin_through_every_step() {
    let app = app().await;
    let email = "new@example.com";
    let to = "http://localhost:5173/after-signup".to_string();
    let mut b = Browser::new(&app);
    let page = b.get(&with_return_to("/register", &to), &[]).await;
    assert_carried(&page, &[("send-form", "action"), ("to-login", "href")], &to);
    let page = send_step(&mut b, &page, email).await;
    assert_carried(&page, &STEP_2, &to);
    let code = code(&app, email, 1).await;

    // A wrong code: step 2 again, still carrying it.
    let wrong = if code.starts_with('9') { "0" } else { "9" }.repeat(code.len());
    let page = finish_step(&mut b, &page, email, &wrong).await;
    assert_eq!(page.status, 400);
    assert_carried(&page, &STEP_2, &to);
    let page = finish_step(&mut b, &page, email, &code).await;
    assert_eq!((page.status, page.location()), (303, to.as_str()));
    assert!(page.set_cookie("authmail_session").is_some());
}

#[tokio::test]
async fn a_password_reset_returns_to_a_listed_origin() {
    let app = app().await;
    let email = "reset@example.com";
    api_account(&app, email).await;
    let to = welcome();
    let mut b = Browser::new(&app);
    // From the sign-in page's own link, as a person who forgot would go.
    let login = b.get(&with_return_to("/login", &to), &[]).await;
    let page = b.get(&login.attr("to-forgot", "href"), &[]).await;
    assert_eq!(page.status, 200);
    assert_carried(&page, &[("send-form", "action"), ("to-login", "href")], &to);
    let page = send_step(&mut b, &page, email).await;
    assert_carried(&page, &STEP_2, &to);
    // The registration mail was the first.
    let code = code(&app, email, 2).await;
    let page = finish_step(&mut b, &page, email, &code).await;
    assert_eq!((page.status, page.location()), (303, to.as_str()));
}

#[tokio::test]
async fn a_code_sign_in_after_a_language_switch_returns_there() {
    let app = app().await;
    let email = "code@example.com";
    api_account(&app, email).await;
    let to = welcome();
    let mut b = Browser::new(&app);
    let page = b
        .get(&with_return_to("/login", &to), &[("accept-language", "en")])
        .await;
    assert_eq!(page.html_lang(), "en");
    let page = b.get(&page.attr("switch-lang", "href"), &[]).await;
    assert_eq!(page.html_lang(), "zh-CN", "switched");
    let page = b.get(&page.attr("with-code", "href"), &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"send-form\""), "the code form");
    assert_carried(
        &page,
        &[
            ("send-form", "action"),
            ("with-password", "href"),
            ("to-register", "href"),
            ("switch-lang", "href"),
        ],
        &to,
    );
    let page = send_step(&mut b, &page, email).await;
    assert_eq!(page.html_lang(), "zh-CN");
    assert_carried(&page, &STEP_2, &to);
    let code = code(&app, email, 2).await;
    let page = finish_step(&mut b, &page, email, &code).await;
    assert_eq!((page.status, page.location()), (303, to.as_str()));
}

/// Each attack as it would sit in the query string: raw or percent-encoded
/// (once or twice), so the page reads it as the browser sent it.
const ATTACKS: &[&str] = &[
    // Not listed.
    "https://evil.example.test/",
    "https%3A%2F%2Fevil.example.test%2Fwelcome",
    "http://app.example.test/welcome",
    "https://app.example.test.evil.example.test/",
    "https://app.example.test:8443/",
    // Script and data URLs.
    "javascript:alert(document.cookie)",
    "javascript%3Aalert(1)%2F%2Fhttps%3A%2F%2Fapp.example.test",
    "JaVaScRiPt:alert(1)",
    "java%09script:alert(1)",
    "%20javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    // Protocol-relative, and relative paths.
    "//evil.example.test",
    "%2F%2Fevil.example.test",
    "%252F%252Fevil.example.test",
    "///evil.example.test",
    "/account",
    // Backslashes: browsers read `/\host` and `\\host` as `//host`.
    "/%5Cevil.example.test",
    "%5C%5Cevil.example.test",
    "https:%5C%5Cevil.example.test",
    "https://app.example.test%5C@evil.example.test",
    // Userinfo: the host is what follows the last `@`.
    "https://app.example.test@evil.example.test/",
    "https%3A%2F%2Fapp.example.test%40evil.example.test%2F",
    "https://app.example.test%252F@evil.example.test",
    "https://user:pass@app.example.test/",
    // The listed origin only in the fragment or query of another.
    "https://evil.example.test%23.app.example.test/",
    "https://evil.example.test/?https://app.example.test",
    // Control characters and whitespace.
    "https://app.example.test/%0D%0ALocation:%20https://evil.example.test",
    "",
];

#[tokio::test]
async fn every_attack_lands_on_account() {
    let app = app().await;
    let email = "target@example.com";
    api_account(&app, email).await;
    // Signed out: the value is not carried anywhere.
    let mut anonymous = Browser::new(&app);
    for attack in ATTACKS {
        let page = anonymous
            .get(&format!("/login?return_to={attack}"), &[])
            .await;
        assert_eq!(page.status, 200, "{attack}");
        assert_eq!(page.attr("login-form", "action"), "/login", "{attack}");
        assert_eq!(carried(&page.attr("to-register", "href")), None, "{attack}");
        assert!(csp(&page).contains("form-action 'self';"), "{attack}");
    }
    // Signing in through a form whose action names the attack: /account.
    for attack in [
        "//evil.example.test",
        "javascript:alert(1)",
        "/%5Cevil.example.test",
    ] {
        let mut b = Browser::new(&app);
        let csrf = b.get("/login", &[]).await.csrf();
        let page = sign_in(&mut b, &format!("/login?return_to={attack}"), &csrf, email).await;
        assert_eq!(
            (page.status, page.location()),
            (303, "/account"),
            "{attack}"
        );
    }
    // Signed in: the sign-in page sends the browser on at once.
    let mut b = Browser::new(&app);
    let csrf = b.get("/login", &[]).await.csrf();
    let page = sign_in(&mut b, "/login", &csrf, email).await;
    assert_eq!(page.location(), "/account");
    for attack in ATTACKS {
        let page = b.get(&format!("/login?return_to={attack}"), &[]).await;
        assert_eq!(
            (page.status, page.location()),
            (303, "/account"),
            "{attack}"
        );
    }
    // The controls: a listed origin and PUBLIC_URL's own are followed.
    let own = format!("{}/account?tab=sessions", app.base);
    for to in [welcome(), own] {
        let page = b.get(&with_return_to("/login", &to), &[]).await;
        assert_eq!((page.status, page.location()), (303, to.as_str()));
    }
}

#[tokio::test]
async fn without_return_to_origins_only_public_url_is_a_place_to_return_to() {
    let app = TestApp::builder().start().await;
    api_account(&app, "plain@example.com").await;
    let mut b = Browser::new(&app);
    let to = welcome();
    let page = b.get(&with_return_to("/login", &to), &[]).await;
    assert_eq!(page.attr("login-form", "action"), "/login");
    let action = with_return_to("/login", &to);
    let page = sign_in(&mut b, &action, &page.csrf(), "plain@example.com").await;
    assert_eq!((page.status, page.location()), (303, "/account"));
    let own = format!("{}/account?from=login", app.base);
    let page = b.get(&with_return_to("/login", &own), &[]).await;
    assert_eq!((page.status, page.location()), (303, own.as_str()));
}

#[tokio::test]
async fn the_openapi_document_describes_return_to_and_the_pages_own_errors() {
    let app = TestApp::builder().start().await;
    let doc = app.get("/api/openapi.json").await.body;
    for path in ["/login", "/register", "/forgot-password"] {
        for method in ["get", "post"] {
            let op = &doc["paths"][path][method];
            let params = op["parameters"].as_array().expect("parameters");
            let p = params
                .iter()
                .find(|p| p["name"] == "return_to")
                .unwrap_or_else(|| panic!("{method} {path}: no return_to"));
            assert_eq!(
                (p["in"].as_str(), p["required"].as_bool()),
                (Some("query"), Some(false))
            );
            if method == "post" {
                let responses = &op["responses"];
                assert!(
                    responses["415"]["content"]["text/html"].is_object(),
                    "{path}"
                );
                assert!(responses["422"].is_null(), "{path}: no 422 any more");
            }
        }
    }
    let logout = &doc["paths"]["/logout"]["post"]["responses"];
    assert!(
        logout["400"]["content"]["text/html"].is_object(),
        "{logout}"
    );
}
