//! The browser's session: an HttpOnly, SameSite cookie holding the Hub session
//! token; CSRF tokens (an HMAC of that token under a key of this process)
//! checked on every form post; and the sign-in redirect that brings the user
//! back where they were.
//!
//! Before sign-in, a random `mno_anon` cookie stands in for the session, so
//! the sign-in and sign-up forms are protected the same way.

use std::collections::HashMap;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::api::VisitorOrigin;
use crate::error::PageError;
use crate::PortalState;

pub const SESSION_COOKIE: &str = "mno_session";
pub const ANON_COOKIE: &str = "mno_anon";
/// A short notice ("Ali was removed from Pâtisserie.") for the next page
/// shown, set by a form post's redirect and cleared once a page showed it.
/// Signed: see [`set_notice`].
pub const NOTICE_COOKIE: &str = "mno_notice";

/// The key that signs one session's notices: an HMAC of its token under the
/// portal's key, so a notice signed for one session means nothing in another
/// (someone shown their own notice cannot plant it in another's browser).
pub fn notice_key(state: &PortalState, session_token: &str) -> [u8; 32] {
    labelled_mac(
        state.csrf_key.as_slice(),
        "mno-portal-notice-key:",
        session_token,
    )
}

/// The key that signs notices for a browser with no session: the sign-in
/// page's, after signing out everywhere or a password reset. One key for every
/// such browser is enough because their words are always the portal's own,
/// never anyone's input: replayed elsewhere, they say nothing an attacker chose.
pub fn signed_out_notice_key(state: &PortalState) -> [u8; 32] {
    notice_key(state, "")
}

/// HMAC-SHA256 of a notice's text under its session's notice key, hex.
fn notice_mac(key: &[u8; 32], text: &str) -> String {
    hex(&labelled_mac(key, "mno-portal-notice:", text))
}

