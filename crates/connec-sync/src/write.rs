//! The write path: validate, translate ids, build the record event, publish it
//! with optimistic concurrency.
//!
//! Every write of a record is a publish on `rec.<org>.<entity>.<id>` with
//! `Nats-Msg-Id` = the event id and `Nats-Expected-Last-Subject-Sequence` = the
//! sequence of the version the writer read (0 for a create), so two writers
//! can never both append the next version. The current state of a record is
//! the last message on its subject (a direct get): reads see every
//! acknowledged write without waiting for any projection.

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use chrono::Utc;
use mno_events::envelope::{canonical_json, new_event_id, to_timestamp};
use mno_events::idm::{Principal, PrincipalKind};
use mno_events::proto::{Actor, Op, RecordEvent, Source};
use mno_events::publish::{Outgoing, PublishError, Publisher};
use mno_events::subject::{RecordSubject, Token};
use serde_json::{Map, Value};

use crate::entities::{self, schema, EntityDef};
use crate::exact_json::NumberTexts;
use crate::idmap::{IdMap, IdMapError, MAX_LOCAL_ID_LEN};

/// Fields the platform sets; an app cannot write them.
pub const PLATFORM_FIELDS: &[&str] = &[
    "id",
    "group_id",
    "created_at",
    "updated_at",
    "version",
    "resource_type",
    "channel_id",
];

/// The provider name of the platform's own ids in the external-ids array form.
pub const CONNEC_PROVIDER: &str = "connec";

/// The record id of a singular collection (`company`).
pub const SINGULAR_ID: &str = "current";

/// How many times a write without `If-Match` re-reads and retries after losing a race.
const MAX_INTERNAL_RETRIES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("no {entity} record {id} in this organisation")]
    NotFound { entity: String, id: String },
    #[error("{entity} record {id} is at version {current}, not {expected}; read it again and retry with If-Match: {current}")]
    Stale {
        entity: String,
        id: String,
        expected: u64,
        current: u64,
    },
    #[error("{entity} record {id} already exists")]
    AlreadyExists { entity: String, id: String },
    #[error("the record is not valid")]
    Invalid(Vec<schema::Violation>),
    #[error(transparent)]
    IdMap(#[from] IdMapError),
    #[error("the bus did not answer ({0}); retry shortly (a write with the same Idempotency-Key, so that it is made once)")]
    Unavailable(String),
    #[error("the {entity} record cannot be deleted; change its fields with PUT")]
    NotDeletable { entity: String },
    #[error("the {entity} record is too large to store as one event ({reason}); send it with fewer or shorter fields")]
    TooLarge { entity: String, reason: String },
}

impl WriteError {
    /// Whether the write may have reached the bus (a retry must reuse its
    /// event id); every other error refused the request before anything was written.
    pub fn may_have_been_stored(&self) -> bool {
        matches!(
            self,
            WriteError::Unavailable(_) | WriteError::IdMap(IdMapError::Bus(_))
        )
    }
}

/// A record as stored: its last event and that event's stream sequence.
#[derive(Debug, Clone)]
pub struct Stored {
    pub event: RecordEvent,
    pub seq: u64,
}

impl Stored {
    pub fn is_deleted(&self) -> bool {
        self.event.op_kind() == Op::Deleted
    }

    pub fn state(&self) -> Value {
        self.event.state_json().unwrap_or(Value::Null)
    }
}

/// The outcome of a write.
#[derive(Debug, Clone)]
pub struct Written {
    pub record: Stored,
    /// True when a new record was made (answer 201).
    pub created: bool,
}

/// Who writes and on whose behalf: the fixed facts of one request.
#[derive(Debug, Clone)]
pub struct WriteContext {
    pub org: Token,
    pub entity: &'static EntityDef,
    pub principal: Principal,
    pub correlation_id: String,
    /// Set for idempotent requests, so a retry publishes the same event id.
    pub event_id: Option<String>,
    /// Set for an atomic batch: writes are staged here instead of published,
    /// and published together by the batch.
    pub stage: Option<Stage>,
}

/// Writes held back for one atomic publish.
pub type Stage = std::sync::Arc<std::sync::Mutex<Vec<Outgoing>>>;

impl WriteContext {
    fn app_id(&self) -> Option<&str> {
        (self.principal.kind == PrincipalKind::App).then_some(self.principal.id.as_str())
    }

