//! What one webhook POST carries: its body in the receiving app's view, its
//! webhook-id, and the `id_map` an app may answer with.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::lanes::Batch;
use super::view;
use super::worker::Context;

/// The webhook-id names the content: one event's id, or a digest of the ids
/// of several, so the same POST always carries the same id.
pub fn webhook_id(batch: &Batch) -> String {
    let ids: Vec<&str> = batch.events().map(|p| p.event.event_id.as_str()).collect();
    match ids.as_slice() {
        [one] => (*one).to_owned(),
        many => {
            let digest = Sha256::digest(many.join(",").as_bytes());
            let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("batch_{hex}")
        }
    }
}

/// `{"<entity>": [records in the app's view]}`, in batch order within each entity.
pub async fn body(ctx: &Context, app: &str, batch: &Batch) -> Bytes {
    let mut by_entity: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for pending in batch.events() {
        let record = view::record_for_app(&pending.event, app, &*ctx.ids, &*ctx.refs).await;
        by_entity
            .entry(pending.event.entity.clone())
            .or_default()
            .push(record);
    }
    Bytes::from(serde_json::to_vec(&by_entity).expect("records serialise"))
}

#[derive(Deserialize)]
struct IdMapAnswer {
    #[serde(default)]
    id_map: Vec<IdMapEntry>,
}

#[derive(Deserialize)]
struct IdMapEntry {
    entity: String,
    id: String,
    local_id: String,
}

/// A 2xx answer may carry `{"id_map": [{"entity","id","local_id"}]}`: record each mapping.
pub async fn record_id_map(ctx: &Context, app: &str, org: &str, response: &str) {
    let Ok(answer) = serde_json::from_str::<IdMapAnswer>(response) else {
        return;
    };
    let mut seen = HashMap::new();
    for entry in answer.id_map {
        if seen
            .insert((entry.entity.clone(), entry.id.clone()), ())
            .is_some()
        {
            continue;
        }
        match ctx
            .ids
            .record_mapping(org, app, &entry.entity, &entry.id, &entry.local_id)
            .await
        {
            Ok(()) => ctx
                .learned
                .insert(org, app, &entry.entity, &entry.id, &entry.local_id),
            Err(e) => {
                tracing::warn!(%app, %org, entity = %entry.entity, id = %entry.id, error = %e, "id_map answer not recorded")
            }
        }
    }
}
