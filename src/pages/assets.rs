//! The one stylesheet and the one script, built into the binary.

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/app.js");
const ICON: &str = include_str!("../../static/favicon.svg");

/// Page links carry `?v=<version>`, so a new release is fetched afresh.
const CACHE: &str = "public, max-age=86400";

/// The pages' stylesheet
#[utoipa::path(get, path = "/static/app.css", tag = "pages",
    responses((status = 200, description = "Cached for a day; pages link it with `?v=<version>`.", content_type = "text/css", body = String)))]
pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        CSS,
    )
}

/// The pages' script (countdowns; every form works without it)
#[utoipa::path(get, path = "/static/app.js", tag = "pages",
    responses((status = 200, description = "Cached for a day; pages link it with `?v=<version>`.", content_type = "text/javascript", body = String)))]
pub async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        JS,
    )
}

/// The pages' icon
#[utoipa::path(get, path = "/static/favicon.svg", tag = "pages",
    responses((status = 200, description = "Cached for a day.", content_type = "image/svg+xml", body = String)))]
pub async fn icon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, CACHE),
        ],
        ICON,
    )
}
