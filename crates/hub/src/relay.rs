//! The outbox relay: publishes outbox rows to stream HUB in id order, then
//! marks them published.
//!
//! Never lost: a row is marked only after JetStream acknowledged it, so a crash
//! before that leaves it to the next run. Never doubled: each row is published
//! with `Nats-Msg-Id = hub-<outbox id>` (JetStream drops a repeat within its
//! duplicate window), and on start the relay also checks the stream itself for
//! rows that were published but not marked, which holds beyond that window.

use std::time::Duration;

use async_nats::jetstream::stream::DirectGetErrorKind;
use mno_events::bus::Bus;
use mno_events::envelope::{to_timestamp, HUB_EVENT_SCHEMA, SCHEMA_HEADER};
use mno_events::proto::{Actor, HubEvent};
use mno_events::publish::{Outgoing, Publisher};
use mno_events::streams::HUB;
use mno_events::subject::HubSubject;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::outbox::{self, OutboxRow};
use crate::store::Store;

/// Rows published per round.
const BATCH: i64 = 256;
/// How often the relay looks even when not woken (rows written by another process).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Test hooks that stop the relay at a crash point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayFailpoint {
    /// Never publish: as if the process died right after the SQL commit.
    NeverPublish,
    /// Publish but never mark rows published: as if the process died after
    /// each JetStream ack, before the SQL update.
    PublishWithoutMarking,
}

/// The subject of an outbox row. Org ids and kinds are always tokens; should a
/// row hold anything else, it goes to the platform subject rather than block the relay.
fn subject_of(row: &OutboxRow) -> String {
    HubSubject::new(&row.org, &row.kind)
        .or_else(|_| HubSubject::platform(&row.kind))
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "hub._platform.invalid".to_owned())
}

/// The message id of an outbox row.
pub fn msg_id(outbox_id: i64) -> String {
    format!("hub-{outbox_id}")
}

/// The Hub event of an outbox row.
/// The largest payload an event carries. The bus refuses a message above
/// its `max_payload` (1 MiB by default) for good, and a row that can never be
/// published would hold back every row after it, for every tenant.
pub const MAX_EVENT_PAYLOAD: usize = 512 * 1024;

/// A payload within [`MAX_EVENT_PAYLOAD`]: a larger one (an invoice of tens of
/// thousands of bills) is replaced by a note of its size, and the event still
/// names its org, app and kind.
fn bounded_payload(row: &OutboxRow) -> Vec<u8> {
    if row.payload.len() <= MAX_EVENT_PAYLOAD {
        return row.payload.clone().into_bytes();
    }
    tracing::warn!(
        outbox_id = row.id, kind = %row.kind, bytes = row.payload.len(),
        "a Hub event's payload is too large for the bus; it is published without it"
    );
    serde_json::json!({"payload_omitted": {
        "bytes": row.payload.len(),
        "why": format!("the payload is above {MAX_EVENT_PAYLOAD} bytes, more than the bus carries; read what the event names through the API"),
    }})
    .to_string()
    .into_bytes()
}

pub fn event_of(row: &OutboxRow) -> HubEvent {
    HubEvent {
        event_id: row.event_id.clone(),
        outbox_id: row.id as u64,
        org: row.org.clone(),
        kind: row.kind.clone(),
        actor: Some(Actor {
            kind: row.actor_kind.clone(),
            id: row.actor_id.clone(),
        }),
        occurred_at: chrono::DateTime::from_timestamp_millis(row.occurred_at).map(to_timestamp),
        user_id: row.user_id.clone(),
        app_id: row.app_id.clone(),
        payload: bounded_payload(row),
    }
}

pub struct Relay {
    store: Store,
    bus: Bus,
    publisher: Publisher,
    failpoint: Option<RelayFailpoint>,
}

impl Relay {
    pub fn new(store: Store, bus: Bus, failpoint: Option<RelayFailpoint>) -> Self {
        let publisher = Publisher::new(bus.js.clone(), HUB);
        Self {
            store,
            bus,
            publisher,
            failpoint,
        }
    }

