//! `GET|POST /sso/v1/userinfo` (OIDC Core §5.3): the claims about the user of
//! an access token, while the token and its Hub session are live.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::claims::{self, UserClaims};
use super::oauth_error::OAuthError;
use super::store as sso_store;
use crate::api::auth::bearer;
use crate::api::AppState;
use crate::store::users;

#[utoipa::path(
    method(get, post),
    path = "/sso/v1/userinfo",
    tag = "sso",
    responses((status = 200, description = "The claims about the token's user and organisation", body = super::openapi::UserInfo), super::openapi::OAuthUnauthorized),
    security(("sso_access_token" = []))
)]
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match claims_of(&state, &headers).await {
        Ok(claims) => Json(claims).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn claims_of(state: &AppState, headers: &HeaderMap) -> Result<UserClaims, OAuthError> {
    let Some(token) = bearer(headers) else {
        return Err(OAuthError::invalid_token(
            "send the access token from the token endpoint as Authorization: Bearer <token>",
        ));
    };
    let pool = &state.store.pool;
    let gone = || {
        OAuthError::invalid_token(
            "the access token is unknown, expired or revoked, or the user signed out",
        )
    };
    let (app, user_id, org_id, issued_at) = sso_store::access_token(pool, &token)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(gone)?;
    let user = users::by_id(pool, &user_id)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(gone)?;
    let org = claims::org_claim(pool, &user.id, &app, &org_id, issued_at)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(|| {
            OAuthError::invalid_token(
                "the user has left the organisation, or it uninstalled the app, since signing in",
            )
        })?;
    Ok(UserClaims::new(&user, org))
}
