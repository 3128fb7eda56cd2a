//! Connec!'s part of `/openapi.json`: path parameters, the answer shapes (the
//! handlers write them as JSON; these types only describe them). The document
//! listing every `#[utoipa::path]` of the record API and delivery is [`super::document`].
//!
//! Records are open JSON: each collection's JSON Schema is served at
//! `/connec/api/v2/json_schema/{entity}`, and an app may add fields of its own,
//! so a record is described here as an object and the schema named per collection.

#![allow(dead_code)] // the types describe answers; they are never built

use std::collections::HashMap;

use mno_events::openapi::ErrorBody;
pub use mno_events::openapi::{AppPath, OrgPath};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EntityPath {
    /// A collection, e.g. `invoices` (`GET /connec/api/v2` lists them).
    entity: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CollectionPath {
    /// The organisation's id.
    org: String,
    /// A collection, e.g. `invoices` (`GET /connec/api/v2` lists them).
    entity: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RecordPath {
    /// The organisation's id.
    org: String,
    /// A collection, e.g. `invoices` (`GET /connec/api/v2` lists them).
    entity: String,
    /// The record's id: the platform's, or the calling app's own once mapped.
    id: String,
}

/// Headers of writes.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct WriteHeaders {
    /// Same key, same answer, one event (kept 24 h per sender).
    #[param(rename = "Idempotency-Key")]
    idempotency_key: Option<String>,
    /// The version the writer saw; another current version answers 409 `stale_version`.
    #[param(rename = "If-Match")]
    if_match: Option<String>,
    /// `true`: reference fields answer in the calling app's own ids.
    #[param(rename = "CONNEC-EXTERNAL-IDS")]
    external_ids: Option<String>,
}

/// Headers of reads.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ReadHeaders {
    /// `true`: reference fields answer in the calling app's own ids.
    #[param(rename = "CONNEC-EXTERNAL-IDS")]
    external_ids: Option<String>,
}

/// Query of a list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `field op value` with `eq ne gt ge lt le`, `and`, `or`, `not`, parentheses.
    #[param(rename = "$filter")]
    filter: Option<String>,
    /// `field asc|desc`, several separated by commas.
    #[param(rename = "$orderby")]
    order_by: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(rename = "$top")]
    top: Option<u32>,
    /// Offset.
    #[param(rename = "$skip")]
    skip: Option<u64>,
    /// The opaque `links.next` of the previous page.
    cursor: Option<String>,
    /// `true`: deleted records too.
    include_deleted: Option<bool>,
    /// Wait until the store applied this stream sequence (a write's `mno-consistency-token`).
    min_seq: Option<u64>,
}

/// Query of the change feed.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The cursor: a stream sequence (`0` to start, then the answer's `next`).
    since: Option<u64>,
    /// Collections, comma-separated (default: every one the caller may read).
    entities: Option<String>,
    /// At most this many events, 1 to 1000 (default 100).
    limit: Option<u32>,
}

/// `{"<collection>": {record}}`: one record wrapped by its collection's name.
/// A record carries `id`, `version`, `group_id`, `created_at`, `updated_at`,
/// `resource_type` and the fields of its collection's JSON Schema.
#[derive(ToSchema)]
pub struct WrappedRecord(HashMap<String, HashMap<String, Value>>);

/// A list: `{"<collection>": [records], "pagination", "links"}`.
#[derive(ToSchema)]
pub struct RecordList {
    pagination: Pagination,
    links: Links,
    /// The records, under the collection's name.
    #[serde(flatten)]
    records: HashMap<String, Value>,
}

#[derive(ToSchema)]
pub struct Pagination {
    top: u64,
    skip: u64,
    total: u64,
}

#[derive(ToSchema)]
pub struct Links {
    /// Pass as `cursor` for the next page; `null` on the last.
    next: Option<String>,
}

#[derive(ToSchema)]
pub struct Collection {
    name: String,
    title: String,
    singular: bool,
    /// Where its records' JSON Schema is served.
    json_schema: String,
}

#[derive(ToSchema)]
pub struct CollectionList {
    collections: Vec<Collection>,
}

/// A JSON Schema (draft 2020-12) of a collection's records.
#[derive(ToSchema)]
pub struct JsonSchema(HashMap<String, Value>);

#[derive(ToSchema)]
pub struct Actor {
    kind: String,
    id: String,
}