/// HMAC-SHA256 of `data` under `key`, `label` first: a MAC made for one use
/// (a CSRF token, a notice) is never valid for another.
fn labelled_mac(key: &[u8], label: &str, data: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(label.as_bytes());
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Set-Cookie` of a notice for the next page, a minute at most:
/// `<signature>.<percent-encoded text>`, the signature under `key`
/// ([`notice_key`]), since whoever can set this site's cookies (a sibling
/// subdomain) could otherwise make the portal show their words.
pub fn set_notice(key: &[u8; 32], text: &str) -> HeaderValue {
    let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    set_cookie(
        NOTICE_COOKIE,
        &format!("{}.{encoded}", notice_mac(key, text)),
        60,
    )
}

/// The notice the request carries, decoded; none when its signature is not
/// the one `key` makes (forged, or set for another session or before a restart).
pub fn notice(key: &[u8; 32], headers: &HeaderMap) -> Option<String> {
    let value = cookie(headers, NOTICE_COOKIE)?;
    let (signature, encoded) = value.split_once('.')?;
    let text = url::form_urlencoded::parse(encoded.as_bytes())
        .next()
        .map(|(text, _)| text.into_owned())
        .filter(|text| !text.is_empty())?;
    let expected = notice_mac(key, &text);
    let signed = signature.len() == expected.len()
        && bool::from(signature.as_bytes().ct_eq(expected.as_bytes()));
    signed.then_some(text)
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a cookie only this site's pages send back, never script.
/// Under an https public URL the portal's layer makes it `Secure`
/// ([`crate::page_headers::secure_cookies`]).
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}"
    ))
    .expect("cookie values are tokens of ASCII letters, digits and _")
}

/// The CSRF token of a session (or of an anonymous visitor's cookie).
pub fn csrf_token(state: &PortalState, secret: &str) -> String {
    hex(&labelled_mac(
        state.csrf_key.as_slice(),
        "mno-portal-csrf:",
        secret,
    ))
}

/// Refuse a form post whose `csrf` field is not the token of `secret`.
pub fn check_csrf(
    state: &PortalState,
    secret: &str,
    form: &HashMap<String, String>,
) -> Result<(), PageError> {
    let expected = csrf_token(state, secret);
    let given = form.get("csrf").map(String::as_str).unwrap_or_default();
    if given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(PageError::Forged)
    }
}

/// A signed-in user: their Hub session token and the form token that goes with it.
/// Extracting it from a request without a session sends the user to sign in.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub csrf: String,
    /// The page asked for, to come back to after signing in again.
    pub here: String,
    /// What the last form post did, to show on this page ([`NOTICE_COOKIE`]).
    pub notice: Option<String>,
    /// Signs this session's notices ([`notice_key`]).
    pub notice_key: [u8; 32],
}

impl Session {
    pub fn auth(&self) -> crate::api::Auth<'_> {
        crate::api::Auth::Session(&self.token)
    }

    /// Check a posted form's CSRF token against this session.
    pub fn check(
        &self,
        state: &PortalState,
        form: &HashMap<String, String>,
    ) -> Result<(), PageError> {
        check_csrf(state, &self.token, form)
    }

    /// The `Set-Cookie` of a notice for this session's next page.
    pub fn set_notice(&self, text: &str) -> HeaderValue {
        set_notice(&self.notice_key, text)
    }
}

/// The page a request is for; for a form post, the page the form was on
/// (its `Referer`, when it is this site's), so sign-in returns there.
fn page_of(parts: &Parts) -> String {
    if parts.method == axum::http::Method::GET {
        return parts
            .uri
            .path_and_query()
            .map_or("/".into(), |p| p.as_str().to_owned());
    }
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    parts
        .headers
        .get(axum::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| {
            u.host_str().map(|h| {
                format!(
                    "{h}{}",
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                )
            }) == Some(host.to_owned())
        })
        .map_or("/".into(), |u| {
            let mut path = u.path().to_owned();
            if let Some(q) = u.query() {
                path.push('?');
                path.push_str(q);
            }
            path
        })
}

impl<S> FromRequestParts<S> for Session
where
    PortalState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = PortalState::from_ref(state);
        let here = page_of(parts);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(PageError::SignInNeeded { next: here });
        };
        let notice_key = notice_key(&state, &token);
        Ok(Session {
            csrf: csrf_token(&state, &token),
            notice: notice(&notice_key, &parts.headers),
            notice_key,
            token,
            here,
        })
    }
}

/// A visitor who may not be signed in: the anonymous cookie (made when missing,
/// and set by the page through [`Visitor::set_cookie`]) keys their form tokens.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub anon: String,
    pub fresh: bool,
    pub csrf: String,
    pub signed_in: bool,
    /// Where the visitor connects from, passed on with sign-in and sign-up.
    pub origin: VisitorOrigin,
}

/// The visitor's origin, as the edge saw the request.
fn origin_of(parts: &Parts) -> VisitorOrigin {
    use axum::extract::ConnectInfo;
    let hops: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    VisitorOrigin {
        peer: parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip()),
        forwarded_for: (!hops.is_empty()).then(|| hops.join(", ")),
    }
}

impl Visitor {
    pub fn set_cookie(&self) -> Option<(axum::http::HeaderName, HeaderValue)> {
        self.fresh
            .then(|| (SET_COOKIE, set_cookie(ANON_COOKIE, &self.anon, 86_400)))
    }
}

impl<S> FromRequestParts<S> for Visitor
where
    PortalState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = PortalState::from_ref(state);
        let existing = cookie(&parts.headers, ANON_COOKIE)
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
        let fresh = existing.is_none();
        let anon = existing.unwrap_or_else(|| {
            rand::random::<[u8; 32]>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        });
        Ok(Visitor {
            origin: origin_of(parts),
            csrf: csrf_token(&state, &anon),
            signed_in: cookie(&parts.headers, SESSION_COOKIE).is_some(),
            anon,
            fresh,
        })
    }
}
