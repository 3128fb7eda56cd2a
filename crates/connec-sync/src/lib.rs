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

use std::sync::Arc;

use mno_events::bus::Bus;
use mno_events::directory::Directory;
use mno_events::idm::Idm;

#[derive(Debug, Clone, Default)]
pub struct ConnecConfig {}

pub struct ConnecDeps {
    pub bus: Bus,
    pub db: sqlx::AnyPool,
    pub idm: Arc<dyn Idm>,
    pub directory: Arc<dyn Directory>,
    pub config: ConnecConfig,
}

pub struct Connec {}

impl Connec {
    pub async fn start(deps: ConnecDeps) -> anyhow::Result<Connec> {
        let _ = deps;
        Ok(Connec {})
    }

    /// Routes under `/connec`.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
    }

    pub async fn shutdown(self) {}
}
