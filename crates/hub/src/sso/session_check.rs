//! `POST /sso/v1/session_check` (the app's API key and secret, HTTP Basic):
//! is the user's Hub session (`sid` of the ID token) still valid? Apps ask
//! every few minutes, as they did on the original platform; `recheck_at` says
//! when to ask again. A session the app did not sign in with is not valid for it.

use axum::extract::State;
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::store as sso_store;

use crate::api::auth::CallingApp;
use crate::api::{db_error, AppState};
use crate::store::{now_ms, rfc3339};
use mno_events::openapi::{JsonBodyErrors, Unauthorized};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    sid: Option<String>,
}

#[utoipa::path(
    post,
    path = "/sso/v1/session_check",
    tag = "sso",
    request_body = super::openapi::SessionCheck,
    responses((status = 200, description = "Whether the session is valid for the app, and when to ask again", body = super::openapi::SessionCheckAnswer), JsonBodyErrors, Unauthorized),
    security(("app" = []))
)]
pub async fn check(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
    ApiJson(body): ApiJson<Check>,
) -> Result<Json<Value>, ApiError> {
    let app = app.id;
    let Some(sid) = body.sid.filter(|s| !s.is_empty()) else {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "sid is required: the sid claim of the user's ID token",
        )
        .at_pointer("/sid"));
    };
    let ends = sso_store::live_login(&state.store.pool, &sid, &app)
        .await
        .map_err(db_error)?;
    Ok(Json(match ends {
        Some(ends_at) => {
            let recheck = now_ms() + state.config.sso.recheck_interval.as_millis() as i64;
            json!({"valid": true, "recheck_at": rfc3339(recheck.min(ends_at))})
        }
        None => json!({"valid": false, "recheck_at": null}),
    }))
}
