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

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use chrono::Utc;
use mno_events::api_error::ApiJson;
use mno_events::envelope::{canonical_json, to_timestamp};
use mno_events::idm::Action;
use mno_events::proto::{Actor, HubEvent};
use mno_events::publish::{Outgoing, Publisher};
use mno_events::subject::{hub_kind, HubSubject};
use mno_events::webhook::send::{Outcome, Sender};
use mno_events::webhook::ssrf;
use mno_events::ApiError;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::Row;

use crate::api::{self, authorize_widget, orgs_param, parse_query};
use crate::widgets::WIDGETS;
use crate::ImpacState;
use mno_events::openapi::{
    BadRequest, Forbidden, JsonBodyErrors, NotFound, Unauthorized, Unavailable, Unprocessable,
};

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

/// A stored KPI.
#[derive(Debug, Clone)]
struct Kpi {
    id: String,
    org_ids: Vec<String>,
    widget: String,
    element: String,
    params: HashMap<String, Vec<String>>,
    currency: String,
    min: Option<Decimal>,
    max: Option<Decimal>,
    webhook: Option<String>,
    secret: Option<String>,
    breached: bool,
    last_value: Option<String>,
}

impl Kpi {
    fn target(&self) -> Value {
        let mut target = serde_json::Map::new();
        if let Some(min) = self.min {
            target.insert("min".into(), json!(min.to_string()));
        }
        if let Some(max) = self.max {
            target.insert("max".into(), json!(max.to_string()));
        }
        Value::Object(target)
    }

    fn to_json(&self) -> Value {
        let params: HashMap<&String, &String> = self
            .params
            .iter()
            .filter_map(|(k, v)| Some((k, v.first()?)))
            .collect();
        json!({
            "id": self.id,
            "org_ids": self.org_ids,
            "widget": self.widget,
            "element": self.element,
            "params": params,
            "currency": self.currency,
            "target": self.target(),
            "alert": match &self.webhook { Some(url) => json!({"webhook": url}), None => json!({"inapp": true}) },
            "value": self.last_value,
            "breached": self.breached,
        })
    }

    fn outside(&self, value: Decimal) -> bool {
        self.min.is_some_and(|min| value < min) || self.max.is_some_and(|max| value > max)
    }
}

fn decode(row: &sqlx::any::AnyRow) -> Kpi {
    let decimal = |text: Option<String>| text.and_then(|t| Decimal::from_str(&t).ok());
    Kpi {
        id: row.get("id"),
        org_ids: serde_json::from_str(&row.get::<String, _>("org_ids")).unwrap_or_default(),
        widget: row.get("widget"),
        element: row.get("element"),
        params: serde_json::from_str(&row.get::<String, _>("params")).unwrap_or_default(),
        currency: row.get("currency"),
        min: decimal(row.get("target_min")),
        max: decimal(row.get("target_max")),
        webhook: row.get("alert_webhook"),
        secret: row.get("webhook_secret"),
        breached: row.get::<i32, _>("breached") != 0,
        last_value: row.get("last_value"),
    }
}

async fn all_kpis(db: &sqlx::AnyPool) -> Result<Vec<Kpi>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM impac_kpis ORDER BY created_at, id")
        .fetch_all(db)
        .await?;
    Ok(rows.iter().map(decode).collect())
}

/// The element at a dotted path of a widget's content (`totals.net`,
/// `periods.0.revenue`), as a decimal.
fn element_value(content: &Value, element: &str) -> Result<Decimal, String> {
    let mut at = content;
    for step in element.split('.') {
        at = match at {
            Value::Object(map) => map.get(step),
            Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        }
        .ok_or_else(|| {
            let here: Vec<String> = match at {
                Value::Object(map) => map.keys().cloned().collect(),
                Value::Array(items) => vec![format!("0..{}", items.len())],
                _ => vec![],
            };
            format!(
                "the widget's content has no {step:?} in {element:?} (there: {})",
                here.join(", ")
            )
        })?;
    }
    match at {
        Value::String(text) => {
            Decimal::from_str(text).map_err(|_| format!("{element} is {text:?}, not a number"))
        }
        Value::Number(n) => Decimal::from_str(&n.to_string()).map_err(|e| e.to_string()),
        other => Err(format!("{element} is {other}, not a number")),
    }
}

