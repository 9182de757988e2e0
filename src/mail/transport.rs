//! The SMTP transport: lettre's SMTP client over tokio + rustls, on pooled
//! connections. One call sends one message and says how it went, in the
//! outbox's terms.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncTokioStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::{address::Envelope, Message};
use secrecy::ExposeSecret;
use std::time::Instant;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore};

use super::diagnose;
use super::templates::RenderedMail;
use crate::config::{Security, SmtpSettings};

/// How one try went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The server answered 2xx to the end of DATA; the reply.
    Sent(String),
    /// Worth another try later: connect errors, timeouts, 4xx, dropped connections.
    Transient(String),
    /// Will not succeed by retrying: 5xx, or a message that cannot be built.
    Permanent(String),
}

pub struct SmtpSender {
    pool: Pool,
    from: Mailbox,
    /// The whole of one send, start to end; a stuck server cannot hold a message longer.
    deadline: Duration,
    context: diagnose::Context,
}

/// How to open one connection: where, how secured, as whom.
struct Connector {
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
struct Pool {
    connector: Connector,
    /// At most `SMTP_POOL_SIZE` connections exist at once.
    slots: Semaphore,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

/// A pooled connection and whether its server takes pipelined commands.
struct Conn {
    smtp: AsyncSmtpConnection,
    /// RFC 2920 PIPELINING, offered after TLS: lettre keeps only the EHLO
    /// keywords it knows, and this is not one, so authmail reads it itself.
    pipelining: bool,
}

/// Why one try failed before or without a server reply to the message.
enum TryError {
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

impl SmtpSender {
    pub fn new(smtp: &SmtpSettings) -> anyhow::Result<Self> {
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
        let connector = Connector {
            server: smtp.server.clone(),
            port: smtp.port,
            security: smtp.security,
            tls,
            credentials,
            hello: ClientId::default(),
            timeout: smtp.timeout,
        };
        Ok(Self {
            pool: Pool {
                connector,
                slots: Semaphore::new(smtp.pool_size as usize),
                idle: Mutex::new(Vec::new()),
            },
            from: Mailbox::new(smtp.from_name.clone(), smtp.from.as_str().parse()?),
            deadline: send_deadline(smtp.timeout),
            context: diagnose::Context::of(smtp),
        })
    }

    /// What failure explanations need to know about these settings.
    pub fn context(&self) -> &diagnose::Context {
        &self.context
    }

    pub async fn send(&self, message_id: &str, to: &str, mail: &RenderedMail) -> Delivery {
        let message = match self.build(message_id, to, mail) {
            Ok(m) => m,
            Err(e) => return Delivery::Permanent(format!("cannot build the message: {e}")),
        };
        let envelope = message.envelope().clone();
        let bytes = message.formatted();
        let send = self.pool.send(&envelope, &bytes);
        match tokio::time::timeout(self.deadline, send).await {
            Err(_) => Delivery::Transient(format!("timed out after {} s", self.deadline.as_secs())),
            Ok(Ok(response)) => {
                let text: Vec<&str> = response.message().collect();
                Delivery::Sent(format!("{} {}", response.code(), text.join(" ")))
            }
            Ok(Err(TryError::Smtp(e))) if e.is_permanent() || e.is_client() => {
                Delivery::Permanent(describe(&e))
            }
            Ok(Err(TryError::Smtp(e))) => Delivery::Transient(describe(&e)),
            Ok(Err(TryError::Io(e))) => Delivery::Transient(format!("Connection error: {e}")),
            Ok(Err(TryError::NoStartTls)) => Delivery::Permanent(
                "the server does not offer STARTTLS, and SMTP_SECURITY=starttls requires it".into(),
            ),
        }
    }

    fn build(&self, message_id: &str, to: &str, mail: &RenderedMail) -> anyhow::Result<Message> {
        Ok(Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.parse()?))
            .subject(mail.subject.clone())
            .message_id(Some(message_id.to_string()))
            .date_now()
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(mail.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(mail.html.clone()),
                    ),
            )?)
    }

    /// Says goodbye on every idle connection.
    pub async fn shutdown(&self) {
        let idle = std::mem::take(&mut *self.pool.idle.lock().await);
        for (mut conn, _) in idle {
            let _ = tokio::time::timeout(self.pool.connector.timeout, conn.smtp.quit()).await;
        }
    }
}

