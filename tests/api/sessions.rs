//! Sessions an app can check, from the attacker's side: no JWT without a
//! live bearer session (none, expired, logged out, ended by a password
//! reset), and `/me` by the pages' cookie but never by a forged one.

use std::time::Duration;

use serde_json::json;

use crate::support::api::{Reply, SESSION_TTL_SECS};
use crate::support::app::TestApp;
use crate::support::wait::eventually;

#[tokio::test]
async fn no_jwt_without_a_live_bearer_session() {
    let app = TestApp::builder().no_limits().start().await;
    let (_, token) = app.signed_in("ann@example.com").await;
    let refused = |r: Reply, why: &str| {
        assert_eq!(r.status, 401, "{why}: {}", r.raw);
        let body = r.body.as_object().unwrap();
        assert_eq!(body.len(), 1, "{why}: {}", r.raw);
        assert_eq!(r.error_code(), "unauthorized", "{why}");
        assert!(r.body["error"]["message"].is_string(), "{why}");
    };
    let post = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.request("POST", "/api/auth/jwt", None, &headers).await
        }
    };
    refused(post(vec![]).await, "no Authorization");
    refused(
        post(vec![("authorization", format!("Basic {token}"))]).await,
        "not bearer",
    );
    refused(app.jwt(&"0".repeat(64)).await, "a token nobody was given");
    // The pages' cookie is for GET /me only: a JWT needs the bearer token.
    refused(
        post(vec![("cookie", format!("authmail_session={token}"))]).await,
        "cookie",
    );

    // Expired: the session's end moved into the past behind authmail's back.
    let (_, expiring) = app.signed_in("exp@example.com").await;
    assert_eq!(app.jwt(&expiring).await.status, 200);
    app.db
        .exec("UPDATE sessions SET expires_at = 1 WHERE user_id = (SELECT id FROM users WHERE email = 'exp@example.com')")
        .await;
    refused(app.jwt(&expiring).await, "expired session");

    assert_eq!(app.logout(&token).await.status, 204);
    refused(app.jwt(&token).await, "logged out");

    // A password reset ends every older session: none of them gets a JWT.
    let (_, before_reset) = app.signed_in("rex@example.com").await;
    assert_eq!(
        app.send_code("rex@example.com", "reset_password")
            .await
            .status,
        202
    );
    let code = eventually(Duration::from_secs(10), || async {
        let mails = app.dev_mails("rex@example.com").await;
        let codes: Vec<String> = mails
            .iter()
            .filter_map(|m| m["code"].as_str().map(String::from))
            .collect();
        match codes.len() >= 2 {
            true => Ok(codes[1].clone()),
            false => Err(format!("{} codes", codes.len())),
        }
    })
    .await;
    let r = app
        .reset_password("rex@example.com", &code, "another password")
        .await;
    let after_reset = r.session_token("rex@example.com", SESSION_TTL_SECS);
    refused(app.jwt(&before_reset).await, "ended by a reset");
    refused(app.me(&before_reset).await, "ended by a reset, at /me");
    assert_eq!(app.jwt(&after_reset).await.status, 200);
}

#[tokio::test]
async fn me_takes_the_pages_cookie_but_not_a_forged_one() {
    let app = TestApp::builder().no_limits().start().await;
    let (user_id, token) = app.signed_in("cy@example.com").await;
    let me = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.request("GET", "/api/auth/me", None, &headers).await
        }
    };
    let cookie = |value: &str| {
        vec![(
            "cookie",
            format!("authmail_lang=en; authmail_session={value}"),
        )]
    };

    let r = me(cookie(&token)).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(
        (&r.body["id"], &r.body["email"]),
        (&json!(user_id), &json!("cy@example.com"))
    );

    for (why, headers) in [
        ("a forged cookie", cookie(&"f".repeat(64))),
        ("an empty cookie", cookie("")),
        // Over http the cookie has no __Host- prefix; another name is not it.
        (
            "the https name over http",
            vec![("cookie", format!("__Host-authmail_session={token}"))],
        ),
        // A wrong Authorization header is not made good by a right cookie.
        (
            "a bad bearer beside a good cookie",
            [
                cookie(&token),
                vec![("authorization", "Bearer nope".to_string())],
            ]
            .concat(),
        ),
    ] {
        let r = me(headers).await;
        assert_eq!(
            (r.status, r.error_code()),
            (401, "unauthorized"),
            "{why}: {}",
            r.raw
        );
    }

    // The page's own sign-out ends the session the cookie held.
    assert_eq!(app.logout(&token).await.status, 204);
    assert_eq!(me(cookie(&token)).await.status, 401);
}
