//! `/api/admin/*`: the outbox and its numbers, behind `ADMIN_TOKEN`.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::auth::bearer;
use super::AppState;
use crate::clock;
use crate::error::ApiError;
use crate::storage::OutboxEntry;

pub fn router() -> Router<AppState> {
    Router::new()
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

#[derive(Deserialize)]
struct OutboxQuery {
    status: Option<String>,
    limit: Option<String>,
}

async fn outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({"messages": entries.iter().map(outbox_entry_json).collect::<Vec<_>>()}),
    ))
}

async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    let window = state.settings.alert.window_secs;
    let s = state.storage.outbox_stats(clock::now() - window).await?;
    let rate = crate::mail::alert::failure_rate(s.sent, s.failed);
    Ok(Json(json!({
        "sent": s.sent, "failed": s.failed, "queued": s.queued,
        "failure_rate": rate, "window_secs": window,
    })))
}

/// The admin API's view of one message; `outbox --json` prints the same.
pub fn outbox_entry_json(e: &OutboxEntry) -> Value {
    json!({
        "id": e.id.to_string(),
        "to": e.recipient,
        "purpose": e.kind,
        "status": e.status,
        "attempts": e.attempts,
        "last_error": e.last_error,
        "created_at": clock::rfc3339(e.created_at),
        "sent_at": e.sent_at.map(clock::rfc3339),
    })
}
