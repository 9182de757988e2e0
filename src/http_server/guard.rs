//! What every request passes before the router: the header size limit, an
//! early 413 for a body that is declared too large, and the body deadline.
//!
//! The body is read here, whole, within `HTTP_TIMEOUT_SECS`. tower-http's
//! `RequestBodyTimeoutLayer` times each frame, so a body dripped a byte at a
//! time would never time out, and its `TimeoutLayer` would time the handler
//! too; the contract times what the client sends. Bodies are at most 64 KiB,
//! so holding one costs little.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::api::MAX_BODY;
use crate::error::ApiError;

/// Request line and headers over this are 431 `headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The guard, and outside it the request counter, so that the guard's own
/// answers (431, 413, 408) are counted too.
pub fn wrap(router: Router, timeout: Duration) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(timeout, guard))
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
}

async fn guard(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    if head_bytes(&req) > MAX_HEADER_BYTES {
        return closing(ApiError::HeadersTooLarge);
    }
    // Before anything polls the body: hyper sends `100 Continue` only when
    // the body is first read, so a client that asked for it gets the 413
    // instead and never sends the megabytes.
    if declared_length(&req).is_some_and(|n| n > MAX_BODY as u64) {
        return closing(ApiError::PayloadTooLarge);
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if is_length_limit(&e) => return closing(ApiError::PayloadTooLarge),
        Ok(Err(_)) => return closing(ApiError::InvalidRequest("unreadable body".into())),
        Err(_) => return closing(ApiError::RequestTimeout),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The size of the request head as sent: request line and header lines.
fn head_bytes(req: &Request) -> usize {
    let spaces = 2;
    let line =
        req.method().as_str().len() + req.uri().to_string().len() + spaces + "HTTP/1.1\r\n".len();
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + ": \r\n".len())
        .sum();
    line + headers
}

fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn is_length_limit(e: &axum::Error) -> bool {
    std::error::Error::source(e).is_some_and(|inner| inner.is::<http_body_util::LengthLimitError>())
}

/// An answer after which the connection closes: what is left of the request
/// (an unread body, an oversized head) cannot be trusted to frame the next one.
fn closing(e: ApiError) -> Response {
    let mut response = e.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_bytes_counts_the_request_line_and_every_header() {
        let req = Request::builder()
            .method("GET")
            .uri("/healthz")
            .header("host", "a")
            .body(Body::empty())
            .unwrap();
        // "GET /healthz HTTP/1.1\r\n" + "host: a\r\n"
        assert_eq!(head_bytes(&req), 23 + 9);
    }
}
