//! `POST /sso/v1/token`: an authorization code for an ID token and an access
//! token (RFC 6749 §4.1.3, OIDC Core §3.1.3). The client authenticates with
//! the app's API key and secret, by HTTP Basic or in the form, not both.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::claims::{self, IdClaims, UserClaims};
use super::oauth_error::OAuthError;
use super::store::{self as sso_store, CodeRefused};
use crate::api::AppState;
use crate::secrets;
use crate::store::{apps, now_ms, users};

/// The form's fields; a field given twice is refused (RFC 6749 §3.2).
fn form_fields(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(OAuthError::invalid_request(
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    for (i, (name, _)) in fields.iter().enumerate() {
        if fields[..i].iter().any(|(n, _)| n == name) {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is given more than once"
            )));
        }
    }
    Ok(fields)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `client_secret_basic`: both parts are form-encoded before base64 (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), OAuthError>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let malformed = || {
        OAuthError::invalid_client(
            "the Basic credentials are not base64 of client_id:client_secret",
            true,
        )
    };
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok());
    let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Some(Err(malformed()));
    };
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some(Ok((unescape(id), unescape(secret))))
}

/// The authenticated app, and the client_id it used.
async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    fields: &[(String, String)],
) -> Result<(apps::AppRow, String), OAuthError> {
    let in_form = field(fields, "client_secret").is_some();
    let (id, secret, basic) = match basic_credentials(headers) {
        Some(_) if in_form => {
            return Err(OAuthError::invalid_request(
                "authenticate once: HTTP Basic or client_secret in the form, not both",
            ))
        }
        Some(credentials) => {
            let (id, secret) = credentials?;
            if field(fields, "client_id").is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the form differs from the one in the Authorization header",
                ));
            }
            (id, secret, true)
        }
        None => match (field(fields, "client_id"), field(fields, "client_secret")) {
            (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned(), false),
            _ => {
                return Err(OAuthError::invalid_client(
                    "authenticate with the app's API key and secret (client_secret_basic or client_secret_post)",
                    false,
                ))
            }
        },
    };
    match state.idm.app_by_credentials(&id, &secret).await {
        Ok(Some(app)) => Ok((app, id)),
        Ok(None) => Err(OAuthError::invalid_client(
            "the client_id and client_secret are not a valid API key and secret of an app",
            basic,
        )),
        Err(e) => Err(OAuthError::server(e)),
    }
}

/// A code_verifier is 43 to 128 unreserved characters (RFC 7636 §4.1).
fn verifier_ok(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Client authentication: HTTP Basic (`client_secret_basic`) or
/// `client_id` and `client_secret` in the form (`client_secret_post`).
#[utoipa::path(
    post,
    path = "/sso/v1/token",
    tag = "sso",
    request_body(content = super::openapi::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "An ID token and an access token (never cached)", body = super::openapi::TokenAnswer), super::openapi::OAuthBadRequest, super::openapi::OAuthUnauthorized),
    security(("app" = []), ())
)]
pub async fn exchange(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match tokens(&state, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn tokens(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let fields = form_fields(headers, body)?;
    let (app, client_id) = authenticate_client(state, headers, &fields).await?;
    match field(&fields, "grant_type") {
        Some("authorization_code") => {}
        None => {
            return Err(OAuthError::invalid_request(
                "grant_type is required; use authorization_code",
            ))
        }
        Some(other) => {
            return Err(OAuthError::unsupported_grant_type(format!(
                "grant_type {other} is not supported; use authorization_code"
            )))
        }
    }
    let code =
        field(&fields, "code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = field(&fields, "redirect_uri").ok_or_else(|| {
        OAuthError::invalid_request(
            "redirect_uri is required (the one of the authorization request)",
        )
    })?;
    let verifier = field(&fields, "code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    if !verifier_ok(verifier) {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ));
    }
    let pool = &state.store.pool;
    // With when the code was issued: a membership or install newer than the
    // code (left and joined again since) does not honour it.
    let (grant, code_issued_at) = match sso_store::redeem_code(pool, code, &app.id)
        .await
        .map_err(OAuthError::server)?
    {
        Ok(redeemed) => redeemed,
        Err(CodeRefused::Unknown) => return Err(OAuthError::invalid_grant("the code is unknown")),
        Err(CodeRefused::Expired) => {
            return Err(OAuthError::invalid_grant(
                "the code has expired; start the sign-in again",
            ))
        }
        Err(CodeRefused::OtherClient) => {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ))
        }
        Err(CodeRefused::Replayed { revoked: true }) => {
            return Err(OAuthError::invalid_grant(
                "the code was already used; the tokens issued with it are revoked",
            ))
        }
        Err(CodeRefused::Replayed { revoked: false }) => {
            return Err(OAuthError::invalid_grant(
                "the code was already presented (a refused exchange uses it up too); start the sign-in again",
            ))
        }
    };
    if grant.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the one of the authorization request",
        ));
    }
    if !secrets::hashes_match(&s256(verifier), &grant.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "the code_verifier does not match the code_challenge (PKCE)",
        ));
    }
    let user = users::by_id(pool, &grant.user_id)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let org = claims::org_claim(pool, &user.id, &app.id, &grant.org_id, Some(code_issued_at))
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(|| {
            OAuthError::invalid_grant(
                "the user has left the organisation, or it uninstalled the app, since signing in",
            )
        })?;
    let live = sso_store::session_owner(pool, &grant.session_id)
        .await
        .map_err(OAuthError::server)?
        .is_some_and(|(_, live)| live);
    if !live {
        return Err(OAuthError::invalid_grant("the user has signed out since"));
    }

    let sso = &state.config.sso;
    let now = now_ms() / 1000;
    let id_claims = IdClaims {
        iss: sso.issuer.clone(),
        aud: client_id.clone(),
        exp: now + sso.id_token_ttl.as_secs() as i64,
        iat: now,
        auth_time: grant.auth_time,
        nonce: grant.nonce.clone(),
        sid: grant.session_id.clone(),
        user: UserClaims::new(&user, org),
    };
    let id_token = claims::sign(pool, &id_claims, "JWT")
        .await
        .map_err(OAuthError::server)?;
    let access_token = secrets::new_opaque_token("mat_");
    let expires_in = sso.access_token_ttl.as_secs() as i64;
    sso_store::insert_access_token(
        pool,
        &access_token,
        code,
        &grant,
        now_ms() + expires_in * 1000,
    )
    .await
    .map_err(OAuthError::server)?;
    sso_store::record_login(pool, &grant)
        .await
        .map_err(OAuthError::server)?;
    let mut response = Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "id_token": id_token,
        "scope": grant.scope,
    }))
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    #[test]
    fn s256_matches_the_rfc_example() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_checked_for_length_and_characters() {
        assert!(verifier_ok(&"a".repeat(43)));
        assert!(!verifier_ok(&"a".repeat(42)));
        assert!(!verifier_ok(&"a".repeat(129)));
        assert!(!verifier_ok(&format!("{}+", "a".repeat(43))));
    }
}