#[derive(ToSchema)]
pub struct Source {
    app_id: String,
    local_id: String,
}

/// One event of a record's subject.
#[derive(ToSchema)]
pub struct RecordEvent {
    /// Its stream sequence.
    seq: u64,
    event_id: String,
    entity: String,
    /// The record's id.
    id: String,
    /// `created`, `updated`, `deleted`, `id_mapped` or `merged`.
    op: String,
    version: u64,
    actor: Actor,
    source: Source,
    #[schema(format = DateTime)]
    occurred_at: Option<String>,
    #[schema(format = DateTime)]
    recorded_at: Option<String>,
    changed_fields: Vec<String>,
    correlation_id: String,
    /// In the change feed: the record's state after the event.
    record: Option<HashMap<String, Value>>,
}

#[derive(ToSchema)]
pub struct History {
    history: Vec<RecordEvent>,
}

#[derive(ToSchema)]
pub struct Changes {
    changes: Vec<RecordEvent>,
    /// Pass as `since` to continue.
    next: String,
}

/// `{"local_id": "47"}`: the calling app's own id of the record.
#[derive(ToSchema)]
pub struct LocalId {
    local_id: String,
}

/// One op of a batch.
#[derive(ToSchema)]
pub struct BatchOp {
    /// `get`, `post`, `put` or `delete`.
    method: String,
    /// `/api/v2/{org}/{entity}[/{id}]`.
    url: String,
    /// The body of a write: `{"<collection>": {fields}}`.
    params: Option<HashMap<String, Value>>,
}

#[derive(ToSchema)]
pub struct Batch {
    /// One after the other (default), or concurrently.
    sequential: Option<bool>,
    /// All stored or none (writes only).
    atomic: Option<bool>,
    /// 1 to 100 ops.
    ops: Vec<BatchOp>,
}

/// One op's answer: its status and body (a record, or `{"errors": [...]}`).
#[derive(ToSchema)]
pub struct BatchResult {
    status: u16,
    body: HashMap<String, Value>,
}

#[derive(ToSchema)]
pub struct BatchAnswer {
    atomic: Option<bool>,
    results: Vec<BatchResult>,
}

/// An atomic batch that failed answers with the failing op's status and the
/// results; a batch refused as a whole, with the error shape.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum BatchRefusal {
    Results(BatchAnswer),
    Errors(ErrorBody),
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppLetterPath {
    /// The app's id.
    app: String,
    /// The dead letter's sequence in stream DLQ.
    seq: u64,
}

/// `matching_fields` of a create (smart merge).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MatchQuery {
    /// Comma-separated fields: a record of the org equal on all of them is updated instead (answer 200).
    matching_fields: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ResumeHeader {
    /// Resume after this RECORDS sequence (the last event id seen).
    #[param(rename = "Last-Event-ID")]
    last_event_id: Option<u64>,
}

#[derive(ToSchema)]
pub struct DeliveryList {
    /// Recent attempts, newest first.
    deliveries: Vec<HashMap<String, Value>>,
}

#[derive(ToSchema)]
pub struct ConsumerLag {
    app_id: String,
    consumer: String,
    pending: u64,
    ack_pending: u64,
    redelivered: u64,
    delivered_seq: u64,
    ack_floor_seq: u64,
}

#[derive(ToSchema)]
pub struct ConsumerAnswer {
    consumer: ConsumerLag,
}

#[derive(ToSchema)]
pub struct DeadLetters {
    dead_letters: Vec<HashMap<String, Value>>,
}

#[derive(ToSchema)]
pub struct DeadLetterAnswer {
    dead_letter: HashMap<String, Value>,
}

#[derive(ToSchema)]
pub struct Superseded {
    seq: u64,
    by_version: u64,
}

#[derive(ToSchema)]
pub struct RedriveAnswer {
    /// Sequences sent again.
    redriven: Vec<u64>,
    /// Letters not sent: the record changed since.
    superseded: Vec<Superseded>,
}

/// `{"since": "<RFC 3339>" | <sequence>}`.
#[derive(ToSchema)]
pub struct Recover {
    /// An RFC 3339 time, or a RECORDS sequence number.
    #[schema(value_type = Object)]
    since: Value,
}

#[derive(ToSchema)]
pub struct RecoveryAnswer {
    recovery: HashMap<String, Value>,
}
