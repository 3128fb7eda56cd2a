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
//!
//! Credentials are the whole request's: missing or not accepted, the batch
//! answers 401 (an op naming an organisation they may not use answers 403 in
//! its result). With an `Idempotency-Key`, a retried batch gets the first
//! answer and writes nothing again; each op publishes under an event id
//! derived from the key's, so a retry after a crash midway is de-duplicated.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mno_events::http_auth::{authenticate, credential};
use mno_events::idm::{Action, Principal};
use mno_events::publish::PublishError;
use mno_events::ApiError;
use serde_json::{json, Value};

use super::access::Access;
use super::answer::status_of;
use super::errors::write_error;
use super::headers::{correlation_id, if_match};
use super::ApiState;
use crate::exact_json::{ExactJson, NumberTexts};
use crate::idempotency::{self, Answer, Begin};
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
    event_id: Option<String>,
    stage: Option<Stage>,
) -> Result<(StatusCode, Written), ApiError> {
    let action = if op.method == "get" {
        Action::Read
    } else {
        Action::Write
    };
    let request = Access::check(state, headers, &op.org, &op.entity, action).await?;
    let mut ctx = request.context(correlation_id.to_owned(), event_id);
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

/// A batch's answer before it is sent (and, under an Idempotency-Key, kept).
struct BatchAnswer {
    status: StatusCode,
    body: Vec<u8>,
    /// An op failed for a reason a retry may cure (503): the answer is not
    /// kept, so that a retry runs again.
    retryable: bool,
    /// The latest stream sequence among the records answered: the batch's
    /// consistency token (`min_seq` reads see all its writes).
    seq: Option<u64>,
}

impl BatchAnswer {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response();
        if let Some(seq) = self.seq {
            response
                .headers_mut()
                .insert(super::CONSISTENCY_HEADER, seq.into());
        }
        response
    }
}

/// `{"results": [{"status", "body"}], ["atomic": true]}`, written straight
/// into bytes: each record's stored fields are copied, not parsed and
/// serialised again (for 100 records that was most of a batch's cost).
fn results_answer(
    status: StatusCode,
    ops: &[Op],
    outcomes: &[Outcome],
    atomic: bool,
) -> BatchAnswer {
    let mut out = Vec::with_capacity(256 + outcomes.len() * 768);
    let mut retryable = false;
    let mut seq = None;
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
                seq = seq.max(Some(written.record.seq));
                out.extend_from_slice(
                    format!("{{\"status\":{},\"body\":{{", status.as_u16()).as_bytes(),
                );
                serde_json::to_writer(&mut out, &op.entity).expect("a str always serialises");
                out.push(b':');
                render::write_record_view(&written.record, &mut out);
                out.extend_from_slice(b"}}");
            }
            Outcome::Failed(result) => {
                retryable |= result["status"].as_u64().is_some_and(|s| s >= 500);
                serde_json::to_writer(&mut out, result).expect("a Value always serialises")
            }
        }
    }
    out.extend_from_slice(b"]}");
    BatchAnswer {
        status,
        body: out,
        retryable,
        seq,
    }
}

/// The event id of op `index` of a batch whose Idempotency-Key claimed
/// `base`: the same on every retry, distinct per op. Only random bits of the
/// UUIDv7 change, so it stays a valid UUIDv7.
fn op_event_id(base: &str, index: usize) -> String {
    let Ok(uuid) = uuid::Uuid::parse_str(base) else {
        return mno_events::envelope::new_event_id();
    };
    let mut bytes = *uuid.as_bytes();
    let [high, low] = (index as u16).to_be_bytes();
    bytes[14] ^= high;
    bytes[15] ^= low;
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// The key under which a sender's Idempotency-Keys are kept.
fn scope(sender: &Principal) -> String {
    format!("{:?}:{}", sender.kind, sender.id)
}

fn replayed(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(answer.body)).into_response();
    response.headers_mut().insert(
        "idempotent-replayed",
        "true".parse().expect("a valid header value"),
    );
    if answer.seq > 0 {
        response
            .headers_mut()
            .insert(super::CONSISTENCY_HEADER, answer.seq.into());
    }
    response
}

