//! `POST /idm/v1/check`: the IDM decision over HTTP, for services and tools.

use axum::extract::State;
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::idm::{Idm, IdmDecision, IdmError, IdmRequest};
use mno_events::ApiError;

use super::AppState;
use mno_events::openapi::{JsonBodyErrors, Unavailable};

/// Answers 200 with the decision whether or not it allows; the caller maps a
/// deny to 401 (no principal) or 403.
#[utoipa::path(
    post,
    path = "/idm/v1/check",
    tag = "idm",
    request_body = IdmRequest,
    responses((status = 200, description = "The decision, whether or not it allows", body = IdmDecision), JsonBodyErrors, Unavailable)
)]
pub async fn check(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<IdmRequest>,
) -> Result<Json<IdmDecision>, ApiError> {
    match state.idm.check(&request).await {
        Ok(decision) => Ok(Json(decision)),
        Err(IdmError::Unavailable(reason)) => Err(ApiError::unavailable(format!(
            "the identity service cannot decide now ({reason}); retry shortly"
        ))),
    }
}
