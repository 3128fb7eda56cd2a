//! Typed webhook bodies: record deliveries (keyed by collection) and account
//! webhooks (installs, uninstalls, member changes), and the answer that maps
//! the app's own ids.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::verify::WebhookError;
use crate::connec::Ids;
use crate::Org;

/// What a verified webhook carries.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Changes of shared records.
    Records(RecordDelivery),
    /// An install, uninstall or member change.
    Account(Box<AccountEvent>),
}

impl Payload {
    /// Reads a body: an account webhook has a `type`, a delivery is keyed by collection.
    pub fn parse(body: &[u8]) -> Result<Payload, WebhookError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| WebhookError::BadPayload(e.to_string()))?;
        if value.get("type").is_some_and(Value::is_string) {
            return serde_json::from_value(value)
                .map(|event| Payload::Account(Box::new(event)))
                .map_err(|e| WebhookError::BadPayload(e.to_string()));
        }
        serde_json::from_value(value)
            .map(Payload::Records)
            .map_err(|e| WebhookError::BadPayload(e.to_string()))
    }
}

/// Changes of records, by collection, in the app's view: ids and references
/// as external-id arrays.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct RecordDelivery {
    /// The records of each collection, in order.
    pub collections: BTreeMap<String, Vec<DeliveredRecord>>,
}

impl RecordDelivery {
    /// Every record with its collection.
    pub fn records(&self) -> impl Iterator<Item = (&str, &DeliveredRecord)> {
        self.collections
            .iter()
            .flat_map(|(entity, records)| records.iter().map(move |r| (entity.as_str(), r)))
    }
}

/// One record of a delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliveredRecord {
    /// Its ids (the app's own once it told it).
    pub id: Ids,
    /// `created`, `updated`, `deleted` or `merged`.
    #[serde(default)]
    pub op: String,
    /// Its version: skip a change whose version is not above the one applied.
    #[serde(default)]
    pub version: u64,
    /// The org.
    #[serde(default)]
    pub group_id: String,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl DeliveredRecord {
    /// The record's fields read as `T` (references stay [`Ids`] where `T` says so).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, WebhookError> {
        serde_json::from_value(Value::Object(self.fields.clone()))
            .map_err(|e| WebhookError::BadPayload(e.to_string()))
    }

    /// True for a delete.
    pub fn is_delete(&self) -> bool {
        self.op == "deleted"
    }
}

/// A member as account webhooks describe them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WebhookMember {
    /// The Hub user id (the `sub` of their ID tokens).
    pub user_id: String,
    /// Their email.
    #[serde(default)]
    pub email: String,
    /// Their name.
    #[serde(default)]
    pub name: String,
    /// Their role in the org (`member`, `power_user`, `admin`, `super_admin`).
    #[serde(default)]
    pub role: String,
    /// The role before, for `member.role_changed`.
    #[serde(default)]
    pub previous_role: Option<String>,
}

/// An account webhook: `{"type", "event_id", "timestamp", "data"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountEvent {
    /// The Hub event id (also the `webhook-id`).
    #[serde(default)]
    pub event_id: String,
    /// When it happened (RFC 3339); order by it if order matters.
    #[serde(default)]
    pub timestamp: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: AccountEventKind,
}

/// What an account webhook tells.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AccountEventKind {
    /// An org installed the app.
    #[serde(rename = "app.installed")]
    AppInstalled {
        /// The org.
        org: Org,
        /// The app.
        app_id: String,
    },
    /// An org uninstalled the app (it may submit a final bill).
    #[serde(rename = "app.uninstalled")]
    AppUninstalled {
        /// The org.
        org: Org,
        /// The app.
        app_id: String,
    },
    /// A user joined an org that has the app.
    #[serde(rename = "member.added")]
    MemberAdded {
        /// The org.
        org: Org,
        /// The new member.
        member: WebhookMember,
    },
    /// A member's role changed.
    #[serde(rename = "member.role_changed")]
    MemberRoleChanged {
        /// The org.
        org: Org,
        /// The member, with `previous_role`.
        member: WebhookMember,
    },
    /// A member left or was removed.
    #[serde(rename = "member.removed")]
    MemberRemoved {
        /// The org.
        org: Org,
        /// The member who left.
        member: WebhookMember,
    },
}

impl AccountEventKind {
    /// The org concerned.
    pub fn org(&self) -> &Org {
        match self {
            AccountEventKind::AppInstalled { org, .. }
            | AccountEventKind::AppUninstalled { org, .. }
            | AccountEventKind::MemberAdded { org, .. }
            | AccountEventKind::MemberRoleChanged { org, .. }
            | AccountEventKind::MemberRemoved { org, .. } => org,
        }
    }
}

/// The 2xx body answering a delivery: the app's own ids of the records it
/// just received, used in every later delivery and URL.
///
/// ```
/// let answer = mno_sdk::webhooks::IdMapAnswer::new().map("people", "0193-global", "crm-17");
/// assert_eq!(serde_json::to_value(&answer).unwrap(),
///     serde_json::json!({"id_map": [{"entity": "people", "id": "0193-global", "local_id": "crm-17"}]}));
/// ```
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdMapAnswer {
    id_map: Vec<IdMapping>,
}

#[derive(Debug, Clone, Serialize)]
struct IdMapping {
    entity: String,
    id: String,
    local_id: String,
}

impl IdMapAnswer {
    /// An answer mapping nothing (a plain 2xx).
    pub fn new() -> IdMapAnswer {
        IdMapAnswer::default()
    }

    /// Tells the app's `local_id` of the record whose global id is `connec_id`.
    pub fn map(mut self, entity: &str, connec_id: &str, local_id: &str) -> IdMapAnswer {
        self.id_map.push(IdMapping {
            entity: entity.to_owned(),
            id: connec_id.to_owned(),
            local_id: local_id.to_owned(),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_and_record_bodies_are_told_apart() {
        let body = br#"{"type":"member.role_changed","event_id":"e1","timestamp":"t",
            "data":{"org":{"id":"o","name":"Acme"},"member":{"user_id":"u","email":"b@x","name":"Bob","role":"admin","previous_role":"member"}}}"#;
        let Payload::Account(event) = Payload::parse(body).unwrap() else {
            panic!("an account event")
        };
        let AccountEventKind::MemberRoleChanged { member, org } = event.kind else {
            panic!("a role change")
        };
        assert_eq!(
            (org.id.as_str(), member.previous_role.as_deref()),
            ("o", Some("member"))
        );

        let body = br#"{"people":[{"id":[{"realm":"o","provider":"connec","id":"g1"}],"op":"created","version":1,"group_id":"o","first_name":"Ann"}]}"#;
        let Payload::Records(delivery) = Payload::parse(body).unwrap() else {
            panic!("records")
        };
        let (entity, record) = delivery.records().next().unwrap();
        assert_eq!((entity, record.id.connec_id()), ("people", Some("g1")));
        assert_eq!(record.fields["first_name"], "Ann");
        assert!(Payload::parse(b"[1]").is_err());
    }
}
