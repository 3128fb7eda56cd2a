//! The routes under `/hub/v1` and `/idm/v1`, each to the module of its concern.

use axum::routing::{get, patch, post};
use axum::Router;

use super::{
    account, apps, billing, check, customers, installs, invitations, members, orgs,
    password_resets, users, AppState,
};

/// Every route of the Hub's API (single sign-on has its own, in `sso`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/hub/v1/users", post(users::signup))
        .route("/hub/v1/users/me", get(users::me).patch(account::update_me))
        .route("/hub/v1/users/me/password", post(account::change_password))
        .route(
            "/hub/v1/sessions",
            post(users::login).delete(account::end_all_sessions),
        )
        .route(
            "/hub/v1/password_resets/lookup",
            post(password_resets::lookup),
        )
        .route(
            "/hub/v1/password_resets/redeem",
            post(password_resets::redeem),
        )
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
        .route("/hub/v1/orgs/{org}/bills", get(billing::org_bills))
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
