//! The one API error type. Every error on every path leaves as
//! `{"error": {"code": "...", "message": "..."}}` with the contract's status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidEmail(String),
    #[error("purpose must be one of register, reset_password, login")]
    InvalidPurpose,
    #[error("the code is wrong, expired or already used")]
    InvalidCode,
    #[error("a password must be 8 to 1024 characters")]
    WeakPassword,
    #[error("an account with this address already exists")]
    EmailTaken,
    #[error("wrong email address or password")]
    InvalidCredentials,
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("too many requests; try again in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    #[error("too many wrong attempts; try again in {retry_after} seconds")]
    TooManyAttempts { retry_after: u64 },
    /// `send-code` needs a solved challenge (`GET /api/auth/challenge`).
    #[error("solve a challenge from GET /api/auth/challenge and send it with the request")]
    ChallengeRequired,
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("the body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("the request headers are larger than 16 KiB")]
    HeadersTooLarge,
    #[error("the request was not sent in time")]
    RequestTimeout,
    #[error("no such path")]
    NotFound,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    /// More password checks wait than the hash pool can finish in about 2 s.
    #[error("too many sign-ins are being checked; try again in a second")]
    Overloaded,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::InvalidRequest(_) => (S::BAD_REQUEST, "invalid_request"),
            Self::InvalidEmail(_) => (S::BAD_REQUEST, "invalid_email"),
            Self::InvalidPurpose => (S::BAD_REQUEST, "invalid_purpose"),
            Self::InvalidCode => (S::BAD_REQUEST, "invalid_code"),
            Self::WeakPassword => (S::BAD_REQUEST, "weak_password"),
            Self::EmailTaken => (S::CONFLICT, "email_taken"),
            Self::InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials"),
            Self::Unauthorized => (S::UNAUTHORIZED, "unauthorized"),
            Self::RateLimited { .. } => (S::TOO_MANY_REQUESTS, "rate_limited"),
            Self::TooManyAttempts { .. } => (S::TOO_MANY_REQUESTS, "too_many_attempts"),
            Self::ChallengeRequired => (S::PRECONDITION_REQUIRED, "challenge_required"),
            Self::UnsupportedMediaType => (S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::PayloadTooLarge => (S::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::HeadersTooLarge => (S::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"),
            Self::RequestTimeout => (S::REQUEST_TIMEOUT, "request_timeout"),
            Self::NotFound => (S::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Unavailable | Self::Overloaded => (S::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// Every `error.code` there is, for the OpenAPI document's enum.
    pub const CODES: [&'static str; 19] = [
        "invalid_request",
        "invalid_email",
        "invalid_purpose",
        "invalid_code",
        "weak_password",
        "email_taken",
        "invalid_credentials",
        "unauthorized",
        "rate_limited",
        "too_many_attempts",
        "challenge_required",
        "unsupported_media_type",
        "payload_too_large",
        "headers_too_large",
        "request_timeout",
        "not_found",
        "method_not_allowed",
        "unavailable",
        "internal",
    ];

    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// The status the API answers with; the pages answer with the same.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// snake_case, e.g. `invalid_code`
    pub code: &'static str,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(e) = &self {
            // The cause goes to the log only; the client learns nothing internal.
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let retry_after = match self {
            Self::RateLimited { retry_after } | Self::TooManyAttempts { retry_after } => {
                Some(retry_after.max(1))
            }
            Self::Overloaded => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        match e {
            crate::storage::StorageError::Unavailable(_) => Self::Unavailable,
            crate::storage::StorageError::Other(e) => Self::Internal(anyhow::Error::from_boxed(e)),
        }
    }
}

impl From<crate::domain::InvalidEmail> for ApiError {
    fn from(e: crate::domain::InvalidEmail) -> Self {
        Self::InvalidEmail(format!("invalid email address: {e}"))
    }
}

impl From<crate::domain::WeakPassword> for ApiError {
    fn from(_: crate::domain::WeakPassword) -> Self {
        Self::WeakPassword
    }
}

#[cfg(test)]
mod tests {
    use super::ApiError;

    /// One of each variant: `CODES` must hold every code they answer with,
    /// and nothing else.
    #[test]
    fn codes_lists_every_code_once() {
        let every = [
            ApiError::InvalidRequest(String::new()),
            ApiError::InvalidEmail(String::new()),
            ApiError::InvalidPurpose,
            ApiError::InvalidCode,
            ApiError::WeakPassword,
            ApiError::EmailTaken,
            ApiError::InvalidCredentials,
            ApiError::Unauthorized,
            ApiError::RateLimited { retry_after: 1 },
            ApiError::TooManyAttempts { retry_after: 1 },
            ApiError::ChallengeRequired,
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge,
            ApiError::HeadersTooLarge,
            ApiError::RequestTimeout,
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::Unavailable,
            ApiError::Overloaded,
            ApiError::Internal(anyhow::anyhow!("x")),
        ];
        let mut seen: Vec<&str> = every.iter().map(ApiError::code).collect();
        seen.sort_unstable();
        seen.dedup();
        let mut listed = ApiError::CODES.to_vec();
        listed.sort_unstable();
        assert_eq!(seen, listed);
    }
}
