//! `authmail doctor`: walks the SMTP path one step at a time (settings, DNS,
//! TCP, TLS or STARTTLS, EHLO, AUTH, MAIL FROM / RCPT TO, QUIT), prints one
//! line per step with its time, and at the first failure names the cause and
//! the fix (through `mail::diagnose`, like every other failure report).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;
use secrecy::ExposeSecret;

use crate::config::SmtpSettings;
use crate::domain::Lang;
use crate::mail::diagnose::{Context, Diagnosis, Stage};
use crate::mail::transport::describe;
use crate::messages::{Args, CliText};

mod env_file;
mod report;
mod tls;
pub use env_file::env_file_warnings;
use report::{ehlo_summary, reply_text, step_failed, step_ok};

const MECHANISMS: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

/// A failed step: the raw text and where it happened.
struct Failed {
    raw: String,
    stage: Stage,
}

fn failed(raw: impl Into<String>, stage: Stage) -> Failed {
    Failed {
        raw: raw.into(),
        stage,
    }
}

struct Doctor<'a> {
    smtp: &'a SmtpSettings,
    ctx: Context,
    lang: Lang,
    hello: ClientId,
}

/// Runs every step; true when all passed.
pub async fn run(smtp: &SmtpSettings, lang: Lang, env_file: Option<&Path>) -> bool {
    if let Some(path) = env_file {
        for warning in env_file_warnings(path, lang) {
            println!("! {warning}");
        }
    }
    let doctor = Doctor {
        smtp,
        ctx: Context::of(smtp),
        lang,
        hello: ClientId::default(),
    };
    doctor.settings_line();
    match doctor.walk().await {
        Ok(()) => {
            println!("{}", CliText::AllPassed.text(lang));
            true
        }
        Err(f) => {
            doctor.explain(&f);
            false
        }
    }
}

