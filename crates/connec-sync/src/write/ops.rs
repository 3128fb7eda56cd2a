//! The writes: create, update, delete and id mapping. Each reads the record,
//! decides by [`super::rules`], and publishes with the sequence it read; a
//! lost race is tried again by [`super::retry`].

use chrono::Utc;
use mno_events::proto::{Op, Source};
use serde_json::{Map, Value};

use super::retry::{until_done, Attempt};
use super::rules::{already_created, applied_before, apply_patch, check_version, update_base};
use super::{
    invalid, strip_platform_fields, WriteContext, WriteError, Writer, Written, SINGULAR_ID,
};
use crate::entities::schema;
use crate::exact_json::NumberTexts;
use crate::idmap::{local_id_problem, AppIds};

impl Writer {
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
        let shape = schema::validate(ctx.entity, &mut fields, numbers, root);
        self.every_bad_field(ctx, &mut fields, shape).await?;

        let candidate = uuid::Uuid::now_v7().to_string();
        let global = match (&local_id, ctx.app_ids(ctx.entity.name)) {
            (Some(local), Some(ids)) => {
                let entity = ids.entity;
                let mut claim = self.idmap.claim(ids, local, &candidate).await?;
                if !claim.created {
                    let existing = self.current(&ctx.org, entity, &claim.global).await?;
                    if existing
                        .as_ref()
                        .is_some_and(|e| e.is_deleted() && !applied_before(ctx, e))
                    {
                        // The local id named a record since deleted: the new record takes it over.
                        claim = self
                            .idmap
                            .take_over(ids, local, &claim.global, &candidate)
                            .await?;
                    }
                }
                if !claim.created {
                    if let Some(existing) = self.current(&ctx.org, entity, &claim.global).await? {
                        return already_created(ctx, existing, claim.global);
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
        match self.try_publish(ctx, &global, event, 0).await? {
            Attempt::Done(record) => Ok(Written {
                record,
                created: true,
            }),
            // A create expects an empty subject: whoever was first, there is
            // now a record, and it is this request's own or a conflict.
            Attempt::Lost => {
                let existing = self.live(&ctx.org, ctx.entity.name, &global).await?;
                already_created(ctx, existing, global)
            }
        }
    }

    /// The references of `fields` translated, or every bad field in one
    /// answer: `shape`'s violations and the references that name no record.
    async fn every_bad_field(
        &self,
        ctx: &WriteContext,
        fields: &mut Value,
        shape: Result<(), Vec<schema::Violation>>,
    ) -> Result<(), WriteError> {
        let references = self.translate_references(ctx, fields).await;
        match (shape, references) {
            (Ok(()), references) => references,
            (Err(mut violations), Err(WriteError::Invalid(unknown))) => {
                for violation in unknown {
                    if !violations.iter().any(|v| v.pointer == violation.pointer) {
                        violations.push(violation);
                    }
                }
                Err(WriteError::Invalid(violations))
            }
            (Err(violations), _) => Err(WriteError::Invalid(violations)),
        }
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
        let shape = schema::validate_patch(ctx.entity, &mut patch, numbers, root);
        self.every_bad_field(ctx, &mut patch, shape).await?;
        let Value::Object(checked) = patch else {
            return Err(invalid("", "the record must be a JSON object"));
        };
        until_done(ctx.entity.name, id, || {
            self.update_once(ctx, id, &checked, root, if_match)
        })
        .await
    }

    async fn update_once(
        &self,
        ctx: &WriteContext,
        id: &str,
        checked: &Map<String, Value>,
        root: &str,
        if_match: Option<u64>,
    ) -> Result<Attempt<Written>, WriteError> {
        let stored = self.current(&ctx.org, ctx.entity.name, id).await?;
        let Some(mut base) = update_base(stored, ctx.entity.singular) else {
            return Err(WriteError::NotFound {
                entity: ctx.entity.name.to_owned(),
                id: id.to_owned(),
            });
        };
        if let Some(current) = &base.current {
            if applied_before(ctx, current) {
                return Ok(Attempt::Done(Written {
                    record: current.clone(),
                    created: false,
                }));
            }
        }
        check_version(ctx, id, if_match, base.version)?;
        let changed = apply_patch(&mut base.state, checked);
        // The whole record must still satisfy its schema (required fields).
        let mut whole = Value::Object(base.state.clone());
        strip_platform_fields(&mut whole);
        schema::validate(ctx.entity, &mut whole, &NumberTexts::new(), root)
            .map_err(WriteError::Invalid)?;
        if changed.is_empty() {
            if let Some(current) = base.current {
                return Ok(Attempt::Done(Written {
                    record: current,
                    created: false,
                }));
            }
        }
        let mut state = base.state;
        let now = Utc::now().to_rfc3339();
        state.insert("id".into(), Value::String(id.to_owned()));
        state.insert("group_id".into(), Value::String(ctx.org.to_string()));
        state
            .entry("created_at")
            .or_insert_with(|| Value::String(now.clone()));
        state.insert("updated_at".into(), Value::String(now));
        let op = if base.current.is_some() {
            Op::Updated
        } else {
            Op::Created
        };
        let local = self.local_of_caller(ctx, id).await?;
        let event = self.event(ctx, id, op, base.version + 1, local, changed, state);
        Ok(self
            .try_publish(ctx, id, event, base.seq)
            .await?
            .map(|record| Written {
                record,
                created: op == Op::Created,
            }))
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
        until_done(ctx.entity.name, id, || async move {
            let current = self.live(&ctx.org, ctx.entity.name, id).await?;
            check_version(ctx, id, if_match, current.event.version)?;
            let mut state = current.state().as_object().cloned().unwrap_or_default();
            state.insert("updated_at".into(), Value::String(Utc::now().to_rfc3339()));
            let local = self.local_of_caller(ctx, id).await?;
            let version = current.event.version + 1;
            let event = self.event(ctx, id, Op::Deleted, version, local, vec![], state);
            Ok(self
                .try_publish(ctx, id, event, current.seq)
                .await?
                .map(Written::existing))
        })
        .await
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
        if let Some(problem) = local_id_problem(local) {
            return Err(invalid("/local_id", format!("local_id {problem}")));
        }
        let current = self.live(&ctx.org, ctx.entity.name, id).await?;
        let mapping = AppIds {
            org: ctx.org.as_str(),
            app,
            entity: ctx.entity.name,
        };
        // Already mapped, and the record's last event says so: nothing to do.
        // When the mapping was stored but its event never published (the bus
        // failed between the two), the event is published now, so that a
        // retried request completes what the first one began.
        let announced = current.event.op_kind() == Op::IdMapped
            && current
                .event
                .source
                .as_ref()
                .is_some_and(|s| s.app_id == app && s.local_id == local);
        let stored = self.idmap.local_for_global(mapping, id).await?.as_deref() == Some(local);
        if stored && announced {
            return Ok(Written {
                record: current,
                created: false,
            });
        }
        if !stored {
            self.idmap.record(mapping, id, local).await?;
        }
        until_done(ctx.entity.name, id, || async move {
            let current = self.live(&ctx.org, ctx.entity.name, id).await?;
            let state = current.state().as_object().cloned().unwrap_or_default();
            // A mapping is not a change of the record: it keeps the record's
            // version, so that no writer's If-Match goes stale because of it.
            let version = current.event.version;
            let mut event = self.event(ctx, id, Op::IdMapped, version, local.into(), vec![], state);
            event.source = Some(Source {
                app_id: app.to_owned(),
                local_id: local.to_owned(),
            });
            Ok(self
                .try_publish(ctx, id, event, current.seq)
                .await?
                .map(Written::existing))
        })
        .await
    }
}
