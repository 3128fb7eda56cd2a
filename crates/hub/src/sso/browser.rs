//! The browser's side of sign-in: a cookie holding a Hub session token (the
//! same sessions as `POST /hub/v1/sessions`, so `sid` is the Hub session id),
//! and CSRF protection of the forms by a signed double submit: a random nonce
//! in a `SameSite=Strict` cookie, and in every form an HMAC of that nonce
//! under a key only the Hub holds ([`keys::form_keys`]). Someone able to set
//! the Hub's cookies (a sibling subdomain) can plant a nonce of their own,
//! but not make up the form token that goes with it. Under https the cookie
//! is named `__Host-…`, which browsers take only from the Hub's own host, so
//! a pair fetched from the Hub cannot be planted either.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::keys::{self, KeyError};
use crate::api::AppState;
use crate::secrets;
use crate::store::users::SessionUser;

/// The browser's Hub session, shared with the portal (same name, same
/// origin): signed in at either, a user is signed in at both.
pub const SESSION_COOKIE: &str = "mno_session";
/// The CSRF nonce's cookie over plain http; see [`csrf_cookie`].
pub const CSRF_COOKIE: &str = "mno_sso_csrf";
/// The same under https: the `__Host-` prefix makes browsers refuse it from
/// any other host (a sibling subdomain) and with any `Domain`.
pub const CSRF_COOKIE_HTTPS: &str = "__Host-mno_sso_csrf";

/// The name of the CSRF nonce's cookie under this issuer.
pub fn csrf_cookie(state: &AppState) -> &'static str {
    if state.config.sso.secure() {
        CSRF_COOKIE_HTTPS
    } else {
        CSRF_COOKIE
    }
}

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

/// The form token of a nonce under `key`: HMAC-SHA256, hex.
fn form_token(key: &[u8; 32], nonce: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(b"mno-hub-sso-csrf:");
    mac.update(nonce.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The browser's CSRF nonce, if it sent one that may be one of ours.
fn csrf_nonce(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, csrf_cookie(state)).filter(|n| n.len() >= 32)
}

/// The CSRF token for a form: of the browser's nonce, or of a new one with
/// the cookie to set.
pub async fn csrf_token(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(String, Option<HeaderValue>), KeyError> {
    let keys = keys::form_keys(&state.store.pool).await?;
    let key = keys
        .first()
        .expect("form_keys makes a key when there is none");
    Ok(match csrf_nonce(state, headers) {
        Some(nonce) => (form_token(key, &nonce), None),
        None => {
            let nonce = secrets::new_session_token();
            let set = set_cookie(state, csrf_cookie(state), &nonce, 3600, "Strict");
            (form_token(key, &nonce), Some(set))
        }
    })
}

/// Whether a submitted form carries the token of the browser's nonce, under
/// any published key (a form rendered before a key rotation still counts).
pub async fn csrf_ok(
    state: &AppState,
    headers: &HeaderMap,
    submitted: Option<&str>,
) -> Result<bool, KeyError> {
    let (Some(nonce), Some(field)) = (csrf_nonce(state, headers), submitted) else {
        return Ok(false);
    };
    let keys = keys::form_keys(&state.store.pool).await?;
    Ok(keys.iter().any(|key| {
        secrets::hashes_match(
            &secrets::sha256_hex(&form_token(key, &nonce)),
            &secrets::sha256_hex(field),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::form_token;

    /// A token is of one nonce under one key: a made-up pair (the nonce
    /// repeated, as the plain double submit took) is no token.
    #[test]
    fn a_form_token_is_the_nonces_under_the_key() {
        let (key, other) = ([7u8; 32], [8u8; 32]);
        let nonce = "mst_0123456789abcdef0123456789abcdef0123456";
        assert_eq!(form_token(&key, nonce), form_token(&key, nonce));
        assert_eq!(form_token(&key, nonce).len(), 64);
        assert_ne!(form_token(&key, nonce), nonce);
        assert_ne!(form_token(&key, nonce), form_token(&other, nonce));
        assert_ne!(form_token(&key, nonce), form_token(&key, "mst_another"));
    }
}
