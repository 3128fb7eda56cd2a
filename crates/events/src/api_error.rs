//! The one JSON error shape of every HTTP answer:
//! `{"errors":[{"status","code","title","detail","source":{"pointer"}}]}`.
//!
//! Each part maps its own error enum into [`ApiError`]; [`ApiJson`] is the
//! JSON body extractor whose rejections already speak this shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::unique_json::{UniqueNames, DUPLICATE_NAME};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorSource {
    /// JSON pointer (RFC 6901) to the offending field of the request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The query or path parameter at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorObject {
    pub status: String,
    /// A stable machine-readable code, e.g. `invalid_field`.
    pub code: String,
    pub title: String,
    /// What was wrong and what to do about it.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorObject>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    errors: &'a [ErrorObject],
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![ErrorObject {
                status: status.as_u16().to_string(),
                code: code.to_owned(),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                detail: detail.into(),
                source: None,
            }],
            retry_after: None,
        }
    }

    /// Point the last error at a body field (JSON pointer, e.g. `/invoices/lines/0/amount`).
    pub fn at_pointer(mut self, pointer: impl Into<String>) -> Self {
        if let Some(last) = self.errors.last_mut() {
            last.source = Some(ErrorSource {
                pointer: Some(pointer.into()),
                parameter: None,
            });
        }
        self
    }

    /// Point the last error at a query or path parameter.
    pub fn at_parameter(mut self, parameter: impl Into<String>) -> Self {
        if let Some(last) = self.errors.last_mut() {
            last.source = Some(ErrorSource {
                pointer: None,
                parameter: Some(parameter.into()),
            });
        }
        self
    }

    /// Add another error of the same status (e.g. every bad field at once).
    pub fn and(mut self, other: ApiError) -> Self {
        self.errors.extend(other.errors);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }
    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }
    pub fn too_many_requests(detail: impl Into<String>, retry_after: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
            .with_retry_after(retry_after)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail).with_retry_after(1)
    }
    /// A failure of ours; `detail` is logged, the client gets a generic text.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; it was logged, retry later",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let details: Vec<&str> = self.errors.iter().map(|e| e.detail.as_str()).collect();
        write!(f, "{}: {}", self.status, details.join("; "))
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(Body {
                errors: &self.errors,
            }),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110: a 401 names the schemes that would be accepted.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mno\", Bearer realm=\"mno\""),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON: send Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
                "malformed_json",
                format!(
                    "the body is not valid JSON: {}; fix it there and send it again",
                    innermost(&e)
                ),
            ),
            JsonRejection::JsonDataError(e) => ApiError::unprocessable(
                "invalid_body",
                format!("the body does not have the expected shape: {}", e.body_text()),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the body is larger than the 1 MiB limit; split it (e.g. into a batch of smaller writes)",
                )
            }
            other => ApiError::bad_request("unreadable_body", other.body_text()),
        }
    }
}

/// The parser's own words (line and column), without the framework's wrapping.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

/// `axum::Json`, with rejections in the platform's error shape. A body of the
/// wrong shape (a field of the wrong type, an unknown field where the type
/// denies them) answers 422 pointing at that field, in words.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Syntax, content type and size are axum's to judge; the shape is ours,
        // so that the error can name the field. An object naming a member
        // twice is refused (`unique_json`), as Connec!'s record bodies are.
        let axum::Json(UniqueNames(value)) = axum::Json::<UniqueNames>::from_request(req, state)
            .await
            .map_err(|rejection| match rejection {
                JsonRejection::JsonDataError(e) if e.body_text().contains(DUPLICATE_NAME) => {
                    let text = e.body_text();
                    let from = text.find(DUPLICATE_NAME).unwrap_or(0);
                    ApiError::bad_request("duplicate_name", &text[from..])
                }
                other => other.into(),
            })?;
        // Every body of the platform is an object; serde would take `[]` for a
        // struct whose fields are all optional, and change nothing with a 200.
        if !value.is_object() {
            let kind = match value {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Bool(_) => "a boolean",
                _ => "null",
            };
            return Err(ApiError::unprocessable(
                "invalid_body",
                format!("the body must be a JSON object ({{\"field\": value, ...}}), not {kind}"),
            )
            .at_pointer("/"));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| shape_error(&e))
    }
}

