//! The organisation's bills and invoices from single billing
//! (docs/api/billing.md): what each app billed (one-off and recurring), and
//! the invoices the billing run issued, one per period and currency. Only
//! admins may read them; the others are told so.

use axum::extract::{Path, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::Value;

use crate::api::enc;
use crate::error::PageError;
use crate::layout::{self, Chrome};
use crate::session::Session;
use crate::PortalState;

pub async fn page(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, Some(&org), "invoices").await?;
    // A member who is not an admin is told why; someone who is not a member
    // at all gets the Hub's refusal below, not a word about a role.
    if chrome.current().is_some() && !chrome.is_admin() {
        let body = html! {
            p.notice {
                "Invoices show what the organisation spends on every app: only its admins and super admins see them. "
                "Your role here is " (super::members::role_name(chrome.role())) "."
            }
        };
        return Ok(layout::page("Invoices", &chrome, body).into_response());
    }
    let invoices = state
        .api
        .get(
            session.auth(),
            &format!("/hub/v1/orgs/{}/invoices", enc(&org)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let invoices = invoices["invoices"].as_array().cloned().unwrap_or_default();
    let bills = state
        .api
        .get(session.auth(), &format!("/hub/v1/orgs/{}/bills", enc(&org)))
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let list = |key: &str| bills[key].as_array().cloned().unwrap_or_default();
    let (one_off, recurring) = (list("bills"), list("recurring_bills"));
    let body = html! {
        p.hint {
            "The apps you installed bill the organisation through the platform; each month's billing run "
            "makes one invoice per currency, with a line per app. Their bills, invoiced or not yet, are listed below."
        }
        @if invoices.is_empty() {
            p.notice #no-invoices { "No invoice yet: the first comes with the billing run after an app bills the organisation." }
        } @else {
            table #invoices {
                caption { "Invoices" }
                thead { tr {
                    th scope="col" { "Period" } th scope="col" { "Currency" } th.num scope="col" { "Total" }
                    th scope="col" { "Status" } th scope="col" { "Invoice" }
                } }
                tbody {
                    @for invoice in invoices.iter().rev() { (row(&org, invoice)) }
                }
            }
        }
        h2 { "Bills" }
        p.hint { "What each app billed the organisation: a bill goes on the invoice of its period once the run has passed; each cycle of a recurring bill becomes a bill." }
        @if one_off.is_empty() && recurring.is_empty() {
            p.notice #no-bills { "No app has billed the organisation yet." }
        }
        @if !one_off.is_empty() {
            table #bills {
                caption { "Bills, newest first" }
                thead { tr {
                    th scope="col" { "App" } th scope="col" { "Description" } th.num scope="col" { "Amount" }
                    th scope="col" { "Currency" } th scope="col" { "Status" } th scope="col" { "Period" }
                } }
                tbody { @for bill in one_off.iter().rev() { (bill_row(bill)) } }
            }
        }
        @if !recurring.is_empty() {
            table #recurring-bills {
                caption { "Recurring bills" }
                thead { tr {
                    th scope="col" { "App" } th scope="col" { "Description" } th.num scope="col" { "Amount per cycle" }
                    th scope="col" { "Currency" } th scope="col" { "Status" } th scope="col" { "Period" }
                } }
                tbody { @for bill in recurring.iter().rev() { (recurring_row(bill)) } }
            }
        }
    };
    Ok(layout::page("Invoices", &chrome, body).into_response())
}

/// One invoice of the list (the API's summary), newest first.
fn row(org: &str, invoice: &Value) -> maud::Markup {
    let id = invoice["id"].as_str().unwrap_or_default();
    let currency = invoice["currency"].as_str().unwrap_or_default();
    let total = invoice["total_cents"]
        .as_i64()
        .map(|cents| mno_events::money::amount(cents, currency))
        .unwrap_or_default();
    let issued = invoice["issued_at"].as_str().unwrap_or_default();
    html! {
        tr.invoice {
            td { (invoice["period"].as_str().unwrap_or_default()) }
            td { (currency) }
            td.num data-cents=(invoice["total_cents"]) { (total) }
            // An invoice the run issued is final: it is never changed afterwards.
            td { "Issued " time datetime=(issued) { (issued.get(..10).unwrap_or(issued)) } }
            td { a href={ "/o/" (enc(org)) "/invoices/" (enc(id)) } { "View " (id) } }
        }
    }
}

/// The amount of a bill in its currency's decimals.
fn amount(bill: &Value) -> String {
    let currency = bill["currency"].as_str().unwrap_or_default();
    bill["price_cents"]
        .as_i64()
        .map(|cents| mno_events::money::amount(cents, currency))
        .unwrap_or_default()
}

/// The date part of an RFC 3339 time.
fn day(time: &Value) -> &str {
    let time = time.as_str().unwrap_or_default();
    time.get(..10).unwrap_or(time)
}

