//! HTTP routes under `/hub/v1` and `/idm/v1` (docs/api/hub.md).
//!
//! Users authenticate with `Authorization: Bearer <session token>`; apps with
//! HTTP Basic `key:secret` where a route says so.

mod app_auth;
mod apps;
mod billing;
mod check;
mod customers;
mod installs;
mod invitations;
mod members;
pub mod openapi;
mod orgs;
pub mod users;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, patch, post};
use axum::Router;
use base64::Engine;
use mno_events::ApiError;
use serde::{Deserialize, Deserializer};

use crate::access::Role;
use crate::idm::HubIdm;
use crate::rate_limit::FailureLimiter;
use crate::store::{apps as app_store, orgs as org_store, users::UserRow, Store};
use crate::HubConfig;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub idm: HubIdm,
    pub config: HubConfig,
    pub limits: Arc<LoginLimits>,
}

pub struct LoginLimits {
    pub per_email: FailureLimiter,
    pub per_address: FailureLimiter,
    /// Sign-ups refused because the email is taken (which tells that it has an
    /// account), counted apart from sign-ins so probing cannot lock a user out.
    pub signup_per_email: FailureLimiter,
    pub signup_per_address: FailureLimiter,
}

impl LoginLimits {
    /// Sign-ins and sign-ups for taken emails counted apart, with the same
    /// limits; on the bus when `bucket` is given (every process shares them).
    pub fn new(config: &HubConfig, bucket: Option<async_nats::jetstream::kv::Store>) -> Self {
        let (emails, addresses) = (
            config.login_failures_per_email,
            config.login_failures_per_address,
        );
        let window = config.login_window;
        let limiter = |limit: usize, kind: &'static str| match &bucket {
            Some(bucket) => FailureLimiter::shared(limit, window, bucket.clone(), kind),
            None => FailureLimiter::new(limit, window),
        };
        Self {
            per_email: limiter(emails, "signin-email"),
            per_address: limiter(addresses, "signin-address"),
            signup_per_email: limiter(emails, "signup-email"),
            signup_per_address: limiter(addresses, "signup-address"),
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/hub/v1/users", post(users::signup))
        .route("/hub/v1/users/me", get(users::me))
        .route("/hub/v1/sessions", post(users::login))
        .route(
            "/hub/v1/sessions/current",
            axum::routing::delete(users::logout),
        )
        .route("/hub/v1/orgs", post(orgs::create).get(orgs::list))
        .route("/hub/v1/orgs/{org}", get(orgs::show).patch(orgs::update))
        // Adding a member by email invites them: the same as POST .../invitations.
        .route(
            "/hub/v1/orgs/{org}/members",
            post(invitations::add_member).get(members::list),
        )
        .route(
            "/hub/v1/orgs/{org}/invitations",
            post(invitations::create).get(invitations::of_org),
        )
        .route(
            "/hub/v1/orgs/{org}/invitations/{invitation}",
            axum::routing::delete(invitations::revoke),
        )
        .route("/hub/v1/invitations", get(invitations::mine))
        .route(
            "/hub/v1/invitations/{invitation}/accept",
            post(invitations::accept),
        )
        .route(
            "/hub/v1/invitations/{invitation}/decline",
            post(invitations::decline),
        )
        .route(
            "/hub/v1/orgs/{org}/members/{user}",
            patch(members::update).delete(members::remove),
        )
        .route(
            "/hub/v1/orgs/{org}/installs",
            post(installs::create).get(installs::list),
        )
        .route(
            "/hub/v1/orgs/{org}/installs/{app}",
            get(installs::show)
                .patch(installs::update)
                .delete(installs::remove),
        )
        .route("/hub/v1/apps", post(apps::create).get(apps::list))
        .route("/hub/v1/apps/{app}", get(apps::show).patch(apps::update))
        .route("/hub/v1/apps/{app}/credentials/rotate", post(apps::rotate))
        .route("/hub/v1/apps/{app}/installs", get(apps::installs))
        .route("/hub/v1/bills", post(billing::create).get(billing::list))
        .route(
            "/hub/v1/bills/{id}",
            get(billing::show).delete(billing::cancel),
        )
        .route(
            "/hub/v1/recurring_bills",
            post(billing::create_recurring).get(billing::list_recurring),
        )
        .route(
            "/hub/v1/recurring_bills/{id}",
            get(billing::show_recurring).delete(billing::cancel_recurring),
        )
        .route("/hub/v1/orgs/{org}/invoices", get(billing::invoices))
        .route(
            "/hub/v1/orgs/{org}/invoices/{invoice}",
            get(billing::invoice),
        )
        .route(
            "/hub/v1/orgs/{org}/invoices/{invoice}/html",
            get(billing::invoice_html),
        )
        .route("/hub/v1/app/orgs", get(customers::list))
        .route("/hub/v1/app/orgs/{org}", get(customers::show))
        .route("/hub/v1/app/orgs/{org}/members", get(customers::members))
        .route("/idm/v1/check", post(check::check))
        .with_state(state)
}

/// A database failure: logged, answered 500 without details.
pub fn db_error(e: sqlx::Error) -> ApiError {
    ApiError::internal(e)
}

/// The signed-in user (`Authorization: Bearer <token>`).
pub struct SignedIn {
    pub user: UserRow,
    pub session_id: String,
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `(key, secret)` from `Authorization: Basic ...`.
/// For PATCH bodies: `Some(None)` for an explicit `null`, `None` when the field is absent.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// For PATCH fields that cannot be cleared: `null` is refused (it would
/// otherwise read as "absent" and silently change nothing).
pub fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(d)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(
            "may not be null; leave the field out to keep its value",
        )),
    }
}

