//! The HTTP routes of Connec!'s record API.
//!
//! - [`access`]: who may call a route, as extractors (`RecordAccess<Write>`).
//! - [`catalogue`]: the collections and their JSON Schemas.
//! - [`records`]: create, update, delete and read records; `company`; id mapping.
//! - [`matching`]: smart merge of a create into the record whose `matching_fields` match.
//! - [`idempotent`]: a write under its `Idempotency-Key`.
//! - [`headers`] and [`answer`]: what a request says besides its body, and the answer's shape.
//! - [`query`]: lists with `$filter`/`$orderby`, a record's history, the change feed.
//! - [`batch`]: many ops in one request, atomic or not.
//! - [`errors`]: how write-path errors become JSON error answers.
//! - [`openapi`]: the schemas the handlers name; [`document`]: the OpenAPI document of the routes.

pub mod access;
pub mod answer;
pub mod batch;
pub mod catalogue;
pub mod document;
pub mod errors;
pub mod headers;
pub mod idempotent;
pub mod matching;
pub mod openapi;
pub mod query;
pub mod records;

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;
use mno_events::idm::Idm;

use crate::idempotency::Idempotency;
use crate::store::RecordStore;
use crate::write::Writer;

/// What the record handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub writer: Writer,
    /// For reading the stream directly (history, change feed).
    pub writer_js: async_nats::jetstream::Context,
    pub idm: Arc<dyn Idm>,
    pub idempotency: Idempotency,
    pub store: RecordStore,
}

/// Header carrying the stream sequence of the answer's data (a consistency token).
pub const CONSISTENCY_HEADER: &str = "mno-consistency-token";

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/connec/api/v2", get(catalogue::collections))
        .route("/connec/api/v2/", get(catalogue::collections))
        .route(
            "/connec/api/v2/json_schema/{entity}",
            get(catalogue::json_schema),
        )
        .route(
            "/connec/api/v2/{org}/company",
            get(records::get_company).put(records::put_company),
        )
        .route("/connec/batch", post(batch::batch))
        .route("/connec/api/v2/{org}/changes", get(query::changes))
        .route(
            "/connec/api/v2/{org}/{entity}",
            post(records::create).get(query::list),
        )
        .route(
            "/connec/api/v2/{org}/{entity}/{id}/history",
            get(query::history),
        )
        .route(
            "/connec/api/v2/{org}/{entity}/{id}",
            get(records::read)
                .put(records::update)
                .delete(records::delete),
        )
        .route(
            "/connec/api/v2/{org}/{entity}/{id}/id_map",
            put(records::map_id),
        )
        .with_state(Arc::new(state))
}
