//! Impac!'s HTTP routes, each to the module of its concern.

use axum::routing::get;
use axum::Router;

use crate::{api, dashboards, kpis, rates, ImpacState};

/// Every route of Impac!, over its state.
pub fn router(state: ImpacState) -> Router {
    Router::new()
        .route("/impac/api/v2/widgets", get(api::list_widgets))
        .route("/impac/api/v2/widgets/{category}/{name}", get(api::widget))
        .route("/impac/api/v2/kpis", get(kpis::list).post(kpis::create))
        .route(
            "/impac/api/v2/kpis/{id}",
            axum::routing::delete(kpis::delete),
        )
        .route("/impac/api/v2/alerts", get(kpis::alerts))
        .route(
            "/impac/api/v2/dashboards",
            get(dashboards::list).post(dashboards::create),
        )
        .route(
            "/impac/api/v2/dashboards/{id}",
            get(dashboards::show)
                .patch(dashboards::update)
                .delete(dashboards::delete),
        )
        .route(
            "/impac/api/v2/rates",
            get(rates::routes::list_handler).post(rates::routes::load_handler),
        )
        .with_state(state)
}