    /// Run until `stop` turns true; a round in hand is finished first.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            if self.failpoint == Some(RelayFailpoint::NeverPublish) {
                tracing::warn!("outbox relay held by a test failpoint: nothing is published");
                return;
            }
            let woken = self.store.outbox_written();
            let mut recovered = false;
            // Only with PublishWithoutMarking: what this run published, unmarked.
            let mut published_unmarked = 0;
            let mut backoff = Duration::from_millis(100);
            loop {
                if *stop.borrow() {
                    return;
                }
                match self.round(&mut recovered, &mut published_unmarked).await {
                    Ok(Round::Published) => {
                        backoff = Duration::from_millis(100);
                        continue;
                    }
                    Ok(Round::Idle) => {
                        backoff = Duration::from_millis(100);
                        tokio::select! {
                            _ = woken.notified() => {}
                            _ = tokio::time::sleep(IDLE_POLL) => {}
                            _ = stop.changed() => {}
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "outbox relay round failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stop.changed() => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })
    }

    /// Publish every row waiting now, then return (for a process that has
    /// no relay running, such as `mno billing run`). Safe beside a running
    /// relay: both publish in id order under the same message ids.
    pub async fn publish_backlog(&self) -> anyhow::Result<()> {
        let mut recovered = false;
        let mut published_unmarked = 0;
        while let Round::Published = self.round(&mut recovered, &mut published_unmarked).await? {}
        Ok(())
    }

    async fn round(
        &self,
        recovered: &mut bool,
        published_unmarked: &mut i64,
    ) -> anyhow::Result<Round> {
        let mut rows = outbox::unpublished(&self.store.pool, BATCH).await?;
        rows.retain(|row| row.id > *published_unmarked);
        if rows.is_empty() {
            *recovered = true;
            return Ok(Round::Idle);
        }
        if !*recovered {
            rows = self.skip_already_published(rows).await?;
            *recovered = true;
            if rows.is_empty() {
                return Ok(Round::Published);
            }
        }
        let messages = rows.iter().map(|row| {
            Outgoing::new(
                subject_of(row),
                msg_id(row.id),
                event_of(row).to_bytes().into(),
            )
            .header(SCHEMA_HEADER, HUB_EVENT_SCHEMA)
        });
        let messages: Vec<Outgoing> = messages.collect();
        let results = self.publisher.publish_pipelined(messages, 64).await;
        // Mark the acknowledged prefix; the rest is retried in order.
        let acked = results.iter().take_while(|r| r.is_ok()).count();
        if self.failpoint == Some(RelayFailpoint::PublishWithoutMarking) {
            if acked > 0 {
                *published_unmarked = rows[acked - 1].id;
            }
        } else if acked > 0 {
            outbox::mark_published(&self.store.pool, rows[0].id, rows[acked - 1].id).await?;
        }
        if let Some(Err(e)) = results.get(acked) {
            anyhow::bail!("publishing outbox row {} failed: {e}", rows[acked].id);
        }
        Ok(Round::Published)
    }

    /// Rows that a previous run published but did not mark: the last message
    /// on the row's subject is this row, or a later one (the relay publishes
    /// in id order). Those are marked; the others are returned.
    async fn skip_already_published(&self, rows: Vec<OutboxRow>) -> anyhow::Result<Vec<OutboxRow>> {
        let stream = self.bus.js.get_stream(HUB).await?;
        let mut published_up_to = None;
        for (index, row) in rows.iter().enumerate() {
            let last = match stream.direct_get_last_for_subject(subject_of(row)).await {
                Ok(message) => Some(HubEvent::from_bytes(&message.payload)?),
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => None,
                Err(e) => return Err(e.into()),
            };
            let done =
                last.is_some_and(|ev| ev.outbox_id > row.id as u64 || ev.event_id == row.event_id);
            if !done {
                break;
            }
            published_up_to = Some(index);
        }
        let Some(index) = published_up_to else {
            return Ok(rows);
        };
        tracing::info!(
            first = rows[0].id,
            last = rows[index].id,
            "outbox rows were published before a restart; marking them"
        );
        outbox::mark_published(&self.store.pool, rows[0].id, rows[index].id).await?;
        Ok(rows.into_iter().skip(index + 1).collect())
    }
}

enum Round {
    Published,
    Idle,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(payload: String) -> OutboxRow {
        OutboxRow {
            id: 7,
            event_id: "e7".into(),
            org: "o".into(),
            kind: "invoice_issued".into(),
            actor_kind: "system".into(),
            actor_id: String::new(),
            user_id: String::new(),
            app_id: String::new(),
            payload,
            occurred_at: 0,
        }
    }

    #[test]
    fn a_payload_too_large_for_the_bus_is_replaced_by_a_note_of_its_size() {
        let small = row(r#"{"total_cents":5}"#.into());
        assert_eq!(event_of(&small).payload, br#"{"total_cents":5}"#.to_vec());
        let huge = row(format!(
            r#"{{"bills":"{}"}}"#,
            "x".repeat(MAX_EVENT_PAYLOAD)
        ));
        let event = event_of(&huge);
        assert!(event.payload.len() < 1024);
        let note: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
        assert_eq!(note["payload_omitted"]["bytes"], huge.payload.len());
        assert_eq!(event.kind, "invoice_issued");
        assert_eq!(event.outbox_id, 7);
    }
}
