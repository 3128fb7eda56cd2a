//! Books' routes: pages, sign-in and the webhook endpoint.

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{Datelike, Utc};
use mno_example_web::{
    after_edit, escape, name_row, page, resolved_notice, PageError, RecordEdit, SignIn,
};
use mno_sdk::billing::NewBill;
use mno_sdk::connec::{Collection, Record, WriteOptions};
use mno_sdk::webhooks::{IdMapAnswer, Payload, Receiver, Webhook};
use mno_sdk::Mno;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::store::{Customer, Invoice, Store};
use crate::sync::{self, CustomerFields, PersonChange};

#[derive(Clone)]
pub struct AppState {
    pub mno: Mno,
    pub sign_in: SignIn,
    pub receiver: Receiver,
    pub store: Store,
    pub app_id: String,
    pub monthly_price_cents: u64,
}

impl FromRef<AppState> for Receiver {
    fn from_ref(state: &AppState) -> Receiver {
        state.receiver.clone()
    }
}

impl FromRef<AppState> for SignIn {
    fn from_ref(state: &AppState) -> SignIn {
        state.sign_in.clone()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/customers", post(add_customer))
        .route("/customers/{id}", post(edit_customer))
        .route("/customers/{id}/delete", post(delete_customer))
        .route("/invoices", post(add_invoice))
        .route("/invoices/{id}/payments", post(add_payment))
        .route("/monthly-bill", post(monthly_bill))
        .route("/catch-up", post(catch_up))
        .merge(SignIn::routes())
        .route("/mno", post(webhook))
        .with_state(state)
}

/// Cents as the decimal text Connec! takes ("1250.50").
fn decimal(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn people(state: &AppState, org: &str) -> Collection<CustomerFields> {
    state.mno.connec().collection(org, "people")
}

#[derive(Deserialize)]
struct Notice {
    resolved: Option<String>,
    billed: Option<String>,
    caught_up: Option<usize>,
}

async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        let body = "<p>Signed out.</p><p><a href=\"/login\">Sign in with Mno</a></p>";
        return Ok(Html(page("Books", body)).into_response());
    };
    let mut notices = String::new();
    if let Some(id) = notice.resolved {
        notices.push_str(&resolved_notice(&id));
    }
    if let Some(bill) = notice.billed {
        notices.push_str(&format!(
            "<p class=\"notice\">Monthly bill {} submitted.</p>",
            escape(&bill)
        ));
    }
    if let Some(n) = notice.caught_up {
        notices.push_str(&format!(
            "<p class=\"notice\">Caught up: {n} changes applied.</p>"
        ));
    }
    let customers = state.store.customers(&session.org).await?;
    let mut rows = String::new();
    for c in &customers {
        let action = format!("/customers/{}", c.id);
        rows.push_str(&name_row(
            &action,
            &c.id,
            c.version,
            &c.first_name,
            &c.last_name,
        ));
    }
    let mut invoices = String::new();
    for i in state.store.invoices(&session.org).await? {
        invoices.push_str(&format!(
            "<li id=\"{id}\">{id} to {customer}: {total} {currency}, balance {balance}\
             <form method=\"post\" action=\"/invoices/{id}/payments\"><input name=\"amount\" placeholder=\"Amount\">\
             <button>Record payment</button></form></li>",
            id = escape(&i.id),
            customer = escape(&i.customer_id),
            total = decimal(i.total_cents),
            currency = escape(&i.currency),
            balance = decimal(i.balance_cents),
        ));
    }
    let options: String = customers
        .iter()
        .map(|c| format!("<option value=\"{0}\">{0}</option>", escape(&c.id)))
        .collect();
    let body = format!(
        "<p>Signed in as {} ({}). <a href=\"/logout\">Sign out</a></p>{notices}\
         <h2>Customers</h2><ul>{rows}</ul>\
         <form method=\"post\" action=\"/customers\"><input name=\"first_name\" placeholder=\"First name\">\
         <input name=\"last_name\" placeholder=\"Last name\"><button>Add</button></form>\
         <h2>Invoices</h2><ul>{invoices}</ul>\
         <form method=\"post\" action=\"/invoices\"><select name=\"customer\">{options}</select>\
         <input name=\"amount\" placeholder=\"Amount\"><button>Issue invoice</button></form>\
         <h2>Subscription</h2><form method=\"post\" action=\"/monthly-bill\"><button>Submit this month's bill ({} {})</button></form>\
         <form method=\"post\" action=\"/catch-up\"><button>Catch up from the change feed</button></form>",
        escape(&session.user_name),
        escape(&session.org_name),
        decimal(state.monthly_price_cents as i64),
        escape(&session.org_currency),
    );
    Ok(Html(page("Books", &body)).into_response())
}

