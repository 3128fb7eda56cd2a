//! The OpenAPI document of Impac!'s routes (part of the gateway's
//! `/openapi.json`). Apart from the schemas in [`crate::openapi`], which the
//! handlers name, so that neither imports the other's importer.

use mno_events::openapi::{ErrorBody, SecuritySchemes};
use utoipa::OpenApi;

use crate::{api, dashboards, kpis, rates};

/// Every route of Impac!.
#[derive(OpenApi)]
#[openapi(
    paths(
        api::list_widgets,
        api::widget,
        kpis::routes::list,
        kpis::routes::create,
        kpis::routes::delete,
        kpis::routes::alerts,
        rates::routes::list_handler,
        rates::routes::load_handler,
        dashboards::list,
        dashboards::create,
        dashboards::show,
        dashboards::update,
        dashboards::delete,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    tags((name = "impac", description = "Reports: widgets, KPIs, alerts, exchange rates, users' dashboards (docs/api/impac.md)"))
)]
pub struct ImpacApi;
