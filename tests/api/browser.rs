//! The web pages in a real browser: Debian's headless Chromium, driven by
//! Playwright (`tests/browser/journeys.mjs`) against the real binary in dev
//! mode. Each test is one scenario with its own app and database; screenshots
//! of every page land in `target/screenshots/`.
//!
//! `scripts/test` installs what these need (chromium, a CJK font, the npm
//! package); run alone, they fail loudly when something is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::app::TestApp;
use crate::support::db::TestDb;
use crate::support::pictures::{self, SECRET};
use crate::support::smtp::free_port;
use crate::support::wait::eventually_blocking;

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("screenshots")
}

/// Node, the npm package and Chromium must all be there: a browser test that
/// silently skips would hide broken pages.
fn require_tools() {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "BROWSER TESTS CANNOT RUN: `node` is not on PATH ({node:?}). Install Node.js 20 or run scripts/test."
    );
    let package = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(
        package.is_file(),
        "BROWSER TESTS CANNOT RUN: {} is missing. Run `npm ci` in tests/browser (scripts/test does).",
        package.display()
    );
    let chromium = chromium();
    assert!(
        chromium.is_file(),
        "BROWSER TESTS CANNOT RUN: no Chromium at {}. `apt-get install chromium` (scripts/test does), \
         or point CHROMIUM at one.",
        chromium.display()
    );
}

/// Starts authmail with `env` and runs one browser scenario against it.
async fn run_scenario(scenario: &str, env: &[(&str, &str)]) {
    require_tools();
    let app = start_app(env).await;
    run_node(&app, scenario, &[]).await;
}

async fn start_app(env: &[(&str, &str)]) -> TestApp {
    TestApp::builder()
        .process()
        .envs(env)
        // Every page load comes from 127.0.0.1: the per-IP limit is not under test here.
        .env("RATE_IP_PER_HOUR", "0")
        .start()
        .await
}

