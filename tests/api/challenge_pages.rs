//! The challenge on the pages, over plain HTTP as a browser without
//! JavaScript posts them: the picture after a 428 (or on every form that
//! sends a code with `CHALLENGE=always`), its digits or a proof of work
//! posted with the send, and what the script needs (its worker, the CSP).
//! The script itself runs in Chromium in `browser.rs`.

use serde_json::Value;

use crate::challenge::solved;
use crate::pages::field_error;
use crate::support::app::{Builder, TestApp};
use crate::support::browser::{encode, Browser, Page};
use crate::support::pictures::{self, SECRET};

const STRINGS: &str = include_str!("../../templates/pages/i18n.json");

fn t(lang: &str, key: &str) -> String {
    let strings: Value = serde_json::from_str(STRINGS).unwrap();
    strings[lang][key].as_str().unwrap().to_string()
}

fn app(mode: &str) -> Builder {
    TestApp::builder().no_limits().envs(&[
        ("CHALLENGE", mode),
        ("CHALLENGE_BITS", "12"),
        ("SECRET_KEY", SECRET),
    ])
}

/// The id of the picture `page` shows, if it shows one.
fn picture_id(page: &Page) -> Option<String> {
    let marker = "name=\"challenge_id\" value=\"";
    let start = page.body.find(marker)? + marker.len();
    let end = start + page.body[start..].find('"').unwrap();
    Some(page.body[start..end].to_string())
}

/// The picture, read as its digits.
async fn read(app: &TestApp, page: &Page) -> (String, String) {
    let id = picture_id(page).expect("a picture");
    let digits = pictures::digits(&app.db, SECRET, &id).await.unwrap();
    (id, digits)
}

/// Step 1's send, with the challenge fields `extra`.
async fn send(
    b: &mut Browser,
    path: &str,
    page: &Page,
    email: &str,
    extra: &[(&str, &str)],
) -> Page {
    let csrf = page.csrf();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("action", "send"),
        ("email", email),
    ];
    form.extend_from_slice(extra);
    b.post(path, &form, &[]).await
}

#[tokio::test]
async fn always_a_page_without_javascript_shows_a_picture_and_takes_its_digits() {
    let app = app("always").start().await;
    let mut b = Browser::new(&app);
    let page = b.get("/register?lang=en", &[]).await;
    assert_eq!(page.status, 200);
    assert!(
        page.attr("send-form", "data-challenge")
            .starts_with("/static/pow.js?v="),
        "the script's worker"
    );
    assert!(page.body.contains("<noscript class=\"challenge\">"));
    assert!(
        page.attr("challenge-image", "src")
            .starts_with("data:image/png;base64,iVBOR"),
        "a PNG inline"
    );
    assert_eq!(
        page.attr("challenge-image", "alt"),
        t("en", "challenge_alt")
    );
    assert!(page.body.contains(&t("en", "challenge_label")));

    // Sent without the digits: 428, by the address, with a picture.
    let page = send(&mut b, "/register", &page, "pic@example.com", &[]).await;
    assert_eq!(page.status, 428, "{}", page.body);
    assert_eq!(
        field_error(&page, "email"),
        t("en", "err_challenge_required")
    );
    let (id, digits) = read(&app, &page).await;

    // Wrong digits: 428 by the picture, and a new picture (one guess each).
    let wrong = if digits == "11111" { "22222" } else { "11111" };
    let page = send(
        &mut b,
        "/register",
        &page,
        "pic@example.com",
        &[("challenge_id", &id), ("challenge_answer", wrong)],
    )
    .await;
    assert_eq!(page.status, 428);
    assert_eq!(
        field_error(&page, "challenge_answer"),
        t("en", "err_challenge_wrong")
    );
    assert_eq!(page.attr("challenge_answer", "aria-invalid"), "true");
    let (next, digits_next) = read(&app, &page).await;
    assert_ne!(next, id, "a new picture");
    assert_eq!(
        pictures::digits(&app.db, SECRET, &id).await,
        None,
        "used up"
    );

    // The right digits: the code goes out; step 2's resend form has a picture too.
    let page = send(
        &mut b,
        "/register",
        &page,
        "pic@example.com",
        &[("challenge_id", &next), ("challenge_answer", &digits_next)],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"code\""), "step 2");
    app.wait_dev_mails("pic@example.com", 1).await;
    let resend = page.body.split("id=\"resend-form\"").nth(1).unwrap();
    assert!(resend.contains("name=\"challenge_answer\""), "{resend}");
}

