//! Create, update, delete and read records; `company`; id mapping.
//!
//! Bodies are wrapped by the collection name, as in Connec!:
//! `POST /connec/api/v2/{org}/invoices` with `{"invoices": {...}}` answers
//! `{"invoices": {...}}`. Every write answers the stream sequence of its event
//! in the `mno-consistency-token` header; list queries accept it as `min_seq`.
//! Who may call each route is in its signature ([`super::access`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mno_events::idm::PrincipalKind;
use mno_events::ApiError;
use serde_json::Value;

use super::access::{Access, AppAccess, Read, RecordAccess, Write};
use super::answer::{answer, answer_stored, view_of};
use super::errors::write_error;
use super::headers::{correlation_id, if_match};
use super::idempotent::WriteRequest;
use super::matching::{find_match, matching_fields};
use super::ApiState;
use crate::entities::EntityDef;
use crate::exact_json::ExactJson;
use crate::render;
use crate::write::{WriteContext, SINGULAR_ID};
use mno_events::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyErrors, MethodNotAllowed, NotFound, Unauthorized,
    Unavailable,
};

/// The record inside its collection wrapper, moved out of the body.
fn unwrap_body(def: &EntityDef, body: &mut Value) -> Result<Value, ApiError> {
    match body.get_mut(def.name).map(Value::take) {
        Some(record @ Value::Object(_)) => Ok(record),
        _ => Err(ApiError::unprocessable(
            "missing_wrapper",
            format!(
                "wrap the record in its collection name: {{\"{}\": {{...}}}}",
                def.name
            ),
        )
        .at_pointer(format!("/{}", def.name))),
    }
}

