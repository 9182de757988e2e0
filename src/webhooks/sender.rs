//! One try of one event: sign it now, POST it, and say how it went in the
//! outbox's terms. 2xx is delivered; any other answer, a timeout or a
//! connection that fails is tried again later.

use std::time::Duration;

use reqwest::redirect::Policy;

use super::signature::sign;
use crate::config::{WebhookSecret, WebhookSettings, WebhookUrl};
use crate::mail::transport::Delivery;

/// The whole of one try: connect, send, and the receiver's answer. A
/// receiver that needs longer should answer first and work afterwards.
pub const TRY_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a refusal's body is kept in `last_error`.
const ANSWER_KEPT: usize = 200;

pub struct WebhookSender {
    client: reqwest::Client,
    url: WebhookUrl,
    secret: WebhookSecret,
}

impl WebhookSender {
    /// A client that cannot be built (no TLS roots, say) is a start-up error.
    pub fn new(settings: &WebhookSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(TRY_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect is an answer, not a delivery: following a 301/302
            // would turn the POST into a GET without the event.
            .redirect(Policy::none())
            .user_agent(concat!("authmail/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("WEBHOOK_URL: cannot set up the HTTP client: {e}"))?;
        Ok(Self {
            client,
            url: settings.url.clone(),
            secret: settings.secret.clone(),
        })
    }

    /// Where events go, as shown (any password masked).
    pub fn target(&self) -> &WebhookUrl {
        &self.url
    }

    /// POSTs the event signed for this try's `timestamp` (Unix seconds).
    pub async fn send(&self, webhook_id: &str, body: &str, timestamp: i64) -> Delivery {
        let signature = sign(self.secret.key(), webhook_id, timestamp, body);
        let sent = self
            .client
            .post(self.url.expose().clone())
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_string())
            .send()
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(e) => return Delivery::Transient(failure(e)),
        };
        let status = answer.status();
        if status.is_success() {
            return Delivery::Sent(format!("HTTP {status}"));
        }
        let text = answer.text().await.unwrap_or_default();
        Delivery::Transient(refusal(status, &text))
    }
}

/// What went wrong, without the URL: it may hold a password or a token.
fn failure(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", TRY_TIMEOUT.as_secs());
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    };
    // reqwest's own message is terse ("error sending request"); the
    // innermost cause (connection refused, DNS, TLS) is what an operator can act on.
    let e = e.without_url();
    let mut cause: &dyn std::error::Error = &e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    format!("{what}: {cause}")
}

/// The status and the start of the receiver's answer, on one line.
fn refusal(status: reqwest::StatusCode, text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ANSWER_KEPT)
        .collect();
    match text.trim() {
        "" => format!("HTTP {status}"),
        text => format!("HTTP {status}: {text}"),
    }
}
