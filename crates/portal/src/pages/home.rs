//! `/`: the dashboard of the user's first organisation, the organisations page
//! when they have none yet, or sign-in.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::PageError;
use crate::session::{cookie, SESSION_COOKIE};
use crate::PortalState;

pub async fn home(
    State(state): State<PortalState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, PageError> {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return Ok(Redirect::to("/signin").into_response());
    };
    let orgs = state
        .api
        .get(crate::api::Auth::Session(&token), "/hub/v1/orgs")
        .await
        .map_err(|e| PageError::from_api(e, "/"))?;
    Ok(match orgs["orgs"].get(0).and_then(|o| o["id"].as_str()) {
        Some(org) => Redirect::to(&format!("/o/{org}/dashboard")).into_response(),
        None => Redirect::to("/orgs").into_response(),
    })
}
