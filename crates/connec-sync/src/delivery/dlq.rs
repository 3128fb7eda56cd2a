//! Dead letters: events delivery gave up on, on stream DLQ at
//! `dlq.<app>.<org>`, as JSON an operator can read, carrying the original
//! envelope so that a redrive delivers exactly the same event again.

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use mno_events::proto::RecordEvent;
use mno_events::publish::{Outgoing, Publisher};
use mno_events::streams::DLQ;
use mno_events::subject::{dlq_subject, Token, DLQ_PREFIX};
use serde::{Deserialize, Serialize};

/// One dead letter as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub app_id: String,
    pub org: String,
    pub entity: String,
    pub record_id: String,
    pub event_id: String,
    pub version: u64,
    pub op: String,
    /// The event's sequence in RECORDS (0 if unknown).
    pub record_seq: u64,
    pub reason: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_response: String,
    pub dead_at: DateTime<Utc>,
    /// The original `RecordEvent` protobuf, base64.
    pub event: String,
}

/// A dead letter and where it sits in the DLQ stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredLetter {
    pub seq: u64,
    #[serde(flatten)]
    pub letter: DeadLetter,
    /// The record's state in the event, readable (`event` holds it as protobuf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_json::Value>,
}

impl StoredLetter {
    fn new(seq: u64, letter: DeadLetter) -> Self {
        let record = letter
            .record_event()
            .and_then(|event| event.state_json().ok());
        Self {
            seq,
            letter,
            record,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("there is no dead letter at DLQ sequence {0}; list them with `mno dlq list`")]
    NotFound(u64),
    #[error("DLQ sequence {0} does not hold a dead letter of this platform")]
    Unreadable(u64),
    #[error("{0}")]
    Token(#[from] mno_events::SubjectError),
    #[error("the DLQ stream did not answer: {0}; retry shortly")]
    Bus(String),
}

impl DeadLetter {
    pub fn new(
        app_id: &str,
        event: &RecordEvent,
        record_seq: u64,
        reason: String,
        attempts: u32,
        last_status: Option<u16>,
        last_response: String,
    ) -> Self {
        Self {
            app_id: app_id.to_owned(),
            org: event.org.clone(),
            entity: event.entity.clone(),
            record_id: event.record_id.clone(),
            event_id: event.event_id.clone(),
            version: event.version,
            op: event.op_kind().api_name().to_owned(),
            record_seq,
            reason,
            attempts,
            last_status,
            last_response,
            dead_at: Utc::now(),
            event: STANDARD.encode(event.to_bytes()),
        }
    }

    pub fn record_event(&self) -> Option<RecordEvent> {
        let bytes = STANDARD.decode(&self.event).ok()?;
        RecordEvent::from_bytes(&bytes).ok()
    }
}

/// Park a dead letter; returns its DLQ sequence.
pub async fn publish(js: &jetstream::Context, letter: &DeadLetter) -> Result<u64, DlqError> {
    let subject = dlq_subject(
        &Token::parse("app", &letter.app_id)?,
        &Token::parse("org", &letter.org)?,
    );
    let body = serde_json::to_vec(letter).expect("a dead letter serialises");
    let msg_id = format!(
        "dlq-{}-{}-{}",
        letter.app_id,
        letter.event_id,
        letter.dead_at.timestamp_millis()
    );
    Publisher::new(js.clone(), DLQ)
        .publish(Outgoing::new(subject, msg_id, body.into()))
        .await
        .map(|p| p.seq)
        .map_err(|e| DlqError::Bus(e.to_string()))
}

/// The filter for an app's dead letters, optionally of one org.
pub fn filter(app: Option<&str>, org: Option<&str>) -> Result<String, DlqError> {
    let app = app.map(|a| Token::parse("app", a)).transpose()?;
    let org = org.map(|o| Token::parse("org", o)).transpose()?;
    Ok(format!(
        "{DLQ_PREFIX}.{}.{}",
        app.as_ref().map_or("*", Token::as_str),
        org.as_ref().map_or("*", Token::as_str)
    ))
}

/// Dead letters matching `filter`, oldest first, from `after` (exclusive), up to `limit`.
pub async fn list(
    js: &jetstream::Context,
    filter: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredLetter>, DlqError> {
    let stream = js
        .get_stream_no_info(DLQ)
        .await
        .map_err(|e| DlqError::Bus(e.to_string()))?;
    let mut out = Vec::new();
    let mut next = after + 1;
    while out.len() < limit {
        match stream.direct_get_next_for_subject(filter, Some(next)).await {
            Ok(message) => {
                next = message.sequence + 1;
                if let Ok(letter) = serde_json::from_slice::<DeadLetter>(&message.payload) {
                    out.push(StoredLetter::new(message.sequence, letter));
                }
            }
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => break,
            Err(e) => return Err(DlqError::Bus(e.to_string())),
        }
    }
    Ok(out)
}

/// One dead letter by its DLQ sequence.
pub async fn get(js: &jetstream::Context, seq: u64) -> Result<StoredLetter, DlqError> {
    // Sequences start at 1: 0 is no letter (the bus would call it a bad subject).
    if seq == 0 {
        return Err(DlqError::NotFound(0));
    }
    let stream = js
        .get_stream_no_info(DLQ)
        .await
        .map_err(|e| DlqError::Bus(e.to_string()))?;
    let message = match stream.direct_get(seq).await {
        Ok(message) => message,
        Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => {
            return Err(DlqError::NotFound(seq))
        }
        Err(e) => return Err(DlqError::Bus(e.to_string())),
    };
    let letter = serde_json::from_slice::<DeadLetter>(&message.payload)
        .map_err(|_| DlqError::Unreadable(seq))?;
    Ok(StoredLetter::new(seq, letter))
}

/// Remove a dead letter (after its redrive was delivered or dead-lettered anew).
pub async fn remove(js: &jetstream::Context, seq: u64) -> Result<(), DlqError> {
    let stream = js
        .get_stream_no_info(DLQ)
        .await
        .map_err(|e| DlqError::Bus(e.to_string()))?;
    stream
        .delete_message(seq)
        .await
        .map(|_| ())
        .map_err(|e| DlqError::Bus(e.to_string()))
}
