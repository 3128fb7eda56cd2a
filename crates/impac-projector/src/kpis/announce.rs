//! An alert, once its row is committed: published on HUB as
//! `hub.<org>.kpi_alert` and POSTed, signed, to the KPI's webhook if it has one.

use std::time::Duration;

use chrono::Utc;
use mno_events::envelope::{canonical_json, to_timestamp};
use mno_events::proto::{Actor, HubEvent};
use mno_events::publish::Outgoing;
use mno_events::subject::{hub_kind, HubSubject};
use mno_events::webhook::send::Outcome;
use serde_json::{json, Value};

use super::creator;
use super::store::Kpi;
use crate::ImpacState;

/// An alert stored, to be announced once its row is committed.
pub struct RaisedAlert {
    pub id: String,
    pub org: String,
    pub raised_at: chrono::DateTime<Utc>,
    pub body: Value,
}

/// Publish a stored alert on HUB and POST it to the KPI's webhook.
pub async fn announce(state: &ImpacState, kpi: &Kpi, raised: RaisedAlert) {
    let RaisedAlert {
        id,
        org,
        raised_at,
        body: alert,
    } = raised;
    let event = HubEvent {
        event_id: id.clone(),
        outbox_id: 0,
        org: org.clone(),
        kind: hub_kind::KPI_ALERT.into(),
        actor: Some(Actor {
            kind: "system".into(),
            id: "impac".into(),
        }),
        occurred_at: Some(to_timestamp(raised_at)),
        user_id: String::new(),
        app_id: String::new(),
        payload: canonical_json(&alert),
    };
    match HubSubject::new(&org, hub_kind::KPI_ALERT) {
        Ok(subject) => {
            let outgoing = Outgoing::new(subject.to_string(), id.clone(), event.to_bytes().into());
            if let Err(e) = state.kpis.hub.publish(outgoing).await {
                tracing::warn!(error = %e, alert = %id, "the KPI alert was stored but not published on HUB");
            }
        }
        Err(e) => tracing::warn!(error = %e, "no HUB subject for the KPI alert"),
    }

    if let (Some(url), Some(secret)) = (kpi.webhook.clone(), kpi.secret.clone()) {
        let state = state.clone();
        let kpi = kpi.clone();
        let body = json!({"type": "kpi.alert", "alert": alert}).to_string();
        tokio::spawn(async move {
            // An org's figures leave the platform only while the KPI's creator
            // may still read them (a member removed, an app uninstalled: not).
            let refused = match creator::still_reads(&state, &kpi).await {
                Ok(true) => None,
                Ok(false) => Some(
                    "not sent: the KPI's creator no longer reads every organisation it watches; an org member may delete it or create it again"
                        .to_owned(),
                ),
                Err(e) => Some(format!(
                    "not sent: could not check that the KPI's creator still reads its organisations ({e})"
                )),
            };
            match refused {
                None => send_alert(&state, &id, &url, &secret, body).await,
                Some(reason) => {
                    tracing::warn!(kpi = %kpi.id, alert = %id, %reason, "KPI alert webhook");
                    record_webhook(&state, &id, &reason).await;
                }
            }
        });
    }
}

/// What became of an alert's webhook, in its row.
async fn record_webhook(state: &ImpacState, id: &str, result: &str) {
    let _ = sqlx::query("UPDATE impac_alerts SET webhook = $1 WHERE id = $2")
        .bind(result)
        .bind(id)
        .execute(&state.db)
        .await;
}

/// POST the alert, signed, retrying a few times; the alert row records how it went.
async fn send_alert(state: &ImpacState, id: &str, url: &str, secret: &str, body: String) {
    const DELAYS: [u64; 3] = [1, 5, 30];
    let mut result = String::new();
    for (attempt, delay) in DELAYS.iter().enumerate() {
        let sent = state
            .kpis
            .sender
            .post(url, &[secret.to_owned()], id, body.clone().into())
            .await;
        result = match (&sent.outcome, sent.status) {
            (Outcome::Delivered, Some(status)) => format!("delivered ({status})"),
            (_, Some(status)) => format!("failed ({status}): {}", sent.response),
            (_, None) => format!("failed: {}", sent.response),
        };
        if matches!(
            sent.outcome,
            Outcome::Delivered | Outcome::Fatal | Outcome::Gone
        ) || attempt + 1 == DELAYS.len()
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(*delay)).await;
    }
    record_webhook(state, id, &result).await;
}
