//! HTTP routes under `/hub/v1` and `/idm/v1` (docs/api/hub.md).
//!
//! Users authenticate with `Authorization: Bearer <session token>`; apps with
//! HTTP Basic `key:secret` where a route says so.

mod apps;
pub mod auth;
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

use axum::routing::{get, patch, post};
use axum::Router;
use mno_events::ApiError;
use serde::{Deserialize, Deserializer};

pub use auth::{CallingApp, OrgRole, SignedIn};

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
}

impl LoginLimits {
    /// Sign-ins and sign-ups for taken emails counted apart, with the same limits.
    pub fn new(config: &HubConfig) -> Self {
        let per_email =
            || FailureLimiter::new(config.login_failures_per_email, config.login_window);
        let per_address =
            || FailureLimiter::new(config.login_failures_per_address, config.login_window);
        Self {
            per_email: per_email(),
            per_address: per_address(),
            signup_per_email: per_email(),
            signup_per_address: per_address(),
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
