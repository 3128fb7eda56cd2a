//! Create, update, delete and read records; `company`; id mapping; schemas.
//!
//! Bodies are wrapped by the collection name, as in Connec!:
//! `POST /connec/api/v2/{org}/invoices` with `{"invoices": {...}}` answers
//! `{"invoices": {...}}`. Every write answers the stream sequence of its event
//! in the `mno-consistency-token` header; list queries accept it as `min_seq`.

use std::future::Future;
use std::sync::Arc;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mno_events::idm::{Action, Principal, PrincipalKind};
use mno_events::subject::Token;
use mno_events::ApiError;
use serde_json::{json, Value};

use super::errors::write_error;
use super::{ApiState, CONSISTENCY_HEADER};
use crate::auth::authorize;
use crate::entities::{self, schema, EntityDef};
use crate::exact_json::ExactJson;
use crate::idempotency::{self, Answer, Begin};
use crate::render;
use crate::write::{WriteContext, WriteError, Written, SINGULAR_ID};
use mno_events::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyErrors, MethodNotAllowed, NotFound, Unauthorized,
    Unavailable,
};

/// `GET /connec/api/v2`: the collections.
#[utoipa::path(
    get,
    path = "/connec/api/v2",
    tag = "connec",
    responses((status = 200, description = "The collections", body = super::openapi::CollectionList))
)]
pub async fn collections() -> Json<Value> {
    let list: Vec<Value> = entities::ENTITIES
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "title": e.title,
                "singular": e.singular,
                "json_schema": format!("/connec/api/v2/json_schema/{}", e.name),
            })
        })
        .collect();
    Json(json!({ "collections": list }))
}

/// `GET /connec/api/v2/json_schema/{entity}`.
#[utoipa::path(
    get,
    path = "/connec/api/v2/json_schema/{entity}",
    tag = "connec",
    params(super::openapi::EntityPath),
    responses((status = 200, description = "The JSON Schema (draft 2020-12) of the collection's records", body = super::openapi::JsonSchema), NotFound)
)]
pub async fn json_schema(Path(entity): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(schema::schema_of(entity_or_404(&entity)?)))
}

pub fn entity_or_404(name: &str) -> Result<&'static EntityDef, ApiError> {
    entities::lookup(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "there is no collection {name:?}; the collections are: {}",
            entities::names().join(", ")
        ))
        .at_parameter("entity")
    })
}

pub fn org_or_404(org: &str) -> Result<Token, ApiError> {
    Token::parse("org", org)
        .map_err(|_| ApiError::not_found(format!("no organisation {org:?}")).at_parameter("org"))
}

pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("if-match") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.trim_start_matches("W/").trim_matches('"');
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(
            "invalid_if_match",
            format!("If-Match must be the record's version, a whole number (got {text:?})"),
        )
    })
}

/// The caller's `X-Correlation-Id`, or a new one.
pub(super) fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

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

fn answer(status: StatusCode, entity: &str, view: Value, seq: u64) -> Response {
    // Moved into its wrapper, not copied (json!'s interpolation would copy the tree).
    let mut wrapped = serde_json::Map::new();
    wrapped.insert(entity.to_owned(), view);
    with_consistency_token((status, Json(Value::Object(wrapped))).into_response(), seq)
}

/// `{"<entity>": record}` written from the stored state as it is (no external ids).
fn answer_stored(status: StatusCode, entity: &str, stored: &crate::write::Stored) -> Response {
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

async fn view_of(
    state: &ApiState,
    headers: &HeaderMap,
    org: &str,
    entity: &str,
    written: &crate::write::Stored,
) -> Value {
    let mut view = render::record_view(written);
    if render::wants_external_ids(headers) {
        render::add_external_ids(&mut view, org, entity, &state.writer.idmap).await;
    }
    view
}

/// 201 for a new record, 200 otherwise.
pub(super) fn status_of(written: &Written) -> StatusCode {
    if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// An idempotent request: its key and the hash of what it asked.
struct Fingerprint {
    key: String,
    hash: String,
}

/// Everything a write handler needs once the caller is known.
pub(super) struct Request<'a> {
    state: &'a ApiState,
    headers: &'a HeaderMap,
    pub(super) def: &'static EntityDef,
    pub(super) org: Token,
    pub(super) principal: Principal,
}

pub(super) async fn begin<'a>(
    state: &'a ApiState,
    headers: &'a HeaderMap,
    org: &str,
    entity: &str,
    action: Action,
) -> Result<Request<'a>, ApiError> {
    let def = entity_or_404(entity)?;
    let org = org_or_404(org)?;
    let principal = authorize(
        state.idm.as_ref(),
        headers,
        org.as_str(),
        Some(def.name),
        action,
    )
    .await?;
    Ok(Request {
        state,
        headers,
        def,
        org,
        principal,
    })
}

