//! Prometheus metrics through the `metrics` facade: one recorder per process,
//! rendered by `GET /metrics`. Counters are per instance; the queue gauge is
//! read from the database at scrape time, so it is the same on every instance.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::mail::diagnose::FailureClass;

pub const MAIL_SENT: &str = "authmail_mail_sent_total";
pub const MAIL_FAILED: &str = "authmail_mail_failed_total";
pub const OUTBOX_QUEUED: &str = "authmail_outbox_queued";
pub const CODES_ISSUED: &str = "authmail_codes_issued_total";
pub const HTTP_REQUESTS: &str = "authmail_http_requests_total";
pub const SEND_SECONDS: &str = "authmail_mail_send_seconds";
pub const WEBHOOK_TRIES: &str = "authmail_webhook_tries_total";
pub const WEBHOOKS_QUEUED: &str = "authmail_webhooks_queued";

const CLASSES: [FailureClass; 5] = [
    FailureClass::Auth,
    FailureClass::Tls,
    FailureClass::Connect,
    FailureClass::Timeout,
    FailureClass::Rejected,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process) and makes every series visible at
/// zero, so a dashboard sees them before the first mail.
pub fn install() {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(SEND_SECONDS.into()),
                &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            )
            .ok()?
            .install_recorder()
            .map_err(|e| tracing::warn!(error = %e, "metrics are off"))
            .ok()?;
        metrics::describe_counter!(MAIL_SENT, "Mails the SMTP server accepted");
        metrics::describe_counter!(
            MAIL_FAILED,
            "Failed delivery tries (retried or final), by class"
        );
        metrics::describe_gauge!(OUTBOX_QUEUED, "Messages waiting in the outbox");
        metrics::describe_counter!(CODES_ISSUED, "Verification codes issued and queued");
        metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests answered");
        metrics::describe_histogram!(
            SEND_SECONDS,
            metrics::Unit::Seconds,
            "Time of one delivery try"
        );
        metrics::describe_counter!(
            WEBHOOK_TRIES,
            "Webhook delivery tries, by outcome (sent: a 2xx answer; failed: anything else)"
        );
        metrics::describe_gauge!(WEBHOOKS_QUEUED, "Webhook events waiting in the outbox");
        metrics::counter!(MAIL_SENT).absolute(0);
        for outcome in ["sent", "failed"] {
            metrics::counter!(WEBHOOK_TRIES, "outcome" => outcome).absolute(0);
        }
        metrics::counter!(CODES_ISSUED).absolute(0);
        for class in CLASSES {
            metrics::counter!(MAIL_FAILED, "class" => class.as_str()).absolute(0);
        }
        Some(handle)
    });
}

/// The Prometheus text, with the queue gauges set first: mail waiting
/// (`queued`) and webhook events waiting.
pub fn render(queued: i64, webhooks_queued: i64) -> Option<String> {
    let handle = HANDLE.get()?.as_ref()?;
    metrics::gauge!(OUTBOX_QUEUED).set(queued as f64);
    metrics::gauge!(WEBHOOKS_QUEUED).set(webhooks_queued as f64);
    Some(handle.render())
}

pub fn mail_sent(latency: Duration) {
    metrics::counter!(MAIL_SENT).increment(1);
    metrics::histogram!(SEND_SECONDS, "outcome" => "sent").record(latency.as_secs_f64());
}

pub fn mail_failed(class: FailureClass, latency: Duration) {
    metrics::counter!(MAIL_FAILED, "class" => class.as_str()).increment(1);
    metrics::histogram!(SEND_SECONDS, "outcome" => "failed").record(latency.as_secs_f64());
}

/// One webhook try ended: `sent` (2xx) or `failed` (retried or final).
pub fn webhook_tried(outcome: &'static str) {
    metrics::counter!(WEBHOOK_TRIES, "outcome" => outcome).increment(1);
}

pub fn code_issued() {
    metrics::counter!(CODES_ISSUED).increment(1);
}

/// Counts every answer by method, route pattern (never the raw path, so the
/// label set stays small) and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method, "path" => path, "status" => status)
        .increment(1);
    response
}

/// Any token is a valid HTTP method, and each label value is kept forever:
/// naming only the standard ones keeps a flood of made-up methods from
/// growing the registry without bound.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    STANDARD
        .iter()
        .find(|m| *m == method)
        .map_or("OTHER", |m| m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_are_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"XMETHXXXXXXXX").unwrap();
        assert_eq!(method_label(&made_up), "OTHER");
    }
}
