//! Reading the streams: durable pull consumers and ordered replay.
//!
//! Durable consumers are how services keep their place across restarts:
//! explicit ack, batch fetch, and several filter subjects on one consumer
//! (server 2.10+). Ordered replay is how projections rebuild and how "as of"
//! reports fold the stream: a throwaway consumer that starts at a sequence or
//! a time and that the client recreates on any gap.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer},
    stream::ConsumerErrorKind,
    Message,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;

/// A durable pull consumer's settings that services care about.
#[derive(Debug, Clone)]
pub struct DurableSpec {
    pub name: String,
    /// Filter subjects; several are allowed (multi-filter, nats-server 2.10+).
    pub filters: Vec<String>,
    pub start: ReplayFrom,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Unacknowledged messages the server lets out at once.
    pub max_ack_pending: i64,
    pub description: Option<String>,
}

impl DurableSpec {
    pub fn new(name: impl Into<String>, filters: Vec<String>) -> Self {
        Self {
            name: name.into(),
            filters,
            start: ReplayFrom::Beginning,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
            description: None,
        }
    }

    fn config(&self) -> pull::Config {
        let (filter_subject, filter_subjects) = split_filters(&self.filters);
        pull::Config {
            durable_name: Some(self.name.clone()),
            description: self.description.clone(),
            deliver_policy: self.start.deliver_policy(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_ack_pending: self.max_ack_pending,
            filter_subject,
            filter_subjects,
            ..Default::default()
        }
    }
}

/// Where a consumer or a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    Beginning,
    /// From this stream sequence, inclusive.
    Sequence(u64),
    /// From the first message stored at or after this time.
    Time(DateTime<Utc>),
    /// Only messages published after the consumer is created.
    New,
}

impl ReplayFrom {
    fn deliver_policy(self) -> DeliverPolicy {
        match self {
            ReplayFrom::Beginning => DeliverPolicy::All,
            ReplayFrom::Sequence(0) => DeliverPolicy::All,
            ReplayFrom::Sequence(start_sequence) => {
                DeliverPolicy::ByStartSequence { start_sequence }
            }
            ReplayFrom::Time(start_time) => DeliverPolicy::ByStartTime { start_time },
            ReplayFrom::New => DeliverPolicy::New,
        }
    }
}

