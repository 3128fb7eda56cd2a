//! The organisation's invoices from single billing (docs/api/billing.md):
//! one per period and currency, issued by the billing run. Only admins may
//! read them; the others are told so.

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
    if !chrome.is_admin() {
        let body = html! {
            p.notice {
                "Invoices show what the organisation spends on every app: only its admins and super admins see them. "
                "Your role here is " (chrome.role().replace('_', " ")) "."
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
    let body = html! {
        p.hint {
            "The apps you installed bill the organisation through the platform; each month's billing run "
            "makes one invoice per currency, with a line per app."
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
