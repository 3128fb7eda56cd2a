//! The one reading of the `Authorization` header, for every part.
//!
//! Apps send HTTP Basic `key:secret`, users `Bearer <session token>`. The
//! scheme is case-insensitive (RFC 9110 §11.1); anything else is no credential.

use axum::http::{header, HeaderMap};
use base64::Engine;

use crate::idm::Credential;
use crate::ApiError;

/// Why a request carries no usable credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("send credentials: HTTP Basic with your app's API key and secret, or Authorization: Bearer <session token>")]
    Missing,
    #[error("the Basic credentials are not valid base64 of key:secret")]
    NotBase64,
    #[error("the Basic credentials are not UTF-8")]
    NotUtf8,
    #[error("the Basic credentials must be key:secret")]
    NoSeparator,
}

impl From<CredentialError> for ApiError {
    fn from(e: CredentialError) -> Self {
        ApiError::unauthorized(e.to_string())
    }
}

/// The credential an `Authorization` header value carries.
pub fn parse(value: &str) -> Result<Credential, CredentialError> {
    let (scheme, rest) = value.split_once(' ').ok_or(CredentialError::Missing)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(CredentialError::Missing);
        }
        return Ok(Credential::Session {
            token: rest.to_owned(),
        });
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(CredentialError::Missing);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .map_err(|_| CredentialError::NotBase64)?;
    let text = String::from_utf8(decoded).map_err(|_| CredentialError::NotUtf8)?;
    let (key, secret) = text.split_once(':').ok_or(CredentialError::NoSeparator)?;
    Ok(Credential::App {
        key: key.to_owned(),
        secret: secret.to_owned(),
    })
}

/// The credential of a request, from its `Authorization` header.
pub fn from_headers(headers: &HeaderMap) -> Result<Credential, CredentialError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(CredentialError::Missing)?;
    parse(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(plain: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(plain)
        )
    }

    fn app(key: &str, secret: &str) -> Credential {
        Credential::App {
            key: key.into(),
            secret: secret.into(),
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(
                parse(&format!("{scheme} tok-1")),
                Ok(Credential::Session {
                    token: "tok-1".into()
                }),
                "{scheme}"
            );
        }
        let encoded = basic("k:s");
        let lower = encoded.replacen("Basic", "basic", 1);
        assert_eq!(parse(&encoded), Ok(app("k", "s")));
        assert_eq!(parse(&lower), Ok(app("k", "s")));
    }

    #[test]
    fn the_token_and_the_encoded_pair_are_trimmed() {
        assert_eq!(
            parse("Bearer   tok-2  "),
            Ok(Credential::Session {
                token: "tok-2".into()
            })
        );
        assert_eq!(parse(&format!("{}  ", basic("k:s"))), Ok(app("k", "s")));
    }

    #[test]
    fn the_secret_may_hold_a_colon() {
        assert_eq!(parse(&basic("key:se:cret")), Ok(app("key", "se:cret")));
    }

    #[test]
    fn malformed_basic_is_named() {
        assert_eq!(parse("Basic !!!"), Err(CredentialError::NotBase64));
        assert_eq!(
            parse(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':'])
            )),
            Err(CredentialError::NotUtf8)
        );
        assert_eq!(parse(&basic("no-colon")), Err(CredentialError::NoSeparator));
    }

    #[test]
    fn anything_else_is_no_credential() {
        for value in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer    ",
            "Token abc",
            "Digest x=y",
            "tok",
        ] {
            assert_eq!(parse(value), Err(CredentialError::Missing), "{value:?}");
        }
        assert_eq!(
            from_headers(&HeaderMap::new()),
            Err(CredentialError::Missing)
        );
    }

    #[test]
    fn a_refusal_is_a_401_that_says_what_to_send() {
        let error = ApiError::from(CredentialError::Missing);
        assert_eq!(error.status, axum::http::StatusCode::UNAUTHORIZED);
        assert!(error.to_string().contains("Bearer"), "{error}");
    }
}
