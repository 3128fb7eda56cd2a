//! The answering side of [`super::remote`]: every delivering process listens
//! for redrives and recoveries, and answers those of the apps it delivers to.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::outcomes::{Redriven, Since};
use super::remote::{RecoverRequest, RedriveRequest, RECOVER_SUBJECT};
use super::supervisor::Supervisor;
use super::REDRIVE_SUBJECT;

/// Answer redrives and recoveries of the apps this process delivers to
/// (the others stay silent: their owner answers).
pub fn spawn_responder(
    supervisor: Arc<Supervisor>,
    client: async_nats::Client,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let subscribed = async {
            let redrives = client.subscribe(REDRIVE_SUBJECT).await?;
            let recoveries = client.subscribe(RECOVER_SUBJECT).await?;
            Ok::<_, async_nats::SubscribeError>(futures::stream::select(redrives, recoveries))
        };
        let mut requests = match subscribed.await {
            Ok(requests) => requests,
            Err(e) => {
                tracing::warn!(error = %e, "cannot answer redrive and recovery requests");
                return;
            }
        };
        loop {
            let request = tokio::select! {
                _ = stop.changed() => return,
                next = requests.next() => match next { Some(r) => r, None => return },
            };
            let Some(reply) = request.reply.clone() else {
                continue;
            };
            let answer = if request.subject.as_str() == REDRIVE_SUBJECT {
                match serde_json::from_slice::<RedriveRequest>(&request.payload) {
                    Ok(ask) if !supervisor.delivers_to(&ask.app) => continue,
                    Ok(ask) => match supervisor.redrive_here(&ask.app, ask.seq).await {
                        Ok(outcome) => Redriven::answer(&[outcome]),
                        Err(e) => json!({"error": e.to_string()}),
                    },
                    Err(e) => {
                        json!({"error": format!("the request is not {{\"app\",\"seq\"}}: {e}")})
                    }
                }
            } else {
                match serde_json::from_slice::<RecoverRequest>(&request.payload) {
                    Ok(ask) if !supervisor.delivers_to(&ask.app) => continue,
                    Ok(ask) => {
                        let since = match (ask.since_seq, ask.since_time) {
                            (Some(seq), _) => Since::Sequence(seq),
                            (None, Some(at)) => Since::Time(at),
                            (None, None) => Since::Sequence(1),
                        };
                        match supervisor.recover_here(&ask.app, since).await {
                            Ok(recovered) => serde_json::to_value(recovered).expect("plain fields"),
                            Err(e) => json!({"error": e.to_string()}),
                        }
                    }
                    Err(e) => json!({"error": format!("the request is not a recovery: {e}")}),
                }
            };
            let _ = client.publish(reply, answer.to_string().into()).await;
        }
    })
}
