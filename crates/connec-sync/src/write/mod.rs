//! The write path: validate, translate ids, build the record event, publish it
//! with optimistic concurrency.
//!
//! Every write of a record is a publish on `rec.<org>.<entity>.<id>` with
//! `Nats-Msg-Id` = the event id and `Nats-Expected-Last-Subject-Sequence` = the
//! sequence of the version the writer read (0 for a create), so two writers
//! can never both append the next version. The current state of a record is
//! the last message on its subject (a direct get): reads see every
//! acknowledged write without waiting for any projection.
//!
//! Modules, one job each:
//! - [`read`]: a record's current state (direct get) and the id a path names.
//! - [`ops`]: create, update, delete and id mapping, each one attempt at a time.
//! - [`rules`]: the decisions of a write (stale If-Match, a retried request, what changed).
//! - [`retry`]: trying again after losing a race to another writer.
//! - [`ids`]: translating the app's own ids and references into global ids.
//! - [`event`]: building the record event and publishing it with its expected sequence.

mod event;
mod ids;
mod ops;
mod read;
mod retry;
mod rules;

use async_nats::jetstream;
use mno_events::envelope::new_event_id;
use mno_events::idm::{Principal, PrincipalKind};
use mno_events::proto::{Actor, Op, RecordEvent};
use mno_events::publish::{Outgoing, Publisher};
use mno_events::subject::Token;
use serde_json::Value;

use crate::entities::{schema, EntityDef};
use crate::idmap::{AppIds, IdMap, IdMapError};

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

impl Written {
    /// A write to a record that was there before (answer 200).
    pub fn existing(record: Stored) -> Self {
        Written {
            record,
            created: false,
        }
    }
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

    /// The calling app's ids in `entity` of this org, if an app calls.
    fn app_ids<'a>(&'a self, entity: &'a str) -> Option<AppIds<'a>> {
        Some(AppIds {
            org: self.org.as_str(),
            app: self.app_id()?,
            entity,
        })
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
}

fn unavailable(e: impl std::fmt::Display) -> WriteError {
    WriteError::Unavailable(e.to_string())
}

fn invalid(pointer: &str, message: impl Into<String>) -> WriteError {
    WriteError::Invalid(vec![schema::Violation {
        pointer: pointer.to_owned(),
        message: message.into(),
    }])
}

fn strip_platform_fields(fields: &mut Value) {
    if let Some(object) = fields.as_object_mut() {
        for field in PLATFORM_FIELDS {
            object.remove(*field);
        }
    }
}
