//! Bodies that cannot be read. The API answers each with the contract's JSON
//! error; a page answers like the pages' other errors: an HTML page in the
//! browser's language with the status the API would give (415, else 400),
//! and nothing happens.

use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::browser::{encode, Browser, Page};

const JSON_POSTS: [&str; 5] = [
    "/api/auth/send-code",
    "/api/auth/register",
    "/api/auth/login",
    "/api/auth/login-code",
    "/api/auth/reset-password",
];

#[tokio::test]
async fn every_json_route_answers_an_unreadable_body_with_the_contract_error() {
    let app = TestApp::builder().start().await;
    let good = r#"{"email":"x@example.com","password":"long enough","code":"123456","new_password":"long enough","purpose":"login"}"#;
    let twice = r#"{"email":"x@example.com","email":"y@example.com","password":"long enough","code":"123456","new_password":"long enough","purpose":"login"}"#;
    let cases: [(Option<&str>, &str, u16, &str); 8] = [
        (Some("text/plain"), good, 415, "unsupported_media_type"),
        (None, good, 415, "unsupported_media_type"),
        (
            Some("application/x-www-form-urlencoded"),
            "email=x%40example.com",
            415,
            "unsupported_media_type",
        ),
        (
            Some("application/json"),
            "{not json",
            400,
            "invalid_request",
        ),
        (Some("application/json"), "", 400, "invalid_request"),
        (Some("application/json"), "[1, 2]", 400, "invalid_request"),
        (Some("application/json"), twice, 400, "invalid_request"),
        (
            Some("application/json; charset=utf-8"),
            r#"{"email": 5}"#,
            400,
            "invalid_request",
        ),
    ];
    for path in JSON_POSTS {
        for (content_type, body, status, code) in cases {
            let r = app.post_raw(path, content_type, body.to_string()).await;
            let what = format!("{path} {content_type:?} {body}");
            assert_eq!(
                (r.status, r.error_code()),
                (status, code),
                "{what}: {}",
                r.raw
            );
            assert!(r.body["error"]["message"].is_string(), "{what}");
            let ct = r.headers["content-type"].to_str().unwrap();
            assert!(ct.starts_with("application/json"), "{what}: {ct}");
        }
    }
    assert!(
        app.dev_mails("x@example.com").await.is_empty(),
        "nothing sent"
    );
}

const PAGE_POSTS: [&str; 4] = ["/login", "/register", "/forgot-password", "/logout"];

fn assert_is_page(page: &Page, status: u16, lang: &str, what: &str) {
    assert_eq!(page.status, status, "{what}: {}", page.body);
    let ct = page.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("text/html"), "{what}: {ct}");
    assert_eq!(page.html_lang(), lang, "{what}");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: the pages' headers"
    );
}

/// The error text the page shows above everything else.
fn form_error(page: &Page) -> &str {
    let marker = "id=\"form-error\">";
    let start = page.body.find(marker).expect("a form error") + marker.len();
    let end = start + page.body[start..].find('<').unwrap();
    &page.body[start..end]
}

fn strings(lang: &str) -> Value {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/pages/i18n.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    all[lang].clone()
}

#[tokio::test]
async fn a_page_post_that_is_not_a_form_is_a_page_in_the_users_language() {
    let app = TestApp::builder()
        .env("RETURN_TO_ORIGINS", "https://app.example.test")
        .start()
        .await;
    let mut b = Browser::new(&app);
    let csrf = b.get("/login", &[]).await.csrf();
    let body = format!(r#"{{"csrf":"{csrf}","email":"x@example.com","action":"send"}}"#);
    for (lang, accept) in [("en", "en-US,en;q=0.9"), ("zh-CN", "zh-CN,zh;q=0.9")] {
        let t = strings(lang);
        let headers = [("accept-language", accept)];
        for path in PAGE_POSTS {
            for content_type in [
                Some("application/json"),
                Some("text/plain"),
                Some("multipart/form-data; boundary=x"),
                None,
            ] {
                let what = format!("{path} {content_type:?} {lang}");
                let page = b.post_raw(path, content_type, body.clone(), &headers).await;
                assert_is_page(&page, 415, lang, &what);
                assert_eq!(form_error(&page), t["err_not_a_form"], "{what}");
            }
        }
    }
    // The way back is the form, carrying the page's return_to.
    let to = "https://app.example.test/welcome";
    let path = format!("/register?return_to={}", encode(to));
    let page = b.post_raw(&path, Some("text/plain"), body, &[]).await;
    assert_eq!(page.status, 415);
    assert_eq!(page.attr("back", "href"), path);
    let page = b.post_raw("/logout", None, String::new(), &[]).await;
    assert_eq!(page.attr("back", "href"), "/account");
    assert!(
        app.dev_mails("x@example.com").await.is_empty(),
        "nothing sent"
    );
}

#[tokio::test]
async fn a_form_with_a_field_twice_is_a_400_page_and_does_nothing() {
    let app = TestApp::builder().start().await;
    app.register_via_dev_mailbox("twice@example.com", "a fine password")
        .await;
    let mut b = Browser::new(&app);
    let csrf = b.get("/login", &[]).await.csrf();
    let form = "application/x-www-form-urlencoded";
    for (lang, accept) in [("en", "en"), ("zh-CN", "zh-CN")] {
        let t = strings(lang);
        let headers = [("accept-language", accept)];
        for path in PAGE_POSTS {
            // The second address would be the one mailed, were it read.
            let body = format!(
                "csrf={csrf}&action=send&email=twice%40example.com&email=other%40example.com\
                 &password=a+fine+password"
            );
            let what = format!("{path} {lang}");
            let page = b.post_raw(path, Some(form), body, &headers).await;
            assert_is_page(&page, 400, lang, &what);
            assert_eq!(form_error(&page), t["err_bad_form"], "{what}");
            assert!(page.set_cookie("authmail_session").is_none(), "{what}");
        }
    }
    assert!(app.dev_mails("other@example.com").await.is_empty());
    assert_eq!(
        app.dev_mails("twice@example.com").await.len(),
        1,
        "only the register mail"
    );
    // The same form, each field once, is read.
    let body = format!("csrf={csrf}&email=twice%40example.com&password=a+fine+password");
    let page = b.post_raw("/login", Some(form), body, &[]).await;
    assert_eq!((page.status, page.location()), (303, "/account"));
}
