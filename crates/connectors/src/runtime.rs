//! The runtime: for each configured install, pull outside changes into
//! Connec! (on a schedule and on demand) and push Connec! changes out (from
//! the org's change stream), one sync per install at a time, backing off
//! after failures.
//!
//! Per record it keeps what both sides looked like at the last sync (the
//! outside tag, the Connec! version). An outside change whose tag is the one
//! the runtime wrote is its own echo and is skipped; a record changed on both
//! sides since the last sync is a conflict, settled by [`winner`] and logged.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mno_events::directory::Directory;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::catalogue;
use crate::http_clients::HttpClients;
use crate::last_error::{self, Pass};
use crate::outside::{Outside, OutsideError, OutsideRecord};
use crate::record_api::{self, ApiFailure, AppCredentials, RecordApi, StreamedChange};
use crate::references;
use crate::sealed::Sealer;
use crate::store::{Counts, Direction, EntityRow, InstallRow, Prefer, RecordState, Store};

mod creating;
mod parked;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where the record API is reached (the platform's own edge).
    pub api_base: String,
    /// How often due installs are looked for.
    pub tick: Duration,
    /// The first delay after a failure; it doubles with each failure in a row.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Outside records written to Connec! between two progress updates.
    pub batch: usize,
}

/// The sealed part of an install: the outside API's credentials and, when
/// the install was given them, the connector app's own API key for the
/// record API. Without them the runtime uses the key and secret the app's
/// owner registered for the app ([`CredentialsSource::App`]).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SealedCredentials {
    pub outside: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppCredentials>,
}

/// Where an install's connector app credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsSource {
    /// Registered once by the app's owner (`PUT /hub/v1/apps/{app}/connector_credentials`).
    App,
    /// Given with the install's configuration (`app_credentials`).
    Install,
}

impl CredentialsSource {
    pub fn name(self) -> &'static str {
        match self {
            CredentialsSource::App => "app",
            CredentialsSource::Install => "install",
        }
    }
}

/// What to do when the record API no longer accepts the app's key and secret.
fn unauthorized_text(detail: &str, source: CredentialsSource, org: &str, app: &str) -> String {
    match source {
        CredentialsSource::App => format!(
            "{detail}; the app's owner registered these for every install of the app: if the app's secret was rotated, its owner must register the new key and secret (PUT /hub/v1/apps/{app}/connector_credentials), which every install then uses"
        ),
        CredentialsSource::Install => format!(
            "{detail}; these were given with this install (app_credentials): if the app's secret was rotated, configure the install again (PUT /hub/v1/orgs/{org}/installs/{app}/connector) without app_credentials, to use those the app's owner registers, or with the new ones"
        ),
    }
}

/// Why an on-demand sync did not run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("this app is not configured as a connector in this organisation")]
    NotConfigured,
    #[error("the outside API asked to slow down; retry after {0:?}")]
    RateLimited(Duration),
    #[error("{0}")]
    Failed(String),
}

/// How a sync step failed.
#[derive(Debug)]
enum Failure {
    /// The outside API as a whole: back off, keep the cursor.
    Outside(OutsideError),
    /// The platform could not serve the call: back off, keep the cursor.
    Connec(String),
    /// The record API refused the app's key and secret: back off, keep the cursor.
    Unauthorized(String),
    /// This record only: report it, go on with the others.
    Record(String),
    /// This record only, refused by Connec! for a reference that names no
    /// record yet: tried again once the sync pulled every entity.
    MissingReference(String),
    Store(sqlx::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Outside(e) => write!(f, "{e}"),
            Failure::Connec(e) | Failure::Unauthorized(e) => write!(f, "{e}"),
            Failure::Record(e) | Failure::MissingReference(e) => write!(f, "{e}"),
            Failure::Store(e) => write!(f, "the connectors' database failed: {e}"),
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Store(e)
    }
}

impl From<ApiFailure> for Failure {
    fn from(e: ApiFailure) -> Self {
        match e {
            ApiFailure::Refused {
                missing_reference: true,
                ..
            } => Failure::MissingReference(e.to_string()),
            ApiFailure::Refused { .. } => Failure::Record(e.to_string()),
            ApiFailure::Unavailable(_) => Failure::Connec(e.to_string()),
            ApiFailure::Unauthorized(_) => Failure::Unauthorized(e.to_string()),
        }
    }
}

impl From<OutsideError> for Failure {
    fn from(e: OutsideError) -> Self {
        if e.is_transient() {
            Failure::Outside(e)
        } else {
            Failure::Record(e.to_string())
        }
    }
}

/// One install, ready to sync: its connector and its record API client.
struct Install {
    org: String,
    app: String,
    prefer: Prefer,
    outside: Arc<dyn Outside>,
    api: RecordApi,
    /// Where `api`'s credentials come from (what to do on a 401).
    source: CredentialsSource,
    /// The entities whose outside changes flow into Connec! (a conflict's
    /// outside side may win only there).
    pulling: Vec<String>,
    /// The entities whose Connec! changes flow out (a reference to one of
    /// them gets an outside id once its record is pushed).
    pushing: Vec<String>,
}

impl Install {
    /// A failure in words, saying what to do when the app's credentials were refused.
    fn failure_text(&self, failure: &Failure) -> String {
        match failure {
            Failure::Unauthorized(detail) => {
                unauthorized_text(detail, self.source, &self.org, &self.app)
            }
            other => other.to_string(),
        }
    }
}

