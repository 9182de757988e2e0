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

#[derive(Deserialize, IntoParams)]
struct OutboxQuery {
    /// queued, sending, sent or failed
    status: Option<String>,
    /// 1–500, default 50
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
}

/// One outbox message as the admin API and `authmail outbox --json` show it.
#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct OutboxMessage {
    pub id: String,
    pub to: String,
    pub purpose: String,
    pub status: String,
    /// Delivery tries so far.
    pub attempts: i64,
    /// The latest failed try's reply, explained; null when none failed.
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OutboxList {
    pub messages: Vec<OutboxMessage>,
}

/// Sends that ended in the last `window_secs`, and messages waiting now.
#[derive(Serialize, ToSchema)]
pub struct Stats {
    pub sent: i64,
    pub failed: i64,
    pub queued: i64,
    /// failed / (sent + failed); 0 when both are 0
    pub failure_rate: f64,
    pub window_secs: i64,
}

/// Outbox messages, newest first. Codes never appear here.
#[utoipa::path(get, path = "/api/admin/outbox", tag = "admin", params(OutboxQuery),
    security(("bearer" = [])),
    responses((status = 200, body = OutboxList), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, description = "ADMIN_TOKEN is not set", body = ErrorBody)))]
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

/// Delivery numbers over `ALERT_WINDOW_SECS`.
#[utoipa::path(get, path = "/api/admin/stats", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Stats), (status = 401, body = ErrorBody),
              (status = 404, description = "ADMIN_TOKEN is not set", body = ErrorBody)))]
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
