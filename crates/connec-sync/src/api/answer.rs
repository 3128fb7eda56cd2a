//! How a record request is answered: the record in its collection wrapper,
//! with the `mno-consistency-token` header, rendered with or without
//! external ids as the caller asked.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::{ApiState, CONSISTENCY_HEADER};
use crate::render;
use crate::write::{Stored, Written};

/// `{"<entity>": view}` with the consistency token `seq`.
pub fn answer(status: StatusCode, entity: &str, view: Value, seq: u64) -> Response {
    // Moved into its wrapper, not copied (json!'s interpolation would copy the tree).
    let mut wrapped = serde_json::Map::new();
    wrapped.insert(entity.to_owned(), view);
    with_consistency_token((status, Json(Value::Object(wrapped))).into_response(), seq)
}

/// `{"<entity>": record}` written from the stored state as it is (no external ids).
pub fn answer_stored(status: StatusCode, entity: &str, stored: &Stored) -> Response {
    let mut out = Vec::with_capacity(stored.event.state.len() + 64);
    out.push(b'{');
    serde_json::to_writer(&mut out, entity).expect("a str always serialises");
    out.push(b':');
    render::write_record_view(stored, &mut out);
    out.push(b'}');
    let response = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response();
    with_consistency_token(response, stored.seq)
}

fn with_consistency_token(mut response: Response, seq: u64) -> Response {
    response
        .headers_mut()
        .insert(CONSISTENCY_HEADER, seq.into());
    response
}

pub async fn view_of(
    state: &ApiState,
    headers: &HeaderMap,
    org: &str,
    entity: &str,
    written: &Stored,
) -> Value {
    let mut view = render::record_view(written);
    if render::wants_external_ids(headers) {
        render::add_external_ids(&mut view, org, entity, &state.writer.idmap).await;
    }
    view
}

/// 201 for a new record, 200 otherwise.
pub fn status_of(written: &Written) -> StatusCode {
    if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}
