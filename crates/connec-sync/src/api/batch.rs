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
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mno_events::idm::Action;
use mno_events::publish::PublishError;
use mno_events::ApiError;
use serde_json::{json, Value};

use super::errors::write_error;
use super::records::{begin, correlation_id, if_match, status_of};
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

/// The ops of `body`; their params are moved out of it (not copied).
fn parse_ops(body: &mut Value) -> Result<(Vec<Op>, bool), ApiError> {
    let atomic = body.get("atomic").and_then(Value::as_bool).unwrap_or(false);
    let ops = body
        .get_mut("ops")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| {
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
    let mut parsed = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter_mut().enumerate() {
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
            params: op.get_mut("params").map(Value::take).unwrap_or(Value::Null),
        });
    }
    Ok((parsed, atomic))
}

fn error_result(error: &ApiError) -> Value {
    json!({"status": error.status.as_u16(), "body": {"errors": error.errors}})
}

/// Run one op; the write is staged instead of published when `stage` is set.
/// The op's record is moved out of its params (an op runs once).
async fn run(
    state: &ApiState,
    headers: &HeaderMap,
    op: &mut Op,
    numbers: &NumberTexts,
    correlation_id: &str,
    stage: Option<Stage>,
) -> Result<(StatusCode, Written), ApiError> {
    let action = if op.method == "get" {
        Action::Read
    } else {
        Action::Write
    };
    let request = begin(state, headers, &op.org, &op.entity, action).await?;
    let mut ctx = request.context_for(correlation_id.to_owned(), None);
    ctx.stage = stage;
    let name = request.def.name;
    let root = op.root.as_str();
    let mut record = || -> Result<Value, ApiError> {
        op.params
            .get_mut(name)
            .filter(|v| v.is_object())
            .map(Value::take)
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "missing_wrapper",
                    format!("params must be {{\"{name}\": {{...}}}}"),
                )
                .at_pointer(root)
            })
    };
    let writer = &state.writer;
    let fail = |e| write_error(e, root);
    let id = match (&op.id, request.def.singular) {
        (_, true) => crate::write::SINGULAR_ID.to_owned(),
        (Some(id), false) if op.method != "post" => writer.resolve(&ctx, id).await.map_err(fail)?,
        (Some(id), false) => id.clone(),
        (None, false) => String::new(),
    };
    let expected = if_match(headers)?;
    let written = match op.method.as_str() {
        "post" => writer
            .create(&ctx, record()?, numbers, root)
            .await
            .map_err(fail)?,
        "put" => writer
            .update(&ctx, &id, record()?, numbers, root, expected)
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
    Ok((status_of(&written), written))
}

/// What one op answers.
enum Outcome {
    Done(StatusCode, Box<Written>),
    Failed(Value),
}

impl Outcome {
    fn of(result: Result<(StatusCode, Written), ApiError>) -> Outcome {
        match result {
            Ok((status, written)) => Outcome::Done(status, Box::new(written)),
            Err(error) => Outcome::Failed(error_result(&error)),
        }
    }
}

/// `{"results": [{"status", "body"}], ["atomic": true]}`, written straight
/// into bytes: each record's stored fields are copied, not parsed and
/// serialised again (for 100 records that was most of a batch's cost).
fn results_response(
    status: StatusCode,
    ops: &[Op],
    outcomes: &[Outcome],
    atomic: bool,
) -> Response {
    let mut out = Vec::with_capacity(256 + outcomes.len() * 768);
    out.extend_from_slice(b"{");
    if atomic {
        out.extend_from_slice(b"\"atomic\":true,");
    }
    out.extend_from_slice(b"\"results\":[");
    for (i, (op, outcome)) in ops.iter().zip(outcomes).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match outcome {
            Outcome::Done(status, written) => {
                out.extend_from_slice(
                    format!("{{\"status\":{},\"body\":{{", status.as_u16()).as_bytes(),
                );
                serde_json::to_writer(&mut out, &op.entity).expect("a str always serialises");
                out.push(b':');
                render::write_record_view(&written.record, &mut out);
                out.extend_from_slice(b"}}");
            }
            Outcome::Failed(result) => {
                serde_json::to_writer(&mut out, result).expect("a Value always serialises")
            }
        }
    }
    out.extend_from_slice(b"]}");
    (status, [(header::CONTENT_TYPE, "application/json")], out).into_response()
}

pub async fn batch(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: ExactJson,
) -> Result<Response, ApiError> {
    let ExactJson {
        value: mut body,
        numbers,
    } = body;
    let (mut ops, atomic) = parse_ops(&mut body)?;
    let sequential = body
        .get("sequential")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    // The ops of one batch are one request: they share its correlation id.
    let correlation = correlation_id(&headers);
    if !atomic {
        let (state, headers, numbers, correlation) = (&state, &headers, &numbers, &correlation);
        let one = |op| async move {
            Outcome::of(run(state, headers, op, numbers, correlation, None).await)
        };
        let outcomes = if sequential {
            let mut outcomes = Vec::with_capacity(ops.len());
            for op in ops.iter_mut() {
                outcomes.push(one(op).await);
            }
            outcomes
        } else {
            // Independent ops: run together, so their publishes share round trips.
            futures::future::join_all(ops.iter_mut().map(one)).await
        };
        return Ok(results_response(StatusCode::OK, &ops, &outcomes, false));
    }

    // Atomic: prepare every op, then publish them together.
    let stage: Stage = Arc::new(Mutex::new(Vec::new()));
    let mut prepared = Vec::with_capacity(ops.len());
    let mut failure: Option<(usize, ApiError)> = None;
    for (i, op) in ops.iter_mut().enumerate() {
        match run(
            &state,
            &headers,
            op,
            &numbers,
            &correlation,
            Some(stage.clone()),
        )
        .await
        {
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
                let outcomes: Vec<Outcome> = prepared
                    .into_iter()
                    .zip(seqs)
                    .map(|((status, mut written), seq)| {
                        written.record.seq = seq;
                        Outcome::Done(status, Box::new(written))
                    })
                    .collect();
                return Ok(results_response(StatusCode::OK, &ops, &outcomes, true));
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
    let failed_at = failed_at.min(ops.len() - 1);
    let aborted = ApiError::new(
        StatusCode::FAILED_DEPENDENCY,
        "batch_aborted",
        "not stored: another op of this atomic batch failed",
    );
    let outcomes: Vec<Outcome> = (0..ops.len())
        .map(|i| Outcome::Failed(error_result(if i == failed_at { &error } else { &aborted })))
        .collect();
    Ok(results_response(error.status, &ops, &outcomes, true))
}
