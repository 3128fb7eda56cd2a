//! One app's delivery worker: reads the app's durable consumer, drops what
//! the app must not get (its own changes, entities an org does not share
//! with it), keeps the
//! rest in per-record lanes, and POSTs batches to the app's webhook.
//!
//! Events stay unacknowledged until delivered or dead-lettered, so a crash
//! of the process or of nats-server loses nothing: JetStream redelivers, and
//! the same event goes out under the same webhook-id.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer, AckKind, Message};
use futures::{FutureExt, StreamExt};
use mno_events::directory::{AppProfile, Directory, InstallInfo};
use mno_events::proto::{Op, RecordEvent};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::config::DeliveryConfig;
use super::dlq::{self, DeadLetter, StoredLetter};
use super::lanes::{Batch, Lanes, Pending};
use super::log::{AttemptStatus, DeliveryLog, LogEntry};
use super::payload;
use super::send::{Attempt, Outcome, Sender};
use super::view::{LearnedIds, LocalIds, ReferenceFields};
use super::witness::{Witnessed, WitnessedIds};

/// What every worker shares.
pub struct Context {
    pub js: jetstream::Context,
    pub directory: Arc<dyn Directory>,
    pub config: DeliveryConfig,
    pub sender: Sender,
    pub log: DeliveryLog,
    pub ids: Arc<dyn LocalIds>,
    pub refs: Arc<dyn ReferenceFields>,
    pub learned: Arc<LearnedIds>,
}

pub enum Command {
    /// The app's profile changed (URL, secrets, subscriptions).
    Profile(AppProfile),
    /// An install of the app changed: read the installs again now.
    InstallsChanged,
    /// Deliver a dead letter again.
    Redrive(StoredLetter),
    Stop,
}

pub struct WorkerHandle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub task: JoinHandle<()>,
}

pub fn spawn(ctx: Arc<Context>, profile: AppProfile, consumer: PullConsumer) -> WorkerHandle {
    let (commands, inbox) = mpsc::unbounded_channel();
    let witnessed = Arc::new(Witnessed::new(&profile.app_id, WITNESS_BOUND));
    let ids = Arc::new(WitnessedIds {
        witnessed: witnessed.clone(),
        ids: ctx.ids.clone(),
    });
    let worker = Worker {
        ctx,
        witnessed,
        ids,
        profile,
        consumer,
        installs: Installs::default(),
        lanes: Lanes::default(),
        in_flight: JoinSet::new(),
        linger_until: None,
        undecided: Vec::new(),
        recheck_at: None,
        stopping: false,
        redriving: HashSet::new(),
        redriven: HashSet::new(),
    };
    let task = tokio::spawn(worker.run(inbox));
    WorkerHandle { commands, task }
}

/// The orgs that installed the app with data sharing on, and the entities
/// each shares with it, read lazily.
#[derive(Default)]
struct Installs {
    /// The orgs sharing with the app, each with when its sharing (or the
    /// entities it shares) last changed (see `InstallInfo::sharing_since_ms`).
    sharing: HashMap<String, InstallInfo>,
    read_at: Option<Instant>,
    /// When the last read began (Unix nanoseconds). An (org, entity) not
    /// shared at that read is final only for events published before then:
    /// one published later may follow an install (or a widening) the read
    /// did not see yet.
    read_began: i128,
}

/// What to do with an event just read from the consumer.
enum Verdict {
    Deliver,
    Skip,
    /// Its org did not share its entity at the last read, but the event is newer than
    /// that read: hold it until the installs are read again.
    AskAgain,
}

