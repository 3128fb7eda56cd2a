//! `GET /connec/api/v2/{org}/stream?entities=a,b`: the org's changes as
//! server-sent events, each with its RECORDS sequence as the event id, so a
//! client that reconnects with `Last-Event-ID` resumes without a gap.
//!
//! Bounded, so that streams cannot take the process's memory: each caller
//! holds at most `sse_max_streams` at once (429 beyond), each stream reads
//! the bus in small batches into a buffer of `sse_buffer` events, and a
//! client that leaves that buffer full for `sse_slow_after` is cut off (its
//! connection is closed; it resumes with `Last-Event-ID`).

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures::{Stream, StreamExt};
use mno_events::consume::{self, ReplayFrom};
use mno_events::http_auth::{self, decide};
use mno_events::idm::{Action, Credential, PrincipalKind};
use mno_events::proto::{Op, RecordEvent};
use mno_events::streams::RECORDS;
use mno_events::subject::{RecordSubject, Token};
use mno_events::ApiError;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::http_state::ApiState;
use super::open_streams::StreamSlot;
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
    let credential = http_auth::credential(&headers)?;
    let principal = decide(&*state.idm, &credential, &org, None, Action::Read).await?;
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
        decide(&*state.idm, &credential, &org, Some(name), Action::Read).await?;
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
    // A resume id that is not one of this stream's ids would quietly become a
    // gap (new changes only): refused, as a cursor that is no number is.
    let header_id = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        "Last-Event-ID must be the id (a whole number) of an event this stream sent; leave it out for new changes only",
                    )
                    .at_parameter("last_event_id")
                })?,
        ),
    };
    let last_event_id = header_id.or(query.last_event_id);
    let ctx = state.supervisor.ctx.clone();
    let from = match last_event_id {
        Some(seq) => {
            // An id past the stream's end names no event (and u64::MAX + 1 would
            // wrap round to the beginning): refused, as a cursor past the end is.
            let last = mno_events::streams::last_sequence(&ctx.js, RECORDS).await?;
            if seq > last {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("last_event_id {seq} is past the end of the stream (its last sequence is {last}); resume from an id this stream sent, or leave it out for new changes"),
                )
                .at_parameter("last_event_id"));
            }
            ReplayFrom::Sequence(seq + 1)
        }
        None => ReplayFrom::New,
    };
    let slot = state
        .sse_streams
        .take(&principal, ctx.config.sse_max_streams)?;
    let messages =
        consume::replay_ordered_bounded(&ctx.js, RECORDS, &filters, from, ctx.config.sse_buffer)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let viewer = match principal.kind {
        PrincipalKind::App => Some(principal.id.clone()),
        PrincipalKind::User => None,
    };
    let heartbeat = ctx.config.sse_heartbeat;
    let (buffer, slow_after) = (ctx.config.sse_buffer.max(1), ctx.config.sse_slow_after);
    let idm = state.idm.clone();
    let named: HashSet<String> = entities.iter().map(|e| e.as_str().to_owned()).collect();
    let events = translated(messages, ctx, idm, credential, org, viewer, named);
    let (sender, receiver) = mpsc::channel(buffer);
    let (cut_off, cut) = oneshot::channel();
    tokio::spawn(feed(events, sender, slow_after, cut_off, slot));
    // A first comment goes out at once: the answer's headers travel with it,
    // so a client knows it is connected before the first change or heartbeat.
    let opened = futures::stream::once(async { Ok(Event::default().comment("stream open")) });
    let body = opened.chain(taken(receiver, cut));
    Ok(Sse::new(body).keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat")))
}

/// Why a stream was cut off (the connection is closed with it).
#[derive(Debug, thiserror::Error)]
#[error(
    "the client took no event for {0:?} while its buffer was full; it resumes with Last-Event-ID"
)]
struct TooSlow(Duration);