/// What the runtime holds in memory per install.
#[derive(Default)]
struct Handle {
    /// Held by whatever changes records of the install (a pull, or one pushed change).
    lock: tokio::sync::Mutex<()>,
    pulling: AtomicBool,
    last_attempt: Mutex<Option<Instant>>,
    /// Set by a 429: nothing is sent to the outside API before it.
    quiet_until: Mutex<Option<Instant>>,
    push: Mutex<Option<JoinHandle<()>>>,
}

type Key = (String, String);

pub struct Runtime {
    store: Store,
    sealer: Sealer,
    http: HttpClients,
    /// Which entities each org shares with the app now (it may narrow them).
    directory: Arc<dyn Directory>,
    config: RuntimeConfig,
    handles: Mutex<HashMap<Key, Arc<Handle>>>,
}

/// Which side of a conflict is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Connec,
    Outside,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Connec => "Connec!",
            Side::Outside => "the outside API",
        }
    }
}

/// The conflict rule: the install's preferred side, else the newest
/// `updated_at`. A side that does not say when it changed counts as changed
/// when the runtime saw it (now); a tie keeps Connec!'s.
pub fn winner(
    prefer: Prefer,
    connec_at: Option<DateTime<Utc>>,
    outside_at: Option<DateTime<Utc>>,
) -> Side {
    match prefer {
        Prefer::Connec => Side::Connec,
        Prefer::Outside => Side::Outside,
        Prefer::Newest => {
            let now = Utc::now();
            if outside_at.unwrap_or(now) > connec_at.unwrap_or(now) {
                Side::Outside
            } else {
                Side::Connec
            }
        }
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.pulled += other.pulled;
        self.pushed += other.pushed;
        self.conflicts += other.conflicts;
        self.rejected += other.rejected;
        self.deleted += other.deleted;
    }
}

fn pulled() -> Counts {
    Counts {
        pulled: 1,
        ..Counts::default()
    }
}

