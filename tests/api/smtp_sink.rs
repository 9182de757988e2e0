//! The fault matrix again, against Postfix's `smtp-sink` (package `postfix`,
//! installed by scripts/test without starting the daemon) and its fault
//! options: `-r` soft (4xx) rejects, `-f` hard (5xx) rejects, `-q` drops
//! without a reply, `-Q` 421 and drop, `-A` abort in the middle of DATA.
//! Each is classified right (retried, or failed at once) with the reply kept.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::app::TestApp;
use crate::support::smtp::free_port;
use crate::support::wait::eventually_blocking;
use futures_util::future::join_all;
use serde_json::Value;

const SINK: &str = "/usr/sbin/smtp-sink";

struct Sink {
    port: u16,
    child: Child,
}

impl Sink {
    fn start(args: &[&str]) -> Sink {
        assert!(
            std::path::Path::new(SINK).exists(),
            "{SINK} is missing: install the postfix package (scripts/test does)"
        );
        let port = free_port();
        let mut cmd = Command::new(SINK);
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .args(args)
            .arg(format!("127.0.0.1:{port}"))
            .arg("16")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        eventually_blocking(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|_| format!("smtp-sink {args:?} did not listen"))
        });
        Sink { port, child }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// smtp-sink refuses to run as root without `-u`.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[derive(Clone, Copy, PartialEq)]
enum Expect {
    Retry,
    Fail,
    /// A race decides: the 550 read (failed at once, 550 kept) or the
    /// connection seen dropped first (retried, the network error kept).
    FailOrRetry,
}
use Expect::*;

/// (label, smtp-sink options, expected classification, text the kept reply must contain)
const CASES: &[(&str, &[&str], Expect, &str)] = &[
    (
        "soft reject of the greeting",
        &["-r", "CONNECT"],
        Retry,
        "450",
    ),
    ("soft reject of MAIL", &["-r", "MAIL"], Retry, "450"),
    (
        "soft reject of RCPT",
        &["-r", "RCPT", "-b", "452 4.2.2 Mailbox full"],
        Retry,
        "452",
    ),
    (
        "soft reject at the end of DATA",
        &["-r", ".", "-b", "451 4.3.0 Try later"],
        Retry,
        "451",
    ),
    ("421 and drop at RCPT", &["-Q", "RCPT"], Retry, "421"),
    ("drop after the final dot", &["-q", "."], Retry, ""),
    ("drop after DATA", &["-q", "DATA"], Retry, ""),
    (
        "hard reject of the greeting",
        &["-f", "CONNECT", "-B", "554 5.7.1 No service"],
        Fail,
        "554",
    ),
    (
        "hard reject of RCPT",
        &["-f", "RCPT", "-B", "550 5.1.1 No such user"],
        Fail,
        "550 5.1.1 No such user",
    ),
    (
        "hard reject at the end of DATA",
        &["-f", ".", "-B", "554 DT:SPM spam"],
        Fail,
        "554 DT:SPM spam",
    ),
    // smtp-sink answers 550 and closes without reading the body: whether the
    // client reads that 550 or first breaks the pipe writing the body is a race.
    (
        "550 and close in the middle of DATA",
        &["-A", "0"],
        FailOrRetry,
        "",
    ),
];

async fn run_case(label: &str, args: &[&str], expect: Expect, reply: &str) -> String {
    let sink = Sink::start(args);
    let app = TestApp::builder()
        .admin()
        .envs(&[
            ("SMTP_SERVER", "127.0.0.1"),
            ("SMTP_PORT", &sink.port.to_string()),
            ("SMTP_SECURITY", "none"),
            ("SMTP_FROM", "noreply@authmail.test"),
            ("SMTP_TIMEOUT_SECS", "2"),
        ])
        .start()
        .await;
    assert_eq!(app.send_code("x@example.com", "register").await.status, 202);
    // Retried: a second try has begun with the first reply kept. Failed: final.
    let settled = |m: &Value| m["status"] == "failed" || m["attempts"].as_i64() >= Some(2);
    let m = app
        .wait_outbox("x@example.com", settled, Duration::from_secs(30))
        .await;
    let err = m["last_error"].as_str().unwrap_or("").to_string();
    let line = format!(
        "{label:<40} {:<40} -> {:<7} attempts {} last_error {err:?}",
        args.join(" "),
        m["status"].as_str().unwrap_or(""),
        m["attempts"]
    );
    let failed = m["status"] == "failed";
    match (expect, failed) {
        (Retry, true) | (Fail, false) => panic!("misclassified: {line}"),
        (FailOrRetry, true) => assert!(err.starts_with("550"), "{line}"),
        (FailOrRetry, false) => assert!(err.contains("network error"), "{line}"),
        _ => {}
    }
    if expect == Fail {
        assert_eq!(
            m["attempts"], 1,
            "a permanent failure is not retried: {line}"
        );
    }
    assert!(!err.is_empty() && err.contains(reply), "{line}");
    line
}

#[tokio::test]
async fn smtp_sink_faults_are_classified() {
    let lines = join_all(
        CASES
            .iter()
            .map(|(label, args, expect, reply)| run_case(label, args, *expect, reply)),
    )
    .await;
    for line in lines {
        println!("{line}");
    }
}
