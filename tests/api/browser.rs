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
    let app = TestApp::builder()
        .process()
        .envs(env)
        // Every page load comes from 127.0.0.1: the per-IP limit is not under test here.
        .env("RATE_IP_PER_HOUR", "0")
        .start()
        .await;
    let started = Instant::now();
    let child = tokio::process::Command::new("node")
        .arg(browser_dir().join("journeys.mjs"))
        .arg(&app.base)
        .arg(screenshot_dir())
        .arg(scenario)
        .env("CHROMIUM", chromium())
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