    fn actor(&self) -> Actor {
        Actor {
            kind: match self.principal.kind {
                PrincipalKind::App => "app".into(),
                PrincipalKind::User => "user".into(),
            },
            id: self.principal.id.clone(),
        }
    }

    fn event_id(&self) -> String {
        self.event_id.clone().unwrap_or_else(new_event_id)
    }
}

#[derive(Clone)]
pub struct Writer {
    publisher: Publisher,
    js: jetstream::Context,
    pub idmap: IdMap,
}

fn unavailable(e: impl std::fmt::Display) -> WriteError {
    WriteError::Unavailable(e.to_string())
}

/// A publish that failed: too large is final, anything else may pass on a retry.
fn publish_failed(ctx: &WriteContext, e: PublishError) -> WriteError {
    match e {
        PublishError::TooLarge { reason, .. } => WriteError::TooLarge {
            entity: ctx.entity.name.to_owned(),
            reason,
        },
        e => unavailable(e),
    }
}

fn invalid(pointer: &str, message: impl Into<String>) -> WriteError {
    WriteError::Invalid(vec![schema::Violation {
        pointer: pointer.to_owned(),
        message: message.into(),
    }])
}

impl Writer {
    pub fn new(js: jetstream::Context, idmap: IdMap) -> Self {
        Self {
            publisher: Publisher::new(js.clone(), mno_events::streams::RECORDS),
            js,
            idmap,
        }
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// The last event of a record, if it has any.
    pub async fn current(
        &self,
        org: &Token,
        entity: &str,
        id: &str,
    ) -> Result<Option<Stored>, WriteError> {
        let Ok(subject) = RecordSubject::new(org.as_str(), entity, id) else {
            return Ok(None);
        };
        let stream = self
            .js
            .get_stream_no_info(mno_events::streams::RECORDS)
            .await
            .map_err(unavailable)?;
        match stream
            .direct_get_last_for_subject(subject.to_string())
            .await
        {
            Ok(message) => {
                let event = RecordEvent::from_bytes(&message.payload).map_err(unavailable)?;
                Ok(Some(Stored {
                    event,
                    seq: message.sequence,
                }))
            }
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// A live (not deleted) record, or NotFound.
    pub async fn live(&self, org: &Token, entity: &str, id: &str) -> Result<Stored, WriteError> {
        match self.current(org, entity, id).await? {
            Some(stored) if !stored.is_deleted() => Ok(stored),
            _ => Err(WriteError::NotFound {
                entity: entity.to_owned(),
                id: id.to_owned(),
            }),
        }
    }

    /// The global id a path id names: a global id, or the calling app's local id.
    pub async fn resolve(&self, ctx: &WriteContext, id: &str) -> Result<String, WriteError> {
        if ctx.entity.singular {
            return Ok(SINGULAR_ID.to_owned());
        }
        // No id is longer (global ids are shorter still): refuse before the bus sees it.
        crate::idmap::check_local(id)?;
        if Token::parse("record id", id).is_ok()
            && self.current(&ctx.org, ctx.entity.name, id).await?.is_some()
        {
            return Ok(id.to_owned());
        }
        if let Some(app) = ctx.app_id() {
            if let Some(global) = self
                .idmap
                .global_for_local(ctx.org.as_str(), app, ctx.entity.name, id)
                .await?
            {
                return Ok(global);
            }
        }
        Err(WriteError::NotFound {
            entity: ctx.entity.name.to_owned(),
            id: id.to_owned(),
        })
    }

    /// Create a record from `fields` (the body without its collection wrapper).
    pub async fn create(
        &self,
        ctx: &WriteContext,
        mut fields: Value,
        numbers: &NumberTexts,
        root: &str,
    ) -> Result<Written, WriteError> {
        if ctx.entity.singular {
            return self
                .update(ctx, SINGULAR_ID, fields, numbers, root, None)
                .await;
        }
        let local_id = self.sent_local_id(ctx, &fields).await?;
        strip_platform_fields(&mut fields);
        schema::validate(ctx.entity, &mut fields, numbers, root).map_err(WriteError::Invalid)?;
        self.translate_references(ctx, &mut fields).await?;

        let candidate = uuid::Uuid::now_v7().to_string();
        let global = match (&local_id, ctx.app_id()) {
            (Some(local), Some(app)) => {
                let (org, entity) = (ctx.org.as_str(), ctx.entity.name);
                let mut claim = self
                    .idmap
                    .claim(org, app, entity, local, &candidate)
                    .await?;
                if !claim.created {
                    let existing = self.current(&ctx.org, entity, &claim.global).await?;
                    if existing.as_ref().is_some_and(|e| {
                        e.is_deleted() && ctx.event_id.as_deref() != Some(&e.event.event_id)
                    }) {
                        // The local id named a record since deleted: the new record takes it over.
                        claim = self
                            .idmap
                            .take_over(org, app, entity, local, &claim.global, &candidate)
                            .await?;
                    }
                }
                if !claim.created {
                    if let Some(existing) = self.current(&ctx.org, entity, &claim.global).await? {
                        return self.already_created(ctx, existing, claim.global);
                    }
                    // The claim was made but the record never written (a crash between
                    // the two): finish the job under the claimed id.
                }
                claim.global
            }
            _ => candidate,
        };

        let now = Utc::now();
        let mut state = match fields {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
        let changed: Vec<String> = state.keys().cloned().collect();
        state.insert("id".into(), Value::String(global.clone()));
        state.insert("group_id".into(), Value::String(ctx.org.to_string()));
        state.insert("created_at".into(), Value::String(now.to_rfc3339()));
        state.insert("updated_at".into(), Value::String(now.to_rfc3339()));
        let event = self.event(
            ctx,
            &global,
            Op::Created,
            1,
            local_id.unwrap_or_default(),
            changed,
            state,
        );
        match self.publish(ctx, &global, event, 0).await {
            Ok(record) => Ok(Written {
                record,
                created: true,
            }),
            Err(PublishError::Conflict { .. }) => {
                let existing = self.live(&ctx.org, ctx.entity.name, &global).await?;
                self.already_created(ctx, existing, global)
            }
            Err(e) => Err(publish_failed(ctx, e)),
        }
    }

    /// A create that finds its record already there: the same request retried
    /// (same event id: answer as the first time), or a second create (409).
    fn already_created(
        &self,
        ctx: &WriteContext,
        existing: Stored,
        global: String,
    ) -> Result<Written, WriteError> {
        if ctx.event_id.is_some()
            && ctx.event_id.as_deref() == Some(existing.event.event_id.as_str())
        {
            return Ok(Written {
                record: existing,
                created: true,
            });
        }
        Err(WriteError::AlreadyExists {
            entity: ctx.entity.name.to_owned(),
            id: global,
        })
    }

    /// Update the fields present in `patch` (each replaces the stored value).
    pub async fn update(
        &self,
        ctx: &WriteContext,
        id: &str,
        mut patch: Value,
        numbers: &NumberTexts,
        root: &str,
        if_match: Option<u64>,
    ) -> Result<Written, WriteError> {
        strip_platform_fields(&mut patch);
        if !patch.is_object() {
            return Err(invalid("", "the record must be a JSON object"));
        }
        // Check the patch's own fields first: a bad value is named where the client sent it.
        schema::validate_patch(ctx.entity, &mut patch, numbers, root)
            .map_err(WriteError::Invalid)?;
        self.translate_references(ctx, &mut patch).await?;
        let Value::Object(checked) = patch else {
            return Err(invalid("", "the record must be a JSON object"));
        };

        for _ in 0..MAX_INTERNAL_RETRIES {
            // The singular record is created by its first PUT; over a tombstone (an
            // earlier version allowed deleting it) it is created again, continuing
            // the subject's versions and sequence.
            let (current, tombstone) = match self.current(&ctx.org, ctx.entity.name, id).await? {
                Some(stored) if !stored.is_deleted() => (Some(stored), None),
                tombstone if ctx.entity.singular => (None, tombstone),
                _ => {
                    return Err(WriteError::NotFound {
                        entity: ctx.entity.name.to_owned(),
                        id: id.to_owned(),
                    })
                }
            };
            if let Some(current) = &current {
                if ctx.event_id.as_deref() == Some(current.event.event_id.as_str()) {
                    // This very request was applied before (an idempotent retry).
                    return Ok(Written {
                        record: current.clone(),
                        created: false,
                    });
                }
            }
            let (version, seq, mut state) = match (&current, &tombstone) {
                (Some(c), _) => (
                    c.event.version,
                    c.seq,
                    c.state().as_object().cloned().unwrap_or_default(),
                ),
                (None, Some(t)) => (t.event.version, t.seq, Map::new()),
                (None, None) => (0, 0, Map::new()),
            };
            if let Some(expected) = if_match {
                if expected != version {
                    return Err(WriteError::Stale {
                        entity: ctx.entity.name.to_owned(),
                        id: id.to_owned(),
                        expected,
                        current: version,
                    });
                }
            }
            let mut changed = Vec::new();
            for (key, value) in &checked {
                if state.get(key) != Some(value) {
                    changed.push(key.clone());
                    state.insert(key.clone(), value.clone());
                }
            }
            // The whole record must still satisfy its schema (required fields).
            let mut whole = Value::Object(state.clone());
            for field in PLATFORM_FIELDS {
                whole.as_object_mut().map(|o| o.remove(*field));
            }
            schema::validate(ctx.entity, &mut whole, &NumberTexts::new(), root)
                .map_err(WriteError::Invalid)?;
            if changed.is_empty() {
                if let Some(current) = current {
                    return Ok(Written {
                        record: current,
                        created: false,
                    });
                }
            }
            let now = Utc::now().to_rfc3339();
            state.insert("id".into(), Value::String(id.to_owned()));
            state.insert("group_id".into(), Value::String(ctx.org.to_string()));
            state
                .entry("created_at")
                .or_insert_with(|| Value::String(now.clone()));
            state.insert("updated_at".into(), Value::String(now));
            let op = if current.is_some() {
                Op::Updated
            } else {
                Op::Created
            };
            let local = self.local_of_caller(ctx, id).await?;
            let event = self.event(ctx, id, op, version + 1, local, changed, state);
            match self.publish(ctx, id, event, seq).await {
                Ok(record) => {
                    return Ok(Written {
                        record,
                        created: op == Op::Created,
                    })
                }
                // Someone wrote in between: read again and re-apply the patch. With
                // If-Match, the re-read refuses it if the record's version moved; an
                // `id_mapped` event moves only the subject's sequence, and the write goes on.
                Err(PublishError::Conflict { .. }) => continue,
                Err(e) => return Err(publish_failed(ctx, e)),
            }
        }
        Err(WriteError::Unavailable(format!(
            "{} record {id} kept changing under {MAX_INTERNAL_RETRIES} attempts",
            ctx.entity.name
        )))
    }

    /// Delete: a tombstone event carrying the last state.
    pub async fn delete(
        &self,
        ctx: &WriteContext,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<Written, WriteError> {
        // An organisation always has its company record: it can only change.
        if ctx.entity.singular {
            return Err(WriteError::NotDeletable {
                entity: ctx.entity.name.to_owned(),
            });
        }
        loop {
            let current = self.live(&ctx.org, ctx.entity.name, id).await?;
            if let Some(expected) = if_match {
                if expected != current.event.version {
                    return Err(WriteError::Stale {
                        entity: ctx.entity.name.to_owned(),
                        id: id.to_owned(),
                        expected,
                        current: current.event.version,
                    });
                }
            }
            let mut state = current.state().as_object().cloned().unwrap_or_default();
            state.insert("updated_at".into(), Value::String(Utc::now().to_rfc3339()));
            let local = self.local_of_caller(ctx, id).await?;
            let event = self.event(
                ctx,
                id,
                Op::Deleted,
                current.event.version + 1,
                local,
                vec![],
                state,
            );
            match self.publish(ctx, id, event, current.seq).await {
                Ok(record) => {
                    return Ok(Written {
                        record,
                        created: false,
                    })
                }
                // As in `update`: the re-read decides whether an If-Match is stale.
                Err(PublishError::Conflict { .. }) => continue,
                Err(e) => return Err(publish_failed(ctx, e)),
            }
        }
    }

    /// Record that `app` knows record `id` as `local`: the id map, then an
    /// `OP_ID_MAPPED` event so that the mapping is part of the record's history
    /// (at the record's version: only its subject sequence moves).
    pub async fn map_id(
        &self,
        ctx: &WriteContext,
        app: &str,
        id: &str,
        local: &str,
    ) -> Result<Written, WriteError> {
        if local.is_empty() || local.len() > MAX_LOCAL_ID_LEN {
            return Err(invalid(
                "/local_id",
                format!("local_id must be 1 to {MAX_LOCAL_ID_LEN} bytes"),
            ));
        }
        let current = self.live(&ctx.org, ctx.entity.name, id).await?;
        if self
            .idmap
            .local_for_global(ctx.org.as_str(), app, ctx.entity.name, id)
            .await?
            .as_deref()
            == Some(local)
        {
            return Ok(Written {
                record: current,
                created: false,
            });
        }
        self.idmap
            .record(ctx.org.as_str(), app, ctx.entity.name, id, local)
            .await?;
        loop {
            let current = self.live(&ctx.org, ctx.entity.name, id).await?;
            let state = current.state().as_object().cloned().unwrap_or_default();
            // A mapping is not a change of the record: it keeps the record's
            // version, so that no writer's If-Match goes stale because of it.
            let mut event = self.event(
                ctx,
                id,
                Op::IdMapped,
                current.event.version,
                local.to_owned(),
                vec![],
                state,
            );
            event.source = Some(Source {
                app_id: app.to_owned(),
                local_id: local.to_owned(),
            });
            match self.publish(ctx, id, event, current.seq).await {
                Ok(record) => {
                    return Ok(Written {
                        record,
                        created: false,
                    })
                }
                Err(PublishError::Conflict { .. }) => continue,
                Err(e) => return Err(publish_failed(ctx, e)),
            }
        }
    }

    /// The app's own id sent in the body's `id` (a string, or the array form).
    async fn sent_local_id(
        &self,
        ctx: &WriteContext,
        fields: &Value,
    ) -> Result<Option<String>, WriteError> {
        let Some(id) = fields.get("id") else {
            return Ok(None);
        };
        let ids = match id {
            Value::Null => return Ok(None),
            Value::String(s) => vec![(ctx.app_id().unwrap_or_default().to_owned(), s.clone())],
            Value::Array(entries) => entries
                .iter()
                .filter_map(|e| {
                    Some((
                        e.get("provider")?.as_str()?.to_owned(),
                        e.get("id")?.as_str()?.to_owned(),
                    ))
                })
                .collect(),
            _ => {
                return Err(invalid(
                    "/id",
                    "id must be a string (your own id) or the external-ids array",
                ))
            }
        };
        let mut local = None;
        for (provider, value) in ids {
            if provider == CONNEC_PROVIDER {
                if self
                    .current(&ctx.org, ctx.entity.name, &value)
                    .await?
                    .is_some()
                {
                    return Err(WriteError::AlreadyExists {
                        entity: ctx.entity.name.to_owned(),
                        id: value,
                    });
                }
                return Err(invalid(
                    "/id",
                    "connec ids are given by the platform; send your own id instead",
                ));
            }
            match ctx.app_id() {
                Some(app) if provider == app || provider.is_empty() => local = Some(value),
                Some(_) => {} // Another app's id in the array: not ours to record.
                None => return Err(invalid("/id", "only apps send their own ids; leave id out")),
            }
        }
        if let Some(l) = &local {
            if l.is_empty() || l.len() > MAX_LOCAL_ID_LEN {
                return Err(invalid(
                    "/id",
                    format!("your id must be 1 to {MAX_LOCAL_ID_LEN} bytes"),
                ));
            }
        }
        Ok(local)
    }

    /// Turn every reference into a global id of a live record of the same org.
    /// Violations carry pointers relative to the record, like schema violations.
    async fn translate_references(
        &self,
        ctx: &WriteContext,
        fields: &mut Value,
    ) -> Result<(), WriteError> {
        let mut found = Vec::new();
        entities::visit_references_mut(ctx.entity.name, fields, &mut |pointer, target, value| {
            found.push((pointer.to_owned(), target, value.clone()));
        });
        let mut resolved = Vec::new();
        let mut violations = Vec::new();
        for (pointer, target, value) in found {
            match self.resolve_reference(ctx, target, &value).await? {
                Some(global) => resolved.push((pointer, global)),
                None => violations.push(schema::Violation {
                    pointer,
                    message: format!(
                        "{} does not name a {target} record of this organisation",
                        serde_json::to_string(&value).unwrap_or_default()
                    ),
                }),
            }
        }
        if !violations.is_empty() {
            return Err(WriteError::Invalid(violations));
        }
        for (pointer, global) in resolved {
            if let Some(slot) = fields.pointer_mut(&pointer) {
                *slot = Value::String(global);
            }
        }
        Ok(())
    }

    async fn resolve_reference(
        &self,
        ctx: &WriteContext,
        target: &str,
        value: &Value,
    ) -> Result<Option<String>, WriteError> {
        let candidates: Vec<(String, String)> = match value {
            Value::String(s) => vec![(String::new(), s.clone())],
            Value::Array(entries) => entries
                .iter()
                .filter_map(|e| {
                    Some((
                        e.get("provider")?.as_str()?.to_owned(),
                        e.get("id")?.as_str()?.to_owned(),
                    ))
                })
                .collect(),
            _ => vec![],
        };
        for (provider, id) in candidates {
            // Longer than any id can be: it names no record (and must not reach a key).
            if id.is_empty() || id.len() > MAX_LOCAL_ID_LEN {
                continue;
            }
            if provider.is_empty() || provider == CONNEC_PROVIDER {
                if let Some(stored) = self.current(&ctx.org, target, &id).await? {
                    if !stored.is_deleted() {
                        return Ok(Some(id));
                    }
                }
            }
            if let Some(app) = ctx.app_id() {
                if provider.is_empty() || provider == app {
                    if let Some(global) = self
                        .idmap
                        .global_for_local(ctx.org.as_str(), app, target, &id)
                        .await?
                    {
                        return Ok(Some(global));
                    }
                }
            }
        }
        Ok(None)
    }

    async fn local_of_caller(&self, ctx: &WriteContext, id: &str) -> Result<String, WriteError> {
        Ok(match ctx.app_id() {
            Some(app) => self
                .idmap
                .local_for_global(ctx.org.as_str(), app, ctx.entity.name, id)
                .await?
                .unwrap_or_default(),
            None => String::new(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        ctx: &WriteContext,
        id: &str,
        op: Op,
        version: u64,
        local_id: String,
        mut changed: Vec<String>,
        state: Map<String, Value>,
    ) -> RecordEvent {
        let now = to_timestamp(Utc::now());
        changed.sort();
        RecordEvent {
            event_id: ctx.event_id(),
            org: ctx.org.to_string(),
            entity: ctx.entity.name.to_owned(),
            record_id: id.to_owned(),
            op: op as i32,
            version,
            source: Some(Source {
                app_id: ctx.app_id().unwrap_or_default().to_owned(),
                local_id,
            }),
            actor: Some(ctx.actor()),
            occurred_at: Some(now),
            recorded_at: Some(now),
            changed_fields: changed,
            correlation_id: ctx.correlation_id.clone(),
            state: canonical_json(&Value::Object(state)),
            merged_record_ids: vec![],
        }
    }

    async fn publish(
        &self,
        ctx: &WriteContext,
        id: &str,
        event: RecordEvent,
        expected: u64,
    ) -> Result<Stored, PublishError> {
        let subject = RecordSubject::new(ctx.org.as_str(), ctx.entity.name, id).map_err(|e| {
            PublishError::Bus {
                subject: format!("rec.{}.{}.{id}", ctx.org, ctx.entity.name),
                reason: e.to_string(),
            }
        })?;
        let outgoing = Outgoing::new(
            subject.to_string(),
            event.event_id.clone(),
            event.to_bytes().into(),
        )
        .expect_last_subject_seq(expected);
        if let Some(stage) = &ctx.stage {
            // Published later with the rest of its atomic batch; its sequence is filled in then.
            stage
                .lock()
                .expect("the stage lock is never poisoned")
                .push(outgoing);
            return Ok(Stored { event, seq: 0 });
        }
        let published = self.publisher.publish(outgoing).await?;
        if published.duplicate {
            // Stored before under this event id: answer with what was stored.
            let stream = self
                .js
                .get_stream_no_info(mno_events::streams::RECORDS)
                .await
                .map_err(|e| PublishError::Bus {
                    subject: subject.to_string(),
                    reason: e.to_string(),
                })?;
            let message =
                stream
                    .direct_get(published.seq)
                    .await
                    .map_err(|e| PublishError::Bus {
                        subject: subject.to_string(),
                        reason: e.to_string(),
                    })?;
            let event =
                RecordEvent::from_bytes(&message.payload).map_err(|e| PublishError::Bus {
                    subject: subject.to_string(),
                    reason: e.to_string(),
                })?;
            return Ok(Stored {
                event,
                seq: published.seq,
            });
        }
        Ok(Stored {
            event,
            seq: published.seq,
        })
    }
}

fn strip_platform_fields(fields: &mut Value) {
    if let Some(object) = fields.as_object_mut() {
        for field in PLATFORM_FIELDS {
            object.remove(*field);
        }
    }
}
