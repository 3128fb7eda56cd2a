//! The operator page: the bus's streams, consumers and lag (what `mno streams`
//! and `mno consumers` print), for the platform's operators (`MNO_OPERATORS`),
//! from `GET /operator/v1/bus`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::Value;

use crate::error::PageError;
use crate::layout::{self, Chrome};
use crate::session::Session;
use crate::PortalState;

fn rows(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

pub async fn page(
    State(state): State<PortalState>,
    session: Session,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&state, &session, None, "operator").await?;
    let bus = match state.api.get(session.auth(), "/operator/v1/bus").await {
        Ok(bus) => bus,
        Err(e) if e.status == StatusCode::FORBIDDEN => {
            let body = html! { p.notice { "This page is for the platform's operators (" (e.summary()) ")." } };
            return Ok(layout::page("Operator", &chrome, body).into_response());
        }
        Err(e) => return Err(PageError::from_api(e, &session.here)),
    };
    let body = html! {
        table #streams {
            caption { "Streams" }
            thead { tr { th scope="col" { "Stream" } th scope="col" { "Subjects" } th.num scope="col" { "Messages" } th.num scope="col" { "Bytes" } th.num scope="col" { "Last seq" } th.num scope="col" { "Consumers" } } }
            tbody {
                @for s in rows(&bus, "streams") {
                    tr {
                        td { (s["name"].as_str().unwrap_or_default()) }
                        td { @for subject in s["subjects"].as_array().into_iter().flatten() { code { (subject.as_str().unwrap_or_default()) } " " } }
                        td.num { (s["messages"]) } td.num { (s["bytes"]) } td.num { (s["last_seq"]) } td.num { (s["consumers"]) }
                    }
                }
            }
        }
        table #projections {
            caption { "Projections" }
            thead { tr { th scope="col" { "Consumer" } th.num scope="col" { "Lag" } th.num scope="col" { "Delivered seq" } } }
            tbody {
                @for p in rows(&bus, "projections") {
                    tr { td { (p["consumer"].as_str().unwrap_or_default()) } td.num { (p["lag"]) } td.num { (p["delivered_seq"]) } }
                }
            }
        }
        @let apps = rows(&bus, "apps");
        @if apps.is_empty() { p.hint { "No app receives webhooks yet." } }
        @else {
            table #apps {
                caption { "Delivery to apps (largest lag first)" }
                thead { tr { th scope="col" { "App" } th.num scope="col" { "Lag" } th.num scope="col" { "Redelivered" } th scope="col" { "Filters" } } }
                tbody {
                    @for a in &apps {
                        tr { td { (a["app_id"].as_str().unwrap_or_default()) } td.num { (a["lag"]) } td.num { (a["redelivered"]) }
                             td { @for f in a["filters"].as_array().into_iter().flatten() { code { (f.as_str().unwrap_or_default()) } " " } } }
                    }
                }
            }
        }
    };
    Ok(layout::page("Operator", &chrome, body).into_response())
}
