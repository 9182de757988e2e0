//! The alert webhook and its events. The failure-rate alert: after each send
//! that ended, the rate over `ALERT_WINDOW_SECS` is compared with
//! `ALERT_FAILURE_RATE`; crossing it upwards POSTs once to `ALERT_WEBHOOK_URL`,
//! and it fires again only after the rate has fallen below. The send-rate cap:
//! the send-code that fills `RATE_GLOBAL_PER_HOUR` posts `send_rate_cap`.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;

use crate::clock::Clock;
use crate::config::AlertSettings;
use crate::storage::Storage;

/// failed / (sent + failed), 0 when nothing ended.
pub fn failure_rate(sent: i64, failed: i64) -> f64 {
    match sent + failed {
        0 => 0.0,
        ended => failed as f64 / ended as f64,
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertEvent {
    pub event: &'static str,
    pub failure_rate: f64,
    pub failed: i64,
    pub sent: i64,
    pub window_secs: i64,
    pub threshold: f64,
}

/// Hysteresis: `Some(event)` exactly when the rate rises to the threshold
/// while not already firing; `firing` follows the rate.
fn decide(firing: &mut bool, s: &AlertSettings, sent: i64, failed: i64) -> Option<AlertEvent> {
    let rate = failure_rate(sent, failed);
    if rate < s.failure_rate {
        *firing = false;
        return None;
    }
    if *firing || sent + failed < s.min_samples {
        return None;
    }
    *firing = true;
    Some(AlertEvent {
        event: "mail_failure_rate",
        failure_rate: rate,
        failed,
        sent,
        window_secs: s.window_secs,
        threshold: s.failure_rate,
    })
}

/// The alert webhook (`ALERT_WEBHOOK_URL`): each event is one POST on its own
/// task with a timeout, so a slow receiver never holds up what raised it.
pub struct AlertHook {
    url: String,
    client: reqwest::Client,
}

/// The global send cap filled (`RATE_GLOBAL_PER_HOUR`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SendRateCap {
    pub event: &'static str,
    pub limit: i64,
    pub window_secs: i64,
}

impl SendRateCap {
    pub fn new(limit: i64) -> Self {
        Self {
            event: "send_rate_cap",
            limit,
            window_secs: 3600,
        }
    }
}

impl AlertHook {
    /// `Ok(None)` when no `ALERT_WEBHOOK_URL` is set. A client that cannot be
    /// built (no TLS roots, say) is a start-up error: alerts silently off
    /// would be found out only on the day they were needed.
    pub fn new(settings: &AlertSettings) -> anyhow::Result<Option<AlertHook>> {
        let Some(url) = settings.webhook_url.clone() else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| {
                anyhow::anyhow!("ALERT_WEBHOOK_URL: cannot set up the HTTP client: {e}")
            })?;
        Ok(Some(AlertHook { url, client }))
    }

    pub fn post(&self, event: &impl Serialize) {
        let request = self.client.post(&self.url).json(event);
        tokio::spawn(async move {
            match request.send().await.and_then(|r| r.error_for_status()) {
                Ok(_) => tracing::info!("alert webhook answered"),
                Err(e) => tracing::warn!(error = %e, "alert webhook failed"),
            }
        });
    }
}

/// The failure-rate alert of the outbox worker.
pub struct Alerts {
    settings: AlertSettings,
    hook: Arc<AlertHook>,
    storage: Storage,
    clock: Clock,
    firing: Mutex<bool>,
}

impl Alerts {
    pub fn new(
        settings: &AlertSettings,
        hook: Arc<AlertHook>,
        storage: Storage,
        clock: Clock,
    ) -> Alerts {
        Alerts {
            settings: settings.clone(),
            hook,
            storage,
            clock,
            firing: Mutex::new(false),
        }
    }

    /// Call after a send ended (sent or finally failed).
    pub async fn send_ended(&self) {
        let mut firing = self.firing.lock().await;
        let since = self.clock.now() - self.settings.window_secs;
        let stats = match self.storage.outbox_stats(since).await {
            Ok(s) => s,
            Err(e) => return tracing::warn!(error = %e, "alert: cannot read outbox stats"),
        };
        let Some(event) = decide(&mut firing, &self.settings, stats.sent, stats.failed) else {
            return;
        };
        tracing::warn!(
            failure_rate = event.failure_rate,
            failed = event.failed,
            sent = event.sent,
            "mail failure rate crossed ALERT_FAILURE_RATE; calling the webhook"
        );
        self.hook.post(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AlertSettings {
        AlertSettings {
            webhook_url: None,
            failure_rate: 0.5,
            window_secs: 300,
            min_samples: 4,
        }
    }

    #[test]
    fn fires_once_and_again_only_after_falling_below() {
        let s = settings();
        let mut firing = false;
        assert!(decide(&mut firing, &s, 0, 3).is_none(), "too few samples");
        let e = decide(&mut firing, &s, 1, 3).expect("fires at 0.75");
        assert_eq!((e.failed, e.sent, e.failure_rate), (3, 1, 0.75));
        assert!(decide(&mut firing, &s, 1, 4).is_none(), "already firing");
        assert!(decide(&mut firing, &s, 2, 2).is_none(), "0.5 still firing");
        assert!(decide(&mut firing, &s, 3, 2).is_none(), "fell below");
        assert!(!firing);
        assert!(decide(&mut firing, &s, 3, 3).is_some(), "fires again");
    }

    #[test]
    fn rate_is_zero_when_nothing_ended() {
        assert_eq!(failure_rate(0, 0), 0.0);
        assert_eq!(failure_rate(3, 1), 0.25);
    }
}
