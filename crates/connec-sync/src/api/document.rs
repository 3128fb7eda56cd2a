//! The OpenAPI document of Connec!'s routes (part of the gateway's
//! `/openapi.json`). Apart from the schemas in [`super::openapi`], which the
//! handlers name, so that neither imports the other's importer.

use mno_events::openapi::{ErrorBody, SecuritySchemes};
use utoipa::OpenApi;

use super::{batch, catalogue, query, records};
use crate::delivery::api as delivery;
use crate::delivery::sse;

/// Every route of the record API and of delivery.
#[derive(OpenApi)]
#[openapi(
    paths(
        catalogue::collections,
        catalogue::json_schema,
        records::get_company,
        records::put_company,
        batch::batch,
        query::changes,
        records::create,
        query::list,
        query::history,
        records::read,
        records::update,
        records::delete,
        records::map_id,
        delivery::list_deliveries,
        delivery::consumer_lag,
        delivery::list_dead_letters,
        delivery::redrive_all,
        delivery::show_dead_letter,
        delivery::redrive_one,
        delivery::recover,
        sse::stream,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "connec", description = "Shared business records (docs/api/connec.md)"),
        (name = "delivery", description = "Webhooks, dead letters, recovery and server-sent events (docs/api/delivery.md)")
    )
)]
pub struct ConnecApi;
