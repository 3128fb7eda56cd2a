//! The axum extractor (feature `axum`): a handler taking a [`Webhook`] only
//! runs for a verified, first-seen message.

use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{IdMapAnswer, Receiver, Webhook, WebhookError};

/// Webhook bodies larger than this are refused (the platform batches at most 50 records).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Why the extractor refused a request, as the answer the platform gets.
#[derive(Debug)]
pub struct WebhookRejection(pub WebhookError);

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let (status, code) = match &self.0 {
            // Already taken: a success, so that the platform stops retrying.
            WebhookError::Replayed(_) => {
                return (StatusCode::OK, Json(json!({"replayed": true}))).into_response()
            }
            // Being handled now: ask for the retry later.
            WebhookError::InFlight(_) => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    error_body(503, "in_flight", &self.0),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert("retry-after", axum::http::HeaderValue::from_static("5"));
                return response;
            }
            WebhookError::BadSignature | WebhookError::OutsideTolerance { .. } => {
                (StatusCode::UNAUTHORIZED, "invalid_signature")
            }
            WebhookError::MissingHeader(_) => (StatusCode::BAD_REQUEST, "missing_header"),
            WebhookError::BadPayload(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            WebhookError::BadSecret(_) => (StatusCode::INTERNAL_SERVER_ERROR, "misconfigured"),
        };
        (status, error_body(status.as_u16(), code, &self.0)).into_response()
    }
}

fn error_body(status: u16, code: &str, error: &WebhookError) -> Json<serde_json::Value> {
    Json(
        json!({"errors": [{"status": status.to_string(), "code": code,
        "title": "Webhook refused", "detail": error.to_string()}]}),
    )
}

impl<S> FromRequest<S> for Webhook
where
    Receiver: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Webhook, Response> {
        let receiver = Receiver::from_ref(state);
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|e| (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response())?;
        receiver
            .receive(&parts.headers, &body)
            .await
            .map_err(|e| WebhookRejection(e).into_response())
    }
}

impl IntoResponse for IdMapAnswer {
    fn into_response(self) -> Response {
        (StatusCode::OK, Json(self)).into_response()
    }
}
