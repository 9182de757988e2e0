//! `CORS_ORIGINS`: a page on a listed origin may call `/api/auth/*` from a
//! browser (the preflight answered, `Authorization` and `Content-Type`
//! allowed, no credentials); any other origin, and any other path, gets no
//! CORS header at all.

use crate::support::api::Reply;
use crate::support::app::TestApp;

const APP: &str = "https://app.example.test";
const OTHER: &str = "http://localhost:5173";

async fn app() -> TestApp {
    TestApp::builder()
        .env("CORS_ORIGINS", &format!("{APP}, {OTHER}"))
        .start()
        .await
}

/// A browser's preflight for a JSON POST with a bearer token.
async fn preflight(app: &TestApp, path: &str, origin: &str) -> Reply {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization,content-type",
        ),
    ];
    app.request("OPTIONS", path, None, &headers).await
}

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers.get(name).map_or("", |v| v.to_str().unwrap())
}

/// Every `Access-Control-*` header of an answer.
fn cors_headers(r: &Reply) -> Vec<String> {
    r.headers
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

fn listed(header_value: &str) -> Vec<String> {
    header_value
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::test]
async fn a_listed_origin_gets_its_preflight_answered_without_credentials() {
    let app = app().await;
    for origin in [APP, OTHER] {
        for path in ["/api/auth/login", "/api/auth/send-code", "/api/auth/me"] {
            let r = preflight(&app, path, origin).await;
            assert!(
                r.status < 300,
                "{path} from {origin}: {} {}",
                r.status,
                r.raw
            );
            assert_eq!(header(&r, "access-control-allow-origin"), origin, "{path}");
            let methods = listed(header(&r, "access-control-allow-methods"));
            assert!(
                methods.contains(&"post".into()) && methods.contains(&"get".into()),
                "{methods:?}"
            );
            let allowed = listed(header(&r, "access-control-allow-headers"));
            for h in ["authorization", "content-type"] {
                assert!(allowed.contains(&h.to_string()), "{h} not in {allowed:?}");
            }
            assert!(
                r.headers.get("access-control-allow-credentials").is_none(),
                "no cookies across origins"
            );
            assert!(header(&r, "access-control-max-age").parse::<u64>().unwrap() > 0);
            assert!(listed(header(&r, "vary")).contains(&"origin".into()));
        }
    }
}

#[tokio::test]
async fn a_listed_origin_reads_the_answers_of_the_auth_api() {
    let app = app().await;
    let origin = [("origin", APP)];
    // An error is readable too, and a 429's wait is exposed to the script.
    let body = serde_json::json!({"email": "cors@example.com", "password": "wrong password"});
    let r = app
        .request("POST", "/api/auth/login", Some(&body), &origin)
        .await;
    assert_eq!((r.status, r.error_code()), (401, "invalid_credentials"));
    assert_eq!(header(&r, "access-control-allow-origin"), APP);
    assert!(r.headers.get("access-control-allow-credentials").is_none());
    assert!(listed(header(&r, "access-control-expose-headers")).contains(&"retry-after".into()));

    app.register_via_dev_mailbox("cors@example.com", "a fine password")
        .await;
    let token = app.login("cors@example.com", "a fine password").await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {token}");
    let headers = [("origin", APP), ("authorization", bearer.as_str())];
    let me = app.request("GET", "/api/auth/me", None, &headers).await;
    assert_eq!(me.status, 200, "{}", me.raw);
    assert_eq!(header(&me, "access-control-allow-origin"), APP);
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = app().await;
    for origin in [
        "https://evil.example.test",
        "http://app.example.test",
        "https://app.example.test:8443",
        "https://sub.app.example.test",
        "null",
    ] {
        let r = preflight(&app, "/api/auth/login", origin).await;
        assert_eq!(cors_headers(&r), Vec::<String>::new(), "{origin}: {r:?}");
        // Not answered as a preflight: the API's own 405 for OPTIONS.
        assert_eq!((r.status, r.error_code()), (405, "method_not_allowed"));
        let body = serde_json::json!({"email": "x@example.com", "password": "x"});
        let r = app
            .request(
                "POST",
                "/api/auth/login",
                Some(&body),
                &[("origin", origin)],
            )
            .await;
        assert_eq!(r.status, 401, "the request itself is served");
        assert_eq!(cors_headers(&r), Vec::<String>::new(), "{origin}");
        assert!(
            listed(header(&r, "vary")).contains(&"origin".into()),
            "a cache must not give this answer to a listed origin"
        );
    }
    // No Origin at all (a server-side client): as before.
    let r = app.get("/api/auth/me").await;
    assert_eq!((r.status, cors_headers(&r)), (401, vec![]));
}

#[tokio::test]
async fn paths_outside_the_auth_api_never_get_cors_headers() {
    let app = app().await;
    for path in [
        "/healthz",
        "/readyz",
        "/api/openapi.json",
        "/api/admin/stats",
        "/dev/mailbox.json",
        "/login",
        "/account",
        "/api/authx",
        "/no/such/path",
    ] {
        let r = app.request("GET", path, None, &[("origin", APP)]).await;
        assert_eq!(cors_headers(&r), Vec::<String>::new(), "GET {path}");
        let r = preflight(&app, path, APP).await;
        assert_eq!(cors_headers(&r), Vec::<String>::new(), "OPTIONS {path}");
        assert!(
            r.status >= 400,
            "OPTIONS {path} is no preflight: {}",
            r.status
        );
    }
}

#[tokio::test]
async fn without_cors_origins_nobody_gets_cors_headers() {
    let app = TestApp::builder().start().await;
    let r = preflight(&app, "/api/auth/login", APP).await;
    assert_eq!((r.status, cors_headers(&r)), (405, vec![]));
    let r = app
        .request("GET", "/api/auth/me", None, &[("origin", APP)])
        .await;
    assert_eq!((r.status, cors_headers(&r)), (401, vec![]));
}
