//! Impac!'s part of `/openapi.json`: the query parameters and the answer shapes
//! (the handlers write them as JSON; these types only describe them). The
//! document listing every `#[utoipa::path]` under `/impac/api/v2` is [`crate::document`].

#![allow(dead_code)] // the types describe requests and answers; they are never built

use std::collections::HashMap;

use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WidgetPath {
    /// `accounts`, `invoices`, `sales` or `hr`.
    category: String,
    /// The widget's name; with `.csv` appended, the answer is CSV (`path,value` rows).
    name: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KpiPath {
    /// The KPI's id.
    id: String,
}

/// The organisations a request is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgsQuery {
    /// The organisations (repeat, or comma-separated): at least one.
    #[param(rename = "org_ids[]", style = Form, explode)]
    org_ids: Vec<String>,
}

/// A widget's parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WidgetQuery {
    /// The organisations (repeat, or comma-separated): at least one.
    #[param(rename = "org_ids[]", style = Form, explode)]
    org_ids: Vec<String>,
    /// ISO 4217 code; default the first org's currency.
    currency: Option<String>,
    /// `YYYY-MM-DD`.
    from: Option<String>,
    /// `YYYY-MM-DD`, default today.
    to: Option<String>,
    /// `DAILY`, `WEEKLY`, `MONTHLY` (default), `QUARTERLY` or `YEARLY`.
    period: Option<String>,
    /// 1 to 1000.
    limit: Option<u32>,
    offset: Option<u64>,
    /// A stream sequence, an RFC 3339 time or a date: the report as the stream stood then.
    as_of: Option<String>,
    /// Wait until the projection folded this stream sequence.
    min_seq: Option<u64>,
}

#[derive(ToSchema)]
pub struct WidgetList {
    /// `category/name` of every widget.
    widgets: Vec<String>,
    /// Per widget, the collections it reads (what a caller needs read on).
    reads: HashMap<String, Vec<String>>,
}

/// A computed widget; `content` is the widget's own (docs/api/impac.md).
#[derive(ToSchema)]
pub struct WidgetAnswer {
    widget: String,
    org_ids: Vec<String>,
    currency: String,
    as_of: Value,
    rates: Vec<HashMap<String, Value>>,
    content: HashMap<String, Value>,
}

/// `POST /impac/api/v2/kpis`.
#[derive(ToSchema)]
pub struct NewKpi {
    org_ids: Vec<String>,
    /// `category/name`.
    widget: String,
    /// A dotted path into the widget's content, e.g. `totals.net`.
    element: String,
    /// `{"min": "<decimal>"}`, `{"max": ...}` or both.
    target: HashMap<String, String>,
    /// `{"webhook": url}` or `{"inapp": true}`.
    alert: HashMap<String, Value>,
    /// The widget's `period`, `from`, `to`, `limit`, `offset`, `currency`.
    params: Option<HashMap<String, String>>,
}

#[derive(ToSchema)]
pub struct Kpi {
    id: String,
    org_ids: Vec<String>,
    widget: String,
    element: String,
    params: HashMap<String, String>,
    currency: Option<String>,
    target: HashMap<String, Value>,
    alert: HashMap<String, Value>,
    /// The last value, a decimal string.
    value: Option<String>,
    breached: bool,
}

#[derive(ToSchema)]
pub struct NewKpiAnswer {
    kpi: Kpi,
    /// Signs the KPI's webhook alerts; only for a webhook KPI, shown once.
    webhook_secret: Option<String>,
}

#[derive(ToSchema)]
pub struct KpiList {
    kpis: Vec<Kpi>,
}

#[derive(ToSchema)]
pub struct Alert {
    id: String,
    kpi_id: String,
    org: String,
    widget: String,
    element: String,
    value: String,
    target: Value,
    raised_at: String,
    /// `pending`, `delivered (200)` or why it failed; `null` for an in-app KPI.
    webhook: Option<String>,
}

#[derive(ToSchema)]
pub struct AlertList {
    alerts: Vec<Alert>,
}

/// One exchange rate.
#[derive(ToSchema)]
pub struct Rate {
    base: String,
    quote: String,
    /// A decimal above 0.
    rate: String,
    /// `YYYY-MM-DD`.
    as_of: String,
    source: Option<String>,
}

#[derive(ToSchema)]
pub struct Rates {
    rates: Vec<Rate>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DashboardPath {
    /// The dashboard's id.
    id: String,
}

/// One widget on a dashboard.
#[derive(ToSchema)]
pub struct DashboardWidget {
    /// `category/name`, one of `GET /impac/api/v2/widgets`.
    widget: String,
}

/// `POST /impac/api/v2/dashboards`.
#[derive(ToSchema)]
pub struct NewDashboard {
    /// 1 to 100 characters.
    name: String,
    /// Exactly one organisation.
    org_ids: Vec<String>,
    /// In order; each widget at most once, at most 30.
    widgets: Option<Vec<DashboardWidget>>,
}

/// `PATCH /impac/api/v2/dashboards/{id}`: rename, or set the widgets in their new order.
#[derive(ToSchema)]
pub struct DashboardChange {
    name: Option<String>,
    widgets: Option<Vec<DashboardWidget>>,
}

/// A user's dashboard over one organisation.
#[derive(ToSchema)]
pub struct Dashboard {
    id: String,
    org_id: String,
    name: String,
    widgets: Vec<DashboardWidget>,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(ToSchema)]
pub struct DashboardList {
    dashboards: Vec<Dashboard>,
}
