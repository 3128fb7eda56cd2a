//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a Hub
//! session ends, each app that signed in with it and registered a
//! `backchannel_logout_uri` is sent a signed logout token.
//!
//! Durable: revoking a session writes a `session_revoked` Hub event in the same
//! transaction (the outbox); this sender reads those events through a durable
//! JetStream consumer and acknowledges one only when every app took its token
//! (each app is marked in SQL as it does, so a retry skips it). A crash leaves
//! the event unacknowledged: it comes again. Failed sends are retried with the
//! webhook schedule (a negative acknowledgement with the delay), then dropped
//! with an error in the log. The POST goes through the webhooks' HTTP client
//! and SSRF guard.

use std::time::Duration;

use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::Message;
use mno_events::bus::Bus;
use mno_events::consume::{durable_pull, fetch_batch, DurableSpec};
use mno_events::proto::HubEvent;
use mno_events::streams::HUB;
use mno_events::subject::{hub_kind, HubSubject};
use mno_events::webhook::send::{Outcome, Sender};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::claims;
use super::store::{self as sso_store, PendingLogout};
use super::SsoConfig;
use crate::store::{now_ms, Store};

/// The durable consumer's name.
pub const CONSUMER: &str = "hub-sso-backchannel-logout";
/// The `events` member of a logout token.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid: only for its delivery.
const LOGOUT_TOKEN_TTL_SECS: i64 = 120;

/// A logout token's claims (Back-Channel Logout §2.4); never a `nonce`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutClaims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sub: String,
    pub sid: String,
    pub events: Value,
}

pub struct LogoutSender {
    store: Store,
    bus: Bus,
    config: SsoConfig,
    http: Sender,
}

impl LogoutSender {
    pub fn new(store: Store, bus: Bus, config: SsoConfig, allow_private: bool) -> Self {
        Self {
            store,
            bus,
            config,
            http: Sender::new(Duration::from_secs(10), allow_private, 4096),
        }
    }

    /// Run until `stop` turns true.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                if *stop.borrow() {
                    return;
                }
                let error = match self.run(&mut stop).await {
                    Ok(()) => return,
                    Err(e) => e,
                };
                tracing::warn!(error = %error, retry_in = ?backoff, "back-channel logout sender failed; restarting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        })
    }

    async fn run(&self, stop: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let subject = HubSubject::platform(hub_kind::SESSION_REVOKED)?.to_string();
        let mut spec = DurableSpec::new(CONSUMER, vec![subject]);
        spec.ack_wait = Duration::from_secs(300);
        spec.description = Some("the Hub's back-channel logout sender".into());
        let consumer = durable_pull(&self.bus.js, HUB, &spec).await?;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let batch = tokio::select! {
                batch = fetch_batch(&consumer, 16, Duration::from_secs(1)) => batch?,
                _ = stop.changed() => return Ok(()),
            };
            for message in batch {
                self.handle(message).await?;
            }
        }
    }

    async fn handle(&self, message: Message) -> anyhow::Result<()> {
        let session_id = HubEvent::from_bytes(&message.payload)
            .ok()
            .and_then(|event| serde_json::from_slice::<Value>(&event.payload).ok())
            .and_then(|payload| payload["session_id"].as_str().map(str::to_owned));
        let Some(session_id) = session_id else {
            tracing::warn!(subject = %message.subject, "a session_revoked event without a session id; skipped");
            message.ack().await.map_err(anyhow::Error::msg)?;
            return Ok(());
        };
        let mut left = 0;
        for logout in sso_store::pending_logouts(&self.store.pool, &session_id).await? {
            if !self.send(&session_id, &logout).await? {
                left += 1;
            }
        }
        if left == 0 {
            message.ack().await.map_err(anyhow::Error::msg)?;
            return Ok(());
        }
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1).max(1) as usize;
        match self.config.logout_retry_schedule.get(delivered - 1) {
            Some(delay) => {
                message
                    .ack_with(AckKind::Nak(Some(*delay)))
                    .await
                    .map_err(anyhow::Error::msg)?;
            }
            None => {
                tracing::error!(%session_id, apps = left, attempts = delivered, "back-channel logout not delivered after every retry; given up");
                message.ack().await.map_err(anyhow::Error::msg)?;
            }
        }
        Ok(())
    }

    /// Send one app its logout token; `true` when done with it (taken, or
    /// never to be taken: a refused URL, 410 Gone).
    async fn send(&self, session_id: &str, logout: &PendingLogout) -> anyhow::Result<bool> {
        let now = now_ms() / 1000;
        let claims = LogoutClaims {
            iss: self.config.issuer.clone(),
            aud: logout.client_id.clone(),
            iat: now,
            exp: now + LOGOUT_TOKEN_TTL_SECS,
            jti: uuid::Uuid::now_v7().to_string(),
            sub: logout.user_id.clone(),
            sid: session_id.to_owned(),
            events: json!({ LOGOUT_EVENT: {} }),
        };
        let token = claims::sign(&self.store.pool, &claims, "logout+jwt").await?;
        let attempt = self
            .http
            .post_form(&logout.uri, &[("logout_token", &token)])
            .await;
        let done = match attempt.outcome {
            Outcome::Delivered => true,
            Outcome::Retry { .. } => {
                tracing::info!(app = %logout.app_id, status = ?attempt.status, response = %attempt.response, "back-channel logout failed; will retry");
                false
            }
            Outcome::Gone | Outcome::Fatal => {
                tracing::warn!(app = %logout.app_id, status = ?attempt.status, response = %attempt.response, "back-channel logout refused for good; not retried");
                true
            }
        };
        if done {
            sso_store::mark_logout_sent(&self.store.pool, session_id, &logout.app_id).await?;
        }
        Ok(done)
    }
}