impl Request<'_> {
    pub(super) fn context(&self, event_id: Option<String>) -> WriteContext {
        self.context_for(correlation_id(self.headers), event_id)
    }

    pub(super) fn context_for(
        &self,
        correlation_id: String,
        event_id: Option<String>,
    ) -> WriteContext {
        WriteContext {
            org: self.org.clone(),
            entity: self.def,
            principal: self.principal.clone(),
            correlation_id,
            event_id,
            stage: None,
        }
    }

    /// The request's fingerprint under its Idempotency-Key (`None` without
    /// one): taken before the handler moves the record out of the body.
    fn fingerprint(&self, method: &str, path: &str, body: &Value) -> Option<Fingerprint> {
        let key = self.headers.get(idempotency::HEADER)?;
        Some(Fingerprint {
            key: key.to_str().unwrap_or_default().to_owned(),
            hash: idempotency::request_hash(
                method,
                path,
                &serde_json::to_vec(body).unwrap_or_default(),
            ),
        })
    }

    /// Run `write` under the request's Idempotency-Key, if it has one.
    async fn write<F, Fut>(
        self,
        fingerprint: Option<Fingerprint>,
        write: F,
    ) -> Result<Response, ApiError>
    where
        F: FnOnce(WriteContext) -> Fut,
        Fut: Future<Output = Result<Written, WriteError>>,
    {
        let root = format!("/{}", self.def.name);
        let Some(Fingerprint { key, hash }) = fingerprint else {
            let written = write(self.context(None))
                .await
                .map_err(|e| write_error(e, &root))?;
            return Ok(self.respond(&written).await);
        };
        let scope = format!("{:?}:{}", self.principal.kind, self.principal.id);
        match self.state.idempotency.begin(&scope, &key, hash).await? {
            Begin::Replay(answer) => Ok(self.replay(answer)),
            Begin::Proceed {
                slot,
                event_id,
                request_hash,
            } => {
                let written = match write(self.context(Some(event_id.clone()))).await {
                    Ok(written) => written,
                    Err(e) => {
                        if !e.may_have_been_stored() {
                            self.state.idempotency.release(&slot).await;
                        }
                        return Err(write_error(e, &root));
                    }
                };
                let (status, view) = self.rendered(&written).await;
                let stored = Answer {
                    status: status.as_u16(),
                    body: view.clone(),
                    seq: written.record.seq,
                };
                self.state
                    .idempotency
                    .finish(&slot, request_hash, event_id, stored)
                    .await;
                Ok(answer(status, self.def.name, view, written.record.seq))
            }
        }
    }

    async fn respond(&self, written: &Written) -> Response {
        if !render::wants_external_ids(self.headers) {
            return answer_stored(status_of(written), self.def.name, &written.record);
        }
        let (status, view) = self.rendered(written).await;
        answer(status, self.def.name, view, written.record.seq)
    }

    /// 201 for a new record, 200 otherwise; the record as the caller sees it.
    async fn rendered(&self, written: &Written) -> (StatusCode, Value) {
        let status = status_of(written);
        let view = view_of(
            self.state,
            self.headers,
            self.org.as_str(),
            self.def.name,
            &written.record,
        )
        .await;
        (status, view)
    }

    fn replay(&self, stored: Answer) -> Response {
        let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
        let mut response = answer(status, self.def.name, stored.body, stored.seq);
        response.headers_mut().insert(
            "idempotent-replayed",
            "true".parse().expect("a valid header value"),
        );
        response
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
    Path((org, entity)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    mut body: ExactJson,
) -> Result<Response, ApiError> {
    let request = begin(&state, &headers, &org, &entity, Action::Write).await?;
    let def = request.def;
    let path = format!("/connec/api/v2/{org}/{entity}");
    let fingerprint = request.fingerprint("POST", &path, &body.value);
    let matching = matching_fields(&params, &body.value)?;
    let fields = unwrap_body(def, &mut body.value)?;
    let root = format!("/{}", def.name);
    let writer = state.writer.clone();
    let existing = match matching {
        Some(names) => find_match(&state, &request, &fields, &names, &root).await?,
        None => None,
    };
    match existing {
        // Smart merge: the fields go into the record that matches, which answers 200.
        Some(id) => {
            let local = fields.get("id").and_then(Value::as_str).map(str::to_owned);
            let app = (request.principal.kind == PrincipalKind::App)
                .then(|| request.principal.id.clone());
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

/// `matching_fields` from the query (`?matching_fields=code,name`) or the body (`"matching_fields": ["code"]`).
fn matching_fields(
    params: &HashMap<String, String>,
    body: &Value,
) -> Result<Option<Vec<String>>, ApiError> {
    let names: Vec<String> = if let Some(list) = params.get("matching_fields") {
        list.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    } else if let Some(list) = body.get("matching_fields") {
        list.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_field",
                    "matching_fields must be an array of field names",
                )
                .at_pointer("/matching_fields")
            })?
    } else {
        return Ok(None);
    };
    if names.is_empty() || names.iter().any(|n| !crate::query::parse::is_identifier(n)) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "matching_fields must name top-level fields, e.g. code",
        )
        .at_parameter("matching_fields"));
    }
    Ok(Some(names))
}