/// One bill: the app and description are the app's words, shown as text.
fn bill_row(bill: &Value) -> maud::Markup {
    let period = match (
        day(&bill["period_started_at"]),
        day(&bill["period_ended_at"]),
    ) {
        ("", "") => bill["due_period"].as_str().unwrap_or_default().to_owned(),
        (from, to) => format!("{from} to {to}"),
    };
    html! {
        tr.bill {
            td { (bill["app_name"].as_str().unwrap_or_default()) }
            td { (bill["description"].as_str().unwrap_or_default()) }
            td.num { (amount(bill)) }
            td { (bill["currency"].as_str().unwrap_or_default()) }
            td { (bill["status"].as_str().unwrap_or_default()) }
            td { (period) }
        }
    }
}

/// One recurring bill: its schedule, from its start, and the cycles billed so far.
fn recurring_row(bill: &Value) -> maud::Markup {
    let every = match bill["frequency"].as_i64().unwrap_or(1) {
        1 => format!("every {}", bill["period"].as_str().unwrap_or_default()),
        n => format!("every {n} {}s", bill["period"].as_str().unwrap_or_default()),
    };
    let cycles = match bill["cycles"].as_i64() {
        Some(total) => format!("{} of {total} cycles billed", bill["cycles_billed"]),
        None => format!("{} cycles billed", bill["cycles_billed"]),
    };
    html! {
        tr.recurring-bill {
            td { (bill["app_name"].as_str().unwrap_or_default()) }
            td { (bill["description"].as_str().unwrap_or_default()) }
            td.num { (amount(bill)) }
            td { (bill["currency"].as_str().unwrap_or_default()) }
            td { (bill["status"].as_str().unwrap_or_default()) }
            td { (every) ", from " (bill["start_date"].as_str().unwrap_or_default()) "; " (cycles) }
        }
    }
}

/// The invoice as the Hub renders it for print (every app-given text
/// escaped there); served with a policy that runs no script whatever it holds.
pub async fn invoice(
    State(state): State<PortalState>,
    session: Session,
    Path((org, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (_, html) = state
        .api
        .get_text(
            session.auth(),
            &format!("/hub/v1/orgs/{}/invoices/{}/html", enc(&org), enc(&id)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    Ok((
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        html,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_shows_the_total_in_the_currencys_decimals_and_links_the_invoice() {
        let row = row(
            "org-1",
            &serde_json::json!({"id": "inv-org-1-2026-11-JPY", "period": "2026-11", "currency": "JPY",
                                "total_cents": 1500, "issued_at": "2026-12-01T00:00:05Z"}),
        )
        .into_string();
        assert!(row.contains("<td>2026-11</td>"), "{row}");
        assert!(row.contains(">1500 JPY</td>"), "{row}");
        assert!(
            row.contains("Issued <time datetime=\"2026-12-01T00:00:05Z\">2026-12-01</time>"),
            "{row}"
        );
        assert!(
            row.contains("href=\"/o/org-1/invoices/inv-org-1-2026-11-JPY\""),
            "{row}"
        );
    }

    #[test]
    fn a_bill_shows_its_app_amount_status_and_period_as_text() {
        let row = bill_row(&serde_json::json!({"app_name": "Books <b>", "description": "<script>alert(1)</script>",
            "price_cents": 1050, "currency": "USD", "status": "submitted",
            "period_started_at": "2026-11-01T00:00:00.000Z", "period_ended_at": "2026-11-30T23:59:59.000Z"}))
        .into_string();
        assert!(!row.contains("<script>") && !row.contains("<b>"), "{row}");
        assert!(row.contains("Books &lt;b&gt;"), "{row}");
        assert!(row.contains(">10.50 USD</td>"), "{row}");
        assert!(row.contains("<td>submitted</td>"), "{row}");
        assert!(row.contains("<td>2026-11-01 to 2026-11-30</td>"), "{row}");
        let recurring = recurring_row(&serde_json::json!({"app_name": "CRM", "description": "Seats",
            "price_cents": 900, "currency": "EUR", "status": "active", "period": "month", "frequency": 3,
            "cycles": 4, "cycles_billed": 1, "start_date": "2026-11-01"}))
        .into_string();
        assert!(recurring.contains(">9.00 EUR</td>"), "{recurring}");
        assert!(
            recurring.contains("every 3 months, from 2026-11-01; 1 of 4 cycles billed"),
            "{recurring}"
        );
    }

    #[test]
    fn what_the_api_answered_is_escaped() {
        let row = row(
            "org-1",
            &serde_json::json!({"id": "inv\"><script>", "period": "<b>", "currency": "USD", "total_cents": 5}),
        )
        .into_string();
        assert!(!row.contains("<script>") && !row.contains("<b>"), "{row}");
        assert!(row.contains("0.05 USD"), "{row}");
    }
}
