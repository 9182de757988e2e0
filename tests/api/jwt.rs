//! JWTs an app verifies on its own: every token is checked by an independent
//! implementation (PyJWT with `cryptography`) against the JWKS the app
//! serves, across a key rotation and on a second instance. The ways in that
//! must stay shut are in `sessions.rs`.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::api::{SESSION_TTL_SECS, SIGNED_IN_PASSWORD};
use crate::support::app::{bin, TestApp};
use crate::support::db::TestDb;
use crate::support::pyjwt::{pyjwt, verify};
use crate::support::wait::output_within;

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
    let (user_id, token) = app.signed_in("jo@example.com").await;
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
    let other = app.login("jo@example.com", SIGNED_IN_PASSWORD).await;
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
    let (_, token) = app.signed_in("ro@example.com").await;
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

    let (user_id, token) = a.signed_in("mi@example.com").await;
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
    let (_, token) = second.signed_in("sk@example.com").await;
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
