//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::openapi::{INTERNAL, UNAVAILABLE};
use super::{AppState, ClientIp};
use crate::error::{ApiError, ErrorBody};
use crate::routes::Routes;

#[derive(OpenApi)]
#[openapi(paths(healthz, readyz, metrics))]
pub struct ServiceApi;

#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok` from `/healthz`, `ready` from `/readyz`.
    #[schema(example = "ok")]
    status: &'static str,
}

pub fn router() -> Routes {
    Routes::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Liveness: the process runs
///
/// Touches nothing else, so it answers while the database is down.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The process runs.", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers
///
/// For a load balancer's health check: the database must answer within 2 s.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "The database answered.", body = Health),
        (status = 503, description = "`unavailable`: the database did not answer within 2 s.", body = ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match state.storage.ping(Duration::from_secs(2)).await {
        true => Ok(Json(Health { status: "ready" })),
        false => Err(ApiError::Unavailable),
    }
}

/// The `METRICS_BIND` listener's routes: `/metrics` to anyone who can reach
/// it (the operator chose who can), nothing else.
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(render_metrics))
}

/// Prometheus metrics
///
/// Prometheus text; the queue gauge is read from the database at each scrape.
/// Loopback clients only: the counters tell outsiders too much (how many codes
/// go out, which paths fail). Behind a trusted proxy the client is the one it
/// names, so a proxied outsider gets the same 404 as any unknown path.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4.", content_type = "text/plain", body = String),
        (status = 404, description = "`not_found`: the client is not on this machine (after `TRUSTED_PROXIES`). `METRICS_BIND` serves `/metrics` to anyone who can reach it.", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn metrics(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
) -> Result<Response, ApiError> {
    if !client.is_loopback() {
        return Err(ApiError::NotFound);
    }
    render_metrics(State(state)).await
}

async fn render_metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let since = state.clock.now() - state.settings.alert.window_secs;
    let stats = state.storage.outbox_stats(since).await?;
    let body =
        crate::metrics::render(stats.queued, stats.webhooks_queued).ok_or(ApiError::NotFound)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
