//! Redrives and recoveries asked of the process that delivers to the app.
//!
//! With several processes, an app's worker runs in one of them (see
//! [`super::ownership`]); a request that reaches another (an edge process,
//! `mno dlq redrive`) is asked over NATS request-reply. Every delivering
//! process listens, and only the app's owner answers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::supervisor::{Recovered, Redriven, Since, Supervisor, SupervisorError};
use super::REDRIVE_SUBJECT;

/// NATS request-reply subject for recoveries asked of the app's owner.
/// Request: `{"app": "<app id>", "since_seq": <n>}` or `{"app", "since_time": "<RFC 3339>"}`;
/// reply: the recovery's answer, or `{"error": "..."}`.
pub const RECOVER_SUBJECT: &str = "mno.delivery.v1.recover";

/// How long to wait for the owner's answer: an app being taken over has none
/// for up to the lease's time to live.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct RedriveRequest {
    app: String,
    seq: u64,
}

#[derive(Serialize, Deserialize)]
struct RecoverRequest {
    app: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Superseded {
    seq: u64,
    by_version: u64,
}

async fn ask(
    client: &async_nats::Client,
    subject: &'static str,
    app_id: &str,
    body: Value,
) -> Result<Value, SupervisorError> {
    let no_owner = || {
        SupervisorError::Unavailable(format!(
            "no process delivers to app {app_id} right now (it is being taken over); retry shortly"
        ))
    };
    let reply = tokio::time::timeout(
        ASK_TIMEOUT,
        client.request(subject, body.to_string().into()),
    )
    .await
    .map_err(|_| no_owner())?
    .map_err(|_| no_owner())?;
    let answer: Value = serde_json::from_slice(&reply.payload).map_err(|e| {
        SupervisorError::Unavailable(format!("the owner's answer is not JSON: {e}"))
    })?;
    if let Some(error) = answer.get("error").and_then(Value::as_str) {
        return Err(SupervisorError::Unavailable(error.to_owned()));
    }
    Ok(answer)
}

/// Ask the app's owner to redrive dead letter `seq`.
pub async fn redrive(
    client: &async_nats::Client,
    app_id: &str,
    seq: u64,
) -> Result<Redriven, SupervisorError> {
    let answer = ask(
        client,
        REDRIVE_SUBJECT,
        app_id,
        json!({"app": app_id, "seq": seq}),
    )
    .await?;
    if let Some(sent) = answer["redriven"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|v| serde_json::from_value::<u64>(v.clone()).ok())
    {
        return Ok(Redriven::Sent { seq: sent });
    }
    if let Some(s) = answer["superseded"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|v| serde_json::from_value::<Superseded>(v.clone()).ok())
    {
        return Ok(Redriven::Superseded {
            seq: s.seq,
            by_version: s.by_version,
        });
    }
    Err(SupervisorError::Unavailable(format!(
        "the owner of app {app_id} answered the redrive with {answer}"
    )))
}

/// Ask the app's owner to send its changes again since `since`.
pub async fn recover(
    client: &async_nats::Client,
    app_id: &str,
    since: Since,
) -> Result<Recovered, SupervisorError> {
    let (since_seq, since_time) = match since {
        Since::Sequence(seq) => (Some(seq), None),
        Since::Time(at) => (None, Some(at)),
    };
    let request = RecoverRequest {
        app: app_id.to_owned(),
        since_seq,
        since_time,
    };
    let answer = ask(
        client,
        RECOVER_SUBJECT,
        app_id,
        serde_json::to_value(&request).expect("plain fields"),
    )
    .await?;
    serde_json::from_value(answer).map_err(|e| {
        SupervisorError::Unavailable(format!(
            "the owner's recovery answer is not understood: {e}"
        ))
    })
}

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
