//! Single billing over HTTP (docs/api/billing.md): apps submit and cancel
//! bills and recurring bills (HTTP Basic); an org's admins read its bills
//! and invoices.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use mno_events::api_error::ApiJson;
use mno_events::envelope::canonical_json;
use mno_events::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::{CallingApp, OrgRole, ReadInvoices};
use super::{db_error, AppState};
use crate::billing::html;
use crate::billing::ledger::Invoice;
use crate::billing::money::{self, Every};
use crate::billing::store::{self, BillingError, NewBill, NewRecurring};
use crate::secrets::sha256_hex;
use crate::validate::Problems;
use mno_events::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyErrors, NotFound, Unauthorized,
};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// How far back a recurring bill may start (ten years): its first run bills
/// every cycle since, at most 3 660 for a daily schedule.
const MAX_START_DAYS_BACK: u64 = 3660;
const MAX_KEY_LEN: usize = 255;

fn billing_error(e: BillingError, org: &str, what: &str, id: &str) -> ApiError {
    match e {
        BillingError::NotInstalled => ApiError::forbidden(format!(
            "your app is not installed in organisation {org}; an app bills only the orgs that installed it (GET /hub/v1/app/orgs lists them)"
        )),
        // 422 as in Connec! (and the IETF Idempotency-Key draft): the body, not the state, is at fault.
        BillingError::KeyReused => ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used before with another body; send a new key for a new request, or the same body to get the first answer",
        ),
        BillingError::NotFound => ApiError::not_found(format!(
            "your app has no {what} {id}; list them with GET /hub/v1/{what}s"
        ))
        .at_parameter("id"),
        BillingError::NotCancellable(status) => ApiError::conflict(
            "not_cancellable",
            format!("{what} {id} is {status} and can no longer be cancelled"),
        ),
        BillingError::Db(e) => db_error(e),
    }
}

/// The Idempotency-Key and the hash of the request it came with.
fn idempotency(
    headers: &HeaderMap,
    body: &impl Serialize,
) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().ok().map(str::trim).filter(|k| {
        !k.is_empty() && k.len() <= MAX_KEY_LEN && k.chars().all(|c| c.is_ascii_graphic())
    });
    let Some(key) = key else {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters, e.g. a UUID"),
        ));
    };
    let canonical = canonical_json(&json!(body));
    Ok(Some((
        key.to_owned(),
        sha256_hex(&String::from_utf8_lossy(&canonical)),
    )))
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BillIn {
    org: Option<String>,
    price_cents: Option<Value>,
    currency: Option<String>,
    description: Option<String>,
    units: Option<Value>,
    period_started_at: Option<String>,
    period_ended_at: Option<String>,
    third_party: Option<bool>,
}

fn required_org(problems: &mut Problems, org: Option<&str>) -> Option<String> {
    problems.check(
        "/org",
        org.map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                "org is required: the id of an organisation that installed your app".to_owned()
            }),
    )
}

/// The fields bills and recurring bills share: org, price_cents, currency, description.
fn charge(
    problems: &mut Problems,
    org: &Option<String>,
    price_cents: &Option<Value>,
    currency: &Option<String>,
    description: &Option<String>,
) -> (Option<String>, Option<i64>, Option<String>, Option<String>) {
    (
        required_org(problems, org.as_deref()),
        problems.check(
            "/price_cents",
            money::cents("price_cents", price_cents.as_ref()),
        ),
        problems.check("/currency", money::currency(currency.as_deref())),
        problems.check("/description", money::description(description.as_deref())),
    )
}

fn validate_bill(body: &BillIn) -> Result<NewBill, ApiError> {
    let mut problems = Problems::default();
    let (org, price_cents, currency, description) = charge(
        &mut problems,
        &body.org,
        &body.price_cents,
        &body.currency,
        &body.description,
    );
    let units = problems.check(
        "/units",
        money::whole("units", body.units.as_ref(), 1, money::MAX_UNITS, Some(1)),
    );
    let started = problems.check(
        "/period_started_at",
        money::instant("period_started_at", body.period_started_at.as_deref()),
    );
    let ended = problems.check(
        "/period_ended_at",
        money::instant("period_ended_at", body.period_ended_at.as_deref()),
    );
    if let (Some(Some(start)), Some(Some(end))) = (started, ended) {
        if end < start {
            problems.add(
                "/period_ended_at",
                "period_ended_at is before period_started_at; the service period must end after it starts".into(),
            );
        }
    }
    problems.into_result()?;
    Ok(NewBill {
        org: org.unwrap(),
        price_cents: price_cents.unwrap(),
        currency: currency.unwrap(),
        description: description.unwrap(),
        units: units.unwrap(),
        period_started_at: started.flatten(),
        period_ended_at: ended.flatten(),
        third_party: body.third_party.unwrap_or(false),
    })
}

