//! How a record is shown to API clients: its state plus `id`, `version`,
//! `group_id`, `created_at`, `updated_at`, `resource_type`; and, with the
//! header `CONNEC-EXTERNAL-IDS: true`, `id` and every reference as the array
//! `[{"realm","provider","id"}]` holding the global id and each app's own id.

use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::entities;
use crate::idmap::IdMap;
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
