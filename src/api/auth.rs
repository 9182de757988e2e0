//! `/api/auth/*`: parse JSON into domain types, hand over to `codes` and
//! `accounts`, shape the answer.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{choose_lang, ApiJson, AppState};
use crate::accounts::Session;
use crate::clock;
use crate::domain::{EmailAddress, Password, Purpose};
use crate::error::ApiError;
use crate::limits;
use crate::storage::User;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/send-code", post(send_code))
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/login-code", post(login_code))
        .route("/api/auth/reset-password", post(reset_password))
        .route("/api/auth/me", get(me))
        .route("/api/auth/logout", post(logout))
}

#[derive(Deserialize)]
struct SendCodeBody {
    email: String,
    purpose: String,
    lang: Option<String>,
}

async fn send_code(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendCodeBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let email = EmailAddress::parse(&body.email)?;
    let purpose = Purpose::parse(&body.purpose).ok_or(ApiError::InvalidPurpose)?;
    let lang = choose_lang(body.lang.as_deref(), &headers, state.settings.mail_lang)?;
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let ip = limits::client_ip(
        peer.ip(),
        &forwarded,
        &state.settings.limits.trusted_proxies,
    );
    if state
        .codes
        .request(&email, purpose, lang, &limits::ip_key(ip))
        .await?
    {
        state.outbox_wake.notify_one();
    }
    // The same bytes whether or not a mail went out: nothing to learn here.
    let policy = state.codes.policy();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"expires_in": policy.ttl_secs, "resend_after": policy.resend_cooldown_secs})),
    ))
}

#[derive(Deserialize)]
struct RegisterBody {
    email: String,
    password: String,
    code: String,
}

async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let email = EmailAddress::parse(&body.email)?;
    let password = Password::parse(body.password)?;
    let session = state
        .accounts
        .register(&email, password, &body.code)
        .await?;
    Ok((StatusCode::CREATED, Json(session_json(&session))))
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    // A malformed address or an impossible password cannot belong to an
    // account: the same 401 as a wrong password, after the same work.
    let email = EmailAddress::parse(&body.email).map_err(|_| ApiError::InvalidCredentials);
    let password = Password::parse(body.password).map_err(|_| ApiError::InvalidCredentials);
    let (email, password) = match (email, password) {
        (Ok(e), Ok(p)) => (e, p),
        _ => return Err(state.accounts.reject_login().await),
    };
    Ok(Json(session_json(
        &state.accounts.login(&email, password).await?,
    )))
}

#[derive(Deserialize)]
struct LoginCodeBody {
    email: String,
    code: String,
}

async fn login_code(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginCodeBody>,
) -> Result<Json<Value>, ApiError> {
    let email = EmailAddress::parse(&body.email)?;
    let session = state.accounts.login_with_code(&email, &body.code).await?;
    Ok(Json(session_json(&session)))
}

#[derive(Deserialize)]
struct ResetBody {
    email: String,
    code: String,
    new_password: String,
    lang: Option<String>,
}

async fn reset_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<Json<Value>, ApiError> {
    let email = EmailAddress::parse(&body.email)?;
    let password = Password::parse(body.new_password)?;
    let lang = choose_lang(body.lang.as_deref(), &headers, state.settings.mail_lang)?;
    state
        .accounts
        .reset_password(&email, &body.code, password, lang)
        .await?;
    state.outbox_wake.notify_one();
    Ok(Json(json!({})))
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let user = state.accounts.user_for_token(bearer(&headers)?).await?;
    Ok(Json(json!({
        "id": user.id.to_string(),
        "email": user.email,
        "created_at": clock::rfc3339(user.created_at),
    })))
}

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

fn user_json(user: &User) -> Value {
    json!({"id": user.id.to_string(), "email": user.email})
}

fn session_json(session: &Session) -> Value {
    json!({"user": user_json(&session.user), "token": session.token})
}
