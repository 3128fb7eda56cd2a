//! `/impac/api/v2/dashboards`: each user's dashboards over an organisation, and
//! the widgets on them in order, as the original platform kept them in Impac!.
//! Only users have dashboards (an app gets 403); a user sees only their own.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::idm::{Action, Principal, PrincipalKind};
use mno_events::openapi::{
    BadRequest, Forbidden, JsonBodyErrors, NotFound, Unauthorized, Unavailable, Unprocessable,
};
use mno_events::ApiError;
use serde_json::{json, Value};
use sqlx::Row;

use crate::access::OrgsReader;
use crate::widgets::WIDGETS;
use crate::ImpacState;

/// Most widgets on one dashboard.
const MAX_WIDGETS: usize = 30;

struct Dashboard {
    id: String,
    owner: String,
    org: String,
    name: String,
    widgets: Value,
    created_at: String,
}

impl Dashboard {
    fn decode(row: &sqlx::any::AnyRow) -> Dashboard {
        let widgets: String = row.get("widgets");
        Dashboard {
            id: row.get("id"),
            owner: row.get("owner"),
            org: row.get("org"),
            name: row.get("name"),
            widgets: serde_json::from_str(&widgets).unwrap_or_else(|_| json!([])),
            created_at: row.get("created_at"),
        }
    }

    fn to_json(&self) -> Value {
        json!({"id": self.id, "org_id": self.org, "name": self.name,
               "widgets": self.widgets, "created_at": self.created_at})
    }
}

/// The signed-in user reading `org`; an app is refused (dashboards are people's).
async fn user_of(
    state: &ImpacState,
    headers: &HeaderMap,
    org: &str,
) -> Result<Principal, ApiError> {
    users_only(reader_of(state, headers, org).await?)
}

/// Whoever may read `org`, as the IDM decides.
async fn reader_of(
    state: &ImpacState,
    headers: &HeaderMap,
    org: &str,
) -> Result<Principal, ApiError> {
    mno_events::http_auth::authorize(state.idm.as_ref(), headers, org, None, Action::Read).await
}

fn users_only(principal: Principal) -> Result<Principal, ApiError> {
    if principal.kind != PrincipalKind::User {
        return Err(ApiError::forbidden(
            "dashboards belong to users; sign in with a user session (Bearer) to keep one",
        ));
    }
    Ok(principal)
}

fn invalid(pointer: &str, detail: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_field", detail).at_pointer(pointer)
}

fn name_of(body: &Value) -> Result<String, ApiError> {
    use mno_events::text::{is_bidi_control, is_blank};
    match body.get("name") {
        Some(Value::String(name))
            if name.chars().any(|c| c.is_control() || is_bidi_control(c)) =>
        {
            Err(invalid(
                "/name",
                "name contains control or bidirectional control characters (which make text display in another order than it reads); use letters, digits, spaces and punctuation",
            ))
        }
        Some(Value::String(name)) if !is_blank(name) && name.chars().count() <= 100 => {
            Ok(name.trim().to_owned())
        }
        _ => Err(invalid(
            "/name",
            "name must be a text of 1 to 100 characters, such as \"Finance\"",
        )),
    }
}

/// `[{"widget": "accounts/profit_and_loss"}, ...]`: known widgets, each at most once.
fn widgets_of(value: Option<&Value>) -> Result<Value, ApiError> {
    let Some(value) = value else {
        return Ok(json!([]));
    };
    let Some(items) = value.as_array() else {
        return Err(invalid(
            "/widgets",
            "widgets must be an array of {\"widget\": \"<category>/<name>\"}",
        ));
    };
    if items.len() > MAX_WIDGETS {
        return Err(invalid(
            "/widgets",
            format!("a dashboard holds at most {MAX_WIDGETS} widgets"),
        ));
    }
    let mut seen = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let widget = item
            .get("widget")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !WIDGETS.contains(&widget) {
            return Err(invalid(
                &format!("/widgets/{i}/widget"),
                format!("unknown widget {widget:?}; GET /impac/api/v2/widgets lists them"),
            ));
        }
        if seen.contains(&widget) {
            return Err(invalid(
                &format!("/widgets/{i}/widget"),
                format!("{widget} is on the dashboard twice"),
            ));
        }
        seen.push(widget);
    }
    Ok(Value::Array(
        seen.into_iter().map(|w| json!({ "widget": w })).collect(),
    ))
}

fn one_org(body: &Value) -> Result<String, ApiError> {
    match body
        .get("org_ids")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([Value::String(org)]) if !org.is_empty() => Ok(org.clone()),
        _ => Err(invalid(
            "/org_ids",
            "org_ids must name exactly one organisation: [\"<org id>\"]",
        )),
    }
}

/// `GET /impac/api/v2/dashboards?org_ids[]=ORG` → the caller's dashboards over that org, oldest first.
#[utoipa::path(
    get,
    path = "/impac/api/v2/dashboards",
    tag = "impac",
    params(crate::openapi::OrgsQuery),
    responses((status = 200, description = "The caller's dashboards over those orgs, oldest first", body = crate::openapi::DashboardList), BadRequest, Unauthorized, Forbidden, NotFound, Unprocessable, Unavailable),
    security(("user" = []))
)]
pub async fn list(
    State(state): State<ImpacState>,
    OrgsReader { orgs, principal }: OrgsReader,
) -> Result<Json<Value>, ApiError> {
    let user = users_only(principal)?;
    let mut out = Vec::new();
    for org in &orgs {
        let rows = sqlx::query(
            "SELECT * FROM impac_dashboards WHERE owner = $1 AND org = $2 ORDER BY created_at, id",
        )
        .bind(&user.id)
        .bind(org)
        .fetch_all(&state.db)
        .await
        .map_err(ApiError::internal)?;
        out.extend(rows.iter().map(|r| Dashboard::decode(r).to_json()));
    }
    Ok(Json(json!({ "dashboards": out })))
}