struct Worker {
    ctx: Arc<Context>,
    /// The app's ids of the records this worker saw created.
    witnessed: Arc<Witnessed>,
    /// The app's local ids: the witness first, then the shared id sources.
    ids: Arc<WitnessedIds>,
    profile: AppProfile,
    consumer: PullConsumer,
    installs: Installs,
    lanes: Lanes,
    in_flight: JoinSet<Sent>,
    linger_until: Option<Instant>,
    /// Events waiting for the installs to be read again (see
    /// `Verdict::AskAgain`), in arrival order, each with when it was published.
    undecided: Vec<(Pending, i128)>,
    /// When to read the installs again for `undecided`.
    recheck_at: Option<Instant>,
    stopping: bool,
    /// DLQ sequences being redriven, and those done (delivered, or
    /// dead-lettered anew under a new sequence): a second redrive of one
    /// (asked twice, or read from the DLQ just before the first removed it)
    /// would deliver it twice, or dead-letter it twice anew. DLQ sequences
    /// are never reused.
    redriving: HashSet<u64>,
    redriven: HashSet<u64>,
}

/// A finished POST and the batch it carried.
struct Sent {
    batch: Batch,
    webhook_id: String,
    attempt: Attempt,
}

type Messages = async_nats::jetstream::consumer::pull::Stream;

/// Messages taken from the consumer's buffer in one go, without waiting.
const READ_AHEAD: usize = 512;

/// The least time between two reads of the installs made for undecided
/// events: it bounds the directory reads that other orgs' traffic can cause.
const RECHECK_GAP: Duration = Duration::from_millis(200);

/// Records whose ids a worker keeps from what it read (per generation; two are kept).
/// Above the events one app may hold unacknowledged, so a held event's record is known.
const WITNESS_BOUND: usize = 10_000;

