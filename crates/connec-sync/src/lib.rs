//! Connec!: shared business records and their real-time fan-out.
//!
//! Module plan (one concern each):
//! - `api/`: axum handlers under `/connec/api/v2` and `/connec/batch`.
//! - `entities/`: the catalogue, JSON Schemas, validation, reference fields.
//! - `write`: the write path (validate, IDM check, id map, publish with expected sequence).
//! - `idmap`: app local id <-> global id, unique under concurrent creates (JetStream KV).
//! - `store/`: the SQL record store, a projection of RECORDS for list and filter queries.
//! - `query`: `$filter` / `$orderby` parsing into safe SQL.
//! - `delivery/`: fan-out to subscribing apps (webhooks, SSE, retries, dead letters).

pub mod delivery;
pub mod entities;
pub mod exact_json;

use std::sync::Arc;

use mno_events::bus::Bus;
use mno_events::directory::Directory;
use mno_events::idm::Idm;

#[derive(Debug, Clone, Default)]
pub struct ConnecConfig {
    pub delivery: delivery::DeliveryConfig,
}

pub struct ConnecDeps {
    pub bus: Bus,
    pub db: sqlx::AnyPool,
    pub idm: Arc<dyn Idm>,
    pub directory: Arc<dyn Directory>,
    pub config: ConnecConfig,
}

pub struct Connec {
    delivery: delivery::Delivery,
}

impl Connec {
    pub async fn start(deps: ConnecDeps) -> anyhow::Result<Connec> {
        let delivery = delivery::Delivery::start(delivery::DeliveryDeps {
            bus: deps.bus.clone(),
            idm: deps.idm.clone(),
            directory: deps.directory.clone(),
            config: deps.config.delivery.clone(),
            ids: None,
            refs: None,
        })
        .await?;
        let _ = deps;
        Ok(Connec { delivery })
    }

    /// Routes under `/connec`.
    pub fn router(&self) -> axum::Router {
        axum::Router::new().merge(self.delivery.router())
    }

    pub async fn shutdown(self) {
        self.delivery.shutdown().await;
    }
}