/// The KPI's current value, from the live projection.
async fn current_value(state: &ImpacState, kpi: &Kpi) -> Result<Decimal, ApiError> {
    let params = api::widget_params(&kpi.params)?;
    let snapshot = api::live_snapshot(state, &kpi.org_ids).await?;
    let (content, _) = api::compute(state, &kpi.widget, &snapshot, &params, &kpi.currency).await?;
    element_value(&content, &kpi.element)
        .map_err(|e| ApiError::unprocessable("invalid_element", e).at_pointer("/element"))
}

/// Evaluate the KPIs whenever the projection has folded more (at most every 250 ms).
pub async fn follow(state: ImpacState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut applied = state.applied.clone();
    loop {
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            _ = stopped.changed() => return,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        applied.borrow_and_update();
        // One process raises the alerts: the one that folds.
        if state.folds_here() {
            evaluate_all(&state).await;
        }
    }
}

/// Evaluate every KPI (after the projection folded new events).
pub async fn evaluate_all(state: &ImpacState) {
    let _one_at_a_time = state.kpis.evaluating.lock().await;
    let kpis = match all_kpis(&state.db).await {
        Ok(kpis) => kpis,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read KPIs; evaluating later");
            return;
        }
    };
    for kpi in kpis {
        if let Err(e) = evaluate(state, kpi).await {
            tracing::debug!(error = ?e.errors, "a KPI could not be evaluated");
        }
    }
}

/// Evaluate one KPI; raise an alert when it has just left its target.
async fn evaluate(state: &ImpacState, mut kpi: Kpi) -> Result<Kpi, ApiError> {
    let value = current_value(state, &kpi).await?;
    let outside = kpi.outside(value);
    // The flag flip and the alert it raises commit together: a reader never
    // sees the new value without its alert, and a crash between them loses neither.
    let mut tx = state.db.begin().await.map_err(ApiError::internal)?;
    // The flag flips in one conditional update: a crossing raises one alert.
    let flipped = sqlx::query(
        "UPDATE impac_kpis SET breached = $1, last_value = $2, evaluated_at = $3 WHERE id = $4 AND breached = $5",
    )
    .bind(i32::from(outside))
    .bind(value.to_string())
    .bind(Utc::now().to_rfc3339())
    .bind(&kpi.id)
    .bind(i32::from(!outside))
    .execute(&mut *tx)
    .await
    .map_err(ApiError::internal)?
    .rows_affected()
        == 1;
    if !flipped {
        sqlx::query("UPDATE impac_kpis SET last_value = $1, evaluated_at = $2 WHERE id = $3")
            .bind(value.to_string())
            .bind(Utc::now().to_rfc3339())
            .bind(&kpi.id)
            .execute(&mut *tx)
            .await
            .map_err(ApiError::internal)?;
    }
    kpi.breached = outside;
    kpi.last_value = Some(value.to_string());
    let alert = if flipped && outside {
        Some(store_alert(&mut tx, &kpi, value).await?)
    } else {
        None
    };
    tx.commit().await.map_err(ApiError::internal)?;
    if let Some(alert) = alert {
        announce(state, &kpi, alert).await;
    }
    Ok(kpi)
}

/// An alert stored, to be announced once its row is committed.
struct RaisedAlert {
    id: String,
    org: String,
    raised_at: chrono::DateTime<Utc>,
    body: Value,
}

