//! `POST /api/auth/jwt` and `GET /.well-known/jwks.json`: a session turned
//! into a short-lived signed token, and the public keys that verify it.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Json;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::auth::{bearer, no_store};
use super::openapi::{INTERNAL, UNAVAILABLE};
use super::AppState;
use crate::clock;
use crate::error::{ApiError, ErrorBody};
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new()
        .route("/api/auth/jwt", post(issue))
        .route("/.well-known/jwks.json", get(jwks))
}

#[derive(OpenApi)]
#[openapi(paths(issue, jwks))]
pub struct JwtApi;

#[derive(Serialize, ToSchema)]
struct JwtView {
    /// a JWS (compact form) signed with Ed25519: header `alg` `EdDSA` and
    /// `kid`; claims `iss` (`PUBLIC_URL`), `sub` (the user's id), `email`,
    /// `sid` (the session's id), `iat`, `exp` (`JWT_TTL_SECS` later) and
    /// `aud` (`JWT_AUDIENCE`, when set)
    jwt: String,
    /// the token's `exp`
    expires_at: String,
}

/// A JSON Web Key Set (RFC 7517) of Ed25519 public keys (RFC 8037).
#[derive(Serialize, ToSchema)]
struct Jwks {
    /// the key that signs now first, then retired keys whose tokens may
    /// still be live
    keys: Vec<PublicJwk>,
}

#[derive(Serialize, ToSchema)]
struct PublicJwk {
    /// `OKP`
    kty: &'static str,
    /// `Ed25519`
    crv: &'static str,
    /// the public key, base64url
    x: String,
    /// the key's RFC 7638 thumbprint; a token's header names it
    kid: String,
    /// `EdDSA`
    alg: &'static str,
    /// `sig`
    #[serde(rename = "use")]
    key_use: &'static str,
}

/// A signed JWT for the session
///
/// For an app's backend to verify against `/.well-known/jwks.json` without
/// calling authmail. It stays valid until `expires_at` even if the session
/// ends sooner; ask for a new one before then. Only the bearer token is
/// taken here, never the pages' cookie.
#[utoipa::path(post, path = "/api/auth/jwt", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "A JWT for the session's user. `Cache-Control: no-store`.", body = JwtView),
        (status = 401, description = "`unauthorized`: no `Authorization: Bearer` token, or not a live one.", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn issue(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let session = state.accounts.session_for_token(bearer(&headers)?).await?;
    let issued = state.jwt.issue(&session).await?;
    Ok(no_store(Json(JwtView {
        jwt: issued.jwt,
        expires_at: clock::rfc3339(issued.expires_at),
    })))
}

/// The keys that verify the JWTs
///
/// Public keys only. A verifier that meets an unknown `kid` fetches this
/// again: after `authmail keys rotate` the new key signs within seconds, and
/// the old one stays listed until every token it signed has expired.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses(
        (status = 200, description = "An RFC 7517 key set.", body = Jwks),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn jwks(State(state): State<AppState>) -> Result<Json<Jwks>, ApiError> {
    let keys = state.jwt.published_keys().await?;
    let keys = keys
        .into_iter()
        .map(|k| PublicJwk {
            kty: "OKP",
            crv: "Ed25519",
            x: k.x,
            kid: k.kid,
            alg: "EdDSA",
            key_use: "sig",
        })
        .collect();
    // No Cache-Control: a cache between verifier and authmail could hide a
    // new key, which signs as soon as it is made. Verifiers keep their own copy.
    Ok(Json(Jwks { keys }))
}
