//! The mail lane: renders each claimed message and sends it over SMTP, or
//! drops it in the dev mailbox; after outcomes are recorded, the
//! failure-rate alert looks at the numbers.

use std::sync::Arc;
use std::time::Instant;

use super::tries::record_try;
use super::Lane;
use crate::clock::Clock;
use crate::domain::Lang;
use crate::mail::alert::Alerts;
use crate::mail::templates::{MailContext, RenderedMail, Templates};
use crate::mail::transport::{Delivery, SmtpSender};
use crate::storage::{self, Channel, DevMail, MailKind, OutboxMessage, Storage};

/// Where mail goes.
pub enum Sink {
    Smtp(Box<SmtpSender>),
    DevMailbox,
}

pub struct MailLane {
    pub sink: Sink,
    /// For the dev mailbox, which records its deliveries itself.
    pub storage: Storage,
    pub clock: Clock,
    pub templates: Arc<Templates>,
    pub code_ttl_secs: i64,
    pub public_url: String,
    /// Language of the diagnoses in `last_error` and the log (`MAIL_LANG`).
    pub lang: Lang,
    /// The failure-rate webhook, when `ALERT_WEBHOOK_URL` is set.
    pub alerts: Option<Alerts>,
}

impl Lane for MailLane {
    type Message = OutboxMessage;
    const CHANNEL: Channel = Channel::Mail;

    async fn claim(
        &self,
        storage: &Storage,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> storage::Result<Vec<OutboxMessage>> {
        storage.claim_due_messages(now, lease_until, limit).await
    }

    async fn try_once(&self, msg: &OutboxMessage) -> Option<Delivery> {
        let rendered = match self.render(msg) {
            Ok(r) => r,
            Err(e) => return Some(Delivery::Permanent(e)),
        };
        let Sink::Smtp(sender) = &self.sink else {
            self.to_dev_mailbox(msg, rendered).await;
            return None;
        };
        let started = Instant::now();
        let outcome = sender
            .send(&msg.message_id, msg.to.as_str(), &rendered)
            .await;
        Some(record_try(
            msg,
            outcome,
            sender.context(),
            self.lang,
            started.elapsed(),
        ))
    }

    async fn recorded(&self, ended: bool) {
        if let (true, Some(alerts)) = (ended, &self.alerts) {
            alerts.send_ended().await;
        }
    }

    async fn shutdown(&self) {
        if let Sink::Smtp(sender) = &self.sink {
            sender.shutdown().await;
        }
    }
}

impl MailLane {
    fn render(&self, msg: &OutboxMessage) -> Result<RenderedMail, String> {
        let (template, purpose) = match msg.kind {
            MailKind::Code(p) => ("code", p.as_str()),
            MailKind::AccountExists => ("account_exists", ""),
            MailKind::NoAccount => ("no_account", ""),
            MailKind::PasswordChanged => ("password_changed", ""),
            MailKind::Test => ("test", ""),
        };
        let ctx = MailContext {
            purpose,
            code: msg.payload.as_deref(),
            minutes: (self.code_ttl_secs + 59) / 60,
            email: msg.to.as_str(),
            public_url: &self.public_url,
        };
        self.templates.render(template, msg.lang, &ctx)
    }

    async fn to_dev_mailbox(&self, msg: &OutboxMessage, rendered: RenderedMail) {
        if let Some(code) = &msg.payload {
            // Dev mode only: there is no real mailbox, so the log is one.
            tracing::info!(to = %msg.to, kind = msg.kind.as_str(), code = %code, "dev mailbox: code");
        }
        let carries_code = matches!(msg.kind, MailKind::Code(_));
        let mail = DevMail {
            to: msg.to.to_string(),
            subject: rendered.subject,
            // Shown in a browser, not sent over SMTP: plain line ends.
            text: rendered.text.replace("\r\n", "\n"),
            code: msg.payload.clone().filter(|_| carries_code),
            created_at: self.clock.now(),
        };
        let stored = self
            .storage
            .deliver_to_dev_mailbox(msg.id, msg.attempts, mail)
            .await;
        if let Err(e) = stored {
            tracing::warn!(error = %e, id = msg.id, "cannot store in the dev mailbox; will retry after the lease");
        }
    }
}
