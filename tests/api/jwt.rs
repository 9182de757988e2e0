//! JWTs an app verifies on its own: every token is checked by an independent
//! implementation (PyJWT with `cryptography`) against the JWKS the app
//! serves, across a key rotation and on a second instance; and the ways in
//! that must stay shut (no session, an ended one, a forged cookie).

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::api::{Reply, SESSION_TTL_SECS};
use crate::support::app::{bin, TestApp};
use crate::support::db::TestDb;
use crate::support::wait::{eventually, output_within};

const PASSWORD: &str = "a good password";

/// PyJWT: the signing key picked from the JWKS at `jwks_url` by the token's
/// `kid`, the signature, `iss`, `aud` (when given; a token with an `aud`
/// and none expected fails), `exp` and `iat` all checked, `alg` only EdDSA.
const VERIFY: &str = r#"
import json, sys, jwt
url, token, issuer, audience = sys.argv[1:5]
try:
    key = jwt.PyJWKClient(url, cache_jwk_set=False).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer=issuer,
                        audience=audience or None,
                        options={"require": ["iss", "sub", "exp", "iat"]})
except Exception as e:
    print(type(e).__name__, e, file=sys.stderr)
    sys.exit(1)
print(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}))
"#;

/// What PyJWT makes of `token` from an app whose `PUBLIC_URL` is left at
/// its default (`app.base`): its header and claims, or why it refused it.
fn pyjwt(app: &TestApp, token: &str, audience: Option<&str>) -> Result<Value, String> {
    verify(app, &app.base, token, audience)
}

