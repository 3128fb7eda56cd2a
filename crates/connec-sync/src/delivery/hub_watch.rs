//! Reacting to the Hub: installs and app changes arrive as Hub events and
//! reshape delivery at once; a periodic resync catches anything missed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mno_events::consume::{self, ReplayFrom};
use mno_events::proto::HubEvent;
use mno_events::streams::HUB;
use mno_events::subject::{hub_kind, HubSubject};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::supervisor::Supervisor;

const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// Follow new Hub events; the consumer exists when this returns.
pub async fn spawn(supervisor: Arc<Supervisor>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let js = supervisor.ctx.js.clone();
    let filters = vec![HubSubject::all()];
    let first = consume::replay_ordered(&js, HUB, &filters, ReplayFrom::New).await;
    tokio::spawn(async move {
        let mut messages = first.ok();
        loop {
            let Some(stream) = messages.as_mut() else {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                // Missed events are covered by the resync; follow from now.
                messages = consume::replay_ordered(&js, HUB, &filters, ReplayFrom::New)
                    .await
                    .ok();
                continue;
            };
            tokio::select! {
                _ = stop.changed() => return,
                next = stream.next() => match next {
                    Some(Ok(message)) => {
                        if let Ok(event) = HubEvent::from_bytes(&message.payload) {
                            apply(&supervisor, &event).await;
                        }
                    }
                    Some(Err(e)) => tracing::debug!(error = %e, "hub watch hiccup"),
                    None => messages = None,
                },
            }
        }
    })
}

async fn apply(supervisor: &Supervisor, event: &HubEvent) {
    let app = event.app_id.as_str();
    let outcome = match event.kind.as_str() {
        hub_kind::INSTALL_CREATED | hub_kind::INSTALL_UPDATED | hub_kind::INSTALL_REMOVED => {
            if app.is_empty() {
                supervisor.sync_all().await
            } else {
                supervisor.installs_changed(app).await;
                supervisor.sync_app(app).await
            }
        }
        hub_kind::APP_CREATED
        | hub_kind::APP_UPDATED
        | hub_kind::CREDENTIALS_ROTATED
        | hub_kind::WEBHOOK_DISABLED => {
            if app.is_empty() {
                supervisor.sync_all().await
            } else {
                supervisor.sync_app(app).await
            }
        }
        _ => Ok(()),
    };
    if let Err(e) = outcome {
        tracing::warn!(kind = %event.kind, %app, error = %e, "could not apply a Hub event to delivery; the resync will");
    }
}

/// Every [`RESYNC_EVERY`], compare every app with the directory.
pub fn spawn_resync(
    supervisor: Arc<Supervisor>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(RESYNC_EVERY);
        every.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = every.tick() => {
                    if let Err(e) = supervisor.sync_all().await {
                        tracing::warn!(error = %e, "delivery resync failed");
                    }
                }
            }
        }
    })
}