/// `POST /hub/v1/bills` (the app) → 201 with the bill; the same
/// Idempotency-Key and body answer the same bill again (201), another body 409.
#[utoipa::path(
    post,
    path = "/hub/v1/bills",
    tag = "billing",
    params(super::openapi::IdempotencyHeader),
    request_body = super::openapi::NewBill,
    responses((status = 201, description = "The bill (with a reused Idempotency-Key and the same body: the first one again)", body = super::openapi::Bill), JsonBodyErrors, Unauthorized, Forbidden),
    security(("app" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BillIn>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency(&headers, &body)?;
    let bill = validate_bill(&body)?;
    let org = bill.org.clone();
    let (row, _) = store::submit(
        &state.store,
        &app.id,
        bill,
        key.as_ref().map(|(k, h)| (k.as_str(), h.as_str())),
    )
    .await
    .map_err(|e| billing_error(e, &org, "bill", ""))?;
    Ok((StatusCode::CREATED, Json(row.to_json())))
}

/// `GET /hub/v1/bills[?org=]` (the app): its bills, oldest first.
#[utoipa::path(
    get,
    path = "/hub/v1/bills",
    tag = "billing",
    params(super::openapi::BillsQuery),
    responses((status = 200, description = "The app's bills, oldest first", body = super::openapi::BillList), BadRequest, Unauthorized),
    security(("app" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    // Only `org`: a misspelled parameter would otherwise list every bill.
    if let Some(unknown) = query.keys().find(|k| k.as_str() != "org") {
        return Err(ApiError::bad_request(
            "unknown_parameter",
            format!("there is no query parameter {unknown:?} here; the one there is: org"),
        )
        .at_parameter(unknown.clone()));
    }
    let rows = store::bills_of_app(
        &state.store.pool,
        &app.id,
        query.get("org").map(String::as_str),
    )
    .await
    .map_err(db_error)?;
    let list: Vec<_> = rows.iter().map(|r| r.to_json()).collect();
    Ok(Json(json!({ "bills": list })))
}

/// `GET /hub/v1/bills/{id}` (the app that made it).
#[utoipa::path(
    get,
    path = "/hub/v1/bills/{id}",
    tag = "billing",
    params(super::openapi::BillPath),
    responses((status = 200, description = "The bill", body = super::openapi::Bill), Unauthorized, NotFound),
    security(("app" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = store::bill_of_app(&state.store.pool, &app.id, &id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| billing_error(BillingError::NotFound, "", "bill", &id))?;
    Ok(Json(row.to_json()))
}

/// `DELETE /hub/v1/bills/{id}` (the app): cancel a bill not yet invoiced.
#[utoipa::path(
    delete,
    path = "/hub/v1/bills/{id}",
    tag = "billing",
    params(super::openapi::BillPath),
    responses((status = 200, description = "The bill, cancelled (again: the same answer)", body = super::openapi::Bill), Unauthorized, NotFound, Conflict),
    security(("app" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = store::cancel(&state.store, &app.id, &id)
        .await
        .map_err(|e| billing_error(e, "", "bill", &id))?;
    Ok(Json(row.to_json()))
}

/// Unknown fields are refused: a misspelled one would otherwise be ignored.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecurringIn {
    org: Option<String>,
    price_cents: Option<Value>,
    currency: Option<String>,
    description: Option<String>,
    period: Option<String>,
    frequency: Option<Value>,
    cycles: Option<Value>,
    start_date: Option<String>,
    initial_cents: Option<Value>,
}

fn validate_recurring(body: &RecurringIn) -> Result<NewRecurring, ApiError> {
    let mut problems = Problems::default();
    let (org, price_cents, currency, description) = charge(
        &mut problems,
        &body.org,
        &body.price_cents,
        &body.currency,
        &body.description,
    );
    let every = problems.check("/period", Every::parse(body.period.as_deref()));
    let frequency = problems.check(
        "/frequency",
        money::whole("frequency", body.frequency.as_ref(), 1, 366, Some(1)),
    );
    let cycles = match body.cycles.as_ref().filter(|c| !c.is_null()) {
        None => Some(None),
        Some(value) => problems
            .check(
                "/cycles",
                money::whole("cycles", Some(value), 1, 100_000, None),
            )
            .map(Some),
    };
    let today = chrono::Utc::now().date_naive();
    let start_date = match body.start_date.as_deref() {
        None => Some(today),
        Some(value) => problems.check("/start_date", money::date("start_date", value)),
    };
    // A schedule started long ago would bill every cycle since at its first run.
    if let Some(start) = start_date {
        if start < today - chrono::Days::new(MAX_START_DAYS_BACK) {
            problems.add(
                "/start_date",
                format!("start_date may be at most {MAX_START_DAYS_BACK} days (ten years) before today; bill earlier periods as one-off bills"),
            );
        }
    }
    if let (Some(Every::Semimonth), Some(start)) = (every, start_date) {
        use chrono::Datelike;
        if start.day() != 1 && start.day() != 16 {
            problems.add(
                "/start_date",
                "a semimonth schedule bills on the 1st and the 16th; start it on one of those days"
                    .into(),
            );
        }
    }
    let initial_cents = match body.initial_cents.as_ref().filter(|c| !c.is_null()) {
        None => Some(0),
        Some(value) => problems.check("/initial_cents", money::cents("initial_cents", Some(value))),
    };
    problems.into_result()?;
    Ok(NewRecurring {
        org: org.unwrap(),
        price_cents: price_cents.unwrap(),
        currency: currency.unwrap(),
        description: description.unwrap(),
        every: every.unwrap(),
        frequency: frequency.unwrap(),
        cycles: cycles.unwrap(),
        start_date: start_date.unwrap(),
        initial_cents: initial_cents.unwrap(),
    })
}

/// `POST /hub/v1/recurring_bills` (the app) → 201; idempotent as bills are.
#[utoipa::path(
    post,
    path = "/hub/v1/recurring_bills",
    tag = "billing",
    params(super::openapi::IdempotencyHeader),
    request_body = super::openapi::NewRecurringBill,
    responses((status = 201, description = "The recurring bill (with a reused Idempotency-Key and the same body: the first one again)", body = super::openapi::RecurringBill), JsonBodyErrors, Unauthorized, Forbidden),
    security(("app" = []))
)]
pub async fn create_recurring(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RecurringIn>,
) -> Result<impl IntoResponse, ApiError> {
    let key = idempotency(&headers, &body)?;
    let new = validate_recurring(&body)?;
    let org = new.org.clone();
    let (row, _) = store::submit_recurring(
        &state.store,
        &app.id,
        new,
        key.as_ref().map(|(k, h)| (k.as_str(), h.as_str())),
    )
    .await
    .map_err(|e| billing_error(e, &org, "recurring_bill", ""))?;
    Ok((StatusCode::CREATED, Json(row.to_json())))
}

/// `GET /hub/v1/recurring_bills` (the app).
#[utoipa::path(
    get,
    path = "/hub/v1/recurring_bills",
    tag = "billing",
    responses((status = 200, description = "The app's recurring bills", body = super::openapi::RecurringBillList), Unauthorized),
    security(("app" = []))
)]
pub async fn list_recurring(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
) -> Result<Json<Value>, ApiError> {
    let rows = store::recurring_of_app(&state.store.pool, &app.id, None)
        .await
        .map_err(db_error)?;
    let list: Vec<_> = rows.iter().map(|r| r.to_json()).collect();
    Ok(Json(json!({ "recurring_bills": list })))
}