impl Worker {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        let app = self.profile.app_id.clone();
        tracing::info!(%app, "delivery worker started");
        let mut messages: Option<Messages> = None;
        let mut keep_alive = tokio::time::interval(self.ctx.config.ack_wait / 3);
        loop {
            if !self.stopping {
                self.dispatch().await;
            }
            if self.stopping && self.in_flight.is_empty() {
                break;
            }
            if messages.is_none() && !self.stopping {
                messages = self.open_messages().await;
            }
            let next_due = self.lanes.next_due();
            let linger = self.linger_until;
            let recheck = self.recheck_at;
            let room =
                self.lanes.held() + self.undecided.len() < self.ctx.config.max_ack_pending as usize;
            tokio::select! {
                command = inbox.recv() => match command {
                    None | Some(Command::Stop) => self.stopping = true,
                    Some(Command::Profile(profile)) => {
                        self.profile = profile;
                        self.installs.read_at = None;
                    }
                    Some(Command::InstallsChanged) => {
                        self.installs.read_at = None;
                        if self.recheck_at.is_some() {
                            self.recheck_at = Some(Instant::now());
                        }
                    }
                    Some(Command::Redrive(letter)) => self.redrive(letter),
                },
                next = next_message(&mut messages), if !self.stopping && room => match next {
                    Some(Ok(message)) => {
                        self.admit(message).await;
                        // Take what has already arrived before the next round of dispatching.
                        if let Some(stream) = messages.as_mut() {
                            for _ in 0..READ_AHEAD {
                                match stream.next().now_or_never() {
                                    Some(Some(Ok(message))) => self.admit(message).await,
                                    _ => break,
                                }
                            }
                        }
                    }
                    Some(Err(e)) => tracing::debug!(%app, error = %e, "consumer hiccup"),
                    None => {
                        messages = None;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    match done {
                        Ok(sent) => self.settle(sent).await,
                        Err(e) => tracing::error!(%app, error = %e, "a webhook POST task failed"),
                    }
                }
                _ = sleep_until(next_due), if next_due.is_some() => self.lanes.wake(Instant::now()),
                _ = sleep_until(linger), if linger.is_some() => {}
                _ = sleep_until(recheck), if recheck.is_some() => self.decide_undecided().await,
                _ = keep_alive.tick() => self.keep_alive().await,
            }
        }
        // Hand what is still held back to JetStream at once, for the next worker to pick up.
        let undecided = self
            .undecided
            .iter()
            .filter_map(|(p, _)| p.message.as_ref());
        for message in self.lanes.queued_messages().chain(undecided) {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
        tracing::info!(%app, held = self.lanes.held(), "delivery worker stopped");
    }

    async fn open_messages(&self) -> Option<Messages> {
        match self
            .consumer
            .stream()
            .max_messages_per_batch(1000)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(stream) => Some(stream),
            Err(e) => {
                tracing::warn!(app = %self.profile.app_id, error = %e, "cannot read the app's consumer yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                None
            }
        }
    }

    /// Decide what to do with one message from the consumer.
    async fn admit(&mut self, mut message: Message) {
        let Ok((seq, delivered)) = message.info().map(|i| (i.stream_sequence, i.delivered)) else {
            return;
        };
        if self.lanes.is_held(seq) {
            // Only the ack handle is kept; the held copy has the event.
            message.message.payload = Default::default();
            self.lanes.push(pending(
                seq,
                Arc::new(RecordEvent::default()),
                Some(message),
            ));
            return;
        }
        let event = match RecordEvent::from_bytes(&message.payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(seq, error = %e, "skipping a record message that is not a RecordEvent");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        // Decoded, the bytes are not needed again: a held event costs memory once, not twice.
        message.message.payload = Default::default();
        self.ctx.learned.learn(&event);
        self.witnessed.read(&event, delivered == 1);
        let published = message
            .info()
            .ok()
            .and_then(|i| i.published.timestamp_nanos_opt())
            .map_or(i128::MAX, i128::from);
        match self.verdict(&event, published).await {
            Verdict::Deliver => {
                let mut pending = pending(seq, Arc::new(event), Some(message));
                pending.delivered_before = delivered > 1;
                self.lanes.push(pending);
            }
            Verdict::Skip => {
                let _ = message.ack().await;
            }
            Verdict::AskAgain => {
                let mut pending = pending(seq, Arc::new(event), Some(message));
                pending.delivered_before = delivered > 1;
                self.undecided.push((pending, published));
                let earliest = self
                    .installs
                    .read_at
                    .map_or_else(Instant::now, |at| at + RECHECK_GAP);
                self.recheck_at.get_or_insert(earliest);
            }
        }
    }

    /// Whether the app should get this event, published at `published` (Unix nanoseconds).
    async fn verdict(&mut self, event: &RecordEvent, published: i128) -> Verdict {
        let from_this_app = event
            .source
            .as_ref()
            .is_some_and(|s| s.app_id == self.profile.app_id);
        if from_this_app || event.op_kind() == Op::IdMapped {
            return Verdict::Skip;
        }
        if !self
            .profile
            .subscribed_entities()
            .any(|e| e == event.entity)
        {
            return Verdict::Skip;
        }
        // Behind an undecided event of its org, so that a record's order holds.
        if self.undecided.iter().any(|(p, _)| p.event.org == event.org) {
            return Verdict::AskAgain;
        }
        if self.shares(&event.org, &event.entity).await {
            Verdict::Deliver
        } else if published >= self.installs.read_began {
            Verdict::AskAgain
        } else {
            Verdict::Skip
        }
    }

    /// Read the installs again and settle the events held for it, in order:
    /// an event goes out if its org shares with the app now and already did
    /// when the event was published (a change made while sharing was off
    /// stays unsent, even when sharing came back on since).
    async fn decide_undecided(&mut self) {
        self.recheck_at = None;
        self.installs.read_at = None;
        for (event, published) in std::mem::take(&mut self.undecided) {
            let shared_then = self.shares(&event.event.org, &event.event.entity).await
                && self
                    .installs
                    .sharing
                    .get(&event.event.org)
                    .is_some_and(|install| published >= install.sharing_since_nanos());
            if shared_then {
                self.lanes.push(event);
            } else if let Some(message) = &event.message {
                let _ = message.ack().await;
            }
        }
    }

    /// Whether `org` installed the app with data sharing on and shares
    /// `entity` with it (cached for `installs_ttl`).
    async fn shares(&mut self, org: &str, entity: &str) -> bool {
        let stale = self
            .installs
            .read_at
            .is_none_or(|at| at.elapsed() >= self.ctx.config.installs_ttl);
        if stale {
            let began = now_unix_nanos();
            match self
                .ctx
                .directory
                .installs_of_app(&self.profile.app_id)
                .await
            {
                Ok(installs) => {
                    self.installs.sharing = installs
                        .into_iter()
                        .filter(|i| i.data_sharing)
                        .map(|i| (i.org.clone(), i))
                        .collect();
                    self.installs.read_at = Some(Instant::now());
                    self.installs.read_began = began;
                }
                Err(e) => {
                    tracing::warn!(app = %self.profile.app_id, error = %e, "installs unknown; using what was read before")
                }
            }
        }
        self.installs
            .sharing
            .get(org)
            .is_some_and(|install| install.shares(entity))
    }

    fn redrive(&mut self, stored: StoredLetter) {
        if self.redriven.contains(&stored.seq) || !self.redriving.insert(stored.seq) {
            tracing::debug!(seq = stored.seq, "already redriven, or being redriven");
            return;
        }
        let Some(event) = stored.letter.record_event() else {
            self.redriving.remove(&stored.seq);
            tracing::warn!(seq = stored.seq, "dead letter carries no readable event");
            return;
        };
        let mut redriven = pending(0, Arc::new(event), None);
        redriven.dlq_seq = Some(stored.seq);
        self.lanes.push(redriven);
    }

    /// Start as many POSTs as allowed.
    async fn dispatch(&mut self) {
        let ctx = self.ctx.clone();
        let config = &ctx.config;
        if self.profile.webhook_disabled || self.profile.webhook_url.is_none() {
            return;
        }
        while self.in_flight.len() < config.max_in_flight.max(1) && self.lanes.has_ready() {
            if !config.linger.is_zero() && self.lanes.ready_lanes() < config.batch_max {
                match self.linger_until {
                    None => {
                        self.linger_until = Some(Instant::now() + config.linger);
                        return;
                    }
                    Some(until) if until > Instant::now() => return,
                    Some(_) => self.linger_until = None,
                }
            }
            let Some(batch) = self.lanes.take_batch(config.batch_max.max(1)) else {
                return;
            };
            let batch = self.skip_unshared(batch).await;
            if !batch.is_empty() {
                self.send(batch);
            }
        }
    }

    /// The org stopped sharing some entities with the app (or all of them):
    /// acknowledge their events without sending them, and keep the rest of
    /// the batch.
    async fn skip_unshared(&mut self, mut batch: Batch) -> Batch {
        let mut unshared = Vec::new();
        let mut kept = Vec::with_capacity(batch.lanes.len());
        for (key, events) in std::mem::take(&mut batch.lanes) {
            // A lane is one record, so one entity.
            let Some(event) = events.first().map(|p| p.event.clone()) else {
                kept.push((key, events));
                continue;
            };
            if self.shares(&batch.org, &event.entity).await {
                kept.push((key, events));
                continue;
            }
            for pending in &events {
                if let Some(message) = &pending.message {
                    let _ = message.ack().await;
                }
            }
            self.lanes.finish(&key, &events);
            if !unshared.contains(&event.entity) {
                unshared.push(event.entity.clone());
            }
        }
        for entity in unshared {
            for dropped in self.lanes.drop_entity(&batch.org, &entity) {
                if let Some(message) = &dropped.message {
                    let _ = message.ack().await;
                }
            }
        }
        batch.lanes = kept;
        batch
    }

    fn send(&mut self, batch: Batch) {
        let ctx = self.ctx.clone();
        let ids = self.ids.clone();
        let app = self.profile.app_id.clone();
        let url = self.profile.webhook_url.clone().unwrap_or_default();
        let secrets = self.profile.webhook_secrets.clone();
        self.in_flight.spawn(async move {
            let webhook_id = payload::webhook_id(&batch);
            let body = payload::body(&batch, &app, &*ids, &*ctx.refs).await;
            let attempt = ctx.sender.post(&url, &secrets, &webhook_id, body).await;
            if attempt.outcome == Outcome::Delivered {
                payload::record_id_map(&*ids, &app, &batch.org, &attempt.response).await;
            }
            Sent {
                batch,
                webhook_id,
                attempt,
            }
        });
    }

    /// Act on a finished POST: ack, retry later, dead-letter, or disable.
    async fn settle(&mut self, sent: Sent) {
        let Sent {
            batch,
            webhook_id,
            attempt,
        } = sent;
        let first_attempt = batch.events().map(|p| p.attempts).max().unwrap_or(0) + 1;
        let status = match attempt.outcome {
            Outcome::Delivered => AttemptStatus::Delivered,
            Outcome::Gone => AttemptStatus::Disabled,
            _ => AttemptStatus::Failed,
        };
        self.log(&batch, &webhook_id, first_attempt, status, &attempt);
        match attempt.outcome {
            Outcome::Delivered => {
                for (key, events) in &batch.lanes {
                    for event in events {
                        self.acknowledge(event).await;
                    }
                    self.lanes.finish(key, events);
                }
            }
            Outcome::Gone => {
                let reason = format!(
                    "the receiver at {} answered 410 Gone",
                    self.profile.webhook_url.as_deref().unwrap_or("")
                );
                if let Err(e) = self
                    .ctx
                    .directory
                    .disable_webhook(&self.profile.app_id, &reason)
                    .await
                {
                    tracing::warn!(app = %self.profile.app_id, error = %e, "could not record the disabled webhook");
                }
                self.profile.webhook_disabled = true;
                for (key, events) in batch.lanes {
                    self.lanes
                        .retry_later(&key, events, Instant::now(), Duration::ZERO);
                }
                // Held events are left unacknowledged: they go out when the app is re-enabled.
                self.stopping = true;
            }
            Outcome::Retry { retry_after } => {
                for (key, events) in batch.lanes {
                    self.fail_lane(&key, events, &attempt, retry_after, false)
                        .await;
                }
            }
            Outcome::Fatal => {
                for (key, events) in batch.lanes {
                    self.fail_lane(&key, events, &attempt, None, true).await;
                }
            }
        }
    }

    /// Count a failure on a lane's events; dead-letter the exhausted ones, retry the rest later.
    async fn fail_lane(
        &mut self,
        key: &str,
        events: Vec<Pending>,
        attempt: &Attempt,
        retry_after: Option<Duration>,
        fatal: bool,
    ) {
        let ctx = self.ctx.clone();
        let schedule = &ctx.config.retry_schedule;
        let mut back = Vec::new();
        let mut dead = Vec::new();
        for mut event in events {
            event.attempts += 1;
            if fatal || event.attempts as usize > schedule.len() {
                dead.push(event);
            } else {
                back.push(event);
            }
        }
        let mut parked = Vec::new();
        for event in dead {
            if self.dead_letter(&event, attempt).await {
                parked.push(event);
            } else {
                // The DLQ did not take it: keep it and try again shortly.
                event_back(&mut back, event);
            }
        }
        if !parked.is_empty() {
            self.lanes.forget(&parked);
        }
        if back.is_empty() {
            self.lanes.finish(key, &[]);
            return;
        }
        let attempts = back[0].attempts.max(1) as usize;
        let delay = schedule
            .get(attempts - 1)
            .copied()
            .map(|d| jittered(d, self.ctx.config.jitter))
            .unwrap_or(Duration::from_secs(5));
        let delay = retry_after.map_or(delay, |r| r.max(delay));
        self.lanes.retry_later(key, back, Instant::now(), delay);
    }

    /// Park an event in the DLQ and ack it; false if the DLQ did not take it.
    async fn dead_letter(&mut self, event: &Pending, attempt: &Attempt) -> bool {
        let reason = match (&attempt.outcome, attempt.status) {
            (Outcome::Fatal, _) => attempt.response.clone(),
            (_, Some(status)) => format!(
                "the receiver answered {status} on all {} attempts",
                event.attempts
            ),
            (_, None) => format!(
                "no answer from the receiver in {} attempts: {}",
                event.attempts, attempt.response
            ),
        };
        let letter = DeadLetter::new(
            &self.profile.app_id,
            &event.event,
            event.seq,
            reason,
            event.attempts,
            attempt.status,
            attempt.response.clone(),
        );
        match dlq::publish(&self.ctx.js, &letter).await {
            Ok(dlq_seq) => {
                tracing::warn!(app = %self.profile.app_id, event_id = %event.event.event_id, dlq_seq, "dead-lettered");
                self.ctx.log.push(LogEntry {
                    at: chrono::Utc::now(),
                    app_id: self.profile.app_id.clone(),
                    org: event.event.org.clone(),
                    webhook_id: event.event.event_id.clone(),
                    event_ids: vec![event.event.event_id.clone()],
                    attempt: event.attempts,
                    status: AttemptStatus::DeadLettered,
                    http_status: attempt.status,
                    latency_ms: 0.0,
                    error: Some(letter.reason.clone()),
                });
                self.acknowledge(event).await;
                true
            }
            Err(e) => {
                tracing::warn!(app = %self.profile.app_id, error = %e, "the DLQ did not take a dead letter");
                false
            }
        }
    }

    /// Ack the event's message; remove the dead letter it was redriven from.
    async fn acknowledge(&mut self, event: &Pending) {
        if let Some(message) = &event.message {
            if let Err(e) = message.ack().await {
                tracing::debug!(error = %e, "ack not sent; the event may be delivered again");
            }
        }
        if let Some(dlq_seq) = event.dlq_seq {
            self.redriving.remove(&dlq_seq);
            self.redriven.insert(dlq_seq);
            if let Err(e) = dlq::remove(&self.ctx.js, dlq_seq).await {
                tracing::warn!(dlq_seq, error = %e, "redriven, but the dead letter could not be removed");
            }
        }
    }

    /// Tell JetStream that held events are still being worked on.
    async fn keep_alive(&self) {
        for message in self.lanes.queued_messages() {
            let _ = message.ack_with(AckKind::Progress).await;
        }
    }

    fn log(
        &self,
        batch: &Batch,
        webhook_id: &str,
        attempt_no: u32,
        status: AttemptStatus,
        attempt: &Attempt,
    ) {
        let error = match status {
            AttemptStatus::Delivered => None,
            _ => Some(attempt.response.chars().take(500).collect()),
        };
        self.ctx.log.push(LogEntry {
            at: chrono::Utc::now(),
            app_id: self.profile.app_id.clone(),
            org: batch.org.clone(),
            webhook_id: webhook_id.to_owned(),
            event_ids: batch.events().map(|p| p.event.event_id.clone()).collect(),
            attempt: attempt_no,
            status,
            http_status: attempt.status,
            latency_ms: attempt.latency.as_secs_f64() * 1000.0,
            error,
        });
    }
}

fn event_back(back: &mut Vec<Pending>, event: Pending) {
    back.insert(0, event);
}

fn pending(seq: u64, event: Arc<RecordEvent>, message: Option<Message>) -> Pending {
    Pending {
        seq,
        event,
        message,
        dlq_seq: None,
        attempts: 0,
        delivered_before: false,
        received: Instant::now(),
    }
}

async fn next_message(
    messages: &mut Option<Messages>,
) -> Option<Result<Message, async_nats::jetstream::consumer::pull::MessagesError>> {
    match messages {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Spread a delay by ±`jitter` so that retries of many events do not arrive together.
fn now_unix_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

fn jittered(delay: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return delay;
    }
    let factor = rand::thread_rng().gen_range((1.0 - jitter)..=(1.0 + jitter));
    delay.mul_f64(factor.max(0.0))
}
