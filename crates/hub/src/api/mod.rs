//! HTTP routes under `/hub/v1` and `/idm/v1` (docs/api/hub.md).
//!
//! Users authenticate with `Authorization: Bearer <session token>`; apps with
//! HTTP Basic `key:secret` where a route says so. Who may call each handler is
//! in its signature ([`auth`]); [`routes`] maps the paths to the handlers;
//! [`openapi`] holds the schemas the handlers name and [`document`] the
//! OpenAPI document of the routes. This module holds what they all share.

pub mod account;
mod apps;
pub mod auth;
mod billing;
mod check;
mod customers;
pub mod document;
mod installs;
mod invitations;
mod members;
pub mod openapi;
mod orgs;
pub mod password_resets;
mod passwords;
pub mod routes;
pub mod users;

use std::sync::Arc;

use mno_events::ApiError;
use serde::{Deserialize, Deserializer};

use crate::idm::HubIdm;
use crate::rate_limit::FailureLimiter;
use crate::store::{apps as app_store, Store};
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
    /// Accounts made, per client address (each one counted, as a failure is elsewhere).
    pub accounts_per_address: FailureLimiter,
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
            accounts_per_address: limiter(config.signups_per_address, "accounts-address"),
        }
    }
}

/// A database failure: logged, answered 500 without details.
pub fn db_error(e: sqlx::Error) -> ApiError {
    ApiError::internal(e)
}

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