/// `password: invalid type: integer, expected a string` → 422 at `/password`.
fn shape_error(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let mut pointer = String::new();
    for segment in error.path().iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            serde_path_to_error::Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    let inner = error.inner().to_string();
    // serde names an unknown field in backticks (the path already ends at it).
    if let Some(field) = inner
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field)
    {
        let expected = inner
            .split_once(", expected ")
            .map_or(String::new(), |(_, e)| {
                format!("; the fields are {}", e.trim_start_matches("one of "))
            });
        return ApiError::unprocessable(
            "invalid_field",
            format!("{field:?} is not a field of this request{expected}"),
        )
        .at_pointer(pointer);
    }
    if pointer.is_empty() {
        return ApiError::unprocessable(
            "invalid_body",
            format!("the body does not have the expected shape: {inner}"),
        )
        .at_pointer("/");
    }
    ApiError::unprocessable("invalid_field", format!("{}: {inner}", &pointer[1..]))
        .at_pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Install {
        app_id: String,
        data_sharing: Option<bool>,
        tags: Option<Vec<Tag>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Tag {
        name: String,
    }

    async fn rejection(body: &str) -> ApiError {
        let request = Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        ApiJson::<Install>::from_request(request, &())
            .await
            .unwrap_err()
    }

    fn first(error: &ApiError) -> (&str, String) {
        let object = &error.errors[0];
        let pointer = object
            .source
            .as_ref()
            .and_then(|s| s.pointer.as_deref())
            .unwrap_or_default();
        (pointer, object.detail.clone())
    }

    #[tokio::test]
    async fn a_body_of_the_wrong_shape_is_pointed_at_the_field_at_fault() {
        let typo = rejection(r#"{"app_id": "a1", "datasharing": false}"#).await;
        assert_eq!(typo.status, StatusCode::UNPROCESSABLE_ENTITY);
        let (pointer, detail) = first(&typo);
        assert_eq!(pointer, "/datasharing");
        assert!(
            detail.contains("data_sharing"),
            "names the fields: {detail}"
        );

        let wrong_type = rejection(r#"{"app_id": 42}"#).await;
        let (pointer, detail) = first(&wrong_type);
        assert_eq!(pointer, "/app_id");
        assert!(detail.contains("expected a string"), "{detail}");

        let nested = rejection(r#"{"app_id": "a1", "tags": [{"name": "x"}, {"name": 7}]}"#).await;
        assert_eq!(first(&nested).0, "/tags/1/name");

        let missing = rejection(r#"{}"#).await;
        let (pointer, detail) = first(&missing);
        assert_eq!(pointer, "/");
        assert!(detail.contains("app_id"), "{detail}");

        let syntax = rejection(r#"{"app_id": "#).await;
        assert_eq!(syntax.errors[0].code, "malformed_json");

        for not_an_object in ["[]", "[{\"app_id\": \"a1\"}]", "\"a1\"", "7", "null"] {
            let error = rejection(not_an_object).await;
            assert_eq!(
                error.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{not_an_object}"
            );
            assert!(
                first(&error).1.contains("must be a JSON object"),
                "{not_an_object}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn renders_the_error_shape_with_pointer_and_retry_after() {
        let error = ApiError::unprocessable("invalid_field", "email is not an email address")
            .at_pointer("/email")
            .and(
                ApiError::unprocessable("invalid_field", "password is too short")
                    .at_pointer("/password"),
            )
            .with_retry_after(3);
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["errors"][0]["status"], "422");
        assert_eq!(json["errors"][0]["code"], "invalid_field");
        assert_eq!(json["errors"][0]["title"], "Unprocessable Entity");
        assert_eq!(json["errors"][0]["source"]["pointer"], "/email");
        assert_eq!(json["errors"][1]["source"]["pointer"], "/password");
    }
}