/// One filter goes in `filter_subject`, several in `filter_subjects`.
fn split_filters(filters: &[String]) -> (String, Vec<String>) {
    match filters {
        [] => (String::new(), Vec::new()),
        [one] => (one.clone(), Vec::new()),
        many => (String::new(), many.to_vec()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("stream {stream} is not there: {reason}; provision the streams first (`mno up` does)")]
    NoStream { stream: String, reason: String },
    #[error("consumer {consumer} on {stream}: {reason}")]
    Consumer {
        stream: String,
        consumer: String,
        reason: String,
    },
    #[error("reading {stream}: {reason}")]
    Read { stream: String, reason: String },
}

/// Create the durable consumer, or update it to match `spec` (filters may change).
pub async fn durable_pull(
    js: &jetstream::Context,
    stream: &str,
    spec: &DurableSpec,
) -> Result<PullConsumer, ConsumeError> {
    let handle = stream_handle(js, stream).await?;
    let config = spec.config();
    match handle.create_consumer(config.clone()).await {
        Ok(consumer) => Ok(consumer),
        // The start position of an existing durable cannot change; keep it and update the rest.
        Err(_) => {
            let mut config = config;
            if let Ok(existing) = handle
                .consumer_info(&spec.name)
                .await
                .map(|i| i.config.deliver_policy)
            {
                config.deliver_policy = existing;
            }
            handle
                .update_consumer(config)
                .await
                .map_err(|e| consumer_error(stream, spec, e))
        }
    }
}

/// Delete the durable consumer if it is there and create it anew from
/// `spec.start`: how a new holder of a projection's lease takes it over, so
/// that what the previous holder pulled but never committed comes again at
/// once and in order (not after its ack wait, behind later events).
pub async fn recreate_durable(
    js: &jetstream::Context,
    stream: &str,
    spec: &DurableSpec,
) -> Result<PullConsumer, ConsumeError> {
    let handle = stream_handle(js, stream).await?;
    // Not there is fine: the first start, or a rebuild removed it.
    let _ = handle.delete_consumer(&spec.name).await;
    handle
        .create_consumer(spec.config())
        .await
        .map_err(|e| consumer_error(stream, spec, e))
}

/// The stream's handle, or the error that says to provision it.
async fn stream_handle(
    js: &jetstream::Context,
    stream: &str,
) -> Result<jetstream::stream::Stream<()>, ConsumeError> {
    js.get_stream_no_info(stream)
        .await
        .map_err(|e| ConsumeError::NoStream {
            stream: stream.to_owned(),
            reason: e.to_string(),
        })
}

fn consumer_error(stream: &str, spec: &DurableSpec, e: impl std::fmt::Display) -> ConsumeError {
    ConsumeError::Consumer {
        stream: stream.to_owned(),
        consumer: spec.name.clone(),
        reason: e.to_string(),
    }
}

/// Fetch up to `max` messages, waiting at most `wait` for the first.
pub async fn fetch_batch(
    consumer: &PullConsumer,
    max: usize,
    wait: Duration,
) -> Result<Vec<Message>, ConsumeError> {
    let read = |reason: String| ConsumeError::Read {
        stream: consumer.cached_info().stream_name.clone(),
        reason,
    };
    let mut batch = consumer
        .fetch()
        .max_messages(max)
        .expires(wait)
        .messages()
        .await
        .map_err(|e| read(e.to_string()))?;
    let mut out = Vec::with_capacity(max);
    while let Some(message) = batch.next().await {
        out.push(message.map_err(|e| read(e.to_string()))?);
    }
    Ok(out)
}

/// Batches from a durable pull consumer's continuous message stream.
///
/// Unlike one-shot fetches, the stream keeps pull requests open and never
/// drops a message that arrives after a request expired (a dropped delivery
/// would come back only after `ack_wait`, out of order). A batch is the
/// first message plus whatever else is already waiting, up to `max`.
pub struct Batches {
    messages: pull::Stream,
    stream: String,
}

impl Batches {
    pub async fn open(consumer: &PullConsumer, max: usize) -> Result<Batches, ConsumeError> {
        let stream = consumer.cached_info().stream_name.clone();
        let messages = consumer
            .stream()
            .max_messages_per_batch(max.max(1))
            .messages()
            .await
            .map_err(|e| ConsumeError::Read {
                stream: stream.clone(),
                reason: e.to_string(),
            })?;
        Ok(Batches { messages, stream })
    }

    /// The next batch: waits up to `idle` for a first message (`None` if none
    /// came: the consumer is idle), then takes what is already there, up to `max`.
    pub async fn next(
        &mut self,
        max: usize,
        idle: Duration,
    ) -> Result<Option<Vec<Message>>, ConsumeError> {
        let read = |reason: String| ConsumeError::Read {
            stream: self.stream.clone(),
            reason,
        };
        // Waiting on `next()` is cancel-safe: a timeout here drops no message.
        let first = match tokio::time::timeout(idle, self.messages.next()).await {
            Err(_) => return Ok(None),
            Ok(Some(message)) => message.map_err(|e| read(e.to_string()))?,
            Ok(None) => return Err(read("the consumer's message stream ended".into())),
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match tokio::time::timeout(Duration::from_millis(1), self.messages.next()).await {
                Ok(Some(Ok(message))) => batch.push(message),
                Ok(Some(Err(e))) => {
                    tracing::warn!(error = %e, stream = %self.stream, "consumer read error; the batch ends here");
                    break;
                }
                _ => break,
            }
        }
        Ok(Some(batch))
    }
}

/// An ordered, throwaway consumer over `filters` starting at `from`.
pub async fn replay_ordered(
    js: &jetstream::Context,
    stream: &str,
    filters: &[String],
    from: ReplayFrom,
) -> Result<pull::Ordered, ConsumeError> {
    Ok(ordered_with_pending(js, stream, filters, from, 0).await?.1)
}

/// As [`replay_ordered`], pulling at most `max_batch` messages at a time, so
/// that what the client library holds for a slow reader stays small.
pub async fn replay_ordered_bounded(
    js: &jetstream::Context,
    stream: &str,
    filters: &[String],
    from: ReplayFrom,
    max_batch: usize,
) -> Result<pull::Ordered, ConsumeError> {
    let max_batch = i64::try_from(max_batch.max(1)).unwrap_or(i64::MAX);
    Ok(ordered_with_pending(js, stream, filters, from, max_batch)
        .await?
        .1)
}

/// How long a replay's requests to the bus are sent again while they time out,
/// and how long each waits for its answer.
const REPLAY_REQUESTS_RETRIED_FOR: Duration = Duration::from_secs(20);
const REPLAY_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A JetStream context whose requests give up after [`REPLAY_REQUEST_TIMEOUT`],
/// so that a request sent to a dead node is sent again soon.
fn replay_context(js: &jetstream::Context) -> jetstream::Context {
    let mut js = js.clone();
    js.set_timeout(REPLAY_REQUEST_TIMEOUT);
    js
}

/// `request()`, sent again while it times out, for up to
/// [`REPLAY_REQUESTS_RETRIED_FOR`].
///
/// In a cluster, right after a node is lost, a replay's requests can go
/// unanswered for a while: the stream's info waits for a new stream leader
/// (seconds), and a replay consumer, which has one replica on a random peer of
/// the stream, lands on the dead node one time in three until the others miss
/// its heartbeats (a minute or more). Each attempt draws its peer again. A
/// timed-out create that did land leaves only an ephemeral consumer, which the
/// server removes once it sits idle.
async fn again_while_timing_out<T, E, Fut>(
    stream: &str,
    what: &str,
    timed_out: impl Fn(&E) -> bool,
    mut request: impl FnMut() -> Fut,
) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let give_up = tokio::time::Instant::now() + REPLAY_REQUESTS_RETRIED_FOR;
    loop {
        match request().await {
            Err(e) if timed_out(&e) && tokio::time::Instant::now() < give_up => {
                tracing::warn!(
                    stream,
                    what,
                    "a replay's request to the bus timed out; sending it again"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            outcome => return outcome,
        }
    }
}

/// As [`replay_ordered`], with how many messages match at the start.
pub async fn replay_ordered_counted(
    js: &jetstream::Context,
    stream: &str,
    filters: &[String],
    from: ReplayFrom,
) -> Result<(u64, pull::Ordered), ConsumeError> {
    ordered_with_pending(js, stream, filters, from, 0).await
}

/// The ordered consumer's messages, and how many match at the start.
async fn ordered_with_pending(
    js: &jetstream::Context,
    stream: &str,
    filters: &[String],
    from: ReplayFrom,
    // 0: the client library's default.
    max_batch: i64,
) -> Result<(u64, pull::Ordered), ConsumeError> {
    let handle = replay_context(js)
        .get_stream_no_info(stream)
        .await
        .map_err(|e| ConsumeError::NoStream {
            stream: stream.to_owned(),
            reason: e.to_string(),
        })?;
    let (filter_subject, filter_subjects) = split_filters(filters);
    let config = pull::OrderedConfig {
        deliver_policy: from.deliver_policy(),
        filter_subject,
        filter_subjects,
        max_batch,
        ..Default::default()
    };
    let consumer = again_while_timing_out(
        stream,
        "create a replay consumer",
        |e: &jetstream::stream::ConsumerError| e.kind() == ConsumerErrorKind::TimedOut,
        || handle.create_consumer(config.clone()),
    )
    .await
    .map_err(|e| ConsumeError::Consumer {
        stream: stream.to_owned(),
        consumer: "ordered".into(),
        reason: e.to_string(),
    })?;
    let pending = consumer.cached_info().num_pending;
    let messages = consumer.messages().await.map_err(|e| ConsumeError::Read {
        stream: stream.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((pending, messages))
}

/// One message read by [`replay_until_caught_up`].
#[derive(Debug, Clone)]
pub struct Replayed {
    pub seq: u64,
    pub subject: String,
    pub published: DateTime<Utc>,
    pub payload: bytes::Bytes,
}

/// Replay `filters` from `from` up to the stream's last message at the time
/// of the call (or up to `until_seq`), calling `apply` on each message in
/// order. Returns how many messages were applied.
pub async fn replay_until_caught_up<F>(
    js: &jetstream::Context,
    stream: &str,
    filters: &[String],
    from: ReplayFrom,
    until_seq: Option<u64>,
    mut apply: F,
) -> Result<u64, ConsumeError>
where
    F: FnMut(Replayed) -> bool,
{
    let read = |reason: String| ConsumeError::Read {
        stream: stream.to_owned(),
        reason,
    };
    let replay_js = replay_context(js);
    let handle = again_while_timing_out(
        stream,
        "read the stream's info",
        // A request that failed on the way (timed out), not the server's answer.
        |e: &jetstream::context::GetStreamError| {
            matches!(e.kind(), jetstream::context::GetStreamErrorKind::Request)
        },
        || replay_js.get_stream(stream),
    )
    .await
    .map_err(|e| ConsumeError::NoStream {
        stream: stream.to_owned(),
        reason: e.to_string(),
    })?;
    // Fresh: `get_stream` has just asked for it.
    let last = handle.cached_info().state.last_sequence;
    let end = until_seq.map_or(last, |u| u.min(last));
    if end == 0 {
        return Ok(0);
    }
    if let ReplayFrom::Sequence(start) = from {
        if start > end {
            return Ok(0);
        }
    }
    let (pending, mut messages) = ordered_with_pending(js, stream, filters, from, 0).await?;
    if pending == 0 {
        return Ok(0);
    }
    let mut applied = 0;
    // An idle timeout guards against a filter that matches nothing up to `end`.
    let idle = Duration::from_secs(5);
    loop {
        let next = match tokio::time::timeout(idle, messages.next()).await {
            Ok(Some(next)) => next.map_err(|e| read(e.to_string()))?,
            Ok(None) | Err(_) => break,
        };
        let info = next.info().map_err(|e| read(e.to_string()))?;
        let seq = info.stream_sequence;
        if seq > end {
            break;
        }
        let pending = info.pending;
        let published = info.published;
        applied += 1;
        let keep_going = apply(Replayed {
            seq,
            subject: next.subject.to_string(),
            published,
            payload: next.payload.clone(),
        });
        if !keep_going || seq == end || pending == 0 {
            break;
        }
    }
    Ok(applied)
}
