//! The webhook lane: each claimed event is signed for this try and POSTed
//! to `WEBHOOK_URL`. Its worker runs beside the mail worker, with its own
//! claims and concurrency, so a receiver that is slow or down holds up
//! nothing but other events; and its outcomes count toward their own
//! metrics, never the mail's numbers or the failure-rate alert.

use std::time::Instant;

use super::Lane;
use crate::clock::Clock;
use crate::mail::transport::Delivery;
use crate::storage::{self, Channel, Storage, WebhookMessage};
use crate::webhooks::WebhookSender;

/// Most events in flight at once: enough to keep up with sign-ups, few
/// enough not to flood a receiver that is catching up after an outage.
pub const CONCURRENCY: usize = 4;

pub struct WebhookLane {
    pub sender: WebhookSender,
    /// `webhook-timestamp` is the time of each try.
    pub clock: Clock,
}

impl Lane for WebhookLane {
    type Message = WebhookMessage;
    const CHANNEL: Channel = Channel::Webhook;

    async fn claim(
        &self,
        storage: &Storage,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> storage::Result<Vec<WebhookMessage>> {
        storage.claim_due_webhooks(now, lease_until, limit).await
    }

    async fn try_once(&self, msg: &WebhookMessage) -> Option<Delivery> {
        let started = Instant::now();
        let outcome = self
            .sender
            .send(&msg.webhook_id, &msg.body, self.clock.now())
            .await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let target = self.sender.target();
        let (id, webhook_id, attempt) = (msg.id, &msg.webhook_id, msg.attempts);
        // The body (a user's address) and the signature stay out of the log.
        match &outcome {
            Delivery::Sent(answer) => {
                crate::metrics::webhook_tried("sent");
                tracing::info!(id, webhook_id, %target, attempt, outcome = "sent", answer, latency_ms, "webhook");
            }
            Delivery::Transient(error) | Delivery::Permanent(error) => {
                crate::metrics::webhook_tried("failed");
                tracing::warn!(id, webhook_id, %target, attempt, outcome = "retry", error, latency_ms, "webhook");
            }
        }
        Some(outcome)
    }
}
