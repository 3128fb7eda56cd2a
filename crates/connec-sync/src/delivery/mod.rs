//! Real-time fan-out of record changes to the apps that subscribe to them.
//!
//! - [`supervisor`]: one durable consumer and one worker per subscribing app, kept in line with the Hub.
//! - [`worker`]: reads an app's consumer, filters, batches, POSTs, retries, dead-letters.
//! - [`lanes`]: per-record order (a failing record holds back only its own later events).
//! - [`view`]: a record in the receiving app's ids.
//! - [`witness`]: an app's ids of the records its worker saw created, known without the id map.
//! - [`payload`]: the body and webhook-id of a POST, and id_map answers.
//! - [`sign`], [`send`], [`ssrf`]: the webhook client (signatures, the POST, where webhooks may go),
//!   from `mno_events::webhook`, which Impac!'s alerts and the Hub's URL checks share.
//! - [`dlq`]: dead letters. [`log`]: recent attempts.
//! - HTTP: [`api`] (the log, dead letters, redrive) and [`sse`] (the change stream), sharing
//!   [`http_state`]; [`open_streams`] counts each caller's streams; [`auth`] decides whose
//!   deliveries a caller may see.
//! - [`hub_watch`]: reacting to Hub events (installs, app changes, rotations).
//! - [`ownership`]: which process delivers to each app (leases on the bus, a fair share each).
//! - [`remote`]: redrives and recoveries asked of the app's owner over NATS; [`responder`]: the owner's answers.
//! - [`outcomes`]: what a redrive or a recovery comes to, and why one is refused.

pub mod api;
pub mod auth;
pub mod config;
pub mod dlq;
pub mod http_state;
pub mod hub_watch;
pub mod lanes;
pub mod log;
pub mod open_streams;
pub mod outcomes;
pub mod ownership;
pub mod payload;
pub mod remote;
pub mod responder;
pub mod sse;
pub mod supervisor;
pub mod view;
pub mod witness;
pub mod worker;

// The webhook client lives in `events` (Impac!'s alerts and the Hub use it too).
pub use mno_events::webhook::{send, sign, ssrf};

use std::sync::Arc;

use mno_events::bus::Bus;
use mno_events::directory::Directory;
use mno_events::idm::Idm;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::DeliveryConfig;
pub use outcomes::Since;
pub use supervisor::{consumer_name, Placement, Supervisor, CONSUMER_PREFIX};
pub use view::{LocalIds, ReferenceFields};

use view::{GuessedReferences, LearnedIds};
use worker::Context;

/// NATS request-reply subject for redrives asked from outside the process (`mno dlq redrive`).
/// Request: `{"app": "<app id>", "seq": <DLQ sequence>}`; reply: `{"redriven": [seq]}` or `{"error": "..."}`.
pub const REDRIVE_SUBJECT: &str = "mno.delivery.v1.redrive";

/// What delivery needs from Connec! and the process.
pub struct DeliveryDeps {
    pub bus: Bus,
    pub idm: Arc<dyn Idm>,
    pub directory: Arc<dyn Directory>,
    pub config: DeliveryConfig,
    /// Apps' local ids (Connec!'s id map); `None`: only ids learned from the stream.
    pub ids: Option<Arc<dyn LocalIds>>,
    /// Reference fields per entity (Connec!'s catalogue); `None`: guessed from `*_id` names.
    pub refs: Option<Arc<dyn ReferenceFields>>,
    /// Where the delivery log is kept; `None`: in memory.
    pub db: Option<sqlx::AnyPool>,
    /// Deliver from this process, to its share of the apps under these
    /// leases; `None`: another process delivers (this one serves the API).
    pub ownership: Option<mno_events::lease::Leases>,
}

