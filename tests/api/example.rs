//! The example app (`examples/python-backend`, walked through in
//! docs/integrate.md) against the real binary, as its users and an attacker
//! meet it: signup and login through the app's own pages, the user's
//! address passed on so that limits and the challenge count people, not the
//! app; the app trusts only JWTs signed by authmail's current keys, for it,
//! unexpired; it reacts to `user.created`, and only to deliveries authmail
//! signed.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

use crate::support::api::time_now;
use crate::support::app::TestApp;
use crate::support::db::TestDb;
use crate::support::example::{Answer, Example, AUDIENCE};
use crate::support::forge::{b64, claims, ed25519_key, forge, hook_headers, part, sign, with_kid};
use crate::support::pictures::{self, SECRET as SECRET_KEY};
use crate::support::wait::eventually;
use crate::support::webhooks::SECRET as WEBHOOK_SECRET;

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "a good password";

/// authmail as docs/integrate.md sets it up for the app, and the app.
async fn start() -> (TestApp, Example) {
    let port = Example::free_port();
    let hook = format!("http://127.0.0.1:{port}/hooks/authmail");
    let app = TestApp::builder()
        .process()
        .envs(&[
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
            ("CHALLENGE", "auto"),
            ("CHALLENGE_AFTER", "2"),
            ("JWT_AUDIENCE", AUDIENCE),
            ("WEBHOOK_URL", &hook),
            ("WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("SECRET_KEY", SECRET_KEY),
        ])
        .start()
        .await;
    let example = Example::start(port, &app.base, WEBHOOK_SECRET).await;
    (app, example)
}

/// Signup through the app's pages from `ip`; the `session` and `jwt` cookies.
async fn sign_up(app: &TestApp, example: &Example, email: &str, ip: &str) -> (String, String) {
    let sent = example
        .post_form("/signup", ip, &[("step", "send"), ("email", email)])
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.field("step").as_deref(), Some("code"), "{}", sent.body);
    let code = app.dev_code(email, WAIT).await;
    let form = [
        ("step", "code"),
        ("email", email),
        ("code", &code),
        ("password", PASSWORD),
    ];
    let done = example.post_form("/signup", ip, &form).await;
    assert_eq!((done.status, done.location()), (303, "/"), "{}", done.body);
    (done.cookie("session"), done.cookie("jwt"))
}

#[tokio::test]
async fn a_user_signs_up_through_the_app_and_the_webhook_makes_their_profile() {
    let (app, example) = start().await;
    let (session, jwt) = sign_up(&app, &example, "ana@example.com", "203.0.113.5").await;

    // The page knows her from the JWT alone; the profile comes with the webhook.
    let page = eventually(WAIT, || async {
        let page = example.get_with_cookies("/", &[("jwt", &jwt)]).await;
        match page
            .body
            .contains("Profile made by the user.created webhook")
        {
            true => Ok(page),
            false => Err(format!("no profile yet: {}", page.body)),
        }
    })
    .await;
    assert!(
        page.body.contains("<b id=\"email\">ana@example.com</b>"),
        "{}",
        page.body
    );
    let api = example.profile(&jwt).await;
    assert_eq!(api.status, 200, "{}", api.body);
    let api: Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(api["user"]["email"], "ana@example.com");
    assert_eq!(api["profile"]["email"], "ana@example.com");

    log_in_again(&app, &example, "ana@example.com").await;

    // A JWT past its exp is traded for a new one while the session lives;
    // after logout it is refused.
    let expired = sign(&app, &claims(&app, &api["user"], -1000)).await;
    let page = example
        .get_with_cookies("/", &[("jwt", &expired), ("session", &session)])
        .await;
    assert!(page.body.contains("id=\"email\""), "{}", page.body);
    let out = example.logout(&session).await;
    assert_eq!((out.status, out.location()), (303, "/"), "{}", out.body);
    assert_eq!(
        app.jwt(&session).await.status,
        401,
        "the app ended the session at authmail"
    );
    let page = example
        .get_with_cookies("/", &[("jwt", &expired), ("session", &session)])
        .await;
    assert!(!page.body.contains("id=\"email\""), "{}", page.body);
    stop(app, example);
}

