//! `POST /connec/batch`: many writes in one request, as Connec! clients sent them.
//!
//! `{"sequential": true, "atomic": false, "ops": [{"method": "post", "url":
//! "/api/v2/{org}/{entity}[/{id}]", "params": {"<entity>": {...}}}]}` answers
//! `{"results": [{"status", "body"}]}`, one per op, in order. At most 100 ops.
//! Ops run in order, each authorised on its own; with `"sequential": false`
//! they run concurrently (for independent ops: bulk loads). With `"atomic": true` every
//! op is prepared first and all are published as one JetStream atomic batch:
//! all are stored or none is (then each result names what failed, and the
//! others answer 424). In an atomic batch an op cannot depend on another op
//! of the same batch (a reference to a record created earlier in it, or two
//! writes to one record).

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mno_events::idm::Action;
use mno_events::publish::PublishError;
use mno_events::ApiError;
use serde_json::{json, Value};

use super::errors::write_error;
use super::records::{begin, if_match};
use super::ApiState;
use crate::exact_json::{ExactJson, NumberTexts};
use crate::render;
use crate::write::{Stage, Written};

pub const MAX_OPS: usize = 100;

/// One parsed op.
struct Op {
    method: String,
    org: String,
    entity: String,
    id: Option<String>,
    params: Value,
    /// Where the op's record sits in the batch body, for error pointers and exact numbers.
    root: String,
}

fn parse_ops(body: &Value) -> Result<(Vec<Op>, bool), ApiError> {
    let ops = body.get("ops").and_then(Value::as_array).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_body",
            "send {\"ops\": [{\"method\", \"url\", \"params\"}]}",
        )
        .at_pointer("/ops")
    })?;
    if ops.is_empty() || ops.len() > MAX_OPS {
        return Err(ApiError::unprocessable(
            "invalid_body",
            format!(
                "a batch holds 1 to {MAX_OPS} ops, this one {}; split it",
                ops.len()
            ),
        )
        .at_pointer("/ops"));
    }
    let atomic = body.get("atomic").and_then(Value::as_bool).unwrap_or(false);
    let mut parsed = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let at = |field: &str| format!("/ops/{i}/{field}");
        let method = op
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .filter(|m| ["post", "put", "delete", "get"].contains(&m.as_str()))
            .ok_or_else(|| {
                ApiError::unprocessable("invalid_op", "method must be post, put, delete or get")
                    .at_pointer(at("method"))
            })?;
        if atomic && method == "get" {
            return Err(
                ApiError::unprocessable("invalid_op", "an atomic batch holds only writes")
                    .at_pointer(at("method")),
            );
        }
        let url = op.get("url").and_then(Value::as_str).unwrap_or_default();
        let path = url
            .trim_start_matches("/connec")
            .trim_start_matches("/api/v2/");
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (org, entity, id) = match segments.as_slice() {
            [org, entity] => (org.to_string(), entity.to_string(), None),
            [org, entity, id] => (org.to_string(), entity.to_string(), Some(id.to_string())),
            _ => {
                return Err(ApiError::unprocessable(
                    "invalid_op",
                    format!("url must be /api/v2/{{org}}/{{entity}}[/{{id}}], not {url:?}"),
                )
                .at_pointer(at("url")))
            }
        };
        if method != "post" && id.is_none() && entity != "company" {
            return Err(ApiError::unprocessable(
                "invalid_op",
                format!("{method} needs a record id in the url"),
            )
            .at_pointer(at("url")));
        }
        parsed.push(Op {
            method,
            root: format!("/ops/{i}/params/{entity}"),
            org,
            entity,
            id,
            params: op.get("params").cloned().unwrap_or(Value::Null),
        });
    }
    Ok((parsed, atomic))
}

fn error_result(error: &ApiError) -> Value {
    json!({"status": error.status.as_u16(), "body": {"errors": error.errors}})
}

