//! Reading many records: lists with `$filter`/`$orderby`/`$top`/`$skip` from the
//! record store, a record's history and the org's change feed from the stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mno_events::consume::{self, ReplayFrom};
use mno_events::idm::Action;
use mno_events::proto::RecordEvent;
use mno_events::subject::RecordSubject;
use mno_events::ApiError;
use serde_json::{json, Value};

use super::access::{Read, RecordAccess};
use super::catalogue::{entity_or_404, org_or_404};
use super::{ApiState, CONSISTENCY_HEADER};
use crate::entities;
use crate::query::{self, ListRequest, QueryError, DEFAULT_TOP, MAX_TOP};
use crate::render;
use mno_events::http_auth::authorize;
use mno_events::openapi::{
    BadRequest, Forbidden, NotFound, Unauthorized, Unavailable, Unprocessable,
};

/// How long `min_seq` waits for the store to catch up.
const MIN_SEQ_WAIT: Duration = Duration::from_secs(5);
const DEFAULT_CHANGES: usize = 100;

fn query_error(error: QueryError) -> ApiError {
    match error {
        QueryError::Invalid { parameter, detail } => {
            ApiError::bad_request("invalid_query", format!("{parameter}: {detail}"))
                .at_parameter(parameter)
        }
        QueryError::Store(e) => ApiError::internal(e),
    }
}

fn number<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    name: &'static str,
) -> Result<Option<T>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.parse::<T>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name} must be a whole number (got {v:?})"),
                )
                .at_parameter(name)
            })
        })
        .transpose()
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params.get(name).is_some_and(|v| v == "true" || v == "1")
}

/// A stream position sent by a client must not lie past the stream's end:
/// such a cursor names no write, and waiting for it (or reading after it)
/// would quietly miss what is written until the stream gets there.
async fn within_stream(
    state: &ApiState,
    seq: u64,
    parameter: &str,
    what_to_do: &str,
) -> Result<(), ApiError> {
    if seq == 0 {
        return Ok(());
    }
    let last =
        mno_events::streams::last_sequence(&state.writer_js, mno_events::streams::RECORDS).await?;
    if seq > last {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("{parameter} {seq} is past the end of the stream (its last sequence is {last}); {what_to_do}"),
        )
        .at_parameter(parameter));
    }
    Ok(())
}

/// `GET /connec/api/v2/{org}/{entity}`.
#[utoipa::path(
    get,
    path = "/connec/api/v2/{org}/{entity}",
    tag = "connec",
    params(super::openapi::CollectionPath, super::openapi::ListQuery),
    responses((status = 200, description = "A page of records", body = super::openapi::RecordList, headers(("mno-consistency-token" = u64, description = "The stream sequence of the data answered"))), BadRequest, Unauthorized, Forbidden, NotFound, Unprocessable, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    access: RecordAccess<Read>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (def, org) = (access.def, &access.org);

    let request = match params.get("cursor") {
        Some(cursor) => ListRequest::from_cursor(cursor).map_err(query_error)?,
        None => ListRequest {
            filter: params.get("$filter").cloned(),
            order_by: params.get("$orderby").cloned(),
            top: number::<u32>(&params, "$top")?.unwrap_or(DEFAULT_TOP),
            skip: number::<u64>(&params, "$skip")?.unwrap_or(0),
            include_deleted: flag(&params, "include_deleted"),
        },
    };
    if request.top == 0 || request.top > MAX_TOP {
        return Err(
            ApiError::bad_request("invalid_query", format!("$top must be 1 to {MAX_TOP}"))
                .at_parameter("$top"),
        );
    }
    // Read-your-writes: wait, bounded, until the store holds the caller's last write.
    if let Some(min_seq) = number::<u64>(&params, "min_seq")?
        // Already applied: no need to ask the bus (which may be down) anything.
        .filter(|min_seq| state.store.applied() < *min_seq)
    {
        within_stream(
            &state,
            min_seq,
            "min_seq",
            "send the sequence a write answered with (its consistency token)",
        )
        .await?;
        if !state.store.wait_for(min_seq, MIN_SEQ_WAIT).await {
            return Err(ApiError::unavailable(format!(
                "the record store has applied up to sequence {}, not yet {min_seq}; retry shortly",
                state.store.applied()
            ))
            .at_parameter("min_seq"));
        }
    }
    let page = query::list(&state.store, org.as_str(), def, &request)
        .await
        .map_err(query_error)?;
    let external = render::wants_external_ids(&headers);
    let mut records = Vec::with_capacity(page.rows.len());
    for row in page.rows {
        let mut view = render::view(row.state, row.version, def.name, row.deleted);
        if external {
            render::add_external_ids(&mut view, org.as_str(), def.name, &state.writer.idmap).await;
        }
        records.push(view);
    }
    let next = (request.skip.saturating_add(u64::from(request.top)) < page.total).then(|| {
        format!(
            "/connec/api/v2/{org}/{}?cursor={}",
            def.name,
            request.next_cursor()
        )
    });
    let body = json!({
        def.name: records,
        "pagination": {"top": request.top, "skip": request.skip, "total": page.total},
        "links": {"next": next},
    });
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(CONSISTENCY_HEADER, state.store.applied().into());
    Ok(response)
}

