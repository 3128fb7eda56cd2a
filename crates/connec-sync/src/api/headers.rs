//! What a record request says in its headers besides who it is.

use axum::http::HeaderMap;
use mno_events::ApiError;

/// The record's version the caller saw (`If-Match`), if it sent one.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("if-match") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.trim_start_matches("W/").trim_matches('"');
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(
            "invalid_if_match",
            format!("If-Match must be the record's version, a whole number (got {text:?})"),
        )
    })
}

/// The caller's `X-Correlation-Id`, or a new one.
pub fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}
