//! Each install's sync status, from the delivery API: the last delivery, the
//! lag of the app's consumer, recent failures, and dead letters with a redrive
//! button. The delivery API shows an org's deliveries to its admins. A
//! connector app's install also shows its connector's status: running, last
//! success, last error, and counts per entity.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::Value;

use super::back_to;
use crate::api::{enc, Auth};
use crate::error::PageError;
use crate::forms::{self, FormData};
use crate::layout::{self, Chrome};
use crate::session::Session;
use crate::PortalState;

/// One install's status, each part loaded on its own (a failure shows in its place).
async fn status_of(
    state: &PortalState,
    auth: Auth<'_>,
    org: &str,
    app: &str,
    csrf: &str,
) -> Markup {
    let api = &state.api;
    let app_q = enc(app);
    let last = api
        .get(
            auth,
            &format!("/connec/api/v2/deliveries?app={app_q}&limit=1"),
        )
        .await;
    let failed = api
        .get(
            auth,
            &format!("/connec/api/v2/deliveries?app={app_q}&status=failed&limit=100"),
        )
        .await;
    let consumer = api
        .get(auth, &format!("/connec/api/v2/deliveries/{app_q}/consumer"))
        .await;
    let dlq = api
        .get(
            auth,
            &format!(
                "/connec/api/v2/deliveries/{app_q}/dlq?org={}&limit=50",
                enc(org)
            ),
        )
        .await;
    let connector = api
        .get(
            auth,
            &format!("/hub/v1/orgs/{}/installs/{app_q}/connector", enc(org)),
        )
        .await;
    html! {
        @match &connector {
            Ok(v) => (connector_status(&v["connector"])),
            // Not a connector, or not configured as one: nothing to show.
            Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {}
            Err(e) => p.hint { "Connector: " (e.summary()) },
        }
        dl {
            dt { "Last delivery" }
            dd {
                @match &last {
                    Ok(v) => @match v["deliveries"].get(0) {
                        Some(d) => { (d["at"].as_str().unwrap_or_default()) ": " (d["status"].as_str().unwrap_or_default())
                                     @if let Some(code) = d["http_status"].as_u64() { " (HTTP " (code) ")" } }
                        None => "none yet",
                    },
                    Err(e) => (e.summary()),
                }
            }
            dt { "Lag" }
            dd data-field="lag" {
                @match &consumer {
                    Ok(c) => { (c["consumer"]["pending"].as_u64().unwrap_or(0) + c["consumer"]["ack_pending"].as_u64().unwrap_or(0)) " changes waiting" }
                    Err(e) if e.errors.iter().any(|x| x.code == "not_delivering" || x.code == "not_found") => "no webhook: the app pulls its changes",
                    Err(e) => (e.summary()),
                }
            }
            dt { "Recent failures" }
            dd data-field="failures" {
                @match &failed {
                    Ok(v) => (v["deliveries"].as_array().map_or(0, Vec::len)),
                    Err(e) => (e.summary()),
                }
            }
        }
        @match &dlq {
            Ok(v) => {
                @let letters = v["dead_letters"].as_array().cloned().unwrap_or_default();
                @if letters.is_empty() { p.hint { "No dead letters." } }
                @else {
                    table {
                        caption { "Dead letters" }
                        thead { tr { th scope="col" { "Seq" } th scope="col" { "Record" } th scope="col" { "Reason" } th scope="col" { "Attempts" } th scope="col" { span.skip { "Actions" } } } }
                        tbody {
                            @for l in &letters {
                                @let seq = l["seq"].as_u64().unwrap_or_default();
                                tr.dead-letter {
                                    td { (seq) }
                                    td { (l["entity"].as_str().unwrap_or_default()) " " (l["record_id"].as_str().unwrap_or_default()) " v" (l["version"]) }
                                    td { (l["reason"].as_str().unwrap_or_default()) }
                                    td.num { (l["attempts"]) }
                                    td {
                                        form.inline method="post" action={ "/o/" (org) "/sync/" (app) "/dlq/" (seq) "/redrive" } {
                                            (forms::csrf(csrf))
                                            button type="submit" { "Redrive " (seq) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Err(e) => p.hint { "Dead letters: " (e.summary()) },
        }
    }
}

/// A connector's sync with the outside app, as `GET .../connector` tells it.
fn connector_status(c: &Value) -> Markup {
    let text = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
    let entities = c["entities"].as_array().cloned().unwrap_or_default();
    html! {
        dl.connector data-connector=(text("connector")) {
            dt { "Connector" }
            dd { (text("connector")) @if c["running"].as_bool() == Some(true) { " · syncing now" } }
            dt { "Last success" }
            dd data-field="last-success" { @if c["last_success_at"].is_null() { "none yet" } @else { (text("last_success_at")) } }
            dt { "Last error" }
            dd data-field="last-error" {
                @if c["last_error"].is_null() { "none" }
                @else {
                    (text("last_error")) " (" (text("last_error_at")) ")"
                    @match c["failures"].as_i64().unwrap_or(0) {
                        0 => {}
                        1 => { "; failed once, next try " (text("next_attempt_at")) }
                        n => { "; failed " (n) " times in a row, next try " (text("next_attempt_at")) }
                    }
                }
            }
        }
        @if !entities.is_empty() {
            table.connector-entities {
                caption { "Synced with the outside app" }
                thead { tr { th scope="col" { "Entity" } th scope="col" { "Direction" } th.num scope="col" { "Pulled" } th.num scope="col" { "Pushed" } th.num scope="col" { "Conflicts" } th.num scope="col" { "Refused" } } }
                tbody {
                    @for e in &entities {
                        tr {
                            td { (e["entity"].as_str().unwrap_or_default()) }
                            td { (e["direction"].as_str().unwrap_or_default()) }
                            td.num { (e["pulled"]) } td.num { (e["pushed"]) } td.num { (e["conflicts"]) } td.num { (e["rejected"]) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn page(
    State(state): State<PortalState>,
    session: Session,
    Path(org): Path<String>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, Some(&org), "sync").await?;
    let installs = state
        .api
        .get(
            session.auth(),
            &format!("/hub/v1/orgs/{}/installs", enc(&org)),
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    let installs: Vec<Value> = installs["installs"].as_array().cloned().unwrap_or_default();
    let mut sections = Vec::new();
    for install in &installs {
        let app = install["app_id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| install["app_id"].to_string());
        let status = if chrome.is_admin() {
            status_of(&state, session.auth(), &org, &app, &session.csrf).await
        } else {
            html! { p.hint { "Admins of the organisation see its deliveries." } }
        };
        sections.push(html! {
            section.widget id={ "sync-" (app) } {
                h2 { (install["app_name"].as_str().unwrap_or_default()) }
                p.hint { "Data sharing " @if install["data_sharing"].as_bool() == Some(true) { "on" } @else { "off" } "." }
                (status)
            }
        });
    }
    let body = html! {
        @if installs.is_empty() { p.notice { "No app is installed yet: see the " a href={ "/o/" (org) "/marketplace" } { "marketplace" } "." } }
        div.widgets { @for s in &sections { (s) } }
    };
    Ok(layout::page("Sync status", &chrome, body).into_response())
}

/// Deliver a dead letter again (202 from the delivery API), then back to the status page.
pub async fn redrive(
    State(state): State<PortalState>,
    session: Session,
    Path((org, app, seq)): Path<(String, String, u64)>,
    Form(form): Form<FormData>,
) -> Result<Response, PageError> {
    session.check(&state, &form)?;
    state
        .api
        .post(
            session.auth(),
            &format!("/connec/api/v2/deliveries/{}/dlq/{seq}/redrive", enc(&app)),
            &Value::Null,
        )
        .await
        .map_err(|e| PageError::from_api(e, &session.here))?;
    Ok(back_to(&format!("/o/{org}/sync")))
}