impl Runtime {
    pub fn new(
        store: Store,
        sealer: Sealer,
        http: HttpClients,
        directory: Arc<dyn Directory>,
        config: RuntimeConfig,
    ) -> Self {
        Runtime {
            store,
            sealer,
            http,
            directory,
            config,
            handles: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The client to outside APIs (checked against the platform's own network).
    pub fn outside_http(&self) -> &reqwest::Client {
        &self.http.outside
    }

    /// The client to this platform's record API.
    pub fn platform_http(&self) -> &reqwest::Client {
        &self.http.platform
    }

    pub fn api_base(&self) -> &str {
        &self.config.api_base
    }

    fn handle(&self, org: &str, app: &str) -> Arc<Handle> {
        self.handles
            .lock()
            .unwrap()
            .entry((org.to_owned(), app.to_owned()))
            .or_default()
            .clone()
    }

    /// Whether a pull of the install is running now.
    pub fn is_running(&self, org: &str, app: &str) -> bool {
        self.handle(org, app).pulling.load(Ordering::SeqCst)
    }

    /// Start the scheduler and the push of every configured install.
    pub async fn start(self: &Arc<Self>) -> anyhow::Result<JoinHandle<()>> {
        for row in self.store.installs().await? {
            self.start_push(&row.org, &row.app_id);
        }
        let runtime = self.clone();
        Ok(tokio::spawn(async move { runtime.schedule().await }))
    }

    /// An install was configured: (re)start pushing its Connec! changes; its
    /// scheduled pulls start one interval from now (`sync` pulls at once).
    pub fn configured(self: &Arc<Self>, org: &str, app: &str) {
        *self.handle(org, app).last_attempt.lock().unwrap() = Some(Instant::now());
        self.start_push(org, app);
    }

    /// (Re)start pushing an install's Connec! changes.
    fn start_push(self: &Arc<Self>, org: &str, app: &str) {
        let handle = self.handle(org, app);
        let runtime = self.clone();
        let (o, a) = (org.to_owned(), app.to_owned());
        let task = tokio::spawn(async move { runtime.push_loop(o, a).await });
        let old = handle.push.lock().unwrap().replace(task);
        if let Some(old) = old {
            old.abort();
        }
    }

    /// Stop an install's push (it was removed).
    pub fn stop(&self, org: &str, app: &str) {
        if let Some(handle) = self
            .handles
            .lock()
            .unwrap()
            .remove(&(org.to_owned(), app.to_owned()))
        {
            if let Some(task) = handle.push.lock().unwrap().take() {
                task.abort();
            }
        }
    }

    /// Stop every push task.
    pub fn shutdown(&self) {
        for (_, handle) in self.handles.lock().unwrap().drain() {
            if let Some(task) = handle.push.lock().unwrap().take() {
                task.abort();
            }
        }
    }

    /// Sync every install whose time has come, forever.
    async fn schedule(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.config.tick).await;
            let rows = match self.store.installs().await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list connector installs");
                    continue;
                }
            };
            for row in rows {
                if self.due(&row) {
                    let runtime = self.clone();
                    tokio::spawn(async move {
                        let _ = runtime.sync(&row.org, &row.app_id).await;
                    });
                }
            }
        }
    }

    fn due(&self, row: &InstallRow) -> bool {
        let handle = self.handle(&row.org, &row.app_id);
        if handle.pulling.load(Ordering::SeqCst) {
            return false;
        }
        if let Some(next) = row
            .next_attempt_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            return next <= Utc::now();
        }
        let interval = Duration::from_secs(row.interval_secs.max(1) as u64);
        let last = *handle.last_attempt.lock().unwrap();
        last.is_none_or(|at| at.elapsed() >= interval)
    }

    /// An install's sealed credentials, opened.
    pub fn sealed_credentials(&self, row: &InstallRow) -> Result<SealedCredentials, String> {
        let opened = self
            .sealer
            .open(&row.sealed_credentials)
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&opened)
            .map_err(|e| format!("the sealed credentials do not read: {e}"))
    }

    /// The credentials the app's owner registered for the app, opened.
    pub async fn app_credentials(&self, app: &str) -> Result<Option<AppCredentials>, String> {
        let Some((sealed, _)) = self
            .store
            .app_credentials(app)
            .await
            .map_err(|e| format!("the connectors' database failed: {e}"))?
        else {
            return Ok(None);
        };
        let opened = self.sealer.open(&sealed).map_err(|_| {
            format!("the app's registered credentials cannot be opened with this platform key (was MNO_SECRET_KEY changed?); its owner must register them again (PUT /hub/v1/apps/{app}/connector_credentials)")
        })?;
        serde_json::from_slice(&opened)
            .map(Some)
            .map_err(|e| format!("the app's registered credentials do not read: {e}"))
    }

    /// The credentials an install writes with, and where they come from.
    async fn credentials_of(
        &self,
        app: &str,
        sealed: &SealedCredentials,
    ) -> Result<(AppCredentials, CredentialsSource), String> {
        if let Some(own) = &sealed.app {
            return Ok((own.clone(), CredentialsSource::Install));
        }
        match self.app_credentials(app).await? {
            Some(registered) => Ok((registered, CredentialsSource::App)),
            None => Err(format!(
                "the connector app has no API credentials registered: its owner must register its key and secret (PUT /hub/v1/apps/{app}/connector_credentials)"
            )),
        }
    }

    /// The owner of `app` registered new credentials: every install using
    /// them resumes pushing with them now (a pull picks them up as it starts).
    pub async fn app_credentials_changed(self: &Arc<Self>, app: &str) {
        let Ok(rows) = self.store.installs().await else {
            return;
        };
        for row in rows.iter().filter(|r| r.app_id == app) {
            let uses_app_level = self
                .sealed_credentials(row)
                .is_ok_and(|sealed| sealed.app.is_none());
            if uses_app_level {
                self.start_push(&row.org, &row.app_id);
            }
        }
    }

    async fn install(&self, row: &InstallRow) -> Result<Install, String> {
        let sealed = self.sealed_credentials(row)?;
        let (credentials, source) = self.credentials_of(&row.app_id, &sealed).await?;
        let outside = catalogue::build(
            &row.kind,
            &row.app_id,
            self.http.outside.clone(),
            &row.settings,
            &sealed.outside,
        )
        .map_err(|e| format!("{}: {}", e.pointer, e.detail))?;
        Ok(Install {
            org: row.org.clone(),
            app: row.app_id.clone(),
            prefer: row.prefer,
            outside,
            pulling: Vec::new(),
            pushing: Vec::new(),
            api: RecordApi::new(
                self.http.platform.clone(),
                &self.config.api_base,
                &row.org,
                credentials,
            ),
            source,
        })
    }

    /// Pull the install's outside changes into Connec! now.
    pub async fn sync(&self, org: &str, app: &str) -> Result<(), SyncError> {
        let handle = self.handle(org, app);
        if let Some(until) = *handle.quiet_until.lock().unwrap() {
            if until > Instant::now() {
                return Err(SyncError::RateLimited(until - Instant::now()));
            }
        }
        // One sync per install at a time: a second waits for the first to end.
        let _one_at_a_time = handle.lock.lock().await;
        handle.pulling.store(true, Ordering::SeqCst);
        let result = async {
            *handle.last_attempt.lock().unwrap() = Some(Instant::now());
            let row = self
                .store
                .install(org, app)
                .await
                .map_err(|e| SyncError::Failed(e.to_string()))?
                .ok_or(SyncError::NotConfigured)?;
            let mut install = match self.install(&row).await {
                Ok(install) => install,
                Err(e) => {
                    self.fail(&row, &handle, &e, Pass::Install, None).await;
                    return Err(SyncError::Failed(e));
                }
            };
            let entities = self
                .store
                .entities(org, app)
                .await
                .map_err(|e| SyncError::Failed(e.to_string()))?;
            let entities = self
                .shared_now(org, app, entities)
                .await
                .map_err(SyncError::Failed)?;
            install.pushing = entities
                .iter()
                .filter(|e| e.direction.pushes())
                .map(|e| e.entity.clone())
                .collect();
            // The entity being pulled, so that a failure names its pass.
            let mut at: Option<String> = None;
            let pulled = self.pull_all(&install, &entities, &mut at).await;
            // A pull may have mapped what held records were waiting for.
            let pulled = match pulled {
                Ok(problems) => self
                    .push_held(&install)
                    .await
                    .map(|()| problems)
                    .map_err(|failure| (Pass::Push(None), failure)),
                Err(failure) => Err((Pass::Pull(at.as_deref()), failure)),
            };
            match pulled {
                Ok(problems) => {
                    let _ = self.store.mark_success(org, app).await;
                    // A problem still there is noted again rather than resolved.
                    if problems.is_empty() {
                        let _ = last_error::resolve(&self.store, org, app, Pass::Pull(None)).await;
                    } else {
                        let scope = Pass::Pull(None).scope();
                        let _ = self
                            .store
                            .note_error(org, app, &problems.join("; "), &scope)
                            .await;
                    }
                    Ok(())
                }
                Err((pass, failure)) => {
                    let retry_after = match &failure {
                        Failure::Outside(OutsideError::RateLimited(d)) => Some(*d),
                        _ => None,
                    };
                    let text = install.failure_text(&failure);
                    self.fail(&row, &handle, &text, pass, retry_after).await;
                    Err(SyncError::Failed(text))
                }
            }
        }
        .await;
        handle.pulling.store(false, Ordering::SeqCst);
        result
    }

    /// The install's entities that the org shares with the app now: an org
    /// may narrow its sharing to some entities (or turn it off), and the
    /// record API would refuse the others; they wait until shared again.
    async fn shared_now(
        &self,
        org: &str,
        app: &str,
        rows: Vec<EntityRow>,
    ) -> Result<Vec<EntityRow>, String> {
        let installs = self
            .directory
            .installs_of_app(app)
            .await
            .map_err(|e| e.to_string())?;
        let Some(install) = installs.iter().find(|i| i.org == org) else {
            return Ok(Vec::new());
        };
        Ok(rows
            .into_iter()
            .filter(|row| install.shares(&row.entity))
            .collect())
    }

    /// Record a failure and answer how long to wait before the next attempt.
    async fn fail(
        &self,
        row: &InstallRow,
        handle: &Handle,
        error: &str,
        pass: Pass<'_>,
        retry_after: Option<Duration>,
    ) -> Duration {
        let failures = (row.failures + 1).clamp(1, 20) as u32;
        let mut delay = self
            .config
            .backoff_base
            .saturating_mul(2u32.saturating_pow(failures - 1))
            .min(self.config.backoff_max);
        if let Some(wait) = retry_after {
            delay = delay.max(wait);
            *handle.quiet_until.lock().unwrap() = Some(Instant::now() + wait);
        }
        let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        tracing::warn!(org = %row.org, app = %row.app_id, %error, ?delay, "connector sync failed; backing off");
        if let Err(e) = self
            .store
            .mark_failure(&row.org, &row.app_id, error, &pass.scope(), next)
            .await
        {
            tracing::warn!(error = %e, "cannot record the connector failure");
        }
        delay
    }

    /// Pull every entity that pulls, those others reference first. A record
    /// Connec! refuses for a reference to no record (yet) is tried again
    /// once every entity was pulled; its entity's cursor stays before it
    /// while it is still refused. Answers the problems of a sync that
    /// otherwise succeeded (shown as its last error).
    async fn pull_all(
        &self,
        install: &Install,
        entities: &[EntityRow],
        at: &mut Option<String>,
    ) -> Result<Vec<String>, Failure> {
        let (org, app) = (install.org.as_str(), install.app.as_str());
        let mut problems = Vec::new();
        // Records refused for a missing reference before: counted or parked.
        let counted: HashSet<(String, String)> = self
            .store
            .parked(org, app)
            .await?
            .into_iter()
            .map(|p| (p.entity, p.record))
            .collect();
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let names: Vec<String> = entities
            .iter()
            .filter(|e| e.direction.pulls())
            .map(|e| e.entity.clone())
            .collect();
        let mut waiting: Vec<(&EntityRow, OutsideRecord)> = Vec::new();
        let mut cursors: Vec<(&str, String)> = Vec::new();
        for name in crate::pull_order::referenced_first(names) {
            let Some(entity) = entities.iter().find(|e| e.entity == name) else {
                continue;
            };
            let name = entity.entity.as_str();
            *at = Some(name.to_owned());
            let pulled = install
                .outside
                .pull(name, entity.cursor.as_deref())
                .await
                .map_err(Failure::Outside)?;
            for note in &pulled.skipped {
                tracing::warn!(org, app, entity = name, %note, "outside records skipped");
                self.store.log(org, app, name, "skipped", "", note).await?;
                problems.push(format!("{name}: {note}"));
            }
            // Records that do not fit the mapping: refused by name, like those Connec! refuses.
            let mut counts = Counts::default();
            for (id, why) in &pulled.refused {
                let outcome = Err(Failure::Record(format!(
                    "the record does not fit the mapping: {why}"
                )));
                self.tally(install, name, id, outcome, &mut counts).await?;
            }
            self.store.add_counts(org, app, name, counts).await?;
            // Progress is recorded per batch, so a long first sync shows its counts as it goes.
            for batch in pulled.changed.chunks(self.config.batch.max(1)) {
                let mut counts = Counts::default();
                for record in batch {
                    let outcome = self
                        .apply_outside(install, entity.direction, record, name, cutoff(entity))
                        .await;
                    let key = (name.to_owned(), record.id.clone());
                    if counted.contains(&key) {
                        if outcome.is_ok() {
                            self.store.unpark(org, app, name, &record.id).await?;
                        }
                        seen.insert(key);
                    }
                    if let Err(Failure::MissingReference(_)) = outcome {
                        waiting.push((entity, record.clone()));
                        continue;
                    }
                    self.tally(install, name, &record.id, outcome, &mut counts)
                        .await?;
                }
                self.store.add_counts(org, app, name, counts).await?;
            }
            let mut deleted = pulled.deleted.clone();
            if pulled.complete {
                let refused = pulled.refused.iter().map(|(id, _)| id.as_str());
                let listed: HashSet<&str> = pulled
                    .changed
                    .iter()
                    .map(|r| r.id.as_str())
                    .chain(refused)
                    .collect();
                let known = self.store.known_ids(org, app, name).await?;
                let mut judged = crate::absences::judge(name, known, &listed);
                if !judged.apply.is_empty() {
                    // A listing that dropped a page once (a glitch of the outside
                    // API) must not delete: only what a second listing lacks too goes.
                    let again = install
                        .outside
                        .pull(name, entity.cursor.as_deref())
                        .await
                        .map_err(Failure::Outside)?;
                    let refused = again.refused.iter().map(|(id, _)| id.as_str());
                    let relisted: HashSet<&str> = again
                        .changed
                        .iter()
                        .map(|r| r.id.as_str())
                        .chain(refused)
                        .collect();
                    if again.complete {
                        judged.apply.retain(|id| !relisted.contains(id.as_str()));
                    } else {
                        judged.withheld = Some(format!(
                            "{name}: {} record(s) missing from the full listing were kept: the listing taken again to confirm it was not complete",
                            judged.apply.len()
                        ));
                        judged.apply.clear();
                    }
                }
                if let Some(why) = judged.withheld {
                    tracing::warn!(org, app, entity = name, %why, "deletions withheld");
                    self.store.log(org, app, name, "withheld", "", &why).await?;
                    problems.push(why);
                }
                deleted.extend(judged.apply);
            }
            let mut counts = Counts::default();
            for id in &deleted {
                let outcome = self.apply_outside_delete(install, name, id).await;
                self.tally(install, name, id, outcome, &mut counts).await?;
            }
            self.store.add_counts(org, app, name, counts).await?;
            if let Some(cursor) = pulled.cursor {
                if waiting.iter().any(|(e, _)| e.entity == name) {
                    cursors.push((name, cursor));
                } else {
                    self.store.set_cursor(org, app, name, Some(&cursor)).await?;
                }
            }
            last_error::resolve(&self.store, org, app, Pass::Pull(Some(name))).await?;
        }
        // Every entity is in: a reference may name a record pulled after its own.
        let still_waiting = self
            .pull_waiting(install, &waiting, at, &mut problems)
            .await?;
        *at = None;
        self.retry_parked(install, entities, &seen).await?;
        for (name, cursor) in cursors {
            if still_waiting.contains(name) {
                problems.push(format!(
                    "{name}: records whose reference names no record of this organisation are tried again at the next sync (the cursor stays before them)"
                ));
            } else {
                self.store.set_cursor(org, app, name, Some(&cursor)).await?;
            }
        }
        Ok(problems)
    }

    /// Add one record's outcome to `counts`; a refused record is logged and
    /// counted, anything else that failed ends the sync.
    async fn tally(
        &self,
        install: &Install,
        entity: &str,
        record: &str,
        outcome: Result<Counts, Failure>,
        counts: &mut Counts,
    ) -> Result<(), Failure> {
        match outcome {
            Ok(c) => *counts += c,
            Err(Failure::Record(detail) | Failure::MissingReference(detail)) => {
                tracing::info!(org = %install.org, app = %install.app, entity, record, %detail, "record refused");
                self.store
                    .log(
                        &install.org,
                        &install.app,
                        entity,
                        "rejected",
                        record,
                        &detail,
                    )
                    .await?;
                counts.rejected += 1;
            }
            Err(other) => {
                self.store
                    .add_counts(&install.org, &install.app, entity, *counts)
                    .await?;
                *counts = Counts::default();
                return Err(other);
            }
        }
        Ok(())
    }

    async fn conflict(
        &self,
        install: &Install,
        entity: &str,
        record: &str,
        detail: String,
    ) -> Result<(), Failure> {
        tracing::info!(org = %install.org, app = %install.app, entity, record, %detail, "conflict settled");
        self.store
            .log(
                &install.org,
                &install.app,
                entity,
                "conflict",
                record,
                &detail,
            )
            .await?;
        Ok(())
    }

    /// An outside record that changed: into Connec!, unless it is the
    /// runtime's own echo or older than the cut-off.
    async fn apply_outside(
        &self,
        install: &Install,
        direction: Direction,
        record: &OutsideRecord,
        entity: &str,
        cutoff: Option<DateTime<Utc>>,
    ) -> Result<Counts, Failure> {
        let (org, app) = (&install.org, &install.app);
        let state = self
            .store
            .record_state(org, app, entity, &record.id)
            .await?;
        if state.as_ref().is_some_and(|s| s.outside_tag == record.tag) {
            return Ok(Counts::default());
        }
        if state.is_none() && cutoff.is_some_and(|c| record.updated_at.is_some_and(|at| at < c)) {
            return Ok(Counts::default());
        }
        let mut counts = Counts::default();
        match install.api.get(entity, &record.id).await? {
            None => {
                if state.is_some() {
                    // Deleted in Connec! since the last sync, edited outside.
                    counts.conflicts += 1;
                    if install.prefer == Prefer::Connec {
                        install
                            .outside
                            .delete(entity, &record.id, Some(&record.tag))
                            .await?;
                        self.store
                            .forget_state(org, app, entity, &record.id)
                            .await?;
                        self.conflict(install, entity, &record.id, "deleted in Connec! and edited outside; the install prefers Connec!: deleted outside too".into()).await?;
                        return Ok(counts);
                    }
                    self.conflict(install, entity, &record.id, "deleted in Connec! and edited outside; the edit is kept: the record is created again".into()).await?;
                }
                let created = install
                    .api
                    .create(entity, &record.id, &record.fields)
                    .await?;
                self.save(install, entity, &record.id, &record.tag, created.version)
                    .await?;
                counts += pulled();
            }
            Some(current) => {
                let both = state
                    .as_ref()
                    .is_some_and(|s| current.version > s.connec_version);
                if both {
                    counts.conflicts += 1;
                    let side = winner(install.prefer, current.updated_at, record.updated_at);
                    self.conflict(
                        install,
                        entity,
                        &record.id,
                        format!(
                            "changed on both sides since the last sync (Connec! at {}, outside at {}); {} kept",
                            when(current.updated_at),
                            when(record.updated_at),
                            side.name()
                        ),
                    )
                    .await?;
                    if side == Side::Connec {
                        // Connec!'s version goes out only where this entity pushes;
                        // otherwise the outside edit is passed over.
                        let tag = if direction.pushes() {
                            install
                                .outside
                                .write(entity, Some(&record.id), Some(&record.tag), &current.fields)
                                .await?
                                .1
                        } else {
                            record.tag.clone()
                        };
                        self.save(install, entity, &record.id, &tag, current.version)
                            .await?;
                        return Ok(counts);
                    }
                }
                let mut fields = with_cleared(install.outside.as_ref(), entity, &record.fields);
                references::keep_unsent(
                    &mut fields,
                    &install.outside.reference_fields(entity),
                    &current.fields,
                    app,
                );
                let updated = install
                    .api
                    .update(entity, &record.id, current.version, &fields)
                    .await?;
                self.save(install, entity, &record.id, &record.tag, updated.version)
                    .await?;
                counts += pulled();
            }
        }
        Ok(counts)
    }

    /// An outside record that is gone: deleted in Connec! too, unless
    /// Connec! changed it since and the install prefers Connec!.
    async fn apply_outside_delete(
        &self,
        install: &Install,
        entity: &str,
        id: &str,
    ) -> Result<Counts, Failure> {
        let (org, app) = (&install.org, &install.app);
        let Some(state) = self.store.record_state(org, app, entity, id).await? else {
            return Ok(Counts::default());
        };
        let mut counts = Counts::default();
        if let Some(current) = install.api.get(entity, id).await? {
            if current.version > state.connec_version && install.prefer == Prefer::Connec {
                counts.conflicts += 1;
                self.conflict(install, entity, id, "deleted outside and edited in Connec!; the install prefers Connec!: kept in Connec!".into()).await?;
            } else {
                install.api.delete(entity, id).await?;
                counts.deleted += 1;
                tracing::info!(org = %org, app = %app, entity, record = id, "deleted in Connec!: gone outside");
                self.store
                    .log(
                        org,
                        app,
                        entity,
                        "deleted",
                        id,
                        "gone from the outside API: deleted in Connec!",
                    )
                    .await?;
            }
        }
        self.store.forget_state(org, app, entity, id).await?;
        Ok(counts)
    }

    async fn save(
        &self,
        install: &Install,
        entity: &str,
        id: &str,
        tag: &str,
        version: i64,
    ) -> Result<(), Failure> {
        let state = RecordState {
            outside_tag: tag.to_owned(),
            connec_version: version,
        };
        self.store
            .save_state(&install.org, &install.app, entity, id, &state)
            .await?;
        Ok(())
    }

    /// Follow the org's Connec! changes and write them to the outside API,
    /// resuming after the last one pushed; on failure, back off and resume.
    async fn push_loop(self: Arc<Self>, org: String, app: String) {
        let handle = self.handle(&org, &app);
        loop {
            let row = match self.store.install(&org, &app).await {
                Ok(Some(row)) => row,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the connector install");
                    tokio::time::sleep(self.config.backoff_base).await;
                    continue;
                }
            };
            let rows = self.store.entities(&org, &app).await.unwrap_or_default();
            if !rows.iter().any(|e| e.direction.pushes()) {
                return;
            }
            let rows = match self.shared_now(&org, &app, rows).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read what the org shares with the connector app");
                    tokio::time::sleep(self.config.backoff_base).await;
                    continue;
                }
            };
            let named = |flows: fn(Direction) -> bool| -> Vec<String> {
                rows.iter()
                    .filter(|e| flows(e.direction))
                    .map(|e| e.entity.clone())
                    .collect()
            };
            let entities = named(Direction::pushes);
            if entities.is_empty() {
                // Every entity it pushes is narrowed out, for now: look again later.
                tokio::time::sleep(self.config.tick).await;
                continue;
            }
            let outcome = match self.install(&row).await {
                Ok(mut install) => {
                    install.pulling = named(Direction::pulls);
                    install.pushing = entities.clone();
                    let mut at: Option<String> = None;
                    self.push_from(&handle, &install, &entities, row.push_cursor, &mut at)
                        .await
                        .map_err(|failure| (install.failure_text(&failure), failure, at))
                }
                Err(e) => Err((e.clone(), Failure::Connec(e), Some(String::new()))),
            };
            let pause = match outcome {
                Ok(()) => self.config.tick,
                Err((text, failure, at)) => {
                    let retry_after = match &failure {
                        Failure::Outside(OutsideError::RateLimited(d)) => Some(*d),
                        _ => None,
                    };
                    // An empty name: building the install failed, not a push.
                    let pass = match at.as_deref() {
                        Some("") => Pass::Install,
                        entity => Pass::Push(entity),
                    };
                    self.fail(&row, &handle, &text, pass, retry_after).await
                }
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// Push changes from the stream until it ends or something fails.
    async fn push_from(
        &self,
        handle: &Handle,
        install: &Install,
        entities: &[String],
        cursor: i64,
        at: &mut Option<String>,
    ) -> Result<(), Failure> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<StreamedChange>(64);
        let api = install.api.clone();
        let wanted = entities.to_vec();
        let reader =
            tokio::spawn(async move { api.follow(&wanted, cursor.max(0) as u64, tx).await });
        let mut outcome = Ok(());
        while let Some(change) = rx.recv().await {
            if let Some(until) = *handle.quiet_until.lock().unwrap() {
                if until > Instant::now() {
                    outcome = Err(Failure::Outside(OutsideError::RateLimited(
                        until - Instant::now(),
                    )));
                    break;
                }
            }
            let _one_at_a_time = handle.lock.lock().await;
            *at = Some(change.entity.clone());
            let id = record_api::global_id(&change.record).unwrap_or_default();
            let result = self.push_change(install, &change).await;
            let mut counts = Counts::default();
            if let Err(failure) = self
                .tally(install, &change.entity, &id, result, &mut counts)
                .await
            {
                outcome = Err(failure);
                break;
            }
            self.store
                .add_counts(&install.org, &install.app, &change.entity, counts)
                .await?;
            self.store
                .set_push_cursor(&install.org, &install.app, change.seq as i64)
                .await?;
            let pass = Pass::Push(Some(change.entity.as_str()));
            last_error::resolve(&self.store, &install.org, &install.app, pass).await?;
            // A record pushed may be the one a held record references.
            if counts.pushed > 0 {
                if let Err(failure) = self.push_held(install).await {
                    outcome = Err(failure);
                    break;
                }
            }
        }
        if outcome.is_err() {
            // The reader may be waiting for the stream's next event: stop it now.
            reader.abort();
            return outcome;
        }
        *at = None;
        // The channel closed: the reader ended, with the stream.
        match reader.await {
            Ok(Err(e)) => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// One Connec! change (in the connector app's view) to the outside API.
    async fn push_change(
        &self,
        install: &Install,
        change: &StreamedChange,
    ) -> Result<Counts, Failure> {
        let (org, app) = (&install.org, &install.app);
        let entity = change.entity.as_str();
        let record = &change.record;
        let version = record["version"].as_i64().unwrap_or(0);
        let local = record_api::local_id(record, app);
        let pushed = Counts {
            pushed: 1,
            ..Counts::default()
        };
        match record["op"].as_str().unwrap_or("") {
            "deleted" => {
                let Some(local) = local else {
                    return Ok(Counts::default());
                };
                let state = self.store.record_state(org, app, entity, &local).await?;
                let tag = state.as_ref().map(|s| s.outside_tag.as_str());
                match install.outside.delete(entity, &local, tag).await {
                    Ok(()) => {}
                    Err(OutsideError::Stale) if install.prefer == Prefer::Outside => {
                        // The next pull brings the outside record back into Connec!.
                        self.store.forget_state(org, app, entity, &local).await?;
                        self.conflict(install, entity, &local, "deleted in Connec! and edited outside; the install prefers the outside API: kept there".into()).await?;
                        return Ok(Counts {
                            conflicts: 1,
                            ..Counts::default()
                        });
                    }
                    Err(OutsideError::Stale) => {
                        self.conflict(
                            install,
                            entity,
                            &local,
                            "deleted in Connec! and edited outside; the delete is kept".into(),
                        )
                        .await?;
                        install.outside.delete(entity, &local, None).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
                self.store.forget_state(org, app, entity, &local).await?;
                Ok(pushed)
            }
            "created" | "updated" | "merged" => {
                let Some(record) = self.ready_to_push(install, change).await? else {
                    return Ok(Counts::default());
                };
                let record = &record;
                let Some(local) = local else {
                    let global = record_api::global_id(record)
                        .ok_or_else(|| Failure::Record("a change without an id".into()))?;
                    self.create_outside(install, entity, &global, record, version)
                        .await?;
                    return Ok(pushed);
                };
                let state = self.store.record_state(org, app, entity, &local).await?;
                if state.as_ref().is_some_and(|s| s.connec_version >= version) {
                    return Ok(Counts::default());
                }
                let tag = state.as_ref().map(|s| s.outside_tag.as_str());
                match install
                    .outside
                    .write(entity, Some(&local), tag, record)
                    .await
                {
                    Ok((_, tag)) => {
                        self.save(install, entity, &local, &tag, version).await?;
                        Ok(pushed)
                    }
                    Err(OutsideError::Stale) => {
                        self.settle_push_conflict(install, change, &local, version)
                            .await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            _ => Ok(Counts::default()),
        }
    }

    /// The record to push for a change, or `None` when it is held: a reference
    /// of it names a record of a pushed entity that the outside API has no
    /// id for yet (created just before, its push not mapped when the stream
    /// rendered this change). Sent without it, the outside record would lose
    /// the reference, and a later pull would clear it in Connec!.
    async fn ready_to_push(
        &self,
        install: &Install,
        change: &StreamedChange,
    ) -> Result<Option<Value>, Failure> {
        let entity = change.entity.as_str();
        let fields = install.outside.reference_fields(entity);
        let blocking = |record: &Value| -> Vec<(String, String)> {
            references::unnamed(entity, &fields, record, &install.app)
                .into_iter()
                .filter(|(_, target)| install.pushing.contains(target))
                .collect()
        };
        if blocking(&change.record).is_empty() {
            return Ok(Some(change.record.clone()));
        }
        // Read it again: the referenced record may have been mapped since.
        let global = record_api::global_id(&change.record)
            .ok_or_else(|| Failure::Record("a change without an id".into()))?;
        let Some(fresh) = install.api.get(entity, &global).await? else {
            return Ok(None); // Deleted since: its delete comes later in the stream.
        };
        let waiting_for = blocking(&fresh.fields);
        if waiting_for.is_empty() {
            let mut record = fresh.fields;
            record["op"] = change.record["op"].clone();
            return Ok(Some(record));
        }
        let names: Vec<String> = waiting_for
            .iter()
            .map(|(field, target)| format!("{field} ({target})"))
            .collect();
        let detail = format!(
            "held back from the outside API: {} names a record it has no id for yet; pushed once that record is",
            names.join(", ")
        );
        tracing::info!(org = %install.org, app = %install.app, entity, record = %global, %detail, "record held");
        self.store
            .hold(&install.org, &install.app, entity, &global)
            .await?;
        self.store
            .log(&install.org, &install.app, entity, "held", &global, &detail)
            .await?;
        Ok(None)
    }

    /// Push the held records whose references the outside API can now name.
    async fn push_held(&self, install: &Install) -> Result<(), Failure> {
        let (org, app) = (install.org.as_str(), install.app.as_str());
        for (entity, global) in self.store.held(org, app).await? {
            if !install.pushing.contains(&entity) {
                continue;
            }
            let Some(current) = install.api.get(&entity, &global).await? else {
                self.store.release(org, app, &entity, &global).await?;
                continue;
            };
            let fields = install.outside.reference_fields(&entity);
            let ready = references::unnamed(&entity, &fields, &current.fields, app)
                .iter()
                .all(|(_, target)| !install.pushing.contains(target));
            if !ready {
                continue;
            }
            let mut record = current.fields;
            record["op"] = Value::String("updated".into());
            let change = StreamedChange {
                seq: 0,
                entity: entity.clone(),
                record,
            };
            let result = self.push_change(install, &change).await;
            let mut counts = Counts::default();
            self.tally(install, &entity, &global, result, &mut counts)
                .await?;
            self.store.add_counts(org, app, &entity, counts).await?;
            self.store.release(org, app, &entity, &global).await?;
        }
        Ok(())
    }

    /// A Connec! change whose outside record changed too since the last sync.
    async fn settle_push_conflict(
        &self,
        install: &Install,
        change: &StreamedChange,
        local: &str,
        version: i64,
    ) -> Result<Counts, Failure> {
        let entity = change.entity.as_str();
        let record = &change.record;
        let connec_at = record["updated_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let outside = install.outside.fetch(entity, local).await?;
        let side = match &outside {
            Some(o) if install.pulling.iter().any(|e| e == entity) => {
                winner(install.prefer, connec_at, o.updated_at)
            }
            // Outside changes of this entity do not flow into Connec!: its version goes out.
            _ => Side::Connec,
        };
        self.conflict(
            install,
            entity,
            local,
            format!(
                "changed on both sides since the last sync (Connec! at {}, outside at {}); {} kept",
                when(connec_at),
                when(outside.as_ref().and_then(|o| o.updated_at)),
                side.name()
            ),
        )
        .await?;
        let counts = Counts {
            conflicts: 1,
            ..Counts::default()
        };
        match (side, outside) {
            (Side::Outside, Some(o)) => {
                let mut fields = with_cleared(install.outside.as_ref(), entity, &o.fields);
                references::keep_unsent(
                    &mut fields,
                    &install.outside.reference_fields(entity),
                    record,
                    &install.app,
                );
                let updated = install.api.update(entity, local, version, &fields).await?;
                self.save(install, entity, local, &o.tag, updated.version)
                    .await?;
            }
            (_, o) => {
                let tag = o.as_ref().map(|o| o.tag.as_str());
                let (_, new_tag) = install
                    .outside
                    .write(entity, Some(local), tag, record)
                    .await?;
                self.save(install, entity, local, &new_tag, version).await?;
            }
        }
        Ok(counts)
    }
}

/// The outside record's fields, with every mapped field it lacks set to
/// `null` (so a value removed outside is removed in Connec! too).
fn with_cleared(outside: &dyn Outside, entity: &str, fields: &Value) -> Value {
    let mut out = fields.clone();
    if let Value::Object(map) = &mut out {
        for field in outside.mapped_fields(entity) {
            map.entry(field).or_insert(Value::Null);
        }
    }
    out
}

/// An entity's cut-off: outside records last changed before it are not imported.
fn cutoff(entity: &EntityRow) -> Option<DateTime<Utc>> {
    entity
        .cutoff
        .as_deref()
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
        .map(|c| c.with_timezone(&Utc))
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(crate::store::time_text)
        .unwrap_or_else(|| "an unknown time".into())
}
