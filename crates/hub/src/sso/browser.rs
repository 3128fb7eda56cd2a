//! The browser's side of sign-in: a cookie holding a Hub session token (the
//! same sessions as `POST /hub/v1/sessions`, so `sid` is the Hub session id),
//! and CSRF protection of the forms by the double-submit pattern: a random
//! token in a `SameSite=Strict` cookie that every form repeats in a hidden field.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

use crate::api::AppState;
use crate::secrets;
use crate::store::users::SessionUser;

/// The browser's Hub session, shared with the portal (same name, same
/// origin): signed in at either, a user is signed in at both.
pub const SESSION_COOKIE: &str = "mno_session";
pub const CSRF_COOKIE: &str = "mno_sso_csrf";

/// The value of cookie `name`, if the browser sent it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
}

/// A `Set-Cookie` value: HttpOnly, path /, `Secure` when the issuer is https.
/// `max_age` 0 deletes the cookie.
pub fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age_secs: i64,
    same_site: &str,
) -> HeaderValue {
    let secure = if state.config.sso.secure() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_secs}{secure}"
    ))
    .expect("cookie values are tokens")
}

/// `response` with the cookie set, if there is one to set.
pub fn with_cookie(mut response: Response, set: Option<HeaderValue>) -> Response {
    if let Some(set) = set {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    response
}

/// The live Hub session of the browser's cookie.
pub async fn session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SessionUser>, sqlx::Error> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    state.idm.session_user(&token).await
}

/// The CSRF token for a form: the browser's, or a new one with the cookie to set.
pub fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, CSRF_COOKIE).filter(|t| t.len() >= 32) {
        Some(token) => (token, None),
        None => {
            let token = secrets::new_session_token();
            let set = set_cookie(state, CSRF_COOKIE, &token, 3600, "Strict");
            (token, Some(set))
        }
    }
}

/// Whether a submitted form carries the browser's CSRF token.
pub fn csrf_ok(headers: &HeaderMap, submitted: Option<&str>) -> bool {
    match (cookie(headers, CSRF_COOKIE), submitted) {
        (Some(cookie), Some(field)) if cookie.len() >= 32 => {
            secrets::hashes_match(&secrets::sha256_hex(&cookie), &secrets::sha256_hex(field))
        }
        _ => false,
    }
}
