//! `Idempotency-Key`: a retried request gets the first answer, and the write
//! is made once.
//!
//! The first request with a key claims it in a KV bucket (atomic create) with
//! the event id it will publish under. A retry that finds a finished answer
//! replays it; one that finds only the claim (the first attempt died midway)
//! writes again under the same event id, which JetStream de-duplicates.
//! Answers are kept 24 hours.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use mno_events::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const BUCKET: &str = "IDEMPOTENCY";
pub const HEADER: &str = "idempotency-key";

#[derive(Clone)]
pub struct Idempotency {
    kv: kv::Store,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    request_hash: String,
    event_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<Answer>,
}

/// A finished answer, replayed to retries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub seq: u64,
}

pub enum Begin {
    /// The request was answered before: send this again.
    Replay(Answer),
    /// Go ahead, publishing under `event_id`; then call [`Idempotency::finish`].
    Proceed {
        slot: String,
        event_id: String,
        request_hash: String,
    },
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!("the idempotency store did not answer: {e}"))
}

/// A fingerprint of the request, so a key reused for another request is caught.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Idempotency {
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<Idempotency, String> {
        // Create, or bring an existing bucket to these settings: a bucket made
        // with one replica must follow MNO_STREAM_REPLICAS once it is raised.
        let kv = js
            .create_or_update_key_value(kv::Config {
                bucket: BUCKET.into(),
                description: "Answers to requests sent with an Idempotency-Key".into(),
                history: 1,
                max_age: Duration::from_secs(24 * 3600),
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas.max(1),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(Idempotency { kv })
    }

    /// Claim `key` for the caller `scope`, or find what became of an earlier claim.
    pub async fn begin(
        &self,
        scope: &str,
        key: &str,
        request_hash: String,
    ) -> Result<Begin, ApiError> {
        if key.is_empty() || key.len() > 255 {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 characters",
            ));
        }
        let mut hasher = Sha256::new();
        hasher.update(scope.as_bytes());
        hasher.update([0]);
        hasher.update(key.as_bytes());
        let slot = format!("k.{}", hex(&hasher.finalize()));
        let fresh = Entry {
            request_hash: request_hash.clone(),
            event_id: mno_events::envelope::new_event_id(),
            answer: None,
        };
        let encoded = serde_json::to_vec(&fresh).expect("an entry serialises");
        match self.kv.create(&slot, Bytes::from(encoded)).await {
            Ok(_) => Ok(Begin::Proceed {
                slot,
                event_id: fresh.event_id,
                request_hash,
            }),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let bytes = self.kv.get(&slot).await.map_err(unavailable)?.ok_or_else(|| {
                    ApiError::conflict("idempotency_key_in_use", "the Idempotency-Key is being used by a request in flight; retry shortly")
                })?;
                let entry: Entry = serde_json::from_slice(&bytes).map_err(unavailable)?;
                if entry.request_hash != request_hash {
                    return Err(ApiError::unprocessable(
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for a different request; use a new key for a new request",
                    ));
                }
                match entry.answer {
                    Some(answer) => Ok(Begin::Replay(answer)),
                    None => Ok(Begin::Proceed {
                        slot,
                        event_id: entry.event_id,
                        request_hash,
                    }),
                }
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Free a key whose request was refused (4xx): nothing was written, so
    /// the corrected request may use it. A request that may have reached the
    /// bus keeps its claim instead, so that its retry reuses the event id.
    pub async fn release(&self, slot: &str) {
        if let Err(e) = self.kv.delete(slot).await {
            tracing::warn!(error = %e, "could not free an Idempotency-Key after a refused request");
        }
    }

    /// Keep the answer for retries.
    pub async fn finish(&self, slot: &str, request_hash: String, event_id: String, answer: Answer) {
        let entry = Entry {
            request_hash,
            event_id,
            answer: Some(answer),
        };
        let encoded = serde_json::to_vec(&entry).expect("an entry serialises");
        if let Err(e) = self.kv.put(slot, Bytes::from(encoded)).await {
            // The write itself is done; a retry will redo it under the same event id (deduplicated).
            tracing::warn!(error = %e, "could not store an idempotent answer");
        }
    }
}