#[tokio::test]
async fn the_app_trusts_only_jwts_authmails_keys_signed_for_it_and_follows_a_rotation() {
    let (app, example) = start().await;
    let (session, jwt) = sign_up(&app, &example, "bo@example.com", "203.0.113.7").await;
    let ok = example.profile(&jwt).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let user = serde_json::from_str::<Value>(&ok.body).unwrap()["user"].clone();
    let kid = part(&jwt, 0)["kid"].as_str().unwrap().to_string();
    for (what, token) in &attacks(&app, &jwt, &user).await {
        let r = example.profile(token).await;
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        let page = example.get_with_cookies("/", &[("jwt", token)]).await;
        assert!(!page.body.contains("Signed in as"), "{what}: {}", page.body);
    }
    // The same claims signed with the stored key pass: the refusals above are
    // about what each attack changed, not about how the test signs.
    let good = sign(&app, &claims(&app, &user, 0)).await;
    assert_eq!(example.profile(&good).await.status, 200);

    // authmail rotates its key: the app meets the new kid, fetches the JWKS
    // again, and accepts it.
    app.cli(
        &[("SECRET_KEY".into(), SECRET_KEY.into())],
        &["keys", "rotate"],
    );
    let fresh = eventually(WAIT, || async {
        let r = app.jwt(&session).await;
        let jwt = r.body["jwt"].as_str().unwrap_or_default().to_string();
        match part(&jwt, 0)["kid"] != json!(kid) {
            true => Ok(jwt),
            false => Err("still signed with the old key"),
        }
    })
    .await;
    eventually(WAIT, || async {
        let r = example.profile(&fresh).await;
        (r.status == 200).then_some(()).ok_or(r.body)
    })
    .await;
    assert_eq!(
        example.profile(&jwt).await.status,
        200,
        "the old key is still listed"
    );
    stop(app, example);
}

#[tokio::test]
async fn the_app_asks_for_a_picture_per_network_and_passes_on_retry_after() {
    let (app, example) = start().await;
    let send = |email, ip, extra| send_code(&example, email, ip, extra);
    // CHALLENGE_AFTER=2 sends from one /24; the third needs the picture.
    assert_eq!(
        send("a1@example.com", "203.0.113.10", &[]).await.status,
        200
    );
    assert_eq!(
        send("a2@example.com", "203.0.113.11", &[]).await.status,
        200
    );
    let asked = send("a3@example.com", "203.0.113.12", &[]).await;
    assert_eq!(asked.status, 428, "{}", asked.body);
    assert!(asked
        .body
        .contains("<img id=\"challenge\" alt=\"five digits\" src=\"data:image/png;base64,"));
    let id = asked.field("challenge_id").expect("the picture's id");
    let digits = pictures::digits(&app.db, SECRET_KEY, &id).await.unwrap();
    let extra = [("challenge_id", id.as_str()), ("challenge_answer", &digits)];
    let sent = send("a3@example.com", "203.0.113.12", &extra).await;
    assert_eq!(
        (sent.status, sent.field("step")),
        (200, Some("code".into())),
        "{}",
        sent.body
    );
    app.dev_code("a3@example.com", WAIT).await; // mailed

    // Another network is not asked: authmail counts the browsers, not the
    // app's own address (which has made four sends by now).
    let other = send("b1@example.com", "198.51.100.7", &[]).await;
    assert_eq!(other.status, 200, "{}", other.body);
    // The same address again within the cooldown: the wait reaches the browser.
    let again = send("b1@example.com", "198.51.100.7", &[]).await;
    assert_eq!(again.status, 429, "{}", again.body);
    let wait: u64 = again.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(
        again.body.contains(&format!("wait {wait} seconds")),
        "{}",
        again.body
    );
    stop(app, example);
}

