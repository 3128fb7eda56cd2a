//! Customers changed by other apps, from a webhook or from the change feed:
//! stored under Books' own id (a new one for a record Books has not seen).

use anyhow::Result;
use futures::TryStreamExt;
use mno_sdk::connec::{ChangeCursor, Collection};
use mno_sdk::Mno;
use serde::{Deserialize, Serialize};

use crate::store::{Customer, Store};

/// A customer's fields as Connec! shares them (a person).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerFields {
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
}

/// One change of a person made elsewhere.
pub struct PersonChange {
    pub org: String,
    pub connec_id: String,
    /// Books' id when the platform already knows it.
    pub books_id: Option<String>,
    pub version: u64,
    /// The record's state after the change; `None` for a delete.
    pub fields: Option<CustomerFields>,
}

/// Applies `change`; answers Books' new id when it made one (to be told to the platform).
pub async fn apply(store: &Store, change: PersonChange) -> Result<Option<String>> {
    let known = match change.books_id {
        Some(id) => Some(id),
        None => store.customer_id_of(&change.connec_id).await?,
    };
    let Some(fields) = change.fields else {
        if let Some(id) = known {
            store.delete_customer(&id).await?;
        }
        return Ok(None);
    };
    let (id, new) = match known {
        Some(id) => (id, false),
        None => (store.next_id().await?, true),
    };
    store
        .upsert_customer(&Customer {
            id: id.clone(),
            org: change.org,
            connec_id: change.connec_id,
            first_name: fields.first_name,
            last_name: fields.last_name,
            version: change.version as i64,
        })
        .await?;
    Ok(new.then_some(id))
}

/// Reads `org`'s change feed of people from the saved cursor and applies
/// every change other apps made; answers how many were applied. The cursor
/// is saved after each change, so a failure resumes where it stopped.
pub async fn catch_up(mno: &Mno, store: &Store, org: &str) -> Result<usize> {
    let people: Collection<CustomerFields> = mno.connec().collection(org, "people");
    let from = ChangeCursor(store.change_cursor(org).await?);
    let feed = mno
        .connec()
        .changes(org, from)
        .entities(&["people"])
        .skip_own_changes();
    let mut changes = std::pin::pin!(feed.stream());
    let mut applied = 0;
    while let Some(change) = changes.try_next().await? {
        if matches!(change.op.as_str(), "created" | "updated" | "deleted") {
            let fields = if change.is_delete() {
                None
            } else {
                Some(change.record_as::<CustomerFields>()?)
            };
            let made = apply(
                store,
                PersonChange {
                    org: org.to_owned(),
                    connec_id: change.id.clone(),
                    books_id: None,
                    version: change.version,
                    fields,
                },
            )
            .await?;
            if let Some(books_id) = made {
                match people.map_id(&change.id, &books_id).await {
                    // Deleted since: a later change of the feed removes it here too.
                    Err(e) if matches!(e.api().map(|a| a.status), Some(404 | 410)) => {}
                    other => other?,
                }
            }
            applied += 1;
        }
        store.save_change_cursor(org, change.cursor().0).await?;
    }
    Ok(applied)
}
