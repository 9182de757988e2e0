//! `/api/auth/*`: parse JSON into domain types, hand over to `codes` and
//! `accounts`, shape the answer.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{choose_lang, ApiJson, AppState, ClientIp};
use crate::accounts::Session;
use crate::clock;
use crate::domain::{EmailAddress, Password, Purpose};
use crate::error::{ApiError, ErrorBody};
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

#[derive(Serialize, ToSchema)]
struct CodeSent {
    /// seconds until the code expires (`CODE_TTL_SECS`)
    expires_in: i64,
    /// seconds before another code may be asked for
    resend_after: i64,
}

#[derive(Serialize, ToSchema)]
struct UserView {
    id: String,
    email: String,
}

#[derive(Serialize, ToSchema)]
struct SessionView {
    user: UserView,
    token: String,
}

#[derive(Serialize, ToSchema)]
struct Me {
    id: String,
    email: String,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
struct Empty {}

#[derive(Deserialize, ToSchema)]
struct SendCodeBody {
    email: String,
    /// register, reset_password or login
    purpose: String,
    lang: Option<String>,
}

#[utoipa::path(post, path = "/api/auth/send-code", tag = "auth", request_body = SendCodeBody, responses((status = 202, body = CodeSent), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn send_code(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendCodeBody>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let email = EmailAddress::parse(&body.email)?;
    let purpose = Purpose::parse(&body.purpose).ok_or(ApiError::InvalidPurpose)?;
    let lang = choose_lang(body.lang.as_deref(), &headers, state.settings.mail_lang)?;
    state
        .codes
        .request(&email, purpose, lang, &client.key())
        .await?;
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
fn no_store(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize, ToSchema)]
struct RegisterBody {
    email: String,
    password: String,
    code: String,
}

#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterBody, responses((status = 201, body = SessionView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
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
    email: String,
    password: String,
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody, responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
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
    email: String,
    code: String,
}

#[utoipa::path(post, path = "/api/auth/login-code", tag = "auth", request_body = LoginCodeBody, responses((status = 200, body = SessionView), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
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
    email: String,
    code: String,
    new_password: String,
    lang: Option<String>,
}

#[utoipa::path(post, path = "/api/auth/reset-password", tag = "auth", request_body = ResetBody, responses((status = 200, body = Empty), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn reset_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<Json<Empty>, ApiError> {
    let email = EmailAddress::parse(&body.email)?;
    let password = Password::parse(body.new_password)?;
    let lang = choose_lang(body.lang.as_deref(), &headers, state.settings.mail_lang)?;
    state
        .accounts
        .reset_password(&email, &body.code, password, lang)
        .await?;
    state.outbox_wake.notify_one();
    Ok(Json(Empty {}))
}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])), responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = state.accounts.user_for_token(bearer(&headers)?).await?;
    Ok(no_store(Json(Me {
        id: user.id.to_string(),
        email: user.email,
        created_at: clock::rfc3339(user.created_at),
    })))
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])), responses((status = 204, description = "the session ended"), (status = 401, body = ErrorBody)))]
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

fn session_json(session: &Session) -> SessionView {
    let User { id, email, .. } = &session.user;
    SessionView {
        user: UserView {
            id: id.to_string(),
            email: email.clone(),
        },
        token: session.token.clone(),
    }
}
