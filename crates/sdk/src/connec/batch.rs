//! `POST /connec/batch`: many operations in one request.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::segment;
use crate::error::{ApiError, Error, Result};

/// A batch of operations (at most 100).
///
/// ```
/// use mno_sdk::connec::Batch;
/// use serde_json::json;
/// let batch = Batch::new("ORG")
///     .create("items", "sku-1", json!({"name": "Widget"}))
///     .update("items", "sku-2", json!({"code": "W-2"}))
///     .delete("people", "crm-9");
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    #[serde(skip)]
    org: String,
    sequential: bool,
    atomic: bool,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Serialize)]
struct Op {
    method: &'static str,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<Value>,
}

impl Batch {
    /// An empty batch of operations on `org`'s records, run one after the other.
    pub fn new(org: &str) -> Batch {
        Batch {
            org: org.to_owned(),
            sequential: true,
            atomic: false,
            ops: Vec::new(),
        }
    }

    /// Runs the operations concurrently (the fast way to load independent records).
    pub fn concurrent(mut self) -> Batch {
        self.sequential = false;
        self
    }

    /// All writes are stored or none (nats-server 2.12 or newer).
    pub fn atomic(mut self) -> Batch {
        self.atomic = true;
        self
    }

    fn url(&self, entity: &str, id: Option<&str>) -> String {
        let mut url = format!("/api/v2/{}/{}", segment(&self.org), segment(entity));
        if let Some(id) = id {
            url.push('/');
            url.push_str(&segment(id));
        }
        url
    }

    fn push(mut self, method: &'static str, url: String, params: Option<Value>) -> Batch {
        self.ops.push(Op {
            method,
            url,
            params,
        });
        self
    }

    /// Creates a record the app knows as `local_id`; `fields` must be a JSON object.
    pub fn create(self, entity: &str, local_id: &str, fields: Value) -> Batch {
        let mut fields = match fields {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        fields.insert("id".into(), Value::String(local_id.to_owned()));
        let url = self.url(entity, None);
        let params = wrap(entity, Value::Object(fields));
        self.push("post", url, Some(params))
    }

    /// Updates the fields present in `patch`.
    pub fn update(self, entity: &str, id: &str, patch: Value) -> Batch {
        let url = self.url(entity, Some(id));
        self.push("put", url, Some(wrap(entity, patch)))
    }

    /// Deletes a record.
    pub fn delete(self, entity: &str, id: &str) -> Batch {
        let url = self.url(entity, Some(id));
        self.push("delete", url, None)
    }

    /// Reads a record.
    pub fn get(self, entity: &str, id: &str) -> Batch {
        let url = self.url(entity, Some(id));
        self.push("get", url, None)
    }

    /// How many operations it holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

fn wrap(entity: &str, fields: Value) -> Value {
    let mut params = Map::new();
    params.insert(entity.to_owned(), fields);
    Value::Object(params)
}

/// The answer of a batch: one result per operation, in order.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchResult {
    /// The results.
    pub results: Vec<BatchOpResult>,
}

/// The answer of one operation of a batch.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchOpResult {
    /// Its HTTP status.
    pub status: u16,
    /// Its body: the record wrapped by its collection, or an error answer.
    #[serde(default)]
    pub body: Value,
}

impl BatchOpResult {
    /// The operation's error, typed as a request's would be (its pointer
    /// points into the batch, `/ops/1/params/items/code`).
    pub fn error(&self) -> Option<Error> {
        if (200..300).contains(&self.status) {
            return None;
        }
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        Some(Error::from_api(ApiError::from_body(self.status, &body)))
    }
}

impl BatchResult {
    /// Every operation succeeded, or the first failure as an error.
    pub fn into_result(self) -> Result<Vec<BatchOpResult>> {
        if let Some(error) = self.results.iter().find_map(BatchOpResult::error) {
            return Err(error);
        }
        Ok(self.results)
    }
}
