//! `GET /connec/api/v2/{org}/stream?entities=a,b`: the org's changes as
//! server-sent events, each with its RECORDS sequence as the event id, so a
//! client that reconnects with `Last-Event-ID` resumes without a gap.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures::{Stream, StreamExt};
use mno_events::consume::{self, ReplayFrom};
use mno_events::idm::{Credential, PrincipalKind};
use mno_events::proto::{Op, RecordEvent};
use mno_events::streams::RECORDS;
use mno_events::subject::{RecordSubject, Token};
use mno_events::ApiError;
use serde::Deserialize;

use super::api::ApiState;
use super::auth;
use super::{payload, view};
use mno_events::openapi::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Comma-separated collections; all the caller may read when absent.
    entities: Option<String>,
    /// Same as the `Last-Event-ID` header, for clients that cannot set headers.
    last_event_id: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/connec/api/v2/{org}/stream",
    tag = "delivery",
    params(crate::api::openapi::OrgPath, StreamQuery, crate::api::openapi::ResumeHeader),
    responses((status = 200, description = "Server-sent events: one per change, its id the RECORDS sequence", content_type = "text/event-stream", body = String), BadRequest, Unauthorized, Forbidden, NotFound, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn stream(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(query): Query<StreamQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let org_token = Token::parse("org", &org).map_err(|e| {
        ApiError::bad_request("invalid_parameter", e.to_string()).at_parameter("org")
    })?;
    let credential = auth::credential(&headers)?;
    let principal = auth::check(&*state.idm, &credential, &org, None).await?;
    let mut entities = Vec::new();
    for name in query
        .entities
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let token = Token::parse("entity", name).map_err(|e| {
            ApiError::bad_request("invalid_parameter", e.to_string()).at_parameter("entities")
        })?;
        auth::check(&*state.idm, &credential, &org, Some(name)).await?;
        entities.push(token);
    }
    let filters = if entities.is_empty() {
        vec![RecordSubject::org_filter(&org_token)]
    } else {
        entities
            .iter()
            .map(|e| RecordSubject::entity_filter(&org_token, e))
            .collect()
    };
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(query.last_event_id);
    let from = match last_event_id {
        Some(seq) => ReplayFrom::Sequence(seq + 1),
        None => ReplayFrom::New,
    };
    let ctx = state.supervisor.ctx.clone();
    let messages = consume::replay_ordered(&ctx.js, RECORDS, &filters, from)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let viewer = match principal.kind {
        PrincipalKind::App => Some(principal.id.clone()),
        PrincipalKind::User => None,
    };
    let heartbeat = ctx.config.sse_heartbeat;
    let idm = state.idm.clone();
    let named: HashSet<String> = entities.iter().map(|e| e.as_str().to_owned()).collect();
    // A first comment goes out at once: the answer's headers travel with it,
    // so a client knows it is connected before the first change or heartbeat.
    let opened = futures::stream::once(async { Ok(Event::default().comment("stream open")) });
    let events = opened.chain(translated(
        messages, ctx, idm, credential, org, viewer, named,
    ));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat")))
}

fn translated(
    messages: async_nats::jetstream::consumer::pull::Ordered,
    ctx: std::sync::Arc<super::worker::Context>,
    idm: std::sync::Arc<dyn mno_events::idm::Idm>,
    credential: Credential,
    org: String,
    viewer: Option<String>,
    named: HashSet<String>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let named = std::sync::Arc::new(named);
    futures::stream::unfold(messages, move |mut messages| {
        let named = named.clone();
        let ctx = ctx.clone();
        let idm = idm.clone();
        let credential = credential.clone();
        let org = org.clone();
        let viewer = viewer.clone();
        async move {
            loop {
                let message = match messages.next().await {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "SSE read hiccup");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    None => return None,
                };
                let Ok(seq) = message.info().map(|i| i.stream_sequence) else {
                    continue;
                };
                let Ok(event) = RecordEvent::from_bytes(&message.payload) else {
                    continue;
                };
                ctx.learned.learn(&event);
                if event.op_kind() == Op::IdMapped {
                    continue;
                }
                if let Some(app) = &viewer {
                    if event.source.as_ref().is_some_and(|s| &s.app_id == app) {
                        continue;
                    }
                }
                // Checked per event (the IDM answers from its cache, dropped on
                // Hub changes), so a revoked credential or a removed member stops
                // receiving at once: the stream ends. A collection the caller may
                // not read is skipped when it was not asked for by name.
                match auth::check(&*idm, &credential, &org, Some(&event.entity)).await {
                    Ok(_) => {}
                    Err(e)
                        if e.status == StatusCode::FORBIDDEN
                            && !named.contains(&event.entity)
                            && auth::check(&*idm, &credential, &org, None).await.is_ok() =>
                    {
                        continue
                    }
                    Err(e) => {
                        tracing::info!(%org, reason = %e, "SSE stream ended: the caller may no longer read");
                        return None;
                    }
                }
                let app = viewer.as_deref().unwrap_or(view::CONNEC_PROVIDER);
                // `{"<entity>": [record]}`, as a webhook body carries it.
                let data = payload::records_body(&[&event], app, &*ctx.ids, &*ctx.refs).await;
                let sse = Event::default()
                    .id(seq.to_string())
                    .event(event.entity.clone())
                    .data(String::from_utf8(data).expect("JSON is UTF-8"));
                return Some((Ok(sse), messages));
            }
        }
    })
}
