//! What an account webhook says: one JSON object per Hub event and app,
//! `{type, event_id, timestamp, data}` (the Standard Webhooks payload shape).

use mno_events::proto::HubEvent;
use mno_events::subject::hub_kind;
use serde_json::{json, Value};
use sqlx::AnyPool;

use crate::store::{orgs, users};

/// The Hub event kinds that make account webhooks.
pub const KINDS: [&str; 5] = [
    hub_kind::INSTALL_CREATED,
    hub_kind::INSTALL_REMOVED,
    hub_kind::MEMBER_ADDED,
    hub_kind::MEMBER_UPDATED,
    hub_kind::MEMBER_REMOVED,
];

/// The `type` of the webhook a Hub event kind makes.
pub fn webhook_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        hub_kind::INSTALL_CREATED => "app.installed",
        hub_kind::INSTALL_REMOVED => "app.uninstalled",
        hub_kind::MEMBER_ADDED => "member.added",
        hub_kind::MEMBER_UPDATED => "member.role_changed",
        hub_kind::MEMBER_REMOVED => "member.removed",
        _ => return None,
    })
}

/// The apps to tell: the app installed or uninstalled; for member events,
/// the apps installed in the org when the event happened (a webhook retried
/// after an uninstall still reaches the app that was installed then).
pub async fn recipients(pool: &AnyPool, event: &HubEvent) -> Result<Vec<String>, sqlx::Error> {
    match event.kind.as_str() {
        hub_kind::INSTALL_CREATED | hub_kind::INSTALL_REMOVED => Ok(vec![event.app_id.clone()]),
        _ => installed_before(pool, &event.org, event.outbox_id as i64).await,
    }
}

/// The apps installed in `org` just before outbox row `outbox_id`: the
/// outbox keeps every install and uninstall in commit order.
async fn installed_before(
    pool: &AnyPool,
    org: &str,
    outbox_id: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let changes: Vec<(String, String)> = sqlx::query_as(
        "SELECT app_id, kind FROM hub_outbox WHERE org = $1 AND kind IN ($2, $3) AND id < $4 ORDER BY id",
    )
    .bind(org)
    .bind(hub_kind::INSTALL_CREATED)
    .bind(hub_kind::INSTALL_REMOVED)
    .bind(outbox_id)
    .fetch_all(pool)
    .await?;
    let mut installed = std::collections::BTreeSet::new();
    for (app, kind) in changes {
        if kind == hub_kind::INSTALL_CREATED {
            installed.insert(app);
        } else {
            installed.remove(&app);
        }
    }
    Ok(installed.into_iter().collect())
}

/// The body of the webhook of `event`; `None` for a kind that makes none.
pub async fn body(pool: &AnyPool, event: &HubEvent) -> Result<Option<Value>, sqlx::Error> {
    let Some(kind) = webhook_type(&event.kind) else {
        return Ok(None);
    };
    let details: Value = serde_json::from_slice(&event.payload).unwrap_or(Value::Null);
    let org = match orgs::get(pool, &event.org).await? {
        Some(row) => row.to_json(),
        None => json!({"id": event.org}),
    };
    let mut data = json!({ "org": org });
    if event.kind.starts_with("member_") {
        let user = users::by_id(pool, &event.user_id).await?;
        data["member"] = json!({
            "user_id": event.user_id,
            "email": user.as_ref().map(|u| u.email.clone()),
            "name": user.as_ref().map(|u| u.name.clone()),
            "role": details["role"],
        });
        if event.kind == hub_kind::MEMBER_UPDATED {
            data["member"]["previous_role"] = details["previous_role"].clone();
        }
    } else {
        data["app_id"] = json!(event.app_id);
    }
    let timestamp = event
        .occurred_at
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    Ok(Some(json!({
        "type": kind,
        "event_id": event.event_id,
        "timestamp": timestamp,
        "data": data,
    })))
}
