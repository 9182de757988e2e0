//! The SMTP transport: lettre's SMTP client over tokio + rustls, on pooled
//! connections. One call sends one message and says how it went, in the
//! outbox's terms.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::Message;

use super::diagnose;
use super::templates::RenderedMail;
use crate::config::SmtpSettings;

mod pipelining;
mod pool;
use pool::{Connector, Pool, TryError};

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

impl SmtpSender {
    pub fn new(smtp: &SmtpSettings) -> anyhow::Result<Self> {
        Ok(Self {
            pool: Pool::new(Connector::new(smtp)?, smtp.pool_size),
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
        self.pool.close_idle().await;
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