#[utoipa::path(
    post,
    path = "/connec/batch",
    tag = "connec",
    request_body = super::openapi::Batch,
    responses((status = 200, description = "One result per op, in op order", body = super::openapi::BatchAnswer), (status = 400, description = "The body is not JSON", body = super::openapi::BatchRefusal), (status = 401, description = "No or invalid credentials", body = super::openapi::BatchRefusal), (status = 403, description = "An atomic batch whose op was refused", body = super::openapi::BatchRefusal), (status = 404, description = "An atomic batch whose op named no record", body = super::openapi::BatchRefusal), (status = 409, description = "An atomic batch whose record changed meanwhile (batch_rejected), or a stale op", body = super::openapi::BatchRefusal), (status = 413, description = "The body is larger than 1 MiB", body = super::openapi::BatchRefusal), (status = 415, description = "Not Content-Type: application/json", body = super::openapi::BatchRefusal), (status = 422, description = "A malformed batch or op", body = super::openapi::BatchRefusal), (status = 424, description = "Another op of the atomic batch failed", body = super::openapi::BatchRefusal), (status = 503, description = "The bus did not answer", body = super::openapi::BatchRefusal)),
    security(("app" = []), ("user" = []))
)]
pub async fn batch(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: ExactJson,
) -> Result<Response, ApiError> {
    let ExactJson {
        value: mut body,
        numbers,
    } = body;
    credential(&headers)?;
    // Fingerprinted before the ops' records are moved out of the body.
    let key = headers.get(idempotency::HEADER).map(|key| {
        let hash = idempotency::request_hash(
            "POST",
            "/connec/batch",
            &serde_json::to_vec(&body).unwrap_or_default(),
        );
        (key.to_str().unwrap_or_default().to_owned(), hash)
    });
    let (mut ops, atomic) = parse_ops(&mut body)?;
    let sender = authenticate(state.idm.as_ref(), &headers, &ops[0].org).await?;
    let sequential = body
        .get("sequential")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let Some((key, hash)) = key else {
        return Ok(execute(
            &state, &headers, &mut ops, atomic, sequential, &numbers, None,
        )
        .await?
        .into_response());
    };
    let (slot, event_id, request_hash) =
        match state.idempotency.begin(&scope(&sender), &key, hash).await? {
            Begin::Replay(answer) => return Ok(replayed(answer)),
            Begin::Proceed {
                slot,
                event_id,
                request_hash,
            } => (slot, event_id, request_hash),
        };
    let answered = execute(
        &state,
        &headers,
        &mut ops,
        atomic,
        sequential,
        &numbers,
        Some(&event_id),
    )
    .await;
    match &answered {
        // Stored, in whole or in part: retries get this answer.
        Ok(answer) if answer.status.is_success() && !answer.retryable => {
            let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let kept = Answer {
                status: answer.status.as_u16(),
                body,
                seq: answer.seq.unwrap_or(0),
            };
            state
                .idempotency
                .finish(&slot, request_hash, event_id, kept)
                .await;
        }
        // Some op may have reached the bus: a retry runs again under the same event ids.
        Ok(answer) if answer.retryable => {}
        Err(error) if error.status.is_server_error() => {}
        // Refused as a whole (an atomic batch stores nothing): the key is free again.
        _ => state.idempotency.release(&slot).await,
    }
    Ok(answered?.into_response())
}

/// Run the ops; `event_id` is the Idempotency-Key's claim, if any.
async fn execute(
    state: &ApiState,
    headers: &HeaderMap,
    ops: &mut [Op],
    atomic: bool,
    sequential: bool,
    numbers: &NumberTexts,
    event_id: Option<&str>,
) -> Result<BatchAnswer, ApiError> {
    // The ops of one batch are one request: they share its correlation id.
    let correlation = correlation_id(headers);
    let event_id_of = |index: usize| event_id.map(|base| op_event_id(base, index));
    if !atomic {
        let correlation = &correlation;
        let one = |(index, op)| async move {
            Outcome::of(
                run(
                    state,
                    headers,
                    op,
                    numbers,
                    correlation,
                    event_id_of(index),
                    None,
                )
                .await,
            )
        };
        let outcomes = if sequential {
            let mut outcomes = Vec::with_capacity(ops.len());
            for indexed in ops.iter_mut().enumerate() {
                outcomes.push(one(indexed).await);
            }
            outcomes
        } else {
            // Independent ops: run together, so their publishes share round trips.
            futures::future::join_all(ops.iter_mut().enumerate().map(one)).await
        };
        return Ok(results_answer(StatusCode::OK, ops, &outcomes, false));
    }

    // Atomic: prepare every op, then publish them together.
    let stage: Stage = Arc::new(Mutex::new(Vec::new()));
    let mut prepared = Vec::with_capacity(ops.len());
    let mut failure: Option<(usize, ApiError)> = None;
    for (i, op) in ops.iter_mut().enumerate() {
        match run(
            state,
            headers,
            op,
            numbers,
            &correlation,
            event_id_of(i),
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
                return Ok(results_answer(StatusCode::OK, ops, &outcomes, true));
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
    Ok(results_answer(error.status, ops, &outcomes, true))
}