/// Running delivery.
pub struct Delivery {
    supervisor: Arc<Supervisor>,
    idm: Arc<dyn Idm>,
    sse_streams: Arc<open_streams::OpenStreams>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Local ids from the stream alone.
struct LearnedOnly(Arc<LearnedIds>);

#[async_trait::async_trait]
impl LocalIds for LearnedOnly {
    async fn local_for_global(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global: &str,
    ) -> Option<String> {
        self.0.get(org, app, entity, global)
    }
    async fn record_mapping(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global: &str,
        local: &str,
    ) -> Result<(), String> {
        self.0.insert(org, app, entity, global, local);
        Ok(())
    }
}

/// Ids learned from the stream first (memory), then Connec!'s id map (a KV
/// read); a miss in the map is remembered for [`MISS_TTL`], so that records
/// no app has mapped cost one read per app every few seconds, not one per delivery.
struct Layered {
    primary: Arc<dyn LocalIds>,
    learned: Arc<LearnedIds>,
    misses: dashmap::DashMap<String, std::time::Instant>,
}

const MISS_TTL: std::time::Duration = std::time::Duration::from_secs(2);
const MAX_MISSES: usize = 100_000;
const MAX_LEARNED: usize = 100_000;

#[async_trait::async_trait]
impl LocalIds for Layered {
    async fn local_for_global(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global: &str,
    ) -> Option<String> {
        if let Some(local) = self.learned.get(org, app, entity, global) {
            return Some(local);
        }
        let key = view::learned_key(org, app, entity, global);
        if self
            .misses
            .get(&key)
            .is_some_and(|at| at.elapsed() < MISS_TTL)
        {
            return None;
        }
        match self
            .primary
            .local_for_global(org, app, entity, global)
            .await
        {
            Some(local) => {
                self.misses.remove(&key);
                self.learned.insert(org, app, entity, global, &local);
                Some(local)
            }
            None => {
                if self.misses.len() >= MAX_MISSES {
                    self.misses.clear();
                }
                self.misses.insert(key, std::time::Instant::now());
                None
            }
        }
    }
    async fn record_mapping(
        &self,
        org: &str,
        app: &str,
        entity: &str,
        global: &str,
        local: &str,
    ) -> Result<(), String> {
        self.primary
            .record_mapping(org, app, entity, global, local)
            .await?;
        self.misses
            .remove(&view::learned_key(org, app, entity, global));
        self.learned.insert(org, app, entity, global, local);
        Ok(())
    }
}

impl Delivery {
    pub async fn start(deps: DeliveryDeps) -> anyhow::Result<Delivery> {
        // With the id map behind it, what is learned from the stream is a bounded cache;
        // without one (benchmarks), it is all there is.
        let learned = Arc::new(match deps.ids {
            Some(_) => LearnedIds::bounded(MAX_LEARNED),
            None => LearnedIds::default(),
        });
        let ids: Arc<dyn LocalIds> = match deps.ids {
            Some(primary) => Arc::new(Layered {
                primary,
                learned: learned.clone(),
                misses: Default::default(),
            }),
            None => Arc::new(LearnedOnly(learned.clone())),
        };
        let config = deps.config;
        let ctx = Arc::new(Context {
            js: deps.bus.js.clone(),
            directory: deps.directory,
            sender: send::Sender::new(
                config.request_timeout,
                config.allow_private_webhooks,
                config.max_response_bytes,
            ),
            log: match deps.db {
                Some(db) => log::DeliveryLog::durable(db, config.log_capacity),
                None => log::DeliveryLog::new(config.log_capacity),
            },
            ids,
            refs: deps.refs.unwrap_or_else(|| Arc::new(GuessedReferences)),
            learned,
            config,
        });
        let delivering = deps.ownership.is_some();
        let placement = match deps.ownership {
            Some(leases) => Placement::Here(Box::new(ownership::Ownership::new(leases))),
            None => Placement::Elsewhere,
        };
        let supervisor = Arc::new(Supervisor::new(ctx, placement, deps.bus.client.clone()));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if delivering {
            // Watch the Hub before the first sync, so no change falls between them.
            tasks.push(hub_watch::spawn(supervisor.clone(), stopped.clone()).await);
            // Membership first, so that the first sync knows the share.
            supervisor.look().await;
            if let Err(e) = supervisor.sync_all().await {
                tracing::warn!(error = %e, "first delivery sync failed; retried shortly");
            }
            tasks.push(hub_watch::spawn_resync(supervisor.clone(), stopped.clone()));
            tasks.push(spawn_looks(supervisor.clone(), stopped.clone()));
            tasks.push(responder::spawn_responder(
                supervisor.clone(),
                deps.bus.client.clone(),
                stopped,
            ));
        }
        Ok(Delivery {
            supervisor,
            idm: deps.idm,
            sse_streams: Default::default(),
            stop,
            tasks,
        })
    }

    /// Routes under `/connec/api/v2` (deliveries, dead letters, recovery, SSE).
    pub fn router(&self) -> axum::Router {
        api::router(http_state::ApiState {
            supervisor: self.supervisor.clone(),
            idm: self.idm.clone(),
            sse_streams: self.sse_streams.clone(),
        })
    }

    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    /// Stop watching, let POSTs in flight finish; undelivered events stay on the bus.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.supervisor.stop_all().await;
    }
}

/// Every [`ownership::LOOK_EVERY`], renew the leases and take over apps without an owner.
fn spawn_looks(supervisor: Arc<Supervisor>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(ownership::LOOK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = every.tick() => supervisor.look().await,
            }
        }
    })
}
