//! Sign-up, sign-in (sessions) and sign-out.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use mno_events::api_error::ApiJson;
use mno_events::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::auth::SignedIn;
use super::passwords;
use super::{db_error, AppState};
use crate::secrets;
use crate::store::{now_ms, rfc3339, users};
use crate::validate::{self, Problems};
use mno_events::openapi::{Conflict, Forbidden, JsonBodyErrors, TooManyRequests, Unauthorized};

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    #[schema(min_length = 10, max_length = 1024)]
    password: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
}

/// `POST /hub/v1/users` → 201 the user. A sign-up refused because the email
/// is taken tells that the email has an account: such refusals are limited
/// per email and per client address as failed sign-ins are. The accounts
/// made from one client address are limited too (`signups_per_address`).
#[utoipa::path(
    post,
    path = "/hub/v1/users",
    tag = "hub",
    request_body = SignUp,
    responses((status = 201, description = "The new user", body = super::openapi::User), JsonBodyErrors, Conflict, TooManyRequests)
)]
pub async fn signup(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignUp>,
) -> Result<impl IntoResponse, ApiError> {
    let mut problems = Problems::default();
    let email = problems.check("/email", validate::email(body.email.as_deref()));
    let password = problems.check("/password", validate::password(body.password.as_deref()));
    let name = problems.check("/name", validate::name("name", body.name.as_deref()));
    problems.into_result()?;
    let (email, password, name) = (email.unwrap(), password.unwrap(), name.unwrap());
    let address = request_client(&state, connect, &headers);
    let limits = &state.limits;
    limits
        .signup_per_email
        .check(&email)
        .await
        .map_err(signups_limited)?;
    if let Some(address) = &address {
        limits
            .signup_per_address
            .check(address)
            .await
            .map_err(signups_limited)?;
        limits
            .accounts_per_address
            .check(address)
            .await
            .map_err(accounts_limited)?;
    }
    let hash = passwords::hash(password).await?;
    match users::create(&state.store, &email, &name, &hash).await {
        Ok(user) => {
            if let Some(address) = &address {
                limits.accounts_per_address.record_failure(address).await;
            }
            Ok((StatusCode::CREATED, Json(user.to_json())))
        }
        Err(users::CreateUserError::EmailTaken) => {
            limits.signup_per_email.record_failure(&email).await;
            if let Some(address) = &address {
                limits.signup_per_address.record_failure(address).await;
            }
            Err(ApiError::conflict(
                "email_taken",
                format!(
                    "a user with email {email} already exists; sign in with POST /hub/v1/sessions"
                ),
            )
            .at_pointer("/email"))
        }
        Err(users::CreateUserError::Db(e)) => Err(db_error(e)),
    }
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    password: Option<String>,
}

/// Sent by the platform's own web front on the calls it makes for a visitor:
/// the front's key, and the visitor's connection peer (the visitor's
/// `X-Forwarded-For` comes along unchanged, as a proxy would pass it).
pub const FRONTEND_KEY_HEADER: &str = "x-mno-frontend-key";
pub const VISITOR_PEER_HEADER: &str = "x-mno-visitor-peer";

