//! User-event webhooks, as Standard Webhooks (standardwebhooks.com) define
//! them: a change to a user queues a signed JSON event in the outbox, in the
//! transaction of the change, and the webhook worker POSTs it to
//! `WEBHOOK_URL`, retrying with the mail backoff for 24 hours.
//!
//! This side builds the events; `sender.rs` signs and sends them.

use std::sync::Arc;

use rand::RngCore;
use serde::Serialize;
use tokio::sync::Notify;

use crate::config::WebhookSettings;
use crate::storage::NewWebhook;

mod sender;
mod signature;

pub use sender::{WebhookSender, TRY_TIMEOUT};
pub use signature::sign;

/// An event is tried for this long after the change it reports.
const RETRY_SECS: i64 = 24 * 3600;

/// What happened to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserEvent {
    /// An account was registered.
    Created,
    /// The password changed (a reset, for now).
    PasswordChanged,
    /// The address changed; the event carries the new one. No flow makes
    /// this change yet: account self-service will, through `user_event`.
    EmailChanged,
    /// The account is gone; the event carries its last address. No flow
    /// deletes accounts yet: account self-service will, through `user_event`.
    Deleted,
}

impl UserEvent {
    /// The event's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "user.created",
            Self::PasswordChanged => "user.password_changed",
            Self::EmailChanged => "user.email_changed",
            Self::Deleted => "user.deleted",
        }
    }
}

/// The events a write flow queues: off unless `WEBHOOK_URL` is set. It holds
/// the target only (for the outbox's `to`), never the secret: events are
/// signed at each try, by the worker.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    /// `WEBHOOK_URL` as shown, its password (if any) masked.
    target: Option<Arc<str>>,
    /// Wakes the webhook worker once an event is committed.
    wake: Arc<Notify>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    user: EventUser<'a>,
}

#[derive(Serialize)]
struct EventUser<'a> {
    id: String,
    email: &'a str,
}

impl Webhooks {
    /// `wake` is the webhook worker's.
    pub fn new(settings: Option<&WebhookSettings>, wake: Arc<Notify>) -> Self {
        Self {
            target: settings.map(|s| Arc::from(s.url.to_string())),
            wake,
        }
    }

    /// After a write flow that may have queued an event has committed: the
    /// worker sends it now rather than at its next look (up to 2 s later).
    pub fn committed(&self) {
        if self.target.is_some() {
            self.wake.notify_one();
        }
    }

    /// The outbox row reporting `kind` for the user, changed at `now`; `None`
    /// when webhooks are off. Called inside the write flow that makes the
    /// change (`storage::writes::user_event`), once the user's id is known.
    pub fn user_event(
        &self,
        kind: UserEvent,
        user_id: i64,
        email: &str,
        now: i64,
    ) -> Option<NewWebhook> {
        let target = self.target.as_deref()?;
        let body = Body {
            kind: kind.as_str(),
            timestamp: crate::clock::rfc3339(now),
            data: Data {
                user: EventUser {
                    id: user_id.to_string(),
                    email,
                },
            },
        };
        Some(NewWebhook {
            webhook_id: new_webhook_id(),
            target: target.to_string(),
            // Serialising plain strings into JSON cannot fail.
            body: serde_json::to_string(&body).unwrap_or_default(),
            expires_at: now + RETRY_SECS,
        })
    }
}

/// A unique `webhook-id`, the same on every try of one event, so a receiver
/// can tell a retry from a new event: `msg_` and 128 random bits.
fn new_webhook_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("msg_{}", crate::keys::hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_the_documented_json_with_a_stable_id_and_a_day_to_go() {
        let hooks = Webhooks {
            target: Some(Arc::from("https://hooks.example.com/in")),
            wake: Arc::default(),
        };
        let e = hooks
            .user_event(UserEvent::Created, 42, "a@example.com", 1_800_000_000)
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&e.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "user.created", "timestamp": "2027-01-15T08:00:00Z",
                               "data": {"user": {"id": "42", "email": "a@example.com"}}})
        );
        assert!(
            e.body.starts_with(r#"{"type":"user.created","#),
            "{}",
            e.body
        );
        assert_eq!(e.target, "https://hooks.example.com/in");
        assert_eq!(e.expires_at, 1_800_000_000 + 86_400);
        assert!(e.webhook_id.starts_with("msg_") && e.webhook_id.len() == 36);
        let again = hooks.user_event(UserEvent::Deleted, 42, "a@example.com", 0);
        assert_ne!(again.unwrap().webhook_id, e.webhook_id);
    }

    #[test]
    fn nothing_is_queued_when_webhooks_are_off() {
        let off = Webhooks::default();
        assert!(off
            .user_event(UserEvent::Created, 1, "a@example.com", 0)
            .is_none());
    }
}