#[derive(Deserialize)]
struct NewCustomer {
    first_name: String,
    last_name: String,
}

/// Adds a customer: shared through Connec! under Books' id, then kept locally.
async fn add_customer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewCustomer>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let id = state.store.next_id().await?;
    let fields = CustomerFields {
        first_name: form.first_name,
        last_name: form.last_name,
    };
    let record = people(&state, &session.org).create(&id, &fields).await?;
    save_customer(&state, &session.org, &id, record).await?;
    Ok(Redirect::to("/").into_response())
}

async fn save_customer(
    state: &AppState,
    org: &str,
    id: &str,
    record: Record<CustomerFields>,
) -> Result<(), PageError> {
    state
        .store
        .upsert_customer(&Customer {
            id: id.to_owned(),
            org: org.to_owned(),
            connec_id: record.id.connec_id().unwrap_or_default().to_owned(),
            first_name: record.fields.first_name,
            last_name: record.fields.last_name,
            version: record.version as i64,
        })
        .await?;
    Ok(())
}

/// Saves an edit (see `RecordEdit::save`).
async fn edit_customer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(edit): Form<RecordEdit>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some((record, resolved)) = edit.save(&people(&state, &session.org), &id).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    save_customer(&state, &session.org, &id, record).await?;
    Ok(after_edit(&id, resolved).into_response())
}

/// Deletes a customer everywhere: in Connec!, then here.
async fn delete_customer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    people(&state, &session.org)
        .delete(&id, &WriteOptions::default())
        .await?;
    state.store.delete_customer(&id).await?;
    Ok(Redirect::to("/").into_response())
}

/// An amount typed as "120" or "120.50", in cents.
fn parse_cents(text: &str) -> Option<i64> {
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), "0"));
    if frac.len() > 2 {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    (whole >= 0).then_some(whole * 100 + frac)
}

fn bad_amount(text: &str) -> Response {
    let body = format!(
        "<p>{} is not an amount: type one such as 120 or 120.50. <a href=\"/\">Back</a></p>",
        escape(text)
    );
    (StatusCode::BAD_REQUEST, Html(page("Books", &body))).into_response()
}

#[derive(Deserialize)]
struct NewInvoice {
    customer: String,
    amount: String,
}

/// Issues an invoice to a customer, shared through Connec! as a sales invoice.
async fn add_invoice(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewInvoice>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(cents) = parse_cents(&form.amount) else {
        return Ok(bad_amount(&form.amount));
    };
    let id = state.store.next_id().await?;
    let today = Utc::now().date_naive();
    let fields = json!({
        "type": "CUSTOMER", "status": "AUTHORISED", "title": format!("Invoice {id}"),
        "transaction_date": today.to_string(), "due_date": (today + chrono::Duration::days(30)).to_string(),
        "currency": session.org_currency, "total_amount": decimal(cents), "balance": decimal(cents),
        "person_id": form.customer,
    });
    state
        .mno
        .connec()
        .collection::<Value>(&session.org, "invoices")
        .create(&id, &fields)
        .await?;
    state
        .store
        .save_invoice(&Invoice {
            id,
            org: session.org,
            customer_id: form.customer,
            currency: session.org_currency,
            total_cents: cents,
            balance_cents: cents,
        })
        .await?;
    Ok(Redirect::to("/").into_response())
}

#[derive(Deserialize)]
struct NewPayment {
    amount: String,
}

