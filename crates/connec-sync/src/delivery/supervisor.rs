//! Keeps one durable consumer and one worker per subscribing app, as the
//! Hub's directory says: created when an app has a webhook and subscribes to
//! something, filters changed when its shared entities change, stopped when
//! its webhook is disabled, removed when it no longer subscribes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use chrono::{DateTime, Utc};
use mno_events::consume::{self, DurableSpec, ReplayFrom};
use mno_events::directory::AppProfile;
use mno_events::streams::RECORDS;
use mno_events::subject::{RecordSubject, Token};
use tokio::sync::Mutex;

use super::dlq::{self, DlqError, StoredLetter};
use super::outcomes::{Recovered, Redriven, Since, SupervisorError};
use super::ownership::Ownership;
use super::remote;
use super::worker::{self, Command, Context, WorkerHandle};

/// Name of an app's durable consumer on RECORDS.
pub fn consumer_name(app_id: &str) -> String {
    format!("{CONSUMER_PREFIX}{app_id}")
}

pub const CONSUMER_PREFIX: &str = "delivery-";

/// How far back a new consumer starts, so that changes made while it was
/// being created (an install right after the app was set up) are not missed.
const NEW_CONSUMER_LOOKBACK: Duration = Duration::from_secs(30);

pub struct Supervisor {
    pub ctx: Arc<Context>,
    state: Mutex<State>,
    placement: Placement,
    /// To ask the app's owner when it is another process.
    client: async_nats::Client,
}

/// Where the apps' webhooks are sent from.
pub enum Placement {
    /// From this process, to the apps whose leases it holds.
    Here(Box<Ownership>),
    /// From other processes: redrives and recoveries are asked of the app's owner over NATS.
    Elsewhere,
}

#[derive(Default)]
struct State {
    workers: HashMap<String, WorkerHandle>,
    /// The filters each app's consumer was last set to (by this process, while it owns the app).
    filters: HashMap<String, Vec<String>>,
    /// The apps that receive webhooks, as of the last full sync.
    subscribed: HashSet<String>,
}

/// The last RECORDS sequence the app's consumer has passed (its ack floor:
/// everything up to it was delivered, dead-lettered or not the app's to get),
/// if it has a consumer.
async fn passed_by(
    stream: &async_nats::jetstream::stream::Stream<()>,
    app_id: &str,
) -> Option<u64> {
    let mut consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&consumer_name(app_id))
        .await
        .ok()?;
    Some(consumer.info().await.ok()?.ack_floor.stream_sequence)
}

fn unavailable(e: impl std::fmt::Display) -> SupervisorError {
    SupervisorError::Unavailable(format!(
        "the bus or the Hub did not answer ({e}); retry shortly"
    ))
}

impl Supervisor {
    pub fn new(ctx: Arc<Context>, placement: Placement, client: async_nats::Client) -> Self {
        Self {
            ctx,
            state: Mutex::new(State::default()),
            placement,
            client,
        }
    }

    /// Whether this process sends the app's webhooks now.
    pub fn delivers_to(&self, app_id: &str) -> bool {
        match &self.placement {
            Placement::Here(ownership) => ownership.holds(app_id),
            Placement::Elsewhere => false,
        }
    }

    /// Renew this process's leases, stop what it lost or holds beyond its
    /// share, and take apps that no process delivers to (see [`Ownership`]).
    pub async fn look(&self) {
        let Placement::Here(ownership) = &self.placement else {
            return;
        };
        let subscribed = self.state.lock().await.subscribed.clone();
        let look = ownership.look(&subscribed).await;
        for app in look.lost {
            let mut state = self.state.lock().await;
            stop_worker(&mut state, &app).await;
            state.filters.remove(&app);
        }
        for app in look.surplus {
            let mut state = self.state.lock().await;
            stop_worker(&mut state, &app).await;
            state.filters.remove(&app);
            ownership.release(&app).await;
            tracing::info!(app = %app, "delivery: handed the app over to share the work");
        }
        for app in look.unowned {
            if let Err(e) = self.sync_app(&app).await {
                tracing::debug!(app = %app, error = %e, "delivery: app not taken over yet");
            }
        }
    }