/// Runs `journeys.mjs` for `scenario` against `app`; `env` goes to node.
async fn run_node(app: &TestApp, scenario: &str, env: &[(&str, &str)]) {
    let started = Instant::now();
    let child = tokio::process::Command::new("node")
        .arg(browser_dir().join("journeys.mjs"))
        .arg(&app.base)
        .arg(screenshot_dir())
        .arg(scenario)
        .env("CHROMIUM", chromium())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let output = tokio::time::timeout(SCENARIO_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "browser scenario {scenario} did not finish within {SCENARIO_TIMEOUT:?}\napp log:\n{}",
                app.logs()
            )
        })
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser scenario {scenario} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- app log\n{}",
        output.status,
        app.logs()
    );
    assert!(
        stdout.contains("all checks passed"),
        "browser scenario {scenario} exited 0 without passing its checks:\n{stdout}{stderr}"
    );
    // What a scenario measured, for the test's output.
    for line in stdout.lines().filter(|l| l.starts_with("figure: ")) {
        println!("{line}");
    }
    eprintln!(
        "browser scenario {scenario}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Register, sign out, password sign-in (keyboard only), forgot password and
/// reset, code sign-in, the errors on the way, the language switch, a phone
/// screen: in Chinese.
#[tokio::test]
async fn journeys_in_chinese() {
    run_scenario("zh-CN", &[]).await;
}

#[tokio::test]
async fn journeys_in_english() {
    run_scenario("en", &[]).await;
}

/// JavaScript off: every form posts and re-renders; the voided code, the
/// taken address and the hourly limit show next to their fields.
#[tokio::test]
async fn without_javascript() {
    run_scenario(
        "nojs",
        &[("RESEND_COOLDOWN_SECS", "0"), ("RATE_EMAIL_PER_HOUR", "3")],
    )
    .await;
}

/// `CHALLENGE=always` at the default difficulty, JavaScript on: the pages
/// solve the proof of work in a Web Worker and the person registers and signs
/// in by code without seeing a challenge. Prints how long the worker took.
/// A browser whose worker cannot run gets the picture instead.
#[tokio::test]
async fn the_challenge_goes_unnoticed_with_javascript() {
    run_challenge_scenario("challenge_js").await;
}

/// `CHALLENGE=always`, JavaScript off: the picture shows, a send without its
/// digits or with wrong ones is answered 428 in either language, and typing
/// the digits gets the code, with `return_to` kept throughout.
#[tokio::test]
async fn the_challenge_is_a_picture_without_javascript() {
    run_challenge_scenario("challenge_nojs").await;
}

/// `scenario` against an app with `CHALLENGE=always` (and the default
/// difficulty), with a `PictureReader` for its pictures.
async fn run_challenge_scenario(scenario: &str) {
    require_tools();
    let app = start_app(&[("CHALLENGE", "always"), ("SECRET_KEY", SECRET)]).await;
    let reader = PictureReader::start(&app).await;
    run_node(&app, scenario, &[("PICTURE_READER", &reader.url)]).await;
}

/// Reads a picture challenge for the browser scenario as a person reads it
/// off the screen: `GET /<id>` → its digits (see `support::pictures`).
struct PictureReader {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl PictureReader {
    async fn start(app: &TestApp) -> PictureReader {
        use axum::extract::{Path, State};
        use axum::http::StatusCode;
        let db = std::sync::Arc::new(TestDb::at(&app.db.url()));
        let read = |State(db): State<std::sync::Arc<TestDb>>, Path(id): Path<String>| async move {
            pictures::digits(&db, SECRET, &id)
                .await
                .ok_or(StatusCode::NOT_FOUND)
        };
        let router = axum::Router::new()
            .route("/{id}", axum::routing::get(read))
            .with_state(db);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        PictureReader { url, task }
    }
}

impl Drop for PictureReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An application on a second local origin sends the user to authmail's
/// sign-in with `return_to` and gets them back signed in; its script calls the
/// auth API across origins, which works from its origin (`CORS_ORIGINS`) and
/// not from another.
#[tokio::test]
async fn an_app_on_another_origin_gets_its_user_back_signed_in() {
    require_tools();
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let app = start_app(&[("RETURN_TO_ORIGINS", &origin), ("CORS_ORIGINS", &origin)]).await;
    let site = AppSite::start(port, &app.base);
    // The same server under another name is another origin, listed nowhere.
    let unlisted = format!("http://localhost:{port}");
    let env = [
        ("APP_ORIGIN", origin.as_str()),
        ("UNLISTED_ORIGIN", &unlisted),
    ];
    run_node(&app, "return_to", &env).await;
    site.stop();
}

/// The application's pages, served by `python3 -m http.server`: `/` links to
/// authmail's sign-in with `return_to` its `/welcome`, and its script tries a
/// sign-in through the API across origins, saying what it got.
struct AppSite {
    child: Option<std::process::Child>,
    _dir: tempfile::TempDir,
}

impl AppSite {
    fn start(port: u16, authmail: &str) -> AppSite {
        let dir = tempfile::tempdir().unwrap();
        let origin = format!("http://127.0.0.1:{port}");
        let sign_in = format!("{authmail}/login?return_to={origin}/welcome");
        let index = format!(
            r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>An app</title></head>
<body>
<h1>An app</h1>
<p><a id="sign-in" href="{sign_in}">Sign in with authmail</a></p>
<p id="cors">…</p>
<script>
fetch("{authmail}/api/auth/login", {{
  method: "POST",
  headers: {{"content-type": "application/json"}},
  body: JSON.stringify({{email: "nobody@example.com", password: "not a password"}}),
}})
  .then(async (r) => `${{r.status}} ${{(await r.json()).error.code}}`)
  .catch(() => "blocked")
  .then((seen) => {{ document.getElementById("cors").textContent = seen; }});
</script>
</body></html>
"#
        );
        std::fs::write(dir.path().join("index.html"), index).unwrap();
        let welcome = dir.path().join("welcome");
        std::fs::create_dir(&welcome).unwrap();
        std::fs::write(
            welcome.join("index.html"),
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Welcome</title></head>\n\
             <body><h1 id=\"welcome\">Welcome back</h1></body></html>\n",
        )
        .unwrap();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 must be installed");
        let site = AppSite {
            child: Some(child),
            _dir: dir,
        };
        eventually_blocking(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map_err(|e| format!("the app's server on {port}: {e}"))
        });
        site
    }

    /// SIGTERM, and wait for it to end.
    fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for AppSite {
    /// A failed test ends the server too.
    fn drop(&mut self) {
        self.end();
    }
}