/// Run one op; the write is staged instead of published when `stage` is set.
async fn run(
    state: &ApiState,
    headers: &HeaderMap,
    op: &Op,
    numbers: &NumberTexts,
    stage: Option<Stage>,
) -> Result<(StatusCode, Written), ApiError> {
    let action = if op.method == "get" {
        Action::Read
    } else {
        Action::Write
    };
    let request = begin(state, headers, &op.org, &op.entity, action).await?;
    let mut ctx = request.context(None);
    ctx.stage = stage;
    let record = || -> Result<Value, ApiError> {
        op.params
            .get(request.def.name)
            .filter(|v| v.is_object())
            .cloned()
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "missing_wrapper",
                    format!("params must be {{\"{}\": {{...}}}}", request.def.name),
                )
                .at_pointer(op.root.clone())
            })
    };
    let writer = &state.writer;
    let fail = |e| write_error(e, &op.root);
    let id = match (&op.id, request.def.singular) {
        (_, true) => crate::write::SINGULAR_ID.to_owned(),
        (Some(id), false) if op.method != "post" => writer.resolve(&ctx, id).await.map_err(fail)?,
        (Some(id), false) => id.clone(),
        (None, false) => String::new(),
    };
    let expected = if_match(headers)?;
    let written = match op.method.as_str() {
        "post" => writer
            .create(&ctx, record()?, numbers, &op.root)
            .await
            .map_err(fail)?,
        "put" => writer
            .update(&ctx, &id, record()?, numbers, &op.root, expected)
            .await
            .map_err(fail)?,
        "delete" => writer.delete(&ctx, &id, expected).await.map_err(fail)?,
        _ => Written {
            record: writer
                .live(&request.org, request.def.name, &id)
                .await
                .map_err(fail)?,
            created: false,
        },
    };
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, written))
}

fn ok_result(op: &Op, status: StatusCode, written: &Written) -> Value {
    json!({
        "status": status.as_u16(),
        "body": { op.entity.as_str(): render::record_view(&written.record) },
    })
}

pub async fn batch(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: ExactJson,
) -> Result<Response, ApiError> {
    let (ops, atomic) = parse_ops(&body.value)?;
    let sequential = body
        .value
        .get("sequential")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if !atomic {
        let (state, headers, numbers) = (&state, &headers, &body.numbers);
        let one = |op| async move {
            match run(state, headers, op, numbers, None).await {
                Ok((status, written)) => ok_result(op, status, &written),
                Err(error) => error_result(&error),
            }
        };
        let results = if sequential {
            let mut results = Vec::with_capacity(ops.len());
            for op in &ops {
                results.push(one(op).await);
            }
            results
        } else {
            // Independent ops: run together, so their publishes share round trips.
            futures::future::join_all(ops.iter().map(one)).await
        };
        return Ok(Json(json!({ "results": results })).into_response());
    }

    // Atomic: prepare every op, then publish them together.
    let stage: Stage = Arc::new(Mutex::new(Vec::new()));
    let mut prepared = Vec::with_capacity(ops.len());
    let mut failure: Option<(usize, ApiError)> = None;
    for (i, op) in ops.iter().enumerate() {
        match run(&state, &headers, op, &body.numbers, Some(stage.clone())).await {
            Ok(done) => prepared.push(done),
            Err(error) => {
                failure = Some((i, error));
                break;
            }
        }
    }
    let staged = std::mem::take(&mut *stage.lock().expect("the stage lock is never poisoned"));
    if failure.is_none() && staged.len() != prepared.len() {
        // An op that changed nothing (an update to equal values) stages no event.
        failure = Some((
            prepared.len(),
            ApiError::unprocessable(
                "invalid_op",
                format!(
                    "{} of the {} ops of this atomic batch change nothing; leave them out",
                    prepared.len().abs_diff(staged.len()),
                    prepared.len()
                ),
            ),
        ));
    }
    if failure.is_none() {
        match state.writer.publisher().publish_atomic(staged).await {
            Ok(seqs) => {
                let results: Vec<Value> = ops
                    .iter()
                    .zip(prepared.iter_mut())
                    .zip(seqs)
                    .map(|((op, (status, written)), seq)| {
                        written.record.seq = seq;
                        ok_result(op, *status, written)
                    })
                    .collect();
                return Ok(Json(json!({ "results": results, "atomic": true })).into_response());
            }
            Err(e @ PublishError::BatchRejected { .. }) => {
                failure = Some((
                    0,
                    ApiError::conflict(
                        "batch_rejected",
                        format!("{e}; a record changed meanwhile: read and retry"),
                    ),
                ));
            }
            Err(e) => return Err(ApiError::unavailable(e.to_string())),
        }
    }
    let (failed_at, error) = failure.expect("set above");
    let status = error.status;
    let failed_at = failed_at.min(ops.len() - 1);
    let results: Vec<Value> = (0..ops.len())
        .map(|i| {
            if i == failed_at {
                error_result(&error)
            } else {
                error_result(&ApiError::new(
                    StatusCode::FAILED_DEPENDENCY,
                    "batch_aborted",
                    "not stored: another op of this atomic batch failed",
                ))
            }
        })
        .collect();
    Ok((status, Json(json!({ "results": results, "atomic": true }))).into_response())
}
