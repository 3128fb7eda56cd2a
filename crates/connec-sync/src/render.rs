//! How a record is shown to API clients: its state plus `id`, `version`,
//! `group_id`, `created_at`, `updated_at`, `resource_type`; and, with the
//! header `CONNEC-EXTERNAL-IDS: true`, `id` and every reference as the array
//! `[{"realm","provider","id"}]` holding the global id and each app's own id.

use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::entities;
use crate::idmap::IdMap;
use crate::raw_json;
use crate::write::{Stored, CONNEC_PROVIDER};

pub const EXTERNAL_IDS_HEADER: &str = "connec-external-ids";

pub fn wants_external_ids(headers: &HeaderMap) -> bool {
    headers
        .get(EXTERNAL_IDS_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The record as the API shows it (without external ids).
pub fn record_view(stored: &Stored) -> Value {
    view(
        stored.state(),
        stored.event.version,
        &stored.event.entity,
        stored.is_deleted(),
    )
}

/// The same view as [`record_view`], written as JSON to `out` with the stored
/// fields copied as they are: the answer to a write or a read without
/// external ids, where parsing the state into a tree would cost more than the
/// rest of the request.
pub fn write_record_view(stored: &Stored, out: &mut Vec<u8>) {
    let deleted = stored.is_deleted();
    let fields = raw_json::top_level_fields(&stored.event.state);
    let copied = fields
        .iter()
        .filter(|(key, _)| !matches!(key.as_ref(), "version" | "resource_type"))
        .filter(|(key, _)| !(deleted && key == "deleted"))
        .map(|(key, raw)| (key.as_ref(), *raw))
        .collect();
    let mut set = serde_json::Map::new();
    set.insert("version".into(), json!(stored.event.version));
    set.insert("resource_type".into(), json!(stored.event.entity));
    if deleted {
        set.insert("deleted".into(), json!(true));
    }
    raw_json::write_object(out, copied, &set);
}

/// A stored state with the fields the API adds.
pub fn view(mut state: Value, version: u64, entity: &str, deleted: bool) -> Value {
    if let Some(object) = state.as_object_mut() {
        object.insert("version".into(), json!(version));
        object.insert("resource_type".into(), json!(entity));
        if deleted {
            object.insert("deleted".into(), json!(true));
        }
    }
    state
}

/// Rewrite `id` and the references of `view` into the external-ids array form.
pub async fn add_external_ids(view: &mut Value, org: &str, entity: &str, idmap: &IdMap) {
    if let Some(id) = view.get("id").and_then(Value::as_str).map(str::to_owned) {
        let ids = external_ids(org, entity, &id, idmap).await;
        view["id"] = ids;
    }
    let mut references = Vec::new();
    entities::visit_references_mut(entity, view, &mut |pointer, target, value| {
        if let Some(global) = value.as_str() {
            references.push((pointer.to_owned(), target, global.to_owned()));
        }
    });
    for (pointer, target, global) in references {
        let ids = external_ids(org, target, &global, idmap).await;
        if let Some(slot) = view.pointer_mut(&pointer) {
            *slot = ids;
        }
    }
}

async fn external_ids(org: &str, entity: &str, global: &str, idmap: &IdMap) -> Value {
    let mut ids = vec![json!({"realm": org, "provider": CONNEC_PROVIDER, "id": global})];
    // A lookup failure leaves only the global id: the answer stays correct, just less complete.
    for (app, local) in idmap
        .all_locals(org, entity, global)
        .await
        .unwrap_or_default()
    {
        ids.push(json!({"realm": org, "provider": app, "id": local}));
    }
    Value::Array(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mno_events::proto::{Op, RecordEvent};

    fn stored(state: &str, op: Op) -> Stored {
        Stored {
            event: RecordEvent {
                entity: "invoices".into(),
                record_id: "r1".into(),
                op: op as i32,
                version: 7,
                state: state.as_bytes().to_vec(),
                ..Default::default()
            },
            seq: 42,
        }
    }

    #[test]
    fn the_written_view_matches_the_parsed_view_byte_for_byte() {
        let states = [
            r#"{"balance":"10.00","id":"r1","lines":[{"a":1}],"total":3}"#,
            r#"{"id":"r1","resource_type":"sneaky","version":99}"#,
            r#"{"deleted":false,"id":"r1"}"#,
            r#"{"a\"b":"escaped key","id":"r1","z":null}"#,
            r#"{}"#,
        ];
        for state in states {
            for op in [Op::Created, Op::Updated, Op::Deleted] {
                let record = stored(state, op);
                let mut written = Vec::new();
                write_record_view(&record, &mut written);
                let parsed = serde_json::to_vec(&record_view(&record)).unwrap();
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(parsed).unwrap(),
                    "state {state} op {op:?}"
                );
            }
        }
    }
}