#[tokio::test]
async fn the_app_refuses_webhooks_authmail_did_not_sign() {
    let (app, example) = start().await;
    let body = json!({"type": "user.created", "timestamp": "2026-12-01T08:00:00Z",
                      "data": {"user": {"id": "77", "email": "mallory@example.com"}}})
    .to_string();
    let now = time_now();
    let key = STANDARD
        .decode(WEBHOOK_SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let wrong = [9u8; 32];
    let attempts = [
        ("unsigned", vec![]),
        (
            "signed with another secret",
            hook_headers(&wrong, "msg_1", now, &body),
        ),
        (
            "signed ten minutes ago",
            hook_headers(&key, "msg_2", now - 600, &body),
        ),
        (
            "a signature of another body",
            hook_headers(&key, "msg_3", now, "{}"),
        ),
    ];
    for (what, headers) in &attempts {
        let r = example.post_hook(headers, &body).await;
        assert_eq!(r.status, 400, "{what}: {}", r.body);
    }
    let profiles = TestDb::sqlite(&example.db_path());
    assert_eq!(profiles.int("SELECT COUNT(*) FROM profiles").await, 0);

    // Signed with the secret, it is taken, once however often it comes.
    for _ in 0..2 {
        let r = example
            .post_hook(&hook_headers(&key, "msg_4", now, &body), &body)
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
    }
    assert_eq!(
        profiles
            .int("SELECT COUNT(*) FROM profiles WHERE user_id = '77'")
            .await,
        1
    );
    stop(app, example);
}

/// Back again: a password login, and a login by code, each landing on `/`.
async fn log_in_again(app: &TestApp, example: &Example, email: &str) {
    let login = [
        ("step", "password"),
        ("email", email),
        ("password", PASSWORD),
    ];
    let back = example.post_form("/login", "203.0.113.5", &login).await;
    assert_eq!((back.status, back.location()), (303, "/"), "{}", back.body);
    let send = [("step", "send"), ("email", email)];
    let sent = example.post_form("/login", "198.51.100.20", &send).await;
    assert_eq!(sent.field("step").as_deref(), Some("code"), "{}", sent.body);
    let code = eventually(WAIT, || async {
        let mails = app.dev_mails(email).await;
        let code = mails
            .last()
            .and_then(|m| m["code"].as_str().map(str::to_string));
        code.filter(|_| mails.len() == 2).ok_or("no login code yet")
    })
    .await;
    let form = [("step", "code"), ("email", email), ("code", &code)];
    let back = example.post_form("/login", "198.51.100.20", &form).await;
    assert_eq!((back.status, back.location()), (303, "/"), "{}", back.body);
}

/// JWTs the app must refuse, each named, made from `jwt`, a good one of `user`'s.
async fn attacks(app: &TestApp, jwt: &str, user: &Value) -> Vec<(&'static str, String)> {
    let kid = part(jwt, 0)["kid"].as_str().unwrap().to_string();
    // Someone else's id in bo's token: the signature no longer matches.
    let mut other = part(jwt, 1);
    other["sub"] = json!("1000");
    let sig = jwt.rsplit('.').next().unwrap();
    let tampered = format!("{}.{}.{sig}", b64(&part(jwt, 0)), b64(&other));
    // A key of the attacker's own, under authmail's kid and under a new one.
    let attacker = ed25519_key([7; 32]);
    let good = claims(app, user, 0);
    let forged = forge(&kid, &good, &attacker);
    let unknown = forge("attacker", &good, &attacker);
    // No signature at all, and HS256 keyed by authmail's public key.
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good)
    );
    let x = app.get("/.well-known/jwks.json").await.body["keys"][0]["x"].clone();
    let public = URL_SAFE_NO_PAD.decode(x.as_str().unwrap()).unwrap();
    let hs256 = jsonwebtoken::encode(
        &with_kid(
            jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &kid,
        ),
        &good,
        &jsonwebtoken::EncodingKey::from_secret(&public).unwrap(),
    )
    .unwrap();
    // authmail's own key, but expired, for another app, from another issuer.
    let expired = sign(app, &claims(app, user, -700)).await;
    let mut elsewhere = good.clone();
    elsewhere["aud"] = json!("another-app");
    let mut no_aud = good.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    let mut issuer = good.clone();
    issuer["iss"] = json!("https://evil.example");

    let attacks = [
        ("tampered", tampered),
        ("forged under authmail's kid", forged),
        ("forged under a new kid", unknown),
        ("unsigned", unsigned),
        ("HS256 with the public key", hs256),
        ("expired", expired),
        ("for another audience", sign(app, &elsewhere).await),
        ("without an audience", sign(app, &no_aud).await),
        ("from another issuer", sign(app, &issuer).await),
        ("not a JWT", "eyJhbGciOi.garbage".to_string()),
    ];
    attacks.into()
}

/// The signup page's first step from `ip`, with the fields `extra`.
async fn send_code(example: &Example, email: &str, ip: &str, extra: &[(&str, &str)]) -> Answer {
    let mut form = vec![("step", "send"), ("email", email)];
    form.extend_from_slice(extra);
    example.post_form("/signup", ip, &form).await
}

/// Stops the app (SIGTERM, and it exits cleanly), then authmail likewise.
fn stop(mut app: TestApp, example: Example) {
    drop(example);
    assert!(app.terminate().success(), "{}", app.logs());
}