/// Store the alert of a KPI that has just left its target.
async fn store_alert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kpi: &Kpi,
    value: Decimal,
) -> Result<RaisedAlert, ApiError> {
    let id = uuid::Uuid::now_v7().to_string();
    let raised_at = Utc::now();
    let org = kpi.org_ids[0].clone();
    let alert = json!({
        "id": id,
        "kpi_id": kpi.id,
        "org_ids": kpi.org_ids,
        "widget": kpi.widget,
        "element": kpi.element,
        "value": value.to_string(),
        "target": kpi.target(),
        "currency": kpi.currency,
        "raised_at": raised_at.to_rfc3339(),
    });
    sqlx::query(
        "INSERT INTO impac_alerts (id, kpi_id, org, widget, element, value, target, raised_at, webhook) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(&kpi.id)
    .bind(&org)
    .bind(&kpi.widget)
    .bind(&kpi.element)
    .bind(value.to_string())
    .bind(kpi.target().to_string())
    .bind(raised_at.to_rfc3339())
    .bind(kpi.webhook.as_ref().map(|_| "pending"))
    .execute(&mut **tx)
    .await
    .map_err(ApiError::internal)?;
    tracing::info!(kpi = %kpi.id, %org, %value, "KPI alert raised");
    Ok(RaisedAlert {
        id,
        org,
        raised_at,
        body: alert,
    })
}

/// Publish a stored alert on HUB and POST it to the KPI's webhook.
async fn announce(state: &ImpacState, kpi: &Kpi, raised: RaisedAlert) {
    let RaisedAlert {
        id,
        org,
        raised_at,
        body: alert,
    } = raised;
    let event = HubEvent {
        event_id: id.clone(),
        outbox_id: 0,
        org: org.clone(),
        kind: hub_kind::KPI_ALERT.into(),
        actor: Some(Actor {
            kind: "system".into(),
            id: "impac".into(),
        }),
        occurred_at: Some(to_timestamp(raised_at)),
        user_id: String::new(),
        app_id: String::new(),
        payload: canonical_json(&alert),
    };
    match HubSubject::new(&org, hub_kind::KPI_ALERT) {
        Ok(subject) => {
            let outgoing = Outgoing::new(subject.to_string(), id.clone(), event.to_bytes().into());
            if let Err(e) = state.kpis.hub.publish(outgoing).await {
                tracing::warn!(error = %e, alert = %id, "the KPI alert was stored but not published on HUB");
            }
        }
        Err(e) => tracing::warn!(error = %e, "no HUB subject for the KPI alert"),
    }

    if let (Some(url), Some(secret)) = (kpi.webhook.clone(), kpi.secret.clone()) {
        let state = state.clone();
        let body = json!({"type": "kpi.alert", "alert": alert}).to_string();
        tokio::spawn(async move { send_alert(&state, &id, &url, &secret, body).await });
    }
}

/// POST the alert, signed, retrying a few times; the alert row records how it went.
async fn send_alert(state: &ImpacState, id: &str, url: &str, secret: &str, body: String) {
    const DELAYS: [u64; 3] = [1, 5, 30];
    let mut result = String::new();
    for (attempt, delay) in DELAYS.iter().enumerate() {
        let sent = state
            .kpis
            .sender
            .post(url, &[secret.to_owned()], id, body.clone().into())
            .await;
        result = match (&sent.outcome, sent.status) {
            (Outcome::Delivered, Some(status)) => format!("delivered ({status})"),
            (_, Some(status)) => format!("failed ({status}): {}", sent.response),
            (_, None) => format!("failed: {}", sent.response),
        };
        if matches!(
            sent.outcome,
            Outcome::Delivered | Outcome::Fatal | Outcome::Gone
        ) || attempt + 1 == DELAYS.len()
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(*delay)).await;
    }
    let _ = sqlx::query("UPDATE impac_alerts SET webhook = $1 WHERE id = $2")
        .bind(&result)
        .bind(id)
        .execute(&state.db)
        .await;
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

/// The widget parameters a KPI may fix (the widget's own query parameters, minus `as_of`).
const KPI_PARAMS: &[&str] = &["period", "from", "to", "limit", "offset", "currency"];

/// A widget parameter's error names a query parameter; in a KPI it is a body field.
fn point_into_params(error: ApiError) -> ApiError {
    let parameter = error
        .errors
        .last()
        .and_then(|e| e.source.as_ref())
        .and_then(|s| s.parameter.clone());
    match parameter {
        Some(name) => error.at_pointer(format!("/params/{name}")),
        None => error,
    }
}

fn invalid(pointer: &str, detail: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_kpi", detail).at_pointer(pointer)
}

/// `POST /impac/api/v2/kpis` → 201 `{"kpi", "webhook_secret"?}`.
#[utoipa::path(
    post,
    path = "/impac/api/v2/kpis",
    tag = "impac",
    request_body = crate::openapi::NewKpi,
    responses((status = 201, description = "The KPI, evaluated once", body = crate::openapi::NewKpiAnswer), JsonBodyErrors, Unauthorized, Forbidden, NotFound, Unavailable),
    security(("user" = []), ("app" = []))
)]
pub async fn create(
    State(state): State<ImpacState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<impl IntoResponse, ApiError> {
    let widget = field(&body, "widget")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(
                "/widget",
                "widget is required, e.g. \"accounts/profit_and_loss\"",
            )
        })?
        .to_owned();
    if !WIDGETS.contains(&widget.as_str()) {
        return Err(ApiError::not_found(format!(
            "no widget {widget}; the widgets are: {}",
            WIDGETS.join(", ")
        ))
        .at_pointer("/widget"));
    }
    let orgs: Vec<String> = match field(&body, "org_ids") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => vec![],
    };
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    query.insert("org_ids".into(), orgs);
    let orgs = orgs_param(&query).map_err(|_| {
        invalid(
            "/org_ids",
            "org_ids must name at least one organisation: [\"<org id>\"]",
        )
    })?;
    authorize_widget(&state, &headers, &widget, &orgs).await?;

    let element = field(&body, "element")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            invalid(
                "/element",
                "element is required: a dotted path into the widget's content, e.g. \"totals.net\"",
            )
        })?
        .to_owned();
    let bound = |name: &str| -> Result<Option<Decimal>, ApiError> {
        match body.get("target").and_then(|t| t.get(name)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Decimal::from_str(text).map(Some).map_err(|_| {
                invalid(
                    &format!("/target/{name}"),
                    format!("target.{name} must be a decimal, not {text:?}"),
                )
            }),
            Some(Value::Number(n)) => Decimal::from_str(&n.to_string()).map(Some).map_err(|_| {
                invalid(
                    &format!("/target/{name}"),
                    format!("target.{name} must be a decimal"),
                )
            }),
            Some(other) => Err(invalid(
                &format!("/target/{name}"),
                format!("target.{name} must be a decimal, not {other}"),
            )),
        }
    };
    let (min, max) = (bound("min")?, bound("max")?);
    if min.is_none() && max.is_none() {
        return Err(invalid(
            "/target",
            "target needs min, max or both: {\"min\": \"1000\"}",
        ));
    }
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(invalid(
                "/target",
                format!("target.min {min} is above target.max {max}"),
            ));
        }
    }
    let webhook = match body.get("alert") {
        Some(alert) if alert.get("webhook").is_some() => {
            let url = alert["webhook"].as_str().unwrap_or_default();
            ssrf::check_registration(url, state.kpis.allow_private_webhooks)
                .map_err(|e| invalid("/alert/webhook", format!("alert.webhook: {e}")))?;
            Some(url.to_owned())
        }
        Some(alert) if alert.get("inapp").and_then(Value::as_bool) == Some(true) => None,
        _ => {
            return Err(invalid(
                "/alert",
                "alert must be {\"webhook\": \"https://...\"} or {\"inapp\": true}",
            ))
        }
    };
    let mut params: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(Value::Object(given)) = field(&body, "params") {
        for (name, value) in given {
            // A KPI follows the live widget: `as_of` and unknown (misspelled) names
            // would otherwise be stored and silently have no effect.
            if !KPI_PARAMS.contains(&name.as_str()) {
                return Err(invalid(
                    &format!("/params/{name}"),
                    format!(
                        "params.{name} is not a parameter a KPI takes; they are: {}",
                        KPI_PARAMS.join(", ")
                    ),
                ));
            }
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(invalid(
                        &format!("/params/{name}"),
                        format!("params.{name} must be a string"),
                    ))
                }
            };
            params.insert(name.clone(), vec![text]);
        }
    }
    api::widget_params(&params).map_err(point_into_params)?;
    let currency = api::currency_for(&state, &params, &orgs)
        .await
        .map_err(point_into_params)?;
    let secret = webhook.as_ref().map(|_| new_secret());
    let kpi = Kpi {
        id: uuid::Uuid::now_v7().to_string(),
        org_ids: orgs,
        widget,
        element,
        params,
        currency,
        min,
        max,
        webhook,
        secret: secret.clone(),
        breached: false,
        last_value: None,
    };
    // The element must exist and be a number now: checked before anything is stored.
    current_value(&state, &kpi).await?;

    sqlx::query(
        "INSERT INTO impac_kpis (id, org_ids, widget, element, params, currency, target_min, target_max, alert_webhook, webhook_secret, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&kpi.id)
    .bind(json!(kpi.org_ids).to_string())
    .bind(&kpi.widget)
    .bind(&kpi.element)
    .bind(json!(kpi.params).to_string())
    .bind(&kpi.currency)
    .bind(kpi.min.map(|d| d.to_string()))
    .bind(kpi.max.map(|d| d.to_string()))
    .bind(&kpi.webhook)
    .bind(&kpi.secret)
    .bind(caller(&headers))
    .bind(Utc::now().to_rfc3339())
    .execute(&state.db)
    .await
    .map_err(ApiError::internal)?;
    let kpi = {
        let _one_at_a_time = state.kpis.evaluating.lock().await;
        evaluate(&state, kpi).await?
    };
    let mut answer = json!({"kpi": kpi.to_json()});
    if let Some(secret) = secret {
        // Shown once: the key to verify the alerts' webhook-signature.
        answer["webhook_secret"] = json!(secret);
    }
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Who created a KPI, for the record (never the secret part of a credential).
fn caller(headers: &HeaderMap) -> String {
    match mno_events::http_auth::credential(headers) {
        Ok(mno_events::idm::Credential::App { key, .. }) => format!("app:{key}"),
        Ok(_) => "user".into(),
        Err(_) => String::new(),
    }
}

/// A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The orgs named by `org_ids[]`, each of which the caller may read.
async fn readable_orgs(
    state: &ImpacState,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    let orgs = orgs_param(&parse_query(raw))?;
    for org in &orgs {
        mno_events::http_auth::authorize(state.idm.as_ref(), headers, org, None, Action::Read)
            .await?;
    }
    Ok(orgs)
}

/// `GET /impac/api/v2/kpis?org_ids[]=` → the KPIs over any of those orgs.
#[utoipa::path(
    get,
    path = "/impac/api/v2/kpis",
    tag = "impac",
    params(crate::openapi::OrgsQuery),
    responses((status = 200, description = "The KPIs whose orgs are all among those named", body = crate::openapi::KpiList), BadRequest, Unauthorized, Forbidden, NotFound, Unprocessable, Unavailable),
    security(("user" = []), ("app" = []))
)]
pub async fn list(
    State(state): State<ImpacState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let orgs = readable_orgs(&state, &headers, raw.as_deref()).await?;
    let kpis: Vec<Value> = all_kpis(&state.db)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        // Only KPIs wholly within the caller's orgs: no figure of another org leaks.
        .filter(|k| k.org_ids.iter().all(|o| orgs.contains(o)))
        .map(|k| k.to_json())
        .collect();
    Ok(Json(json!({ "kpis": kpis })))
}

