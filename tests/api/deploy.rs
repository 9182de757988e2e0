//! What docs/deploy.md tells operators to do: the systemd unit in `contrib/`
//! passes `systemd-analyze verify` and its security review, the nginx site
//! config serves authmail over TLS, and a SQLite backup taken while running
//! restores.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::api::into_reply;
use crate::support::app::{bin, TestApp};
use crate::support::nginx::Nginx;
use crate::support::smtp::Certs;
use crate::support::wait::output_within;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/authmail.service");

/// systemd-analyze, which must be there: a check that cannot run must not
/// pass (scripts/test installs systemd when it is missing).
fn systemd_analyze(args: &[&str]) -> (bool, String) {
    let child = Command::new("systemd-analyze")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-analyze must be installed (Debian's systemd; scripts/test installs it)");
    let out = output_within(child, Duration::from_secs(60)).expect("systemd-analyze hung");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify_and_its_security_review() {
    // verify checks that ExecStart's program exists: the unit points at the
    // binary these tests built instead of /usr/local/bin.
    let unit = std::fs::read_to_string(UNIT).unwrap();
    assert_eq!(
        unit.matches("ExecStart=/usr/local/bin/authmail ").count(),
        1
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authmail.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/authmail", bin())).unwrap();
    let path = path.to_str().unwrap();

    let (ok, text) = systemd_analyze(&["verify", "--man=no", path]);
    // Unknown keys and bad values are warnings with exit 0: any output fails.
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );

    // The exposure score out of 100 (shown as 0.0 to 10.0); "OK" is under 4.0.
    let (ok, text) = systemd_analyze(&["security", "--offline=yes", "--threshold=20", path]);
    let verdict = text.lines().last().unwrap_or("").to_string();
    assert!(ok, "exposure above 2.0:\n{text}");
    let (_, version) = systemd_analyze(&["--version"]);
    eprintln!(
        "systemd-analyze verify: clean; security: {verdict} ({})",
        version.lines().next().unwrap_or("")
    );
}

#[tokio::test]
async fn nginx_serves_authmail_over_tls_with_the_contrib_config() {
    let certs = Certs::generate();
    let app = TestApp::builder()
        .envs(&[
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
            ("RATE_IP_PER_HOUR", "1"),
            ("RESEND_COOLDOWN_SECS", "0"),
        ])
        .start()
        .await;
    let lb = Nginx::start(&[app.port], &certs);

    let r = lb.client.get(format!("{}/healthz", lb.base)).send().await;
    let r = into_reply(r.expect("https through nginx")).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(r.headers.contains_key("strict-transport-security"));

    // Plain HTTP only redirects to the same path over https.
    let r = lb
        .client
        .get(format!("{}/login?lang=en", lb.http_base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://") && location.ends_with("/login?lang=en"),
        "{location}"
    );

    // Each client is its own for the per-IP limit: nginx passes on the
    // address chain and authmail believes it from nginx only.
    let send = |email: &'static str, ip: &'static str| {
        let req = lb
            .client
            .post(format!("{}/api/auth/send-code", lb.base))
            .header("content-type", "application/json")
            .header("x-forwarded-for", ip)
            .body(json!({"email": email, "purpose": "register"}).to_string());
        async move { into_reply(req.send().await.unwrap()).await }
    };
    assert_eq!(send("a@example.com", "198.51.100.7").await.status, 202);
    let limited = send("b@example.com", "198.51.100.7").await;
    assert_eq!(limited.error_code(), "rate_limited", "{}", limited.raw);
    assert!(limited.retry_after().is_some());
    assert_eq!(send("c@example.com", "198.51.100.8").await.status, 202);

    // A body over 64 KiB gets authmail's JSON answer, not nginx's page.
    let r = lb
        .client
        .post(format!("{}/api/auth/send-code", lb.base))
        .header("content-type", "application/json")
        .body(vec![b' '; 70 * 1024])
        .send()
        .await
        .unwrap();
    let r = into_reply(r).await;
    assert_eq!((r.status, r.error_code()), (413, "payload_too_large"));
}

/// docs/deploy.md's backup: `sqlite3 .backup` while authmail runs gives a
/// database another authmail starts on, with the accounts, the sessions and
/// the stored secret key that keys them.
#[tokio::test]
async fn a_sqlite_backup_taken_while_running_restores() {
    let dir = tempfile::tempdir().unwrap();
    let (live, copy) = (dir.path().join("live.db"), dir.path().join("copy.db"));
    let app = TestApp::builder().sqlite_file(live.clone()).start().await;
    app.register_via_dev_mailbox("kept@example.com", "a long password")
        .await;
    let token = app.login("kept@example.com", "a long password").await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Writes going on meanwhile: the backup is a consistent snapshot anyway.
    let writes = async {
        for i in 0..20 {
            let r = app
                .send_code(&format!("busy{i}@example.com"), "register")
                .await;
            assert_eq!(r.status, 202, "{}", r.raw);
        }
    };
    let backup = tokio::task::spawn_blocking({
        let (live, copy) = (live.clone(), copy.clone());
        move || {
            let child = Command::new("sqlite3")
                .arg(&live)
                .arg(format!(".backup '{}'", copy.display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("sqlite3 must be installed (scripts/test installs it)");
            output_within(child, Duration::from_secs(60)).expect("sqlite3 .backup hung")
        }
    });
    let (out, ()) = tokio::join!(backup, writes);
    let out = out.unwrap();
    assert!(out.status.success(), "{out:?}");

    let restored = TestApp::builder().sqlite_file(copy).start().await;
    let r = restored.me(&token).await;
    assert_eq!(
        (r.status, r.body["email"].as_str()),
        (200, Some("kept@example.com"))
    );
    let r = restored.login("kept@example.com", "a long password").await;
    assert_eq!(r.status, 200, "{}", r.raw);
    drop(app);
}
