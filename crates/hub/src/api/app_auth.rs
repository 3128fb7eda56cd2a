//! The app as the caller: HTTP Basic `key:secret` on the routes an app uses
//! for itself (billing, its customers).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use mno_events::ApiError;

use super::{basic, db_error, AppState};
use crate::store::apps::AppRow;

/// The app whose live API credentials came with the request.
pub struct CallingApp(pub AppRow);

impl FromRequestParts<AppState> for CallingApp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some((key, secret)) = basic(parts) else {
            return Err(ApiError::unauthorized(
                "this route is an app's: send its API credentials as HTTP Basic key:secret (Authorization: Basic base64(key:secret))",
            ));
        };
        match state
            .idm
            .app_by_credentials(&key, &secret)
            .await
            .map_err(db_error)?
        {
            Some(app) => Ok(CallingApp(app)),
            None => Err(ApiError::unauthorized(
                "the API key and secret are not valid (unknown, wrong or expired after rotation)",
            )),
        }
    }
}
