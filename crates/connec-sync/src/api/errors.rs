//! Write-path errors as JSON error answers.

use axum::http::StatusCode;
use mno_events::ApiError;

use crate::idmap::IdMapError;
use crate::write::WriteError;

/// Map a write error; `root` is the body's wrapper (`/invoices`), so that
/// pointers name the field where the client sent it.
pub fn write_error(error: WriteError, root: &str) -> ApiError {
    match error {
        WriteError::NotFound { .. } => ApiError::not_found(error.to_string()),
        WriteError::Stale { .. } => ApiError::conflict("stale_version", error.to_string()),
        WriteError::AlreadyExists { .. } => ApiError::conflict(
            "already_exists",
            format!("{error}; update it with PUT, or send another id"),
        ),
        WriteError::Invalid(violations) => {
            let mut all: Option<ApiError> = None;
            for violation in violations {
                let one = ApiError::unprocessable("invalid_field", violation.message)
                    .at_pointer(format!("{root}{}", violation.pointer));
                all = Some(match all {
                    Some(all) => all.and(one),
                    None => one,
                });
            }
            all.unwrap_or_else(|| {
                ApiError::unprocessable("invalid_field", "the record is not valid")
            })
        }
        WriteError::IdMap(e @ IdMapError::Taken { .. }) => {
            ApiError::conflict("id_taken", e.to_string())
        }
        WriteError::IdMap(e @ IdMapError::Bus(_)) => ApiError::unavailable(e.to_string()),
        WriteError::IdMap(e @ (IdMapError::BadLocalId { .. } | IdMapError::BadToken(_))) => {
            ApiError::bad_request("invalid_id", e.to_string()).at_parameter("id")
        }
        WriteError::NotDeletable { .. } => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not_deletable",
            error.to_string(),
        ),
        WriteError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "record_too_large",
            error.to_string(),
        )
        .at_pointer(root),
        WriteError::Unavailable(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            error.to_string(),
        )
        .with_retry_after(1),
    }
}