    /// Bring every app's consumer and worker in line with the directory.
    pub async fn sync_all(&self) -> Result<(), SupervisorError> {
        let apps = self.ctx.directory.apps().await.map_err(unavailable)?;
        let known: Vec<String> = {
            let state = self.state.lock().await;
            state.filters.keys().cloned().collect()
        };
        let mut subscribed = HashSet::new();
        for app in apps.iter().filter(|app| receives_webhooks(app)) {
            if self.installed(&app.app_id).await? {
                subscribed.insert(app.app_id.clone());
            }
        }
        if let Placement::Here(ownership) = &self.placement {
            ownership.reshare(subscribed.len());
        }
        self.state.lock().await.subscribed = subscribed;
        for app in &apps {
            if let Err(e) = self.apply(&app.app_id, Some(app.clone())).await {
                tracing::warn!(app = %app.app_id, error = %e, "delivery setup failed; retried on the next sync");
            }
        }
        for gone in known {
            if !apps.iter().any(|a| a.app_id == gone) {
                let _ = self.apply(&gone, None).await;
            }
        }
        Ok(())
    }

    /// Read one app from the directory and apply it.
    pub async fn sync_app(&self, app_id: &str) -> Result<(), SupervisorError> {
        let profile = self.ctx.directory.app(app_id).await.map_err(unavailable)?;
        self.apply(app_id, profile).await
    }

    /// Tell the app's worker that its installs changed.
    pub async fn installs_changed(&self, app_id: &str) {
        let state = self.state.lock().await;
        if let Some(worker) = state.workers.get(app_id) {
            let _ = worker.commands.send(Command::InstallsChanged);
        }
    }

    async fn apply(
        &self,
        app_id: &str,
        profile: Option<AppProfile>,
    ) -> Result<(), SupervisorError> {
        let Placement::Here(ownership) = &self.placement else {
            return Ok(());
        };
        // An app that no org installed with data sharing gets no consumer:
        // every consumer costs the bus on each write of every org, and apps
        // cost nothing to create. An install (a Hub event) brings it in; its
        // new consumer looks back far enough for the writes made meanwhile.
        let profile = match profile.filter(receives_webhooks) {
            Some(profile) if self.installed(app_id).await? => Some(profile),
            _ => None,
        };
        let mut state = self.state.lock().await;
        let Some(profile) = profile else {
            stop_worker(&mut state, app_id).await;
            self.delete_consumer(&mut state, app_id).await;
            ownership.release(app_id).await;
            state.subscribed.remove(app_id);
            return Ok(());
        };
        if state.subscribed.insert(app_id.to_owned()) {
            ownership.reshare(state.subscribed.len());
        }
        let filters = filters_of(&profile);
        // Only the app's owner touches its consumer and runs its worker.
        if !ownership.holds(app_id) {
            // Newly taken or not: what this process knew of the consumer is stale.
            state.filters.remove(app_id);
            if !ownership.try_take(app_id).await {
                stop_worker(&mut state, app_id).await;
                return Ok(());
            }
        }
        let consumer = self
            .ensure_consumer(&mut state, app_id, &filters, None)
            .await?;
        if profile.webhook_disabled {
            stop_worker(&mut state, app_id).await;
            return Ok(());
        }
        let profile = match state.workers.get(app_id) {
            Some(worker) if !worker.task.is_finished() => {
                let _ = worker.commands.send(Command::Profile(profile));
                return Ok(());
            }
            // The worker stopped on its own (a 410 disabled the webhook): the
            // profile may have been read before that; read it again now.
            Some(_) => match self.ctx.directory.app(app_id).await.map_err(unavailable)? {
                Some(fresh) if !fresh.webhook_disabled => fresh,
                _ => return Ok(()),
            },
            None => profile,
        };
        let handle = worker::spawn(self.ctx.clone(), profile, consumer);
        state.workers.insert(app_id.to_owned(), handle);
        Ok(())
    }

