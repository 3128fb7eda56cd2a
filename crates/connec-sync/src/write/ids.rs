//! Ids from the app's side: the app's own id of a new record, the references
//! it sends (its own ids or global ones) turned into global ids, and the
//! caller's own id of a record for the event's source.

use serde_json::Value;

use super::{invalid, WriteContext, WriteError, Writer, CONNEC_PROVIDER};
use crate::entities::{self, schema};
use crate::idmap::{local_id_problem, MAX_LOCAL_ID_LEN};

impl Writer {
    /// The app's own id sent in the body's `id` (a string, or the array form).
    pub(super) async fn sent_local_id(
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
            Value::Array(entries) => external_ids(entries),
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
        if let Some(problem) = local.as_deref().and_then(local_id_problem) {
            return Err(invalid("/id", format!("your id {problem}")));
        }
        Ok(local)
    }

    /// Turn every reference into a global id of a live record of the same org.
    /// Violations carry pointers relative to the record, like schema violations.
    pub(super) async fn translate_references(
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
            Value::Array(entries) => external_ids(entries),
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
            if let Some(ids) = ctx.app_ids(target) {
                if provider.is_empty() || provider == ids.app {
                    if let Some(global) = self.idmap.global_for_local(ids, &id).await? {
                        return Ok(Some(global));
                    }
                }
            }
        }
        Ok(None)
    }

    pub(super) async fn local_of_caller(
        &self,
        ctx: &WriteContext,
        id: &str,
    ) -> Result<String, WriteError> {
        Ok(match ctx.app_ids(ctx.entity.name) {
            Some(ids) => self
                .idmap
                .local_for_global(ids, id)
                .await?
                .unwrap_or_default(),
            None => String::new(),
        })
    }
}

/// `(provider, id)` of each entry of the external-ids array form
/// (`[{"provider": "crm", "id": "47"}]`); malformed entries name nothing.
fn external_ids(entries: &[Value]) -> Vec<(String, String)> {
    entries
        .iter()
        .filter_map(|e| {
            Some((
                e.get("provider")?.as_str()?.to_owned(),
                e.get("id")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}
