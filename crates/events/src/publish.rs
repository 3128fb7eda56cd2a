//! Publishing with de-duplication and optimistic concurrency.
//!
//! Every publish carries `Nats-Msg-Id` (the event id), so a retried publish
//! within the stream's duplicate window is stored once and reported as a
//! duplicate. A write to an existing record carries
//! `Nats-Expected-Last-Subject-Sequence`: the stream sequence of the version
//! the writer saw (0 for "this subject must be empty"). A stale expectation
//! comes back as [`PublishError::Conflict`] with the subject's current sequence.

use std::collections::VecDeque;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use async_nats::HeaderMap;
use bytes::Bytes;

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    /// The de-duplication id (`Nats-Msg-Id`); use the event id.
    pub msg_id: String,
    /// `Some(seq)`: publish only if the subject's last message is at `seq` (0: none yet).
    pub expected_last_subject_seq: Option<u64>,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

impl Outgoing {
    pub fn new(subject: impl Into<String>, msg_id: impl Into<String>, payload: Bytes) -> Self {
        Self {
            subject: subject.into(),
            msg_id: msg_id.into(),
            expected_last_subject_seq: None,
            headers: HeaderMap::new(),
            payload,
        }
    }

    pub fn expect_last_subject_seq(mut self, seq: u64) -> Self {
        self.expected_last_subject_seq = Some(seq);
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.insert(name, value);
        self
    }

    fn into_message(self) -> (String, PublishMessage) {
        let mut message = PublishMessage::build()
            .payload(self.payload)
            .headers(self.headers)
            .message_id(&self.msg_id);
        if let Some(seq) = self.expected_last_subject_seq {
            message = message.expected_last_subject_sequence(seq);
        }
        (self.subject, message)
    }
}

/// What the stream said about an accepted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The stream sequence of the message (of the original one, for a duplicate).
    pub seq: u64,
    /// True when the msg id was seen before within the duplicate window: nothing new was stored.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("conflict on {subject}: expected last sequence {expected}, but it is {current}")]
    Conflict {
        subject: String,
        expected: u64,
        /// The subject's last stream sequence now (0 if it has no message).
        current: u64,
    },
    #[error("no stream takes subject {subject}; provision the streams first (`mno up` does)")]
    NoStream { subject: String },
    #[error("the bus did not acknowledge {subject} in time; it may or may not have been stored")]
    Timeout { subject: String },
    #[error("publishing {subject} failed: {reason}")]
    Bus { subject: String, reason: String },
    #[error("the atomic batch was not committed, nothing of it was stored: {reason}")]
    BatchRejected { reason: String },
    #[error("atomic batches need nats-server 2.12 or newer, this one is {version}; nothing was stored; upgrade the server (deploy/nats/install.sh)")]
    AtomicUnsupported { version: String },
    /// Refused before sending: retrying the same message cannot succeed.
    #[error("{subject} is larger than the server's max_payload ({reason}); nothing was sent")]
    TooLarge { subject: String, reason: String },
}

impl PublishError {
    /// Whether retrying with the same msg id may succeed (the msg id keeps it from doubling).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PublishError::Timeout { .. } | PublishError::Bus { .. }
        )
    }
}

/// The first nats-server that commits atomic batches (ADR-50).
pub const ATOMIC_BATCH_SERVER_VERSION: (u64, u64, u64) = (2, 12, 0);

/// Publishes into one stream.
#[derive(Clone, Debug)]
pub struct Publisher {
    js: jetstream::Context,
    stream: String,
}

impl Publisher {
    /// A publisher for subjects of `stream` (the stream is used to look up
    /// the current sequence of a subject after a conflict).
    pub fn new(js: jetstream::Context, stream: impl Into<String>) -> Self {
        Self {
            js,
            stream: stream.into(),
        }
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    /// Publish one message and wait for its acknowledgement.
    pub async fn publish(&self, message: Outgoing) -> Result<Published, PublishError> {
        let subject = message.subject.clone();
        let expected = message.expected_last_subject_seq;
        let (subj, msg) = message.into_message();
        let ack = self.js.send_publish(subj, msg).await;
        self.settle(subject, expected, ack).await
    }

    /// Publish many messages, keeping at most `window` acknowledgements in
    /// flight; results come back in input order.
    pub async fn publish_pipelined<I>(
        &self,
        messages: I,
        window: usize,
    ) -> Vec<Result<Published, PublishError>>
    where
        I: IntoIterator<Item = Outgoing>,
    {
        let window = window.max(1);
        let mut in_flight = VecDeque::with_capacity(window);
        let mut results = Vec::new();
        for message in messages {
            if in_flight.len() >= window {
                let (subject, expected, ack) = in_flight.pop_front().expect("window is full");
                results.push(self.settle(subject, expected, ack).await);
            }
            let subject = message.subject.clone();
            let expected = message.expected_last_subject_seq;
            let (subj, msg) = message.into_message();
            let ack = self.js.send_publish(subj, msg).await;
            in_flight.push_back((subject, expected, ack));
        }
        while let Some((subject, expected, ack)) = in_flight.pop_front() {
            results.push(self.settle(subject, expected, ack).await);
        }
        results
    }

    async fn settle(
        &self,
        subject: String,
        expected: Option<u64>,
        ack: Result<jetstream::context::PublishAckFuture, jetstream::context::PublishError>,
    ) -> Result<Published, PublishError> {
        let ack = ack.map_err(|e| map_error(&subject, e))?;
        match ack.await {
            Ok(ack) => Ok(Published {
                seq: ack.sequence,
                duplicate: ack.duplicate,
            }),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                let current = self.last_subject_seq(&subject).await.unwrap_or(0);
                Err(PublishError::Conflict {
                    subject,
                    expected: expected.unwrap_or(0),
                    current,
                })
            }
            Err(e) => Err(map_error(&subject, e)),
        }
    }

