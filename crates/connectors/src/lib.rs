//! Connectors: the runtime that syncs outside apps with Connec! through
//! their own public APIs, for apps of stack `connector` that never link an SDK.
//!
//! Module plan (one concern each):
//! - `outside`: what a connector is (the [`outside::Outside`] trait) and its errors.
//! - `carddav/`: connector 1, people and organizations as vCards over CardDAV.
//! - `rest/`: connector 2, any JSON REST API described by a mapping file.
//! - `catalogue`: the connectors by name, built from an install's settings.
//! - `record_api`: Connec!'s record API and change stream, as the connector app.
//! - `runtime`: pulls, pushes, conflicts, one sync per install, backoff.
//! - `pull_order`: which entity a sync pulls first (the referenced ones).
//! - `absences`: which deletions a full listing may imply, and when it is not trusted.
//! - `references`: references of pushed records that the outside API cannot name yet.
//! - `parking`: pulled records refused for a reference that never comes, parked so the cursor moves on.
//! - `last_error`: which pass the install's last error came from, cleared once that pass works again.
//! - `store`: the runtime's SQL tables (installs, cursors, per-record sync state, log).
//! - `sealed`: credentials sealed at rest under the platform key.
//! - `api`: the HTTP routes (configure, status, sync) beside the Hub's installs.

pub mod absences;
pub mod api;
pub mod carddav;
pub mod catalogue;
pub mod http_clients;
pub mod last_error;
pub mod outside;
pub mod parking;
pub mod pull_order;
pub mod record_api;
pub mod references;
pub mod rest;
pub mod runtime;
pub mod sealed;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mno_events::directory::Directory;
use mno_events::idm::Idm;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct ConnectorsConfig {
    /// The record API's base URL (the platform's own edge, e.g. http://127.0.0.1:8080).
    pub api_base: String,
    /// `MNO_SECRET_KEY`; when unset, a key generated into `data_dir`.
    pub secret_key: Option<String>,
    pub data_dir: PathBuf,
    /// Allow outside APIs on loopback and private addresses (tests, local demos).
    pub allow_private_urls: bool,
    /// How often due installs are looked for.
    pub tick: Duration,
    /// The first delay after a failure; it doubles with each failure in a row, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl ConnectorsConfig {
    pub fn new(api_base: String, data_dir: PathBuf) -> Self {
        ConnectorsConfig {
            api_base,
            secret_key: None,
            data_dir,
            allow_private_urls: false,
            tick: Duration::from_secs(1),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(600),
        }
    }
}

pub struct ConnectorsDeps {
    pub db: sqlx::AnyPool,
    pub idm: Arc<dyn Idm>,
    pub directory: Arc<dyn Directory>,
    pub config: ConnectorsConfig,
}

pub struct Connectors {
    runtime: Arc<runtime::Runtime>,
    api: api::ApiState,
    scheduler: JoinHandle<()>,
}

impl Connectors {
    pub async fn start(deps: ConnectorsDeps) -> anyhow::Result<Connectors> {
        let config = deps.config;
        let sealer = sealed::Sealer::load(config.secret_key.as_deref(), &config.data_dir)?;
        let store = store::Store::open(deps.db).await?;
        let http = http_clients::HttpClients::new(config.allow_private_urls)?;
        let runtime = Arc::new(runtime::Runtime::new(
            store,
            sealer,
            http,
            deps.directory.clone(),
            runtime::RuntimeConfig {
                api_base: config.api_base.clone(),
                tick: config.tick,
                backoff_base: config.backoff_base,
                backoff_max: config.backoff_max,
                batch: 100,
            },
        ));
        let scheduler = runtime.start().await?;
        let api = api::ApiState {
            runtime: runtime.clone(),
            idm: deps.idm,
            directory: deps.directory,
            allow_private_urls: config.allow_private_urls,
        };
        Ok(Connectors {
            runtime,
            api,
            scheduler,
        })
    }

    /// Routes under `/hub/v1/orgs/{org}/installs/{app}/`.
    pub fn router(&self) -> axum::Router {
        api::router(self.api.clone())
    }

    /// Stop scheduling and pushing. A pull cut short resumes from its cursor;
    /// a push resumes after the last change it recorded as pushed.
    pub async fn shutdown(self) {
        self.scheduler.abort();
        self.runtime.shutdown();
    }
}
