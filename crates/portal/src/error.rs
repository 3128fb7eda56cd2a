//! What can go wrong serving a page, and how each is shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::api::ApiFailure;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session, or the Hub no longer accepts it: sign in, then come back to `next`.
    #[error("sign in to continue")]
    SignInNeeded { next: String },
    /// A form post without the session's CSRF token (or with another's).
    #[error(
        "this form is out of date or did not come from the portal; reload the page and try again"
    )]
    Forged,
    /// The platform answered with an error the page cannot show in place.
    #[error("{0}")]
    Api(ApiFailure),
}

impl PageError {
    /// An API failure, or the sign-in redirect when it was a 401.
    pub fn from_api(failure: ApiFailure, next: &str) -> PageError {
        if failure.status == StatusCode::UNAUTHORIZED {
            PageError::SignInNeeded {
                next: next.to_owned(),
            }
        } else {
            PageError::Api(failure)
        }
    }
}

/// Where sign-in sends the user afterwards: only a path of this site.
pub fn signin_url(next: &str) -> String {
    let next = safe_next(next);
    format!(
        "/signin?next={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    )
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignInNeeded { next } => Redirect::to(&signin_url(&next)).into_response(),
            PageError::Forged => (
                StatusCode::FORBIDDEN,
                crate::bare::bare("Form refused", &self.to_string()),
            )
                .into_response(),
            PageError::Api(failure) => (
                failure.status,
                crate::bare::bare("Something went wrong", &failure.summary()),
            )
                .into_response(),
        }
    }
}

/// `next` when it is a path of this site, else `/` (never a redirect elsewhere).
/// Browsers drop tabs and newlines from a URL and read `\` as `/`, so a path
/// with either (or any other control or space) could turn into `//elsewhere`.
pub fn safe_next(next: &str) -> &str {
    let plain = next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if plain && next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_only_ever_a_path_of_this_site() {
        assert_eq!(safe_next("/o/abc/members?x=1"), "/o/abc/members?x=1");
        for elsewhere in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil",
            "evil",
            "",
        ] {
            assert_eq!(safe_next(elsewhere), "/", "{elsewhere:?}");
        }
    }
}
