//! The Hub: who is who.
//!
//! Users and sessions, organisations (the tenants) and their members, the app
//! catalogue, installs, API credentials, the IDM check every other part asks,
//! and the outbox that turns every state change into a Hub event on the bus.
//!
//! Modules, one concern each:
//! - [`api`]: axum handlers under `/hub/v1` and `/idm/v1`.
//! - [`store`]: SQL (sqlx, SQLite or PostgreSQL), migrations, the outbox table.
//! - [`secrets`]: password hashing (argon2id), session tokens, API credentials.
//! - [`access`]: roles and the permission table.
//! - [`validate`]: the input rules of the API.
//! - [`idm`]: the IDM decision; [`responder`] answers it (and the directory) on NATS.
//! - [`relay`]: publishes outbox rows to stream HUB.
//! - [`directory`]: the [`mno_events::directory::Directory`] view for delivery and reports.
//! - [`rate_limit`]: failed sign-in limits, shared on the bus.
//! - [`sso`]: single sign-on, the Hub as an OpenID Connect provider.
//! - [`billing`]: bills, recurring bills, the billing run and invoices.
//! - [`notify`]: account webhooks to apps, from stream HUB.

pub mod access;
pub mod api;
pub mod billing;
pub mod directory;
pub mod idm;
pub mod notify;
pub mod rate_limit;
pub mod relay;
pub mod responder;
pub mod secrets;
pub mod sso;
pub mod store;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use mno_events::bus::Bus;
use mno_events::directory::Directory;
use mno_events::idm::Idm;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use relay::RelayFailpoint;

/// The lease under which one process at a time runs the Hub's background jobs.
pub const JOBS_LEASE: &str = "jobs.hub";

/// The background jobs: the outbox relay, back-channel logouts, account
/// webhooks and scheduled billing, until `stopped`.
async fn spawn_jobs(
    store: &store::Store,
    bus: &Bus,
    config: &HubConfig,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut tasks = vec![
        relay::Relay::new(store.clone(), bus.clone(), config.relay_failpoint)
            .spawn(stopped.clone()),
    ];
    tasks.push(
        sso::backchannel::LogoutSender::new(
            store.clone(),
            bus.clone(),
            config.sso.clone(),
            config.allow_private_webhooks,
        )
        .spawn(stopped.clone()),
    );
    if config.account_webhooks {
        tasks.push(
            notify::AccountWebhooks::new(
                store.clone(),
                bus.clone(),
                config.allow_private_webhooks,
                config.account_webhook_retry_schedule.clone(),
            )
            .start(stopped.clone())
            .await?,
        );
    }
    if let Some(every) = config.billing_interval {
        tasks.push(billing::schedule::spawn(
            store.clone(),
            bus.clone(),
            every,
            stopped,
        ));
    }
    Ok(tasks)
}

/// Settings of the Hub. The defaults are what `mno up` uses.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How long a session token lives.
    pub session_ttl: Duration,
    /// How long rotated-out API credentials and webhook secrets keep working.
    pub credential_overlap: Duration,
    /// Failed sign-ins allowed per email within `login_window` before 429
    /// (and, counted apart, sign-ups refused because the email is taken).
    pub login_failures_per_email: usize,
    /// Failed sign-ins allowed per client address within `login_window` before 429
    /// (and, counted apart, sign-ups refused because the email is taken).
    pub login_failures_per_address: usize,
    /// Accounts made per client address within `login_window` before 429:
    /// a script cannot fill the Hub with accounts from one address.
    pub signups_per_address: usize,
    pub login_window: Duration,
    /// Proxies whose `X-Forwarded-For` names the client; from others it is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The key the platform's own web front (the portal, in this process)
    /// sends with its visitor's connection (`api::users::FRONTEND_KEY_HEADER`),
    /// so that sign-in limits count each visitor, not the portal once.
    /// `None`: no front forwards visitors.
    pub frontend_key: Option<String>,
    /// Answer `mno.idm.v1.check` and `mno.directory.v1.*` on NATS.
    pub serve_nats: bool,
    /// Test hook: stop the outbox relay at a crash point.
    pub relay_failpoint: Option<RelayFailpoint>,
    /// The collections an app may share (Connec!'s catalogue, which the
    /// process that runs the Hub passes in); empty: any well-formed name.
    pub known_entities: Vec<String>,
    /// Accept webhook URLs aimed at loopback or private addresses (local
    /// tests); delivery refuses to send to them otherwise.
    pub allow_private_webhooks: bool,
    /// Single sign-on: the issuer URL, token and code lifetimes.
    pub sso: sso::SsoConfig,
    /// Delays between attempts of an account webhook; after the last, it is given up.
    pub account_webhook_retry_schedule: Vec<Duration>,
    /// Send account webhooks (installs, members) from this process.
    pub account_webhooks: bool,
    /// Run billing for the last complete month this often; `None`: never
    /// (then `mno billing run` does it).
    pub billing_interval: Option<Duration>,
    /// Replicas of the Hub's KV bucket (sign-in limits); 0 means 1.
    pub kv_replicas: usize,
    /// Run the background jobs (outbox relay, account webhooks, back-channel
    /// logouts, scheduled billing) in this process from the start; false:
    /// not at all, or under a lease ([`Hub::run_jobs_under_lease`]).
    pub run_jobs: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(24 * 3600),
            credential_overlap: Duration::from_secs(24 * 3600),
            login_failures_per_email: 5,
            login_failures_per_address: 20,
            signups_per_address: 20,
            login_window: Duration::from_secs(300),
            trusted_proxies: Vec::new(),
            frontend_key: None,
            serve_nats: true,
            relay_failpoint: None,
            known_entities: Vec::new(),
            allow_private_webhooks: false,
            sso: sso::SsoConfig::default(),
            account_webhook_retry_schedule: [5, 300, 1800, 7200, 18000, 36000, 36000]
                .map(Duration::from_secs)
                .to_vec(),
            account_webhooks: true,
            billing_interval: None,
            run_jobs: true,
            kv_replicas: 1,
        }
    }
}

