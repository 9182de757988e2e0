//! `CORS_ORIGINS`: pages on these origins may call `/api/auth/*` from a
//! browser, with `Authorization` and `Content-Type`, never with cookies (the
//! pages' session cookie stays first-party). tower-http's CORS layer answers
//! the preflight and adds the headers; it only ever sees requests to
//! `/api/auth/*` from a listed origin, so every other request, an unlisted
//! origin's preflight included, leaves without any `Access-Control-*` header.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::domain::Origin;

/// The paths a listed origin may call.
const PREFIX: &str = "/api/auth/";

/// How long a browser may keep a preflight's answer: a changed `CORS_ORIGINS`
/// reaches browsers within ten minutes.
const MAX_AGE: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Cors(Option<Arc<Listed>>);

struct Listed {
    origins: Vec<HeaderValue>,
    layer: CorsLayer,
}

impl Cors {
    pub fn new(origins: &[Origin]) -> Self {
        if origins.is_empty() {
            return Self(None);
        }
        let origins: Vec<HeaderValue> = origins
            .iter()
            .map(|o| HeaderValue::from_str(o.as_str()).expect("an origin is ASCII"))
            .collect();
        let layer = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.clone()))
            // Every method /api/auth/* routes.
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            // A 429's wait, readable by the app's script.
            .expose_headers([header::RETRY_AFTER])
            .max_age(MAX_AGE);
        Self(Some(Arc::new(Listed { origins, layer })))
    }
}

/// The middleware: the CORS layer for a listed origin on `/api/auth/*`,
/// nothing for anything else.
pub async fn apply(State(cors): State<Cors>, req: Request, next: Next) -> Response {
    let Some(listed) = cors.0.as_deref() else {
        return next.run(req).await;
    };
    if !req.uri().path().starts_with(PREFIX) {
        return next.run(req).await;
    }
    let origin = req.headers().get(header::ORIGIN);
    if origin.is_some_and(|o| listed.origins.contains(o)) {
        return match listed.layer.layer(next).oneshot(req).await {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        };
    }
    // The answer depends on `Origin`: a cache must not hand this one to a
    // listed origin.
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("origin"));
    response
}