    /// Whether the server this publisher is connected to commits atomic batches.
    pub fn atomic_batches_supported(&self) -> bool {
        crate::bus::version_at_least(
            &self.js.client().server_info().version,
            ATOMIC_BATCH_SERVER_VERSION,
        )
    }

    /// Publish `messages` as one JetStream atomic batch (ADR-50, server 2.12+):
    /// all are stored, contiguously, or none. Each keeps its msg id and
    /// expected subject sequence; one stale expectation rejects the batch.
    /// Returns the stream sequences in input order.
    pub async fn publish_atomic(&self, messages: Vec<Outgoing>) -> Result<Vec<u64>, PublishError> {
        let count = messages.len();
        if count == 0 {
            return Ok(Vec::new());
        }
        // An older server would store the batch's messages one by one, not atomically.
        if !self.atomic_batches_supported() {
            return Err(PublishError::AtomicUnsupported {
                version: self.js.client().server_info().version,
            });
        }
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        let client = self.js.client();
        let mut last = None;
        for (i, message) in messages.into_iter().enumerate() {
            let mut headers = message.headers.clone();
            headers.insert("Nats-Msg-Id", message.msg_id.as_str());
            if let Some(seq) = message.expected_last_subject_seq {
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    seq.to_string().as_str(),
                );
            }
            headers.insert("Nats-Batch-Id", batch_id.as_str());
            headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
            if i + 1 < count {
                // Only the commit is acknowledged; the rest go as core publishes.
                client
                    .publish_with_headers(message.subject.clone(), headers, message.payload)
                    .await
                    .map_err(|e| PublishError::Bus {
                        subject: message.subject.clone(),
                        reason: e.to_string(),
                    })?;
            } else {
                headers.insert("Nats-Batch-Commit", "1");
                let commit = PublishMessage::build()
                    .payload(message.payload)
                    .headers(headers);
                last = Some((
                    message.subject.clone(),
                    self.js.send_publish(message.subject, commit).await,
                ));
            }
        }
        let (subject, ack) = last.expect("a non-empty batch has a last message");
        let ack = ack.map_err(|e| map_error(&subject, e))?;
        match ack.await {
            Ok(ack) => {
                let first = ack.sequence + 1 - count as u64;
                Ok((first..=ack.sequence).collect())
            }
            Err(e) if e.kind() == PublishErrorKind::TimedOut => {
                Err(PublishError::Timeout { subject })
            }
            Err(e) => Err(PublishError::BatchRejected {
                reason: e.to_string(),
            }),
        }
    }

    /// The stream sequence of the last message on `subject`, 0 if none.
    pub async fn last_subject_seq(&self, subject: &str) -> Result<u64, PublishError> {
        let stream = self
            .js
            .get_stream_no_info(&self.stream)
            .await
            .map_err(|e| PublishError::Bus {
                subject: subject.to_owned(),
                reason: e.to_string(),
            })?;
        match stream.direct_get_last_for_subject(subject).await {
            Ok(message) => Ok(message.sequence),
            Err(e)
                if matches!(
                    e.kind(),
                    async_nats::jetstream::stream::DirectGetErrorKind::NotFound
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(PublishError::Bus {
                subject: subject.to_owned(),
                reason: e.to_string(),
            }),
        }
    }
}

fn map_error(subject: &str, e: jetstream::context::PublishError) -> PublishError {
    let subject = subject.to_owned();
    match e.kind() {
        PublishErrorKind::StreamNotFound => PublishError::NoStream { subject },
        PublishErrorKind::TimedOut => PublishError::Timeout { subject },
        PublishErrorKind::MaxPayloadExceeded => PublishError::TooLarge {
            subject,
            reason: e.to_string(),
        },
        _ => PublishError::Bus {
            subject,
            reason: e.to_string(),
        },
    }
}
