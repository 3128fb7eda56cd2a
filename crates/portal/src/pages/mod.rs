//! One module per page (and the form posts that belong to it).
//!
//! A form the API refused is shown again with its errors beside the fields,
//! as a page like any other (200): browsers log a 4xx page as a failed load.

pub mod account;
pub mod auth;
pub mod confirm;
pub mod dashboard;
pub mod home;
pub mod invitations;
pub mod invoices;
pub mod marketplace;
pub mod members;
pub mod operator;
pub mod orgs;
pub mod password_reset;
pub mod sync;
pub mod widgets;

use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use crate::api::ApiFailure;
use crate::error::PageError;
use crate::session::Session;

/// After a form post: back to a page (303, so a reload does not post again).
pub fn back_to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// After a form post that did something: back to a page, which says what was done.
pub fn done(session: &Session, path: &str, notice: &str) -> Response {
    (
        [(SET_COOKIE, session.set_notice(notice))],
        Redirect::to(path),
    )
        .into_response()
}

/// What a form post's API call comes to: back to `page` when it succeeded,
/// saying what was done (`notice` of the API's answer), sign-in when the
/// session is gone (an `Err`), or the API's refusal for the page to show
/// again with the errors beside the fields.
pub fn settle(
    call: Result<Value, ApiFailure>,
    session: &Session,
    page: &str,
    notice: impl FnOnce(&Value) -> String,
) -> Result<Result<Response, ApiFailure>, PageError> {
    match call {
        Ok(answer) => Ok(Ok(done(session, page, &notice(&answer)))),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            Err(PageError::from_api(e, &session.here))
        }
        Err(failure) => Ok(Err(failure)),
    }
}
