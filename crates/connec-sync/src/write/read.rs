//! Reading a record as it is now: the last message on its subject (a direct
//! get), so a read sees every acknowledged write without waiting for a projection.

use async_nats::jetstream::stream::DirectGetErrorKind;
use mno_events::proto::RecordEvent;
use mno_events::subject::{RecordSubject, Token};

use super::{unavailable, Stored, WriteContext, WriteError, Writer, SINGULAR_ID};

impl Writer {
    /// The last event of a record, if it has any.
    pub async fn current(
        &self,
        org: &Token,
        entity: &str,
        id: &str,
    ) -> Result<Option<Stored>, WriteError> {
        let Ok(subject) = RecordSubject::new(org.as_str(), entity, id) else {
            return Ok(None);
        };
        let stream = self
            .js
            .get_stream_no_info(mno_events::streams::RECORDS)
            .await
            .map_err(unavailable)?;
        match stream
            .direct_get_last_for_subject(subject.to_string())
            .await
        {
            Ok(message) => {
                let event = RecordEvent::from_bytes(&message.payload).map_err(unavailable)?;
                Ok(Some(Stored {
                    event,
                    seq: message.sequence,
                }))
            }
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// A live (not deleted) record, or NotFound.
    pub async fn live(&self, org: &Token, entity: &str, id: &str) -> Result<Stored, WriteError> {
        match self.current(org, entity, id).await? {
            Some(stored) if !stored.is_deleted() => Ok(stored),
            _ => Err(WriteError::NotFound {
                entity: entity.to_owned(),
                id: id.to_owned(),
            }),
        }
    }

    /// The global id a path id names: a global id, or the calling app's local id.
    pub async fn resolve(&self, ctx: &WriteContext, id: &str) -> Result<String, WriteError> {
        if ctx.entity.singular {
            return Ok(SINGULAR_ID.to_owned());
        }
        // No id is longer (global ids are shorter still): refuse before the bus sees it.
        crate::idmap::check_local(id)?;
        if Token::parse("record id", id).is_ok()
            && self.current(&ctx.org, ctx.entity.name, id).await?.is_some()
        {
            return Ok(id.to_owned());
        }
        if let Some(ids) = ctx.app_ids(ctx.entity.name) {
            if let Some(global) = self.idmap.global_for_local(ids, id).await? {
                return Ok(global);
            }
        }
        Err(WriteError::NotFound {
            entity: ctx.entity.name.to_owned(),
            id: id.to_owned(),
        })
    }
}
