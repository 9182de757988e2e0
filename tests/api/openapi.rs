//! `/api/openapi.json`: it passes a real validator (openapi-spec-validator,
//! from tests/requirements.txt), it lists exactly the routes the server
//! serves, and it says what a client needs (errors, `Retry-After`, enums).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::wait::output_within;

/// Validates the document in argv[1]; says which validator and version ran.
const VALIDATE: &str = r#"
import json, sys
try:
    from importlib.metadata import version
    from openapi_spec_validator import validate
except ImportError as e:
    sys.exit(f"openapi-spec-validator is missing ({e}): pip install -r tests/requirements.txt")
with open(sys.argv[1]) as f:
    doc = json.load(f)
validate(doc)  # raises at the first problem
print(f"openapi-spec-validator {version('openapi-spec-validator')}: valid OpenAPI {doc['openapi']}")
"#;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn document(app: &TestApp) -> Value {
    let r = app.get("/api/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    r.body
}

/// Every (method, path) the document lists, methods upper-case.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    ops
}

#[tokio::test]
async fn openapi_passes_openapi_spec_validator() {
    let app = TestApp::builder().start().await;
    let r = app.get("/api/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &r.raw).unwrap();
    let child = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed");
    let out = output_within(child, Duration::from_secs(120)).expect("the validator hung");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openapi-spec-validator refused /api/openapi.json:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("valid OpenAPI 3.1"), "{stdout}{stderr}");
    eprintln!("{}", stdout.trim());
}

/// The routes come from the table the server's router is built from
/// (`authmail::app::routes`); which methods each path takes is found by
/// asking the running server: a method it does not route answers 405
/// `method_not_allowed`.
#[tokio::test]
async fn openapi_lists_exactly_the_routes_the_server_serves() {
    // Dev mode (no SMTP), so the dev mailbox's routes are served too.
    let app = TestApp::builder().admin().start().await;
    let doc = document(&app).await;
    let mut served = BTreeSet::new();
    for path in authmail::app::routes(true).paths() {
        for method in METHODS {
            let r = app.request(method, path, None, &[]).await;
            if r.status == 405 {
                assert_eq!(r.error_code(), "method_not_allowed", "{method} {path}");
                continue;
            }
            assert_ne!(
                r.error_code(),
                "not_found",
                "{method} {path} is in the router's table but answers 404: {}",
                r.raw
            );
            served.insert((method.to_string(), path.to_string()));
        }
    }
    let documented = documented(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served but not documented: {undocumented:?}; documented but not served: {not_served:?}"
    );
    assert!(served.len() >= 25, "{served:?}");
    // And a path in neither is not served at all.
    let r = app.get("/api/auth/whoami").await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
}

#[tokio::test]
async fn openapi_says_what_each_answer_can_be() {
    let app = TestApp::builder().start().await;
    let doc = document(&app).await;
    for (method, path, op) in operations(&doc) {
        let name = format!("{method} {path}");
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name} has no summary"
        );
        assert!(op["tags"][0].is_string(), "{name} has no tag");
        let responses = op["responses"].as_object().unwrap();
        // The connection loop's refusals can meet any request.
        for status in ["408", "413", "431"] {
            assert!(responses.contains_key(status), "{name} lacks {status}");
        }
        for (status, response) in responses {
            if let Some(reference) = response["$ref"].as_str() {
                assert!(reference.starts_with("#/components/responses/"), "{name}");
                continue;
            }
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{name} {status} has no description"
            );
            let json = &response["content"]["application/json"];
            if status.starts_with(['4', '5']) && !json.is_null() {
                assert_eq!(
                    json["schema"]["$ref"], "#/components/schemas/ErrorBody",
                    "{name} {status}"
                );
                if status == "429" {
                    assert!(
                        response["headers"]["Retry-After"].is_object(),
                        "{name} 429 without Retry-After"
                    );
                }
            }
        }
        // The POSTs that read a JSON body (logout and jwt take none).
        let bodyless = ["/api/auth/logout", "/api/auth/jwt"].contains(&path.as_str());
        if path.starts_with("/api/auth/") && method == "POST" && !bodyless {
            for status in ["400", "415", "503"] {
                assert!(responses.contains_key(status), "{name} lacks {status}");
            }
        }
    }

    let schemas = &doc["components"]["schemas"];
    let codes = schemas["ErrorDetail"]["properties"]["code"]["enum"]
        .as_array()
        .expect("error codes listed");
    for code in [
        "invalid_code",
        "rate_limited",
        "too_many_attempts",
        "internal",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} not in {codes:?}");
    }
    assert_eq!(
        schemas["Purpose"]["enum"],
        serde_json::json!(["register", "reset_password", "login"])
    );
    assert_eq!(schemas["Lang"]["enum"], serde_json::json!(["zh-CN", "en"]));
    assert_eq!(
        schemas["SendCodeBody"]["properties"]["purpose"]["$ref"],
        "#/components/schemas/Purpose"
    );

    // The admin filters are optional query parameters, not path parameters.
    let params = doc["paths"]["/api/admin/outbox"]["get"]["parameters"]
        .as_array()
        .unwrap();
    for name in ["status", "limit"] {
        let p = params.iter().find(|p| p["name"] == name).expect(name);
        assert_eq!(
            (p["in"].as_str(), p["required"].as_bool()),
            (Some("query"), Some(false))
        );
    }
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(
        (
            limit["schema"]["minimum"].as_i64(),
            limit["schema"]["maximum"].as_i64()
        ),
        (Some(1), Some(500))
    );

    let login_503 = &doc["paths"]["/api/auth/login"]["post"]["responses"]["503"];
    assert!(
        login_503["headers"]["Retry-After"].is_object(),
        "{login_503}"
    );
    let mailbox = &schemas["DevMessage"]["properties"];
    assert!(mailbox["code"].is_object(), "{mailbox}");
}