#[tokio::test]
async fn a_proof_of_work_solved_by_the_script_sends_once() {
    let app = app("always").start().await;
    let mut b = Browser::new(&app);
    let page = b.get("/login?mode=code&lang=zh-CN", &[]).await;
    let solution = solved(&app).await;
    let (id, nonce) = (
        solution["id"].as_str().unwrap(),
        solution["nonce"].as_str().unwrap(),
    );
    let fields = [
        ("challenge_id", id),
        ("challenge_nonce", nonce),
        ("mode", "code"),
    ];
    let sent = send(&mut b, "/login", &page, "pow@example.com", &fields).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.body.contains("id=\"code\""), "step 2");
    // Used up: the same again is a 428, in the page's language, with a picture.
    let again = send(&mut b, "/login", &page, "pow@example.com", &fields).await;
    assert_eq!(again.status, 428);
    assert_eq!(
        field_error(&again, "email"),
        t("zh-CN", "err_challenge_required")
    );
    assert!(picture_id(&again).is_some());
    assert!(
        again.body.contains(" data-challenged"),
        "the script shows the picture rather than solve again"
    );
}

/// `auto`: the picture only once a send was answered 428, and `return_to`
/// kept through that page.
#[tokio::test]
async fn auto_shows_the_picture_after_a_428_only() {
    let app = app("auto")
        .envs(&[
            ("CHALLENGE_AFTER", "1"),
            ("RESEND_COOLDOWN_SECS", "0"),
            ("RETURN_TO_ORIGINS", "https://app.example.test"),
        ])
        .start()
        .await;
    let mut b = Browser::new(&app);
    let to = "https://app.example.test/welcome?n=1";
    let path = format!("/forgot-password?return_to={}", encode(to));
    let page = b.get(&path, &[]).await;
    assert!(picture_id(&page).is_none(), "no picture up front");
    assert!(
        page.body.contains("data-challenge="),
        "the script solves anyway"
    );
    let sent = send(&mut b, &path, &page, "auto@example.com", &[]).await;
    assert_eq!(sent.status, 200, "the first send of this network is free");
    assert!(picture_id(&sent).is_none());
    // The resend button of step 2: over CHALLENGE_AFTER, a picture by it.
    let csrf = sent.csrf();
    let again = b.send_code(&path, &csrf, "auto@example.com", "1").await;
    assert_eq!(again.status, 428, "{}", again.body);
    let resend = again.body.split("id=\"resend-form\"").nth(1).unwrap();
    assert!(resend.contains("name=\"challenge_answer\""), "{resend}");
    let action = again.attr("resend-form", "action");
    assert!(
        action.contains(&format!("return_to={}", encode(to))),
        "{action}"
    );
    let (id, digits) = read(&app, &again).await;
    let fields = [
        ("csrf", csrf.as_str()),
        ("mode", "code"),
        ("action", "send"),
        ("email", "auto@example.com"),
        ("sent_at", "1"),
        ("challenge_id", &id),
        ("challenge_answer", &digits),
    ];
    let page = b.post(&action, &fields, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    app.wait_dev_mails("auto@example.com", 2).await;
}

#[tokio::test]
async fn off_means_no_worker_and_no_picture() {
    let app = app("off").start().await;
    let mut b = Browser::new(&app);
    let page = b.get("/register", &[]).await;
    assert!(!page.body.contains("data-challenge"));
    assert!(picture_id(&page).is_none());
}

/// The worker is served as a script, and the pages' policy lets it run and
/// lets the picture show, and still allows no inline script.
#[tokio::test]
async fn the_policy_allows_the_worker_and_the_inline_picture() {
    let app = app("always").start().await;
    let mut b = Browser::new(&app);
    let worker = b.get("/static/pow.js", &[]).await;
    assert_eq!(worker.status, 200);
    assert_eq!(
        worker.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(worker.body.contains("self.onmessage"));
    let page = b.get("/register", &[]).await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    for part in [
        "worker-src 'self'",
        "img-src 'self' data:",
        "script-src 'self';",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
}
