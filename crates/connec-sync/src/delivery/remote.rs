//! Redrives and recoveries asked of the process that delivers to the app.
//!
//! With several processes, an app's worker runs in one of them (see
//! [`super::ownership`]); a request that reaches another (an edge process,
//! `mno dlq redrive`) is asked over NATS request-reply. Every delivering
//! process listens, and only the app's owner answers ([`super::responder`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::outcomes::{Recovered, Redriven, Since, SupervisorError};
use super::REDRIVE_SUBJECT;

/// NATS request-reply subject for recoveries asked of the app's owner.
/// Request: `{"app": "<app id>", "since_seq": <n>}` or `{"app", "since_time": "<RFC 3339>"}`;
/// reply: the recovery's answer, or `{"error": "..."}`.
pub const RECOVER_SUBJECT: &str = "mno.delivery.v1.recover";

/// How long to wait for the owner's answer: an app being taken over has none
/// for up to the lease's time to live.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
pub(super) struct RedriveRequest {
    pub app: String,
    pub seq: u64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct RecoverRequest {
    pub app: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_time: Option<DateTime<Utc>>,
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
