//! KPIs and alerts: a value of a widget (an element of its content, e.g.
//! `totals.net`) watched against a target `{min, max}`. Every KPI is
//! evaluated when it is created and after the projection folds new events;
//! when its value leaves the target an alert is raised once (not again until
//! the value is back inside): stored and listed, published on HUB as
//! `hub.<org>.kpi_alert`, and POSTed signed (Standard Webhooks) to the KPI's
//! webhook when it has one.
//!
//! Routes: `POST/GET /impac/api/v2/kpis`, `DELETE /impac/api/v2/kpis/{id}`,
//! `GET /impac/api/v2/alerts`.
//!
//! - [`request`]: the body of a new KPI, typed, and its checks.
//! - [`store`]: KPIs as stored.
//! - [`evaluate`]: a KPI's value from the live widget, and the crossing that raises an alert.
//! - [`announce`]: an alert published on HUB and POSTed to the KPI's webhook.
//! - [`creator`]: who created a KPI, and whether they still read what it watches.
//! - [`routes`]: the HTTP handlers.

mod announce;
mod creator;
mod evaluate;
mod request;
pub mod routes;
mod store;

use std::time::Duration;

use mno_events::publish::Publisher;
use mno_events::webhook::send::Sender;

pub use evaluate::{evaluate_all, follow};
pub use routes::{alerts, create, delete, list};

/// What evaluation and alerting need beside the reports.
pub struct KpiRuntime {
    sender: Sender,
    hub: Publisher,
    allow_private_webhooks: bool,
    /// One evaluation at a time, so a crossing is seen once.
    evaluating: tokio::sync::Mutex<()>,
}

impl KpiRuntime {
    pub fn new(js: async_nats::jetstream::Context, allow_private_webhooks: bool) -> Self {
        Self {
            sender: Sender::new(Duration::from_secs(15), allow_private_webhooks, 64 * 1024),
            hub: Publisher::new(js, mno_events::streams::HUB),
            allow_private_webhooks,
            evaluating: tokio::sync::Mutex::new(()),
        }
    }
}
