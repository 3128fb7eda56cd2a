//! A user managing their own account: their name, their password, and
//! signing out everywhere. (Sign-up and sign-in are in [`super::users`];
//! reset links, for a forgotten password, in [`super::password_resets`].)

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use mno_events::api_error::ApiJson;
use mno_events::openapi::{Forbidden, JsonBodyErrors, TooManyRequests, Unauthorized};
use mno_events::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::auth::SignedIn;
use super::passwords;
use super::users::{check_signin_limits, record_signin_failure, request_client};
use super::{db_error, not_null, AppState};
use crate::store::users;
use crate::validate::{self, Problems};

/// Unknown fields are refused (the email cannot be changed here).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, deserialize_with = "not_null")]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
}

/// `PATCH /hub/v1/users/me` → 200 the user, renamed (the rules of sign-up).
#[utoipa::path(
    patch,
    path = "/hub/v1/users/me",
    tag = "hub",
    request_body = UserPatch,
    responses((status = 200, description = "The signed-in user as changed", body = super::openapi::User), JsonBodyErrors, Unauthorized, Forbidden),
    security(("user" = []))
)]
pub async fn update_me(
    State(state): State<AppState>,
    me: SignedIn,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut problems = Problems::default();
    let name = body
        .name
        .and_then(|v| problems.check("/name", validate::name("name", Some(&v))));
    problems.into_result()?;
    let Some(name) = name else {
        return Ok(Json(me.user.to_json()));
    };
    let user = users::rename(&state.store, &me.user.id, &name)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::unauthorized("the user of this session no longer exists"))?;
    Ok(Json(user.to_json()))
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password the user signs in with now.
    current_password: Option<String>,
    #[schema(min_length = 10, max_length = 1024)]
    new_password: Option<String>,
}

/// The answer of a password change or reset.
pub fn changed(user: &users::UserRow, sessions_ended: usize) -> serde_json::Value {
    json!({"user": user.to_json(), "sessions_ended": sessions_ended})
}

/// `POST /hub/v1/users/me/password` → 200 `{user, sessions_ended}`: the new
/// password (the rules of sign-up), and every other session of the user
/// ended; the caller's stays. A wrong current password counts as a failed
/// sign-in (the same limits, per email and per client address).
#[utoipa::path(
    post,
    path = "/hub/v1/users/me/password",
    tag = "hub",
    request_body = PasswordChange,
    responses((status = 200, description = "Changed; every other session of the user ended", body = super::openapi::PasswordChanged), JsonBodyErrors, Unauthorized, Forbidden, TooManyRequests),
    security(("user" = []))
)]
pub async fn change_password(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    me: SignedIn,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut problems = Problems::default();
    if body.current_password.is_none() {
        problems.add(
            "/current_password",
            "current_password is required: the password you sign in with now".into(),
        );
    }
    let new_password = problems.check(
        "/new_password",
        validate::password(body.new_password.as_deref())
            .map_err(|e| e.replacen("password", "the new password", 1)),
    );
    problems.into_result()?;
    let (current, new_password) = (body.current_password.unwrap(), new_password.unwrap());

    let email = &me.user.email;
    let address = request_client(&state, connect, &headers);
    check_signin_limits(&state, email, address.as_deref()).await?;
    let verified = passwords::verify(current.clone(), me.user.password_hash.clone()).await?;
    if !verified {
        record_signin_failure(&state, email, address.as_deref()).await;
        return Err(ApiError::unprocessable(
            "wrong_password",
            "the current password is wrong; type the one you sign in with now (wrong tries count as failed sign-ins)",
        )
        .at_pointer("/current_password"));
    }
    state.limits.per_email.clear(email).await;
    if new_password == current {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "the new password is your current password; choose another",
        )
        .at_pointer("/new_password"));
    }
    let hash = passwords::hash(new_password).await?;
    let verified_hash = &me.user.password_hash;
    let Some(ended) = users::change_password(
        &state.store,
        &me.user.id,
        verified_hash,
        &hash,
        &me.session_id,
    )
    .await
    .map_err(db_error)?
    else {
        return Err(ApiError::unprocessable(
            "wrong_password",
            "the password was changed meanwhile, by another session of yours; sign in with the new one, then try again",
        )
        .at_pointer("/current_password"));
    };
    Ok(Json(changed(&me.user, ended)))
}

/// `DELETE /hub/v1/sessions` → 204: every session of the user ends, the
/// caller's too ("sign out everywhere").
#[utoipa::path(
    delete,
    path = "/hub/v1/sessions",
    tag = "hub",
    responses((status = 204, description = "Every session of the user ended; none of their tokens works any more"), Unauthorized, Forbidden),
    security(("user" = []))
)]
pub async fn end_all_sessions(
    State(state): State<AppState>,
    me: SignedIn,
) -> Result<StatusCode, ApiError> {
    users::end_all_sessions(&state.store, &me.user.id)
        .await
        .map_err(db_error)?;
    Ok(StatusCode::NO_CONTENT)
}