/// `GET /hub/v1/recurring_bills/{id}` (the app that made it).
#[utoipa::path(
    get,
    path = "/hub/v1/recurring_bills/{id}",
    tag = "billing",
    params(super::openapi::RecurringBillPath),
    responses((status = 200, description = "The recurring bill", body = super::openapi::RecurringBill), Unauthorized, NotFound),
    security(("app" = []))
)]
pub async fn show_recurring(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = store::recurring_of_app(&state.store.pool, &app.id, Some(&id))
        .await
        .map_err(db_error)?
        .into_iter()
        .next()
        .ok_or_else(|| billing_error(BillingError::NotFound, "", "recurring_bill", &id))?;
    Ok(Json(row.to_json()))
}

/// `DELETE /hub/v1/recurring_bills/{id}` (the app): no further cycle is billed.
#[utoipa::path(
    delete,
    path = "/hub/v1/recurring_bills/{id}",
    tag = "billing",
    params(super::openapi::RecurringBillPath),
    responses((status = 200, description = "The recurring bill, cancelled: no further cycle is billed", body = super::openapi::RecurringBill), Unauthorized, NotFound, Conflict),
    security(("app" = []))
)]
pub async fn cancel_recurring(
    State(state): State<AppState>,
    CallingApp(app): CallingApp,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = store::cancel_recurring(&state.store, &app.id, &id)
        .await
        .map_err(|e| billing_error(e, "", "recurring_bill", &id))?;
    Ok(Json(row.to_json()))
}

