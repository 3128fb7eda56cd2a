//! What a connector is: code that knows one outside API and speaks it in
//! Connec!'s terms. The runtime ([`crate::runtime`]) does everything else:
//! cursors, the id map, conflicts, retries, status.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// One record as the outside API has it, already in Connec!'s fields.
#[derive(Debug, Clone, PartialEq)]
pub struct OutsideRecord {
    /// The outside API's id: the connector app's local id in Connec!.
    pub id: String,
    /// A token that changes whenever the record does (an ETag, or a hash of
    /// the record when the API keeps none): equal tags mean "unchanged".
    pub tag: String,
    /// When the outside API says the record last changed, if it says.
    pub updated_at: Option<DateTime<Utc>>,
    /// The record in Connec!'s fields (no `id`).
    pub fields: Value,
}

/// Changes of one entity since a cursor.
#[derive(Debug, Clone, Default)]
pub struct Pulled {
    pub changed: Vec<OutsideRecord>,
    /// Outside ids that are gone (only those the connector can tell).
    pub deleted: Vec<String>,
    /// Where the next pull starts; `None` keeps the cursor as it was.
    pub cursor: Option<String>,
    /// `changed` lists every record that exists (an API without change
    /// times): a record synced before and missing now was deleted.
    pub complete: bool,
    /// Why some listed records could not be read (no usable id): such a
    /// listing is never `complete`, so nothing is inferred deleted from it.
    pub skipped: Vec<String>,
    /// Records listed that do not fit the mapping, with why: `(outside id,
    /// why)`. Reported as refused, never taken as deleted.
    pub refused: Vec<(String, String)>,
}

/// One attempt to create a record outside. The answer to a create may be
/// lost after the outside API made the record (a timeout, a connection
/// reset); the runtime then tries again with the same `key`, and `retry` set.
#[derive(Debug, Clone, Copy)]
pub struct CreateAttempt<'a> {
    /// The Connec! record's global id.
    pub global_id: &'a str,
    /// The same for every attempt to create this record (an idempotency key).
    pub key: &'a str,
    /// An attempt before this one got no answer: the record may exist already.
    pub retry: bool,
}

/// Why a call to the outside API failed. The runtime backs off on
/// [`OutsideError::Unavailable`] and [`OutsideError::RateLimited`], keeps its
/// cursor, and tries again; [`OutsideError::Rejected`] concerns one record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutsideError {
    #[error("the outside API is unavailable: {0}")]
    Unavailable(String),
    #[error("the outside API asked to slow down (429); retry after {0:?}")]
    RateLimited(Duration),
    #[error("the outside API answered something unreadable: {0}")]
    Garbage(String),
    #[error("the outside API refused the record ({status}): {body}")]
    Rejected { status: u16, body: String },
    /// The record does not fit the connector's mapping (a value it does not
    /// name): it concerns this record only.
    #[error("the record does not fit the mapping: {0}")]
    Unfit(String),
    /// The record changed outside since the tag the write was based on.
    #[error("the record changed in the outside API since it was last read")]
    Stale,
    #[error(
        "the outside API refused the credentials ({0}); configure the install with valid ones"
    )]
    Unauthorized(u16),
}

impl OutsideError {
    /// Whether the failure concerns the API as a whole (back off, keep the cursor).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            OutsideError::Unavailable(_)
                | OutsideError::RateLimited(_)
                | OutsideError::Garbage(_)
                | OutsideError::Unauthorized(_)
        )
    }
}

/// A connector: one outside API, the entities it syncs.
#[async_trait]
pub trait Outside: Send + Sync + 'static {
    /// The Connec! entities this connector can sync.
    fn entities(&self) -> Vec<String>;

    /// The Connec! fields this connector maps for `entity`: a mapped field the
    /// outside record no longer has is cleared in Connec! (`null`).
    fn mapped_fields(&self, entity: &str) -> Vec<String>;

    /// The Connec! reference fields among [`Outside::mapped_fields`]: the
    /// outside API holds its own id of the referenced record there.
    fn reference_fields(&self, _entity: &str) -> Vec<String> {
        Vec::new()
    }

    /// Changes of `entity` since `cursor` (`None`: everything, the first sync).
    async fn pull(&self, entity: &str, cursor: Option<&str>) -> Result<Pulled, OutsideError>;

    /// One record, or `None` when the outside API has no such record.
    async fn fetch(&self, entity: &str, id: &str) -> Result<Option<OutsideRecord>, OutsideError>;

    /// Create (`id` `None`) or replace a record; `if_tag` makes the write
    /// conditional (answer [`OutsideError::Stale`] when the record moved on).
    /// Answers the record's id and its new tag.
    async fn write(
        &self,
        entity: &str,
        id: Option<&str>,
        if_tag: Option<&str>,
        fields: &Value,
    ) -> Result<(String, String), OutsideError>;

    /// Create the record of the Connec! record `attempt.global_id`, which may
    /// be a retry of a create whose answer never came (see [`CreateAttempt`]).
    /// By default a plain [`Outside::write`] without an id: a retry may then
    /// make the record twice.
    async fn create(
        &self,
        entity: &str,
        fields: &Value,
        attempt: &CreateAttempt<'_>,
    ) -> Result<(String, String), OutsideError> {
        let _ = attempt;
        self.write(entity, None, None, fields).await
    }

    /// Whether a retried [`Outside::create`] of `entity` is recognised by the
    /// outside API (an idempotency key) or found before creating again (a marker).
    fn dedupes_creates(&self, _entity: &str) -> bool {
        false
    }

    /// Delete a record; one already gone is no error.
    async fn delete(
        &self,
        entity: &str,
        id: &str,
        if_tag: Option<&str>,
    ) -> Result<(), OutsideError>;
}

/// Classify an HTTP answer of an outside API that is not a success.
pub fn error_for_status(
    status: reqwest::StatusCode,
    retry_after: Option<&str>,
    body: String,
) -> OutsideError {
    match status.as_u16() {
        401 | 403 => OutsideError::Unauthorized(status.as_u16()),
        412 => OutsideError::Stale,
        429 => OutsideError::RateLimited(parse_retry_after(retry_after)),
        s if s >= 500 => OutsideError::Unavailable(format!("HTTP {s}: {}", clip(&body))),
        s => OutsideError::Rejected {
            status: s,
            body: clip(&body),
        },
    }
}

/// The error an outside API's unsuccessful answer stands for.
pub async fn failed(response: reqwest::Response) -> OutsideError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    error_for_status(status, retry_after.as_deref(), body)
}

/// `Retry-After` in seconds or as an HTTP date; 30 s when absent or unreadable.
pub fn parse_retry_after(value: Option<&str>) -> Duration {
    let Some(value) = value.map(str::trim) else {
        return Duration::from_secs(30);
    };
    if let Ok(secs) = value.parse::<u64>() {
        return Duration::from_secs(secs);
    }
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|at| {
            (at.with_timezone(&Utc) - Utc::now())
                .to_std()
                .unwrap_or_default()
        })
        .unwrap_or(Duration::from_secs(30))
}

/// An outside error body, short enough for a status line.
pub fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// A transport failure (refused, reset, timed out) as an outside error.
pub fn unreachable(e: reqwest::Error) -> OutsideError {
    OutsideError::Unavailable(format!("cannot reach it: {e}"))
}
