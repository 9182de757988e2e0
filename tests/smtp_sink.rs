//! The fault matrix again, against Postfix's `smtp-sink` (package `postfix`,
//! installed by scripts/test without starting the daemon) and its fault
//! options: `-r` soft (4xx) rejects, `-f` hard (5xx) rejects, `-q` drops
//! without a reply, `-Q` 421 and drop, `-A` abort in the middle of DATA.
//! Each is classified right (retried, or failed at once) with the reply kept.

mod support;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use support::app::TestApp;
use support::smtp::free_port;

const ADMIN: &str = "sink-admin-token-0123456789";
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "smtp-sink {args:?} did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// (label, smtp-sink options, retried?, text the kept reply must contain)
const CASES: &[(&str, &[&str], bool, &str)] = &[
    (
        "soft reject of the greeting",
        &["-r", "CONNECT"],
        true,
        "450",
    ),
    ("soft reject of MAIL", &["-r", "MAIL"], true, "450"),
    (
        "soft reject of RCPT",
        &["-r", "RCPT", "-b", "452 4.2.2 Mailbox full"],
        true,
        "452",
    ),
    (
        "soft reject at the end of DATA",
        &["-r", ".", "-b", "451 4.3.0 Try later"],
        true,
        "451",
    ),
    ("421 and drop at RCPT", &["-Q", "RCPT"], true, "421"),
    ("drop after the final dot", &["-q", "."], true, ""),
    ("drop after DATA", &["-q", "DATA"], true, ""),
    (
        "hard reject of the greeting",
        &["-f", "CONNECT", "-B", "554 5.7.1 No service"],
        false,
        "554",
    ),
    (
        "hard reject of RCPT",
        &["-f", "RCPT", "-B", "550 5.1.1 No such user"],
        false,
        "550 5.1.1 No such user",
    ),
    (
        "hard reject at the end of DATA",
        &["-f", ".", "-B", "554 DT:SPM spam"],
        false,
        "554 DT:SPM spam",
    ),
    // smtp-sink answers 550 and closes without reading the body: the client's
    // next write breaks the pipe before it can read the 550, so to authmail it
    // is a dropped connection, which is retried.
    (
        "550 and close in the middle of DATA",
        &["-A", "0"],
        true,
        "network error",
    ),
];

async fn run_case(label: &str, args: &[&str], retried: bool, reply: &str) -> String {
    let sink = Sink::start(args);
    let app = TestApp::start(TestApp::with(&[
        ("SMTP_SERVER", "127.0.0.1"),
        ("SMTP_PORT", &sink.port.to_string()),
        ("SMTP_SECURITY", "none"),
        ("SMTP_FROM", "noreply@authmail.test"),
        ("SMTP_TIMEOUT_SECS", "2"),
        ("ADMIN_TOKEN", ADMIN),
    ]))
    .await;
    assert_eq!(app.send_code("x@example.com", "register").await.status, 202);
    // Retried: a second try has begun with the first reply kept. Failed: final.
    let settled = move |m: &Value| {
        if retried {
            m["attempts"].as_i64() >= Some(2) && m["last_error"].is_string()
        } else {
            m["status"] == "failed" || m["attempts"].as_i64() >= Some(2)
        }
    };
    let m = app
        .wait_outbox(ADMIN, "x@example.com", settled, Duration::from_secs(30))
        .await;
    let err = m["last_error"].as_str().unwrap_or("").to_string();
    let line = format!(
        "{label:<40} {:<40} -> {:<7} attempts {} last_error {err:?}",
        args.join(" "),
        m["status"].as_str().unwrap_or(""),
        m["attempts"]
    );
    if retried {
        assert_ne!(m["status"], "failed", "{line}");
    } else {
        assert_eq!(m["status"], "failed", "{line}");
        assert_eq!(m["attempts"], 1, "{line}");
    }
    assert!(!err.is_empty() && err.contains(reply), "{line}");
    line
}

#[tokio::test]
async fn smtp_sink_faults_are_classified() {
    let lines = join_all(
        CASES
            .iter()
            .map(|(label, args, retried, reply)| run_case(label, args, *retried, reply)),
    )
    .await;
    for line in lines {
        println!("{line}");
    }
}
