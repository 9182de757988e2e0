//! `/api/auth/*`: parse JSON into domain types, hand over to `codes` and
//! `accounts`, shape the answer.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::openapi::{INTERNAL, NOT_JSON, UNAVAILABLE};
use super::{choose_lang, ApiJson, AppState, ClientIp};
use crate::accounts::Session;
use crate::challenge::Solution;
use crate::clock;
use crate::codes::SendRequest;
use crate::domain::{EmailAddress, Lang, Password, Purpose};
use crate::error::{ApiError, ErrorBody};
use crate::pages::cookies;
use crate::routes::Routes;
use crate::storage::User;

pub fn router() -> Routes {
    Routes::new()
        .route("/api/auth/send-code", post(send_code))
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/login-code", post(login_code))
        .route("/api/auth/reset-password", post(reset_password))
        .route("/api/auth/me", get(me))
        .route("/api/auth/logout", post(logout))
}

#[derive(OpenApi)]
#[openapi(paths(send_code, register, login, login_code, reset_password, me, logout))]
pub struct AuthApi;

/// The same for a code and for a notice, so it tells nobody whether the
/// address has an account.
#[derive(Serialize, ToSchema)]
struct CodeSent {
    /// Seconds until the code expires (`CODE_TTL_SECS`).
    #[schema(example = 300)]
    expires_in: i64,
    /// Seconds before another code may be asked for, for this address and
    /// purpose (`RESEND_COOLDOWN_SECS`).
    #[schema(example = 60)]
    resend_after: i64,
}

#[derive(Serialize, ToSchema)]
struct UserView {
    #[schema(example = "42")]
    id: String,
    /// The canonical address: lower-cased, an international domain in its ASCII form.
    #[schema(example = "me@example.com")]
    email: String,
}

/// A new session: send `token` as `Authorization: Bearer <token>`.
#[derive(Serialize, ToSchema)]
struct SessionView {
    /// Opaque (256 random bits); lives `SESSION_TTL_SECS` unless ended by logout or a password reset.
    token: String,
    /// When the session ends (`SESSION_TTL_SECS` after it began), RFC 3339.
    expires_at: String,
    user: UserView,
}

#[derive(Serialize, ToSchema)]
struct Me {
    #[schema(example = "42")]
    id: String,
    #[schema(example = "me@example.com")]
    email: String,
    /// When the account was made (RFC 3339, UTC).
    #[schema(format = DateTime, example = "2026-12-01T08:00:00Z")]
    created_at: String,
}

#[derive(Deserialize, ToSchema)]
struct SendCodeBody {
    /// One plain address, at most 254 characters.
    #[schema(example = "me@example.com")]
    email: String,
    /// What the code is for.
    #[schema(value_type = Purpose)]
    purpose: String,
    /// The mail's language; without it `Accept-Language`, then `MAIL_LANG`.
    #[schema(value_type = Option<Lang>)]
    lang: Option<String>,
    /// A solved challenge (`GET /api/auth/challenge`), when one is required.
    challenge: Option<Solution>,
}