impl Pool {
    async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<Response, TryError> {
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
        // A connection that answered, even with an error reply, can carry the
        // next message (lettre has reset it); a broken one is dropped.
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

/// One message over `conn`: lettre's `send`, in fewer round trips. With
/// PIPELINING, MAIL, RCPT and DATA leave in one write and their replies are
/// read in order; and the message and its final dot always leave in one write,
/// where lettre writes them apart. Each round trip saved is a wait for the
/// server: four per mail become two (measured against smtp-sink, and over a
/// network it is whole RTTs). Non-ASCII messages go through lettre's own
/// `send`, which knows the 8BITMIME rules; ours are ASCII (lettre encodes
/// the bodies, and addresses are stored in their ASCII form).
async fn transmit(
    conn: &mut Conn,
    envelope: &Envelope,
    bytes: &[u8],
) -> Result<Response, lettre::transport::smtp::Error> {
    let smtp = &mut conn.smtp;
    let text = match std::str::from_utf8(bytes) {
        Ok(text)
            if text.is_ascii()
                && envelope
                    .to()
                    .iter()
                    .all(|a| AsRef::<str>::as_ref(a).is_ascii()) =>
        {
            text
        }
        _ => return smtp.send(envelope, bytes).await,
    };
    let mail = Mail::new(envelope.from().cloned(), vec![]);
    let rcpts: Vec<Rcpt> = envelope
        .to()
        .iter()
        .map(|to| Rcpt::new(to.clone(), vec![]))
        .collect();
    let pipelining = conn.pipelining;
    let result = async {
        if pipelining {
            let mut batch = mail.to_string();
            for rcpt in &rcpts {
                batch.push_str(&rcpt.to_string());
            }
            batch.push_str(&Data.to_string());
            smtp.command(&batch).await?; // MAIL's reply
            for _ in &rcpts {
                smtp.read_response().await?;
            }
            smtp.read_response().await?; // DATA's 354
        } else {
            smtp.command(mail).await?;
            for rcpt in rcpts {
                smtp.command(rcpt).await?;
            }
            smtp.command(Data).await?;
        }
        smtp.command(DataBlock(text)).await
    }
    .await;
    if result.is_err() {
        // As lettre does: the connection is closed (replies may still be
        // pending on it) and the pool drops it.
        conn.smtp.abort().await;
    }
    result
}

/// The message after DATA as it goes on the wire: every line that starts
/// with a dot gets one more (RFC 5321 4.5.2), then the final `.` line.
struct DataBlock<'a>(&'a str);

impl std::fmt::Display for DataBlock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, line) in self.0.split("\r\n").enumerate() {
            if i > 0 {
                f.write_str("\r\n")?;
            }
            if line.starts_with('.') {
                f.write_str(".")?;
            }
            f.write_str(line)?;
        }
        f.write_str("\r\n.\r\n")
    }
}

/// TLS for `SMTP_SERVER`, trusting the system roots plus `SMTP_CA_FILE`.
/// `accept_invalid` only lets `doctor` look at a certificate that failed.
pub fn tls_parameters(smtp: &SmtpSettings, accept_invalid: bool) -> anyhow::Result<TlsParameters> {
    let mut params = TlsParameters::builder(smtp.server.clone());
    if let Some(pem) = &smtp.ca_pem {
        params = params.add_root_certificate(Certificate::from_pem(pem)?);
    }
    Ok(params
        .dangerous_accept_invalid_certs(accept_invalid)
        .dangerous_accept_invalid_hostnames(accept_invalid)
        .build_rustls()?)
}

/// A send is connect + TLS + a handful of commands, each bounded by
/// `SMTP_TIMEOUT_SECS`; three of them is far beyond any healthy send.
pub fn send_deadline(timeout: Duration) -> Duration {
    timeout * 3
}

/// The server's reply as `535 5.7.8 ...` when there was one, else lettre's
/// error with its whole source chain.
pub fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut source = std::error::Error::source(e);
    if let (Some(code), Some(reply)) = (e.status(), source) {
        return format!("{code} {reply}");
    }
    let mut text = e.to_string();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text.replace("Connection error: Connection error: ", "Connection error: ")
}

#[cfg(test)]
mod tests {
    use super::DataBlock;

    #[test]
    fn data_block_stuffs_leading_dots_and_ends_with_the_final_dot() {
        let block = DataBlock(".first\r\nmiddle.\r\n.\r\n..two\r\nlast").to_string();
        assert_eq!(block, "..first\r\nmiddle.\r\n..\r\n...two\r\nlast\r\n.\r\n");
        // A bare LF does not start a line on the wire (CRLF does).
        assert_eq!(DataBlock("a\n.b").to_string(), "a\n.b\r\n.\r\n");
    }
}
