//! The connection pool and how one connection is opened: TCP with
//! `TCP_NODELAY`, TLS or STARTTLS as configured, EHLO, AUTH.

use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncTokioStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore};

use super::pipelining::transmit;
use super::tls_parameters;
use crate::config::{Security, SmtpSettings};

/// How to open one connection: where, how secured, as whom.
pub(super) struct Connector {
    server: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
}

/// Open connections kept for the next message. lettre's own pool cannot set
/// `TCP_NODELAY`, and without it every message waits out the server's
/// delayed ACK (about 40 ms) between the body and the final dot: 25 mails a
/// second per connection. So authmail keeps its own small pool of lettre
/// connections over sockets it opened itself.
pub(super) struct Pool {
    connector: Connector,
    /// At most `SMTP_POOL_SIZE` connections exist at once.
    slots: Semaphore,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

/// A pooled connection and whether its server takes pipelined commands.
pub(super) struct Conn {
    pub(super) smtp: AsyncSmtpConnection,
    /// RFC 2920 PIPELINING, offered after TLS: lettre keeps only the EHLO
    /// keywords it knows, and this is not one, so authmail reads it itself.
    pub(super) pipelining: bool,
}

/// Why one try failed before or without a server reply to the message.
pub(super) enum TryError {
    Smtp(lettre::transport::smtp::Error),
    Io(std::io::Error),
    /// `starttls` required, but the server does not offer it.
    NoStartTls,
}

impl From<lettre::transport::smtp::Error> for TryError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        Self::Smtp(e)
    }
}

impl From<std::io::Error> for TryError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// A pooled connection unused for longer than this is checked with NOOP
/// first; one unused for longer than `IDLE_MAX` is closed instead.
const IDLE_CHECK: Duration = Duration::from_secs(1);
const IDLE_MAX: Duration = Duration::from_secs(60);

impl Connector {
    pub(super) fn new(smtp: &SmtpSettings) -> anyhow::Result<Self> {
        let tls = match smtp.security {
            Security::None => None,
            _ => Some(tls_parameters(smtp, false)?),
        };
        let credentials = match (&smtp.user, &smtp.password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose_secret().to_string(),
            )),
            _ => None,
        };
        Ok(Self {
            server: smtp.server.clone(),
            port: smtp.port,
            security: smtp.security,
            tls,
            credentials,
            hello: ClientId::default(),
            timeout: smtp.timeout,
        })
    }
}

impl Pool {
    pub(super) fn new(connector: Connector, size: u32) -> Self {
        Self {
            connector,
            slots: Semaphore::new(size as usize),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Says goodbye on every idle connection.
    pub(super) async fn close_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().await);
        for (mut conn, _) in idle {
            let _ = tokio::time::timeout(self.connector.timeout, conn.smtp.quit()).await;
        }
    }

    pub(super) async fn send(
        &self,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<Response, TryError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let mut conn = match self.take_idle().await {
            Some(conn) => conn,
            None => self.connector.connect().await?,
        };
        let result = transmit(&mut conn, envelope, bytes).await;
        // Only a connection whose send succeeded goes back to the pool. On any
        // error, a negative reply included, `transmit` has aborted it (QUIT,
        // then the socket closed: `has_broken`), as lettre's own `send` does
        // through `try_smtp!`; it is dropped here.
        if !conn.smtp.has_broken() {
            self.idle.lock().await.push((conn, Instant::now()));
        }
        Ok(result?)
    }

    /// A live idle connection, newest first; stale ones are closed on the way.
    async fn take_idle(&self) -> Option<Conn> {
        loop {
            let (mut conn, since) = self.idle.lock().await.pop()?;
            let idle_for = since.elapsed();
            if idle_for > IDLE_MAX {
                let _ = tokio::time::timeout(self.connector.timeout, conn.smtp.quit()).await;
                continue;
            }
            // Servers close connections they find idle (QQ Mail does): ask first.
            if idle_for <= IDLE_CHECK || conn.smtp.test_connected().await {
                return Some(conn);
            }
        }
    }
}

impl Connector {
    /// TCP (with `TCP_NODELAY`), then TLS or STARTTLS as configured, then AUTH.
    async fn connect(&self) -> Result<Conn, TryError> {
        let mut conn = match (&self.security, &self.tls) {
            // Implicit TLS: lettre opens the socket itself (it only accepts a
            // plain TcpStream from outside), so this path keeps Nagle's delay.
            (Security::Tls, Some(tls)) => {
                AsyncSmtpConnection::connect_tokio1(
                    (self.server.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    Some(tls.clone()),
                    None,
                )
                .await?
            }
            _ => {
                let tcp = tokio::time::timeout(
                    self.timeout,
                    TcpStream::connect((self.server.as_str(), self.port)),
                )
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection timed out")
                })??;
                tcp.set_nodelay(true)?;
                #[allow(deprecated)] // the documented way to hand lettre a socket of one's own
                let stream: Box<dyn AsyncTokioStream> = Box::new(tcp);
                AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?
            }
        };
        match (&self.security, &self.tls) {
            (Security::StartTls, _) if !conn.can_starttls() => {
                conn.abort().await;
                return Err(TryError::NoStartTls);
            }
            (Security::StartTls | Security::Opportunistic, Some(tls)) if conn.can_starttls() => {
                conn.starttls(tls.clone(), &self.hello).await?;
            }
            _ => {}
        }
        let hello = conn.command(Ehlo::new(self.hello.clone())).await?;
        let pipelining = hello.message().any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
        });
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(Conn {
            smtp: conn,
            pipelining,
        })
    }
}
