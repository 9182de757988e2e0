//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.storage.ping(Duration::from_secs(2)).await {
        true => Ok(Json(json!({"status": "ready"}))),
        false => Err(ApiError::Unavailable),
    }
}

/// Prometheus text; the queue gauge is read from the database at each scrape.
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let since = crate::clock::now() - state.settings.alert.window_secs;
    let queued = state.storage.outbox_stats(since).await?.queued;
    let body = crate::metrics::render(queued).ok_or(ApiError::NotFound)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
