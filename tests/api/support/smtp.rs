//! Real SMTP servers for the tests: `smtp_server.py` (aiosmtpd) run as a
//! child process, with its spool of delivered messages read back as JSON.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::wait::{eventually, eventually_blocking};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/support/smtp_server.py")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first run of `CODE_LENGTH`-ish digits (4–10) standing alone in `text`.
pub fn find_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| (4..=10).contains(&run.len()))
        .map(str::to_string)
}

/// A throwaway CA and certificates signed by it.
pub struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    pub fn generate() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("python3")
            .arg(script())
            .arg("gen-certs")
            .arg(dir.path())
            .status()
            .expect("python3 must be installed (scripts/test installs the rest)");
        assert!(status.success(), "gen-certs failed");
        Certs { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The certificate and key files for `name`: `server` (localhost, 127.0.0.1) or `other`.
    pub fn pair(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join(format!("{name}.pem")),
            self.dir.path().join(format!("{name}.key")),
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    StartTls,
    Tls,
    /// Accepts TCP and never sends a greeting.
    Silent,
}

#[derive(Clone, Debug)]
pub struct SmtpOptions {
    pub mode: Mode,
    pub auth: Option<(String, String)>,
    /// Answer 535 to every login.
    pub auth_fail: bool,
    /// Answer 451 to this many messages, then accept.
    pub tempfail: u32,
    /// Present a certificate for another host name.
    pub use_other_cert: bool,
    /// Answer 550 to recipients containing this text.
    pub reject_rcpt: Option<String>,
    /// Scripted faults, `SUBSTRING:STAGE:TIMES:REPLY` (see smtp_server.py).
    pub faults: Vec<String>,
    /// Close connections idle this many seconds.
    pub idle_timeout: Option<f64>,
    /// Answer 553 to a `MAIL FROM` containing this text.
    pub reject_sender: Option<String>,
}

impl SmtpOptions {
    pub fn new(mode: Mode) -> SmtpOptions {
        SmtpOptions {
            mode,
            auth: None,
            auth_fail: false,
            tempfail: 0,
            use_other_cert: false,
            reject_rcpt: None,
            faults: Vec::new(),
            idle_timeout: None,
            reject_sender: None,
        }
    }

    pub fn auth(mut self, user: &str, password: &str) -> SmtpOptions {
        self.auth = Some((user.into(), password.into()));
        self
    }
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub data: String,
    pub bare_lf: bool,
    pub headers: Value,
}

impl Mail {
    pub fn code(&self) -> String {
        find_code(&self.text).unwrap_or_else(|| panic!("no code in the text part: {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name.to_ascii_lowercase())?.as_str()
    }
}

pub struct SmtpServer {
    pub port: u16,
    ca: PathBuf,
    options: SmtpOptions,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl SmtpServer {
    pub fn start(certs: &Certs, options: SmtpOptions) -> SmtpServer {
        Self::start_on_port(certs, options, 0)
    }

    /// `port` 0 picks a free one; a fixed port lets a test bring a server
    /// "back up" where authmail expects it.
    pub fn start_on_port(certs: &Certs, options: SmtpOptions, port: u16) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let mut cmd = Command::new("python3");
        cmd.arg(script())
            .arg("serve")
            .arg("--port-file")
            .arg(&port_file)
            .arg("--spool")
            .arg(dir.path().join("spool.jsonl"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--mode")
            .arg(match options.mode {
                Mode::Plain => "plain",
                Mode::StartTls => "starttls",
                Mode::Tls => "tls",
                Mode::Silent => "silent",
            })
            .arg("--tempfail")
            .arg(options.tempfail.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("server.log")).unwrap(),
            ));
        let (cert, key) = certs.pair(if options.use_other_cert {
            "other"
        } else {
            "server"
        });
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        if let Some((user, password)) = &options.auth {
            cmd.arg("--auth").arg(format!("{user}:{password}"));
        }
        if options.auth_fail {
            cmd.arg("--auth-fail");
        }
        if let Some(reject) = &options.reject_rcpt {
            cmd.arg("--reject-rcpt").arg(reject);
        }
        for fault in &options.faults {
            cmd.arg("--fault").arg(fault);
        }
        if let Some(secs) = options.idle_timeout {
            cmd.arg("--idle-timeout").arg(secs.to_string());
        }
        if let Some(reject) = &options.reject_sender {
            cmd.arg("--reject-sender").arg(reject);
        }
        let mut child = cmd.spawn().expect("start smtp_server.py");
        let port = eventually_blocking(Duration::from_secs(20), || {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                return Ok(text.trim().parse().unwrap());
            }
            if let Some(status) = child.try_wait().unwrap() {
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("SMTP test server exited with {status}:\n{log}");
            }
            Err("SMTP test server did not start".to_string())
        });
        SmtpServer {
            port,
            ca: certs.ca(),
            options,
            dir,
            child: Some(child),
        }
    }

    /// The CA that signed the server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.ca.clone()
    }

    /// The `SMTP_SECURITY` that fits the server's mode.
    pub fn security(&self) -> &'static str {
        match self.options.mode {
            Mode::Plain => "none",
            Mode::StartTls | Mode::Silent => "starttls",
            Mode::Tls => "tls",
        }
    }

    /// The login the server asks for, if any.
    pub fn auth(&self) -> Option<(String, String)> {
        self.options.auth.clone()
    }

    fn read_lines(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    pub fn messages(&self) -> Vec<Mail> {
        self.read_lines("spool.jsonl")
            .into_iter()
            .map(|v| Mail {
                mail_from: v["mail_from"].as_str().unwrap_or_default().into(),
                rcpt_tos: v["rcpt_tos"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                subject: v["subject"].as_str().unwrap_or_default().into(),
                text: v["text"].as_str().unwrap_or_default().into(),
                html: v["html"].as_str().unwrap_or_default().into(),
                data: v["data"].as_str().unwrap_or_default().into(),
                bare_lf: v["bare_lf"].as_bool().unwrap_or(false),
                headers: v["headers"].clone(),
            })
            .collect()
    }

    /// Every address the server saw in a `RCPT TO`, accepted or not.
    pub fn rcpts(&self) -> Vec<String> {
        self.read_lines("spool.jsonl.rcpt")
            .into_iter()
            .filter_map(|v| v["rcpt"].as_str().map(String::from))
            .collect()
    }

    /// Connection events the server logged (`idle-close`).
    pub fn events(&self) -> Vec<String> {
        self.read_lines("spool.jsonl.events")
            .into_iter()
            .filter_map(|v| v["event"].as_str().map(String::from))
            .collect()
    }

    pub fn mails_to(&self, to: &str) -> Vec<Mail> {
        self.messages()
            .into_iter()
            .filter(|m| m.rcpt_tos.iter().any(|r| r == to))
            .collect()
    }

    /// Polls the spool until the `n`-th mail to `to` has arrived.
    pub async fn wait_for_nth(&self, to: &str, n: usize, timeout: Duration) -> Mail {
        eventually(timeout, || async {
            let mails = self.mails_to(to);
            mails.get(n - 1).cloned().ok_or_else(|| {
                format!(
                    "mail #{n} to {to} did not arrive; have {} ({:?})",
                    mails.len(),
                    self.rcpts()
                )
            })
        })
        .await
    }

    pub async fn wait_for_mail(&self, to: &str, timeout: Duration) -> Mail {
        self.wait_for_nth(to, 1, timeout).await
    }

    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        eventually(timeout, || async {
            let mails = self.messages();
            if mails.len() >= n {
                Ok(mails)
            } else {
                Err(format!("only {} of {n} mails arrived", mails.len()))
            }
        })
        .await
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
