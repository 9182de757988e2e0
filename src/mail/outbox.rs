//! The outbox worker: the only consumer of the outbox. It claims due messages
//! with a lease, sends each (or drops it in the dev mailbox), and records how
//! it went: sent, retry later with backoff, or failed with the reply kept.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

use super::alert::Alerts;
use super::diagnose::{self, Cause, Diagnosis, Stage};
use super::templates::{MailContext, RenderedMail, Templates};
use super::transport::{Delivery, SmtpSender};
use crate::clock;
use crate::domain::Lang;
use crate::storage::{DevMail, Finished, MailKind, OutboxMessage, Outcome, Storage};

/// Messages claimed per connection at a time.
const CLAIM_AHEAD: usize = 16;

/// How long a claimed message may wait for a connection: the lease is the
/// send deadline plus this (`app.rs`), so a send started within it ends
/// before the lease does.
const LEASE_SPARE: Duration = Duration::from_secs(10);

/// Most outcomes recorded in one transaction, and how long the recorder
/// waits for more before it writes.
const RECORD_BATCH: usize = 256;
const RECORD_LINGER: Duration = Duration::from_millis(2);

/// Where mail goes.
pub enum Sink {
    Smtp(Box<SmtpSender>),
    DevMailbox,
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base_secs: u64,
    pub max_secs: u64,
}

impl RetryPolicy {
    /// Delay before try `attempts + 1`: base doubling per try, ±20 % jitter, capped.
    pub fn delay(&self, attempts: i64, jitter: f64) -> i64 {
        let exp = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(30);
        let raw = self
            .base_secs
            .saturating_mul(1u64 << exp)
            .min(self.max_secs) as f64;
        ((raw * jitter).round() as i64).clamp(1, self.max_secs as i64)
    }
}

pub struct Worker {
    pub storage: Storage,
    pub sink: Sink,
    pub templates: Arc<Templates>,
    pub retry: RetryPolicy,
    /// Most messages in flight at once (`SMTP_POOL_SIZE`).
    pub concurrency: usize,
    /// How long a claim holds before another worker may take the message.
    pub lease_secs: i64,
    pub code_ttl_secs: i64,
    pub public_url: String,
    /// Language of the diagnoses in `last_error` and the log (`MAIL_LANG`).
    pub lang: Lang,
    /// The failure-rate webhook, when `ALERT_WEBHOOK_URL` is set.
    pub alerts: Option<Alerts>,
}

impl Worker {
    /// Runs until `shutdown` turns true, then finishes the sends in flight.
    pub async fn run(self: Arc<Self>, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut inflight = JoinSet::new();
        // Claimed ahead of the free connections, so a claim is one database
        // round trip per several messages rather than one per message.
        let mut ready: VecDeque<(Instant, OutboxMessage)> = VecDeque::new();
        let claim_size = self.concurrency * CLAIM_AHEAD;
        let (done, outcomes) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(Arc::clone(&self).record(outcomes));
        while !*shutdown.borrow() {
            let mut pause = Duration::from_secs(2);
            if ready.len() < self.concurrency {
                let want = claim_size - ready.len();
                match self.claim(want).await {
                    Ok(batch) => {
                        if batch.len() == want {
                            pause = Duration::ZERO; // There may be more due right now.
                        } else if let Ok(Some(due)) = self.storage.next_due_at().await {
                            let wait = (due - clock::now()).clamp(0, 2);
                            pause = Duration::from_secs(wait as u64).max(Duration::from_millis(50));
                        }
                        ready.extend(batch.into_iter().map(|m| (Instant::now(), m)));
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot claim outbox messages; retrying"),
                }
            }
            while inflight.len() < self.concurrency {
                let Some((claimed, msg)) = ready.pop_front() else {
                    break;
                };
                if claimed.elapsed() > LEASE_SPARE {
                    // Its send might outlast the lease: hand it back rather
                    // than risk another instance taking it mid-send.
                    let _ = done.send(Finished::unclaimed(&msg));
                    continue;
                }
                let (worker, done) = (Arc::clone(&self), done.clone());
                inflight.spawn(async move {
                    if let Some(finished) = worker.deliver(msg).await {
                        let _ = done.send(finished);
                    }
                });
            }
            if pause.is_zero() && ready.len() < self.concurrency {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
                _ = wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        // Stop claiming; hand back what was claimed but not started, let what
        // was started end (each send is bounded by its deadline), and record it all.
        for (_, msg) in ready {
            let _ = done.send(Finished::unclaimed(&msg));
        }
        while inflight.join_next().await.is_some() {}
        drop(done);
        let _ = recorder.await;
        if let Sink::Smtp(sender) = &self.sink {
            sender.shutdown().await;
        }
    }

    async fn claim(&self, limit: usize) -> crate::storage::Result<Vec<OutboxMessage>> {
        let now = clock::now();
        self.storage
            .claim_due_messages(now, now + self.lease_secs, limit as i64)
            .await
    }

    /// Records outcomes as they come, as many as have piled up in one
    /// transaction: the sends never wait for the database.
    async fn record(self: Arc<Self>, mut outcomes: mpsc::UnboundedReceiver<Finished>) {
        let mut batch = Vec::new();
        while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            // Let more pile up for a moment: a commit of many outcomes costs
            // about what a commit of one does (the same pages are written).
            let linger = tokio::time::sleep(RECORD_LINGER);
            tokio::pin!(linger);
            while batch.len() < RECORD_BATCH {
                let room = RECORD_BATCH - batch.len();
                tokio::select! {
                    n = outcomes.recv_many(&mut batch, room) => if n == 0 { break },
                    _ = &mut linger => break,
                }
            }
            let ended = batch.iter().any(|f| f.ends());
            match self
                .storage
                .record_outcomes(std::mem::take(&mut batch))
                .await
            {
                // The leases run out and the messages are tried again: at worst duplicates.
                Err(e) => tracing::error!(error = %e, "cannot record delivery outcomes"),
                Ok(()) if ended => {
                    if let Some(alerts) = &self.alerts {
                        alerts.send_ended().await;
                    }
                }
                Ok(()) => {}
            }
        }
    }

    /// Takes one claimed message to its next state; what to record, unless
    /// it went to the dev mailbox (recorded there).
    async fn deliver(&self, msg: OutboxMessage) -> Option<Finished> {
        let now = clock::now();
        if now >= msg.expires_at {
            let reason = msg
                .last_error
                .clone()
                .unwrap_or_else(|| "not delivered before it expired".into());
            return Some(self.finish(&msg, Delivery::Permanent(reason), now));
        }
        let rendered = match self.render(&msg) {
            Ok(r) => r,
            Err(e) => return Some(self.finish(&msg, Delivery::Permanent(e), now)),
        };
        let Sink::Smtp(sender) = &self.sink else {
            self.to_dev_mailbox(&msg, rendered).await;
            return None;
        };
        let started = Instant::now();
        let outcome = sender
            .send(&msg.message_id, msg.to.as_str(), &rendered)
            .await;
        let outcome = record_try(
            &msg,
            outcome,
            sender.context(),
            self.lang,
            started.elapsed(),
        );
        Some(self.finish(&msg, outcome, clock::now()))
    }

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
            created_at: clock::now(),
        };
        let stored = self
            .storage
            .deliver_to_dev_mailbox(msg.id, msg.attempts, mail)
            .await;
        if let Err(e) = stored {
            tracing::warn!(error = %e, id = msg.id, "cannot store in the dev mailbox; will retry after the lease");
        }
    }

