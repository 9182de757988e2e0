//! The doctor's connection steps: greeting, EHLO and TLS (implicit or
//! STARTTLS) in the order the security mode takes them, and what certificate
//! a server presented when it failed verification.

use std::net::SocketAddr;
use std::time::Duration;

use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};

use super::report::{cert_summary, ehlo_summary, step_failed, step_ok};
use super::{failed, Doctor, Failed};
use crate::config::Security;
use crate::mail::diagnose::{Cause, Stage};
use crate::mail::transport::{describe, tls_parameters};
use crate::messages::CliText;

impl Doctor<'_> {
    /// Connects (with implicit TLS when `tls` is given), reads the greeting, sends EHLO.
    async fn open(
        &self,
        addr: SocketAddr,
        tls: Option<TlsParameters>,
    ) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
        AsyncSmtpConnection::connect_tokio1(addr, Some(self.smtp.timeout), &self.hello, tls, None)
            .await
    }

    fn tls_params(&self) -> Result<TlsParameters, Failed> {
        tls_parameters(self.smtp, false).map_err(|e| failed(format!("{e:#}"), Stage::Tls))
    }

    /// Greeting, EHLO and TLS in the order the security mode takes them.
    pub(super) async fn secure(&self, addr: SocketAddr) -> Result<AsyncSmtpConnection, Failed> {
        if self.smtp.security == Security::Tls {
            return self.implicit_tls(addr).await;
        }
        let (conn, t) = self
            .timed("EHLO", Stage::Greeting, async {
                self.open(addr, None)
                    .await
                    .map_err(|e| failed(describe(&e), Stage::Greeting))
            })
            .await?;
        step_ok("EHLO", &ehlo_summary(conn.server_info()), t);
        self.starttls(conn, addr).await
    }

    /// TLS from the first byte (465), then the greeting and EHLO inside it.
    async fn implicit_tls(&self, addr: SocketAddr) -> Result<AsyncSmtpConnection, Failed> {
        let params = self.tls_params()?;
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
        Ok(conn)
    }

    /// STARTTLS after EHLO when the mode asks for it and the server offers it.
    async fn starttls(
        &self,
        mut conn: AsyncSmtpConnection,
        addr: SocketAddr,
    ) -> Result<AsyncSmtpConnection, Failed> {
        let offered = conn.can_starttls();
        match self.smtp.security {
            Security::None => return Ok(conn),
            Security::Opportunistic if !offered => {
                let note = CliText::OpportunisticNoStartTls.text(self.lang);
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
        let params = self.tls_params()?;
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
            let presented = CliText::Presented.text(self.lang);
            f.raw = format!("{}; {presented}: {}", f.raw, cert_summary(&conn, self.lang));
            conn.abort().await;
        }
        f
    }
}
