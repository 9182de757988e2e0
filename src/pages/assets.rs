//! The one stylesheet, the one script and its worker, built into the binary.

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/app.js");
const WORKER: &str = include_str!("../../static/pow.js");
const ICON: &str = include_str!("../../static/favicon.svg");

/// Page links carry `?v=<version>`, so a new release is fetched afresh.
const CACHE: &str = "public, max-age=86400";

fn cached(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, CACHE),
        ],
        body,
    )
}

/// The pages' stylesheet
#[utoipa::path(get, path = "/static/app.css", tag = "pages",
    responses((status = 200, description = "Cached for a day; pages link it with `?v=<version>`.", content_type = "text/css", body = String)))]
pub async fn css() -> impl IntoResponse {
    cached("text/css; charset=utf-8", CSS)
}

/// The pages' script (countdowns, the challenge; every form works without it)
#[utoipa::path(get, path = "/static/app.js", tag = "pages",
    responses((status = 200, description = "Cached for a day; pages link it with `?v=<version>`.", content_type = "text/javascript", body = String)))]
pub async fn js() -> impl IntoResponse {
    cached("text/javascript; charset=utf-8", JS)
}

/// The pages' proof-of-work worker
///
/// Run by `app.js` in a Web Worker: solves the challenge of
/// `GET /api/auth/challenge` before the form that sends a code is sent.
#[utoipa::path(get, path = "/static/pow.js", tag = "pages",
    responses((status = 200, description = "Cached for a day; the pages start it with `?v=<version>`.", content_type = "text/javascript", body = String)))]
pub async fn worker() -> impl IntoResponse {
    cached("text/javascript; charset=utf-8", WORKER)
}

/// The pages' icon
#[utoipa::path(get, path = "/static/favicon.svg", tag = "pages",
    responses((status = 200, description = "Cached for a day.", content_type = "image/svg+xml", body = String)))]
pub async fn icon() -> impl IntoResponse {
    cached("image/svg+xml", ICON)
}