    fn finish(&self, msg: &OutboxMessage, outcome: Delivery, now: i64) -> Finished {
        let outcome = match outcome {
            Delivery::Sent(reply) => Outcome::Sent { reply },
            Delivery::Permanent(error) => Outcome::Failed { error },
            Delivery::Transient(error) => {
                let jitter = rand::thread_rng().gen_range(0.8..=1.2);
                let next_attempt_at = now + self.retry.delay(msg.attempts, jitter);
                if next_attempt_at >= msg.expires_at {
                    // A code mail stops when its code expires; other mail after a day.
                    let error = format!("{error} (no further tries: the message expires first)");
                    Outcome::Failed { error }
                } else {
                    Outcome::Retry {
                        error,
                        next_attempt_at,
                    }
                }
            }
        };
        Finished {
            id: msg.id,
            attempt: msg.attempts,
            outcome,
            at: now,
        }
    }
}

/// One structured line per try (never the code, never the password), the
/// metrics, and the failure explained for `last_error`.
fn record_try(
    msg: &OutboxMessage,
    outcome: Delivery,
    ctx: &diagnose::Context,
    lang: Lang,
    latency: Duration,
) -> Delivery {
    let to = msg.to.masked();
    let latency_ms = latency.as_millis() as u64;
    let (result, reply) = match &outcome {
        Delivery::Sent(r) => ("sent", r),
        Delivery::Transient(r) => ("retry", r),
        Delivery::Permanent(r) => ("failed", r),
    };
    let reply_code = diagnose::reply_code(reply).map_or(String::new(), |c| c.to_string());
    if let Delivery::Sent(_) = outcome {
        crate::metrics::mail_sent(latency);
        tracing::info!(id = msg.id, message_id = %msg.message_id, to = %to, attempt = msg.attempts, outcome = result, reply_code, reply = %reply, latency_ms, "delivery");
        return outcome;
    }
    let class = Cause::of(reply, Stage::Any).class();
    crate::metrics::mail_failed(class, latency);
    let diagnosis = Diagnosis::of(reply, Stage::Any, ctx, lang)
        .map(|d| d.render(lang))
        .unwrap_or_default();
    tracing::warn!(id = msg.id, message_id = %msg.message_id, to = %to, attempt = msg.attempts, outcome = result, class = class.as_str(), reply_code, reply = %reply, diagnosis, latency_ms, "delivery");
    let annotated = diagnose::annotate(reply, Stage::Any, ctx, lang);
    match outcome {
        Delivery::Transient(_) => Delivery::Transient(annotated),
        _ => Delivery::Permanent(annotated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            base_secs: 5,
            max_secs: 300,
        };
        let delays: Vec<i64> = (1..=9).map(|a| p.delay(a, 1.0)).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(p.delay(1, 0.8), 4);
        assert_eq!(p.delay(1, 1.2), 6);
        assert_eq!(p.delay(9, 1.2), 300, "jitter never exceeds the cap");
        assert_eq!(p.delay(1_000_000, 1.0), 300);
    }
}
