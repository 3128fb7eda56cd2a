//! One module per page (and the form posts that belong to it).
//!
//! A form the API refused is shown again with its errors beside the fields,
//! as a page like any other (200): browsers log a 4xx page as a failed load.

pub mod auth;
pub mod dashboard;
pub mod home;
pub mod marketplace;
pub mod members;
pub mod orgs;
pub mod sync;
pub mod widgets;

use axum::response::{IntoResponse, Redirect, Response};

/// After a form post: back to a page (303, so a reload does not post again).
pub fn back_to(path: &str) -> Response {
    Redirect::to(path).into_response()
}