impl Doctor<'_> {
    fn settings_line(&self) {
        let s = self.smtp;
        let unset = CliText::Unset.text(self.lang);
        let password = s.password.as_ref().map_or(unset.to_string(), |p| {
            let n = p.expose_secret().chars().count();
            CliText::PasswordSet.say(self.lang, &[("n", &n)])
        });
        let args: &Args = &[
            ("server", &s.server),
            ("port", &s.port),
            ("sec", &s.security.as_str()),
            ("provider", &s.provider.map_or(unset, |p| p.as_str())),
            ("user", &s.user.as_deref().unwrap_or(unset)),
            ("password", &password),
            ("from", &s.from),
            ("t", &s.timeout.as_secs()),
        ];
        let label = CliText::SettingsLabel.text(self.lang);
        step_ok(
            label,
            &CliText::Settings.say(self.lang, args),
            Duration::ZERO,
        );
    }

    fn explain(&self, f: &Failed) {
        match Diagnosis::of(&f.raw, f.stage, &self.ctx, self.lang) {
            Some(d) => {
                let args: &Args = &[("why", &d.why), ("fix", &d.fix)];
                println!("{}", CliText::CauseAndFix.say(self.lang, args));
            }
            None => println!("{}", CliText::NoDiagnosis.text(self.lang)),
        }
    }

    /// Bounds one step by `SMTP_TIMEOUT_SECS`.
    async fn timed<T>(
        &self,
        label: &str,
        stage: Stage,
        fut: impl std::future::Future<Output = Result<T, Failed>>,
    ) -> Result<(T, Duration), Failed> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.smtp.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(failed(
                format!("timed out after {} s", self.smtp.timeout.as_secs()),
                stage,
            )),
        };
        let elapsed = started.elapsed();
        match result {
            Ok(v) => Ok((v, elapsed)),
            Err(f) => {
                step_failed(label, &f.raw, elapsed);
                Err(f)
            }
        }
    }

    async fn walk(&self) -> Result<(), Failed> {
        let s = self.smtp;
        let (addrs, t) = self
            .timed("DNS", Stage::Connect, async {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((s.server.as_str(), s.port))
                    .await
                    .map_err(|e| failed(format!("lookup of {} failed: {e}", s.server), Stage::Any))?
                    .collect();
                if addrs.is_empty() {
                    return Err(failed(format!("no address for {}", s.server), Stage::Any));
                }
                Ok(addrs)
            })
            .await?;
        let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
        step_ok("DNS", &format!("{} → {}", s.server, list.join(", ")), t);

        let (addr, t) = self
            .timed("TCP", Stage::Connect, connect_any(&addrs))
            .await?;
        step_ok("TCP", &addr.to_string(), t);

        let mut conn = self.secure(addr).await?;
        self.auth(&mut conn).await?;
        self.envelope(&mut conn).await?;

        let started = Instant::now();
        match conn.quit().await {
            Ok(r) => step_ok("QUIT", &reply_text(&r), started.elapsed()),
            // The checks are done; some servers (QQ Mail) just close here.
            Err(e) => step_ok("QUIT", &describe(&e), started.elapsed()),
        }
        Ok(())
    }

    async fn auth(&self, conn: &mut AsyncSmtpConnection) -> Result<(), Failed> {
        let s = self.smtp;
        let (Some(user), Some(password)) = (&s.user, &s.password) else {
            let note = CliText::AuthSkipped.text(self.lang);
            step_ok("AUTH", note, Duration::ZERO);
            return Ok(());
        };
        if conn.server_info().get_auth_mechanism(&MECHANISMS).is_none() {
            let raw = if conn.is_encrypted() {
                format!(
                    "No compatible authentication mechanism was found (EHLO {})",
                    ehlo_summary(conn.server_info())
                )
            } else {
                format!(
                    "530 AUTH is not offered before TLS (EHLO {})",
                    ehlo_summary(conn.server_info())
                )
            };
            step_failed("AUTH", &raw, Duration::ZERO);
            return Err(failed(raw, Stage::Auth));
        }
        let credentials = Credentials::new(user.clone(), password.expose_secret().to_string());
        let (reply, t) = self
            .timed("AUTH", Stage::Auth, async {
                conn.auth(&MECHANISMS, &credentials)
                    .await
                    .map_err(|e| failed(describe(&e), Stage::Auth))
            })
            .await?;
        step_ok("AUTH", &format!("{user}: {}", reply_text(&reply)), t);
        Ok(())
    }

    /// `MAIL FROM` and `RCPT TO` with the sender's own address: relays that
    /// refuse outside recipients still pass, and no mail is sent.
    async fn envelope(&self, conn: &mut AsyncSmtpConnection) -> Result<(), Failed> {
        let from: Address = self
            .smtp
            .from
            .as_str()
            .parse()
            .map_err(|e| failed(format!("SMTP_FROM: {e}"), Stage::MailFrom))?;
        let (reply, t) = self
            .timed("MAIL FROM", Stage::MailFrom, async {
                conn.command(Mail::new(Some(from.clone()), vec![]))
                    .await
                    .map_err(|e| failed(describe(&e), Stage::MailFrom))
            })
            .await?;
        step_ok("MAIL FROM", &format!("<{from}>: {}", reply_text(&reply)), t);
        let (reply, t) = self
            .timed("RCPT TO", Stage::RcptTo, async {
                conn.command(Rcpt::new(from.clone(), vec![]))
                    .await
                    .map_err(|e| failed(describe(&e), Stage::RcptTo))
            })
            .await?;
        step_ok("RCPT TO", &format!("<{from}>: {}", reply_text(&reply)), t);
        Ok(())
    }
}

/// Tries each address in turn; the first that answers wins.
async fn connect_any(addrs: &[SocketAddr]) -> Result<SocketAddr, Failed> {
    let mut last = String::new();
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => return Ok(*addr),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(failed(last, Stage::Connect))
}
