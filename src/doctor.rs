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
use lettre::transport::smtp::extension::{ClientId, Extension, ServerInfo};
use lettre::Address;
use secrecy::ExposeSecret;

use crate::config::{Security, SmtpSettings};
use crate::domain::Lang;
use crate::mail::diagnose::{Cause, Context, Diagnosis, Stage};
use crate::mail::transport::{describe, tls_parameters};

mod env_file;
pub use env_file::env_file_warnings;

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
            println!(
                "{}",
                match lang {
                    Lang::ZhCn => "✓ 全部通过：authmail 可以用这些设置发信。",
                    Lang::En => "✓ all steps passed: authmail can send mail with these settings.",
                }
            );
            true
        }
        Err(f) => {
            doctor.explain(&f);
            false
        }
    }
}

impl Doctor<'_> {
    fn zh(&self) -> bool {
        self.lang == Lang::ZhCn
    }

    fn settings_line(&self) {
        let s = self.smtp;
        let password = match (&s.password, self.zh()) {
            (Some(p), true) => format!("已设置（{} 个字符）", p.expose_secret().chars().count()),
            (Some(p), false) => format!("set ({} characters)", p.expose_secret().chars().count()),
            (None, true) => "未设置".into(),
            (None, false) => "unset".into(),
        };
        let none = if self.zh() { "未设置" } else { "unset" };
        let provider = s.provider.map_or(none, |p| p.as_str());
        let (label, body) = if self.zh() {
            (
                "设置",
                format!(
                    "服务器 {}:{}（{}），SMTP_PROVIDER {provider}，SMTP_USER {}，SMTP_PASSWORD {password}，SMTP_FROM {}，超时 {} 秒",
                    s.server, s.port, s.security.as_str(), s.user.as_deref().unwrap_or(none), s.from, s.timeout.as_secs()
                ),
            )
        } else {
            (
                "settings",
                format!(
                    "server {}:{} ({}), SMTP_PROVIDER {provider}, SMTP_USER {}, SMTP_PASSWORD {password}, SMTP_FROM {}, timeout {} s",
                    s.server, s.port, s.security.as_str(), s.user.as_deref().unwrap_or(none), s.from, s.timeout.as_secs()
                ),
            )
        };
        step_ok(label, &body, Duration::ZERO);
    }

    fn explain(&self, f: &Failed) {
        match Diagnosis::of(&f.raw, f.stage, &self.ctx, self.lang) {
            Some(d) if self.zh() => println!("  原因：{}\n  解决：{}", d.why, d.fix),
            Some(d) => println!("  cause: {}\n  fix: {}", d.why, d.fix),
            None if self.zh() => println!("  服务器的回答如上；请对照服务商的 SMTP 说明检查设置。"),
            None => println!("  the server's answer is above; check the settings against the provider's SMTP documentation."),
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

    /// Connects (with implicit TLS when `tls` is given), reads the greeting, sends EHLO.
    async fn open(
        &self,
        addr: SocketAddr,
        tls: Option<lettre::transport::smtp::client::TlsParameters>,
    ) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
        AsyncSmtpConnection::connect_tokio1(addr, Some(self.smtp.timeout), &self.hello, tls, None)
            .await
    }

    /// Greeting, EHLO and TLS in the order the security mode takes them.
    async fn secure(&self, addr: SocketAddr) -> Result<AsyncSmtpConnection, Failed> {
        let s = self.smtp;
        let tls_error = |e: anyhow::Error| failed(format!("{e:#}"), Stage::Tls);
        if s.security == Security::Tls {
            let params = tls_parameters(s, false).map_err(tls_error)?;
            let res = self
                .timed("TLS", Stage::Greeting, async {
                    self.open(addr, Some(params))
                        .await
                        .map_err(|e| failed(describe(&e), Stage::Tls))
                })
                .await;
            let (conn, t) = match res {
                Ok(v) => v,
                Err(f) => return Err(self.with_presented_cert(f, addr).await),
            };
            step_ok("TLS", &cert_summary(&conn, self.lang), t);
            step_ok("EHLO", &ehlo_summary(conn.server_info()), Duration::ZERO);
            return Ok(conn);
        }
        let (mut conn, t) = self
            .timed("EHLO", Stage::Greeting, async {
                self.open(addr, None)
                    .await
                    .map_err(|e| failed(describe(&e), Stage::Greeting))
            })
            .await?;
        step_ok("EHLO", &ehlo_summary(conn.server_info()), t);
        let offered = conn.can_starttls();
        match s.security {
            Security::None => return Ok(conn),
            Security::Opportunistic if !offered => {
                let note = match self.lang {
                    Lang::ZhCn => "服务器不提供 STARTTLS：opportunistic 模式下以明文继续",
                    Lang::En => "not offered: opportunistic mode goes on in clear text",
                };
                step_ok("STARTTLS", note, Duration::ZERO);
                return Ok(conn);
            }
            Security::StartTls if !offered => {
                let raw = format!(
                    "STARTTLS is not offered (EHLO {})",
                    ehlo_summary(conn.server_info())
                );
                step_failed("STARTTLS", &raw, Duration::ZERO);
                return Err(failed(raw, Stage::Tls));
            }
            _ => {}
        }
        let params = tls_parameters(s, false).map_err(tls_error)?;
        let res = self
            .timed("STARTTLS", Stage::Tls, async {
                conn.starttls(params, &self.hello)
                    .await
                    .map_err(|e| failed(describe(&e), Stage::Tls))?;
                Ok(())
            })
            .await;
        let ((), t) = match res {
            Ok(v) => v,
            Err(f) => return Err(self.with_presented_cert(f, addr).await),
        };
        step_ok("STARTTLS", &cert_summary(&conn, self.lang), t);
        step_ok("EHLO", &ehlo_summary(conn.server_info()), Duration::ZERO);
        Ok(conn)
    }

    /// For a certificate failure, connects once more without verification
    /// only to read the certificate and say what was presented.
    async fn with_presented_cert(&self, mut f: Failed, addr: SocketAddr) -> Failed {
        if Cause::of(&f.raw, f.stage) != Cause::Certificate {
            return f;
        }
        let s = self.smtp;
        let Ok(params) = tls_parameters(s, true) else {
            return f;
        };
        let probe = async {
            if s.security == Security::Tls {
                return self.open(addr, Some(params)).await.ok();
            }
            let mut c = self.open(addr, None).await.ok()?;
            c.starttls(params, &self.hello).await.ok()?;
            Some(c)
        };
        if let Ok(Some(mut conn)) = tokio::time::timeout(s.timeout, probe).await {
            let presented = match self.lang {
                Lang::ZhCn => "服务器出示的证书",
                Lang::En => "the server presented",
            };
            f.raw = format!("{}; {presented}: {}", f.raw, cert_summary(&conn, self.lang));
            conn.abort().await;
        }
        f
    }

    async fn auth(&self, conn: &mut AsyncSmtpConnection) -> Result<(), Failed> {
        let s = self.smtp;
        let (Some(user), Some(password)) = (&s.user, &s.password) else {
            let note = match self.lang {
                Lang::ZhCn => "跳过：未设置 SMTP_USER / SMTP_PASSWORD",
                Lang::En => "skipped: SMTP_USER / SMTP_PASSWORD not set",
            };
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

/// `name: STARTTLS, 8BITMIME, AUTH PLAIN, ...`: the extensions lettre knows.
fn ehlo_summary(info: &ServerInfo) -> String {
    let known = [
        Extension::StartTls,
        Extension::EightBitMime,
        Extension::SmtpUtfEight,
        Extension::Authentication(Mechanism::Plain),
        Extension::Authentication(Mechanism::Login),
        Extension::Authentication(Mechanism::Xoauth2),
    ];
    let offered: Vec<String> = known
        .into_iter()
        .filter(|e| info.supports_feature(*e))
        .map(|e| e.to_string())
        .collect();
    format!("{}: {}", info.name(), offered.join(", "))
}

fn reply_text(r: &lettre::transport::smtp::response::Response) -> String {
    let lines: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), lines.join(" "))
}

/// Subject, issuer and expiry of the server's certificate.
fn cert_summary(conn: &AsyncSmtpConnection, lang: Lang) -> String {
    let Ok(der) = conn.peer_certificate() else {
        return String::new();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return String::new();
    };
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| san.value.general_names.iter().map(general_name).collect())
        .unwrap_or_default();
    let expires = cert
        .validity()
        .not_after
        .to_rfc2822()
        .unwrap_or_else(|_| cert.validity().not_after.to_string());
    match lang {
        Lang::ZhCn => format!(
            "证书主体 {}（名称 {}），签发者 {}，到期 {expires}",
            cert.subject(),
            names.join(", "),
            cert.issuer()
        ),
        Lang::En => format!(
            "certificate subject {} (names {}), issuer {}, expires {expires}",
            cert.subject(),
            names.join(", "),
            cert.issuer()
        ),
    }
}

fn general_name(n: &x509_parser::extensions::GeneralName) -> String {
    use x509_parser::extensions::GeneralName;
    match n {
        GeneralName::DNSName(d) => d.to_string(),
        GeneralName::IPAddress(b) => match <[u8; 4]>::try_from(*b) {
            Ok(v4) => std::net::Ipv4Addr::from(v4).to_string(),
            Err(_) => <[u8; 16]>::try_from(*b).map_or_else(
                |_| n.to_string(),
                |v6| std::net::Ipv6Addr::from(v6).to_string(),
            ),
        },
        other => other.to_string(),
    }
}

fn step_ok(label: &str, detail: &str, t: Duration) {
    println!("✓ {} {detail} ({} ms)", padded(label), t.as_millis());
}

fn step_failed(label: &str, raw: &str, t: Duration) {
    println!("✗ {} {raw} ({} ms)", padded(label), t.as_millis());
}

/// The label in a column of nine terminal cells (a CJK character takes two).
fn padded(label: &str) -> String {
    let cells: usize = label
        .chars()
        .map(|c| if c.is_ascii() { 1 } else { 2 })
        .sum();
    format!("{label}{}", " ".repeat(9usize.saturating_sub(cells)))
}
