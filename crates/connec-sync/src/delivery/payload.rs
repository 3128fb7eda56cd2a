//! What one webhook POST carries: its body in the receiving app's view, its
//! webhook-id, and the `id_map` an app may answer with.

use std::collections::HashMap;

use bytes::Bytes;
use mno_events::proto::RecordEvent;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::lanes::Batch;
use super::view::{self, LocalIds, ReferenceFields};

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
pub async fn body(
    batch: &Batch,
    app: &str,
    ids: &dyn LocalIds,
    refs: &dyn ReferenceFields,
) -> Bytes {
    let events: Vec<&RecordEvent> = batch.events().map(|p| &*p.event).collect();
    Bytes::from(records_body(&events, app, ids, refs).await)
}

/// `{"<entity>": [records in the app's view]}` of `events`, in their order
/// within each entity: a webhook body, or one server-sent event's data.
pub async fn records_body(
    events: &[&RecordEvent],
    app: &str,
    ids: &dyn LocalIds,
    refs: &dyn ReferenceFields,
) -> Vec<u8> {
    let mut entities: Vec<&str> = events.iter().map(|e| e.entity.as_str()).collect();
    entities.sort_unstable();
    entities.dedup();
    // Written straight into one buffer sized for the batch: it is tens of kB.
    let estimate: usize = events.iter().map(|e| e.state.len() + 256).sum();
    let mut body = Vec::with_capacity(estimate + 64);
    body.push(b'{');
    for (i, entity) in entities.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, entity).expect("a str always serialises");
        body.extend_from_slice(b":[");
        let declared = refs.references(entity);
        let mut first = true;
        for event in events.iter().filter(|e| e.entity == *entity) {
            if !first {
                body.push(b',');
            }
            first = false;
            view::write_record_for_app(event, app, ids, &declared, &mut body).await;
        }
        body.push(b']');
    }
    body.push(b'}');
    body
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
pub async fn record_id_map(ids: &dyn LocalIds, app: &str, org: &str, response: &str) {
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
        // Every `LocalIds` remembers what it records (the learned ids, the witness).
        if let Err(e) = ids
            .record_mapping(org, app, &entry.entity, &entry.id, &entry.local_id)
            .await
        {
            tracing::warn!(%app, %org, entity = %entry.entity, id = %entry.id, error = %e, "id_map answer not recorded")
        }
    }
}
