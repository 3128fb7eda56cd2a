//! `POST/GET /impac/api/v2/kpis`, `DELETE /impac/api/v2/kpis/{id}`,
//! `GET /impac/api/v2/alerts`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use chrono::Utc;
use mno_events::api_error::ApiJson;
use mno_events::webhook::ssrf;
use mno_events::ApiError;
use serde_json::{json, Value};
use sqlx::Row;

use super::creator;
use super::evaluate::{current_value, evaluate};
use super::request::{self, NewKpi};
use super::store::{all_kpis, decode, Kpi};
use crate::access::{authorize_widget, OrgsReader};
use crate::api;
use crate::query::{self, orgs_param};
use crate::ImpacState;
use mno_events::openapi::{
    BadRequest, Forbidden, JsonBodyErrors, NotFound, Unauthorized, Unavailable, Unprocessable,
};

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
    ApiJson(body): ApiJson<NewKpi>,
) -> Result<impl IntoResponse, ApiError> {
    let widget = request::widget(body.widget)?;
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    query.insert("org_ids".into(), body.org_ids.unwrap_or_default());
    let orgs = orgs_param(&query).map_err(|_| {
        ApiError::unprocessable(
            "invalid_kpi",
            "org_ids must name at least one organisation: [\"<org id>\"]",
        )
        .at_pointer("/org_ids")
    })?;
    let principal = authorize_widget(&state, &headers, &widget, &orgs).await?;

    let element = request::element(body.element)?;
    let (min, max) = request::bounds(body.target)?;
    let webhook = request::alert_webhook(body.alert, |url| {
        ssrf::check_registration(url, state.kpis.allow_private_webhooks)
            .map(drop)
            .map_err(|e| e.to_string())
    })?;
    let params = body
        .params
        .map(request::Params::into_query)
        .unwrap_or_default();
    query::widget_params(&params).map_err(point_into_params)?;
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
        created_by: creator::recorded(&principal),
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
    .bind(&kpi.created_by)
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

/// A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
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
    OrgsReader { orgs, .. }: OrgsReader,
) -> Result<Json<Value>, ApiError> {
    let mut readable = Readable::default();
    let mut kpis = Vec::new();
    for kpi in all_kpis(&state.db).await.map_err(ApiError::internal)? {
        // Only KPIs wholly within the caller's orgs, over a widget the caller
        // may read in each: no figure of another org, or of a collection the
        // caller is not shared, leaks through a KPI's value.
        if kpi.org_ids.iter().all(|o| orgs.contains(o))
            && readable
                .all(&state, &headers, &kpi.widget, &kpi.org_ids)
                .await?
        {
            kpis.push(kpi.to_json());
        }
    }
    Ok(Json(json!({ "kpis": kpis })))
}

/// Whether the caller may read a widget in some orgs, asked once per widget and org.
#[derive(Default)]
struct Readable(HashMap<(String, String), bool>);

impl Readable {
    async fn all(
        &mut self,
        state: &ImpacState,
        headers: &HeaderMap,
        widget: &str,
        orgs: &[String],
    ) -> Result<bool, ApiError> {
        for org in orgs {
            let key = (widget.to_owned(), org.clone());
            let may = match self.0.get(&key) {
                Some(may) => *may,
                None => {
                    let may =
                        match authorize_widget(state, headers, widget, std::slice::from_ref(org))
                            .await
                        {
                            Ok(_) => true,
                            Err(e) if e.status == StatusCode::FORBIDDEN => false,
                            Err(e) => return Err(e),
                        };
                    self.0.insert(key, may);
                    may
                }
            };
            if !may {
                return Ok(false);
            }
        }
        Ok(true)
    }
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
    let hide_forbidden = |e: ApiError| {
        if e.status == StatusCode::FORBIDDEN {
            unknown()
        } else {
            e
        }
    };
    let mut admin_everywhere = true;
    let mut caller = None;
    for org in &kpi.org_ids {
        let principal = authorize_widget(&state, &headers, &kpi.widget, std::slice::from_ref(org))
            .await
            .map_err(hide_forbidden)?;
        admin_everywhere &= matches!(principal.role.as_deref(), Some("admin" | "super_admin"));
        caller = Some(principal);
    }
    // Its creator deletes it, or an admin of every org it watches; someone
    // who only reads may not remove another's alerts.
    let is_creator = caller.is_some_and(|c| creator::recorded(&c) == kpi.created_by);
    if !(is_creator || admin_everywhere || creator::unrecorded(&kpi)) {
        return Err(ApiError::forbidden(
            "only the KPI's creator or an admin of its organisations may delete it",
        ));
    }
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
    OrgsReader { orgs, .. }: OrgsReader,
) -> Result<Json<Value>, ApiError> {
    let mut readable = Readable::default();
    let mut alerts = Vec::new();
    for org in &orgs {
        let rows = sqlx::query(
            "SELECT id, kpi_id, org, org_ids, widget, element, value, target, raised_at, webhook FROM impac_alerts WHERE org = $1 ORDER BY raised_at DESC, id DESC LIMIT 500",
        )
        .bind(org)
        .fetch_all(&state.db)
        .await
        .map_err(ApiError::internal)?;
        for row in rows {
            // As for KPIs: an alert's value is its widget's figure over every
            // org its KPI watches, so each must be named and readable.
            let widget = row.get::<String, _>("widget");
            let Some(watched) = alert_orgs(row.get::<Option<String>, _>("org_ids"), org) else {
                continue;
            };
            if !(watched.iter().all(|o| orgs.contains(o))
                && readable.all(&state, &headers, &widget, &watched).await?)
            {
                continue;
            }
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

/// The orgs an alert's KPI watched (a JSON list of ids, or none for an alert
/// filed before they were kept: then only the org it was filed under). A
/// column that does not read as such a list hides the alert: `None`.
fn alert_orgs(stored: Option<String>, filed_under: &str) -> Option<Vec<String>> {
    match stored {
        None => Some(vec![filed_under.to_owned()]),
        Some(text) => serde_json::from_str::<Vec<String>>(&text)
            .ok()
            .filter(|orgs| !orgs.is_empty()),
    }
}
