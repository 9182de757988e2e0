//! The HTTP API: the JSON extractor that turns every bad body into the
//! contract's error, and the routes of each group, merged.

pub mod admin;
mod auth;
mod challenge;
pub mod cors;
mod dev;
mod jwt;
mod openapi;
mod service;

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Router;
use bytes::Bytes;
use serde::de::DeserializeOwned;

pub use crate::client_ip::ClientIp;
pub use crate::state::AppState;

use crate::domain::Lang;
use crate::error::ApiError;
use crate::routes::Routes;

/// Bodies over this are 413 `payload_too_large`.
pub const MAX_BODY: usize = 64 * 1024;

/// The API's routes (the dev mailbox's only in dev mode); `app.rs` adds the
/// pages and what every answer shares (fallbacks, body limit, state).
pub fn routes(dev_mailbox: bool) -> Routes {
    let routes = Routes::new()
        .merge(auth::router())
        .merge(challenge::router())
        .merge(jwt::router())
        .merge(admin::router())
        .merge(service::router())
        .merge(openapi::router());
    match dev_mailbox {
        true => routes.merge(dev::router()),
        false => routes,
    }
}

/// The answers for paths and methods no route takes: the contract's JSON.
pub fn with_fallbacks(router: Router<AppState>) -> Router<AppState> {
    router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// The `METRICS_BIND` listener: `/metrics` and, for everything else, the
/// same 404 and 405 as the main listener.
pub fn metrics_router(state: AppState) -> Router {
    with_fallbacks(service::metrics_router()).with_state(state)
}

/// A JSON body: 415 without `Content-Type: application/json`, 413 over 64 KiB,
/// 400 `invalid_request` for bad JSON, missing fields or wrong types (duplicate
/// keys included: serde refuses them, so no field can be smuggled twice).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::InvalidRequest(e.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::InvalidRequest(format!("invalid JSON body: {e}")))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// `lang` from the body, else `Accept-Language`, else `MAIL_LANG`. An
/// unsupported `lang` is the client's mistake: 400.
pub fn choose_lang(
    explicit: Option<&str>,
    headers: &HeaderMap,
    default: Lang,
) -> Result<Lang, ApiError> {
    if let Some(raw) = explicit {
        return Lang::parse(raw)
            .ok_or_else(|| ApiError::InvalidRequest("lang must be zh-CN or en".into()));
    }
    Ok(headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept_language)
        .unwrap_or(default))
}