/// The client a request speaks for, as sign-in limits count it: the
/// visitor when the platform's web front calls for one (its key matches),
/// else [`client_address`] of the connection.
pub fn request_client(
    state: &AppState,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> Option<String> {
    let trusted = &state.config.trusted_proxies;
    match frontend_visitor(state.config.frontend_key.as_deref(), headers) {
        Some(visitor) => client_address(
            Some(Extension(ConnectInfo(SocketAddr::new(visitor, 0)))),
            headers,
            trusted,
        ),
        None => client_address(connect, headers, trusted),
    }
}

/// The visitor's peer the web front names, if the front's key is right.
fn frontend_visitor(key: Option<&str>, headers: &HeaderMap) -> Option<IpAddr> {
    let key = key?;
    let sent = headers.get(FRONTEND_KEY_HEADER)?.to_str().ok()?;
    if !secrets::hashes_match(&secrets::sha256_hex(sent), &secrets::sha256_hex(key)) {
        return None;
    }
    headers
        .get(VISITOR_PEER_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The client's address: the connection's peer, unless the peer is a trusted
/// proxy: then the nearest `X-Forwarded-For` hop that is not one (a client can
/// prepend anything to that header, so only hops added by trusted proxies count).
pub fn client_address(
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Option<String> {
    let Extension(ConnectInfo(peer)) = connect?;
    let peer = peer.ip();
    if !trusted.contains(&peer) {
        return Some(peer.to_string());
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let client = forwarded
        .iter()
        .rev()
        .find(|hop| {
            hop.parse::<IpAddr>()
                .map_or(true, |ip| !trusted.contains(&ip))
        })
        .or(forwarded.first());
    Some(client.map_or_else(|| peer.to_string(), |hop| (*hop).to_owned()))
}

fn limited(seconds: u64) -> ApiError {
    ApiError::too_many_requests(
        format!("too many failed sign-ins; wait {seconds} s (Retry-After) before trying again"),
        seconds,
    )
}

fn signups_limited(seconds: u64) -> ApiError {
    ApiError::too_many_requests(
        format!("too many sign-ups for taken emails; wait {seconds} s (Retry-After) before trying again"),
        seconds,
    )
}

fn accounts_limited(seconds: u64) -> ApiError {
    ApiError::too_many_requests(
        format!("too many accounts made from this address; wait {seconds} s (Retry-After) before making another"),
        seconds,
    )
}

fn bad_credentials() -> ApiError {
    ApiError::unauthorized("the email or password is wrong; check both and try again")
}

/// `POST /hub/v1/sessions` → 201 {token, expires_at, user}. Wrong password and
/// unknown email answer alike, and both run argon2 once.
#[utoipa::path(
    post,
    path = "/hub/v1/sessions",
    tag = "hub",
    request_body = SignIn,
    responses((status = 201, description = "A new session", body = super::openapi::Session), JsonBodyErrors, Unauthorized, TooManyRequests)
)]
pub async fn login(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<impl IntoResponse, ApiError> {
    let mut problems = Problems::default();
    let email = problems.check("/email", validate::email(body.email.as_deref()));
    if body.password.is_none() {
        problems.add("/password", "password is required".into());
    }
    problems.into_result()?;
    let (email, password) = (email.unwrap(), body.password.unwrap());

    let address = request_client(&state, connect, &headers);
    let user = authenticate(&state, &email, password, address.as_deref()).await?;
    let (token, _session_id, expires_at) = start_session(&state, &user).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "expires_at": rfc3339(expires_at),
            "user": user.to_json(),
        })),
    ))
}

/// Check a password under the sign-in limits (per email and per client
/// address). Wrong password and unknown email answer alike, and both run argon2 once.
pub async fn authenticate(
    state: &AppState,
    email: &str,
    password: String,
    address: Option<&str>,
) -> Result<users::UserRow, ApiError> {
    check_signin_limits(state, email, address).await?;
    let user = users::by_email(&state.store.pool, email)
        .await
        .map_err(db_error)?;
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| secrets::dummy_password_hash().to_owned());
    let verified = passwords::verify(password, stored).await?;
    let Some(user) = user.filter(|_| verified) else {
        record_signin_failure(state, email, address).await;
        return Err(bad_credentials());
    };
    state.limits.per_email.clear(email).await;
    Ok(user)
}

/// 429 while the email or the client address is locked out of signing in
/// (and of anything else that checks a password: changing it).
pub async fn check_signin_limits(
    state: &AppState,
    email: &str,
    address: Option<&str>,
) -> Result<(), ApiError> {
    state.limits.per_email.check(email).await.map_err(limited)?;
    if let Some(address) = address {
        state
            .limits
            .per_address
            .check(address)
            .await
            .map_err(limited)?;
    }
    Ok(())
}

/// Count a wrong password against the email and the client address.
pub async fn record_signin_failure(state: &AppState, email: &str, address: Option<&str>) {
    state.limits.per_email.record_failure(email).await;
    if let Some(address) = address {
        state.limits.per_address.record_failure(address).await;
    }
}

/// A new Hub session for `user`: (token, session id, expires_at).
pub async fn start_session(
    state: &AppState,
    user: &users::UserRow,
) -> Result<(String, String, i64), ApiError> {
    let token = secrets::new_session_token();
    let expires_at = now_ms() + state.config.session_ttl.as_millis() as i64;
    let session_id = users::create_session(
        &state.store.pool,
        &user.id,
        &secrets::sha256_hex(&token),
        expires_at,
    )
    .await
    .map_err(db_error)?;
    Ok((token, session_id, expires_at))
}

/// `DELETE /hub/v1/sessions/current` → 204; the token stops working at once.
#[utoipa::path(
    delete,
    path = "/hub/v1/sessions/current",
    tag = "hub",
    responses((status = 204, description = "Signed out; the token no longer works"), Unauthorized, Forbidden),
    security(("user" = []))
)]
pub async fn logout(State(state): State<AppState>, me: SignedIn) -> Result<StatusCode, ApiError> {
    users::revoke_session(&state.store, &me.session_id, &me.user.id)
        .await
        .map_err(db_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /hub/v1/users/me` → the signed-in user.
#[utoipa::path(
    get,
    path = "/hub/v1/users/me",
    tag = "hub",
    responses((status = 200, description = "The signed-in user", body = super::openapi::User), Unauthorized, Forbidden),
    security(("user" = []))
)]
pub async fn me(me: SignedIn) -> Json<serde_json::Value> {
    Json(me.user.to_json())
}