/// `POST /impac/api/v2/dashboards` `{name, org_ids: [ORG], widgets?}` → 201 the dashboard.
#[utoipa::path(
    post,
    path = "/impac/api/v2/dashboards",
    tag = "impac",
    request_body = crate::openapi::NewDashboard,
    responses((status = 201, description = "The dashboard", body = crate::openapi::Dashboard), JsonBodyErrors, Unauthorized, Forbidden, NotFound, Unavailable),
    security(("user" = []))
)]
pub async fn create(
    State(state): State<ImpacState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let org = one_org(&body)?;
    let user = user_of(&state, &headers, &org).await?;
    let name = name_of(&body)?;
    let widgets = widgets_of(body.get("widgets"))?;
    let dashboard = Dashboard {
        id: uuid::Uuid::now_v7().to_string(),
        owner: user.id,
        org,
        name,
        widgets,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    };
    sqlx::query(
        "INSERT INTO impac_dashboards (id, owner, org, name, widgets, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&dashboard.id)
    .bind(&dashboard.owner)
    .bind(&dashboard.org)
    .bind(&dashboard.name)
    .bind(dashboard.widgets.to_string())
    .bind(&dashboard.created_at)
    .execute(&state.db)
    .await
    .map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(dashboard.to_json())))
}

/// The dashboard, if it is the caller's (another user's answers 404, as an unknown one).
async fn owned(state: &ImpacState, headers: &HeaderMap, id: &str) -> Result<Dashboard, ApiError> {
    let row = sqlx::query("SELECT * FROM impac_dashboards WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db)
        .await
        .map_err(ApiError::internal)?;
    let not_found = || {
        ApiError::not_found(format!(
            "no dashboard {id:?} of yours; GET /impac/api/v2/dashboards?org_ids[]=<org> lists them"
        ))
    };
    let dashboard = row.as_ref().map(Dashboard::decode).ok_or_else(not_found)?;
    let reader = match reader_of(state, headers, &dashboard.org).await {
        Ok(reader) => reader,
        // Refused by the dashboard's org: answered as unknown, since the refusal
        // would name the org to someone who may not know it.
        Err(e) if [StatusCode::FORBIDDEN, StatusCode::NOT_FOUND].contains(&e.status) => {
            return Err(not_found())
        }
        Err(e) => return Err(e),
    };
    let user = users_only(reader)?;
    if user.id != dashboard.owner {
        return Err(not_found());
    }
    Ok(dashboard)
}

/// `GET /impac/api/v2/dashboards/{id}` → the dashboard.
#[utoipa::path(
    get,
    path = "/impac/api/v2/dashboards/{id}",
    tag = "impac",
    params(crate::openapi::DashboardPath),
    responses((status = 200, description = "The dashboard", body = crate::openapi::Dashboard), Unauthorized, Forbidden, NotFound, Unavailable),
    security(("user" = []))
)]
pub async fn show(
    State(state): State<ImpacState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(owned(&state, &headers, &id).await?.to_json()))
}

/// `PATCH /impac/api/v2/dashboards/{id}` `{name?, widgets?}`: rename, or set the
/// widgets in their new order (adding, removing and moving are all this).
#[utoipa::path(
    patch,
    path = "/impac/api/v2/dashboards/{id}",
    tag = "impac",
    params(crate::openapi::DashboardPath),
    request_body = crate::openapi::DashboardChange,
    responses((status = 200, description = "The dashboard as changed", body = crate::openapi::Dashboard), JsonBodyErrors, Unauthorized, Forbidden, NotFound, Unavailable),
    security(("user" = []))
)]
pub async fn update(
    State(state): State<ImpacState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let mut dashboard = owned(&state, &headers, &id).await?;
    if let Some(other) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "name" && *k != "widgets"))
    {
        return Err(invalid(
            &format!("/{other}"),
            format!("{other} cannot be changed; send name and/or widgets"),
        ));
    }
    if body.get("name").is_some() {
        dashboard.name = name_of(&body)?;
    }
    if body.get("widgets").is_some() {
        dashboard.widgets = widgets_of(body.get("widgets"))?;
    }
    sqlx::query("UPDATE impac_dashboards SET name = $1, widgets = $2 WHERE id = $3")
        .bind(&dashboard.name)
        .bind(dashboard.widgets.to_string())
        .bind(&dashboard.id)
        .execute(&state.db)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(dashboard.to_json()))
}

/// `DELETE /impac/api/v2/dashboards/{id}` → 204.
#[utoipa::path(
    delete,
    path = "/impac/api/v2/dashboards/{id}",
    tag = "impac",
    params(crate::openapi::DashboardPath),
    responses((status = 204, description = "Deleted"), Unauthorized, Forbidden, NotFound, Unavailable),
    security(("user" = []))
)]
pub async fn delete(
    State(state): State<ImpacState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let dashboard = owned(&state, &headers, &id).await?;
    sqlx::query("DELETE FROM impac_dashboards WHERE id = $1")
        .bind(&dashboard.id)
        .execute(&state.db)
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}
