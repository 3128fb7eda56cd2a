//! Records changed by other apps, as webhooks deliver them (and any record
//! read from Connec!, [`keep`]): stored under the
//! CRM's own id (a new one for a record it has not seen, which the answer
//! tells the platform). Nothing is written back, so nothing echoes.

use anyhow::Result;
use mno_sdk::webhooks::{DeliveredRecord, IdMapAnswer};

use crate::records::{OpportunityFields, OrganizationFields, PersonFields, Stored};
use crate::store::{Kind, Store};

/// Applies one delivered record of collection `entity`; answers `answer`
/// with the CRM's new id added when it made one.
pub async fn apply(
    store: &Store,
    app_id: &str,
    entity: &str,
    record: &DeliveredRecord,
    answer: IdMapAnswer,
) -> Result<IdMapAnswer> {
    let Some(kind) = Kind::of_entity(entity) else {
        return Ok(answer); // Not a collection the CRM keeps.
    };
    let known = record.id.local_id(app_id).map(str::to_owned);
    if record.is_delete() {
        if let Some(id) = known {
            store.delete(kind, &id).await?;
        }
        return Ok(answer);
    }
    let (id, answer) = match known {
        Some(id) => (id, answer),
        None => {
            let id = store.next_id(kind).await?;
            let answer = match record.id.connec_id() {
                Some(global) => answer.map(entity, global, &id),
                None => answer,
            };
            (id, answer)
        }
    };
    let stored = Stored {
        id: &id,
        org: &record.group_id,
        version: record.version,
    };
    let fields = serde_json::Value::Object(record.fields.clone());
    keep(store, app_id, kind, &stored, fields).await?;
    Ok(answer)
}

/// Stores a record of `kind` read from Connec! (a write's answer or a delivery).
pub async fn keep(
    store: &Store,
    app_id: &str,
    kind: Kind,
    stored: &Stored<'_>,
    fields: serde_json::Value,
) -> Result<()> {
    match kind {
        Kind::People => {
            let fields: PersonFields = serde_json::from_value(fields)?;
            store.upsert_person(&stored.person(fields)).await
        }
        Kind::Organizations => {
            let fields: OrganizationFields = serde_json::from_value(fields)?;
            store
                .upsert_organization(&stored.organization(fields))
                .await
        }
        Kind::Opportunities => {
            let fields: OpportunityFields = serde_json::from_value(fields)?;
            store
                .upsert_opportunity(&stored.opportunity(fields, app_id))
                .await
        }
    }
}