/// Move events from the bus into the stream's buffer until the client goes
/// away, the stream ends, or the client is too slow to keep up.
async fn feed(
    events: impl Stream<Item = Event>,
    sender: mpsc::Sender<Event>,
    slow_after: Duration,
    cut_off: oneshot::Sender<TooSlow>,
    _slot: StreamSlot,
) {
    tokio::pin!(events);
    loop {
        let event = tokio::select! {
            // A client that went away frees its consumer at once, not at the next change.
            _ = sender.closed() => return,
            event = events.next() => match event {
                Some(event) => event,
                None => return,
            },
        };
        match sender.send_timeout(event, slow_after).await {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                tracing::info!(
                    ?slow_after,
                    "SSE stream cut off: its client does not keep up"
                );
                let _ = cut_off.send(TooSlow(slow_after));
                return;
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
        }
    }
}

/// The events the client takes, ending in an error when it was cut off (the
/// error makes the server close the connection instead of ending the answer).
fn taken(
    receiver: mpsc::Receiver<Event>,
    cut: oneshot::Receiver<TooSlow>,
) -> impl Stream<Item = Result<Event, TooSlow>> {
    futures::stream::unfold(
        (receiver, Some(cut)),
        |(mut receiver, mut cut)| async move {
            loop {
                let Some(pending_cut) = cut.as_mut() else {
                    return receiver.recv().await.map(|e| (Ok(e), (receiver, None)));
                };
                tokio::select! {
                    biased;
                    outcome = pending_cut => match outcome {
                        Ok(too_slow) => return Some((Err(too_slow), (receiver, None))),
                        // The feed ended without cutting off: drain what it left.
                        Err(_) => cut = None,
                    },
                    event = receiver.recv() => {
                        return event.map(|e| (Ok(e), (receiver, cut)));
                    }
                }
            }
        },
    )
}

fn translated(
    messages: async_nats::jetstream::consumer::pull::Ordered,
    ctx: std::sync::Arc<super::worker::Context>,
    idm: std::sync::Arc<dyn mno_events::idm::Idm>,
    credential: Credential,
    org: String,
    viewer: Option<String>,
    named: HashSet<String>,
) -> impl Stream<Item = Event> {
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
                match decide(&*idm, &credential, &org, Some(&event.entity), Action::Read).await {
                    Ok(_) => {}
                    Err(e)
                        if e.status == StatusCode::FORBIDDEN
                            && !named.contains(&event.entity)
                            && decide(&*idm, &credential, &org, None, Action::Read)
                                .await
                                .is_ok() =>
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
                return Some((sse, messages));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::open_streams::tests::app;
    use super::super::open_streams::OpenStreams;
    use super::*;

    #[tokio::test]
    async fn a_client_that_takes_nothing_is_cut_off_and_frees_its_place() {
        let streams = Arc::new(OpenStreams::default());
        let slot = streams.take(&app("a"), 1).unwrap();
        let endless = futures::stream::repeat_with(|| Event::default().data("change"));
        let (sender, receiver) = mpsc::channel(4);
        let (cut_off, cut) = oneshot::channel();
        // The receiver is kept but never read: the buffer fills, then the feed gives up.
        feed(endless, sender, Duration::from_millis(50), cut_off, slot).await;
        assert!(cut.await.is_ok(), "the client is told it was cut off");
        assert_eq!(receiver.len(), 4, "no more than the buffer was held");
        assert!(
            streams.take(&app("a"), 1).is_ok(),
            "the place is free again"
        );
    }

    #[tokio::test]
    async fn a_cut_off_ends_the_body_in_an_error() {
        let (sender, receiver) = mpsc::channel(4);
        let (cut_off, cut) = oneshot::channel();
        sender.send(Event::default().data("one")).await.unwrap();
        cut_off.send(TooSlow(Duration::from_secs(1))).unwrap();
        // As `feed` does when it cuts a client off.
        drop(sender);
        let items: Vec<_> = taken(receiver, cut).collect().await;
        assert!(
            matches!(items.first(), Some(Err(TooSlow(_)))),
            "the error comes first, so the connection closes at once"
        );
        // A feed that ends normally ends the body after what it left.
        let (sender, receiver) = mpsc::channel(4);
        let (cut_off, cut) = oneshot::channel::<TooSlow>();
        sender.send(Event::default().data("one")).await.unwrap();
        drop((sender, cut_off));
        let items: Vec<_> = taken(receiver, cut).collect().await;
        assert_eq!(items.len(), 1);
        assert!(items[0].is_ok());
    }
}