/// Records a payment of an invoice: shared through Connec! as a payment
/// received (`payments`, its line naming the invoice), then the invoice's new balance.
async fn add_payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(invoice_id): Path<String>,
    Form(form): Form<NewPayment>,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(cents) = parse_cents(&form.amount) else {
        return Ok(bad_amount(&form.amount));
    };
    let Some(invoice) = state.store.invoice(&session.org, &invoice_id).await? else {
        let body = "<p>No such invoice. <a href=\"/\">Back</a></p>";
        return Ok((StatusCode::NOT_FOUND, Html(page("Books", body))).into_response());
    };
    // Shared under Books' own id; its line points at the invoice by Books' id too.
    let payment = state.store.next_id().await?;
    let fields = json!({
        "type": "CUSTOMER", "status": "AUTHORISED",
        "transaction_date": Utc::now().date_naive().to_string(),
        "currency": invoice.currency, "amount": decimal(cents), "person_id": invoice.customer_id,
        "lines": [{"amount": decimal(cents), "invoice_id": invoice_id}],
    });
    state
        .mno
        .connec()
        .collection::<Value>(&session.org, "payments")
        .create(&payment, &fields)
        .await?;
    let balance = invoice.balance_cents - cents;
    let status = if balance <= 0 { "PAID" } else { "AUTHORISED" };
    state
        .mno
        .connec()
        .collection::<Value>(&session.org, "invoices")
        .update(
            &invoice_id,
            &json!({"balance": decimal(balance), "status": status}),
            &WriteOptions::default(),
        )
        .await?;
    state
        .store
        .add_payment(&payment, &invoice_id, cents)
        .await?;
    Ok(Redirect::to("/").into_response())
}

/// Submits this month's subscription bill for the org. Its idempotency key
/// names the org and month, so pressing twice bills once.
async fn monthly_bill(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let today = Utc::now().date_naive();
    let start = today.with_day(1).unwrap_or(today);
    let next = if start.month() == 12 {
        start
            .with_year(start.year() + 1)
            .and_then(|d| d.with_month(1))
    } else {
        start.with_month(start.month() + 1)
    }
    .unwrap_or(start);
    let last_day = next.pred_opt().unwrap_or(start);
    let month = start.format("%Y-%m").to_string();
    let bill = NewBill::new(
        &session.org,
        state.monthly_price_cents,
        &session.org_currency,
        &format!("Books subscription, {month}"),
    )
    .period(
        &format!("{start}T00:00:00Z"),
        &format!("{last_day}T23:59:59Z"),
    );
    let key = format!("books-monthly-{}-{month}", session.org);
    let bill = state.mno.billing().create_bill(&bill, &key).await?;
    Ok(Redirect::to(&format!("/?billed={}", bill.id)).into_response())
}

/// Applies the changes of the org's change feed since the saved cursor.
async fn catch_up(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(session) = state.sign_in.user(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let applied = sync::catch_up(&state.mno, &state.store, &session.org).await?;
    Ok(Redirect::to(&format!("/?caught_up={applied}")).into_response())
}

/// People created, changed or deleted by other apps: applied under Books'
/// ids, and the new ids told in the answer.
async fn webhook(
    State(state): State<AppState>,
    webhook: Webhook,
) -> Result<IdMapAnswer, PageError> {
    let mut answer = IdMapAnswer::new();
    if let Payload::Records(delivery) = webhook.payload() {
        for (entity, record) in delivery.records().filter(|(e, _)| *e == "people") {
            let Some(global) = record.id.connec_id() else {
                continue;
            };
            let fields = if record.is_delete() {
                None
            } else {
                Some(record.parse::<CustomerFields>()?)
            };
            let change = PersonChange {
                org: record.group_id.clone(),
                connec_id: global.to_owned(),
                books_id: record.id.local_id(&state.app_id).map(str::to_owned),
                version: record.version,
                fields,
            };
            if let Some(books_id) = sync::apply(&state.store, change).await? {
                answer = answer.map(entity, global, &books_id);
            }
        }
    }
    webhook.done().await;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::parse_cents;

    #[test]
    fn amounts_are_read_in_cents() {
        assert_eq!(parse_cents("120"), Some(12_000));
        assert_eq!(parse_cents("120.5"), Some(12_050));
        assert_eq!(parse_cents(" 0.07 "), Some(7));
        assert_eq!(parse_cents("1.234"), None);
        assert_eq!(parse_cents("-3"), None);
        assert_eq!(parse_cents("ten"), None);
    }
}
