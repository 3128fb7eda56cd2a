//! The Hub on NATS request-reply, for parts that run in other processes:
//! `mno.idm.v1.check` (an [`IdmRequest`] with hashed credentials → an [`IdmReply`]) and
//! `mno.directory.v1.<call>` (a [`DirectoryRequest`] → a [`DirectoryReply`]).
//!
//! The check is answered through a [`mno_events::idm::CachingIdm`] kept fresh
//! by Hub events, like the in-process one Connec! and Impac! use.
//!
//! Both subscribe in the queue group `mno-hub`, so several Hubs share the load.
//! Each request is answered in its own task: a slow database read does not
//! hold up the others.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use mno_events::directory::{
    call, directory_subject, Directory, DirectoryError, DirectoryReply, DirectoryRequest,
};
use mno_events::idm::{Idm, IdmReply, IdmRequest, IDM_SUBJECT};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::directory::HubDirectory;
use crate::idm::HubIdm;

pub const QUEUE_GROUP: &str = "mno-hub";

/// The check as the NATS responder answers it: credentials arrive hashed
/// (see [`HubIdm::check_hashed`]).
pub struct HashedCredentials(pub HubIdm);

#[async_trait::async_trait]
impl Idm for HashedCredentials {
    async fn check(
        &self,
        request: &IdmRequest,
    ) -> Result<mno_events::idm::IdmDecision, mno_events::idm::IdmError> {
        self.0.check_hashed(request).await
    }
}

/// Subscribe (before returning) and answer until `stop` turns true.
pub async fn spawn(
    client: async_nats::Client,
    idm: Arc<dyn Idm>,
    directory: HubDirectory,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let checks = client
        .queue_subscribe(IDM_SUBJECT, QUEUE_GROUP.into())
        .await?;
    let lookups = client
        .queue_subscribe(directory_subject("*"), QUEUE_GROUP.into())
        .await?;
    client.flush().await?;

    let directory = Arc::new(directory);
    let idm_task = serve(client.clone(), checks, stop.clone(), move |payload, _| {
        let idm = idm.clone();
        async move { answer_check(&idm, &payload).await }
    });
    let directory_task = serve(client, lookups, stop, move |payload, subject| {
        let directory = directory.clone();
        async move { answer_lookup(&directory, &subject, &payload).await }
    });
    Ok(vec![idm_task, directory_task])
}

fn serve<F, Fut>(
    client: async_nats::Client,
    mut requests: async_nats::Subscriber,
    mut stop: watch::Receiver<bool>,
    handle: F,
) -> JoinHandle<()>
where
    F: Fn(Bytes, String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Vec<u8>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                message = requests.next() => message,
                _ = stop.changed() => None,
            };
            let Some(message) = message else {
                let _ = requests.unsubscribe().await;
                return;
            };
            let Some(reply) = message.reply.clone() else {
                continue;
            };
            let answer = handle(message.payload, message.subject.to_string());
            let client = client.clone();
            tokio::spawn(async move {
                let body = answer.await;
                if let Err(e) = client.publish(reply, body.into()).await {
                    tracing::warn!(error = %e, "could not send a reply");
                }
            });
        }
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("replies always serialise")
}

async fn answer_check(idm: &Arc<dyn Idm>, payload: &[u8]) -> Vec<u8> {
    let reply = match serde_json::from_slice::<IdmRequest>(payload) {
        Ok(request) => match idm.check(&request).await {
            Ok(decision) => IdmReply::Decision(decision),
            Err(e) => IdmReply::Error(e.to_string()),
        },
        Err(e) => IdmReply::Error(format!(
            "the request is not an IdmRequest ({e}); send {{credential, org, entity?, action}} as JSON"
        )),
    };
    encode(&reply)
}

fn reply<T: Serialize>(result: Result<T, DirectoryError>) -> Vec<u8> {
    match result {
        Ok(value) => encode(&DirectoryReply::Ok(value)),
        Err(e) => encode(&DirectoryReply::<()>::Error(e.to_string())),
    }
}

fn error(detail: String) -> Vec<u8> {
    encode(&DirectoryReply::<()>::Error(detail))
}

async fn answer_lookup(directory: &HubDirectory, subject: &str, payload: &[u8]) -> Vec<u8> {
    let request: DirectoryRequest = if payload.is_empty() {
        DirectoryRequest::default()
    } else {
        match serde_json::from_slice(payload) {
            Ok(request) => request,
            Err(e) => return error(format!("the request is not a DirectoryRequest: {e}")),
        }
    };
    let call_name = subject.rsplit('.').next().unwrap_or_default();
    let need = |field: Option<String>, name: &str| {
        field.ok_or_else(|| format!("{call_name} needs the field {name}"))
    };
    match call_name {
        call::APPS => reply(directory.apps().await),
        call::APP => match need(request.app_id, "app_id") {
            Ok(app) => reply(directory.app(&app).await),
            Err(e) => error(e),
        },
        call::INSTALLS_OF_APP => match need(request.app_id, "app_id") {
            Ok(app) => reply(directory.installs_of_app(&app).await),
            Err(e) => error(e),
        },
        call::ORG => match need(request.org, "org") {
            Ok(org) => reply(directory.org(&org).await),
            Err(e) => error(e),
        },
        call::MEMBER_ROLE => match (need(request.org, "org"), need(request.user_id, "user_id")) {
            (Ok(org), Ok(user)) => reply(directory.member_role(&org, &user).await),
            (Err(e), _) | (_, Err(e)) => error(e),
        },
        call::DISABLE_WEBHOOK => match need(request.app_id, "app_id") {
            Ok(app) => {
                let reason = request.reason.unwrap_or_else(|| "disabled".into());
                reply(directory.disable_webhook(&app, &reason).await)
            }
            Err(e) => error(e),
        },
        other => error(format!(
            "unknown directory call {other:?}; use apps, app, installs_of_app, org, member_role or disable_webhook"
        )),
    }
}