/// `POST /connec/api/v2/{org}/{entity}`.
#[utoipa::path(
    post,
    path = "/connec/api/v2/{org}/{entity}",
    tag = "connec",
    params(super::openapi::CollectionPath, super::openapi::MatchQuery, super::openapi::WriteHeaders),
    request_body = super::openapi::WrappedRecord,
    responses((status = 201, description = "Created", body = super::openapi::WrappedRecord, headers(("mno-consistency-token" = u64, description = "The stream sequence of the data answered"))), (status = 200, description = "Merged into the record whose matching_fields are equal", body = super::openapi::WrappedRecord, headers(("mno-consistency-token" = u64, description = "The stream sequence of the data answered"))), JsonBodyErrors, BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn create(
    State(state): State<Arc<ApiState>>,
    RecordAccess { access, .. }: RecordAccess<Write>,
    Path((org, entity)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    mut body: ExactJson,
) -> Result<Response, ApiError> {
    let request = WriteRequest::new(&state, &headers, access);
    let def = request.access.def;
    let path = format!("/connec/api/v2/{org}/{entity}");
    let fingerprint = request.fingerprint("POST", &path, &body.value);
    let matching = matching_fields(&params, &body.value)?;
    let fields = unwrap_body(def, &mut body.value)?;
    let root = format!("/{}", def.name);
    let writer = state.writer.clone();
    let existing = match matching {
        Some(names) => find_match(&state, &request.access, &fields, &names, &root).await?,
        None => None,
    };
    match existing {
        // Smart merge: the fields go into the record that matches, which answers 200.
        Some(id) => {
            let local = fields.get("id").and_then(Value::as_str).map(str::to_owned);
            let principal = &request.access.principal;
            let app = (principal.kind == PrincipalKind::App).then(|| principal.id.clone());
            request
                .write(fingerprint, |ctx| async move {
                    // The app's id is mapped first, with its own OP_ID_MAPPED event (as
                    // the stream promises), so the update then carries it as its source.
                    // The mapping event gets a fresh id: the request's (idempotent) id
                    // is the update's; a retry finds the mapping made and adds none.
                    if let (Some(app), Some(local)) = (app, local) {
                        let mapping = WriteContext {
                            event_id: None,
                            ..ctx.clone()
                        };
                        writer.map_id(&mapping, &app, &id, &local).await?;
                    }
                    writer
                        .update(&ctx, &id, fields, &body.numbers, &root, None)
                        .await
                })
                .await
        }
        None => {
            request
                .write(fingerprint, |ctx| async move {
                    writer.create(&ctx, fields, &body.numbers, &root).await
                })
                .await
        }
    }
}

/// `PUT /connec/api/v2/{org}/{entity}/{id}`: the fields present replace the stored ones.
#[utoipa::path(
    put,
    path = "/connec/api/v2/{org}/{entity}/{id}",
    tag = "connec",
    params(super::openapi::RecordPath, super::openapi::WriteHeaders),
    request_body = super::openapi::WrappedRecord,
    responses((status = 200, description = "Updated", body = super::openapi::WrappedRecord, headers(("mno-consistency-token" = u64, description = "The stream sequence of the data answered"))), JsonBodyErrors, BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn update(
    State(state): State<Arc<ApiState>>,
    RecordAccess { access, .. }: RecordAccess<Write>,
    Path((org, entity, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    mut body: ExactJson,
) -> Result<Response, ApiError> {
    let request = WriteRequest::new(&state, &headers, access);
    let def = request.access.def;
    let path = format!("/connec/api/v2/{org}/{entity}/{id}");
    let fingerprint = request.fingerprint("PUT", &path, &body.value);
    let patch = unwrap_body(def, &mut body.value)?;
    let expected = if_match(&headers)?;
    let root = format!("/{}", def.name);
    let global = state
        .writer
        .resolve(&request.context(None), &id)
        .await
        .map_err(|e| write_error(e, &root))?;
    let writer = state.writer.clone();
    request
        .write(fingerprint, |ctx| async move {
            writer
                .update(&ctx, &global, patch, &body.numbers, &root, expected)
                .await
        })
        .await
}

/// `DELETE /connec/api/v2/{org}/{entity}/{id}`: a tombstone; later reads answer 404.
#[utoipa::path(
    delete,
    path = "/connec/api/v2/{org}/{entity}/{id}",
    tag = "connec",
    params(super::openapi::RecordPath, super::openapi::WriteHeaders),
    responses((status = 200, description = "Deleted: the tombstone with the last state", body = super::openapi::WrappedRecord, headers(("mno-consistency-token" = u64, description = "The stream sequence of the data answered"))), BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn delete(
    State(state): State<Arc<ApiState>>,
    RecordAccess { access, .. }: RecordAccess<Write>,
    Path((org, entity, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = WriteRequest::new(&state, &headers, access);
    let root = format!("/{}", request.access.def.name);
    let expected = if_match(&headers)?;
    let global = state
        .writer
        .resolve(&request.context(None), &id)
        .await
        .map_err(|e| write_error(e, &root))?;
    let writer = state.writer.clone();
    let path = format!("/connec/api/v2/{org}/{entity}/{id}");
    let fingerprint = request.fingerprint("DELETE", &path, &Value::Null);
    request
        .write(fingerprint, |ctx| async move {
            writer.delete(&ctx, &global, expected).await
        })
        .await
}

/// `GET /connec/api/v2/{org}/{entity}/{id}`: the last event of the record's subject.
#[utoipa::path(
    get,
    path = "/connec/api/v2/{org}/{entity}/{id}",
    tag = "connec",
    params(super::openapi::RecordPath, super::openapi::ReadHeaders),
    responses((status = 200, description = "The record", body = super::openapi::WrappedRecord, headers(("mno-consistency-token" = u64, description = "The stream sequence of the data answered"))), Unauthorized, Forbidden, NotFound, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn read(
    State(state): State<Arc<ApiState>>,
    access: RecordAccess<Read>,
    Path((_, _, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    read_record(&state, &access, &id, &headers).await
}

/// The record `id` (a global id or the calling app's own) as it is now.
async fn read_record(
    state: &ApiState,
    request: &Access,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let root = format!("/{}", request.def.name);
    let ctx = request.context(correlation_id(headers), None);
    let global = state
        .writer
        .resolve(&ctx, id)
        .await
        .map_err(|e| write_error(e, &root))?;
    let stored = state
        .writer
        .live(&request.org, request.def.name, &global)
        .await
        .map_err(|e| write_error(e, &root))?;
    if !render::wants_external_ids(headers) {
        return Ok(answer_stored(StatusCode::OK, request.def.name, &stored));
    }
    let view = view_of(
        state,
        headers,
        request.org.as_str(),
        request.def.name,
        &stored,
    )
    .await;
    Ok(answer(StatusCode::OK, request.def.name, view, stored.seq))
}

/// `GET /connec/api/v2/{org}/company`.
#[utoipa::path(
    get,
    path = "/connec/api/v2/{org}/company",
    tag = "connec",
    params(super::openapi::OrgPath, super::openapi::ReadHeaders),
    responses((status = 200, description = "The org's company record", body = super::openapi::WrappedRecord, headers(("mno-consistency-token" = u64, description = "The stream sequence of the data answered"))), Unauthorized, Forbidden, NotFound, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn get_company(
    State(state): State<Arc<ApiState>>,
    access: RecordAccess<Read>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    read_record(&state, &access, SINGULAR_ID, &headers).await
}

/// `PUT /connec/api/v2/{org}/company`: creates the company record on first use.
#[utoipa::path(
    put,
    path = "/connec/api/v2/{org}/company",
    tag = "connec",
    params(super::openapi::OrgPath, super::openapi::WriteHeaders),
    request_body = super::openapi::WrappedRecord,
    responses((status = 200, description = "Updated", body = super::openapi::WrappedRecord, headers(("mno-consistency-token" = u64, description = "The stream sequence of the data answered"))), (status = 201, description = "Created by this first write", body = super::openapi::WrappedRecord, headers(("mno-consistency-token" = u64, description = "The stream sequence of the data answered"))), JsonBodyErrors, BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn put_company(
    State(state): State<Arc<ApiState>>,
    access: RecordAccess<Write>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: ExactJson,
) -> Result<Response, ApiError> {
    let entity = access.def.name.to_owned();
    update(
        State(state),
        access,
        Path((org, entity, SINGULAR_ID.into())),
        headers,
        body,
    )
    .await
}

/// `PUT /connec/api/v2/{org}/{entity}/{id}/id_map` `{"local_id": "47"}`: the calling app's own id of the record.
#[utoipa::path(
    put,
    path = "/connec/api/v2/{org}/{entity}/{id}/id_map",
    tag = "connec",
    params(super::openapi::RecordPath, super::openapi::WriteHeaders),
    request_body = super::openapi::LocalId,
    responses((status = 200, description = "Mapped", body = super::openapi::WrappedRecord, headers(("mno-consistency-token" = u64, description = "The stream sequence of the data answered"))), JsonBodyErrors, BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Unavailable),
    security(("app" = []), ("user" = []))
)]
pub async fn map_id(
    State(state): State<Arc<ApiState>>,
    AppAccess(RecordAccess { access, .. }): AppAccess,
    Path((org, entity, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: ExactJson,
) -> Result<Response, ApiError> {
    let request = WriteRequest::new(&state, &headers, access);
    let local = body
        .value
        .get("local_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_field",
                "send {\"local_id\": \"<your id of the record>\"}",
            )
            .at_pointer("/local_id")
        })?;
    let app = request.access.principal.id.clone();
    let writer = state.writer.clone();
    let path = format!("/connec/api/v2/{org}/{entity}/{id}/id_map");
    let fingerprint = request.fingerprint("PUT", &path, &body.value);
    request
        .write(fingerprint, |ctx| async move {
            writer.map_id(&ctx, &app, &id, &local).await
        })
        .await
}
