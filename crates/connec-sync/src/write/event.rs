//! The record event of a write, and its publish on the record's subject with
//! `Nats-Msg-Id` = the event id and the expected last subject sequence.

use chrono::Utc;
use mno_events::envelope::{canonical_json, to_timestamp};
use mno_events::proto::{Op, RecordEvent, Source};
use mno_events::publish::{Outgoing, PublishError};
use mno_events::subject::RecordSubject;
use serde_json::{Map, Value};

use super::retry::Attempt;
use super::{unavailable, Stored, WriteContext, WriteError, Writer};

/// A publish that failed: too large is final, anything else may pass on a retry.
fn publish_failed(ctx: &WriteContext, e: PublishError) -> WriteError {
    match e {
        PublishError::TooLarge { reason, .. } => WriteError::TooLarge {
            entity: ctx.entity.name.to_owned(),
            reason,
        },
        e => unavailable(e),
    }
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn event(
        &self,
        ctx: &WriteContext,
        id: &str,
        op: Op,
        version: u64,
        local_id: String,
        mut changed: Vec<String>,
        state: Map<String, Value>,
    ) -> RecordEvent {
        let now = to_timestamp(Utc::now());
        changed.sort();
        RecordEvent {
            event_id: ctx.event_id(),
            org: ctx.org.to_string(),
            entity: ctx.entity.name.to_owned(),
            record_id: id.to_owned(),
            op: op as i32,
            version,
            source: Some(Source {
                app_id: ctx.app_id().unwrap_or_default().to_owned(),
                local_id,
            }),
            actor: Some(ctx.actor()),
            occurred_at: Some(now),
            recorded_at: Some(now),
            changed_fields: changed,
            correlation_id: ctx.correlation_id.clone(),
            state: canonical_json(&Value::Object(state)),
            merged_record_ids: vec![],
        }
    }

    async fn publish(
        &self,
        ctx: &WriteContext,
        id: &str,
        event: RecordEvent,
        expected: u64,
    ) -> Result<Stored, PublishError> {
        let subject = RecordSubject::new(ctx.org.as_str(), ctx.entity.name, id).map_err(|e| {
            PublishError::Bus {
                subject: format!("rec.{}.{}.{id}", ctx.org, ctx.entity.name),
                reason: e.to_string(),
            }
        })?;
        let outgoing = Outgoing::new(
            subject.to_string(),
            event.event_id.clone(),
            event.to_bytes().into(),
        )
        .expect_last_subject_seq(expected);
        if let Some(stage) = &ctx.stage {
            // Published later with the rest of its atomic batch; its sequence is filled in then.
            stage
                .lock()
                .expect("the stage lock is never poisoned")
                .push(outgoing);
            return Ok(Stored { event, seq: 0 });
        }
        let published = self.publisher.publish(outgoing).await?;
        if published.duplicate {
            // Stored before under this event id: answer with what was stored.
            let stream = self
                .js
                .get_stream_no_info(mno_events::streams::RECORDS)
                .await
                .map_err(|e| PublishError::Bus {
                    subject: subject.to_string(),
                    reason: e.to_string(),
                })?;
            let message =
                stream
                    .direct_get(published.seq)
                    .await
                    .map_err(|e| PublishError::Bus {
                        subject: subject.to_string(),
                        reason: e.to_string(),
                    })?;
            let event =
                RecordEvent::from_bytes(&message.payload).map_err(|e| PublishError::Bus {
                    subject: subject.to_string(),
                    reason: e.to_string(),
                })?;
            return Ok(Stored {
                event,
                seq: published.seq,
            });
        }
        Ok(Stored {
            event,
            seq: published.seq,
        })
    }
    /// One attempt: published, or lost to another writer (read again), or failed.
    pub(super) async fn try_publish(
        &self,
        ctx: &WriteContext,
        id: &str,
        event: RecordEvent,
        expected: u64,
    ) -> Result<Attempt<Stored>, WriteError> {
        match self.publish(ctx, id, event, expected).await {
            Ok(stored) => Ok(Attempt::Done(stored)),
            Err(PublishError::Conflict { .. }) => Ok(Attempt::Lost),
            Err(e) => Err(publish_failed(ctx, e)),
        }
    }
}