    /// Whether an org installed the app with data sharing on.
    async fn installed(&self, app_id: &str) -> Result<bool, SupervisorError> {
        Ok(self.sharing_since(app_id).await?.is_some())
    }

    /// When the app's earliest install with data sharing began sharing (Unix
    /// milliseconds); `None` when no org shares with it.
    async fn sharing_since(&self, app_id: &str) -> Result<Option<i64>, SupervisorError> {
        let installs = self
            .ctx
            .directory
            .installs_of_app(app_id)
            .await
            .map_err(unavailable)?;
        Ok(installs
            .iter()
            .filter(|install| install.data_sharing)
            .map(|install| install.sharing_since_ms)
            .min())
    }

    /// Where a brand-new consumer starts: [`NEW_CONSUMER_LOOKBACK`] back, but
    /// never before the app was shared with (changes made while it was
    /// installed nowhere are not its).
    async fn fresh_start(&self, app_id: &str) -> Result<DateTime<Utc>, SupervisorError> {
        let lookback = chrono::Duration::from_std(NEW_CONSUMER_LOOKBACK).expect("small duration");
        let shared_from = self
            .sharing_since(app_id)
            .await?
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or_default();
        Ok((Utc::now() - lookback).max(shared_from))
    }

    async fn ensure_consumer(
        &self,
        state: &mut State,
        app_id: &str,
        filters: &[String],
        start: Option<ReplayFrom>,
    ) -> Result<PullConsumer, SupervisorError> {
        let name = consumer_name(app_id);
        let start = match start {
            Some(start) => Some(start),
            None if !state.filters.contains_key(app_id) => {
                self.restart_point_of_an_earlier_run(&name).await
            }
            None => None,
        };
        let unchanged = start.is_none() && state.filters.get(app_id).is_some_and(|f| f == filters);
        if unchanged {
            let stream = self
                .ctx
                .js
                .get_stream_no_info(RECORDS)
                .await
                .map_err(unavailable)?;
            if let Ok(consumer) = stream
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&name)
                .await
            {
                return Ok(consumer);
            }
        }
        let start = match start {
            Some(start) => start,
            None => ReplayFrom::Time(self.fresh_start(app_id).await?),
        };
        let spec = DurableSpec {
            name,
            filters: filters.to_vec(),
            start,
            ack_wait: self.ctx.config.ack_wait,
            max_ack_pending: self.ctx.config.max_ack_pending,
            description: Some(format!("webhook delivery to app {app_id}")),
        };
        let consumer = consume::durable_pull(&self.ctx.js, RECORDS, &spec)
            .await
            .map_err(unavailable)?;
        state.filters.insert(app_id.to_owned(), filters.to_vec());
        Ok(consumer)
    }

    /// The first time this process sees an app, its consumer may hold changes
    /// an earlier run pulled but never acknowledged (it was killed).
    /// JetStream would send them again only when their ack wait runs out,
    /// after later changes of the same records: the order per record would
    /// break. Such a consumer is deleted, to be made again from its ack floor,
    /// so that they come first (the changes after them that were acknowledged
    /// come again too: delivery is at least once).
    async fn restart_point_of_an_earlier_run(&self, name: &str) -> Option<ReplayFrom> {
        let stream = self.ctx.js.get_stream_no_info(RECORDS).await.ok()?;
        let mut consumer = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(name)
            .await
            .ok()?;
        let info = consumer.info().await.ok()?;
        // With nothing ever acknowledged the floor says nothing about where the
        // consumer began (0 would replay the whole stream): leave it as it is.
        if info.num_ack_pending == 0 || info.ack_floor.stream_sequence == 0 {
            return None;
        }
        let from = info.ack_floor.stream_sequence + 1;
        tracing::info!(
            consumer = name,
            from,
            unacknowledged = info.num_ack_pending,
            "changes an earlier run took but did not deliver: sending them again first, in order"
        );
        stream.delete_consumer(name).await.ok()?;
        Some(ReplayFrom::Sequence(from))
    }

    async fn delete_consumer(&self, state: &mut State, app_id: &str) {
        if state.filters.remove(app_id).is_none() {
            // Not known in this process; it may still exist from an earlier run.
        }
        if let Ok(stream) = self.ctx.js.get_stream_no_info(RECORDS).await {
            let _ = stream.delete_consumer(&consumer_name(app_id)).await;
        }
    }

    /// Deliver a dead letter again through its app's worker; it leaves the
    /// DLQ once delivered (or is dead-lettered anew). A letter superseded by a
    /// later change of its record that the app's consumer has passed since
    /// is removed instead: sending it would take the app back to an older
    /// version (each change carries the whole record, so nothing is lost).
    pub async fn redrive(&self, app_id: &str, seq: u64) -> Result<Redriven, SupervisorError> {
        if !self.delivers_to(app_id) {
            return remote::redrive(&self.client, app_id, seq).await;
        }
        self.redrive_here(app_id, seq).await
    }

    /// Redrive through this process's worker of the app.
    pub async fn redrive_here(&self, app_id: &str, seq: u64) -> Result<Redriven, SupervisorError> {
        let stored = dlq::get(&self.ctx.js, seq).await?;
        if stored.letter.app_id != app_id {
            return Err(DlqError::NotFound(seq).into());
        }
        if let Some(by_version) = self.superseded_by(&stored).await? {
            dlq::remove(&self.ctx.js, seq).await?;
            tracing::info!(
                app = app_id,
                seq,
                by_version,
                "dead letter superseded; removed, not redriven"
            );
            return Ok(Redriven::Superseded { seq, by_version });
        }
        let state = self.state.lock().await;
        let worker = state
            .workers
            .get(app_id)
            .filter(|w| !w.task.is_finished())
            .ok_or_else(|| self.why_not_running(app_id))?;
        let _ = worker.commands.send(Command::Redrive(stored));
        Ok(Redriven::Sent { seq })
    }

    /// The version of a later change of the letter's record that the app's
    /// consumer has already passed (delivered, dead-lettered too, or the
    /// app's own write, never echoed to it), if there is one.
    async fn superseded_by(&self, stored: &StoredLetter) -> Result<Option<u64>, SupervisorError> {
        let letter = &stored.letter;
        if letter.record_seq == 0 {
            return Ok(None);
        }
        let Ok(subject) = RecordSubject::new(&letter.org, &letter.entity, &letter.record_id) else {
            return Ok(None);
        };
        let stream = self
            .ctx
            .js
            .get_stream_no_info(RECORDS)
            .await
            .map_err(unavailable)?;
        let last = match stream
            .direct_get_last_for_subject(subject.to_string())
            .await
        {
            Ok(last) => last,
            Err(_) => return Ok(None),
        };
        if last.sequence <= letter.record_seq {
            return Ok(None);
        }
        let Some(passed) = passed_by(&stream, &letter.app_id).await else {
            return Ok(None);
        };
        if last.sequence > passed {
            // Not yet delivered: it will follow this one, in order.
            return Ok(None);
        }
        Ok(mno_events::proto::RecordEvent::from_bytes(&last.payload)
            .ok()
            .map(|event| event.version))
    }

    fn why_not_running(&self, app_id: &str) -> SupervisorError {
        SupervisorError::NotSubscribed(app_id.to_owned())
    }

    /// Re-send everything of the app's subscriptions since a sequence or a time:
    /// its consumer is recreated from there (never past an event not yet delivered).
    pub async fn recover(&self, app_id: &str, since: Since) -> Result<Recovered, SupervisorError> {
        if !self.delivers_to(app_id) {
            self.check_recoverable(app_id).await?;
            return remote::recover(&self.client, app_id, since).await;
        }
        self.recover_here(app_id, since).await
    }

    /// The app exists, receives webhooks and they are enabled.
    async fn check_recoverable(&self, app_id: &str) -> Result<AppProfile, SupervisorError> {
        let profile = self
            .ctx
            .directory
            .app(app_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| SupervisorError::NoApp(app_id.to_owned()))?;
        if profile.webhook_url.is_none() || filters_of(&profile).is_empty() {
            return Err(SupervisorError::NotSubscribed(app_id.to_owned()));
        }
        if profile.webhook_disabled {
            return Err(SupervisorError::Disabled(app_id.to_owned()));
        }
        Ok(profile)
    }

    /// Recover from this process, which owns the app.
    pub async fn recover_here(
        &self,
        app_id: &str,
        since: Since,
    ) -> Result<Recovered, SupervisorError> {
        let profile = self.check_recoverable(app_id).await?;
        let filters = filters_of(&profile);
        let mut state = self.state.lock().await;
        stop_worker(&mut state, app_id).await;
        let stream = self
            .ctx
            .js
            .get_stream_no_info(RECORDS)
            .await
            .map_err(unavailable)?;
        let name = consumer_name(app_id);
        // Never start past an event the app has not acknowledged yet.
        let undelivered = passed_by(&stream, app_id).await.map(|floor| floor + 1);
        let start = match (since, undelivered) {
            (Since::Sequence(seq), Some(floor)) => ReplayFrom::Sequence(seq.max(1).min(floor)),
            (Since::Sequence(seq), None) => ReplayFrom::Sequence(seq.max(1)),
            (Since::Time(at), Some(floor)) => match stream.direct_get(floor).await {
                Ok(message) if message.time.timestamp_millis() < at.timestamp_millis() => {
                    ReplayFrom::Sequence(floor)
                }
                _ => ReplayFrom::Time(at),
            },
            (Since::Time(at), None) => ReplayFrom::Time(at),
        };
        let _ = stream.delete_consumer(&name).await;
        state.filters.remove(app_id);
        let consumer = self
            .ensure_consumer(&mut state, app_id, &filters, Some(start))
            .await?;
        let handle = worker::spawn(self.ctx.clone(), profile, consumer);
        state.workers.insert(app_id.to_owned(), handle);
        let (from_sequence, from_time) = match start {
            ReplayFrom::Sequence(seq) => (Some(seq), None),
            ReplayFrom::Time(at) => (None, Some(at)),
            _ => (None, None),
        };
        tracing::info!(app = %app_id, ?start, "recovery started");
        Ok(Recovered {
            app_id: app_id.to_owned(),
            from_sequence,
            from_time,
        })
    }

    /// Stop every worker, letting POSTs in flight finish.
    pub async fn stop_all(&self) {
        let mut state = self.state.lock().await;
        let apps: Vec<String> = state.workers.keys().cloned().collect();
        for app in apps {
            stop_worker(&mut state, &app).await;
        }
        if let Placement::Here(ownership) = &self.placement {
            ownership.release_all().await;
        }
    }
}

/// The app has a webhook and reads at least one entity.
fn receives_webhooks(profile: &AppProfile) -> bool {
    profile.webhook_url.is_some()
        && !filters_of(profile).is_empty()
        && Token::parse("app", &profile.app_id).is_ok()
}

/// `rec.*.<entity>.*` for each entity the app reads.
fn filters_of(profile: &AppProfile) -> Vec<String> {
    let mut filters: Vec<String> = profile
        .subscribed_entities()
        .filter_map(|e| Token::parse("entity", e).ok())
        .map(|e| RecordSubject::entity_all_orgs_filter(&e))
        .collect();
    filters.sort();
    filters.dedup();
    filters
}

async fn stop_worker(state: &mut State, app_id: &str) {
    if let Some(worker) = state.workers.remove(app_id) {
        let _ = worker.commands.send(Command::Stop);
        // POSTs in flight end within the request timeout.
        if tokio::time::timeout(Duration::from_secs(20), worker.task)
            .await
            .is_err()
        {
            tracing::warn!(app = %app_id, "delivery worker did not stop in time");
        }
    }
}
