//! `/api/admin/*`: the outbox and its numbers, behind `ADMIN_TOKEN`.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Json;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::auth::bearer;
use super::openapi::{INTERNAL, UNAVAILABLE};
use super::AppState;
use crate::clock;
use crate::error::{ApiError, ErrorBody};
use crate::routes::Routes;
use crate::storage::OutboxEntry;

pub fn router() -> Routes {
    Routes::new()
        .route("/api/admin/outbox", get(outbox))
        .route("/api/admin/stats", get(stats))
}

/// 404 when no `ADMIN_TOKEN` is set (the API does not exist), 401 without the right one.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let expected = state
        .settings
        .admin_token
        .as_ref()
        .ok_or(ApiError::NotFound)?;
    let given = bearer(headers)?;
    // Compare hashes of both: constant time, and no length leak either.
    let digest = |s: &str| <sha2::Sha256 as sha2::Digest>::digest(s.as_bytes());
    match bool::from(digest(given).ct_eq(&digest(expected.expose_secret()))) {
        true => Ok(()),
        false => Err(ApiError::Unauthorized),
    }
}

#[derive(OpenApi)]
#[openapi(paths(outbox, stats))]
pub struct AdminApi;

const ADMIN_UNAUTHORIZED: &str =
    "`unauthorized`: no `Authorization: Bearer` header, or not `ADMIN_TOKEN`.";
const ADMIN_UNSET: &str = "`not_found`: `ADMIN_TOKEN` is not set, so the admin API does not exist.";

/// Where a message is in the outbox.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // only described: the values travel as strings
enum OutboxStatus {
    /// Waiting for its first try or for a retry.
    Queued,
    /// Claimed by a worker that is trying it now.
    Sending,
    /// The SMTP server accepted it (a webhook event: the receiver answered 2xx).
    Sent,
    /// Given up: a permanent failure, or retries ran out.
    Failed,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OutboxQuery {
    /// Only messages with this status.
    #[param(value_type = OutboxStatus, required = false)]
    status: Option<String>,
    /// How many messages at most.
    #[param(value_type = i64, required = false, minimum = 1, maximum = 500, default = 50)]
    limit: Option<String>,
}

/// One outbox message as the admin API and `authmail outbox --json` show it.
#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct OutboxMessage {
    #[schema(example = "1207")]
    pub id: String,
    /// The recipient; for a `webhook` event, the URL it is for (`WEBHOOK_URL`
    /// when the event was queued, any password in it masked).
    #[schema(example = "me@example.com")]
    pub to: String,
    /// What the mail is: a code for `register`, `reset_password` or `login`; a
    /// notice without a code (`account_exists`, `no_account`,
    /// `password_changed`); or `test` (`authmail send-test`). `webhook`: a
    /// user event for `WEBHOOK_URL`, not a mail.
    #[schema(example = "register")]
    pub purpose: String,
    #[schema(value_type = OutboxStatus)]
    pub status: String,
    /// Delivery tries so far.
    pub attempts: i64,
    /// The latest failed try's reply, then its diagnosis (a webhook event: the
    /// receiver's status and the start of its answer, or why there was none);
    /// null when no try failed.
    pub last_error: Option<String>,
    #[schema(format = DateTime, example = "2026-12-01T08:00:00Z")]
    pub created_at: String,
    /// Null until sent.
    #[schema(format = DateTime)]
    pub sent_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OutboxList {
    pub messages: Vec<OutboxMessage>,
}

/// Sends that ended in the last `window_secs`, and messages waiting now
/// (mail only: webhook events are not counted).
#[derive(Serialize, ToSchema)]
pub struct Stats {
    /// Messages sent in the window (dev-mailbox mail never counts).
    pub sent: i64,
    /// Messages that failed for good in the window.
    pub failed: i64,
    /// Messages waiting now (queued or being tried).
    pub queued: i64,
    /// failed / (sent + failed); 0 when both are 0.
    #[schema(example = 0.0)]
    pub failure_rate: f64,
    /// `ALERT_WINDOW_SECS`.
    #[schema(example = 300)]
    pub window_secs: i64,
}

/// Outbox messages, newest first
///
/// Codes never appear here.
#[utoipa::path(get, path = "/api/admin/outbox", tag = "admin", params(OutboxQuery),
    security(("admin" = [])),
    responses(
        (status = 200, description = "The messages, newest first.", body = OutboxList),
        (status = 400, description = "`invalid_request`: an unknown `status`, or a `limit` that is not a whole number from 1 to 500.", body = ErrorBody),
        (status = 401, description = ADMIN_UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = ADMIN_UNSET, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<OutboxList>, ApiError> {
    authorize(&state, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s @ ("queued" | "sending" | "sent" | "failed")) => Some(s),
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "status must be queued, sending, sent or failed".into(),
            ))
        }
    };
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidRequest("limit must be a whole number from 1 to 500".into())
            })?,
    };
    let entries = state.storage.list_outbox(status, limit).await?;
    Ok(Json(OutboxList {
        messages: entries.iter().map(OutboxMessage::from).collect(),
    }))
}

/// Delivery numbers over `ALERT_WINDOW_SECS`
#[utoipa::path(get, path = "/api/admin/stats", tag = "admin", security(("admin" = [])),
    responses(
        (status = 200, description = "The numbers.", body = Stats),
        (status = 401, description = ADMIN_UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = ADMIN_UNSET, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Stats>, ApiError> {
    authorize(&state, &headers)?;
    let window = state.settings.alert.window_secs;
    let s = state
        .storage
        .outbox_stats(state.clock.now() - window)
        .await?;
    let rate = crate::mail::alert::failure_rate(s.sent, s.failed);
    Ok(Json(Stats {
        sent: s.sent,
        failed: s.failed,
        queued: s.queued,
        failure_rate: rate,
        window_secs: window,
    }))
}

impl From<&OutboxEntry> for OutboxMessage {
    fn from(e: &OutboxEntry) -> Self {
        OutboxMessage {
            id: e.id.to_string(),
            to: e.recipient.clone(),
            purpose: e.kind.clone(),
            status: e.status.clone(),
            attempts: e.attempts,
            last_error: e.last_error.clone(),
            created_at: clock::rfc3339(e.created_at),
            sent_at: e.sent_at.map(clock::rfc3339),
        }
    }
}