/// The one live record of this org's collection whose `names` equal the new record's.
async fn find_match(
    state: &ApiState,
    request: &Request<'_>,
    fields: &Value,
    names: &[String],
    root: &str,
) -> Result<Option<String>, ApiError> {
    let mut clauses = Vec::new();
    for name in names {
        let clause = match fields.get(name) {
            Some(Value::String(text)) => format!("{name} eq '{}'", text.replace('\'', "''")),
            Some(Value::Number(n)) => format!("{name} eq {n}"),
            Some(Value::Bool(b)) => format!("{name} eq {b}"),
            _ => {
                return Err(ApiError::unprocessable(
                    "invalid_field",
                    format!(
                    "matching field {name} must be present with a text, number or boolean value"
                ),
                )
                .at_pointer(format!("{root}/{name}")))
            }
        };
        clauses.push(clause);
    }
    // Match against everything written so far.
    let last = state
        .writer
        .publisher()
        .context()
        .get_stream(mno_events::streams::RECORDS)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .get_info()
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .state
        .last_sequence;
    if !state
        .store
        .wait_for(last, std::time::Duration::from_secs(5))
        .await
    {
        return Err(ApiError::unavailable(
            "the record store is catching up; retry the merge shortly",
        ));
    }
    let list = crate::query::ListRequest {
        filter: Some(clauses.join(" and ")),
        order_by: None,
        top: 2,
        skip: 0,
        include_deleted: false,
    };
    let page = crate::query::list(&state.store, request.org.as_str(), request.def, &list)
        .await
        .map_err(|e| {
            ApiError::unprocessable("invalid_field", e.to_string()).at_parameter("matching_fields")
        })?;
    match page.rows.as_slice() {
        [] => Ok(None),
        [one] => Ok(one
            .state
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)),
        _ => Err(ApiError::conflict(
            "ambiguous_match",
            format!(
                "{} records match on {}; make matching_fields more specific",
                page.total,
                names.join(", ")
            ),
        )),
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
    Path((org, entity, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    mut body: ExactJson,
) -> Result<Response, ApiError> {
    let request = begin(&state, &headers, &org, &entity, Action::Write).await?;
    let def = request.def;
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
    Path((org, entity, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = begin(&state, &headers, &org, &entity, Action::Write).await?;
    let root = format!("/{}", request.def.name);
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
    Path((org, entity, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = begin(&state, &headers, &org, &entity, Action::Read).await?;
    let root = format!("/{}", request.def.name);
    let ctx = request.context(None);
    let global = state
        .writer
        .resolve(&ctx, &id)
        .await
        .map_err(|e| write_error(e, &root))?;
    let stored = state
        .writer
        .live(&request.org, request.def.name, &global)
        .await
        .map_err(|e| write_error(e, &root))?;
    if !render::wants_external_ids(&headers) {
        return Ok(answer_stored(StatusCode::OK, request.def.name, &stored));
    }
    let view = view_of(
        &state,
        &headers,
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
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    read(
        State(state),
        Path((org, "company".into(), SINGULAR_ID.into())),
        headers,
    )
    .await
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
    Path(org): Path<String>,
    headers: HeaderMap,
    body: ExactJson,
) -> Result<Response, ApiError> {
    update(
        State(state),
        Path((org, "company".into(), SINGULAR_ID.into())),
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
    Path((org, entity, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: ExactJson,
) -> Result<Response, ApiError> {
    let request = begin(&state, &headers, &org, &entity, Action::Write).await?;
    if request.principal.kind != PrincipalKind::App {
        return Err(ApiError::forbidden(
            "only an app maps its own ids; call with the app's API key",
        ));
    }
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
    let app = request.principal.id.clone();
    let writer = state.writer.clone();
    let path = format!("/connec/api/v2/{org}/{entity}/{id}/id_map");
    let fingerprint = request.fingerprint("PUT", &path, &body.value);
    request
        .write(fingerprint, |ctx| async move {
            writer.map_id(&ctx, &app, &id, &local).await
        })
        .await
}
