//! `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::*;

/// The provider's metadata: what a relying party reads first.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "sso",
    responses((status = 200, description = "The provider's metadata (OpenID Connect Discovery 1.0)", body = super::openapi::OpenIdConfiguration))
)]
pub async fn configuration(State(state): State<AppState>) -> Json<Value> {
    let sso = &state.config.sso;
    Json(json!({
        "issuer": sso.issuer.trim_end_matches('/'),
        "authorization_endpoint": sso.url(AUTHORIZE_PATH),
        "token_endpoint": sso.url(TOKEN_PATH),
        "userinfo_endpoint": sso.url(USERINFO_PATH),
        "jwks_uri": sso.url(JWKS_PATH),
        "end_session_endpoint": sso.url(END_SESSION_PATH),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "authorization_response_iss_parameter_supported": true,
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "email", "name", "org"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    }))
}