/// `GET /hub/v1/orgs/{org}/bills` (admin and above): what every app billed
/// the org, one-off bills and recurring ones, oldest first, each with its
/// app's name.
#[utoipa::path(
    get,
    path = "/hub/v1/orgs/{org}/bills",
    tag = "billing",
    params(super::openapi::OrgPath),
    responses((status = 200, description = "The org's bills and recurring bills", body = super::openapi::OrgBills), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn org_bills(
    State(state): State<AppState>,
    _caller: OrgRole<ReadInvoices>,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pool = &state.store.pool;
    let names = store::billing_app_names(pool, &org)
        .await
        .map_err(db_error)?;
    let named = |mut value: Value| {
        let app = value["app_id"].as_str().unwrap_or_default();
        value["app_name"] = json!(names.get(app));
        value
    };
    let bills: Vec<Value> = store::bills_of_org(pool, &org)
        .await
        .map_err(db_error)?
        .iter()
        .map(|row| named(row.to_json()))
        .collect();
    let recurring: Vec<Value> = store::recurring_of_org(pool, &org)
        .await
        .map_err(db_error)?
        .iter()
        .map(|row| named(row.to_json()))
        .collect();
    Ok(Json(
        json!({ "bills": bills, "recurring_bills": recurring }),
    ))
}

/// `GET /hub/v1/orgs/{org}/invoices` (admin and above): newest period last.
#[utoipa::path(
    get,
    path = "/hub/v1/orgs/{org}/invoices",
    tag = "billing",
    params(super::openapi::OrgPath),
    responses((status = 200, description = "The org's issued invoices", body = super::openapi::InvoiceList), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn invoices(
    State(state): State<AppState>,
    _caller: OrgRole<ReadInvoices>,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rows = store::invoices_of_org(&state.store.pool, &org)
        .await
        .map_err(db_error)?;
    let list: Vec<_> = rows.iter().map(|r| r.to_summary_json()).collect();
    Ok(Json(json!({ "invoices": list })))
}

async fn org_invoice(state: &AppState, org: &str, id: &str) -> Result<store::InvoiceRow, ApiError> {
    store::invoice(&state.store.pool, id)
        .await
        .map_err(db_error)?
        .filter(|row| row.org_id == org)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "organisation {org} has no invoice {id}; list them with GET /hub/v1/orgs/{org}/invoices"
            ))
            .at_parameter("invoice")
        })
}

/// `GET /hub/v1/orgs/{org}/invoices/{invoice}`: the invoice's stored bytes,
/// exactly as the billing run cut them.
#[utoipa::path(
    get,
    path = "/hub/v1/orgs/{org}/invoices/{invoice}",
    tag = "billing",
    params(super::openapi::OrgInvoicePath),
    responses((status = 200, description = "The invoice, byte for byte as the billing run issued it", body = super::openapi::Invoice), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn invoice(
    State(state): State<AppState>,
    _caller: OrgRole<ReadInvoices>,
    Path((org, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let row = org_invoice(&state, &org, &id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], row.body))
}

/// `GET /hub/v1/orgs/{org}/invoices/{invoice}/html`: a printable page.
#[utoipa::path(
    get,
    path = "/hub/v1/orgs/{org}/invoices/{invoice}/html",
    tag = "billing",
    params(super::openapi::OrgInvoicePath),
    responses((status = 200, description = "The invoice as a printable HTML page", content_type = "text/html", body = String), Unauthorized, Forbidden, NotFound),
    security(("user" = []))
)]
pub async fn invoice_html(
    State(state): State<AppState>,
    caller: OrgRole<ReadInvoices>,
    Path((org, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let org_row = caller.org;
    let row = org_invoice(&state, &org, &id).await?;
    let invoice: Invoice = serde_json::from_str(&row.body).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        html::page(&invoice, &org_row.name),
    ))
}
