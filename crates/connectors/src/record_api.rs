//! Connec! as the runtime reaches it: the public record API and its change
//! stream, over HTTP, with the connector app's own API key. Every write goes
//! through the same validation, IDM check and id map as any app's, and the
//! envelope names the connector app as its source (so delivery never sends
//! it back its own changes).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

/// The connector app's API key (the user part of HTTP Basic) and secret.
#[derive(Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppCredentials {
    pub key: String,
    pub secret: String,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AppCredentials {{ key: {:?}, secret: <redacted> }}",
            self.key
        )
    }
}

/// A record as Connec! holds it now.
#[derive(Debug, Clone)]
pub struct ConnecRecord {
    pub global_id: String,
    pub version: i64,
    pub updated_at: Option<DateTime<Utc>>,
    /// The record's fields as the API answers them.
    pub fields: Value,
}

/// Why a call to the record API failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiFailure {
    /// The record was refused (4xx): it concerns this record only.
    #[error("Connec! refused the record ({status}): {detail}")]
    Refused {
        status: u16,
        detail: String,
        /// Every error is a reference naming no record (yet): the
        /// referenced record may arrive later in the same sync.
        missing_reference: bool,
    },
    /// The platform could not serve the call: try the whole sync again later.
    #[error("Connec! is unavailable: {0}")]
    Unavailable(String),
    /// The app's key and secret were not accepted (401): a rotation made
    /// them expire, or they were never the app's.
    #[error("Connec! did not accept the connector app's API key and secret (401): {0}")]
    Unauthorized(String),
}

#[derive(Clone)]
pub struct RecordApi {
    http: reqwest::Client,
    base: String,
    org: String,
    credentials: AppCredentials,
}

/// One change from the stream: its RECORDS sequence, entity and record in the app's view.
#[derive(Debug, Clone)]
pub struct StreamedChange {
    pub seq: u64,
    pub entity: String,
    pub record: Value,
}

impl RecordApi {
    pub fn new(http: reqwest::Client, base: &str, org: &str, credentials: AppCredentials) -> Self {
        RecordApi {
            http,
            base: base.trim_end_matches('/').to_owned(),
            org: org.to_owned(),
            credentials,
        }
    }

    fn url(&self, parts: &[&str]) -> String {
        let mut url = url::Url::parse(&format!("{}/connec/api/v2/", self.base))
            .expect("the API base is a URL");
        url.path_segments_mut()
            .expect("an http URL has segments")
            .pop_if_empty()
            .push(&self.org)
            .extend(parts);
        url.into()
    }

    fn request(&self, method: Method, url: String) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .basic_auth(&self.credentials.key, Some(&self.credentials.secret))
    }

    /// The record the connector app knows as `id` (its own id, or the
    /// global one), `None` when there is none (or it was deleted). Its `id`
    /// and references are external-ids arrays, as in the change stream, so a
    /// reference tells whether the connector app has an id for it.
    pub async fn get(&self, entity: &str, id: &str) -> Result<Option<ConnecRecord>, ApiFailure> {
        let response = send(
            self.request(Method::GET, self.url(&[entity, id]))
                .header("CONNEC-EXTERNAL-IDS", "true"),
        )
        .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        record_answer(response, entity).await.map(Some)
    }

    /// Create a record under the connector app's local id.
    pub async fn create(
        &self,
        entity: &str,
        local_id: &str,
        fields: &Value,
    ) -> Result<ConnecRecord, ApiFailure> {
        let mut body = fields.clone();
        body["id"] = json!(local_id);
        let response = send(
            self.request(Method::POST, self.url(&[entity]))
                .json(&json!({ entity: body })),
        )
        .await?;
        record_answer(response, entity).await
    }

    /// Update the record known as `local_id`, only if it is still at `version`.
    pub async fn update(
        &self,
        entity: &str,
        local_id: &str,
        version: i64,
        fields: &Value,
    ) -> Result<ConnecRecord, ApiFailure> {
        let response = send(
            self.request(Method::PUT, self.url(&[entity, local_id]))
                .header("If-Match", version.to_string())
                .json(&json!({ entity: fields })),
        )
        .await?;
        record_answer(response, entity).await
    }

    /// Delete the record known as `local_id`; one already gone is no error.
    pub async fn delete(&self, entity: &str, local_id: &str) -> Result<(), ApiFailure> {
        let response = send(self.request(Method::DELETE, self.url(&[entity, local_id]))).await?;
        if response.status() == StatusCode::NOT_FOUND || response.status().is_success() {
            return Ok(());
        }
        Err(failure(response).await)
    }

    /// Tell Connec! the connector app's id of a record it did not create.
    pub async fn map_id(
        &self,
        entity: &str,
        global_id: &str,
        local_id: &str,
    ) -> Result<(), ApiFailure> {
        let response = send(
            self.request(Method::PUT, self.url(&[entity, global_id, "id_map"]))
                .json(&json!({"local_id": local_id})),
        )
        .await?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(failure(response).await)
    }

    /// The change feed's end: where pushing starts for a new install (changes
    /// made before it are the first sync's business, not the push's).
    pub async fn head(&self) -> Result<u64, ApiFailure> {
        let mut since = 0u64;
        loop {
            let response = send(
                self.request(Method::GET, self.url(&["changes"]))
                    .query(&[("since", since.to_string()), ("limit", "1000".to_owned())]),
            )
            .await?;
            if !response.status().is_success() {
                return Err(failure(response).await);
            }
            let page: Value = response
                .json()
                .await
                .map_err(|e| ApiFailure::Unavailable(format!("the change feed answered: {e}")))?;
            let next: u64 = page["next"]
                .as_str()
                .and_then(|n| n.parse().ok())
                .unwrap_or(since);
            let empty = page["changes"].as_array().is_none_or(|c| c.is_empty());
            if empty || next == since {
                return Ok(next);
            }
            since = next;
        }
    }

    /// Follow the org's changes of `entities` after `after` (a RECORDS
    /// sequence), in the connector app's view, as server-sent events, into
    /// `changes`. Its own changes are never in it. Ends when the connection
    /// does or when `changes` is closed.
    pub async fn follow(
        &self,
        entities: &[String],
        after: u64,
        changes: tokio::sync::mpsc::Sender<StreamedChange>,
    ) -> Result<(), ApiFailure> {
        let response = send(
            self.request(Method::GET, self.url(&["stream"]))
                .query(&[("entities", entities.join(","))])
                .header("Last-Event-ID", after.to_string())
                .timeout(Duration::from_secs(24 * 3600)),
        )
        .await?;
        if !response.status().is_success() {
            return Err(failure(response).await);
        }
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| ApiFailure::Unavailable(format!("the change stream broke: {e}")))?;
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                for change in parse_event(&event) {
                    if changes.send(change).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}