/// PyJWT's verdict on `token` against the JWKS of `app`, issued by `issuer`.
fn verify(
    app: &TestApp,
    issuer: &str,
    token: &str,
    audience: Option<&str>,
) -> Result<Value, String> {
    let child = Command::new("python3")
        .args(["-c", VERIFY])
        .args([&format!("{}/.well-known/jwks.json", app.base), token])
        .args([issuer, audience.unwrap_or("")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (pip install -r tests/requirements.txt)");
    let out = output_within(child, Duration::from_secs(30)).expect("PyJWT finished");
    match out.status.success() {
        true => Ok(serde_json::from_slice(&out.stdout).unwrap()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

/// A new account's (user id, session token).
async fn signed_in(app: &TestApp, email: &str) -> (String, String) {
    app.register_via_dev_mailbox(email, PASSWORD).await;
    let r = app.login(email, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let token = r.session_token(email, SESSION_TTL_SECS);
    (r.body["user"]["id"].as_str().unwrap().to_string(), token)
}

/// A JWT for the session `token`, after checking the answer's shape.
async fn jwt(app: &TestApp, token: &str, ttl_secs: i64) -> String {
    let r = app.jwt(token).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.headers["cache-control"], "no-store");
    let body = r.body.as_object().unwrap();
    assert_eq!(body.len(), 2, "jwt and expires_at: {}", r.raw);
    let jwt = body["jwt"].as_str().unwrap().to_string();
    let exp = claims(&jwt)["exp"].as_i64().unwrap();
    assert_eq!(
        body["expires_at"],
        authmail::clock::rfc3339(exp),
        "{}",
        r.raw
    );
    let now = app.clock().now();
    assert!(
        (now - 5..=now).contains(&(exp - ttl_secs)),
        "exp {exp} is not {ttl_secs} s from {now}"
    );
    jwt
}

/// The claims as written, unverified (for what PyJWT is not asked about).
fn claims(jwt: &str) -> Value {
    jws_part(jwt, 1)
}

fn header(jwt: &str) -> Value {
    jws_part(jwt, 0)
}

/// The JSON of a compact JWS's `n`-th part.
fn jws_part(jwt: &str, n: usize) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(n).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn kid(verified: &Value) -> String {
    verified["header"]["kid"].as_str().unwrap().to_string()
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let r = app.get("/.well-known/jwks.json").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// `authmail keys rotate --lang en` on the app's database, while it runs.
fn rotate(app: &TestApp, env: &[(&str, &str)]) -> String {
    let child = Command::new(bin())
        .args(["keys", "rotate", "--lang", "en"])
        .current_dir(app.path())
        .env_clear()
        .env("DATABASE_URL", app.db.url())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(child, Duration::from_secs(30)).expect("keys rotate finished");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "keys rotate: {stdout}{stderr}");
    stdout
}

#[tokio::test]
async fn a_jwt_names_user_and_session_and_pyjwt_verifies_it_against_the_jwks() {
    let app = TestApp::builder()
        .no_limits()
        .env("JWT_AUDIENCE", "my-app")
        .start()
        .await;
    let (user_id, token) = signed_in(&app, "jo@example.com").await;
    let token_jwt = jwt(&app, &token, 600).await;

    let verified = pyjwt(&app, &token_jwt, Some("my-app")).expect("PyJWT verifies it");
    assert_eq!(verified["header"]["alg"], "EdDSA");
    assert_eq!(verified["header"]["typ"], "JWT");
    assert_eq!(jwks_kids(&app).await, [kid(&verified)]);
    let c = &verified["claims"];
    let mut names: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["aud", "email", "exp", "iat", "iss", "sid", "sub"]);
    assert_eq!((&c["iss"], &c["sub"]), (&json!(app.base), &json!(user_id)));
    assert_eq!(
        (&c["email"], &c["aud"]),
        (&json!("jo@example.com"), &json!("my-app"))
    );
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    // `sid` is the session's id: the same for every JWT of one session,
    // another for another session, and never the token.
    let sid = c["sid"].as_str().unwrap();
    let newest = app.db.int("SELECT MAX(id) FROM sessions").await;
    assert_eq!(sid, newest.to_string());
    assert!(!token_jwt.contains(&token));
    let again = claims(&jwt(&app, &token, 600).await);
    assert_eq!(again["sid"], sid);
    let other = app.login("jo@example.com", PASSWORD).await;
    let other = other.session_token("jo@example.com", SESSION_TTL_SECS);
    assert_ne!(claims(&jwt(&app, &other, 600).await)["sid"], sid);

    // The checks can fail: another audience, none expected, a flipped bit.
    assert!(pyjwt(&app, &token_jwt, Some("another-app")).is_err());
    assert!(pyjwt(&app, &token_jwt, None).is_err());
    let (signed, signature) = token_jwt.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signed}.{flipped}{}", &signature[1..]);
    let refused = pyjwt(&app, &forged, Some("my-app")).unwrap_err();
    assert!(refused.contains("InvalidSignatureError"), "{refused}");
}

#[tokio::test]
async fn rotation_keeps_old_tokens_verifiable_until_they_expire() {
    let app = TestApp::builder()
        .no_limits()
        .manual_clock()
        .env("JWT_TTL_SECS", "60")
        .start()
        .await;
    let (_, token) = signed_in(&app, "ro@example.com").await;
    // Behind PyJWT's clock, so that moving it on below never issues a token
    // from PyJWT's future.
    app.clock().advance(-30);
    let old_jwt = jwt(&app, &token, 60).await;
    let old_kid = kid(&pyjwt(&app, &old_jwt, None).expect("verifies"));

    let said = rotate(&app, &[("JWT_TTL_SECS", "60")]);
    let kids = jwks_kids(&app).await;
    let new_kid = kids[0].clone();
    assert_eq!(
        kids,
        [new_kid.clone(), old_kid.clone()],
        "the new key first"
    );
    assert!(
        said.contains(&format!("new JWT signing key {new_kid} signs from now on")),
        "{said}"
    );
    assert!(
        said.contains("the previous key stays in /.well-known/jwks.json until"),
        "{said}"
    );

    // The instance read the current key less than 5 s ago by its clock, so
    // it signs with the old one until those 5 s have passed, then with the
    // new one, without a restart. Both tokens verify.
    assert_eq!(
        header(&jwt(&app, &token, 60).await)["kid"],
        old_kid.as_str()
    );
    app.clock().advance(5);
    let new_jwt = jwt(&app, &token, 60).await;
    assert_eq!(
        kid(&pyjwt(&app, &new_jwt, None).expect("new verifies")),
        new_kid
    );
    assert_eq!(
        kid(&pyjwt(&app, &old_jwt, None).expect("old still verifies")),
        old_kid
    );

    // The old key signed its last token at most 5 s after the rotation, for
    // 60 s (JWT_TTL_SECS): it is listed until then, and not a second longer.
    let retired_at = app
        .db
        .int("SELECT retired_at FROM jwt_keys WHERE retired_at IS NOT NULL")
        .await;
    app.clock().set(retired_at + 64);
    assert_eq!(jwks_kids(&app).await, [new_kid.clone(), old_kid.clone()]);
    app.clock().set(retired_at + 65);
    assert_eq!(jwks_kids(&app).await, [new_kid]);
    let refused = pyjwt(&app, &old_jwt, None).unwrap_err();
    assert!(refused.contains("PyJWKClientError"), "{refused}");
    assert!(pyjwt(&app, &new_jwt, None).is_ok());
    assert_eq!(
        app.db
            .int("SELECT COUNT(*) FROM jwt_keys WHERE retired_at IS NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn the_jwks_holds_public_keys_only() {
    let app = TestApp::builder().start().await;
    rotate(&app, &[]);
    let r = app.get("/.well-known/jwks.json").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let keys = r.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{}", r.raw);
    for key in keys {
        let mut names: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        // No `d` (the private key), nor anything else than RFC 8037's public members.
        assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x"], "{key}");
        assert_eq!(
            (&key["kty"], &key["crv"]),
            (&json!("OKP"), &json!("Ed25519"))
        );
        assert_eq!((&key["alg"], &key["use"]), (&json!("EdDSA"), &json!("sig")));
        assert_eq!(
            key["x"].as_str().unwrap().len(),
            43,
            "32 bytes, base64url: {key}"
        );
    }
    // At rest the private half is sealed: no stored bytes are a key whose
    // public half is the published one (checked by PyJWT's cryptography).
    let sealed = app
        .db
        .texts("SELECT kid FROM jwt_keys WHERE length(private_key) = 60")
        .await;
    assert_eq!(sealed.len(), 2, "nonce, sealed 32-byte seed, tag");
}

#[tokio::test]
async fn no_jwt_without_a_live_bearer_session() {
    let app = TestApp::builder().no_limits().start().await;
    let (_, token) = signed_in(&app, "ann@example.com").await;
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
    let (_, expiring) = signed_in(&app, "exp@example.com").await;
    assert_eq!(app.jwt(&expiring).await.status, 200);
    app.db
        .exec("UPDATE sessions SET expires_at = 1 WHERE user_id = (SELECT id FROM users WHERE email = 'exp@example.com')")
        .await;
    refused(app.jwt(&expiring).await, "expired session");

    assert_eq!(app.logout(&token).await.status, 204);
    refused(app.jwt(&token).await, "logged out");

    // A password reset ends every older session: none of them gets a JWT.
    let (_, before_reset) = signed_in(&app, "rex@example.com").await;
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
    let (user_id, token) = signed_in(&app, "cy@example.com").await;
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

/// Two instances starting at once on one new PostgreSQL database make one
/// key between them; a token from either verifies against the other's JWKS,
/// and a rotation reaches both without a restart.
#[tokio::test]
async fn multi_instance_two_instances_share_one_key() {
    const SHARED: [(&str, &str); 2] = [
        ("SECRET_KEY", "multi-instance-secret-0123456789abcdef"),
        // One service, one address, whichever instance answers.
        ("PUBLIC_URL", "http://localhost:8443"),
    ];
    let db = TestDb::postgres().await;
    // Migrated beforehand, so that both go straight to making the first key.
    let migrate = Command::new(bin())
        .arg("migrate")
        .env_clear()
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    let instance = || {
        TestApp::builder()
            .db(TestDb::at(&db.url()))
            .no_limits()
            .manual_clock()
            .envs(&SHARED)
            .start()
    };
    let (a, b) = tokio::join!(instance(), instance());
    assert_eq!(db.int("SELECT COUNT(*) FROM jwt_keys").await, 1);
    let kids = jwks_kids(&a).await;
    assert_eq!(kids.len(), 1);
    assert_eq!(jwks_kids(&b).await, kids);

    let (user_id, token) = signed_in(&a, "mi@example.com").await;
    for app in [&a, &b] {
        app.clock().advance(-30); // as in the rotation test
    }
    let from_b = jwt(&b, &token, 600).await;
    let issuer = SHARED[1].1;
    let verified = verify(&a, issuer, &from_b, None).expect("A's JWKS verifies B's token");
    assert_eq!(kid(&verified), kids[0]);
    assert_eq!(verified["claims"]["sub"], user_id.as_str());

    // A rotation reaches both within 5 s of their clocks, without a restart.
    rotate(&a, &SHARED);
    for (signer, checker) in [(&a, &b), (&b, &a)] {
        signer.clock().advance(5);
        let new = jwt(signer, &token, 600).await;
        assert_ne!(header(&new)["kid"], kids[0].as_str());
        assert!(verify(checker, issuer, &new, None).is_ok());
    }
    assert!(
        verify(&b, issuer, &from_b, None).is_ok(),
        "the old key is still published"
    );
}

/// The signing key is sealed under SECRET_KEY: started with another one,
/// `serve` refuses with a line saying what to do, and `keys rotate` (with the
/// new secret) makes a key it can use. Only on a file that exists.
#[tokio::test]
async fn a_key_sealed_under_another_secret_key_stops_start_up_until_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("authmail.db");
    let url = format!("sqlite://{}", file.display());
    let (old, new) = (
        "first-secret-key-0123456789abcdef0123",
        "second-secret-key-0123456789abcdef012",
    );
    let first = TestApp::builder()
        .sqlite_file(file.clone())
        .env("SECRET_KEY", old)
        .start()
        .await;
    let old_kid = jwks_kids(&first).await[0].clone();
    drop(first);

    let run = |args: &[&str], secret: &str| {
        let child = Command::new(bin())
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("DATABASE_URL", &url)
            .env("BIND", "127.0.0.1:0")
            .env("SECRET_KEY", secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        output_within(child, Duration::from_secs(30)).expect("authmail exited")
    };
    let refused = run(&["serve"], new);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "the JWT signing key {old_kid} cannot be opened with this SECRET_KEY"
        )) && said.contains("authmail keys rotate"),
        "{said}"
    );

    assert!(run(&["keys", "rotate"], new).status.success());
    let second = TestApp::builder()
        .sqlite_file(file.clone())
        .env("SECRET_KEY", new)
        .no_limits()
        .start()
        .await;
    let (_, token) = signed_in(&second, "sk@example.com").await;
    let verified = pyjwt(&second, &jwt(&second, &token, 600).await, None).expect("verifies");
    assert_ne!(kid(&verified), old_kid);

    let missing = format!("sqlite://{}", dir.path().join("typo.db").display());
    let out = Command::new(bin())
        .args(["keys", "rotate", "--lang", "en"])
        .env_clear()
        .env("DATABASE_URL", &missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!dir.path().join("typo.db").exists(), "nothing created");
}
