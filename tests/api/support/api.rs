//! One helper per endpoint, so that tests read as stories; they talk to
//! `app.base` over HTTP only, whichever way the app was started.

use std::time::Duration;

use serde_json::{json, Value};

use super::app::TestApp;
use super::wait::eventually;

/// One HTTP answer, as the tests look at it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: String,
}

/// `SESSION_TTL_SECS` when a test leaves it alone.
pub const SESSION_TTL_SECS: i64 = 2_592_000;

/// The password of the accounts `signed_in` makes.
pub const SIGNED_IN_PASSWORD: &str = "a good password";

impl Reply {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The token of a new session (register, login, login-code,
    /// reset-password), once the whole answer is checked: exactly `token`,
    /// `expires_at` (RFC 3339, `ttl_secs` from now) and `user` (`id`, `email`).
    pub fn session_token(&self, email: &str, ttl_secs: i64) -> String {
        let body = self
            .body
            .as_object()
            .unwrap_or_else(|| panic!("{}", self.raw));
        let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["expires_at", "token", "user"], "{}", self.raw);
        let user = body["user"].as_object().unwrap();
        assert_eq!(user.len(), 2, "user is id and email: {}", self.raw);
        assert!(user["id"].is_string(), "{}", self.raw);
        assert_eq!(user["email"], email, "{}", self.raw);
        let now = time_now();
        let expected: Vec<String> = (now - 5..=now)
            .map(|t| authmail::clock::rfc3339(t + ttl_secs))
            .collect();
        let expires_at = body["expires_at"].as_str().unwrap();
        assert!(
            expected.iter().any(|e| e == expires_at),
            "expires_at {expires_at} is not {ttl_secs} s from now ({expected:?})"
        );
        let token = body["token"].as_str().unwrap();
        assert!(token.len() >= 32, "{}", self.raw);
        token.to_string()
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.headers.get("retry-after")?.to_str().ok()?.parse().ok()
    }
}

impl TestApp {
    /// The dev mailbox's messages to `to`, oldest first.
    pub async fn dev_mails(&self, to: &str) -> Vec<Value> {
        let r = self.get("/dev/mailbox.json").await;
        let mut mails: Vec<Value> = r.body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["to"] == to)
            .cloned()
            .collect();
        mails.reverse(); // The mailbox lists newest first.
        mails
    }

    /// The first `n` (or more) messages to `to` in the dev mailbox, oldest
    /// first, once they are there.
    pub async fn wait_dev_mails(&self, to: &str, n: usize) -> Vec<Value> {
        eventually(Duration::from_secs(10), || async {
            let mails = self.dev_mails(to).await;
            match mails.len() >= n {
                true => Ok(mails),
                false => Err(format!("{} of {n} mails to {to}", mails.len())),
            }
        })
        .await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        into_reply(req.send().await.expect("request")).await
    }

    /// A raw body with a chosen content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        into_reply(req.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request("POST", path, Some(&body), &[]).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None, &[]).await
    }

    pub async fn send_code(&self, email: &str, purpose: &str) -> Reply {
        self.post(
            "/api/auth/send-code",
            json!({"email": email, "purpose": purpose}),
        )
        .await
    }

    pub async fn register(&self, email: &str, password: &str, code: &str) -> Reply {
        self.post(
            "/api/auth/register",
            json!({"email": email, "password": password, "code": code}),
        )
        .await
    }

    /// Registers `email` with `password`, reading the code from the dev mailbox.
    pub async fn register_via_dev_mailbox(&self, email: &str, password: &str) {
        assert_eq!(self.send_code(email, "register").await.status, 202);
        let code = self.dev_code(email, Duration::from_secs(10)).await;
        let r = self.register(email, password, &code).await;
        assert_eq!(r.status, 201, "{}", r.raw);
    }

    /// A new account for `email` (password [`SIGNED_IN_PASSWORD`]), signed
    /// in: its user id and session token.
    pub async fn signed_in(&self, email: &str) -> (String, String) {
        self.register_via_dev_mailbox(email, SIGNED_IN_PASSWORD)
            .await;
        let r = self.login(email, SIGNED_IN_PASSWORD).await;
        assert_eq!(r.status, 200, "{}", r.raw);
        let token = r.session_token(email, SESSION_TTL_SECS);
        (r.body["user"]["id"].as_str().unwrap().to_string(), token)
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn login_code(&self, email: &str, code: &str) -> Reply {
        self.post(
            "/api/auth/login-code",
            json!({"email": email, "code": code}),
        )
        .await
    }

    pub async fn reset_password(&self, email: &str, code: &str, new_password: &str) -> Reply {
        self.post(
            "/api/auth/reset-password",
            json!({"email": email, "code": code, "new_password": new_password}),
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Reply {
        self.request(
            "GET",
            "/api/auth/me",
            None,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    /// `POST /api/auth/jwt` with the session `token`.
    pub async fn jwt(&self, token: &str) -> Reply {
        self.request(
            "POST",
            "/api/auth/jwt",
            None,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    pub async fn logout(&self, token: &str) -> Reply {
        self.request(
            "POST",
            "/api/auth/logout",
            None,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    /// A GET with the admin token the app was started with (`.admin()`).
    pub async fn admin(&self, path: &str) -> Reply {
        let token = format!("Bearer {}", self.admin_token());
        self.request("GET", path, None, &[("authorization", &token)])
            .await
    }

    /// Polls the admin outbox until `pred` holds for the message to `to`.
    pub async fn wait_outbox(
        &self,
        to: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        eventually(timeout, || async {
            let r = self.admin("/api/admin/outbox?limit=500").await;
            assert_eq!(r.status, 200, "{}", r.raw);
            let messages = r.body["messages"].as_array().unwrap();
            let found = messages.iter().find(|m| m["to"] == to && pred(m));
            found
                .cloned()
                .ok_or_else(|| format!("outbox never reached the state for {to}: {}", r.raw))
        })
        .await
    }

    /// The newest code mailed to `to` in the dev mailbox.
    pub async fn dev_code(&self, to: &str, timeout: Duration) -> String {
        eventually(timeout, || async {
            let r = self.get("/dev/mailbox.json").await;
            let code = r.body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["to"] == to)
                .find_map(|m| m["code"].as_str().map(str::to_string));
            code.ok_or_else(|| format!("no code for {to} in the dev mailbox: {}", r.raw))
        })
        .await
    }
}

pub async fn into_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

/// Unix seconds now, as the app's system clock reads them.
pub fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