/// The changes of one server-sent event (`id`, `event`, `data` lines).
fn parse_event(text: &str) -> Vec<StreamedChange> {
    let mut seq = None;
    let mut data = String::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            seq = v.trim().parse::<u64>().ok();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    let (Some(seq), Ok(Value::Object(body))) = (seq, serde_json::from_str::<Value>(&data)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (entity, records) in body {
        for record in records.as_array().cloned().unwrap_or_default() {
            out.push(StreamedChange {
                seq,
                entity: entity.clone(),
                record,
            });
        }
    }
    out
}

async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiFailure> {
    let response = request
        .send()
        .await
        .map_err(|e| ApiFailure::Unavailable(format!("cannot reach the record API: {e}")))?;
    Ok(response)
}

async fn failure(response: reqwest::Response) -> ApiFailure {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    // The record API's words for a reference to no record of the org.
    let missing_reference = body["errors"].as_array().is_some_and(|errors| {
        !errors.is_empty()
            && errors.iter().all(|e| {
                e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(" does not name a "))
            })
    });
    let detail = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["detail"].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|| status.to_string());
    if status == StatusCode::UNAUTHORIZED {
        return ApiFailure::Unauthorized(detail);
    }
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        ApiFailure::Refused {
            status: status.as_u16(),
            detail,
            missing_reference,
        }
    } else {
        ApiFailure::Unavailable(format!("{status}: {detail}"))
    }
}

async fn record_answer(
    response: reqwest::Response,
    entity: &str,
) -> Result<ConnecRecord, ApiFailure> {
    if !response.status().is_success() {
        return Err(failure(response).await);
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| ApiFailure::Unavailable(format!("the record API answered: {e}")))?;
    let record = body[entity].clone();
    Ok(ConnecRecord {
        global_id: global_id(&record).unwrap_or_default(),
        version: record["version"].as_i64().unwrap_or(0),
        updated_at: record["updated_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        fields: record,
    })
}

/// The connector app's local id of a record in its view (the external-ids array form).
pub fn local_id(record: &Value, app_id: &str) -> Option<String> {
    record["id"].as_array()?.iter().find_map(|entry| {
        (entry["provider"] == app_id)
            .then(|| entry["id"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// The platform's global id of a record in an app's view.
pub fn global_id(record: &Value) -> Option<String> {
    match &record["id"] {
        Value::String(id) => Some(id.clone()),
        Value::Array(entries) => entries.iter().find_map(|entry| {
            (entry["provider"] == "connec")
                .then(|| entry["id"].as_str().map(str::to_owned))
                .flatten()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_its_sequence_and_records() {
        let text = "id: 42\nevent: people\ndata: {\"people\":[{\"id\":[{\"provider\":\"connec\",\"id\":\"g1\"},{\"provider\":\"app1\",\"id\":\"a.vcf\"}],\"op\":\"updated\"}]}\n\n";
        let changes = parse_event(text);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].seq, 42);
        assert_eq!(changes[0].entity, "people");
        assert_eq!(
            local_id(&changes[0].record, "app1").as_deref(),
            Some("a.vcf")
        );
        assert_eq!(global_id(&changes[0].record).as_deref(), Some("g1"));
        assert!(parse_event(": heartbeat\n\n").is_empty());
    }
}
