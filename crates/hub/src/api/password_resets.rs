//! Using a password reset link (made by an operator with `mno users
//! reset-password <email>`, since the platform sends no mail): look it up,
//! then set a new password with it, which ends every session of the user.
//! The token travels in the body, not in the API's URLs.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::openapi::JsonBodyErrors;
use mno_events::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::account::changed;
use super::openapi::ResetLinkErrors;
use super::passwords;
use super::{db_error, AppState};
use crate::store::password_resets::{self, Unusable};
use crate::store::rfc3339;
use crate::validate::{self, Problems};

/// What to do about a link that does not work: ask for a new one.
const ASK_AGAIN: &str =
    "ask the platform's operator for a new link (mno users reset-password <your email>)";

fn unusable(why: Unusable) -> ApiError {
    match why {
        Unusable::Unknown => ApiError::not_found(format!(
            "this password reset link is not known (mistyped, or cut short); {ASK_AGAIN}"
        )),
        Unusable::Used => ApiError::new(
            StatusCode::GONE,
            "reset_link_used",
            format!("this password reset link was already used; each link works once. {ASK_AGAIN}"),
        ),
        Unusable::Expired => ApiError::new(
            StatusCode::GONE,
            "reset_link_expired",
            format!("this password reset link has expired (a link works for an hour); {ASK_AGAIN}"),
        ),
    }
    .at_pointer("/token")
}

fn token_of(token: Option<String>, problems: &mut Problems) -> Option<String> {
    match token {
        Some(token) if !token.trim().is_empty() => Some(token.trim().to_owned()),
        _ => {
            problems.add(
                "/token",
                "token is required: the last part of the reset link".into(),
            );
            None
        }
    }
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetLookup {
    /// The last part of the link `<public url>/reset/<token>`.
    token: Option<String>,
}

/// `POST /hub/v1/password_resets/lookup` → 200 `{email, expires_at}` while
/// the link works; 404 unknown, 410 used or expired.
#[utoipa::path(
    post,
    path = "/hub/v1/password_resets/lookup",
    tag = "hub",
    request_body = ResetLookup,
    responses((status = 200, description = "The link works: whose password it resets, and until when", body = super::openapi::ResetLink), JsonBodyErrors, ResetLinkErrors)
)]
pub async fn lookup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetLookup>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut problems = Problems::default();
    let token = token_of(body.token, &mut problems);
    problems.into_result()?;
    let usable = password_resets::lookup(&state.store.pool, &token.unwrap())
        .await
        .map_err(db_error)?
        .map_err(unusable)?;
    Ok(Json(json!({
        "email": usable.user.email,
        "expires_at": rfc3339(usable.expires_at),
    })))
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRedeem {
    /// The last part of the link `<public url>/reset/<token>`.
    token: Option<String>,
    /// The new password (the rules of sign-up).
    #[schema(min_length = 10, max_length = 1024)]
    password: Option<String>,
}

/// `POST /hub/v1/password_resets/redeem` → 200 `{user, sessions_ended}`: the
/// new password; the link and any other of the user's are spent, and every
/// session of the user ends. The link is checked before the password.
#[utoipa::path(
    post,
    path = "/hub/v1/password_resets/redeem",
    tag = "hub",
    request_body = ResetRedeem,
    responses((status = 200, description = "The password is changed; every session of the user ended", body = super::openapi::PasswordChanged), JsonBodyErrors, ResetLinkErrors)
)]
pub async fn redeem(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetRedeem>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut problems = Problems::default();
    let token = token_of(body.token, &mut problems);
    problems.into_result()?;
    let token = token.unwrap();
    // A dead link is said first: a better password would not help.
    password_resets::lookup(&state.store.pool, &token)
        .await
        .map_err(db_error)?
        .map_err(unusable)?;
    let password = validate::password(body.password.as_deref()).map_err(|detail| {
        ApiError::unprocessable("invalid_field", detail).at_pointer("/password")
    })?;
    let hash = passwords::hash(password).await?;
    let (user, ended) = password_resets::redeem(&state.store, &token, &hash)
        .await
        .map_err(db_error)?
        .map_err(unusable)?;
    // The owner proved themselves another way: earlier failed sign-ins no longer lock them out.
    state.limits.per_email.clear(&user.email).await;
    Ok(Json(changed(&user, ended)))
}