/// What the Hub needs from the process that runs it.
pub struct HubDeps {
    pub bus: Bus,
    pub db: sqlx::AnyPool,
    pub config: HubConfig,
}

/// A running Hub.
pub struct Hub {
    bus: Bus,
    stopped: watch::Receiver<bool>,
    state: api::AppState,
    idm: Arc<dyn Idm>,
    directory: Arc<dyn Directory>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Hub {
    /// Migrate the database, start the outbox relay (and the NATS responders).
    pub async fn start(deps: HubDeps) -> anyhow::Result<Hub> {
        let store = store::Store::open(deps.db).await?;
        sso::keys::ensure(&store.pool).await?;
        let hub_idm = idm::HubIdm::new(store.clone());
        let hub_directory = directory::HubDirectory::new(store.clone());
        let config = deps.config;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if config.run_jobs {
            tasks.extend(spawn_jobs(&store, &deps.bus, &config, stopped.clone()).await?);
        }
        if config.serve_nats {
            let caching = mno_events::idm::CachingIdm::start(
                Arc::new(responder::HashedCredentials(hub_idm.clone())),
                deps.bus.client.clone(),
                mno_events::idm::CachingIdm::DEFAULT_MAX_AGE,
            )
            .await?;
            store.add_change_listener(caching.change_listener());
            let cached: Arc<dyn Idm> = Arc::new(caching);
            tasks.extend(
                responder::spawn(
                    deps.bus.client.clone(),
                    cached,
                    hub_directory.clone(),
                    stopped.clone(),
                )
                .await?,
            );
        }
        // Sign-in limits on the bus hold across every edge process.
        let bucket = match rate_limit::open_bucket(
            &deps.bus.js,
            config.login_window,
            config.kv_replicas,
        )
        .await
        {
            Ok(bucket) => Some(bucket),
            Err(e) => {
                tracing::warn!(error = %e, "sign-in limits cannot be kept on the bus; counting in this process only");
                None
            }
        };
        let limits = Arc::new(api::LoginLimits::new(&config, bucket));
        Ok(Hub {
            bus: deps.bus,
            stopped,
            state: api::AppState {
                store,
                idm: hub_idm.clone(),
                config,
                limits,
            },
            idm: Arc::new(hub_idm),
            directory: Arc::new(hub_directory),
            stop,
            tasks,
        })
    }

    /// Run the background jobs in whichever one process holds the lease
    /// [`JOBS_LEASE`] at a time: started when this process takes it, stopped
    /// when it loses it (another process then runs them).
    pub fn run_jobs_under_lease(&mut self, leases: mno_events::lease::Leases) {
        let store = self.state.store.clone();
        let bus = self.bus.clone();
        let config = self.state.config.clone();
        let mut stopped = self.stopped.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut kept = leases.keep(JOBS_LEASE);
            loop {
                let token = tokio::select! {
                    token = kept.acquired() => token,
                    _ = stopped.changed() => break,
                };
                let Some(token) = token else { break };
                let (stop_jobs, jobs_stopped) = watch::channel(false);
                let jobs = match spawn_jobs(&store, &bus, &config, jobs_stopped).await {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        tracing::warn!(error = %e, "the Hub's jobs did not start; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                tracing::info!(token, "running the Hub's background jobs");
                let stopping = tokio::select! {
                    _ = kept.lost(token) => false,
                    _ = stopped.changed() => true,
                };
                let _ = stop_jobs.send(true);
                for job in jobs {
                    let _ = job.await;
                }
                if stopping {
                    break;
                }
                tracing::warn!("the Hub's jobs lease was lost; another process runs them now");
            }
            kept.release().await;
        }));
    }

    /// Routes under `/hub/v1` and `/idm/v1`, and the OpenID Connect provider's.
    pub fn router(&self) -> axum::Router {
        api::routes::router(self.state.clone()).merge(sso::router(self.state.clone()))
    }

    /// The IDM check answered from this Hub's database (no cache).
    pub fn idm(&self) -> Arc<dyn Idm> {
        self.idm.clone()
    }

    pub fn directory(&self) -> Arc<dyn Directory> {
        self.directory.clone()
    }

    /// Tell `listener` (a cache in this process, such as a `CachingIdm`) of
    /// every Hub change before the call that made it is answered.
    pub fn add_change_listener(&self, listener: Arc<dyn mno_events::idm::HubChangeListener>) {
        self.state.store.add_change_listener(listener);
    }

    /// The Hub's SQL, for tests and tools.
    pub fn store(&self) -> &store::Store {
        &self.state.store
    }

    /// Stop background tasks (outbox relay, NATS responders), finishing work in hand.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
