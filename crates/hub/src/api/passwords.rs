//! Password hashing for the handlers. argon2 is slow on purpose (tens of
//! milliseconds), so it runs on the blocking pool, off the thread that serves
//! other requests.

use super::ApiError;
use crate::secrets;

/// The stored form of a new password.
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// Whether `password` is the one `stored` was made from.
pub async fn verify(password: String, stored: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || secrets::verify_password(&password, &stored))
        .await
        .map_err(ApiError::internal)
}
