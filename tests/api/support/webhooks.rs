//! `WebhookReceiver`: `webhook_receiver.py`, a local HTTP server that checks
//! every delivery's signature with the `standardwebhooks` package, answers
//! 500 to the first N verified ones, and logs each delivery for the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::wait::{eventually, eventually_blocking};

/// A secret in Standard Webhooks' form: `whsec_` + base64 of 32 bytes.
pub const SECRET: &str = "whsec_q8Tf2bq5W0NoZ1r3c4ux7lJ9mYkE6vH0sD2gA5pXc1o=";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/support/webhook_receiver.py")
}

pub struct WebhookReceiver {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl WebhookReceiver {
    /// Verifies with `secret`; answers 500 to the first `fail_first`
    /// deliveries that verify, 204 to later ones, 400 to any that does not.
    pub fn start(secret: &str, fail_first: usize) -> WebhookReceiver {
        Self::spawn(&["--secret", secret, "--fail-first", &fail_first.to_string()])
    }

    /// Accepts connections and never answers.
    pub fn silent() -> WebhookReceiver {
        Self::spawn(&["--silent"])
    }

    fn spawn(args: &[&str]) -> WebhookReceiver {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let mut child = Command::new("python3")
            .arg(script())
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(dir.path().join("deliveries.jsonl"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("receiver.log")).unwrap(),
            ))
            .spawn()
            .expect("python3 must be installed (scripts/test installs standardwebhooks)");
        let port = eventually_blocking(Duration::from_secs(20), || {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                return Ok(text.trim().parse().unwrap());
            }
            if let Some(status) = child.try_wait().unwrap() {
                let log =
                    std::fs::read_to_string(dir.path().join("receiver.log")).unwrap_or_default();
                panic!("the webhook receiver exited with {status}:\n{log}");
            }
            Err("the webhook receiver did not start".to_string())
        });
        WebhookReceiver { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/authmail", self.port)
    }

    /// Every delivery (or, silent, every connection) so far, in order.
    pub fn deliveries(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("deliveries.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The first `n` deliveries, once there are that many.
    pub async fn wait_deliveries(&self, n: usize, within: Duration) -> Vec<Value> {
        eventually(within, || async {
            let got = self.deliveries();
            match got.len() >= n {
                true => Ok(got),
                false => Err(format!("{} of {n} deliveries: {got:?}", got.len())),
            }
        })
        .await
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