/// One event as history and the change feed show it.
fn event_json(event: &RecordEvent, seq: u64) -> Value {
    let source = event.source.clone().unwrap_or_default();
    let actor = event.actor.clone().unwrap_or_default();
    json!({
        "seq": seq,
        "event_id": event.event_id,
        "entity": event.entity,
        "id": event.record_id,
        "op": event.op_kind().api_name(),
        "version": event.version,
        "actor": {"kind": actor.kind, "id": actor.id},
        "source": {"app_id": source.app_id, "local_id": source.local_id},
        "occurred_at": event.occurred_at().map(|t| t.to_rfc3339()),
        "recorded_at": event.recorded_at().map(|t| t.to_rfc3339()),
        "changed_fields": event.changed_fields,
        "correlation_id": event.correlation_id,
    })
}

/// `GET /connec/api/v2/{org}/{entity}/{id}/history`: every version of a record.
#[utoipa::path(
    get,
    path = "/connec/api/v2/{org}/{entity}/{id}/history",
    tag = "connec",
    params(super::openapi::RecordPath),
    responses((status = 200, description = "Every event of the record, oldest first", body = super::openapi::History), Unauthorized, Forbidden, NotFound, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn history(
    State(state): State<Arc<ApiState>>,
    access: RecordAccess<Read>,
    Path((_, _, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (def, org) = (access.def, &access.org);
    let ctx = access.context(String::new(), None);
    let global = state
        .writer
        .resolve(&ctx, &id)
        .await
        .map_err(|e| super::errors::write_error(e, &format!("/{}", def.name)))?;
    let subject = RecordSubject::new(org.as_str(), def.name, &global)
        .map_err(|e| ApiError::not_found(e.to_string()))?
        .to_string();
    let mut versions = Vec::new();
    let js = &state.writer_js;
    consume::replay_until_caught_up(
        js,
        mno_events::streams::RECORDS,
        &[subject],
        ReplayFrom::Beginning,
        None,
        |m| {
            if let Ok(event) = RecordEvent::from_bytes(&m.payload) {
                versions.push(event_json(&event, m.seq));
            }
            true
        },
    )
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!(
            "no {} record {id} in this organisation",
            def.name
        )));
    }
    Ok(Json(json!({"history": versions})).into_response())
}

/// `GET /connec/api/v2/{org}/changes?since=&entities=&limit=`: events in stream
/// order after the cursor `since` (a stream sequence), deletes included.
#[utoipa::path(
    get,
    path = "/connec/api/v2/{org}/changes",
    tag = "connec",
    params(super::openapi::OrgPath, super::openapi::ChangesQuery),
    responses((status = 200, description = "The org's events after the cursor", body = super::openapi::Changes), BadRequest, Unauthorized, Forbidden, NotFound, Unprocessable, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn changes(
    State(state): State<Arc<ApiState>>,
    Path(org): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = org_or_404(&org)?;
    let since = number::<u64>(&params, "since")?.unwrap_or(0);
    let limit = number::<usize>(&params, "limit")?.unwrap_or(DEFAULT_CHANGES);
    if limit == 0 || limit > MAX_TOP as usize {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1 to {MAX_TOP}"),
        )
        .at_parameter("limit"));
    }
    let asked: Vec<String> = match params.get("entities").filter(|e| !e.is_empty()) {
        Some(list) => {
            let mut names = Vec::new();
            for name in list.split(',') {
                let def = entity_or_404(name.trim()).map_err(|e| e.at_parameter("entities"))?;
                names.push(def.name.to_owned());
            }
            names
        }
        None => entities::names().into_iter().map(str::to_owned).collect(),
    };
    // Only what the caller may read; asking by name for one it may not is refused.
    let explicit = params.contains_key("entities");
    let mut allowed = Vec::new();
    let mut last_refusal = None;
    for entity in &asked {
        match authorize(
            state.idm.as_ref(),
            &headers,
            org.as_str(),
            Some(entity),
            Action::Read,
        )
        .await
        {
            Ok(_) => allowed.push(entity.clone()),
            Err(e) if e.status == StatusCode::FORBIDDEN => {
                if explicit {
                    return Err(e);
                }
                last_refusal = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    if allowed.is_empty() {
        return Err(last_refusal
            .unwrap_or_else(|| ApiError::forbidden("no collection of this org may be read")));
    }
    within_stream(
        &state,
        since,
        "since",
        "send a `next` this feed answered, or 0 to read from the start",
    )
    .await?;
    let filters: Vec<String> = allowed.iter().map(|e| format!("rec.{org}.{e}.*")).collect();
    let mut events = Vec::new();
    let mut next = since;
    consume::replay_until_caught_up(
        &state.writer_js,
        mno_events::streams::RECORDS,
        &filters,
        ReplayFrom::Sequence(since + 1),
        None,
        |m| {
            if let Ok(event) = RecordEvent::from_bytes(&m.payload) {
                let mut item = event_json(&event, m.seq);
                let state_json = event.state_json().unwrap_or(Value::Null);
                item["record"] = render::view(
                    state_json,
                    event.version,
                    &event.entity,
                    event.op_kind() == mno_events::proto::Op::Deleted,
                );
                events.push(item);
            }
            next = m.seq;
            events.len() < limit
        },
    )
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(json!({"changes": events, "next": next.to_string()})).into_response())
}
