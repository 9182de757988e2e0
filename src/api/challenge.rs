//! `GET /api/auth/challenge`: a proof of work, or a picture of five digits
//! for browsers without JavaScript (`?kind=image`). See `crate::challenge`.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::openapi::{INTERNAL, UNAVAILABLE};
use super::AppState;
use crate::challenge::{ImageChallenge, WorkChallenge};
use crate::error::{ApiError, ErrorBody};
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new().route("/api/auth/challenge", get(challenge))
}

#[derive(OpenApi)]
#[openapi(paths(challenge), components(schemas(ChallengeKind)))]
pub struct ChallengeApi;

/// A proof of work, or a picture.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum Issued {
    Work(WorkChallenge),
    Image(ImageChallenge),
}

/// Which challenge.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only documents the values
enum ChallengeKind {
    /// Proof of work (the default).
    Work,
    /// A picture of five digits.
    Image,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChallengeQuery {
    #[param(value_type = ChallengeKind, required = false)]
    kind: Option<String>,
}

/// A challenge for `send-code`
///
/// When `send-code` answers 428 `challenge_required` (`CHALLENGE`), fetch one
/// here and send the solution with the next request as
/// `"challenge": {"id", "nonce"}` (proof of work: SHA-256 of the UTF-8 bytes
/// `salt + nonce` starts with `bits` zero bits) or `"challenge": {"id",
/// "answer"}` (the five digits of the picture). Each challenge is used once,
/// by any instance, within `expires_in` seconds; a picture gets one answer.
#[utoipa::path(get, path = "/api/auth/challenge", tag = "auth", params(ChallengeQuery),
    responses(
        (status = 200, description = "A proof of work (`WorkChallenge`) or, with `kind=image`, a picture (`ImageChallenge`).", body = Issued),
        (status = 400, description = "`invalid_request`: an unknown `kind`.", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn challenge(
    State(state): State<AppState>,
    query: Result<Query<ChallengeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Issued>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let challenges = &state.challenges;
    Ok(Json(match query.kind.as_deref() {
        None | Some("work") => Issued::Work(challenges.issue_work().await?),
        Some("image") => Issued::Image(challenges.issue_image().await?),
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "kind must be work or image".into(),
            ))
        }
    }))
}
