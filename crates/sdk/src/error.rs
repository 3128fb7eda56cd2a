//! The SDK's errors: what the platform refused (with its status, code, detail
//! and pointer), what could not be sent, and what failed verification.

use serde::Deserialize;

/// One entry of the platform's error answer
/// `{"errors": [{"status", "code", "title", "detail", "source": {"pointer" | "parameter"}}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiErrorEntry {
    /// The HTTP status as the platform wrote it (`"422"`).
    #[serde(default)]
    pub status: String,
    /// A stable machine code: `invalid_field`, `stale_version`, `not_found`, ...
    #[serde(default)]
    pub code: String,
    /// A short human title.
    #[serde(default)]
    pub title: String,
    /// What was wrong and what to do instead.
    #[serde(default)]
    pub detail: String,
    /// Where in the request the problem is.
    #[serde(default)]
    pub source: Option<ErrorSource>,
}

/// The part of a request an error points at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorSource {
    /// A JSON pointer into the body (`/invoices/lines/0/quantity`).
    #[serde(default)]
    pub pointer: Option<String>,
    /// A query parameter (`$filter`).
    #[serde(default)]
    pub parameter: Option<String>,
}

/// An error answer of the platform, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status of the answer.
    pub status: u16,
    /// Every entry the platform listed (at least one: an answer without the
    /// JSON shape becomes one entry with code `http_<status>` and the body as detail).
    pub errors: Vec<ApiErrorEntry>,
}

impl ApiError {
    /// The first entry's code (`stale_version`, `invalid_field`, ...).
    pub fn code(&self) -> &str {
        self.errors.first().map_or("", |e| e.code.as_str())
    }

    /// The first entry's detail.
    pub fn detail(&self) -> &str {
        self.errors.first().map_or("", |e| e.detail.as_str())
    }

    /// The first entry's JSON pointer, if it named one.
    pub fn pointer(&self) -> Option<&str> {
        self.errors
            .iter()
            .find_map(|e| e.source.as_ref()?.pointer.as_deref())
    }

    /// The first entry's query parameter, if it named one.
    pub fn parameter(&self) -> Option<&str> {
        self.errors
            .iter()
            .find_map(|e| e.source.as_ref()?.parameter.as_deref())
    }

    /// Reads an error answer's body; anything not in the platform's shape
    /// (a proxy's page, an OAuth error) is kept whole in `detail`.
    pub(crate) fn from_body(status: u16, body: &[u8]) -> ApiError {
        #[derive(Deserialize)]
        struct Shape {
            errors: Vec<ApiErrorEntry>,
        }
        #[derive(Deserialize)]
        struct OAuthShape {
            error: String,
            #[serde(default)]
            error_description: String,
        }
        if let Ok(shape) = serde_json::from_slice::<Shape>(body) {
            if !shape.errors.is_empty() {
                return ApiError {
                    status,
                    errors: shape.errors,
                };
            }
        }
        let (code, detail) = match serde_json::from_slice::<OAuthShape>(body) {
            Ok(oauth) => (oauth.error, oauth.error_description),
            Err(_) => (
                format!("http_{status}"),
                String::from_utf8_lossy(body).into_owned(),
            ),
        };
        ApiError {
            status,
            errors: vec![ApiErrorEntry {
                status: status.to_string(),
                code,
                title: String::new(),
                detail,
                source: None,
            }],
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code(), self.detail())?;
        if let Some(pointer) = self.pointer() {
            write!(f, " (at {pointer})")?;
        }
        Ok(())
    }
}

/// Everything a call of the SDK can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The platform answered with an error (other than a stale version).
    #[error("the platform refused the request: {0}")]
    Api(ApiError),
    /// `If-Match` named a version that is no longer the record's: re-read it,
    /// apply the change again and write with the new version.
    #[error("stale version: the record is at version {current:?} now ({detail})")]
    StaleVersion {
        /// The record's current version, when the platform named it.
        current: Option<u64>,
        /// The platform's detail.
        detail: String,
        /// The whole error answer.
        api: ApiError,
    },
    /// The request could not be sent or its answer not read (after the retries).
    #[error("HTTP transport failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// An answer that is not what the API documents.
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// A setting is missing or malformed.
    #[error("configuration: {0}")]
    Config(String),
    /// Single sign-on failed (bad state, ID token refused, ...).
    #[error("single sign-on: {0}")]
    Sso(String),
}

impl Error {
    /// The platform's error answer, if this error is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) | Error::StaleVersion { api, .. } => Some(api),
            _ => None,
        }
    }

    /// Types an error answer: a 409 `stale_version` becomes [`Error::StaleVersion`].
    pub(crate) fn from_api(api: ApiError) -> Error {
        if api.status == 409 && api.code() == "stale_version" {
            let detail = api.detail().to_owned();
            return Error::StaleVersion {
                current: current_version(&detail),
                detail,
                api,
            };
        }
        Error::Api(api)
    }
}

/// The platform names the current version in its detail
/// ("... the record is at version 3 ..."): take the number after "version".
fn current_version(detail: &str) -> Option<u64> {
    let mut words = detail.split(|c: char| !c.is_ascii_alphanumeric());
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("version") {
            if let Some(Ok(n)) = words.clone().find(|w| !w.is_empty()).map(str::parse) {
                return Some(n);
            }
        }
    }
    None
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_shape_is_read_with_its_pointer() {
        let body = br#"{"errors":[{"status":"422","code":"invalid_field","title":"Invalid field","detail":"send a number","source":{"pointer":"/people/age"}}]}"#;
        let e = ApiError::from_body(422, body);
        assert_eq!(e.code(), "invalid_field");
        assert_eq!(e.pointer(), Some("/people/age"));
        assert_eq!(e.detail(), "send a number");
    }

    #[test]
    fn other_bodies_are_kept_in_the_detail() {
        let e = ApiError::from_body(502, b"<html>bad gateway</html>");
        assert_eq!(e.code(), "http_502");
        assert_eq!(e.detail(), "<html>bad gateway</html>");
        let e = ApiError::from_body(
            400,
            br#"{"error":"invalid_grant","error_description":"used"}"#,
        );
        assert_eq!((e.code(), e.detail()), ("invalid_grant", "used"));
    }
}