/// Mail a code to an address
///
/// Queues exactly one mail and answers at once (the mail is sent by the outbox
/// worker, never while the request waits). The mail holds a code where one can
/// be used: `register` for an address without an account, `reset_password`
/// and `login` for one with an account. Otherwise it is a short notice without
/// a code (sign in or reset / register here). The answer is the same bytes
/// either way. A new code voids the previous one for that address and purpose.
/// Every 202 counts toward the limits; a 429 does not.
#[utoipa::path(post, path = "/api/auth/send-code", tag = "auth", request_body = SendCodeBody,
    responses(
        (status = 202, description = "One mail is queued for the address.", body = CodeSent),
        (status = 400, description = "`invalid_email`, `invalid_purpose`, or `invalid_request` (not JSON, a missing field, a wrong type, an unsupported `lang`).", body = ErrorBody),
        (status = 415, description = NOT_JSON, body = ErrorBody),
        (status = 428, description = "`challenge_required`: `CHALLENGE` asks for a solved challenge and the request carried none, or a wrong, used or expired one. Nothing was counted.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the resend cooldown, `RATE_EMAIL_PER_HOUR`, `RATE_IP_PER_HOUR` or `RATE_GLOBAL_PER_HOUR`; `too_many_attempts`: the address's code flows are locked by `CODE_MAX_FAILURES`.", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn send_code(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendCodeBody>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let email = EmailAddress::parse(&body.email)?;
    let purpose = Purpose::parse(&body.purpose).ok_or(ApiError::InvalidPurpose)?;
    let lang = choose_lang(body.lang.as_deref(), &headers, state.settings.mail_lang)?;
    let solved = match &body.challenge {
        Some(solution) => state.challenges.redeem(solution).await?,
        None => false,
    };
    let req = SendRequest {
        email: &email,
        purpose,
        lang,
        client,
        solved,
    };
    state.codes.request(req).await?;
    state.outbox_wake.notify_one();
    // The same bytes whether the mail is a code or a notice: nothing to learn here.
    let policy = state.codes.policy();
    Ok((
        StatusCode::ACCEPTED,
        Json(CodeSent {
            expires_in: policy.ttl_secs,
            resend_after: policy.resend_cooldown_secs,
        }),
    ))
}

/// An answer that carries a token or an account: no cache may keep it.
pub(super) fn no_store(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize, ToSchema)]
struct RegisterBody {
    #[schema(example = "me@example.com")]
    email: String,
    /// 8 to 1024 characters.
    #[schema(example = "a long password")]
    password: String,
    /// The code mailed for `register`.
    #[schema(example = "123456")]
    code: String,
}

/// Create an account with a mailed code
///
/// The code is checked before anything else about the account: an address
/// that already has an account never holds a register code, so it gets
/// `invalid_code` like any wrong code. Answers with a new session.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterBody,
    responses(
        (status = 201, description = "The account and a session. `Cache-Control: no-store`.", body = SessionView),
        (status = 400, description = "`invalid_code` (wrong, expired, used, voided by a newer code, or never sent), `weak_password`, `invalid_email`, or `invalid_request`.", body = ErrorBody),
        (status = 409, description = "`email_taken`: the code was right, but the address gained an account after it was mailed.", body = ErrorBody),
        (status = 415, description = NOT_JSON, body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: `CODE_MAX_ATTEMPTS` wrong guesses used this code up (ask for a new one), or the address is locked by `CODE_MAX_FAILURES`.", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, ApiError> {
    let email = EmailAddress::parse(&body.email)?;
    let password = Password::parse(body.password)?;
    let session = state
        .accounts
        .register(&email, password, &body.code)
        .await?;
    Ok(no_store((
        StatusCode::CREATED,
        Json(session_json(&session)),
    )))
}

#[derive(Deserialize, ToSchema)]
struct LoginBody {
    #[schema(example = "me@example.com")]
    email: String,
    #[schema(example = "a long password")]
    password: String,
}

/// Sign in with a password
///
/// A wrong password and an unknown (or malformed) address get the same 401
/// after the same work.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "A new session. `Cache-Control: no-store`.", body = SessionView),
        (status = 400, description = "`invalid_request`: not JSON, a missing field or a wrong type.", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: wrong password or unknown address.", body = ErrorBody),
        (status = 415, description = NOT_JSON, body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: `PASSWORD_MAX_FAILURES` wrong passwords in a row locked password login for this address (the right password too, until `Retry-After`; a code sign-in or a reset clears it); `rate_limited`: `RATE_LOGIN_IP_PER_HOUR` failed logins from this client network.", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable, or more password checks wait than can finish in about 2 s (then with `Retry-After: 1`).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "1, when the password checks are saturated; absent when the database is unreachable"))),
    ))]
async fn login(
    State(state): State<AppState>,
    client: ClientIp,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    // A malformed address or an impossible password cannot belong to an
    // account: the same 401 as a wrong password, after the same work.
    let email = EmailAddress::parse(&body.email).map_err(|_| ApiError::InvalidCredentials);
    let password = Password::parse(body.password).map_err(|_| ApiError::InvalidCredentials);
    let (email, password) = match (email, password) {
        (Ok(e), Ok(p)) => (e, p),
        _ => return Err(state.accounts.reject_login().await),
    };
    let session = state
        .accounts
        .login(&email, password, &client.key())
        .await?;
    Ok(no_store(Json(session_json(&session))))
}

#[derive(Deserialize, ToSchema)]
struct LoginCodeBody {
    #[schema(example = "me@example.com")]
    email: String,
    /// The code mailed for `login`.
    #[schema(example = "123456")]
    code: String,
}

/// Sign in with a mailed code
///
/// Also clears the address's password lock.
#[utoipa::path(post, path = "/api/auth/login-code", tag = "auth", request_body = LoginCodeBody,
    responses(
        (status = 200, description = "A new session. `Cache-Control: no-store`.", body = SessionView),
        (status = 400, description = "`invalid_code`, `invalid_email`, or `invalid_request`.", body = ErrorBody),
        (status = 415, description = NOT_JSON, body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: the code is used up by wrong guesses, or the address is locked by `CODE_MAX_FAILURES`.", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn login_code(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginCodeBody>,
) -> Result<Response, ApiError> {
    let email = EmailAddress::parse(&body.email)?;
    let session = state.accounts.login_with_code(&email, &body.code).await?;
    Ok(no_store(Json(session_json(&session))))
}

#[derive(Deserialize, ToSchema)]
struct ResetBody {
    #[schema(example = "me@example.com")]
    email: String,
    /// The code mailed for `reset_password`.
    #[schema(example = "123456")]
    code: String,
    /// 8 to 1024 characters.
    #[schema(example = "a new long password")]
    new_password: String,
    /// The language of the "password changed" notice.
    #[schema(value_type = Option<Lang>)]
    lang: Option<String>,
}

/// Set a new password with a mailed code
///
/// Every session of the user ends, and a notice that the password changed is
/// mailed. Also clears the address's password lock. The answer is a new
/// session, the only one the user has left.
#[utoipa::path(post, path = "/api/auth/reset-password", tag = "auth", request_body = ResetBody,
    responses(
        (status = 200, description = "The password is changed; a new session. `Cache-Control: no-store`.", body = SessionView),
        (status = 400, description = "`invalid_code`, `weak_password`, `invalid_email`, or `invalid_request` (also an unsupported `lang`).", body = ErrorBody),
        (status = 415, description = NOT_JSON, body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: the code is used up by wrong guesses, or the address is locked by `CODE_MAX_FAILURES`.", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn reset_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<Response, ApiError> {
    let email = EmailAddress::parse(&body.email)?;
    let password = Password::parse(body.new_password)?;
    let lang = choose_lang(body.lang.as_deref(), &headers, state.settings.mail_lang)?;
    let session = state
        .accounts
        .reset_password(&email, &body.code, password, lang)
        .await?;
    state.outbox_wake.notify_one();
    Ok(no_store(Json(session_json(&session))))
}

/// The signed-in user
///
/// By the bearer token or, without an `Authorization` header, by the pages'
/// session cookie (`authmail_session`, or `__Host-authmail_session` when
/// `PUBLIC_URL` is https).
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The session's user. `Cache-Control: no-store`.", body = Me),
        (status = 401, description = "`unauthorized`: no live session: no `Authorization: Bearer` token nor session cookie, or not a live one (a wrong `Authorization` header is not made good by a cookie).", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = bearer_or_cookie(&headers, &state.settings.public_url)?;
    let user = state.accounts.user_for_token(token).await?;
    Ok(no_store(Json(Me {
        id: user.id.to_string(),
        email: user.email,
        created_at: clock::rfc3339(user.created_at),
    })))
}

/// End the session
///
/// Only the token sent ends; other sessions of the user stay.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "The session ended."),
        (status = 401, description = "`unauthorized`: no `Authorization: Bearer` token, or not a live one.", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    state.accounts.logout(bearer(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)
}

/// The bearer token when there is an `Authorization` header (a wrong one is
/// 401, never a fall back to the cookie), else the pages' session cookie.
fn bearer_or_cookie<'a>(headers: &'a HeaderMap, public_url: &str) -> Result<&'a str, ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return bearer(headers);
    }
    cookies::session_token(headers, public_url).ok_or(ApiError::Unauthorized)
}

fn session_json(session: &Session) -> SessionView {
    let User { id, email, .. } = &session.user;
    SessionView {
        token: session.token.clone(),
        expires_at: clock::rfc3339(session.expires_at),
        user: UserView {
            id: id.to_string(),
            email: email.clone(),
        },
    }
}