pub fn basic(parts: &Parts) -> Option<(String, String)> {
    basic_header(&parts.headers)
}

/// As [`basic`], from the headers.
pub fn basic_header(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (key, secret) = decoded.split_once(':')?;
    Some((key.to_owned(), secret.to_owned()))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer(parts) else {
            // Valid app credentials are not the problem: the route is a user's.
            if let Some((key, secret)) = basic(parts) {
                if state
                    .idm
                    .app_by_credentials(&key, &secret)
                    .await
                    .map_err(db_error)?
                    .is_some()
                {
                    return Err(ApiError::forbidden(
                        "this route is a user's: an app's credentials are valid here only on the routes hub.md marks for the app; sign in as a user (POST /hub/v1/sessions) and send Authorization: Bearer <token>",
                    ));
                }
            }
            return Err(ApiError::unauthorized(
                "sign in first: send Authorization: Bearer <token>, the token from POST /hub/v1/sessions",
            ));
        };
        match state.idm.session_user(token).await.map_err(db_error)? {
            Some(session) => Ok(SignedIn {
                user: session.user,
                session_id: session.session_id,
            }),
            None => Err(ApiError::unauthorized(
                "the session token is unknown, expired or revoked; sign in again (POST /hub/v1/sessions)",
            )),
        }
    }
}

/// The org and the caller's role in it: 404 if there is no such org, 403 if
/// the caller is not a member (org ids are random, so this reveals little).
pub async fn org_role(
    state: &AppState,
    org: &str,
    user: &str,
) -> Result<(org_store::OrgRow, Role), ApiError> {
    let Some(row) = org_store::get(&state.store.pool, org)
        .await
        .map_err(db_error)?
    else {
        return Err(ApiError::not_found(format!(
            "there is no organisation {org}; list yours with GET /hub/v1/orgs"
        ))
        .at_parameter("org"));
    };
    match org_store::role_of(&state.store.pool, org, user)
        .await
        .map_err(db_error)?
    {
        Some(role) => Ok((row, role)),
        None => Err(ApiError::forbidden(format!(
            "you are not a member of organisation {org}; ask one of its admins to add you"
        ))),
    }
}

/// 403 unless `allowed`, naming the role needed.
pub fn require(allowed: bool, role: Role, needed: &str) -> Result<(), ApiError> {
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "your role {role} may not do this; it needs {needed} (see the permission table in docs/api/hub.md)"
        )))
    }
}

/// The app, if the caller owns it: 404 if unknown, 403 if someone else's.
pub async fn owned_app(
    state: &AppState,
    app: &str,
    user: &str,
) -> Result<app_store::AppRow, ApiError> {
    let Some(row) = app_store::get(&state.store.pool, app)
        .await
        .map_err(db_error)?
    else {
        return Err(ApiError::not_found(format!(
            "there is no app {app}; list the catalogue with GET /hub/v1/apps"
        ))
        .at_parameter("app"));
    };
    if row.owner_id != user {
        return Err(ApiError::forbidden(format!(
            "app {app} belongs to another user; only its owner may see its settings or change it"
        )));
    }
    Ok(row)
}
