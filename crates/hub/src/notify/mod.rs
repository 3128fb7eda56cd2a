//! Account webhooks (docs/api/account-webhooks.md): an app is told when an
//! org installs or uninstalls it, and when a member joins, leaves or changes
//! role in an org where it is installed.
//!
//! Driven by a durable consumer on stream HUB, so nothing is lost to a
//! crash: an event is acknowledged only once every app it concerns took it
//! (2xx), gave up on it (410 Gone, a refused URL) or ran out of retries. A
//! failed delivery is retried by JetStream itself (a NAK with the delay of the
//! retry schedule); apps that already took the event are not sent it again.

mod payload;

use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use mno_events::bus::Bus;
use mno_events::consume::{durable_pull, Batches, DurableSpec, ReplayFrom};
use mno_events::envelope::canonical_json;
use mno_events::proto::HubEvent;
use mno_events::streams::HUB;
use mno_events::webhook::send::{Outcome, Sender};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use payload::{webhook_type, KINDS};

use crate::store::{apps, is_unique_violation, now_ms, Store};

/// The durable consumer's name on stream HUB.
pub const CONSUMER: &str = "hub-account-webhooks";

pub struct AccountWebhooks {
    store: Store,
    bus: Bus,
    sender: Sender,
    /// Delays between attempts; after the last, the event is given up for that app.
    retry_schedule: Vec<Duration>,
}

/// What came of one event.
enum Handled {
    Done,
    RetryIn(Duration),
}

impl AccountWebhooks {
    pub fn new(store: Store, bus: Bus, allow_private: bool, retry_schedule: Vec<Duration>) -> Self {
        Self {
            store,
            bus,
            sender: Sender::new(Duration::from_secs(15), allow_private, 16 * 1024),
            retry_schedule,
        }
    }

    fn spec() -> DurableSpec {
        let mut spec = DurableSpec::new(
            CONSUMER,
            KINDS.iter().map(|kind| format!("hub.*.{kind}")).collect(),
        );
        // A platform that adds this consumer tells apps of changes from then on.
        spec.start = ReplayFrom::New;
        spec.ack_wait = Duration::from_secs(120);
        spec.max_ack_pending = 1_000;
        spec.description = Some("Account webhooks to apps (installs and members)".into());
        spec
    }

    /// Create the durable consumer now, so that no event after start is missed.
    pub async fn start(self, stop: watch::Receiver<bool>) -> anyhow::Result<JoinHandle<()>> {
        durable_pull(&self.bus.js, HUB, &Self::spec()).await?;
        Ok(tokio::spawn(self.run(stop)))
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        while !*stop.borrow() {
            if let Err(e) = self.consume(&mut stop).await {
                tracing::warn!(error = %e, retry_in = ?backoff, "account webhooks: the consumer failed; starting it again");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }

    async fn consume(&self, stop: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let consumer = durable_pull(&self.bus.js, HUB, &Self::spec()).await?;
        let mut batches = Batches::open(&consumer, 64).await?;
        loop {
            let batch = tokio::select! {
                batch = batches.next(64, Duration::from_secs(1)) => batch?,
                _ = stop.changed() => return Ok(()),
            };
            for message in batch.into_iter().flatten() {
                self.handle(message).await;
            }
        }
    }

    async fn handle(&self, message: Message) {
        let attempt = message.info().map(|i| i.delivered).unwrap_or(1).max(1) as usize;
        let event = match HubEvent::from_bytes(&message.payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, subject = %message.subject, "account webhooks: an unreadable Hub event is skipped");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let ack = match self.deliver(&event, attempt).await {
            Ok(Handled::Done) => AckKind::Ack,
            Ok(Handled::RetryIn(delay)) => AckKind::Nak(Some(delay)),
            Err(e) => {
                tracing::warn!(error = %e, event = %event.event_id, "account webhooks: the database failed; retrying");
                AckKind::Nak(Some(Duration::from_secs(1)))
            }
        };
        if let Err(e) = message.ack_with(ack).await {
            tracing::warn!(error = %e, event = %event.event_id, "account webhooks: the acknowledgement failed; the event will come again");
        }
    }

    /// Send `event` to every app it concerns that has not taken it yet.
    async fn deliver(&self, event: &HubEvent, attempt: usize) -> Result<Handled, sqlx::Error> {
        let pool = &self.store.pool;
        let Some(body) = payload::body(pool, event).await? else {
            return Ok(Handled::Done);
        };
        let body = bytes::Bytes::from(canonical_json(&body));
        let mut pending = false;
        for app_id in payload::recipients(pool, event).await? {
            if delivered(pool, &event.event_id, &app_id).await? {
                continue;
            }
            let Some(app) = apps::get(pool, &app_id).await? else {
                continue;
            };
            let Some(url) = app.account_webhook_url.as_deref() else {
                continue;
            };
            let secrets = apps::webhook_secrets(pool, &app_id).await?;
            let sent = self
                .sender
                .post(url, &secrets, &event.event_id, body.clone())
                .await;
            match sent.outcome {
                Outcome::Delivered => mark_delivered(pool, &event.event_id, &app_id).await?,
                Outcome::Retry { .. } if attempt <= self.retry_schedule.len() => {
                    tracing::info!(app = %app_id, event = %event.event_id, attempt, status = ?sent.status, response = %sent.response, "account webhook failed; it will be retried");
                    pending = true;
                }
                outcome => {
                    tracing::warn!(app = %app_id, event = %event.event_id, attempt, ?outcome, status = ?sent.status, response = %sent.response, "account webhook given up");
                    mark_delivered(pool, &event.event_id, &app_id).await?;
                }
            }
        }
        Ok(match pending {
            false => Handled::Done,
            true => Handled::RetryIn(self.retry_schedule[attempt - 1]),
        })
    }
}

async fn delivered(
    pool: &sqlx::AnyPool,
    event_id: &str,
    app_id: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT delivered_at FROM hub_account_deliveries WHERE event_id = $1 AND app_id = $2",
    )
    .bind(event_id)
    .bind(app_id)
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

/// Remember that `app_id` is done with `event_id` (delivered or given up).
async fn mark_delivered(
    pool: &sqlx::AnyPool,
    event_id: &str,
    app_id: &str,
) -> Result<(), sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO hub_account_deliveries (event_id, app_id, delivered_at) VALUES ($1, $2, $3)",
    )
    .bind(event_id)
    .bind(app_id)
    .bind(now_ms())
    .execute(pool)
    .await;
    match inserted {
        Err(e) if !is_unique_violation(&e) => Err(e),
        _ => Ok(()),
    }
}
