//! `GET /sso/v1/jwks`: the public keys that verify ID and logout tokens.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use mno_events::ApiError;
use serde_json::json;

use super::keys;
use crate::api::AppState;

#[utoipa::path(
    get,
    path = "/sso/v1/jwks",
    tag = "sso",
    responses((status = 200, description = "The public keys that verify ID and logout tokens (JWK Set)", body = super::openapi::Jwks))
)]
pub async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let keys = keys::published(&state.store.pool)
        .await
        .map_err(ApiError::internal)?;
    let list: Vec<_> = keys.iter().map(keys::PublicKey::to_jwk).collect();
    // Short caching: a rotation reaches relying parties within minutes, and the
    // old key stays published for longer than that.
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(json!({ "keys": list })),
    ))
}
