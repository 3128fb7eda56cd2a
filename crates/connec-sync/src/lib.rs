//! Connec!: shared business records and their real-time fan-out.
//!
//! Module plan (one concern each):
//! - `api/`: axum handlers under `/connec/api/v2` and `/connec/batch`.
//! - `entities/`: the catalogue, JSON Schemas, validation, reference fields.
//! - `write/`: the write path: reads, the writes and their rules (stale, retried, changed), the retry
//!   after a lost race, id translation, the event and its publish with the expected sequence.
//! - `idmap`: app local id <-> global id, unique under concurrent creates (JetStream KV).
//! - `render`, `raw_json`: records as API clients see them, written without re-parsing.
//! - `store/`: the SQL record store, a projection of RECORDS for list and filter queries.
//! - `query`: `$filter` / `$orderby` parsing into safe SQL.
//! - `delivery/`: fan-out to subscribing apps (webhooks, SSE, retries, dead letters).

pub mod api;
pub mod delivery;
mod delivery_links;
pub mod entities;
pub mod exact_json;
pub mod idempotency;
pub mod idmap;
pub mod query;
mod raw_json;
pub mod render;
pub mod store;
pub mod write;

use std::sync::Arc;

use mno_events::bus::Bus;
use mno_events::directory::Directory;
use mno_events::idm::Idm;
use mno_events::lease::Leases;

#[derive(Debug, Clone, Default)]
pub struct ConnecConfig {
    pub delivery: delivery::DeliveryConfig,
    /// Replicas of Connec!'s KV buckets (id map, idempotency); 0 means 1.
    pub kv_replicas: usize,
    /// Fold RECORDS into the record store in this process (one process at
    /// a time folds, under a lease); false: only read it.
    pub fold_records: bool,
    /// Deliver to apps' webhooks from this process (each app is owned by
    /// one delivering process at a time, under a lease).
    pub deliver: bool,
}

pub struct ConnecDeps {
    pub bus: Bus,
    pub db: sqlx::AnyPool,
    pub idm: Arc<dyn Idm>,
    pub directory: Arc<dyn Directory>,
    /// The bus's leases, under which the record store folds and apps are delivered to.
    pub leases: Leases,
    pub config: ConnecConfig,
}

pub struct Connec {
    delivery: delivery::Delivery,
    api: api::ApiState,
    store_task: store::StoreTask,
}

impl Connec {
    pub async fn start(deps: ConnecDeps) -> anyhow::Result<Connec> {
        let replicas = deps.config.kv_replicas.max(1);
        let idmap = idmap::IdMap::open(&deps.bus.js, replicas).await?;
        let writer = write::Writer::new(deps.bus.js.clone(), idmap);
        let idempotency = idempotency::Idempotency::open(&deps.bus.js, replicas)
            .await
            .map_err(|e| anyhow::anyhow!("open the idempotency bucket: {e}"))?;
        let (record_store, store_task) = store::RecordStore::start(
            &deps.bus.js,
            deps.db.clone(),
            deps.config.fold_records.then(|| deps.leases.clone()),
        )
        .await?;
        let api = api::ApiState {
            writer: writer.clone(),
            writer_js: deps.bus.js.clone(),
            idm: deps.idm.clone(),
            idempotency,
            store: record_store,
        };
        let delivery = delivery::Delivery::start(delivery::DeliveryDeps {
            bus: deps.bus.clone(),
            idm: deps.idm.clone(),
            directory: deps.directory.clone(),
            config: deps.config.delivery.clone(),
            ids: Some(Arc::new(delivery_links::IdMapLinks { writer })),
            refs: Some(Arc::new(delivery_links::CatalogueReferences)),
            db: Some(deps.db.clone()),
            ownership: deps.config.deliver.then(|| deps.leases.clone()),
        })
        .await?;
        Ok(Connec {
            delivery,
            api,
            store_task,
        })
    }

    /// Routes under `/connec`.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .merge(api::router(self.api.clone()))
            .merge(self.delivery.router())
    }

    pub async fn shutdown(self) {
        self.delivery.shutdown().await;
        self.store_task.stop().await;
    }
}