/// `DELETE /impac/api/v2/kpis/{id}` → 204.
#[utoipa::path(
    delete,
    path = "/impac/api/v2/kpis/{id}",
    tag = "impac",
    params(crate::openapi::KpiPath),
    responses((status = 204, description = "Deleted"), Unauthorized, Forbidden, NotFound, Unavailable),
    security(("user" = []), ("app" = []))
)]
pub async fn delete(
    State(state): State<ImpacState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let row = sqlx::query("SELECT * FROM impac_kpis WHERE id = $1")
        .bind(&id)
        .fetch_optional(&state.db)
        .await
        .map_err(ApiError::internal)?;
    let unknown = || {
        ApiError::not_found(format!(
            "no KPI {id:?} over organisations you may read; GET /impac/api/v2/kpis lists yours"
        ))
    };
    let Some(kpi) = row.as_ref().map(decode) else {
        return Err(unknown());
    };
    // Another org's KPI answers as an unknown one: a 403 would name that org
    // (and confirm the KPI exists) to someone who may not see it.
    authorize_widget(&state, &headers, &kpi.widget, &kpi.org_ids)
        .await
        .map_err(|e| {
            if e.status == StatusCode::FORBIDDEN {
                unknown()
            } else {
                e
            }
        })?;
    sqlx::query("DELETE FROM impac_kpis WHERE id = $1")
        .bind(&id)
        .execute(&state.db)
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /impac/api/v2/alerts?org_ids[]=` → alerts of those orgs, newest first (at most 500).
#[utoipa::path(
    get,
    path = "/impac/api/v2/alerts",
    tag = "impac",
    params(crate::openapi::OrgsQuery),
    responses((status = 200, description = "Alerts of those orgs, newest first", body = crate::openapi::AlertList), BadRequest, Unauthorized, Forbidden, NotFound, Unprocessable, Unavailable),
    security(("user" = []), ("app" = []))
)]
pub async fn alerts(
    State(state): State<ImpacState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let orgs = readable_orgs(&state, &headers, raw.as_deref()).await?;
    let mut alerts = Vec::new();
    for org in &orgs {
        let rows = sqlx::query(
            "SELECT id, kpi_id, org, widget, element, value, target, raised_at, webhook FROM impac_alerts WHERE org = $1 ORDER BY raised_at DESC, id DESC LIMIT 500",
        )
        .bind(org)
        .fetch_all(&state.db)
        .await
        .map_err(ApiError::internal)?;
        for row in rows {
            alerts.push(json!({
                "id": row.get::<String, _>("id"),
                "kpi_id": row.get::<String, _>("kpi_id"),
                "org": row.get::<String, _>("org"),
                "widget": row.get::<String, _>("widget"),
                "element": row.get::<String, _>("element"),
                "value": row.get::<String, _>("value"),
                "target": serde_json::from_str::<Value>(&row.get::<String, _>("target")).unwrap_or(Value::Null),
                "raised_at": row.get::<String, _>("raised_at"),
                "webhook": row.get::<Option<String>, _>("webhook"),
            }));
        }
    }
    alerts.sort_by(|a, b| b["raised_at"].as_str().cmp(&a["raised_at"].as_str()));
    Ok(Json(json!({ "alerts": alerts })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found_by_dotted_paths() {
        let content = json!({"totals": {"net": "12.50"}, "periods": [{"revenue": "3"}], "n": 4});
        assert_eq!(
            element_value(&content, "totals.net").unwrap(),
            Decimal::new(1250, 2)
        );
        assert_eq!(
            element_value(&content, "periods.0.revenue").unwrap(),
            Decimal::from(3)
        );
        assert_eq!(element_value(&content, "n").unwrap(), Decimal::from(4));
        let missing = element_value(&content, "totals.gross").unwrap_err();
        assert!(missing.contains("net"), "{missing}");
        assert!(element_value(&content, "totals").is_err());
    }
}
