//! One delivery try seen from outside the worker: when the next try is due
//! (backoff with jitter), and what a try leaves behind (the log line, the
//! metrics, the explained failure).

use std::time::Duration;

use crate::domain::Lang;
use crate::mail::diagnose::{self, Cause, Diagnosis, Stage};
use crate::mail::transport::Delivery;
use crate::storage::OutboxMessage;

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

/// One structured line per try (never the code, never the password), the
/// metrics, and the failure explained for `last_error`.
pub(super) fn record_try(
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
